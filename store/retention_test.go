package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// appendWithPayloads appends n action.received entries, each with a
// payload, to org's log.
func appendWithPayloads(t *testing.T, s *store.Store, org string, n int) {
	t.Helper()
	ctx := context.Background()
	err := s.InTx(ctx, func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("act_%d_%d", s.Now().UnixNano(), i)
			if _, err := tx.AppendLedger(ctx, org, store.LedgerRecord{Kind: ledger.KindActionReceived, Actor: "alice",
				Refs: map[string]string{"action": id}, Payload: []byte(`{"text":"hello ` + id + `"}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lastRetentionRun returns the attrs of org's latest retention.ran entry
// and how many there are.
func lastRetentionRun(t *testing.T, s *store.Store, org string) (map[string]any, int) {
	t.Helper()
	es, err := s.LedgerEntries(context.Background(), org, store.LedgerFilter{Kind: store.KindRetentionRan})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return nil, 0
	}
	return es[len(es)-1].Attrs, len(es)
}

func num(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return -1
}

// TestRetentionJobAppliesEachOrgsConfig: with an injected clock, two
// organisations on one store, one on the defaults (12 months of entries,
// 30 days of payloads) and one with a shorter configuration (90 days, 1
// day). The job purges and prunes each by its own configuration, records
// every run that removed something as retention.ran with the counts, keeps
// the signed anchor, and both logs still verify after pruning.
func TestRetentionJobAppliesEachOrgsConfig(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		short, err := f.s.CreateOrg(ctx, "Short", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		def := f.org
		job := &store.RetentionJob{Store: f.s, Logs: f.logs}
		verify := func(org string) ledger.Report {
			t.Helper()
			rep, err := f.logs.VerifyLedger(ctx, org, store.LedgerExportOptions{}, f.vs)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK {
				t.Fatalf("org %s does not verify:\n%s", org, rep)
			}
			return rep
		}
		for _, org := range []string{def, short.ID} {
			appendWithPayloads(t, f.s, org, 10)
			if _, _, err := f.logs.Checkpoint(ctx, org); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := f.s.Retention(ctx, def); err != nil || got.RetentionConfig != store.DefaultRetention() || got.UpdatedBy != "" {
			t.Fatalf("default retention = %+v, %v", got, err)
		}
		// Out of range: refused, nothing stored, nothing in the ledger.
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.SetRetention(ctx, short.ID, store.RetentionConfig{LedgerEntriesDays: 1, DecisionInputsDays: 1, PayloadsDays: 1, ReceiptsDays: 7}, "co")
			return err
		})
		var he *herald.Error
		if !errors.As(err, &he) || he.Code != herald.CodeValidation || len(he.Fields) != 1 || he.Fields[0].Field != "ledger_entries_days" {
			t.Fatalf("ledger_entries_days = 1: %v", err)
		}
		if es, _ := f.s.LedgerEntries(ctx, short.ID, store.LedgerFilter{Kind: store.KindRetentionChanged}); len(es) != 0 {
			t.Fatal("a refused configuration reached the ledger")
		}
		cfg := store.RetentionConfig{LedgerEntriesDays: 90, DecisionInputsDays: 30, PayloadsDays: 1, ReceiptsDays: 7}
		if err := f.s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.SetRetention(ctx, short.ID, cfg, "co"); return err }); err != nil {
			t.Fatal(err)
		}
		if es, _ := f.s.LedgerEntries(ctx, short.ID, store.LedgerFilter{Kind: store.KindRetentionChanged}); len(es) != 1 || num(es[0].Attrs["ledger_entries_days"]) != 90 {
			t.Fatalf("retention.changed entries: %+v", es)
		}

		// Day 0: nothing is old enough; the first run of each org is
		// recorded, a second run at once is not (nothing removed).
		if err := job.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if err := job.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for _, org := range []string{def, short.ID} {
			if a, n := lastRetentionRun(t, f.s, org); n != 1 || num(a["payloads"]) != 0 || num(a["pruned_before"]) != 0 {
				t.Fatalf("org %s after two idle runs: %d entries, last %v", org, n, a)
			}
		}

		// Day 2: the short org's payloads (1 day) go, the default org's
		// (30 days) stay.
		f.advance(2 * 24 * time.Hour)
		if err := job.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if a, n := lastRetentionRun(t, f.s, short.ID); n != 2 || num(a["payloads"]) != 10 || num(a["payloads_days"]) != 1 {
			t.Fatalf("short org at day 2: %d runs, last %v", n, a)
		}
		// The default org removed nothing, but its last record is two days
		// old: the daily heartbeat records the run anyway.
		if a, n := lastRetentionRun(t, f.s, def); n != 2 || num(a["payloads"]) != 0 || num(a["payloads_days"]) != 30 {
			t.Fatalf("default org at day 2: %d runs, last %v", n, a)
		}
		if rep := verify(short.ID); rep.PayloadsPurged != 10 {
			t.Fatalf("short org payloads:\n%s", rep)
		}

		// Day 100: the short org's entries (90 days) are pruned behind its
		// signed checkpoint; the default org's (12 months) are kept.
		f.advance(98 * 24 * time.Hour)
		for _, org := range []string{def, short.ID} {
			appendWithPayloads(t, f.s, org, 2)
			if _, _, err := f.logs.Checkpoint(ctx, org); err != nil {
				t.Fatal(err)
			}
		}
		if err := job.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		a, _ := lastRetentionRun(t, f.s, short.ID)
		anchor, err := f.s.LatestLedgerAnchor(ctx, short.ID)
		if err != nil || anchor == nil || num(a["pruned_before"]) != float64(anchor.Size) || anchor.Size < 11 {
			t.Fatalf("short org at day 100: anchor %+v (%v), run %v", anchor, err, a)
		}
		if rep := verify(short.ID); rep.From != anchor.Size {
			t.Fatalf("pruned log does not start at the anchor:\n%s", rep)
		}
		if an, _ := f.s.LatestLedgerAnchor(ctx, def); an != nil {
			t.Fatalf("default org pruned at day 100: %+v", an)
		}
		if a, _ := lastRetentionRun(t, f.s, def); num(a["payloads"]) != 10 {
			t.Fatalf("default org at day 100 should have purged its 30-day payloads: %v", a)
		}
		verify(def)

		// Day 400: the default 12 months are over: the default org is
		// pruned too, and still verifies from its anchor.
		f.advance(300 * 24 * time.Hour)
		appendWithPayloads(t, f.s, def, 1)
		if _, _, err := f.logs.Checkpoint(ctx, def); err != nil {
			t.Fatal(err)
		}
		if err := job.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		an, err := f.s.LatestLedgerAnchor(ctx, def)
		if err != nil || an == nil || an.Size < 11 {
			t.Fatalf("default org at day 400: anchor %+v, %v", an, err)
		}
		if rep := verify(def); rep.From != an.Size {
			t.Fatalf("default org after pruning:\n%s", rep)
		}
		if es, _ := f.s.LedgerEntries(ctx, def, store.LedgerFilter{Kind: store.KindLedgerPruned}); len(es) != 1 {
			t.Fatalf("ledger.pruned entries: %d", len(es))
		}
	})
}

// TestRetentionLimitsMatchDefaults: the documented defaults are the ones
// applied, and each lies within its floor and ceiling.
func TestRetentionLimitsMatchDefaults(t *testing.T) {
	d := store.DefaultRetention()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"ledger_entries_days": d.LedgerEntriesDays, "decision_inputs_days": d.DecisionInputsDays,
		"payloads_days": d.PayloadsDays, "receipts_days": d.ReceiptsDays}
	for _, l := range store.RetentionLimits {
		if want[l.Field] != l.Default || l.Min > l.Default || l.Default > l.Max {
			t.Errorf("%s: limits %+v, default applied %d", l.Field, l, want[l.Field])
		}
	}
	if d.LedgerEntriesDays != 365 {
		t.Errorf("the documented default entry retention is 12 months, got %d days", d.LedgerEntriesDays)
	}
}

// TestRetentionHeartbeatOnceAcrossReplicas: several replicas run the
// retention job at the same moment; an idle run is recorded once, not once
// per replica, and the log still verifies.
func TestRetentionHeartbeatOnceAcrossReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 1)
		for round := 1; round <= 2; round++ {
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := (&store.RetentionJob{Store: f.s, Logs: f.logs}).RunOrg(ctx, f.org)
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, n := lastRetentionRun(t, f.s, f.org); n != round {
				t.Fatalf("round %d: %d retention.ran entries", round, n)
			}
			f.advance(25 * time.Hour)
		}
		f.checkpoint(t)
		if rep := f.verify(t); !rep.OK {
			t.Fatalf("%s", rep)
		}
	})
}
