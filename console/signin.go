package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

// routes registers every console route. A new page adds its line here
// (see docs/console.md, "Adding a page").
func (c *Console) routes() {
	c.mux.Handle("GET /static/", c.static())
	c.mux.HandleFunc("GET /signin", c.signinPage)
	c.mux.HandleFunc("POST /signin", c.signinKey)
	c.mux.HandleFunc("GET /signin/telegram", c.signinTelegram)
	c.mux.HandleFunc("GET /lang", c.switchLang)
	c.page("POST /signout", c.signout)
	c.page("GET /{$}", c.today)
	c.page("GET /actions", c.actionsPage)
	c.page("GET /actions/{id}", c.actionPage)
	c.page("POST /actions/{id}/cancel", c.cancelAction)
	c.page("GET /ledger/proof", c.ledgerProof)
	c.page("GET /approvals", c.approvalsPage)
	c.page("POST /approvals/{id}/{verb}", c.vote)
	c.page("GET /audit", c.auditPage)
	c.page("GET /audit/consistency", c.consistencyPage)
	c.page("GET /audit/export", c.auditExport)
	c.page("GET /audit/dpia", c.dpiaDownload)
	c.page("GET /admin", c.adminPage)
	c.page("POST /admin/keys", c.createKey)
	c.page("POST /admin/keys/{id}/revoke", c.revokeKey)
	c.page("GET /compose", c.composePage)
	c.page("POST /compose", c.composeSubmit)
	c.page("POST /compose/preview", c.composePreview)
	c.page("GET /compose/campaigns", c.campaignComposePage)
	c.page("POST /compose/campaigns", c.campaignCreate)
	c.page("GET /compose/campaigns/{id}", c.campaignDryRunPage)
	c.page("POST /compose/campaigns/{id}/schedule", c.campaignSchedule)
	c.page("GET /policies", c.policiesPage)
	c.page("POST /policies/upload", c.policiesUpload)
	c.page("GET /policies/params", c.policyParamsPage)
	c.page("POST /policies/params", c.policyParams)
	c.page("GET /policies/{version}", c.policyVersionPage)
	c.page("POST /policies/{version}/impact", c.policyImpact)
	c.page("POST /policies/{version}/activate", c.policyActivate)
	c.page("GET /contacts", c.contactsPage)
	c.page("GET /contacts/{id}", c.contactPage)
	c.page("POST /contacts/{id}/opt-out", c.contactOptOut)
	c.page("POST /contacts/{id}/subject-requests", c.contactSubjectRequest)
	c.page("GET /calendar", c.calendarPage)
	c.page("POST /calendar/actions/{id}/reschedule", c.calendarReschedule)
}

type signinData struct {
	CSRF     string
	Next     string
	LoginBot string
	Org      string
	Failed   bool
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signinPage shows the key form and, when a login bot is configured, the
// Telegram Login Widget. Sign-in is protected from login CSRF by a
// double-submit token (cookie + hidden field): there is no session yet.
func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.showSignin(w, r, http.StatusOK, false)
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, status int, failed bool) {
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	tok := randomToken()
	c.setCookie(w, r, cookieLoginCSRF, tok, c.cfg.IdleTimeout)
	lang := c.lang(r)
	d := signinData{CSRF: tok, Next: localPath(r.FormValue("next")), LoginBot: c.loginBot(r.Context()), Org: r.FormValue("org"), Failed: failed}
	if d.Next == "/signin" {
		d.Next = "/"
	}
	req := &Request{Request: r, W: w, Lang: lang, c: c}
	c.render(w, status, "signin", View{Request: req, Title: "signin.title", Data: d})
}

// signinKey checks an API key against GET /v1/me and, if it works, starts
// a console session for the key's principal. The key itself is forgotten.
func (c *Console) signinKey(w http.ResponseWriter, r *http.Request) {
	lang := c.lang(r)
	ck, err := r.Cookie(cookieLoginCSRF)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.cfg.Log.Warn("console: request without a valid CSRF token refused", "method", r.Method, "path", r.URL.Path)
		c.fail(w, r, lang, http.StatusForbidden, "error.csrf")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" || len(key) > 200 || !utf8.ValidString(key) || strings.ContainsAny(key, "\x00\r\n") {
		c.showSignin(w, r, http.StatusUnauthorized, true)
		return
	}
	res, err := c.callAPI(r.Context(), r, key, http.MethodGet, "/v1/me", nil)
	if err != nil {
		c.fail(w, r, lang, http.StatusInternalServerError, "error.internal")
		return
	}
	var me struct {
		Principal string `json:"principal"`
		Org       struct {
			ID string `json:"id"`
		} `json:"org"`
		KeyID string `json:"key_id"`
	}
	if err := res.decode(&me); err != nil {
		switch res.Status {
		case http.StatusUnauthorized:
			c.showSignin(w, r, http.StatusUnauthorized, true)
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", res.Header.Get("Retry-After"))
			c.fail(w, r, lang, http.StatusTooManyRequests, "error.too_many")
		case http.StatusForbidden:
			c.fail(w, r, lang, http.StatusForbidden, "error.forbidden")
		default:
			c.fail(w, r, lang, http.StatusServiceUnavailable, "error.unavailable")
		}
		return
	}
	c.start(w, r, store.ConsoleSession{Org: me.Org.ID, Principal: me.Principal, KeyID: me.KeyID}, localPath(r.PostFormValue("next")), false)
}

// signinTelegram is the Login Widget's redirect target
// (/signin/telegram?org=ORG&id=…&hash=…): the fields go to
// POST /v1/auth/telegram, which checks the signature, the age and the
// person's invitation exactly as for any API client.
func (c *Console) signinTelegram(w http.ResponseWriter, r *http.Request) {
	lang := c.lang(r)
	q := r.URL.Query()
	org := q.Get("org")
	fields := map[string]string{}
	for k, v := range q {
		if k != "org" && len(v) == 1 {
			fields[k] = v[0]
		}
	}
	res, err := c.callAPI(r.Context(), r, "", http.MethodPost, "/v1/auth/telegram?org="+url.QueryEscape(org), fields)
	if err != nil {
		c.fail(w, r, lang, http.StatusInternalServerError, "error.internal")
		return
	}
	var out struct {
		Principal string `json:"principal"`
	}
	if err := res.decode(&out); err != nil {
		if res.Status == http.StatusServiceUnavailable {
			c.fail(w, r, lang, http.StatusServiceUnavailable, "error.unavailable")
			return
		}
		c.showSignin(w, r, http.StatusUnauthorized, true)
		return
	}
	person := ""
	if p, err := c.cfg.Store.PersonByPrincipal(r.Context(), org, out.Principal); err == nil {
		person = p.ID
	} else if !herald.IsNotFound(err) {
		c.fail(w, r, lang, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	// The widget arrives by a cross-site redirect, where a SameSite=Strict
	// cookie is not sent: the session starts here and a same-site page
	// (meta refresh, no script) continues to the console.
	c.start(w, r, store.ConsoleSession{Org: org, Principal: out.Principal, Person: person}, "/", true)
}

func (c *Console) start(w http.ResponseWriter, r *http.Request, cs store.ConsoleSession, next string, viaPage bool) {
	lang := c.lang(r)
	_, tok, err := c.cfg.Store.CreateConsoleSession(r.Context(), cs, c.cfg.MaxAge)
	if err != nil {
		c.cfg.Log.Error("console: session could not be stored", "err", err)
		c.fail(w, r, lang, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	c.setCookie(w, r, cookieSession, tok, c.cfg.MaxAge)
	http.SetCookie(w, &http.Cookie{Name: cookieLoginCSRF, Value: "", Path: "/", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	c.cfg.Log.Info("console: signed in", "org", cs.Org, "via_key", cs.KeyID != "")
	if viaPage {
		req := &Request{Request: r, W: w, Lang: lang, c: c}
		c.render(w, http.StatusOK, "continue", View{Request: req, Title: "signin.title", Data: next})
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signout(r *Request) {
	if ck, err := r.Cookie(cookieSession); err == nil {
		if err := r.c.cfg.Store.DeleteConsoleSession(r.Context(), ck.Value); err != nil {
			r.Fail(err)
			return
		}
	}
	r.c.clearSession(r.W, r.Request)
	http.Redirect(r.W, r.Request, "/signin", http.StatusSeeOther)
}

// switchLang sets the language cookie (a preference, not a credential)
// and returns to the page it was chosen on.
func (c *Console) switchLang(w http.ResponseWriter, r *http.Request) {
	l := r.URL.Query().Get("to")
	if c.cat[l] != nil {
		http.SetCookie(w, &http.Cookie{Name: cookieLang, Value: l, Path: "/", HttpOnly: true, Secure: c.secure(r),
			SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600})
	}
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}
