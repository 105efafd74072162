package policies

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// pastDecisions decides n realistic inputs with the default engine, every
// third of them to an opted-out contact (deny), the rest allowed.
func pastDecisions(t testing.TB, n int) []PastDecision {
	e := mustEngine(t)
	out := make([]PastDecision, n)
	for i := range out {
		in := realisticInput()
		in.Action.ID = fmt.Sprintf("act-%d", i)
		if i%3 == 0 {
			in.Target.Contact.OptedOut = true
		}
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = PastDecision{ActionID: in.Action.ID, Input: in, Outcome: d.Outcome}
	}
	return out
}

func TestImpactPreviewCountsTransitions(t *testing.T) {
	ctx := context.Background()
	past := pastDecisions(t, 300)
	deny, err := Compile(ctx, denyAll())
	if err != nil {
		t.Fatal(err)
	}
	im := Preview(ctx, deny, past)
	if im.Evaluated != 300 || im.Transitions["allow→deny"] != 200 || im.Transitions["deny→deny"] != 100 || im.Changed != 200 || im.Errors != 0 {
		t.Fatalf("impact = %+v", im)
	}
	if ex := im.Examples["allow→deny"]; len(ex) != MaxImpactExamples || ex[0] != "act-1" {
		t.Fatalf("examples = %v", ex)
	}
	if _, ok := im.Examples["deny→deny"]; ok {
		t.Fatal("unchanged transitions have no examples")
	}
	same := Preview(ctx, mustEngine(t), past)
	if same.Changed != 0 || same.Transitions["allow→allow"] != 200 {
		t.Fatalf("the same bundle changes decisions: %+v", same)
	}
}

func TestReplayReproduces(t *testing.T) {
	ctx := context.Background()
	e := mustEngine(t)
	in := realisticInput()
	d, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r := Replay(ctx, e, in, d, false); !r.Reproduced || r.InputHashMatches == nil || !*r.InputHashMatches {
		t.Fatalf("exact replay: %+v", r)
	}
	changed := in
	changed.Now = in.Now.Add(10 * time.Hour) // into quiet hours
	r := Replay(ctx, e, changed, d, false)
	if r.Reproduced || len(r.Differences) == 0 {
		t.Fatalf("a different input reproduced: %+v", r)
	}
	other, err := Compile(ctx, denyAll())
	if err != nil {
		t.Fatal(err)
	}
	if r := Replay(ctx, other, in, d, true); r.Reproduced || r.InputHashMatches != nil {
		t.Fatalf("another bundle reproduced: %+v", r)
	}
}

// BenchmarkPreview1000 is the impact preview of 1,000 decisions (the API's
// default), compiled once, evaluated in parallel.
func BenchmarkPreview1000(b *testing.B) {
	ctx := context.Background()
	past := pastDecisions(b, 1000)
	e := mustBenchEngine(b)
	cpu0 := processCPU()
	for b.Loop() {
		im := Preview(ctx, e, past)
		if im.Evaluated != 1000 {
			b.Fatal(im)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
