package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestIncidentProtocol: a compliance officer records a breach of an
// account over a window; the people affected are counted from the ledger
// (sends to two people in the window, not the one after it), the 72-hour
// clock and the Art. 33(3) draft come back; the auditor reads but cannot
// record; notifying closes the clock in the ledger; an incident left open
// past 72 hours shows as a failed control in the DPIA.
func TestIncidentProtocol(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, aud, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor], e.keys[herald.RoleOperator]
		for _, chat := range []string{"9191001", "9191002", "9191003"} {
			importSubject(t, e, chat, map[string]string{"transactional": "contract"})
		}
		from := e.s.Now().Add(-time.Minute)
		for _, chat := range []string{"9191001", "9191002", "9191001"} {
			if r := e.do("POST", "/v1/actions", op, e.sendReq(chat, "transactional", "hi")); r.status/100 != 2 {
				t.Fatalf("submit = %d %s", r.status, r.raw)
			}
		}
		e.deliverAll()
		to := e.s.Now().Add(time.Second)
		e.advance(2 * time.Hour)
		if r := e.do("POST", "/v1/actions", op, e.sendReq("9191003", "transactional", "later")); r.status/100 != 2 {
			t.Fatalf("submit = %d %s", r.status, r.raw)
		}
		detected := e.s.Now().Add(-time.Hour)
		body := map[string]any{"title": "bot token found in a public repository", "detected_at": detected.Format(time.RFC3339Nano),
			"window": map[string]any{"from": from.Format(time.RFC3339Nano), "to": to.Format(time.RFC3339Nano)}, "accounts": []string{e.account.ID}}
		if r := e.do("POST", "/v1/incidents", aud, body); r.status != http.StatusForbidden {
			t.Errorf("auditor records = %d %s", r.status, r.raw)
		}
		r := e.do("POST", "/v1/incidents", co, body)
		if r.status != http.StatusCreated {
			t.Fatalf("record = %d %s", r.status, r.raw)
		}
		if r.body["affected_subjects"] != 2.0 || r.body["affected_actions"] != 3.0 || r.body["status"] != "open" {
			t.Errorf("affected = %v people, %v actions, status %v; want 2, 3, open", r.body["affected_subjects"], r.body["affected_actions"], r.body["status"])
		}
		deadline, _ := time.Parse(time.RFC3339Nano, r.str("deadline_at"))
		if !deadline.Equal(detected.Add(72 * time.Hour)) {
			t.Errorf("deadline %s, want detection + 72 h", deadline)
		}
		note := r.str("notification")
		for _, want := range []string{"Art. 33", "2 people", "3 messages", "(b) Contact point", "(d) Measures"} {
			if !strings.Contains(note, want) {
				t.Errorf("notification lacks %q:\n%s", want, note)
			}
		}
		id := r.str("id")
		if g := e.do("GET", "/v1/incidents/"+id, aud, nil); g.status != http.StatusOK || g.str("id") != id {
			t.Errorf("auditor reads = %d %s", g.status, g.raw)
		}
		// Another organisation sees none of it.
		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherCo := e.newKey(other.ID, "other-co", herald.RoleComplianceOfficer)
		for _, c := range []struct{ method, path string }{{"GET", "/v1/incidents/" + id}, {"POST", "/v1/incidents/" + id + "/notify"}} {
			if r := e.do(c.method, c.path, otherCo, nil); r.status != http.StatusNotFound {
				t.Errorf("other org %s %s = %d %s", c.method, c.path, r.status, r.raw)
			}
		}
		if r := e.do("GET", "/v1/incidents", otherCo, nil); len(r.body["incidents"].([]any)) != 0 {
			t.Errorf("other org lists %s", r.raw)
		}
		if r := e.do("POST", "/v1/incidents", otherCo, body); r.status != http.StatusNotFound {
			t.Errorf("other org names org A's account = %d %s", r.status, r.raw)
		}
		n := e.do("POST", "/v1/incidents/"+id+"/notify", co, nil)
		if n.status != http.StatusOK || n.str("status") != "notified" {
			t.Fatalf("notify = %d %s", n.status, n.raw)
		}
		if again := e.do("POST", "/v1/incidents/"+id+"/notify", co, nil); again.status != http.StatusConflict {
			t.Errorf("second notify = %d", again.status)
		}
		ctx := context.Background()
		if en, _ := e.s.LastLedgerEntry(ctx, e.org.ID, store.KindIncidentNotified); en == nil || en.Attrs["on_time"] != true {
			t.Errorf("incident.notified = %+v", en)
		}
		// A second breach, detected four days ago, never notified.
		body["detected_at"] = e.s.Now().Add(-96 * time.Hour).Format(time.RFC3339Nano)
		if r := e.do("POST", "/v1/incidents", co, body); r.status != http.StatusCreated || r.body["overdue"] != true {
			t.Fatalf("late incident = %d %s", r.status, r.raw)
		}
		_, rep := getDPIA(t, e, aud)
		if rep.Incidents.Overdue != 1 || rep.Incidents.NotifiedOnTime != 1 {
			t.Errorf("DPIA incidents = %+v", rep.Incidents)
		}
		found := false
		for _, rk := range rep.Risks {
			for _, c := range rk.Controls {
				if strings.HasPrefix(c.Measure, "breach register") {
					found = true
					if c.OK || !strings.Contains(c.Evidence, "1 past 72 h") {
						t.Errorf("an overdue breach does not fail the incident control: %+v", c)
					}
				}
			}
		}
		if !found {
			t.Error("the DPIA has no incident control")
		}
		// Bad input changes nothing.
		before := e.counts()
		for name, bad := range map[string]any{
			"no title":       map[string]any{"detected_at": detected.Format(time.RFC3339), "window": body["window"], "accounts": body["accounts"]},
			"NUL title":      map[string]any{"title": "a\u0000b", "detected_at": detected.Format(time.RFC3339), "window": body["window"], "accounts": body["accounts"]},
			"window reverse": map[string]any{"title": "x", "detected_at": detected.Format(time.RFC3339), "window": map[string]any{"from": to.Format(time.RFC3339Nano), "to": from.Format(time.RFC3339Nano)}, "accounts": body["accounts"]},
			"future":         map[string]any{"title": "x", "detected_at": e.s.Now().Add(time.Hour).Format(time.RFC3339), "window": body["window"], "accounts": body["accounts"]},
			"no accounts":    map[string]any{"title": "x", "detected_at": detected.Format(time.RFC3339), "window": body["window"], "accounts": []string{}},
		} {
			if r := e.do("POST", "/v1/incidents", co, bad); r.status != http.StatusUnprocessableEntity || r.str("code") != "validation_failed" {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		unknown := map[string]any{"title": "x", "detected_at": detected.Format(time.RFC3339), "window": body["window"], "accounts": []string{"01a23c2c-0000-7000-8000-000000000000"}}
		if r := e.do("POST", "/v1/incidents", co, unknown); r.status != http.StatusNotFound {
			t.Errorf("unknown account: %d %s", r.status, r.raw)
		}
		if after := e.counts(); after != before {
			t.Errorf("refused incidents changed state: %+v → %+v", before, after)
		}
	})
}
