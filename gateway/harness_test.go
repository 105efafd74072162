package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/sandbox"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/ledger"
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

// testEvalTimeout is the decision deadline of the test engines. The race
// detector on a shared 2-core box makes a 50 ms evaluation deadline miss
// often, and a missed deadline is now a 503 rather than a decision; tests
// about the deadline force it with a slow module (TestPolicyDeadlineIsRetryable).
const testEvalTimeout = 10 * time.Second

// defaultEngine compiles the default policy bundle once per test binary.
func defaultEngine(t testing.TB) *policies.Engine {
	engineOnce.Do(func() {
		engine, engineErr = policies.Compile(context.Background(), policies.DefaultBundle(), policies.EvalTimeout(testEvalTimeout))
	})
	if engineErr != nil {
		t.Fatalf("compile default bundle: %v", engineErr)
	}
	return engine
}

// daytime is a Tuesday noon UTC: outside the default quiet hours in most
// zones, so tests that are not about quiet hours are not deferred by them.
var daytime = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is a whole Herald (store, policy engine, pipeline, worker, HTTP API
// over real HTTP) on one backend, with one organisation and keys per role.
type env struct {
	t        testing.TB
	s        *store.Store
	srv      *httptest.Server
	server   *gateway.Server // what srv serves
	sandbox  *sandbox.Connector
	worker   *delivery.Worker
	org      herald.Org
	account  herald.Account
	keys     map[string]string // role → token
	logs     *syncBuffer
	secrets  *local.Store
	vkey     string // ledger checkpoint verifier key
	authz    *access.Enforcer
	clockMu  sync.Mutex
	clockOff time.Duration
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

func newEnv(t testing.TB, b storetest.Backend) *env {
	t.Helper()
	return newEnvWith(t, b, defaultEngine(t))
}

// newEnvWith is newEnv with another policy decider.
func newEnvWith(t testing.TB, b storetest.Backend, eng gateway.Decider) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t, b), eng)
}

// newEnvOn is newEnvWith on a store the test opened itself.
func newEnvOn(t testing.TB, s *store.Store, eng gateway.Decider) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, s: s, sandbox: &sandbox.Connector{}, keys: map[string]string{}, logs: &syncBuffer{}}
	start := time.Now()
	e.s.SetClock(func() time.Time {
		e.clockMu.Lock()
		defer e.clockMu.Unlock()
		return daytime.Add(time.Since(start) + e.clockOff)
	})
	var err error
	if e.org, err = e.s.CreateOrg(ctx, "Acme", "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	if e.account, err = e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox}); err != nil {
		t.Fatal(err)
	}
	for _, role := range herald.Roles {
		_, tok, err := e.s.CreateAPIKey(ctx, e.org.ID, role+"-1", role, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.EnsureRole(ctx, e.org.ID, role+"-1", role, "test"); err != nil {
			t.Fatal(err)
		}
		e.keys[role] = tok
	}
	if e.authz, err = access.NewEnforcer(ctx, e.s); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := telemetry.New(nil)
	e.worker = delivery.New(e.s, map[string]connectors.Connector{herald.ConnectorSandbox: e.sandbox}, eng,
		delivery.Config{ID: "test-worker"}, log, m)
	pl := &gateway.Pipeline{Store: e.s, Authz: e.authz, Decider: eng, Metrics: m, Log: log}
	sec, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.secrets = sec
	skey, vkey, err := ledger.GenerateKey("herald-test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	e.vkey = vkey
	lg := &gateway.Ledger{Logs: store.NewLedgerLogs(e.s, "", signer), VerifierKeys: []string{vkey}}
	e.server = &gateway.Server{Pipeline: pl, Store: e.s, Metrics: m, Log: log, Secrets: sec, Ledger: lg,
		Sessions: &gateway.Sessions{Secrets: sec, LoginBotPath: "herald/login-bot", Now: e.s.Now}}
	e.srv = httptest.NewServer(e.server.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// newKey creates an API key whose principal holds role through a binding,
// and makes the authorizer see it at once.
func (e *env) newKey(org, principal, role string) string {
	e.t.Helper()
	ctx := context.Background()
	_, tok, err := e.s.CreateAPIKey(ctx, org, principal, role, "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.s.EnsureRole(ctx, org, principal, role, "test"); err != nil {
		e.t.Fatal(err)
	}
	if err := e.authz.Reload(ctx); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// advance moves the store's clock forward.
func (e *env) advance(d time.Duration) {
	e.clockMu.Lock()
	e.clockOff += d
	e.clockMu.Unlock()
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// do sends a request; body may be nil, a []byte (sent raw) or a value (sent as JSON).
func (e *env) do(method, path, token string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
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
	r := response{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// deliverAll runs the worker until no due job is left.
func (e *env) deliverAll() {
	e.t.Helper()
	for i := 0; i < 20; i++ {
		n, err := e.worker.RunOnce(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("the queue does not drain")
}

// counts is a snapshot of everything a request could change.
type counts struct{ actions, contacts, accounts, ledger, jobs, keys int }

func (e *env) counts() counts {
	e.t.Helper()
	ctx := context.Background()
	var c counts
	for _, q := range []struct {
		dst *int
		sql string
	}{
		{&c.actions, "SELECT count(*) FROM actions"}, {&c.contacts, "SELECT count(*) FROM contacts"},
		{&c.accounts, "SELECT count(*) FROM accounts"}, {&c.ledger, "SELECT count(*) FROM ledger_entries"},
		{&c.jobs, "SELECT count(*) FROM jobs"}, {&c.keys, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"},
	} {
		n, err := store.CountForTest(ctx, e.s, q.sql)
		if err != nil {
			e.t.Fatal(err)
		}
		*q.dst = n
	}
	return c
}

func (e *env) sendReq(target, purpose, text string) map[string]any {
	return map[string]any{"kind": "send_message", "account": e.account.ID, "target": target, "purpose": purpose, "text": text}
}
