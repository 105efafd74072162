package console_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestBrowserSignInAndToday: in a real Chromium, an admin signs in with the
// first-run key, lands on Today (signals with links), switches language,
// and signs out; each page passes axe-core and the 1280×800 layout check.
func TestBrowserSignInAndToday(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	b := e.browser(t)
	b.run(chromedp.Navigate(e.srv.URL + "/"))
	var loc string
	b.run(chromedp.WaitVisible(`#key`, chromedp.ByQuery), chromedp.Location(&loc))
	if !strings.Contains(loc, "/signin") {
		t.Fatalf("a signed-out visit to / went to %s, not the sign-in page", loc)
	}
	b.checkPage("signin")

	// A wrong key is refused on the page, without a session.
	b.run(chromedp.SendKeys(`#key`, "hk_nope_nope", chromedp.ByQuery), chromedp.Submit(`#key`, chromedp.ByQuery),
		chromedp.WaitVisible(`.problem`, chromedp.ByQuery))

	b.signIn(e.keys[herald.RoleAdmin])
	if got := b.text("main h1"); got != "Today" {
		t.Fatalf("after sign-in the page is %q, want Today", got)
	}
	// An admin reads accounts (2 signals) but not reports; an unknown-state
	// action would be listed; each signal links to where it is fixed.
	var links []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll(".signal a")].map(a => a.getAttribute("href"))`, &links))
	if len(links) < 4 {
		t.Errorf("Today shows %d signals (%v), want the actions and accounts ones", len(links), links)
	}
	b.checkPage("today")

	// The language switch: the same page in Russian.
	b.run(chromedp.Click(`a[hreflang="ru"]`, chromedp.ByQuery), chromedp.WaitVisible(`html[lang="ru"]`, chromedp.ByQuery))
	if got := b.text("main h1"); got != "Сегодня" {
		t.Errorf("Russian Today title = %q", got)
	}
	b.checkPage("today-ru")
	b.run(chromedp.Click(`a[hreflang="en"]`, chromedp.ByQuery), chromedp.WaitVisible(`html[lang="en"]`, chromedp.ByQuery))

	// Sign out: back to the sign-in page, and / asks to sign in again.
	b.run(chromedp.Click(`header form button`, chromedp.ByQuery), chromedp.WaitVisible(`#key`, chromedp.ByQuery))
	b.run(chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(`#key`, chromedp.ByQuery))
}

// TestSessionSecurity: cookie flags, CSP, CSRF, forged and revoked
// sessions, idle timeout — from the browser's side over real HTTP.
func TestSessionSecurity(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	c := e.client()

	// The CSP of every console response; no inline script in any page.
	res, page := c.get("/signin")
	if got := res.Header.Get("Content-Security-Policy"); got != console.CSP {
		t.Errorf("CSP = %q", got)
	}
	for _, want := range []string{"script-src 'self' https://telegram.org", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(console.CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<script >") {
		t.Errorf("sign-in page has an inline script")
	}

	// Cookie flags: HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP.
	csrf := hiddenCSRF.FindStringSubmatch(page)[1]
	res, _ = c.post("/signin", url.Values{"csrf": {csrf}, "key": {e.keys[herald.RoleOperator]}})
	ck := sessionCookie(t, res)
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Errorf("session cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v", ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
	}
	if strings.Contains(ck.Value, e.keys[herald.RoleOperator]) || strings.HasPrefix(ck.Value, "hk_") {
		t.Error("the session cookie carries the API key")
	}
	// The database holds only the token's hash.
	if n, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM console_sessions WHERE token_hash = '"+ck.Value+"'"); err != nil || n != 0 {
		t.Errorf("the raw session token is stored (%d, %v)", n, err)
	}
	_, home := c.get("/")
	sessCSRF := hiddenCSRF.FindStringSubmatch(home)[1]

	// A POST without the CSRF token is refused with a clear 403 and changes
	// nothing: the session still works.
	res, body := c.post("/signout", url.Values{})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not come from this console") {
		t.Errorf("CSRF-less sign-out = %d", res.StatusCode)
	}
	res, body = c.post("/signout", url.Values{"csrf": {"forged-" + sessCSRF}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out with a wrong CSRF token = %d", res.StatusCode)
	}
	if res, _ := c.get("/"); res.StatusCode != http.StatusOK {
		t.Errorf("after refused posts the session answers %d", res.StatusCode)
	}
	// The sign-in form itself needs its double-submit token.
	res, _ = e.client().post("/signin", url.Values{"key": {e.keys[herald.RoleAdmin]}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without its CSRF token = %d", res.StatusCode)
	}

	// A forged session cookie is a stranger: pages redirect to sign-in,
	// posts are refused.
	forged := e.client()
	u, _ := url.Parse(e.srv.URL)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "herald_console", Value: "forged-" + ck.Value[7:]}})
	if res, _ := forged.get("/"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/signin") {
		t.Errorf("forged cookie GET / = %d → %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := forged.post("/signout", url.Values{"csrf": {sessCSRF}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged cookie POST = %d", res.StatusCode)
	}

	// Revoking the key ends its console session on the next request.
	admin := e.client()
	admin.signIn(e.keys[herald.RoleAdmin])
	key, err := e.s.ListAPIKeys(context.Background(), e.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range key {
		if k.Principal == "operator-1" {
			if st, _ := e.apiDo("DELETE", "/v1/keys/"+k.ID, e.keys[herald.RoleAdmin], nil); st != http.StatusOK && st != http.StatusNoContent {
				t.Fatalf("revoke key = %d", st)
			}
		}
	}
	if res, _ := c.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("a session of a revoked key answers %d", res.StatusCode)
	}

	// Sign-out ends the session for good.
	if res, _ := admin.post("/signout", url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(mustGet(admin, "/"))[1]}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out = %d", res.StatusCode)
	}
	if res, _ := admin.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out / answers %d", res.StatusCode)
	}
}

func mustGet(c *client, path string) string {
	_, b := c.get(path)
	return b
}

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, ck := range res.Cookies() {
		if ck.Name == "herald_console" && ck.Value != "" {
			return ck
		}
	}
	t.Fatalf("no session cookie set (status %d)", res.StatusCode)
	return nil
}

// TestSecureCookieOverTLS: served over TLS, the session cookie is Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	tlsSrv := newTLSServer(t, e)
	jar, _ := cookiejar.New(nil)
	hc := tlsSrv.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Timeout = time.Minute
	c := &client{t: t, e: e, c: hc, url: tlsSrv.URL}
	_, page := c.get("/signin")
	res, _ := c.post("/signin", url.Values{"csrf": {hiddenCSRF.FindStringSubmatch(page)[1]}, "key": {e.keys[herald.RoleAuditor]}})
	if ck := sessionCookie(t, res); !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("over TLS: Secure=%v HttpOnly=%v SameSite=%v", ck.Secure, ck.HttpOnly, ck.SameSite)
	}
}

// TestIdleTimeout: a session unused for longer than the idle timeout ends.
func TestIdleTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := storetest.Open(t, b)
		ctx := context.Background()
		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		org, err := s.CreateOrg(ctx, "Acme", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		_, tok, err := s.CreateConsoleSession(ctx, store.ConsoleSession{Org: org.ID, Principal: "p"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(9 * time.Minute)
		if _, err := s.ConsoleSession(ctx, tok, 10*time.Minute); err != nil {
			t.Fatalf("within the idle timeout: %v", err)
		}
		now = now.Add(9 * time.Minute) // 18 min after sign-in, 9 after last use
		if _, err := s.ConsoleSession(ctx, tok, 10*time.Minute); err != nil {
			t.Fatalf("used 9 minutes ago: %v", err)
		}
		now = now.Add(11 * time.Minute)
		if _, err := s.ConsoleSession(ctx, tok, 10*time.Minute); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("idle 11 minutes: %v", err)
		}
		// Ended is ended: coming back within the timeout does not revive it.
		if _, err := s.ConsoleSession(ctx, tok, time.Hour); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("an ended session came back: %v", err)
		}
		// The absolute end holds even for a busy session.
		_, tok, _ = s.CreateConsoleSession(ctx, store.ConsoleSession{Org: org.ID, Principal: "p"}, 30*time.Minute)
		for i := 0; i < 4; i++ {
			now = now.Add(8 * time.Minute)
			_, err = s.ConsoleSession(ctx, tok, 10*time.Minute)
		}
		if herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("a session past its maximum age: %v", err)
		}
	})
}
