package console

import (
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

// Me is the signed-in person as /v1/me and /v1/me/permissions describe them.
type Me struct {
	Principal string `json:"principal"`
	Org       struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"org"`
	Roles       []string            `json:"roles"`
	Permissions map[string][]string `json:"permissions"`
}

// Request is one signed-in console request: the page handler's view of
// the person, their language, and the API.
type Request struct {
	*http.Request
	W       http.ResponseWriter
	Session store.ConsoleSession
	Me      Me
	Lang    string
	c       *Console
	bearer  string // the session JWT for this request
}

// handler is a page handler; it renders or redirects through r.
type handler func(r *Request)

// page registers a signed-in page. Non-GET requests must carry the CSRF
// token; every request must carry a live session.
func (c *Console) page(pattern string, h handler) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, hr *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		lang := c.lang(hr)
		ck, err := hr.Cookie(cookieSession)
		if err != nil {
			c.signedOut(w, hr, lang)
			return
		}
		ctx := hr.Context()
		sess, err := c.cfg.Store.ConsoleSession(ctx, ck.Value, c.cfg.IdleTimeout)
		if err != nil {
			if herald.ErrorCode(err) == herald.CodeUnauthenticated {
				c.clearSession(w, hr)
				c.signedOut(w, hr, lang)
				return
			}
			c.fail(w, hr, lang, http.StatusServiceUnavailable, "error.unavailable")
			return
		}
		if hr.Method != http.MethodGet && hr.Method != http.MethodHead && !csrfOK(hr, sess.CSRF) {
			c.cfg.Log.Warn("console: request without a valid CSRF token refused", "method", hr.Method, "path", hr.URL.Path)
			c.fail(w, hr, lang, http.StatusForbidden, "error.csrf")
			return
		}
		tok, _, err := c.cfg.Sessions.IssueFor(ctx, sess.Org, sess.Principal, sess.Person)
		if err != nil {
			c.fail(w, hr, lang, http.StatusServiceUnavailable, "error.unavailable")
			return
		}
		r := &Request{Request: hr, W: w, Session: sess, Lang: lang, c: c, bearer: tok}
		if err := r.API(http.MethodGet, "/v1/me", nil, &r.Me); err != nil {
			r.Fail(err)
			return
		}
		if err := r.API(http.MethodGet, "/v1/me/permissions", nil, &r.Me); err != nil {
			r.Fail(err)
			return
		}
		h(r)
	})
}

// csrfOK compares the request's token (form field or htmx header) with the session's.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// signedOut answers a request without a live session: pages redirect to
// the sign-in page (back here afterwards); posts are refused.
func (c *Console) signedOut(w http.ResponseWriter, r *http.Request, lang string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.fail(w, r, lang, http.StatusUnauthorized, "error.signed_out")
		return
	}
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", "/signin")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// API calls the public API as the signed-in person and decodes a 2xx JSON
// answer into out (nil to discard). A refusal is returned as *Problem.
func (r *Request) API(method, path string, body, out any) error {
	res, err := r.c.callAPI(r.Context(), r.Request, r.bearer, method, path, body)
	if err != nil {
		return err
	}
	return res.decode(out)
}

// Can reports whether the person may use verb on resource ("actions",
// "approvals", "stages/approver", …), per /v1/me/permissions.
func (r *Request) Can(resource, verb string) bool {
	return slices.Contains(r.Me.Permissions[resource], verb)
}

// T returns the string key in the request's language.
func (r *Request) T(key string) string { return r.c.cat.text(r.Lang, key) }

// CSRF is the session's CSRF token, for forms.
func (r *Request) CSRF() string { return r.Session.CSRF }

// HasRole reports whether the person holds role.
func (r *Request) HasRole(role string) bool { return slices.Contains(r.Me.Roles, role) }

// View is what a page template sees: the request (T, Can, CSRF, Me, Lang)
// and the page's own data.
type View struct {
	*Request
	Title  string // catalogue key of the page title
	Active string // path of the navigation item to highlight
	Data   any
	Flash  string // catalogue key of a message to show above the content
	Err    *Problem
}

// Render writes page name with data.
func (r *Request) Render(status int, name, title, active string, data any) {
	flash := r.URL.Query().Get("done")
	if _, ok := r.c.cat[Languages[0]][flash]; !ok {
		flash = "" // only the console's own messages, never text from the URL
	}
	r.c.render(r.W, status, name, View{Request: r, Title: title, Active: active, Data: data, Flash: flash})
}

// RenderProblem writes page name with an API problem shown above it.
func (r *Request) RenderProblem(status int, name, title, active string, data any, p *Problem) {
	r.c.render(r.W, status, name, View{Request: r, Title: title, Active: active, Data: data, Err: p})
}

// Redirect sends the browser (or htmx) to path after a successful post.
func (r *Request) Redirect(path string) {
	if r.Header.Get("HX-Request") == "true" {
		r.W.Header().Set("HX-Redirect", path)
		r.W.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(r.W, r.Request, path, http.StatusSeeOther)
}

// Fail renders an API error as a page: 401 ends the console session (the
// person was revoked), 403 says so plainly, 503 asks to retry.
func (r *Request) Fail(err error) {
	var p *Problem
	if !errors.As(err, &p) {
		r.c.cfg.Log.Error("console: page failed", "path", r.URL.Path, "err", err)
		r.c.fail(r.W, r.Request, r.Lang, http.StatusInternalServerError, "error.internal")
		return
	}
	switch p.Status {
	case http.StatusUnauthorized:
		if ck, err := r.Cookie(cookieSession); err == nil {
			_ = r.c.cfg.Store.DeleteConsoleSession(r.Context(), ck.Value)
		}
		r.c.clearSession(r.W, r.Request)
		r.c.signedOut(r.W, r.Request, r.Lang)
	case http.StatusServiceUnavailable:
		r.W.Header().Set("Retry-After", "5")
		r.c.render(r.W, p.Status, "error", View{Request: r, Title: "error.title", Err: p, Data: "error.unavailable"})
	default:
		r.c.render(r.W, p.Status, "error", View{Request: r, Title: "error.title", Err: p, Data: errorKey(p.Status)})
	}
}

func errorKey(status int) string {
	switch status {
	case http.StatusForbidden:
		return "error.forbidden"
	case http.StatusNotFound:
		return "error.not_found"
	case http.StatusConflict:
		return "error.conflict"
	}
	return "error.rejected"
}

// fail renders an error page outside a signed-in request.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, lang string, status int, key string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	req := &Request{Request: r, W: w, Lang: lang, c: c}
	c.render(w, status, "error", View{Request: req, Title: "error.title", Data: key})
}

func (c *Console) render(w http.ResponseWriter, status int, name string, v View) {
	t := c.pages[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	securityHeaders(w.Header())
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.cfg.Log.Error("console: render failed", "page", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// secure reports whether cookies must be Secure: served over TLS, or
// behind a proxy trusted to say so.
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || (c.cfg.TrustForwardedProto && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge / time.Second)})
}

func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieSession, Value: "", Path: "/", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// localPath keeps a post-sign-in destination on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

var funcs = template.FuncMap{
	"attrs": attrsJSON,
	"join":  strings.Join,
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case string:
			if tt, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return tt.UTC().Format("2006-01-02 15:04:05Z")
			}
			return v
		}
		return ""
	},
	"short": func(s string) string {
		if len(s) > 13 {
			return s[:8] + "…" + s[len(s)-4:]
		}
		return s
	},
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
}

// asProblem reports whether err is an API problem, setting *p.
func asProblem(err error, p **Problem) bool { return errors.As(err, p) }
