package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// submit submits a message through the API as key and returns the action id.
func (e *env) submit(key, target, text string) string {
	e.t.Helper()
	st, out := e.apiDo("POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": e.account.ID,
		"target": target, "purpose": "transactional", "text": text})
	if st != http.StatusCreated && st != http.StatusOK && st != http.StatusAccepted {
		e.t.Fatalf("submit = %d %v", st, out)
	}
	a, _ := out["action"].(map[string]any)
	id, _ := a["id"].(string)
	if id == "" {
		e.t.Fatalf("submit answered no action id: %v", out)
	}
	return id
}

// TestBrowserActionsAndInclusionProof: the Actions list filters; an
// action's timeline shows its transitions, decision and ledger entries; the
// "verify" button checks the entry's inclusion proof in Chromium with
// WebCrypto and succeeds — and fails once the entry is altered in the
// database behind Herald's back.
func TestBrowserActionsAndInclusionProof(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	id := e.submit(e.keys[herald.RoleOperator], "-1001234567890", "Your order shipped")
	e.submit(e.keys[herald.RoleOperator], "-1001234567891", "Your parcel is on its way")
	if st, out := e.apiDo("POST", "/v1/ledger/checkpoint", e.keys[herald.RoleComplianceOfficer], nil); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("checkpoint = %d %v", st, out)
	}

	b := e.browser(t)
	b.signIn(e.keys[herald.RoleAuditor])
	b.run(chromedp.Navigate(e.srv.URL+"/actions"), chromedp.WaitVisible(`main table tbody tr td a`, chromedp.ByQuery))
	var rows int
	b.run(chromedp.Evaluate(`document.querySelectorAll("main tbody tr a").length`, &rows))
	if rows != 2 {
		t.Errorf("Actions lists %d actions, want 2", rows)
	}
	b.checkPage("actions")
	// A filter the API applies, live through htmx (vendored, allowed by the
	// CSP): choosing "failed" swaps the results in place and updates the URL.
	var htmxLoaded bool
	b.run(chromedp.Evaluate(`typeof window.htmx === "object"`, &htmxLoaded))
	if !htmxLoaded {
		t.Fatal("htmx did not load under the CSP")
	}
	var loc string
	b.run(chromedp.SetValue(`select[name="status"]`, "failed", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('select[name="status"]').dispatchEvent(new Event("change", {bubbles: true}))`, nil),
		chromedp.WaitNotPresent(`main tbody tr a`, chromedp.ByQuery), chromedp.Location(&loc))
	if !strings.Contains(loc, "status=failed") {
		t.Errorf("the live filter did not update the URL: %s", loc)
	}
	b.checkPage("actions-filtered")

	b.run(chromedp.Navigate(e.srv.URL+"/actions/"+id), chromedp.WaitVisible(`button.verify`, chromedp.ByQuery))
	if page := b.text("main"); !strings.Contains(page, "Your order shipped") || !strings.Contains(page, "scheduled") || !strings.Contains(page, "allow") {
		t.Errorf("the timeline lacks the text, status or decision:\n%s", page)
	}
	// An auditor reads; it may not cancel.
	var cancel int
	b.run(chromedp.Evaluate(`document.querySelectorAll("form[action$='/cancel']").length`, &cancel))
	if cancel != 0 {
		t.Error("an auditor is offered Cancel")
	}
	var seq string
	b.run(chromedp.AttributeValue(`button.verify`, "data-seq", &seq, nil, chromedp.ByQuery))
	verify := func() (state, text string) {
		t.Helper()
		b.run(chromedp.Click(`button.verify[data-seq="`+seq+`"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`output#verify-`+seq+`[data-state="ok"], output#verify-`+seq+`[data-state="bad"]`, chromedp.ByQuery),
			chromedp.AttributeValue(`output#verify-`+seq, "data-state", &state, nil, chromedp.ByQuery),
			chromedp.Text(`output#verify-`+seq, &text, chromedp.ByQuery))
		return state, text
	}
	if state, text := verify(); state != "ok" {
		t.Fatalf("the inclusion proof of entry %s does not verify in the browser: %s", seq, text)
	}
	b.checkPage("action")

	// Tamper with the entry in the database (as a superuser who can switch
	// the append-only triggers off): the browser must now refuse it.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, storetest.DatabaseURL(t, e.s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	tag, err := conn.Exec(ctx, `UPDATE ledger_entries SET actor = 'mallory' WHERE org_id = $1 AND seq = $2`, e.org.ID, seq)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper: %v (%d rows)", err, tag.RowsAffected())
	}
	b.run(chromedp.Reload(), chromedp.WaitVisible(`button.verify`, chromedp.ByQuery))
	state, text := verify()
	if state != "bad" || !strings.Contains(text, "altered") {
		t.Fatalf("after tampering, verification says %s: %s", state, text)
	}
	b.checkPage("action-tampered")
}
