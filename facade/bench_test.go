package facade_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// The facade's cost over calling Telegram directly, same payload, on
// SQLite (sendMessage on PostgreSQL too). Each benchmark reports p50 and p99 of the facade call and of the
// direct call to the fake Telegram, and their difference ("added").
//
//   - getMe: a forwarded call (token check, secret read, forward).
//   - sendMessage: a governed call through the whole pipeline (render,
//     policy, ledger, commit), the delivery worker's send, and the wait.
//
// Run: go test ./facade/ -run '^$' -bench Facade -benchtime 300x

func BenchmarkFacadeGetMe(b *testing.B) {
	e := newEnv(b, storetest.SQLite, envOpts{unlimited: true})
	tok := e.facadeToken("bench-bot", herald.RoleOperator, herald.PurposeTransactional, "")
	measure(b, "facade", func(int) { call(b, e.srv.URL+"/bot"+tok+"/getMe", `{}`) },
		func(int) { call(b, e.fake.URL()+"/bot"+e.botTok+"/getMe", `{}`) })
}

func BenchmarkFacadeSendMessage(b *testing.B) {
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) { benchSend(b, be) })
	}
}

func benchSend(b *testing.B, be storetest.Backend) {
	e := newEnv(b, be, envOpts{unlimited: true})
	tok := e.facadeToken("bench-bot", herald.RoleOperator, herald.PurposeTransactional, "")
	const chats = 200
	rows := []map[string]any{}
	for i := 0; i < chats; i++ {
		rows = append(rows, map[string]any{"chat_id": fmt.Sprint(900000 + i), "purpose": "transactional",
			"legal_basis": "contract", "source": "orders"})
	}
	if r := e.do("POST", "/v1/contacts:import", e.officer, rows); r.status != http.StatusOK {
		b.Fatalf("import: %d %s", r.status, r.raw)
	}
	// The default policy paces a bot at 25 sends a second (send_at in the
	// next second): a legitimate deferral, but this measures what Herald
	// adds, not the policy's pacing.
	if r := e.do("PUT", "/v1/policies/params", e.officer, map[string]any{"overrides": map[string]any{
		"frequency": map[string]any{"bot_per_second": 1_000_000}}}); r.status != http.StatusOK {
		b.Fatalf("params: %d %s", r.status, r.raw)
	}
	body := func(i int) string {
		// A distinct text per call: identical calls are answered from
		// the first one's action, which would flatter the figures.
		return fmt.Sprintf(`{"chat_id":%d,"text":"order %d shipped"}`, 900000+(i%chats+chats)%chats, i)
	}
	measure(b, "facade", func(i int) { call(b, e.srv.URL+"/bot"+tok+"/sendMessage", body(i)) },
		func(i int) { call(b, e.fake.URL()+"/bot"+e.botTok+"/sendMessage", body(i+1_000_000)) })
}

func call(b *testing.B, url, body string) {
	res, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(res.Body)
		b.Fatalf("%s: %d %s", strings.Split(url, "/bot")[0], res.StatusCode, raw)
	}
}

// measure times facade and direct calls interleaved (so both see the same
// load) and reports their percentiles.
func measure(b *testing.B, label string, facade, direct func(i int)) {
	for i := 0; i < 5; i++ { // warm connections and caches
		facade(-1 - i)
		direct(-1 - i)
	}
	f := make([]time.Duration, 0, b.N)
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		facade(i)
		t1 := time.Now()
		direct(i)
		f, d = append(f, t1.Sub(t0)), append(d, time.Since(t1))
	}
	b.StopTimer()
	p := func(xs []time.Duration, q float64) float64 {
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		return float64(xs[int(q*float64(len(xs)-1))].Microseconds()) / 1000
	}
	fp50, fp99, dp50, dp99 := p(f, 0.50), p(f, 0.99), p(d, 0.50), p(d, 0.99)
	b.ReportMetric(fp50, label+"-p50-ms")
	b.ReportMetric(fp99, label+"-p99-ms")
	b.ReportMetric(dp50, "direct-p50-ms")
	b.ReportMetric(dp99, "direct-p99-ms")
	b.ReportMetric(fp50-dp50, "added-p50-ms")
	b.ReportMetric(fp99-dp99, "added-p99-ms")
}

// BenchmarkPipelineSendMessage is the same governed send made through the
// native API (POST /v1/actions, then GET until delivered, polled as the
// facade polls), beside the facade's figures: the difference is what the
// facade itself adds to the pipeline and the delivery.
func BenchmarkPipelineSendMessage(b *testing.B) {
	e := newEnv(b, storetest.SQLite, envOpts{unlimited: true})
	e.facadeToken("bench-bot", herald.RoleOperator, herald.PurposeTransactional, "") // binds bench-bot to operator
	_, key, err := e.s.CreateAPIKey(context.Background(), e.org.ID, "bench-bot", herald.RoleOperator, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	const chats = 200
	rows := []map[string]any{}
	for i := 0; i < chats; i++ {
		rows = append(rows, map[string]any{"chat_id": fmt.Sprint(900000 + i), "purpose": "transactional",
			"legal_basis": "contract", "source": "orders"})
	}
	if r := e.do("POST", "/v1/contacts:import", e.officer, rows); r.status != http.StatusOK {
		b.Fatalf("import: %d %s", r.status, r.raw)
	}
	send := func(i int) {
		r := e.do("POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": e.account.ID,
			"target": fmt.Sprint(900000 + (i%chats+chats)%chats), "purpose": "transactional", "text": fmt.Sprintf("order %d shipped", i)})
		if r.status != http.StatusCreated {
			b.Fatalf("submit: %d %s", r.status, r.raw)
		}
		id := r.str("action", "id")
		poll := 500 * time.Microsecond
		for r.str("action", "status") != "delivered" {
			time.Sleep(poll)
			poll = min(poll*2, 4*time.Millisecond)
			r = e.do("GET", "/v1/actions/"+id, key, nil)
		}
	}
	measure(b, "api", send, func(i int) {
		call(b, e.fake.URL()+"/bot"+e.botTok+"/sendMessage", fmt.Sprintf(`{"chat_id":%d,"text":"x %d"}`, 900000+(i%chats+chats)%chats, i))
	})
}
