package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// importContact imports one contact through the API as the compliance
// officer and returns its id.
func (e *env) importContact(chat, tz, purpose, basis string) string {
	e.t.Helper()
	st, out := e.apiDo(http.MethodPost, "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer],
		[]map[string]any{{"chat_id": chat, "timezone": tz, "purpose": purpose, "legal_basis": basis, "source": "console test"}})
	if st != http.StatusOK && st != http.StatusCreated {
		e.t.Fatalf("import contact = %d %v", st, out)
	}
	st, out = e.apiDo(http.MethodGet, "/v1/contacts?chat_id="+url.QueryEscape(chat), e.keys[herald.RoleComplianceOfficer], nil)
	cs, _ := out["contacts"].([]any)
	if st != http.StatusOK || len(cs) != 1 {
		e.t.Fatalf("contact %s = %d %v", chat, st, out)
	}
	return cs[0].(map[string]any)["id"].(string)
}

// actionsOf lists the organisation's actions through the API.
func (e *env) actionsOf() []map[string]any {
	e.t.Helper()
	st, out := e.apiDo(http.MethodGet, "/v1/actions?limit=100", e.keys[herald.RoleAuditor], nil)
	if st != http.StatusOK {
		e.t.Fatalf("list actions = %d %v", st, out)
	}
	var as []map[string]any
	for _, a := range out["actions"].([]any) {
		as = append(as, a.(map[string]any))
	}
	return as
}

// The clock is Tuesday 12:00 UTC: 21:00 in Tokyo, inside the default quiet
// hours (21:00–09:00). An operator composing to a Tokyo contact sees the
// deferral and its fix as they type, applies the fix, and submits.
func TestBrowserComposeQuietHours(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	contact := e.importContact("4242", "Asia/Tokyo", "support", "contract")
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleOperator])
	b.run(chromedp.Navigate(e.srv.URL+"/compose"), chromedp.WaitVisible(`#compose-form`, chromedp.ByQuery))
	if got := b.text("main h1"); got != "Compose a message" {
		t.Fatalf("title %q", got)
	}
	b.run(chromedp.SetValue(`#contact`, contact, chromedp.ByQuery),
		chromedp.SendKeys(`#text`, "Your ticket 1187 is answered: see the reply in the app.", chromedp.ByQuery),
		chromedp.WaitVisible(`#outcome`, chromedp.ByQuery))
	if got := b.text("#outcome"); !strings.Contains(got, "defer") {
		t.Fatalf("live dry run outcome %q, want a deferral", got)
	}
	if got := b.text("#reasons"); !strings.Contains(got, "quiet_hours.defer") || !strings.Contains(got, "quiet hours 21:00–09:00") {
		t.Fatalf("reasons %q", got)
	}
	if got := b.text("#fixes"); !strings.Contains(got, "move to 09:00 recipient time") {
		t.Fatalf("fixes %q", got)
	}
	if got := b.text("#preview"); !strings.Contains(got, "ticket 1187") {
		t.Fatalf("preview %q", got)
	}
	b.checkPage("compose")

	// The fix moves the send time to 09:00 in Tokyo (00:00 UTC); the dry
	// run runs again and quiet hours no longer speak.
	b.run(chromedp.Click(`button.apply-fix`, chromedp.ByQuery))
	var at string
	b.run(chromedp.Poll(`document.getElementById("schedule_at").value !== "" && !document.querySelector("#reasons")?.textContent.includes("quiet_hours")`, nil,
		chromedp.WithPollingTimeout(time.Minute)),
		chromedp.Value(`#schedule_at`, &at, chromedp.ByQuery))
	if at != "2026-03-11T00:00" {
		t.Fatalf("fix set schedule_at %q, want 2026-03-11T00:00 (09:00 Tokyo)", at)
	}

	b.run(chromedp.Click(`#submit`, chromedp.ByQuery), chromedp.WaitVisible(`#created-id`, chromedp.ByQuery))
	id := b.text("#created-id")
	as := e.actionsOf()
	if len(as) != 1 || as[0]["id"] != id || as[0]["contact"] != contact {
		t.Fatalf("actions after submit = %v, want one to contact %s with id %s", as, contact, id)
	}
	if s, _ := as[0]["schedule_at"].(string); !strings.HasPrefix(s, "2026-03-11T00:00:00") {
		t.Fatalf("submitted schedule_at %q", s)
	}
	if got := b.text(".flash"); !strings.Contains(got, "submitted") {
		t.Fatalf("flash %q", got)
	}
}

// Markup is drawn as Telegram shows it, and a refused dry run shows the
// API's field errors (a MarkdownV2 text with an unescaped reserved
// character).
func TestBrowserComposeMarkdownPreview(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	contact := e.importContact("777", "Europe/Berlin", "support", "contract")
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleOperator])
	b.run(chromedp.Navigate(e.srv.URL+"/compose"), chromedp.WaitVisible(`#compose-form`, chromedp.ByQuery),
		chromedp.SetValue(`#contact`, contact, chromedp.ByQuery),
		chromedp.SetValue(`#parse_mode`, "MarkdownV2", chromedp.ByQuery),
		chromedp.SendKeys(`#text`, "*Hello* _there_ [docs](https://example.org/a) `x<y`", chromedp.ByQuery),
		chromedp.WaitVisible(`#preview strong`, chromedp.ByQuery))
	var inner string
	b.run(chromedp.InnerHTML(`#preview`, &inner, chromedp.ByQuery))
	for _, want := range []string{"<strong>Hello</strong>", "<em>there</em>", `href="https://example.org/a"`, "<code>x&lt;y</code>"} {
		if !strings.Contains(inner, want) {
			t.Errorf("preview %q lacks %q", inner, want)
		}
	}
	b.run(chromedp.SendKeys(`#text`, " 1.5", chromedp.ByQuery), chromedp.WaitVisible(`#dryrun-problem`, chromedp.ByQuery))
	if got := b.text("#dryrun-problem"); !strings.Contains(got, "text") {
		t.Fatalf("refused dry run shows %q", got)
	}
}

// An auditor sees no compose control, and a forged post (with a valid
// session and CSRF token) is refused by the API and changes nothing.
func TestComposeAuditorRefused(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	contact := e.importContact("4243", "Asia/Tokyo", "support", "contract")
	c := e.client()
	csrf := c.signIn(e.keys[herald.RoleAuditor])
	_, home := c.get("/")
	if strings.Contains(home, `href="/compose"`) {
		t.Fatal("the auditor's navigation links to compose")
	}
	res, page := c.get("/compose")
	if res.StatusCode != http.StatusOK || strings.Contains(page, `id="compose-form"`) || !strings.Contains(page, "do not allow sending") {
		t.Fatalf("auditor's compose page = %d, shows a form or no refusal:\n%s", res.StatusCode, page)
	}
	form := url.Values{"csrf": {csrf}, "account": {e.account.ID}, "contact": {contact}, "purpose": {"support"}, "text": {"forged"}}
	if res, body := c.post("/compose", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("forged compose = %d:\n%s", res.StatusCode, body)
	}
	if res, body := c.post("/compose/preview", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("forged dry run = %d:\n%s", res.StatusCode, body)
	}
	// without the CSRF token the console refuses before the API is asked
	form.Del("csrf")
	op := e.client()
	op.signIn(e.keys[herald.RoleOperator])
	if res, _ := op.post("/compose", form); res.StatusCode != http.StatusForbidden {
		t.Fatalf("compose without CSRF = %d", res.StatusCode)
	}
	if as := e.actionsOf(); len(as) != 0 {
		t.Fatalf("refused posts made actions: %v", as)
	}
	// bad bytes are bad input, never a 500, and make nothing
	opCSRF := op.signIn(e.keys[herald.RoleOperator])
	bad := url.Values{"csrf": {opCSRF}, "account": {e.account.ID}, "contact": {contact}, "purpose": {"support"}, "text": {"a\x00b"}}
	if res, body := op.post("/compose", bad); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("compose with NUL = %d:\n%s", res.StatusCode, body)
	}
	if as := e.actionsOf(); len(as) != 0 {
		t.Fatalf("bad input made actions: %v", as)
	}
}

// The campaign variant: a draft to two Tokyo contacts starting at 22:00
// Tokyo; its dry run predicts both deferred by quiet hours, with a
// completion time; scheduling it goes through the API.
func TestBrowserComposeCampaign(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	e.importContact("8181", "Asia/Tokyo", "support", "contract")
	e.importContact("8282", "Asia/Tokyo", "support", "contract")
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleOperator])
	b.run(chromedp.Navigate(e.srv.URL+"/compose/campaigns"), chromedp.WaitVisible(`#campaign-form`, chromedp.ByQuery),
		chromedp.SendKeys(`#name`, "Maintenance notice", chromedp.ByQuery),
		chromedp.Evaluate(`for (const o of document.querySelectorAll("#contacts option")) o.selected = true`, nil),
		chromedp.SendKeys(`#text`, "Maintenance tonight.", chromedp.ByQuery),
		chromedp.SetValue(`#schedule_at`, "2026-03-10T13:00", chromedp.ByQuery))
	b.checkPage("compose-campaign")
	b.run(chromedp.Submit(`#campaign-form`, chromedp.ByQuery), chromedp.WaitVisible(`#prediction`, chromedp.ByQuery))
	if got := b.text("#recipients"); got != "2" {
		t.Fatalf("recipients %q", got)
	}
	if got := b.text("#outcomes"); !strings.Contains(got, "defer") || !strings.Contains(got, "2") {
		t.Fatalf("outcomes %q", got)
	}
	if got := b.text("#by-rule"); !strings.Contains(got, "quiet_hours.defer") {
		t.Fatalf("by rule %q", got)
	}
	if got := b.text("#completion"); !strings.HasPrefix(got, "2026-03-11") {
		t.Fatalf("completion %q, want the morning after (09:00 Tokyo)", got)
	}
	b.checkPage("campaign-dryrun")
	b.run(chromedp.Click(`#schedule`, chromedp.ByQuery), chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	_, out := e.apiDo(http.MethodGet, "/v1/campaigns", e.keys[herald.RoleOperator], nil)
	cs := out["campaigns"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["status"] != "scheduled" {
		t.Fatalf("campaigns after scheduling: %v", cs)
	}
	if as := e.actionsOf(); len(as) > 2 {
		t.Fatalf("scheduling made %d actions for 2 recipients", len(as))
	}
}
