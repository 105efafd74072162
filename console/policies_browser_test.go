package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store/storetest"
)

// withPolicies gives e the policy lifecycle `herald serve` has: the
// registry decides (so an activated version decides the next action) and
// /v1/policies… is served. The harness's env has neither, so the API,
// console and server are rebuilt around them.
func withPolicies(t *testing.T, e *env) {
	t.Helper()
	reg := policies.NewRegistry(defaultEngine(t), e.s)
	if err := reg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.api.Policies = &gateway.Policies{Store: e.s, Registry: reg}
	e.api.Pipeline.Decider = reg
	api := e.api.Handler()
	c, err := console.New(console.Config{API: api, Store: e.s, Sessions: e.api.Sessions})
	if err != nil {
		t.Fatal(err)
	}
	e.console = c
	e.srv.Close()
	e.srv = httptest.NewServer(console.Mount(api, c))
	t.Cleanup(e.srv.Close)
}

// submitFor sends one action through the API as the operator.
func (e *env) submitFor(contact, purpose, text string) map[string]any {
	e.t.Helper()
	st, out := e.apiDo(http.MethodPost, "/v1/actions", e.keys[herald.RoleOperator],
		map[string]any{"kind": "send_message", "account": e.account.ID, "target": contact, "purpose": purpose, "text": text})
	if st != http.StatusCreated {
		e.t.Fatalf("submit = %d %v", st, out)
	}
	return out
}

// A compliance officer moves quiet hours to start at 11:00: the bundle's
// tests fail, the version is stored "failed", the page offers no
// activation and the API refuses a forged one; the impact preview shows
// the recent noon decisions that would now be deferred. A syntax error is
// shown at file:line. An unchanged bundle passes and is activated.
func TestBrowserPolicies(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	withPolicies(t, e)
	contact := e.importContact("5151", "Europe/Berlin", "support", "contract")
	for _, text := range []string{"Your order shipped.", "Your ticket was answered.", "Your invoice is ready."} {
		if out := e.submitFor(contact, "support", text); out["decision"].(map[string]any)["outcome"] != "allow" {
			t.Fatalf("baseline decision %v, want allow", out["decision"])
		}
	}
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleComplianceOfficer])
	b.run(chromedp.Navigate(e.srv.URL+"/policies"), chromedp.WaitVisible(`#editor`, chromedp.ByQuery))
	if got := b.text("#active"); !strings.Contains(got, "built-in default") {
		t.Fatalf("active %q", got)
	}
	b.checkPage("policies")

	var data string
	b.run(chromedp.Value(`#content`, &data, chromedp.ByQuery))
	if !strings.Contains(data, `"start": "21:00"`) {
		t.Fatalf("editor does not hold data.json:\n%.300s", data)
	}
	b.run(chromedp.SetValue(`#content`, strings.Replace(data, `"start": "21:00"`, `"start": "11:00"`, 1), chromedp.ByQuery),
		chromedp.Click(`#upload`, chromedp.ByQuery),
		chromedp.WaitVisible(`#tests-summary`, chromedp.ByQuery))
	if got := b.text("#version-status"); got != "failed" {
		t.Fatalf("status %q, want failed", got)
	}
	if got := b.text("#failures"); !strings.Contains(got, "quiet_hours") || !strings.Contains(got, "_test.rego:") {
		t.Fatalf("failures %q", got)
	}
	var activates int
	b.run(chromedp.Evaluate(`document.querySelectorAll("#activate").length`, &activates))
	if activates != 0 || !strings.Contains(b.text("#not-activatable"), "cannot be activated") {
		t.Fatal("a version whose tests failed offers activation")
	}
	b.checkPage("policy-version")

	b.run(chromedp.Click(`#impact`, chromedp.ByQuery), chromedp.WaitVisible(`#impact-report`, chromedp.ByQuery))
	if got := b.text("#impact-changed"); got != "3" {
		t.Fatalf("impact changed %q, want 3", got)
	}
	if got := b.text("#transitions tbody tr.changed"); !strings.Contains(got, "allow") || !strings.Contains(got, "defer") || !strings.Contains(got, "3") {
		t.Fatalf("changed transition %q, want allow → defer ×3", got)
	}
	b.checkPage("policy-impact")

	// forged activation with a valid session and token: the API refuses
	c := e.client()
	csrf := c.signIn(e.keys[herald.RoleComplianceOfficer])
	if res, body := c.post("/policies/1/activate", url.Values{"csrf": {csrf}}); res.StatusCode != http.StatusConflict {
		t.Fatalf("activate a failed version = %d:\n%s", res.StatusCode, body)
	}
	if _, l := e.apiDo(http.MethodGet, "/v1/policies", e.keys[herald.RoleComplianceOfficer], nil); l["active"] != nil {
		t.Fatalf("a failed version became active: %v", l["active"])
	}

	// a syntax error: not stored, shown at file:line
	b.run(chromedp.Navigate(e.srv.URL+"/policies?base=default&file=quiet_hours.rego"), chromedp.WaitVisible(`#editor`, chromedp.ByQuery),
		chromedp.SetValue(`#content`, "package herald.quiet_hours\n\nimport data.herald.lib\n\nbroken := {\n", chromedp.ByQuery),
		chromedp.Click(`#upload`, chromedp.ByQuery),
		chromedp.WaitVisible(`#problems`, chromedp.ByQuery))
	if got := b.text("#problems"); !strings.Contains(got, "quiet_hours.rego:") {
		t.Fatalf("problems %q, want quiet_hours.rego:<line>", got)
	}
	var kept string
	b.run(chromedp.Value(`#content`, &kept, chromedp.ByQuery))
	if !strings.Contains(kept, "broken") {
		t.Fatalf("the editor lost the text: %q", kept)
	}

	// the unchanged bundle passes its tests and is activated
	b.run(chromedp.Navigate(e.srv.URL+"/policies?base=default&file=data.json"), chromedp.WaitVisible(`#editor`, chromedp.ByQuery),
		chromedp.Click(`#upload`, chromedp.ByQuery),
		chromedp.WaitVisible(`#tests-summary`, chromedp.ByQuery))
	if got := b.text("#version-status"); got != "candidate" {
		t.Fatalf("unchanged bundle status %q, want candidate", got)
	}
	b.run(chromedp.Click(`#activate`, chromedp.ByQuery), chromedp.WaitVisible(`#versions`, chromedp.ByQuery))
	if got := b.text("#active"); !strings.Contains(got, "v2") {
		t.Fatalf("active after activation %q", got)
	}
}

// Parameters: a number field that is not a number is an error on the form
// and saves nothing; a valid value becomes an override the API reports.
// An auditor reads the versions but gets no editor, and a forged upload is
// refused by the API.
func TestPolicyParamsAndAuditor(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	withPolicies(t, e)
	co := e.client()
	csrf := co.signIn(e.keys[herald.RoleComplianceOfficer])
	res, page := co.get("/policies/params")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `name="p.risk/deny_at"`) || !strings.Contains(page, `name="p.frequency/actions/frequency.cold_daily"`) {
		t.Fatalf("params page = %d:\n%s", res.StatusCode, page)
	}
	form := url.Values{"csrf": {csrf}, "p.risk/deny_at": {"lots"}, "p.quiet_hours/enabled": {"true"}}
	if res, body := co.post("/policies/params", form); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Must be a number") {
		t.Fatalf("bad number = %d:\n%s", res.StatusCode, body)
	}
	if _, p := e.apiDo(http.MethodGet, "/v1/policies/params", e.keys[herald.RoleComplianceOfficer], nil); len(p["overrides"].(map[string]any)) != 0 {
		t.Fatalf("a refused form saved overrides: %v", p["overrides"])
	}
	form.Set("p.risk/deny_at", "80")
	form.Set("p.quiet_hours/exempt_purposes", "transactional, service")
	if res, body := co.post("/policies/params", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save params = %d:\n%s", res.StatusCode, body)
	}
	_, p := e.apiDo(http.MethodGet, "/v1/policies/params", e.keys[herald.RoleComplianceOfficer], nil)
	ov := p["overrides"].(map[string]any)
	if ov["risk"].(map[string]any)["deny_at"] != 80.0 || len(ov) != 2 {
		t.Fatalf("overrides %v, want risk.deny_at=80 and quiet_hours.exempt_purposes only", ov)
	}
	if got := ov["quiet_hours"].(map[string]any)["exempt_purposes"].([]any); len(got) != 2 || got[1] != "service" {
		t.Fatalf("exempt_purposes %v", got)
	}

	au := e.client()
	auCSRF := au.signIn(e.keys[herald.RoleAuditor])
	res, page = au.get("/policies")
	if res.StatusCode != http.StatusOK || strings.Contains(page, `id="editor"`) || strings.Contains(page, "/activate") {
		t.Fatalf("auditor's policies page = %d shows write controls:\n%s", res.StatusCode, page)
	}
	if res, _ := au.post("/policies/upload", url.Values{"csrf": {auCSRF}, "base": {"default"}, "file": {"data.json"}, "content": {"{}"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor's forged upload = %d", res.StatusCode)
	}
	if res, _ := au.post("/policies/params", url.Values{"csrf": {auCSRF}, "p.risk/deny_at": {"10"}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor's forged params = %d", res.StatusCode)
	}
	if _, l := e.apiDo(http.MethodGet, "/v1/policies", e.keys[herald.RoleComplianceOfficer], nil); len(l["versions"].([]any)) != 0 {
		t.Fatalf("forged upload stored a version: %v", l["versions"])
	}
}
