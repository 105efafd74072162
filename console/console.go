// Package console is Herald's web console (issue 17): server-rendered pages
// for operators, approvers, compliance officers, auditors and admins,
// served by `herald serve` on the API's own listener.
//
// The console is a client of Herald's public API, in process: every page
// calls the gateway's http.Handler (the one serving /v1) with the signed-in
// person's credential as the Bearer token and renders the JSON. Casbin and
// every rule therefore decide for the console exactly as for any API
// caller, and the console cannot drift from the API.
//
// Invariants:
//   - The console MUST NOT read or write domain data except through the API
//     handler. Its only own state is the sign-in record (store.ConsoleSession).
//   - A control is shown only when /v1/me/permissions lists its verb; the
//     route it posts to MUST still be decided by the API (forged posts are
//     refused there, not here).
//   - Every non-GET request MUST carry the session's CSRF token (form field
//     "csrf" or header X-CSRF-Token); a refusal changes nothing.
//   - The raw API key used to sign in MUST NOT be stored (not in a cookie,
//     not in the database, not in logs); the browser holds only a random
//     session token, the database only its SHA-256.
//   - No inline script: every response carries the CSP below, and the JS is
//     static files under static/.
package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every console response: scripts
// only from this origin (and Telegram's login widget), no inline script,
// no plugins, no framing.
const CSP = "default-src 'self'; script-src 'self' https://telegram.org; frame-src https://oauth.telegram.org; " +
	"img-src 'self' data: https://t.me https://telegram.org; style-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Defaults.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	cookieSession      = "herald_console"
	cookieLoginCSRF    = "herald_login_csrf"
	cookieLang         = "herald_lang"
)

// Config is what the console needs from the composition root.
type Config struct {
	// API is the gateway's handler (the one serving /v1): every page calls it.
	API http.Handler
	// Store holds console sessions (and nothing else is read from it).
	Store *store.Store
	// Sessions issues the short-lived JWT each console request calls the API with.
	Sessions *gateway.Sessions
	Log      *slog.Logger
	// IdleTimeout ends a session not used for this long; MaxAge ends any
	// session this long after sign-in.
	IdleTimeout, MaxAge time.Duration
	// TrustForwardedProto marks cookies Secure when a proxy says
	// X-Forwarded-Proto: https (only set it behind a proxy that sets it).
	TrustForwardedProto bool
	// LoginBot is the Telegram login bot's username. When empty, the
	// console reads it from the secret at LoginBotPath (key "username",
	// next to the "token" the gateway checks logins with); with neither,
	// the widget is hidden.
	LoginBot     string
	Secrets      secrets.Store
	LoginBotPath string
}

// Console serves the pages.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	cat   catalogue
}

// New builds the console: parses the templates and the string catalogues.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("console: API, Store and Sessions are required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux()}
	var err error
	if c.cat, err = loadCatalogue(); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// parsePages parses each page template together with the layout: page
// "x" is templates/x.html, defining "content" (and optionally "title").
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	base := template.New("layout").Funcs(funcs)
	if base, err = base.ParseFS(templateFS, "templates/layout.html"); err != nil {
		return nil, fmt.Errorf("console: parse layout: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("console: parse %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// Mount serves the console's routes and everything else with next (the
// API, the facade): the API's own 404s stay problem+json.
func Mount(next http.Handler, c *Console) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") && !strings.HasPrefix(r.URL.Path, "/bot") {
			if _, pattern := c.mux.Handler(r); pattern != "" {
				c.mux.ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves the console's routes only (tests, or a dedicated listener).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// securityHeaders are set on every console response.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

func (c *Console) static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
}

// apiResult is one in-process API answer.
type apiResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// Problem is an API error (RFC 9457) as the console shows it.
type Problem struct {
	Status int               `json:"status"`
	Code   string            `json:"code"`
	Title  string            `json:"title"`
	Detail string            `json:"detail"`
	Errors []json.RawMessage `json:"errors,omitempty"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Code, p.Detail) }

// recorder is a minimal http.ResponseWriter capturing an in-process answer.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}
func (r *recorder) Flush() {}

// callAPI calls the gateway in process as bearer (a session JWT or, at
// sign-in, the key being checked). from is the browser's request: its
// remote address and request id carry over, so rate limits and logs see
// the person, not the console.
func (c *Console) callAPI(ctx context.Context, from *http.Request, bearer, method, path string, body any) (apiResult, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{}, fmt.Errorf("console: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return apiResult{}, fmt.Errorf("console: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if from != nil {
		req.RemoteAddr = from.RemoteAddr
		if id := from.Header.Get("X-Request-ID"); id != "" {
			req.Header.Set("X-Request-ID", id)
		}
	}
	rec := &recorder{h: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return apiResult{Status: rec.status, Header: rec.h, Body: rec.buf.Bytes()}, nil
}

// decode reads a 2xx answer into out, or returns the API's problem.
func (res apiResult) decode(out any) error {
	if res.Status >= 300 {
		p := &Problem{Status: res.Status}
		_ = json.Unmarshal(res.Body, p)
		if p.Code == "" {
			p.Code = strconv.Itoa(res.Status)
		}
		return p
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.Body, out); err != nil {
		return fmt.Errorf("console: decode API answer: %w", err)
	}
	return nil
}

// loginBot is the Telegram login bot's username, or "" when Telegram
// sign-in is not configured.
func (c *Console) loginBot(ctx context.Context) string {
	if c.cfg.LoginBot != "" || c.cfg.Secrets == nil || c.cfg.LoginBotPath == "" {
		return c.cfg.LoginBot
	}
	sec, err := c.cfg.Secrets.Get(ctx, c.cfg.LoginBotPath)
	if err != nil || sec.Data["token"] == "" {
		return ""
	}
	return strings.TrimPrefix(sec.Data["username"], "@")
}
