package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkCampaignFanout fans out one campaign to HERALD_BENCH_RECIPIENTS
// contacts (default 2,000; the figure is 100,000) across 10 bot
// accounts through the real pipeline, while a client submits single
// transactional messages over HTTP. It reports recipients decided and
// queued per second, the transactional submits' p99, and the process's
// peak RSS.
//
//	HERALD_BENCH_RECIPIENTS=20000 go test ./gateway/ -run '^$' -bench CampaignFanout -benchtime 1x
func BenchmarkCampaignFanout(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_RECIPIENTS")); err == nil && v > 0 {
		n = v
	}
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b, be)
			op := e.keys[herald.RoleOperator]
			accounts := []string{e.account.ID}
			for i := 1; i < 10; i++ {
				a, err := e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: fmt.Sprint("bot", i), Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
				if err != nil {
					b.Fatal(err)
				}
				accounts = append(accounts, a.ID)
			}
			e.importPeople("-1001")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				seed := make([]store.SeedContact, n)
				for j := range seed {
					seed[j] = store.SeedContact{ChatID: fmt.Sprint(10_000_000 + i*n + j), Timezone: "Europe/Berlin", Language: "en",
						Tags: []string{fmt.Sprint("run", i)}, Purpose: "marketing"}
				}
				if _, err := store.SeedContactsForTest(ctx, e.s, e.org.ID, seed); err != nil {
					b.Fatal(err)
				}
				seg := e.post("/v1/segments", op, map[string]any{"name": fmt.Sprint("run", i), "filter": map[string]any{"tags": []string{fmt.Sprint("run", i)}}}, http.StatusCreated).str("id")
				cid := e.post("/v1/campaigns", op, map[string]any{"name": fmt.Sprint("run", i), "kind": "send_message", "purpose": "marketing",
					"template": map[string]any{"text": "Spring sale"}, "segment": seg, "accounts": accounts}, http.StatusCreated).str("id")
				e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusOK)
				runtime.GC()
				b.StartTimer()
				stop := make(chan struct{})
				var (
					wg   sync.WaitGroup
					lats []time.Duration
				)
				wg.Add(1)
				go func() { // a transactional client, one submit at a time
					defer wg.Done()
					for k := 0; ; k++ {
						select {
						case <-stop:
							return
						default:
						}
						t0 := time.Now()
						r := e.do("POST", "/v1/actions", op, e.sendReq("-1001", "transactional", fmt.Sprint("Order ", k)))
						if r.status != http.StatusCreated {
							b.Errorf("transactional submit: %d %s", r.status, r.raw)
							return
						}
						lats = append(lats, time.Since(t0))
						time.Sleep(20 * time.Millisecond)
					}
				}()
				start := time.Now()
				got, err := e.runner("bench").RunOnce(ctx)
				elapsed := time.Since(start)
				close(stop)
				wg.Wait()
				if err != nil || got != n {
					b.Fatalf("fan-out submitted %d of %d: %v", got, n, err)
				}
				b.ReportMetric(float64(n)/elapsed.Seconds(), "recipients/s")
				if len(lats) > 0 {
					slices.Sort(lats)
					b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "txn-p99-ms")
				}
			}
			b.ReportMetric(peakRSSMB(), "peak-RSS-MB")
		})
	}
}

// peakRSSMB reads the process's peak resident set (VmHWM) in MB.
func peakRSSMB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
