package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store/storetest"
)

// reviewBundle asks an approver to approve texts of exactly 6 characters,
// denies texts over 40 characters with an overridable reason, and allows
// the rest.
const reviewBundle = `package herald

import rego.v1

allow := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}

decision := {"outcome": "deny", "reasons": [{"rule": "custom.review", "severity": "deny", "message": "too long", "overridable": true}],
	"suggestions": [{"rule": "custom.review", "message": "shorten the text"}], "risk": {"score": 75, "factors": []}} if {
	input.action.content.length > 40
} else := {"outcome": "approve", "approvals": [{"stage": 1, "role": "approver", "mode": "any"}],
	"reasons": [{"rule": "custom.launch", "severity": "warning", "message": "launches need sign-off", "overridable": false}],
	"suggestions": [], "risk": {"score": 50, "factors": []}} if {
	input.action.content.length == 6
} else := allow
`

func reviewEnv(t *testing.T) *env {
	eng, err := policies.Compile(context.Background(), policies.Bundle{Files: map[string][]byte{"decision.rego": []byte(reviewBundle)}})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, storetest.Postgres, eng)
}

func (e *env) status(id string) string {
	e.t.Helper()
	_, out := e.apiDo("GET", "/v1/actions/"+id, e.keys[herald.RoleAdmin], nil)
	a, _ := out["action"].(map[string]any)
	s, _ := a["status"].(string)
	return s
}

// TestBrowserApprovals: a person who is both operator and approver sees
// their own action under "created by me" with no approve control, and a
// forged approval post is refused by the server; a second person approves
// it in Chromium; an auditor sees no approve controls and the server
// refuses the auditor's forged post; a denial is overridden with a
// written justification.
func TestBrowserApprovals(t *testing.T) {
	e := reviewEnv(t)
	ctx := context.Background()
	both := e.newKey("dana", herald.RoleOperator)
	if _, err := e.s.EnsureRole(ctx, e.org.ID, "dana", herald.RoleApprover, "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.authz.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	id := e.submit(both, "-1001234567890", "launch")
	if st := e.status(id); st != "pending_approval" {
		t.Fatalf("the launch is %s, want pending_approval", st)
	}
	long := e.submit(e.keys[herald.RoleOperator], "-1001234567891", strings.Repeat("a very long text ", 4))
	if st := e.status(long); st != "denied" {
		t.Fatalf("the long text is %s, want denied", st)
	}

	// Dana: the action is in "created by me", without approve or reject.
	dana := e.client()
	csrf := dana.signIn(both)
	_, page := dana.get("/approvals?tab=mine")
	if !strings.Contains(page, `id="a-`+id+`"`) {
		t.Fatalf("Dana's own action is not under created by me:\n%s", page)
	}
	if strings.Contains(page, "/approvals/"+id+"/approve") || strings.Contains(page, "/approvals/"+id+"/reject") {
		t.Error("the self-approval control is shown to the submitter")
	}
	if _, page = dana.get("/approvals?tab=assigned"); strings.Contains(page, `id="a-`+id+`"`) {
		t.Error("Dana's own action is in her queue")
	}
	// A forged post (with a valid CSRF token) is refused by the API.
	res, body := dana.post("/approvals/"+id+"/approve", url.Values{"csrf": {csrf}, "comment": {"self"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("self-approval post = %d:\n%s", res.StatusCode, body)
	}
	if st := e.status(id); st != "pending_approval" {
		t.Fatalf("after a refused self-approval the action is %s", st)
	}

	// The auditor: no approve controls anywhere, and a forged post is refused.
	aud := e.client()
	acsrf := aud.signIn(e.keys[herald.RoleAuditor])
	for _, tab := range []string{"assigned", "mine", "rejected", "expired"} {
		if _, page := aud.get("/approvals?tab=" + tab); strings.Contains(page, `/approve"`) || strings.Contains(page, `/override"`) {
			t.Errorf("an auditor is offered a decision in tab %s", tab)
		}
	}
	if _, page := aud.get("/actions/" + id); strings.Contains(page, "/cancel\"") {
		t.Error("an auditor is offered Cancel")
	}
	if res, _ := aud.post("/approvals/"+id+"/approve", url.Values{"csrf": {acsrf}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("the auditor's forged approval = %d", res.StatusCode)
	}
	if res, _ := aud.post("/actions/"+id+"/cancel", url.Values{"csrf": {acsrf}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("the auditor's forged cancel = %d", res.StatusCode)
	}
	if st := e.status(id); st != "pending_approval" {
		t.Fatalf("after refused posts the action is %s", st)
	}

	// A second person approves in the browser.
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleApprover])
	b.run(chromedp.Navigate(e.srv.URL+"/approvals"), chromedp.WaitVisible(`#a-`+id+` button.approve`, chromedp.ByQuery))
	b.checkPage("approvals")
	b.run(chromedp.SendKeys(`#c-`+id, "looks good", chromedp.ByQuery), chromedp.Click(`#a-`+id+` button.approve`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	if st := e.status(id); st != "scheduled" {
		t.Errorf("after the approval the action is %s, want scheduled", st)
	}
	// The denied long text: the approver overrides it with a justification.
	b.run(chromedp.Navigate(e.srv.URL+"/approvals?tab=rejected"), chromedp.WaitVisible(`#j-`+long, chromedp.ByQuery))
	b.checkPage("approvals-rejected")
	b.run(chromedp.SendKeys(`#j-`+long, "legal reviewed the long text", chromedp.ByQuery),
		chromedp.Submit(`#j-`+long, chromedp.ByQuery), chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	if st := e.status(long); st != "scheduled" {
		t.Errorf("after the override the action is %s, want scheduled", st)
	}
}
