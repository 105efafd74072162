package store_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// Ledger benchmarks on PostgreSQL (the production store):
//
//	go test ./store/ -run '^$' -bench 'Ledger' -benchtime 20000x
//
// HERALD_BENCH_LEDGER_EXPORT_N sets the size of the export benchmark's log
// (default 20,000; the 1,000,000 figure in docs/audit.md was measured with
// HERALD_BENCH_LEDGER_EXPORT_N=1000000 -benchtime 1x).

func benchRecord(i int) store.LedgerRecord {
	r := store.LedgerRecord{Kind: ledger.KindActionDecided, Actor: "policy",
		Refs:  map[string]string{"action": "act_" + strconv.Itoa(i/4), "account": "acc_1"},
		Attrs: map[string]any{"outcome": "allow", "rules": []any{"consent.ok", "quiet_hours.ok"}, "risk": 25}}
	if i%4 == 0 {
		r.Kind, r.Payload = ledger.KindActionReceived, []byte(`{"target":"-1001234567890","content":{"text":"Your order has shipped"}}`)
	}
	return r
}

func benchOrg(b *testing.B, s *store.Store) string {
	b.Helper()
	o, err := s.CreateOrg(context.Background(), "Bench", "UTC")
	if err != nil {
		b.Fatal(err)
	}
	return o.ID
}

func reportRate(b *testing.B, n int, start time.Time) {
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
}

// BenchmarkLedgerAppendGroupCommit: AppendLedgerBatch, 1,000 entries per
// transaction (group commit).
func BenchmarkLedgerAppendGroupCommit(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	org := benchOrg(b, s)
	const batch = 1000
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		rs := make([]store.LedgerRecord, n)
		for i := range rs {
			rs[i] = benchRecord(done + i)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.AppendLedgerBatch(ctx, org, rs); return err }); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	reportRate(b, b.N, start)
}

// BenchmarkLedgerAppendManyInTx: 1,000 AppendLedger calls per transaction,
// as a pipeline stage recording many transitions would.
func BenchmarkLedgerAppendManyInTx(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	org := benchOrg(b, s)
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; {
		n := min(1000, b.N-done)
		err := s.InTx(ctx, func(tx *store.Tx) error {
			for i := 0; i < n; i++ {
				if _, err := tx.AppendLedger(ctx, org, benchRecord(done+i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += n
	}
	reportRate(b, b.N, start)
}

// BenchmarkLedgerAppendConcurrentOrgs: 8 appenders, one org each, 100
// entries per transaction: appends of different orgs never wait for each
// other.
func BenchmarkLedgerAppendConcurrentOrgs(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	const workers, batch = 8, 100
	orgs := make([]string, workers)
	for i := range orgs {
		orgs[i] = benchOrg(b, s)
	}
	var next, done atomic.Int64
	b.ResetTimer()
	start := time.Now()
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(org string) {
			for {
				i := int(next.Add(batch)) - batch
				if i >= b.N {
					errs <- nil
					return
				}
				n := min(batch, b.N-i)
				rs := make([]store.LedgerRecord, n)
				for k := range rs {
					rs[k] = benchRecord(i + k)
				}
				if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.AppendLedgerBatch(ctx, org, rs); return err }); err != nil {
					errs <- err
					return
				}
				done.Add(int64(n))
			}
		}(orgs[w])
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, int(done.Load()), start)
}

// BenchmarkLedgerAppendCommitted: one AppendLedger per transaction; ns/op
// is the latency of a single committed append.
func BenchmarkLedgerAppendCommitted(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	org := benchOrg(b, s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.AppendLedger(ctx, org, benchRecord(i)); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerExport streams an export of an N-entry log (a payload on
// every 4th entry, a checkpoint every 1,000) to io.Discard and reports the
// peak heap growth while streaming: constant memory means it does not grow
// with N.
func BenchmarkLedgerExport(b *testing.B) {
	ctx := context.Background()
	n := benchN()
	s, org, vkey, _ := benchLog(b, n)
	// A fresh LedgerLogs: the export of a whole log needs no Merkle tree.
	exp := store.NewLedgerLogs(s, "herald.bench", nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		w := &heapWatch{base: base.HeapAlloc}
		start := time.Now()
		if _, err := exp.ExportLedger(ctx, org, store.LedgerExportOptions{}, w); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		b.ReportMetric(float64(w.peak)/(1<<20), "peak-heap-growth-MB")
		b.ReportMetric(float64(n)/el.Seconds(), "entries/s")
		b.ReportMetric(float64(w.bytes)/(1<<20), "export-MB")
	}
	b.StopTimer()
	// The export verifies.
	vs, _ := ledger.NewVerifiers(vkey)
	rep, err := exp.VerifyLedger(ctx, org, store.LedgerExportOptions{}, vs)
	if err != nil || !rep.OK {
		b.Fatalf("%v\n%s", err, rep)
	}
}

// heapWatch discards the export and samples the heap every 4 MB written.
type heapWatch struct {
	base, peak uint64
	bytes      int64
	since      int64
}

func (h *heapWatch) Write(p []byte) (int, error) {
	h.bytes += int64(len(p))
	h.since += int64(len(p))
	if h.since >= 4<<20 {
		h.since = 0
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > h.base && m.HeapAlloc-h.base > h.peak {
			h.peak = m.HeapAlloc - h.base
		}
	}
	return io.Discard.Write(p)
}

func benchN() int {
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_LEDGER_EXPORT_N")); err == nil && v > 0 {
		return v
	}
	return 20_000
}

// benchLog fills a PostgreSQL log with n entries (a payload on every 4th)
// and a signed checkpoint every 1,000 entries.
func benchLog(b *testing.B, n int) (*store.Store, string, string, *store.LedgerLogs) {
	b.Helper()
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	org := benchOrg(b, s)
	skey, vkey, _ := ledger.GenerateKey("herald.bench/k1")
	signer, _ := ledger.NewSigner(skey)
	logs := store.NewLedgerLogs(s, "herald.bench", signer)
	for done := 0; done < n; {
		k := min(ledger.DefaultCheckpointEntries, n-done)
		rs := make([]store.LedgerRecord, k)
		for i := range rs {
			rs[i] = benchRecord(done + i)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.AppendLedgerBatch(ctx, org, rs); return err }); err != nil {
			b.Fatal(err)
		}
		if _, _, err := logs.Checkpoint(ctx, org); err != nil {
			b.Fatal(err)
		}
		done += k
	}
	return s, org, vkey, logs
}

// BenchmarkLedgerProveInclusion: a server-side inclusion bundle (checkpoint
// and entry read from PostgreSQL, tree reconciled with the committed size,
// proof from the in-memory tree) in an N-entry log; the first call, which
// builds the tree from the database, is timed separately.
func BenchmarkLedgerProveInclusion(b *testing.B) {
	ctx := context.Background()
	n := benchN()
	s, org, _, _ := benchLog(b, n)
	logs := store.NewLedgerLogs(s, "herald.bench", nil)
	start := time.Now()
	if _, _, err := logs.Tree(ctx, org); err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := logs.ProveInclusion(ctx, org, uint64(i*7919%n), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(build.Seconds(), "tree-build-s")
}
