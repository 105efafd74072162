package policies

import (
	"context"
	"encoding/json"
	"runtime"
	"sort"
	"sync"
	"time"
)

// MaxImpactExamples bounds the example actions listed per transition: an
// officer reads a handful to understand a change, not a thousand.
const MaxImpactExamples = 10

// ReplayEvalTimeout is the evaluation deadline of impact previews and
// replays. They run off the send path, many evaluations at once, on a busy
// server: the send path's 50 ms deadline would fail some of them closed for
// reasons that have nothing to do with the bundle.
const ReplayEvalTimeout = time.Second

func (e *Engine) replayDecide(ctx context.Context, in Input) (Decision, error) {
	return e.decide(ctx, in, nil, max(e.timeout, ReplayEvalTimeout))
}

// PastDecision is one recorded decision an impact preview replays.
type PastDecision struct {
	ActionID string
	Input    Input
	Outcome  string
}

// Impact is what a candidate bundle would have decided differently over a
// set of past decisions.
type Impact struct {
	BundleHash string `json:"bundle_hash"`
	Evaluated  int    `json:"evaluated"`
	Changed    int    `json:"changed"`
	// Transitions counts every "old→new" outcome pair, unchanged ones
	// included ("allow→allow").
	Transitions map[string]int `json:"transitions"`
	// Examples lists up to MaxImpactExamples action ids per changed transition.
	Examples map[string][]string `json:"examples"`
	// Errors counts inputs the candidate failed closed on (its deny is
	// counted in Transitions too).
	Errors   int           `json:"errors"`
	Duration time.Duration `json:"duration_ns"`
}

// Transition names an outcome change: "allow→deny".
func Transition(from, to string) string { return from + "→" + to }

// Preview evaluates every past input with e (compiled once by the caller)
// and counts outcome transitions. Evaluations run in parallel over the
// available CPUs; the result does not depend on their order.
func Preview(ctx context.Context, e *Engine, past []PastDecision) Impact {
	start := time.Now()
	outcomes := make([]string, len(past))
	failed := make([]bool, len(past))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(past)/64))
	var (
		wg   sync.WaitGroup
		next = make(chan int, len(past))
	)
	for i := range past {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					outcomes[i], failed[i] = OutcomeDeny, true
					continue
				}
				d, err := e.replayDecide(ctx, past[i].Input)
				outcomes[i], failed[i] = d.Outcome, err != nil
			}
		}()
	}
	wg.Wait()
	im := Impact{BundleHash: e.Hash(), Evaluated: len(past), Transitions: map[string]int{}, Examples: map[string][]string{}}
	seen := map[string]map[string]bool{}
	for i, p := range past {
		if failed[i] {
			im.Errors++
		}
		tr := Transition(p.Outcome, outcomes[i])
		im.Transitions[tr]++
		if p.Outcome == outcomes[i] {
			continue
		}
		im.Changed++
		if seen[tr] == nil {
			seen[tr] = map[string]bool{}
		}
		if len(im.Examples[tr]) < MaxImpactExamples && p.ActionID != "" && !seen[tr][p.ActionID] {
			seen[tr][p.ActionID] = true
			im.Examples[tr] = append(im.Examples[tr], p.ActionID)
		}
	}
	im.Duration = time.Since(start)
	return im
}

// Replayed is the result of re-deciding a recorded input.
type Replayed struct {
	Recorded Decision `json:"recorded"`
	Replayed Decision `json:"replayed"`
	// Reproduced: the replayed decision document (outcome, defer_until,
	// approvals, reasons, suggestions, risk) equals the recorded one and
	// was made by the same bundle hash.
	Reproduced bool `json:"reproduced"`
	// InputHashMatches is nil when the stored input was minimised (so its
	// hash cannot equal the recorded one) and otherwise says whether it does.
	InputHashMatches *bool    `json:"input_hash_matches,omitempty"`
	Differences      []string `json:"differences,omitempty"`
	Error            string   `json:"error,omitempty"`
}

// Replay re-decides a recorded input with e (the engine of the bundle the
// decision recorded) and compares the documents. minimised says the stored
// input lacks a field the original had, so only the decision is compared.
func Replay(ctx context.Context, e *Engine, in Input, recorded Decision, minimised bool) Replayed {
	d, err := e.replayDecide(ctx, in)
	r := Replayed{Recorded: recorded, Replayed: d}
	if err != nil {
		r.Error = err.Error()
	}
	if d.BundleHash != recorded.BundleHash {
		r.Differences = append(r.Differences, "bundle_hash")
	}
	if !minimised {
		ok := d.InputHash == recorded.InputHash
		r.InputHashMatches = &ok
		if !ok {
			r.Differences = append(r.Differences, "input_hash")
		}
	}
	for _, f := range []struct {
		name string
		a, b any
	}{
		{"outcome", recorded.Outcome, d.Outcome},
		{"defer_until", recorded.DeferUntil, d.DeferUntil},
		{"approvals", recorded.Approvals, d.Approvals},
		{"reasons", recorded.Reasons, d.Reasons},
		{"suggestions", recorded.Suggestions, d.Suggestions},
		{"risk", recorded.Risk, d.Risk},
	} {
		if !sameJSON(f.a, f.b) {
			r.Differences = append(r.Differences, f.name)
		}
	}
	sort.Strings(r.Differences)
	r.Reproduced = len(r.Differences) == 0
	return r
}

// sameJSON compares two values by their JSON form, so a nil and an empty
// list (which encode differently) are told apart only where JSON does.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return normalise(ja) == normalise(jb)
}

// normalise treats null and [] alike: a decision read back from the
// database has [] where the engine may have produced none.
func normalise(b []byte) string {
	if s := string(b); s != "null" {
		return s
	}
	return "[]"
}
