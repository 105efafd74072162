// Package slo computes Herald's service level indicators from the database's
// record of outcomes, so a single-node deployment without Prometheus can
// still answer "did we meet the SLO?" (herald slo report, GET /v1/slo).
//
// The two SLOs (docs/operations.md):
//   - Publish latency: the time from an action's due time (its send_at:
//     the submit time, or the schedule or quiet-hours deferral) to its
//     delivery. Objective: p95 ≤ 5 s, i.e. at most 5 % of deliveries slower
//     than 5 s.
//   - Delivery errors after retries: actions that ended failed or unknown,
//     over all that ended delivered, failed or unknown. Objective ≤ 0.5 %.
//
// Invariants:
//   - An action is counted once, in the window its final outcome falls in;
//     retries are not errors until the action ends failed.
//   - Percentiles are nearest-rank over exact latencies (no interpolation),
//     so the report is reproducible by hand from the same rows.
//   - The report MUST NOT carry message text, targets or contact data: it is
//     keyed by account id and connector only.
package slo

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"
)

// Objectives of the SLOs. DefaultObjectives are the product's published ones.
type Objectives struct {
	// LatencyThreshold is the publish-latency bound and LatencyTarget the
	// fraction of deliveries that must meet it (p95 ≤ 5 s ⇔ 95 % within 5 s).
	LatencyThreshold time.Duration
	LatencyTarget    float64
	// MaxErrorRatio is the largest tolerated share of failed or unknown outcomes.
	MaxErrorRatio float64
}

// MarshalJSON writes the threshold in seconds, as every duration in the report.
func (o Objectives) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		LatencyThreshold float64 `json:"latency_threshold_seconds"`
		LatencyTarget    float64 `json:"latency_target"`
		MaxErrorRatio    float64 `json:"max_error_ratio"`
	}{o.LatencyThreshold.Seconds(), o.LatencyTarget, o.MaxErrorRatio})
}

// DefaultObjectives are the SLOs the product description declares.
var DefaultObjectives = Objectives{LatencyThreshold: 5 * time.Second, LatencyTarget: 0.95, MaxErrorRatio: 0.005}

// Outcome is one action's final outcome, as the store records it.
type Outcome struct {
	Account   string
	Connector string
	Status    string    // delivered | failed | unknown
	Due       time.Time // send_at
	At        time.Time // when the final status was recorded
}

// Source reads the final outcomes recorded in [from, to); org "" means
// every organisation (the deployment's SLO).
type Source interface {
	SLOOutcomes(ctx context.Context, org string, from, to time.Time) ([]Outcome, error)
}

// Figures are the SLIs of one group of outcomes.
type Figures struct {
	Account   string `json:"account,omitempty"`
	Connector string `json:"connector,omitempty"`
	Delivered int    `json:"delivered"`
	Failed    int    `json:"failed"`
	Unknown   int    `json:"unknown"`
	// P50/P95/P99 are publish latencies of delivered actions in seconds
	// (nil when nothing was delivered).
	P50 *float64 `json:"p50_seconds"`
	P95 *float64 `json:"p95_seconds"`
	P99 *float64 `json:"p99_seconds"`
	// Slow counts deliveries slower than the latency threshold.
	Slow int `json:"slow"`
	// ErrorRatio is (failed + unknown) / (delivered + failed + unknown).
	ErrorRatio float64 `json:"error_ratio"`
	// LatencyBudgetLeft and ErrorBudgetLeft are the shares of each error
	// budget not spent: 1 is untouched, 0 exactly spent, negative overspent.
	LatencyBudgetLeft float64 `json:"latency_budget_left"`
	ErrorBudgetLeft   float64 `json:"error_budget_left"`
	LatencyMet        bool    `json:"latency_met"`
	ErrorsMet         bool    `json:"errors_met"`
}

// Report is the SLO report of a window.
type Report struct {
	Org         string     `json:"org,omitempty"`
	From        time.Time  `json:"from"`
	To          time.Time  `json:"to"`
	Objectives  Objectives `json:"objectives"`
	Overall     Figures    `json:"overall"`
	ByAccount   []Figures  `json:"by_account"`
	ByConnector []Figures  `json:"by_connector"`
}

// Compute builds the report of outcomes against obj.
func Compute(org string, from, to time.Time, outcomes []Outcome, obj Objectives) Report {
	r := Report{Org: org, From: from, To: to, Objectives: obj}
	type key struct{ account, connector string }
	byAccount := map[key][]Outcome{}
	byConnector := map[string][]Outcome{}
	for _, o := range outcomes {
		byAccount[key{o.Account, o.Connector}] = append(byAccount[key{o.Account, o.Connector}], o)
		byConnector[o.Connector] = append(byConnector[o.Connector], o)
	}
	r.Overall = figures(outcomes, obj)
	r.ByAccount = []Figures{}
	for k, os := range byAccount {
		f := figures(os, obj)
		f.Account, f.Connector = k.account, k.connector
		r.ByAccount = append(r.ByAccount, f)
	}
	sort.Slice(r.ByAccount, func(i, j int) bool { return r.ByAccount[i].Account < r.ByAccount[j].Account })
	r.ByConnector = []Figures{}
	for c, os := range byConnector {
		f := figures(os, obj)
		f.Connector = c
		r.ByConnector = append(r.ByConnector, f)
	}
	sort.Slice(r.ByConnector, func(i, j int) bool { return r.ByConnector[i].Connector < r.ByConnector[j].Connector })
	return r
}

func figures(outcomes []Outcome, obj Objectives) Figures {
	var (
		f         Figures
		latencies []time.Duration
	)
	for _, o := range outcomes {
		switch o.Status {
		case "delivered":
			f.Delivered++
			l := max(o.At.Sub(o.Due), 0)
			latencies = append(latencies, l)
			if l > obj.LatencyThreshold {
				f.Slow++
			}
		case "failed":
			f.Failed++
		case "unknown":
			f.Unknown++
		}
	}
	if n := len(latencies); n > 0 {
		slices.Sort(latencies)
		f.P50, f.P95, f.P99 = rank(latencies, 0.50), rank(latencies, 0.95), rank(latencies, 0.99)
		slowShare := float64(f.Slow) / float64(n)
		f.LatencyBudgetLeft = budgetLeft(slowShare, 1-obj.LatencyTarget)
	} else {
		f.LatencyBudgetLeft = 1
	}
	f.LatencyMet = f.LatencyBudgetLeft >= 0
	if total := f.Delivered + f.Failed + f.Unknown; total > 0 {
		f.ErrorRatio = float64(f.Failed+f.Unknown) / float64(total)
	}
	f.ErrorBudgetLeft = budgetLeft(f.ErrorRatio, obj.MaxErrorRatio)
	f.ErrorsMet = f.ErrorBudgetLeft >= 0
	return f
}

// rank is the nearest-rank percentile: the ⌈p·n⌉-th smallest value.
func rank(sorted []time.Duration, p float64) *float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	v := sorted[i].Seconds()
	return &v
}

// budgetLeft is the unspent share of a budget of `allowed` bad events when
// `spent` of them happened (both as ratios of all events). Rounded to 6
// places so hand-computed figures compare exactly.
func budgetLeft(spent, allowed float64) float64 {
	if allowed <= 0 {
		if spent > 0 {
			return -1
		}
		return 1
	}
	return math.Round((1-spent/allowed)*1e6) / 1e6
}
