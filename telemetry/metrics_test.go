package telemetry_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/telemetry"
)

// counts gathers family from m's registry, as a scrape would: the value of
// each series by its label values joined with ",".
func counts(t *testing.T, m *telemetry.Metrics, family string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			var vals []string
			for _, l := range s.GetLabel() {
				vals = append(vals, l.GetValue())
			}
			out[strings.Join(vals, ",")] = s.GetCounter().GetValue()
		}
	}
	return out
}

// TestDecisionRuleLabelsAreBounded: rule ids label decisions only when
// they look like rule ids and only up to the series cap; a rule id a bundle
// built from its input (a chat id, a phone number) and every rule past the
// cap are counted as "other", and no decision is lost, under concurrent
// observation.
func TestDecisionRuleLabelsAreBounded(t *testing.T) {
	m := telemetry.New(nil)
	m.ObserveDecision("submit", policies.Decision{Outcome: "allow"})
	m.ObserveDecision("submit", policies.Decision{Outcome: "deny", Reasons: []policies.Reason{
		{Rule: "consent.missing"}, {Rule: "consent.missing"}, {Rule: "risk.high"}}})
	for _, bad := range []string{"consent.777000123", "+491701234567", "Consent.Missing", "consent missing", "x.\x00", strings.Repeat("a", 65)} {
		m.ObserveDecision("send", policies.Decision{Outcome: "deny", Reasons: []policies.Reason{{Rule: bad}}})
	}
	// Series by outcome, rule, stage (a scrape's label order).
	rules := counts(t, m, "herald_policy_decisions_by_rule_total")
	for series, want := range map[string]float64{
		"allow,none,submit":           1,
		"deny,consent.missing,submit": 1, // named twice in one decision: one decision
		"deny,risk.high,submit":       1,
		"deny,other,send":             6,
	} {
		if rules[series] != want {
			t.Errorf("decisions {%s} = %v, want %v (all: %v)", series, rules[series], want, rules)
		}
	}
	if len(rules) != 4 {
		t.Errorf("series %v, want only the 4 above", rules)
	}
	if got := counts(t, m, "herald_policy_decisions_total")["deny,submit"]; got != 1 {
		t.Errorf("herald_policy_decisions_total{deny,submit} = %v, want 1", got)
	}

	// 8 clients observe 400 distinct well-formed rules (50 each) at once:
	// 256 rule series at most (the 2 above included), the rest "other",
	// every decision counted.
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				m.ObserveDecision("send", policies.Decision{Outcome: "allow", Reasons: []policies.Reason{{Rule: fmt.Sprintf("family.rule_%d_%d", c, i)}}})
			}
		}()
	}
	wg.Wait()
	admitted, own, other := 0, 0.0, 0.0
	for series, v := range counts(t, m, "herald_policy_decisions_by_rule_total") {
		switch {
		case series == "allow,other,send":
			other = v
		case strings.HasPrefix(series, "allow,family.rule_"):
			admitted++
			own += v
		}
	}
	if admitted != 256-2 || own != float64(admitted) || own+other != 400 {
		t.Errorf("%d rules admitted with %v decisions (want %d), %v under other; want 400 in all", admitted, own, 256-2, other)
	}
}

// TestAccountHealthLabelsAreBounded: delivery attempts are counted by
// account id, connector and class; a value that is not an id (a name, a
// phone number) never becomes a label.
func TestAccountHealthLabelsAreBounded(t *testing.T) {
	m := telemetry.New(nil)
	const acc = "0190f3a2-7c1d-7e55-9a51-3c8f0e6b1a24"
	for range 3 {
		m.ObserveDelivery(acc, "botapi", "none", nil)
	}
	m.ObserveDelivery(acc, "botapi", "retryable", nil)
	m.ObserveDelivery("+49 170 1234567", "mtproto", "none", nil)
	m.ObserveDelivery("Dr. Alice's phone", "mtproto", "none", nil)
	// Series by account, class, connector (a scrape's label order).
	got := counts(t, m, "herald_account_delivery_attempts_total")
	want := map[string]float64{acc + ",none,botapi": 3, acc + ",retryable,botapi": 1, "other,none,mtproto": 2}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("attempts by account %v, want %v", got, want)
	}
	if got := counts(t, m, "herald_delivery_attempts_total")["none,botapi"]; got != 3 {
		t.Errorf("herald_delivery_attempts_total{botapi,none} = %v, want 3", got)
	}
}

// BenchmarkObserveDecision is the submit path's per-decision metrics cost:
// the outcome counter plus one by-rule series per reason (a deny naming two
// rules here), through the bounded rule label.
func BenchmarkObserveDecision(b *testing.B) {
	m := telemetry.New(nil)
	d := policies.Decision{Outcome: "deny", Reasons: []policies.Reason{{Rule: "consent.missing"}, {Rule: "risk.high"}}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveDecision("submit", d)
		}
	})
}

// BenchmarkObserveDelivery is the worker's per-attempt metrics cost.
func BenchmarkObserveDelivery(b *testing.B) {
	m := telemetry.New(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveDelivery("0190f3a2-7c1d-7e55-9a51-3c8f0e6b1a24", "botapi", "none", nil)
		}
	})
}
