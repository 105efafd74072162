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
	old := e.submit(contact, "support", "Your parcel arrives tomorrow.")["action"].(map[string]any)
	if old["status"] != "scheduled" {
		t.Fatalf("deferred action status %v", old["status"])
	}
	b := e.browser(t)
	b.signedIn(e.keys[herald.RoleOperator])
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
