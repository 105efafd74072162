package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// ledgerFixture is a store with one org whose log holds a pipeline-like
// sequence of entries and signed checkpoints.
type ledgerFixture struct {
	s     *store.Store
	logs  *store.LedgerLogs
	org   string
	vkey  string
	vs    note.Verifiers
	clock *time.Time
}

func newLedgerFixture(t testing.TB, b storetest.Backend) *ledgerFixture {
	t.Helper()
	ctx := context.Background()
	s := storetest.Open(t, b)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &ledgerFixture{s: s, clock: &now}
	s.SetClock(func() time.Time { return *f.clock })
	org, err := s.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := ledger.GenerateKey("herald.test/" + org.ID + "/k1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	f.vs, _ = ledger.NewVerifiers(vkey)
	f.org, f.vkey, f.logs = org.ID, vkey, store.NewLedgerLogs(s, "herald.test", signer)
	return f
}

func (f *ledgerFixture) advance(d time.Duration) { *f.clock = f.clock.Add(d) }

// actions appends n actions' worth of entries (received with a payload,
// decided, sending, delivered), contact "c<i%3>".
func (f *ledgerFixture) actions(t testing.TB, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("act_%d_%d", f.clock.UnixNano(), i)
		refs := map[string]string{"action": id, "contact": fmt.Sprintf("c%d", i%3)}
		err := f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.AppendLedger(ctx, f.org, store.LedgerRecord{Kind: ledger.KindActionReceived, Actor: "alice", Refs: refs,
				Attrs: map[string]any{"kind": "send_message"}, Payload: []byte(`{"text":"hello ` + id + `"}`)})
			if err != nil {
				return err
			}
			_, err = tx.AppendLedgerBatch(ctx, f.org, []store.LedgerRecord{
				{Kind: ledger.KindActionDecided, Actor: "policy", Refs: refs, Attrs: map[string]any{"outcome": "allow", "rules": []any{"consent.ok"}}},
				{Kind: ledger.KindActionSending, Actor: "worker", Refs: refs},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.AppendLedger(ctx, f.org, store.LedgerRecord{Kind: ledger.KindActionDelivered, Actor: "worker", Refs: refs})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		f.advance(time.Second)
	}
}

func (f *ledgerFixture) checkpoint(t testing.TB) store.LedgerCheckpoint {
	t.Helper()
	c, _, err := f.logs.Checkpoint(context.Background(), f.org)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *ledgerFixture) verify(t testing.TB) ledger.Report {
	t.Helper()
	rep, err := f.logs.VerifyLedger(context.Background(), f.org, store.LedgerExportOptions{}, f.vs)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestLedgerCheckpointsProofsAndExport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 5)
		c1 := f.checkpoint(t)
		if c1.Size != 21 { // genesis + 5 × 4
			t.Fatalf("first checkpoint size %d, want 21", c1.Size)
		}
		// Nothing new but the checkpoint's own entry: the same checkpoint.
		if c, created, err := f.logs.Checkpoint(ctx, f.org); err != nil || created || c.Size != c1.Size {
			t.Fatalf("second checkpoint = %d, %v, %v", c.Size, created, err)
		}
		es, _ := f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{FromSeq: 21, ToSeq: 21})
		if len(es) != 1 || es[0].Kind != ledger.KindLedgerCheckpoint || es[0].Attrs["size"] != float64(21) {
			t.Fatalf("checkpoint entry = %+v", es)
		}
		f.actions(t, 3)
		c2 := f.checkpoint(t)
		if c2.Size != 34 {
			t.Fatalf("second checkpoint size %d, want 34", c2.Size)
		}
		// Inclusion: our bundle, and transparency-dev's verifier directly.
		for _, seq := range []uint64{0, 7, 20, 33} {
			bnd, err := f.logs.ProveInclusion(ctx, f.org, seq, 0)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := ledger.VerifyInclusionBundle(bnd, f.vs)
			if err != nil {
				t.Fatalf("inclusion of %d: %v", seq, err)
			}
			hb, _ := bnd.Entry.HashBytes()
			if err := proof.VerifyInclusion(ledger.Hasher, seq, cp.Size, ledger.LeafHash(hb), bnd.Proof, cp.Root); err != nil {
				t.Fatalf("transparency-dev rejects inclusion of %d: %v", seq, err)
			}
		}
		if _, err := f.logs.ProveInclusion(ctx, f.org, 34, 0); err == nil {
			t.Fatal("proved an entry not covered by a checkpoint")
		}
		cb, err := f.logs.ProveConsistency(ctx, f.org, c1.Size, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ledger.VerifyConsistencyBundle(cb, f.vs); err != nil {
			t.Fatal(err)
		}
		// Export, whole and from the middle (anchored at checkpoint 21).
		rep := f.verify(t)
		if !rep.OK || rep.Entries != 35 || rep.Checkpoints != 2 || rep.PayloadsVerified != 8 || rep.Uncovered != 1 {
			t.Fatalf("verify:\n%s", rep)
		}
		var buf bytes.Buffer
		h, err := f.logs.ExportLedger(ctx, f.org, store.LedgerExportOptions{From: 25}, &buf)
		if err != nil || h.From != 21 || h.Anchor == nil {
			t.Fatalf("export from 25: header %+v, %v", h, err)
		}
		rep, err = ledger.Verify(ctx, &buf, f.vs)
		if err != nil || !rep.OK || rep.From != 21 {
			t.Fatalf("verify export from 25: %v\n%s", err, rep)
		}
		// Filters.
		es, err = f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{Action: es[0].Refs["action"]})
		if err != nil {
			t.Fatal(err)
		}
		acts, err := f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{Kind: ledger.KindActionReceived})
		if err != nil || len(acts) != 8 {
			t.Fatalf("kind filter: %d, %v", len(acts), err)
		}
		byAction, err := f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{Action: acts[2].Refs["action"]})
		if err != nil || len(byAction) != 4 {
			t.Fatalf("action filter: %d, %v", len(byAction), err)
		}
	})
}

func TestLedgerCheckpointJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		job := &store.CheckpointJob{Logs: f.logs, Entries: 10, Interval: 10 * time.Second}
		f.actions(t, 1) // 5 entries: not due by count, due (no checkpoint yet)
		if n, err := job.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("first round signed %d, %v", n, err)
		}
		f.actions(t, 1) // 4 new: below 10, interval not passed
		if n, err := job.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("second round signed %d, %v", n, err)
		}
		f.advance(10 * time.Second)
		if n, err := job.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("after the interval signed %d, %v", n, err)
		}
		f.advance(time.Minute) // only the checkpoint entry is new: nothing to sign
		if n, err := job.RunOnce(ctx); err != nil || n != 0 {
			t.Fatalf("quiet log signed %d, %v", n, err)
		}
		f.actions(t, 3) // 12 new ≥ 10
		if n, err := job.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("count round signed %d, %v", n, err)
		}
		if rep := f.verify(t); !rep.OK || rep.Checkpoints != 3 {
			t.Fatalf("verify:\n%s", rep)
		}
	})
}

func TestLedgerRetentionAndErasureStillVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 6)
		f.checkpoint(t)
		n, err := f.s.EraseContact(ctx, f.org, "c1")
		if err != nil || n != 2 {
			t.Fatalf("erase contact: %d, %v", n, err)
		}
		rep := f.verify(t)
		if !rep.OK || rep.PayloadsPurged != 2 || rep.PayloadsVerified != 4 {
			t.Fatalf("after erasure:\n%s", rep)
		}
		f.advance(40 * 24 * time.Hour)
		f.actions(t, 2)
		n, err = f.s.PurgeLedgerPayloads(ctx, f.org, f.s.Now().Add(-store.DefaultPayloadRetention))
		if err != nil || n != 4 {
			t.Fatalf("purge: %d, %v", n, err)
		}
		f.checkpoint(t)
		rep = f.verify(t)
		if !rep.OK || rep.PayloadsPurged != 6 || rep.PayloadsVerified != 2 {
			t.Fatalf("after purge:\n%s", rep)
		}
		var buf bytes.Buffer
		if _, err := f.logs.ExportLedger(ctx, f.org, store.LedgerExportOptions{}, &buf); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "hello act") && strings.Count(buf.String(), `"purged":true`) != 6 {
			t.Fatal("purged payloads are not marked")
		}
	})
}

func TestLedgerPruneKeepsAnchorAndVerifies(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 5)
		c1 := f.checkpoint(t)
		f.advance(400 * 24 * time.Hour)
		f.actions(t, 3)
		f.checkpoint(t)
		a, err := f.logs.PruneLedger(ctx, f.org, f.s.Now().Add(-store.DefaultEntryRetention))
		if err != nil || a == nil || a.Size != c1.Size {
			t.Fatalf("prune: %+v, %v", a, err)
		}
		if es, _ := f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{}); len(es) == 0 || es[0].Seq != c1.Size {
			t.Fatalf("after pruning the log starts at %d", es[0].Seq)
		}
		f.actions(t, 1)
		f.checkpoint(t)
		rep := f.verify(t)
		if !rep.OK || rep.From != c1.Size {
			t.Fatalf("pruned log:\n%s", rep)
		}
		// A fresh process resumes its tree from the anchor.
		fresh := store.NewLedgerLogs(f.s, "herald.test", f.logs.Signer)
		bnd, err := fresh.ProveInclusion(ctx, f.org, c1.Size+2, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.VerifyInclusionBundle(bnd, f.vs); err != nil {
			t.Fatal(err)
		}
		// Entries behind no anchor still refuse DELETE.
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			return store.ExecForTest(ctx, tx, fmt.Sprintf(`DELETE FROM ledger_entries WHERE seq = %d`, c1.Size+1))
		})
		if err == nil {
			t.Fatal("the database deleted an entry that no anchor covers")
		}
	})
}

func TestLedgerCheckpointKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 2)
		f.checkpoint(t)
		skey2, vkey2, _ := ledger.GenerateKey("herald.test/" + f.org + "/k2")
		s2, _ := ledger.NewSigner(skey2)
		f.logs.Signer = s2
		f.actions(t, 2)
		c := f.checkpoint(t)
		if !strings.Contains(c.KeyID, "/k2+") {
			t.Fatalf("rotated checkpoint signed by %s", c.KeyID)
		}
		both, _ := ledger.NewVerifiers(vkey2, f.vkey)
		rep, err := f.logs.VerifyLedger(ctx, f.org, store.LedgerExportOptions{}, both)
		if err != nil || !rep.OK || rep.Checkpoints != 2 {
			t.Fatalf("both keys: %v\n%s", err, rep)
		}
		onlyNew, _ := ledger.NewVerifiers(vkey2)
		rep, _ = f.logs.VerifyLedger(ctx, f.org, store.LedgerExportOptions{}, onlyNew)
		if rep.OK || rep.FirstBadSeq == nil || *rep.FirstBadSeq != 0 {
			t.Fatalf("only the new key:\n%s", rep)
		}
	})
}

// TestLedgerRefusesToSignRewrittenHistory: after a superuser rewrote the
// chain (re-hashed after a forged entry), neither a running replica nor a
// fresh one signs a checkpoint over it.
func TestLedgerRefusesToSignRewrittenHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newLedgerFixture(t, b)
		f.actions(t, 3)
		f.checkpoint(t)
		f.actions(t, 1)
		f.forgeFrom(t, b, 5)
		if _, _, err := f.logs.Checkpoint(ctx, f.org); !errors.Is(err, store.ErrLedgerDiverged) {
			t.Fatalf("running replica signed over a rewritten log: %v", err)
		}
		fresh := store.NewLedgerLogs(f.s, "herald.test", f.logs.Signer)
		if _, _, err := fresh.Checkpoint(ctx, f.org); !errors.Is(err, store.ErrLedgerDiverged) {
			t.Fatalf("fresh replica signed over a rewritten log: %v", err)
		}
	})
}
