package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkPages measures each page's server time on the embedded default
// (SQLite) with 10,000 actions (HERALD_CONSOLE_BENCH_ACTIONS to change),
// in process: the console handler and the API it calls, no network. It
// reports p50 and p95 per page; the target is p95 ≤ 50 ms.
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 200x ./console/
func BenchmarkPages(b *testing.B) {
	n := 10_000
	if v := os.Getenv("HERALD_CONSOLE_BENCH_ACTIONS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	e := newEnv(b, storetest.SQLite)
	api := e.api.Handler()
	key := e.keys[herald.RoleOperator]
	// Seed through the API, four at a time, each to its own recipient.
	start := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   []string
		fails int
	)
	work := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body, _ := json.Marshal(map[string]any{"kind": "send_message", "account": e.account.ID,
					"target": fmt.Sprint(-1001000000000 - i), "purpose": "transactional", "text": "Order " + strconv.Itoa(i) + " shipped"})
				req := httptest.NewRequest(http.MethodPost, "/v1/actions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, req)
				var out struct {
					Action struct {
						ID string `json:"id"`
					} `json:"action"`
				}
				_ = json.Unmarshal(rec.Body.Bytes(), &out)
				mu.Lock()
				if out.Action.ID == "" {
					fails++
				} else {
					ids = append(ids, out.Action.ID)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if fails > 0 {
		b.Fatalf("%d of %d submits failed", fails, n)
	}
	b.Logf("seeded %d actions in %s", len(ids), time.Since(start).Round(time.Millisecond))

	// A signed-in admin + compliance officer (reads everything).
	c := e.client()
	c.signIn(e.keys[herald.RoleComplianceOfficer])
	u, _ := url.Parse(e.srv.URL)
	var cookie *http.Cookie
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == "herald_console" {
			cookie = ck
		}
	}
	h := console.Mount(api, e.console)
	// The API calls the pages make, as the same person, for attribution.
	for _, path := range []string{"/v1/me", "/v1/me/permissions", "/v1/actions?limit=100&status=failed", "/v1/actions?limit=100&status=pending_approval",
		"/v1/approvals", "/v1/actions/" + ids[len(ids)/2], "/v1/ledger/entries?limit=200&action=" + ids[len(ids)/2],
		"/v1/ledger/entries?kind=ledger.checkpoint&limit=1000", "/v1/slo"} {
		b.Run("api"+path, func(b *testing.B) {
			durs := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Authorization", "Bearer "+e.keys[herald.RoleComplianceOfficer])
				rec := httptest.NewRecorder()
				t0 := time.Now()
				api.ServeHTTP(rec, req)
				durs = append(durs, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s = %d: %.300s", path, rec.Code, rec.Body.String())
				}
			}
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(durs[len(durs)*95/100].Microseconds())/1000, "p95_ms")
		})
	}
	for _, page := range []string{"/", "/actions", "/actions?status=scheduled&purpose=transactional", "/actions/" + ids[len(ids)/2],
		"/approvals?tab=assigned", "/approvals?tab=expired", "/audit", "/admin"} {
		b.Run(page, func(b *testing.B) {
			durs := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, page, nil)
				req.AddCookie(cookie)
				rec := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(rec, req)
				durs = append(durs, time.Since(t0))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s = %d: %.600s", page, rec.Code, rec.Body.String())
				}
			}
			slices.Sort(durs)
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(durs[len(durs)*95/100].Microseconds())/1000, "p95_ms")
		})
	}
}
