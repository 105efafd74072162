package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/console"
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

func defaultEngine(t testing.TB) *policies.Engine {
	engineOnce.Do(func() {
		engine, engineErr = policies.Compile(context.Background(), policies.DefaultBundle(), policies.EvalTimeout(10*time.Second))
	})
	if engineErr != nil {
		t.Fatalf("compile default bundle: %v", engineErr)
	}
	return engine
}

// daytime is a Tuesday noon UTC, outside the default quiet hours.
var daytime = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// env is `herald serve` in miniature: store, policy engine, pipeline,
// gateway API and console over real HTTP, one organisation, a key per role.
type env struct {
	t       testing.TB
	s       *store.Store
	srv     *httptest.Server
	api     *gateway.Server
	console *console.Console
	org     herald.Org
	account herald.Account
	keys    map[string]string // role → API key
	authz   *access.Enforcer
	vkey    string
	secrets *local.Store
}

func newEnv(t testing.TB, b storetest.Backend) *env {
	t.Helper()
	return newEnvWith(t, b, defaultEngine(t))
}

// newEnvWith is newEnv with another policy decider.
func newEnvWith(t testing.TB, b storetest.Backend, eng gateway.Decider) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, s: storetest.Open(t, b), keys: map[string]string{}}
	start := time.Now()
	e.s.SetClock(func() time.Time { return daytime.Add(time.Since(start)) })
	var err error
	if e.org, err = e.s.CreateOrg(ctx, "Acme", "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	if e.account, err = e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "news bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox}); err != nil {
		t.Fatal(err)
	}
	for _, role := range herald.Roles {
		e.keys[role] = e.newKey(role+"-1", role)
	}
	if e.authz, err = access.NewEnforcer(ctx, e.s); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	m := telemetry.New(nil)
	pl := &gateway.Pipeline{Store: e.s, Authz: e.authz, Decider: eng, Metrics: m, Log: log}
	sec, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A key whose base64 part holds a "+": the browser's verifier must not
	// split the published key on it (it once did).
	var skey, vkey string
	for i := 0; i < 200 && strings.Count(vkey, "+") < 3; i++ {
		if skey, vkey, err = ledger.GenerateKey("herald-test/ledger"); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	e.vkey = vkey
	e.secrets = sec
	lg := &gateway.Ledger{Logs: store.NewLedgerLogs(e.s, "", signer), VerifierKeys: []string{vkey}}
	e.api = &gateway.Server{Pipeline: pl, Store: e.s, Metrics: m, Log: log, Secrets: sec, Ledger: lg,
		Sessions: &gateway.Sessions{Secrets: sec, LoginBotPath: "herald/login-bot", Now: e.s.Now}}
	api := e.api.Handler()
	if e.console, err = console.New(console.Config{API: api, Store: e.s, Sessions: e.api.Sessions, Log: log,
		Secrets: sec, LoginBotPath: "herald/login-bot"}); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(console.Mount(api, e.console))
	t.Cleanup(e.srv.Close)
	return e
}

// newKey creates an API key whose principal holds role through a binding.
func (e *env) newKey(principal, role string) string {
	e.t.Helper()
	ctx := context.Background()
	_, tok, err := e.s.CreateAPIKey(ctx, e.org.ID, principal, role, "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.s.EnsureRole(ctx, e.org.ID, principal, role, "test"); err != nil {
		e.t.Fatal(err)
	}
	if e.authz != nil {
		if err := e.authz.Reload(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	return tok
}

// apiDo calls the public API with a key and decodes the JSON answer.
func (e *env) apiDo(method, path, key string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// client is a browser-less console user: a cookie jar and no redirects
// followed, to assert on exactly what the server answered.
type client struct {
	t   testing.TB
	e   *env
	c   *http.Client
	url string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, e: e, url: e.srv.URL, c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	res, err := c.c.Get(c.url + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	res, err := c.c.PostForm(c.url+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// signIn signs in with key through the sign-in form and returns the
// session's CSRF token (read from a page's form).
func (c *client) signIn(key string) string {
	c.t.Helper()
	_, page := c.get("/signin")
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("sign-in page has no CSRF field:\n%s", page)
	}
	res, body := c.post("/signin", url.Values{"csrf": {m[1]}, "key": {key}, "next": {"/"}})
	if res.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in = %d:\n%s", res.StatusCode, body)
	}
	_, page = c.get("/")
	m = hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("home page has no CSRF field:\n%s", page)
	}
	return m[1]
}

type runtimeEvaluate = runtime.EvaluateParams

// browser is a headless Chromium at 1280×800 driven over CDP.
type browser struct {
	t   *testing.T
	ctx context.Context
	e   *env
	dir string // screenshots
}

// chromiumPath finds Debian's chromium. scripts/test installs it; a
// machine without it fails these tests rather than passing them unrun.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed (apt-get install chromium, or run ./scripts/test, which installs it)")
	return ""
}

func (e *env) browser(t *testing.T) *browser {
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	// A loaded 2-core CI box with the race detector: generous, not tight.
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	if err := chromedp.Run(ctx, emulation.SetDeviceMetricsOverride(1280, 800, 1, false)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir := os.Getenv("HERALD_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "console-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, e: e, dir: dir}
}

func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// signIn signs in through the form with key.
func (b *browser) signIn(key string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.e.srv.URL+"/signin"),
		chromedp.WaitVisible(`#key`, chromedp.ByQuery),
		chromedp.SendKeys(`#key`, key, chromedp.ByQuery),
		chromedp.Submit(`#key`, chromedp.ByQuery),
		// The sign-out form exists only once signed in (the sign-in page
		// has a header nav too: waiting for that raced the redirect).
		chromedp.WaitVisible(`form[action="/signout"]`, chromedp.ByQuery))
}

// checkPage runs the checks every page must pass: axe-core reports no
// violations, nothing overflows horizontally at 1280×800; and it writes a
// screenshot named name.
func (b *browser) checkPage(name string) {
	b.t.Helper()
	var shot []byte
	b.run(chromedp.FullScreenshot(&shot, 100))
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	var overflow []string
	b.run(chromedp.Evaluate(`(() => {
		const w = document.documentElement.clientWidth, out = [];
		if (document.documentElement.scrollWidth > w) out.push("document scrolls horizontally: " + document.documentElement.scrollWidth + " > " + w);
		for (const el of document.querySelectorAll("body *")) {
			const r = el.getBoundingClientRect();
			if (r.width > 0 && r.right > w + 1) out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + el.className : "") + " right=" + Math.round(r.right));
		}
		return out;
	})()`, &overflow))
	if len(overflow) > 0 {
		b.t.Errorf("%s: overflows at 1280×800: %v", name, overflow)
	}
	axe, err := os.ReadFile("testdata/axe.min.js")
	if err != nil {
		b.t.Fatal(err)
	}
	var result struct {
		Passes     int `json:"passes"`
		Violations []struct {
			ID    string `json:"id"`
			Help  string `json:"help"`
			Nodes []struct {
				Target []any `json:"target"`
			} `json:"nodes"`
		} `json:"violations"`
	}
	b.run(chromedp.Evaluate(string(axe), nil),
		chromedp.Evaluate(`axe.run(document).then(r => ({passes: r.passes.length, violations: r.violations}))`, &result,
			func(p *runtimeEvaluate) *runtimeEvaluate { return p.WithAwaitPromise(true) }))
	if result.Passes == 0 {
		b.t.Fatalf("%s: axe-core checked nothing", name)
	}
	violations := result.Violations
	for _, v := range violations {
		var targets []string
		for _, n := range v.Nodes {
			targets = append(targets, fmt.Sprint(n.Target...))
		}
		b.t.Errorf("%s: axe-core: %s (%s) at %v", name, v.ID, v.Help, targets)
	}
}

// text returns the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery, chromedp.NodeVisible))
	return s
}

// newTLSServer serves the same console and API over TLS.
func newTLSServer(t *testing.T, e *env) *httptest.Server {
	srv := httptest.NewTLSServer(console.Mount(e.api.Handler(), e.console))
	t.Cleanup(srv.Close)
	return srv
}
