package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/facade"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/secrets/local"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

func TestMain(m *testing.M) { storetest.Main(m) }

var (
	engineOnce sync.Once
	engine     *policies.Engine
	engineErr  error
)

func defaultEngine(t testing.TB) *policies.Engine {
	engineOnce.Do(func() { // The box is shared and -race is slow: the facade is under test here,
		// not the engine's deadline, so it gets room.
		engine, engineErr = policies.Compile(context.Background(), policies.DefaultBundle(), policies.EvalTimeout(5*time.Second))
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

// daytime is a Tuesday, 13:00 in Berlin: outside the default quiet hours.
var daytime = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is a whole Herald over real HTTP: store, Casbin, OPA, pipeline, a
// running delivery worker with the Bot API connector (rate limited) talking
// to the limit-enforcing fake Telegram, the API and the facade mounted
// together as cmd/herald does.
type env struct {
	t       testing.TB
	s       *store.Store
	fake    *telegramtest.Server
	srv     *httptest.Server
	org     herald.Org
	account herald.Account
	admin   string // admin API key
	officer string // compliance officer API key (contacts)
	botTok  string // the real bot token, in the secret store
	logs    *syncBuffer
	// Herald's own webhook for the account (userSays sets it once).
	hookPath, hookSecret string
}

type envOpts struct {
	start time.Time
	wait  time.Duration
	// unlimited lifts Telegram's limits (fake and limiter) for benchmarks.
	unlimited bool
}

func newEnv(t testing.TB, b storetest.Backend, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	if o.start.IsZero() {
		o.start = daytime
	}
	e := &env{t: t, s: storetest.Open(t, b), botTok: "4242:facade-test-token-aaaaaaaaaaaaaaaaaaaaaa", logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.fake = telegramtest.New(telegramtest.Options{Tokens: []string{e.botTok}, NoLimits: o.unlimited})
	t.Cleanup(e.fake.Close)
	began := time.Now()
	// Benchmarks send hundreds of messages a minute: their account is 90
	// days old, so the default policy's new-account + burst review band
	// (a legitimate hold) does not turn the benchmark into approvals.
	var shift time.Duration
	if o.unlimited {
		shift = -90 * 24 * time.Hour
	}
	e.s.SetClock(func() time.Time { return o.start.Add(shift + time.Since(began)) })
	var err error
	if e.org, err = e.s.CreateOrg(ctx, "Acme", "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	sec, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sec.Put(ctx, "bots/acme", map[string]string{botapi.SecretTokenKey: e.botTok}, 0); err != nil {
		t.Fatal(err)
	}
	if e.account, err = e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "shop bot", Kind: herald.AccountBot,
		Connector: herald.ConnectorBotAPI, SecretRef: "bots/acme"}); err != nil {
		t.Fatal(err)
	}
	shift = 0 // nothing else reads the clock yet
	if _, e.admin, err = e.s.CreateAPIKey(ctx, e.org.ID, "ada", herald.RoleAdmin, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.EnsureRole(ctx, e.org.ID, "ada", herald.RoleAdmin, "test"); err != nil {
		t.Fatal(err)
	}
	if _, e.officer, err = e.s.CreateAPIKey(ctx, e.org.ID, "cora", herald.RoleComplianceOfficer, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.EnsureRole(ctx, e.org.ID, "cora", herald.RoleComplianceOfficer, "test"); err != nil {
		t.Fatal(err)
	}
	authz, err := access.NewEnforcer(ctx, e.s)
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.New(nil)
	tokens := botapi.SecretTokens{Store: sec}
	bot, err := botapi.New(botapi.Config{BaseURL: e.fake.URL(), Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	eng := defaultEngine(t)
	limits := ratelimit.Config{}
	if o.unlimited {
		limits = ratelimit.Config{BotPerSecond: 1e6, BotBurst: 1e6, ChatPerSecond: 1e6, ChatBurst: 1e6}
	}
	waiters := &facade.Waiters{}
	w := delivery.New(e.s, map[string]connectors.Connector{herald.ConnectorBotAPI: ratelimit.Wrap(bot, ratelimit.New(limits))},
		eng, delivery.Config{ID: "facade-worker", Poll: 50 * time.Millisecond, Done: waiters.Done}, log, m)
	pl := &gateway.Pipeline{Store: e.s, Authz: authz, Decider: eng, Metrics: m, Notify: w.Notify, Log: log}
	in := &facade.Inbound{Store: e.s, Log: log, AllowHTTP: true, Poll: 200 * time.Millisecond}
	api := (&gateway.Server{Pipeline: pl, Store: e.s, Metrics: m, Secrets: sec, Log: log,
		Inbound: gateway.Inbound{Keywords: gateway.DefaultOptOutKeywords, Reply: gateway.DefaultOptOutReply, Queued: in.Queued}}).Handler()
	calls, err := facade.NewMetrics(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	f := &facade.Handler{Store: e.s, Pipeline: pl, Tokens: tokens, BaseURL: e.fake.URL(), Calls: calls, Log: log,
		Config: facade.Config{Wait: o.wait, MaxBody: 1 << 20}, Inbound: in, Waiters: waiters}
	e.srv = httptest.NewServer(facade.Mount(api, f))
	t.Cleanup(e.srv.Close)
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	inDone := make(chan struct{})
	go func() { defer close(inDone); _ = in.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done; <-inDone })
	return e
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertLogsHide fails when Herald's logs carry any of secrets (tokens,
// message text, chat ids).
func (e *env) assertLogsHide(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	if logs == "" {
		e.t.Fatal("no logs were written: the check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("the logs contain %q", s)
		}
	}
}

type reply struct {
	status int
	raw    []byte
	body   map[string]any
}

func (r reply) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

func (r reply) num(path ...string) float64 {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	n, _ := v.(float64)
	return n
}

// do calls Herald; body nil, []byte (raw, with contentType) or a value (JSON).
func (e *env) do(method, path, key string, body any, headers ...string) reply {
	e.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// facadeToken issues a facade token through the API.
func (e *env) facadeToken(principal, role, purpose, deferral string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/accounts/"+e.account.ID+"/facade-tokens", e.admin,
		map[string]any{"principal": principal, "role": role, "purpose": purpose, "deferral": deferral})
	if r.status != http.StatusCreated || r.str("token") == "" {
		e.t.Fatalf("create facade token: %d %s", r.status, r.raw)
	}
	return r.str("token")
}

// contact imports a contact with consent for purposes, through the API.
func (e *env) contact(chat string, purposes ...string) string {
	e.t.Helper()
	rows := []map[string]any{}
	for _, p := range purposes {
		rows = append(rows, map[string]any{"chat_id": chat, "purpose": p, "legal_basis": "consent",
			"source": "signup form", "consented_at": e.s.Now().Add(-24 * time.Hour).Format(time.RFC3339)})
	}
	r := e.do("POST", "/v1/contacts:import", e.officer, rows)
	if r.status >= 300 {
		e.t.Fatalf("import contact: %d %s", r.status, r.raw)
	}
	c, err := e.s.ContactByChat(context.Background(), e.org.ID, chat)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

// ledgerKinds counts the org's ledger entries by kind.
func (e *env) ledgerKinds() map[string]int {
	e.t.Helper()
	es, err := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, x := range es {
		out[x.Kind]++
	}
	return out
}

// bot calls the facade as a bot would: JSON POST to /bot<token>/<method>.
func (e *env) bot(token, method string, params map[string]any, headers ...string) reply {
	e.t.Helper()
	return e.do("POST", "/bot"+token+"/"+method, "", params, headers...)
}
