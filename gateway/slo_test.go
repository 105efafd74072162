package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/sandbox"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/slo"
	"github.com/heraldhq/herald/store/storetest"
)

// scripted answers like Telegram would, by target: "fail" targets are
// refused for good, "lost" ones break after the request was written; every
// other target is recorded by a sandbox.
type scripted struct {
	sandbox.Connector
	fail, lost map[string]bool
}

func (s *scripted) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	switch {
	case s.fail[d.ChatID]:
		return connectors.Receipt{}, &connectors.PermanentError{Code: "chat_not_found", Err: errors.New("Bad Request: chat not found")}
	case s.lost[d.ChatID]:
		return connectors.Receipt{}, &connectors.UnknownError{Err: errors.New("connection reset after the request was written")}
	}
	return s.Connector.Send(ctx, d)
}

// TestSLOReportMatchesHandComputedFigures seeds a history through the API —
// actions scheduled so that each is delivered a known time after it was
// due, one refused for good, one lost mid-send, one delivered before the
// window and one of another organisation — and checks GET /v1/slo against
// figures computed by hand, on both stores.
func TestSLOReportMatchesHandComputedFigures(t *testing.T) {
	// Exact figures need every decision to be taken: a generous evaluation
	// deadline keeps a loaded machine (race detector) from failing one closed.
	eng, err := policies.Compile(context.Background(), policies.DefaultBundle(), policies.EvalTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnvWith(t, b, eng)
		ctx := context.Background()
		var (
			mu  sync.Mutex
			now = daytime.Add(-30 * time.Minute)
		)
		e.s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		setClock := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }

		// A second, Bot API account, and a second organisation.
		bot, err := e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "bot b", Kind: herald.AccountBot, Connector: herald.ConnectorBotAPI})
		if err != nil {
			t.Fatal(err)
		}
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherAcc, err := e.s.CreateAccount(ctx, herald.Account{Org: other.ID, Name: "other bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		otherKey := e.newKey(other.ID, "other-operator", herald.RoleOperator)
		otherAuditor := e.newKey(other.ID, "other-auditor", herald.RoleAuditor)

		conn := &scripted{fail: map[string]bool{"-1009000000002": true}, lost: map[string]bool{"-1009000000003": true}}
		w := delivery.New(e.s, map[string]connectors.Connector{herald.ConnectorSandbox: conn, herald.ConnectorBotAPI: conn},
			eng, delivery.Config{ID: "slo-worker"}, nil, nil)
		drain := func() {
			t.Helper()
			for range 10 {
				n, err := w.RunOnce(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					return
				}
			}
			t.Fatal("the queue does not drain")
		}
		submit := func(key, account, target string, due time.Time) {
			t.Helper()
			req := map[string]any{"kind": "send_message", "account": account, "target": target, "purpose": "transactional",
				"text": "slo seed", "schedule_at": due.Format(time.RFC3339Nano)}
			r := e.do("POST", "/v1/actions", key, req)
			if r.status != 201 || r.str("action", "status") != "scheduled" {
				t.Fatalf("submit to %s: %d %s", target, r.status, r.raw)
			}
		}
		op := e.keys[herald.RoleOperator]

		// Before the window: delivered 1 s after due at T0-30m+1s.
		submit(op, e.account.ID, "-1001000000099", now.Add(time.Second))
		setClock(daytime.Add(-30*time.Minute + 2*time.Second))
		drain()

		// In the window [T0, T0+1h): everything delivered at T0+20s.
		setClock(daytime)
		deliverAt := daytime.Add(20 * time.Second)
		for i := range 10 { // sandbox account: latencies 1 s … 10 s
			submit(op, e.account.ID, "-100100000000"+string(rune('0'+i)), deliverAt.Add(-time.Duration(i+1)*time.Second))
		}
		submit(op, bot.ID, "-1009000000000", deliverAt.Add(-500*time.Millisecond)) // 0.5 s
		submit(op, bot.ID, "-1009000000001", deliverAt.Add(-4*time.Second))        // 4 s
		submit(op, bot.ID, "-1009000000002", deliverAt.Add(-time.Second))          // refused: failed
		submit(op, bot.ID, "-1009000000003", deliverAt.Add(-time.Second))          // lost: unknown
		submit(otherKey, otherAcc.ID, "-1001000000000", deliverAt.Add(-15*time.Second))
		setClock(deliverAt)
		drain()
		setClock(daytime.Add(time.Hour))

		q := url.Values{"from": {daytime.Format(time.RFC3339)}, "to": {daytime.Add(time.Hour).Format(time.RFC3339)}}
		r := e.do("GET", "/v1/slo?"+q.Encode(), e.keys[herald.RoleAuditor], nil)
		if r.status != 200 {
			t.Fatalf("GET /v1/slo: %d %s", r.status, r.raw)
		}
		var rep struct {
			Org         string      `json:"org"`
			Overall     slo.Figures `json:"overall"`
			ByAccount   []slo.Figures
			ByConnector []slo.Figures
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(r.raw, &raw); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(r.raw, &rep)
		_ = json.Unmarshal(raw["by_account"], &rep.ByAccount)
		_ = json.Unmarshal(raw["by_connector"], &rep.ByConnector)

		// Hand-computed. Sandbox account: latencies 1…10 s; nearest rank
		// p50 = 5th = 5 s, p95 = p99 = 10th = 10 s; 5 of 10 slower than
		// 5 s → latency budget left 1 − 0.5/0.05 = −9; no errors.
		// Bot API account: delivered 0.5 s and 4 s (p50 = 0.5, p95 = p99 = 4),
		// 1 failed + 1 unknown of 4 → error ratio 0.5, budget 1 − 0.5/0.005 = −99.
		// Overall: 12 latencies 0.5,1,2,3,4,4,5,…,10: p50 = 6th = 4 s,
		// p95 = p99 = 12th = 10 s; slow 5/12 → 1 − (5/12)/0.05 = −7.333333;
		// errors 2/14 → 1 − (2/14)/0.005 = −27.571429.
		sandboxFig := want{delivered: 10, p50: 5, p95: 10, p99: 10, slow: 5, latencyLeft: -9, errorRatio: 0, errorLeft: 1, latencyMet: false, errorsMet: true}
		botFig := want{delivered: 2, failed: 1, unknown: 1, p50: 0.5, p95: 4, p99: 4, slow: 0, latencyLeft: 1, errorRatio: 0.5, errorLeft: -99, latencyMet: true, errorsMet: false}
		check(t, "overall", rep.Overall, want{delivered: 12, failed: 1, unknown: 1, p50: 4, p95: 10, p99: 10, slow: 5,
			latencyLeft: -7.333333, errorRatio: 2.0 / 14, errorLeft: -27.571429})
		if rep.Org != e.org.ID || len(rep.ByAccount) != 2 || len(rep.ByConnector) != 2 {
			t.Fatalf("report of org %s has %d accounts, %d connectors: %s", rep.Org, len(rep.ByAccount), len(rep.ByConnector), r.raw)
		}
		for _, f := range rep.ByAccount {
			switch f.Account {
			case e.account.ID:
				check(t, "sandbox account", f, sandboxFig)
			case bot.ID:
				check(t, "bot api account", f, botFig)
			default:
				t.Errorf("report names account %q of another organisation", f.Account)
			}
		}
		for _, f := range rep.ByConnector {
			switch f.Connector {
			case herald.ConnectorSandbox:
				check(t, "sandbox connector", f, sandboxFig)
			case herald.ConnectorBotAPI:
				check(t, "botapi connector", f, botFig)
			}
		}

		// The other organisation sees only its own action: 15 s late.
		r = e.do("GET", "/v1/slo?"+q.Encode(), otherAuditor, nil)
		var otherRep struct{ Overall slo.Figures }
		if err := json.Unmarshal(r.raw, &otherRep); err != nil || r.status != 200 {
			t.Fatalf("other org: %d %s", r.status, r.raw)
		}
		check(t, "other org", otherRep.Overall, want{delivered: 1, p50: 15, p95: 15, p99: 15, slow: 1, latencyLeft: -19, errorLeft: 1})

		// The window before T0 holds only the early action.
		early := url.Values{"from": {daytime.Add(-time.Hour).Format(time.RFC3339)}, "to": {daytime.Format(time.RFC3339)}}
		r = e.do("GET", "/v1/slo?"+early.Encode(), e.keys[herald.RoleAuditor], nil)
		var earlyRep struct{ Overall slo.Figures }
		_ = json.Unmarshal(r.raw, &earlyRep)
		check(t, "earlier window", earlyRep.Overall, want{delivered: 1, p50: 1, p95: 1, p99: 1, latencyLeft: 1, errorLeft: 1})

		// Operators cannot read reports.
		if r := e.do("GET", "/v1/slo", op, nil); r.status != 403 || r.str("code") != "forbidden" {
			t.Fatalf("operator: %d %s", r.status, r.raw)
		}
	})
}

type want struct {
	delivered, failed, unknown int
	p50, p95, p99              float64
	slow                       int
	latencyLeft                float64
	errorRatio, errorLeft      float64
	latencyMet, errorsMet      bool
}

func check(t *testing.T, what string, f slo.Figures, w want) {
	t.Helper()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	ptr := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	if f.Delivered != w.delivered || f.Failed != w.failed || f.Unknown != w.unknown || f.Slow != w.slow ||
		!near(ptr(f.P50), w.p50) || !near(ptr(f.P95), w.p95) || !near(ptr(f.P99), w.p99) ||
		!near(f.LatencyBudgetLeft, w.latencyLeft) || !near(f.ErrorRatio, w.errorRatio) || !near(f.ErrorBudgetLeft, w.errorLeft) ||
		f.LatencyMet != (w.latencyLeft >= 0) || f.ErrorsMet != (w.errorLeft >= 0) {
		t.Errorf("%s: got delivered=%d failed=%d unknown=%d slow=%d p50=%v p95=%v p99=%v latency_left=%v error_ratio=%v error_left=%v met=%v/%v;\nwant %+v",
			what, f.Delivered, f.Failed, f.Unknown, f.Slow, ptr(f.P50), ptr(f.P95), ptr(f.P99), f.LatencyBudgetLeft, f.ErrorRatio, f.ErrorBudgetLeft,
			f.LatencyMet, f.ErrorsMet, w)
	}
}

// TestSLOReportRejectsBadWindows: bad input is a typed 422 naming the field.
func TestSLOReportRejectsBadWindows(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	key := e.keys[herald.RoleComplianceOfficer]
	for _, tc := range []struct{ query, field string }{
		{"from=yesterday", "from"},
		{"from=2026-03-10T00:00:00Z&to=2026-03-09T00:00:00Z", "from"},
		{"from=2025-01-01T00:00:00Z&to=2026-03-10T00:00:00Z", "from"},
	} {
		r := e.do("GET", "/v1/slo?"+tc.query, key, nil)
		errs, _ := r.body["errors"].([]any)
		first, _ := func() (map[string]any, bool) {
			if len(errs) == 0 {
				return nil, false
			}
			m, ok := errs[0].(map[string]any)
			return m, ok
		}()
		if r.status != 422 || r.str("code") != "validation_failed" || first["field"] != tc.field {
			t.Errorf("%s: %d %s, want 422 validation_failed on %s", tc.query, r.status, r.raw, tc.field)
		}
	}
	// Bytes that are not text are refused before the handler, for every route.
	for _, query := range []string{"to=%00", "from=%FF%FE"} {
		if r := e.do("GET", "/v1/slo?"+query, key, nil); r.status != 400 || r.str("code") != "invalid_encoding" {
			t.Errorf("%s: %d %s, want 400 invalid_encoding", query, r.status, r.raw)
		}
	}
}
