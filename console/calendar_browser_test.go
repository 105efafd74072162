package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// A message to Tokyo at 21:00 local is deferred to 09:00 (00:00 UTC on
// the 11th): the week shows it on that day; the operator moves it to
// 10:00 Tokyo on the 12th by form, and the API holds a new action decided
// for that time and the old one cancelled.
func TestBrowserCalendarReschedule(t *testing.T) {
	e := newEnv(t, storetest.Postgres)
	contact := e.importContact("7171", "Asia/Tokyo", "support", "contract")
	old := e.submitFor(contact, "support", "Your parcel arrives tomorrow.")["action"].(map[string]any)
	if old["status"] != "scheduled" {
		t.Fatalf("deferred action status %v", old["status"])
	}
	b := e.browser(t)
	b.signIn(e.keys[herald.RoleOperator])
	b.run(chromedp.Navigate(e.srv.URL+"/calendar?view=week&date=2026-03-11"), chromedp.WaitVisible(`#grid`, chromedp.ByQuery))
	if got := b.text("#period"); got != "2026-03-09 – 2026-03-15" {
		t.Fatalf("period %q", got)
	}
	if got := b.text(".actions-day tbody"); !strings.Contains(got, "2026-03-11 00:00:00Z") {
		t.Fatalf("scheduled actions %q", got)
	}
	b.checkPage("calendar-week")
	b.run(chromedp.Navigate(e.srv.URL+"/calendar?view=month&date=2026-03-11"), chromedp.WaitVisible(`#grid`, chromedp.ByQuery))
	b.checkPage("calendar-month")
	b.run(chromedp.Navigate(e.srv.URL+"/calendar?view=day&date=2026-03-11"), chromedp.WaitVisible(`.actions-day`, chromedp.ByQuery))
	b.checkPage("calendar-day")

	b.run(chromedp.SetValue(`.actions-day input[type=datetime-local]`, "2026-03-12T01:00", chromedp.ByQuery),
		chromedp.Click(`.actions-day button`, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash`, chromedp.ByQuery))
	var cancelled, moved int
	for _, a := range e.actionsOf() {
		switch {
		case a["id"] == old["id"] && a["status"] == "cancelled":
			cancelled++
		case a["id"] != old["id"] && a["status"] == "scheduled" && strings.HasPrefix(a["schedule_at"].(string), "2026-03-12T01:00:00"):
			moved++
		}
	}
	if cancelled != 1 || moved != 1 {
		t.Fatalf("after reschedule: %v", e.actionsOf())
	}
	// an auditor sees the calendar without the reschedule control
	c := e.client()
	c.signIn(e.keys[herald.RoleAuditor])
	res, page := c.get("/calendar?view=week&date=2026-03-12")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "actions-day") || strings.Contains(page, "/reschedule") {
		t.Fatalf("auditor's calendar = %d:\n%s", res.StatusCode, page)
	}
}

// A campaign planned for 22:00 in Tokyo is flagged on its day: most of its
// audience would get it inside quiet hours.
func TestCalendarFlagsConflicts(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	a := e.importContact("7272", "Asia/Tokyo", "support", "contract")
	b := e.importContact("7373", "Asia/Tokyo", "support", "contract")
	op := e.keys[herald.RoleOperator]
	st, camp := e.apiDo(http.MethodPost, "/v1/campaigns", op, map[string]any{"name": "Evening notice", "kind": "send_message", "purpose": "support",
		"template": map[string]any{"text": "Service notice"}, "contacts": []string{a, b}, "accounts": []string{e.account.ID},
		"start_at": "2026-03-12T13:00:00Z"})
	if st != http.StatusCreated {
		t.Fatalf("create campaign = %d %v", st, camp)
	}
	if st, out := e.apiDo(http.MethodPost, "/v1/campaigns/"+camp["id"].(string)+"/schedule", op, nil); st != http.StatusOK {
		t.Fatalf("schedule = %d %v", st, out)
	}
	c := e.client()
	c.signIn(op)
	res, page := c.get("/calendar?view=week&date=2026-03-12")
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `<p id="conflict-count" class="conflict">Conflicts in this period: 1</p>`) ||
		!strings.Contains(page, "<code>quiet_hours</code> 2 of 2 recipients would get it inside quiet hours") || !strings.Contains(page, "Evening notice") {
		t.Fatalf("calendar = %d:\n%s", res.StatusCode, page)
	}
	// another account's filter hides the campaign and its conflict
	res, page = c.get("/calendar?view=week&date=2026-03-12&account=00000000-0000-0000-0000-000000000000")
	if res.StatusCode != http.StatusOK || strings.Contains(page, "Evening notice") || !strings.Contains(page, "Conflicts in this period: 0") {
		t.Fatalf("filtered calendar = %d:\n%s", res.StatusCode, page)
	}
	// bad query values fall back, never a 500
	if res, _ := c.get("/calendar?view=%00&date=\xff"); res.StatusCode != http.StatusOK {
		t.Fatalf("bad query = %d", res.StatusCode)
	}
}
