package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

// discard is a span exporter that drops everything: the benchmark measures
// Herald's cost of tracing, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkSubmitTracing compares the submit path (HTTP → pipeline →
// commit, SQLite) with tracing off (the default: no-op provider, handler
// not wrapped) and on (every request sampled, batched export), as
// cmd/herald wires it.
func BenchmarkSubmitTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on-sampled-100pct"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, storetest.SQLite)
			h := e.srv.Config.Handler
			if on {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(discard{}))
				otel.SetTracerProvider(tp)
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()); otel.SetTracerProvider(noop.NewTracerProvider()) })
				h = telemetry.TraceHTTP(h)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			op := e.keys[herald.RoleOperator]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				body, _ := json.Marshal(e.sendReq(fmt.Sprintf("-100%d", i), "transactional", "Your order has shipped"))
				req, _ := http.NewRequest("POST", srv.URL+"/v1/actions", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+op)
				req.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					b.Fatalf("submit = %d", res.StatusCode)
				}
			}
		})
	}
}
