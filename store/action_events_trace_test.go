package store_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// traced is ctx inside a sampled span of trace id (as a traced request or
// delivery attempt would be).
func traced(ctx context.Context, id byte) (context.Context, string) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{15: id, 0: 0xab}, SpanID: trace.SpanID{7: 1},
		TraceFlags: trace.FlagsSampled})
	return trace.ContextWithSpanContext(ctx, sc), sc.TraceID().String()
}

// TestActionEventsCarryTheirTrace: each recorded move names the trace of
// the work that made it — the submit's for received/decided/scheduled
// (written in one statement), the delivery attempt's for sending — and none
// when tracing was off, on both databases.
func TestActionEventsCarryTheirTrace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b)
		submitCtx, submitTrace := traced(context.Background(), 1)
		deliverCtx, deliverTrace := traced(context.Background(), 2)
		now := time.Now()
		a := herald.Action{Org: f.org.ID, Account: f.account.ID, Kind: herald.KindSendMessage, Purpose: "transactional",
			Target: "-1001", Content: herald.Content{Text: "hi"}, SendAt: now, SubmittedBy: "op"}
		err := f.s.InTx(submitCtx, func(tx *store.Tx) error {
			return tx.InsertAction(submitCtx, &a, store.Transition{To: herald.StatusDecided, Actor: "policy"},
				store.Transition{To: herald.StatusScheduled, Actor: "system", SendAt: &now})
		})
		if err != nil {
			t.Fatal(err)
		}
		err = f.s.InTx(deliverCtx, func(tx *store.Tx) error {
			_, err := tx.Transition(deliverCtx, a.Org, a.ID, store.Transition{To: herald.StatusSending, Actor: "worker"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Tracing off: no span in the context, no trace id.
		err = f.s.InTx(context.Background(), func(tx *store.Tx) error {
			_, err := tx.Transition(context.Background(), a.Org, a.ID, store.Transition{To: herald.StatusFailed, Actor: "worker"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := f.s.ActionEvents(context.Background(), f.org.ID, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			to    herald.Status
			trace string
		}{{herald.StatusReceived, submitTrace}, {herald.StatusDecided, submitTrace}, {herald.StatusScheduled, submitTrace},
			{herald.StatusSending, deliverTrace}, {herald.StatusFailed, ""}}
		if len(ev) != len(want) {
			t.Fatalf("events %+v", ev)
		}
		for i, w := range want {
			if ev[i].To != w.to || ev[i].TraceID != w.trace {
				t.Errorf("event %d = %s trace %q, want %s trace %q", i, ev[i].To, ev[i].TraceID, w.to, w.trace)
			}
		}
	})
}
