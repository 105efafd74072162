package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkConcurrentSubmitsBefore503 measures how many concurrent submits
// this machine takes before the first 503 policy_unavailable: bursts of
// 8, 16, … 256 simultaneous submits (transactional, distinct chats, the
// default bundle under its default deadline) over real HTTP, on each store.
// It reports, per burst size, the 503s and the submits/s of the burst;
// first503_clients is the smallest burst with a 503 (0: none up to 256).
// Run: go test ./gateway -run '^$' -bench ConcurrentSubmitsBefore503 -benchtime 1x
func BenchmarkConcurrentSubmitsBefore503(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			first := 0
			for i := 0; i < b.N; i++ {
				// The production deadline (policies.DefaultEvalTimeout), not
				// the tests' generous one.
				eng, err := policies.Compile(context.Background(), policies.DefaultBundle())
				if err != nil {
					b.Fatal(err)
				}
				e := newEnvWith(b, backend, eng)
				op := e.keys[herald.RoleOperator]
				chat := 0
				for _, clients := range []int{8, 16, 32, 64, 128, 256} {
					var (
						wg       sync.WaitGroup
						mu       sync.Mutex
						statuses = map[int]int{}
					)
					start := time.Now()
					for c := 0; c < clients; c++ {
						chat++
						wg.Add(1)
						go func(target string) {
							defer wg.Done()
							r := e.do("POST", "/v1/actions", op, e.sendReq(target, "transactional", "Your order shipped"))
							mu.Lock()
							statuses[r.status]++
							mu.Unlock()
						}(fmt.Sprintf("-100%d", 700000+chat))
					}
					wg.Wait()
					elapsed := time.Since(start)
					n503 := statuses[http.StatusServiceUnavailable]
					b.Logf("%s: %3d concurrent submits: %v in %s (%.0f submits/s), 503s: %d",
						backend, clients, statuses, elapsed.Round(time.Millisecond), float64(clients)/elapsed.Seconds(), n503)
					if n503 > 0 && first == 0 {
						first = clients
					}
					if other := clients - statuses[http.StatusCreated] - n503; other != 0 {
						b.Fatalf("%d submits answered neither 201 nor 503: %v", other, statuses)
					}
				}
			}
			b.ReportMetric(float64(first), "first503_clients")
		})
	}
}
