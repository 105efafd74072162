package console_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store/storetest"
)

// TestBrowserAuditAndAdmin: the auditor's desk lists entries and
// checkpoints, checks consistency between two checkpoints, and downloads
// an export that verifies offline and the DPIA; the admin page creates a
// key (shown once, and it works), and revokes it (it stops working). An
// auditor is offered no admin, vote or cancel control.
func TestBrowserAuditAndAdmin(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	co := e.keys[herald.RoleComplianceOfficer]
	e.submit(e.keys[herald.RoleOperator], "-1001234567890", "Your order shipped")
	st, first := e.apiDo("POST", "/v1/ledger/checkpoint", co, nil)
	if st != http.StatusCreated {
		t.Fatalf("checkpoint = %d", st)
	}
	e.submit(e.keys[herald.RoleOperator], "-1001234567891", "Your parcel is on its way")
	st, second := e.apiDo("POST", "/v1/ledger/checkpoint", co, nil)
	if st != http.StatusCreated {
		t.Fatalf("checkpoint = %d", st)
	}
	from, to := int(first["size"].(float64)), int(second["size"].(float64))

	b := e.browser(t)
	b.signIn(e.keys[herald.RoleAuditor])
	var navs []string
	b.run(chromedp.Evaluate(`[...document.querySelectorAll("header nav a")].map(a => a.getAttribute("href"))`, &navs))
	if strings.Contains(strings.Join(navs, " "), "/admin") || !strings.Contains(strings.Join(navs, " "), "/audit") {
		t.Errorf("auditor navigation = %v", navs)
	}
	b.run(chromedp.Navigate(e.srv.URL+"/audit"), chromedp.WaitVisible(`input[name="cfrom"]`, chromedp.ByQuery))
	b.checkPage("audit")
	b.run(chromedp.SendKeys(`input[name="cfrom"]`, itoa(from), chromedp.ByQuery), chromedp.SendKeys(`input[name="cto"]`, itoa(to), chromedp.ByQuery),
		chromedp.Submit(`input[name="cfrom"]`, chromedp.ByQuery), chromedp.WaitVisible(`.consistency-result`, chromedp.ByQuery))
	if got := b.text(".consistency-result"); !strings.Contains(got, "Consistent") {
		t.Errorf("consistency %d→%d: %s", from, to, got)
	}
	b.checkPage("audit-consistency")
	// A checkpoint size that was never signed is an answer, not an error page.
	b.run(chromedp.Navigate(e.srv.URL+"/audit/consistency?cfrom=1&cto="+itoa(to)), chromedp.WaitVisible(`main`, chromedp.ByQuery))
	if got := b.text("main"); strings.Contains(got, "Consistent:") {
		t.Errorf("an unsigned size checks as consistent: %s", got)
	}

	// Downloads, as the auditor: the export verifies offline with the key.
	aud := e.client()
	aud.signIn(e.keys[herald.RoleAuditor])
	res, body := aud.get("/audit/export?format=jsonl")
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export = %d %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	vs, err := ledger.NewVerifiers(e.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := ledger.Verify(context.Background(), bytes.NewReader([]byte(body)), vs); err != nil || !rep.OK {
		t.Errorf("the console's export does not verify: %v\n%v", err, rep)
	}
	if res, body := aud.get("/audit/dpia?format=markdown"); res.StatusCode != http.StatusOK || !strings.Contains(body, "#") {
		t.Errorf("DPIA download = %d", res.StatusCode)
	}
	// No admin for the auditor: the page is refused, the forged post too.
	if res, _ := aud.get("/admin"); res.StatusCode != http.StatusOK {
		// The auditor reads accounts, so the page shows them, without keys.
		t.Logf("auditor /admin = %d", res.StatusCode)
	}
	if _, page := aud.get("/admin"); strings.Contains(page, "/admin/keys") {
		t.Error("an auditor is offered key controls")
	}
	csrf := hiddenCSRF.FindStringSubmatch(mustGet(aud, "/"))[1]
	if res, _ := aud.post("/admin/keys", url.Values{"csrf": {csrf}, "role": {"admin"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("the auditor's forged key creation = %d", res.StatusCode)
	}

	// The admin creates a key in the browser: shown once, and it works.
	b.run(chromedp.Navigate(e.srv.URL+"/"), chromedp.Click(`header form button`, chromedp.ByQuery), chromedp.WaitVisible(`#key`, chromedp.ByQuery))
	b.signIn(e.keys[herald.RoleAdmin])
	b.run(chromedp.Navigate(e.srv.URL+"/admin"), chromedp.WaitVisible(`#new-key-form`, chromedp.ByQuery))
	b.checkPage("admin")
	b.run(chromedp.SetValue(`#new-key-form select[name="role"]`, "auditor", chromedp.ByQuery),
		chromedp.SendKeys(`#new-key-form input[name="description"]`, "external auditor", chromedp.ByQuery),
		chromedp.Submit(`#new-key-form select`, chromedp.ByQuery), chromedp.WaitVisible(`#token`, chromedp.ByQuery))
	var token string
	b.run(chromedp.Value(`#token`, &token, chromedp.ByQuery))
	if !regexp.MustCompile(`^hk_\S+_\S+$`).MatchString(token) {
		t.Fatalf("new key token %q", token)
	}
	if st, _ := e.apiDo("GET", "/v1/me", token, nil); st != http.StatusOK {
		t.Fatalf("the new key answers %d", st)
	}
	b.checkPage("admin-key-created")
	// Shown once: the next visit does not show it.
	b.run(chromedp.Navigate(e.srv.URL+"/admin"), chromedp.WaitVisible(`#new-key-form`, chromedp.ByQuery))
	var html string
	b.run(chromedp.OuterHTML("main", &html, chromedp.ByQuery))
	if strings.Contains(html, token) {
		t.Error("the token is shown again")
	}
	// Revoke it in the browser: it stops working.
	prefix := strings.Split(token, "_")[1]
	b.run(chromedp.Click(`button[aria-label="Revoke `+prefix+`"]`, chromedp.ByQuery), chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	if st, _ := e.apiDo("GET", "/v1/me", token, nil); st != http.StatusUnauthorized {
		t.Errorf("the revoked key answers %d", st)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
