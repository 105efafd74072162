package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// A compliance officer finds a contact, reads its consent history with
// source and time, records a data-subject request and an opt-out the
// person phoned in; the history and the API show both.
func TestBrowserContacts(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	id := e.importContact("6161", "Europe/Paris", "support", "contract")
	e.importContact("6262", "Europe/Berlin", "marketing", "consent")
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleComplianceOfficer])
	b.run(chromedp.Navigate(e.srv.URL+"/contacts"), chromedp.WaitVisible(`#contacts`, chromedp.ByQuery))
	if got := b.text("#contacts tbody"); !strings.Contains(got, "6161") || !strings.Contains(got, "6262") {
		t.Fatalf("contacts %q", got)
	}
	b.checkPage("contacts")
	b.run(chromedp.SetValue(`#consent`, "marketing", chromedp.ByQuery), chromedp.Click(`form[role=search] button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#contacts`, chromedp.ByQuery))
	if got := b.text("#contacts tbody"); strings.Contains(got, "6161") || !strings.Contains(got, "6262") {
		t.Fatalf("search by consent for marketing shows %q", got)
	}

	b.run(chromedp.Navigate(e.srv.URL+"/contacts/"+id), chromedp.WaitVisible(`#history`, chromedp.ByQuery))
	if got := b.text("#history tbody"); !strings.Contains(got, "support") || !strings.Contains(got, "contract") || !strings.Contains(got, "console test") {
		t.Fatalf("history %q", got)
	}
	b.run(chromedp.SetValue(`#kind`, "access", chromedp.ByQuery), chromedp.Click(`#new-request button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#requests`, chromedp.ByQuery))
	if got := b.text("#requests tbody"); !strings.Contains(got, "access") || !strings.Contains(got, "open") {
		t.Fatalf("requests %q", got)
	}
	b.run(chromedp.SendKeys(`#source`, "phone call to support", chromedp.ByQuery), chromedp.Click(`#opt-out button`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	if got := b.text("#opted-out"); !strings.Contains(got, "phone call to support") {
		t.Fatalf("opted out %q", got)
	}
	b.checkPage("contact")
	_, ct := e.apiDo(http.MethodGet, "/v1/contacts/"+id, e.keys[herald.RoleAuditor], nil)
	if ct["opted_out_at"] == nil || ct["opt_out_source"] != "phone call to support" {
		t.Fatalf("API contact after opt-out: %v", ct)
	}
}

// An operator may record an opt-out but not subject requests: the page
// offers no request form and a forged one is refused by the API.
func TestContactsOperatorForgedRequest(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	id := e.importContact("6363", "Europe/Paris", "support", "contract")
	c := e.client()
	csrf := c.signIn(e.keys[herald.RoleOperator])
	res, page := c.get("/contacts/" + id)
	if res.StatusCode != http.StatusOK || strings.Contains(page, `id="new-request"`) || !strings.Contains(page, `id="opt-out"`) {
		t.Fatalf("operator's contact page = %d:\n%s", res.StatusCode, page)
	}
	if res, _ := c.post("/contacts/"+id+"/subject-requests", url.Values{"csrf": {csrf}, "kind": {"erasure"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("forged subject request = %d", res.StatusCode)
	}
	if _, out := e.apiDo(http.MethodGet, "/v1/subject-requests", e.keys[herald.RoleComplianceOfficer], nil); len(out["requests"].([]any)) != 0 {
		t.Fatalf("a refused post recorded a request: %v", out["requests"])
	}
	if res, _ := c.get("/contacts/not-a-contact"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown contact = %d", res.StatusCode)
	}
}
