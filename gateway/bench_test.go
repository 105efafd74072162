package gateway_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkSubmit measures the submit path end to end: HTTP request →
// authenticate → authorize → render → policy decision → committed
// transaction (action, transitions, ledger entries, delivery job) → response.
func BenchmarkSubmit(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			e := newEnv(b, backend)
			op := e.keys[herald.RoleOperator]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := e.do("POST", "/v1/actions", op, e.sendReq(fmt.Sprintf("-100%d", i), "transactional", "Your order has shipped"))
				if r.status != http.StatusCreated {
					b.Fatalf("submit = %d %s", r.status, r.raw)
				}
			}
		})
	}
}
