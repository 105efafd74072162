package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// importOne imports one contact through the API and returns its id.
func importOne(t *testing.T, e *env, token string, row map[string]any) string {
	t.Helper()
	r := e.do("POST", "/v1/contacts:import", token, []map[string]any{row})
	var ans struct {
		Contacts []string `json:"contacts"`
	}
	if r.status != 200 || json.Unmarshal(r.raw, &ans) != nil || len(ans.Contacts) != 1 {
		t.Fatalf("import = %d %s", r.status, r.raw)
	}
	return ans.Contacts[0]
}

// profileEntries returns org's retention.changed entries that name a profile.
func profileEntries(t *testing.T, e *env, org string) []ledger.Entry {
	t.Helper()
	es, err := e.s.LedgerEntries(context.Background(), org, store.LedgerFilter{Kind: store.KindRetentionChanged})
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Entry
	for _, x := range es {
		if x.Attrs["profile"] != nil {
			out = append(out, x)
		}
	}
	return out
}

func category(t *testing.T, rep dpia.Report, id string) dpia.Category {
	t.Helper()
	for _, c := range rep.Context.Categories {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("the DPIA has no %s category", id)
	return dpia.Category{}
}

// TestRetentionProfilesAPI: every profile is listed with its settings and
// promise; auditors read, compliance officers and admins apply, operators
// do neither; an unknown, missing, empty or mistyped profile and bad bytes
// are problem documents that change nothing; applying a profile replaces
// the configuration, is a retention.changed entry naming it, reaches the
// DPIA (retention periods of the data map, minimisation section), and is
// cleared by a field-by-field PUT; organisations are independent.
func TestRetentionProfilesAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, aud, op, adm := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor], e.keys[herald.RoleOperator], e.keys[herald.RoleAdmin]

		g := e.do("GET", "/v1/retention/profiles", aud, nil)
		var list struct {
			Profiles []store.RetentionProfile `json:"profiles"`
			Current  string                   `json:"current"`
		}
		if g.status != 200 || json.Unmarshal(g.raw, &list) != nil || list.Current != "" {
			t.Fatalf("auditor GET profiles = %d %s", g.status, g.raw)
		}
		names := map[string]store.RetentionProfile{}
		for _, p := range list.Profiles {
			if p.Promise == "" || p.Keeps == "" || p.Limits == "" || p.Settings.Validate() != nil {
				t.Fatalf("profile %+v is incomplete or invalid", p)
			}
			names[p.Name] = p
		}
		for _, n := range []string{"no_content", "flagged_90d", "stats_12m", "ip_90d", "minimal_fields"} {
			if _, ok := names[n]; !ok {
				t.Fatalf("profile %s is not listed: %s", n, g.raw)
			}
		}
		if !names["no_content"].Settings.DropContentAfterDelivery || names["flagged_90d"].Settings.PayloadsDays != 90 ||
			names["flagged_90d"].Settings.DecisionInputsDays != 90 || names["stats_12m"].Settings.LedgerEntriesDays != 365 ||
			!names["minimal_fields"].MinimalFields {
			t.Fatalf("profile settings do not keep their promises: %s", g.raw)
		}
		if r := e.do("GET", "/v1/retention/profiles", op, nil); r.status != http.StatusForbidden || r.str("code") != "forbidden" {
			t.Fatalf("operator GET = %d %s", r.status, r.raw)
		}
		for _, tok := range []string{aud, op} {
			if r := e.do("PUT", "/v1/retention/profile", tok, map[string]any{"profile": "no_content"}); r.status != http.StatusForbidden {
				t.Fatalf("PUT by a reader = %d %s", r.status, r.raw)
			}
		}

		before := e.counts()
		_, dBefore := getDPIA(t, e, aud)
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"unknown profile", map[string]any{"profile": "forever"}, 422, "validation_failed"},
			{"empty profile", map[string]any{"profile": ""}, 422, "validation_failed"},
			{"missing profile", map[string]any{}, 422, "validation_failed"},
			{"wrong type", map[string]any{"profile": 7}, 400, ""},
			{"unknown field", map[string]any{"profile": "no_content", "days": 3}, 400, ""},
			{"invalid UTF-8", []byte("{\"profile\": \"no_\xff\xfe\"}"), 400, ""},
			{"NUL byte", []byte("{\"profile\": \"no_content\u0000\"}"), 0, ""},
			{"raw NUL", []byte("{\"profile\": \"no_content\"}\x00"), 400, ""},
		} {
			r := e.do("PUT", "/v1/retention/profile", co, c.body)
			if (c.status != 0 && r.status != c.status) || r.status < 400 || r.status >= 500 ||
				r.header.Get("Content-Type") != "application/problem+json" || r.str("code") == "" || (c.code != "" && r.str("code") != c.code) {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused profiles changed %+v → %+v", before, after)
		}
		if g2 := e.do("GET", "/v1/retention/profiles", aud, nil); !bytes.Equal(g2.raw, g.raw) {
			t.Fatalf("refused profiles changed the answer: %s", g2.raw)
		}

		r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "flagged_90d"})
		if r.status != 200 || !strings.Contains(string(r.raw), `"payloads_days":90`) || !strings.Contains(string(r.raw), `"profile":"flagged_90d"`) {
			t.Fatalf("CO PUT flagged_90d = %d %s", r.status, r.raw)
		}
		_, rep := getDPIA(t, e, aud)
		if p := category(t, rep, "content_previews").Retention.Period; p != "90 days" {
			t.Fatalf("DPIA payload retention under flagged_90d = %q (before: %q)", p, category(t, dBefore, "content_previews").Retention.Period)
		}
		if p := category(t, rep, "decisions").Retention.Period; p != "90 days" {
			t.Fatalf("DPIA decision retention under flagged_90d = %q", p)
		}
		if !strings.Contains(strings.Join(rep.Principles.Minimisation, "\n"), "retention profile flagged_90d in force") {
			t.Fatalf("DPIA minimisation does not name the profile: %q", rep.Principles.Minimisation)
		}
		if r := e.do("PUT", "/v1/retention/profile", adm, map[string]any{"profile": "stats_12m"}); r.status != 200 {
			t.Fatalf("admin PUT stats_12m = %d %s", r.status, r.raw)
		}
		_, rep = getDPIA(t, e, aud)
		if p := category(t, rep, "ledger_refs").Retention.Period; p != "365 days" {
			t.Fatalf("DPIA ledger retention under stats_12m = %q", p)
		}
		es := profileEntries(t, e, e.org.ID)
		if len(es) != 2 || es[0].Attrs["profile"] != "flagged_90d" || es[0].Actor != "compliance_officer-1" ||
			es[0].Attrs["payloads_days"] != float64(90) || es[1].Attrs["profile"] != "stats_12m" || es[1].Actor != "admin-1" {
			t.Fatalf("retention.changed entries naming a profile: %+v", es)
		}
		// The retention job applies the profile: its run records the settings.
		if _, err := (&store.RetentionJob{Store: e.s}).RunOrg(context.Background(), e.org.ID); err != nil {
			t.Fatal(err)
		}
		l := e.do("GET", "/v1/ledger/entries?kind=retention.ran", aud, nil)
		if l.status != 200 || !strings.Contains(string(l.raw), `"ledger_entries_days":365`) {
			t.Fatalf("retention.ran after the profile: %d %s", l.status, l.raw)
		}

		// A field-by-field configuration no longer claims the profile.
		if r := e.do("PUT", "/v1/retention", co, retentionBody(180, 30, 7, 30, false)); r.status != 200 {
			t.Fatalf("PUT /v1/retention = %d %s", r.status, r.raw)
		}
		if g := e.do("GET", "/v1/retention/profiles", aud, nil); g.str("current") != "" || strings.Contains(string(g.raw), `"profile":"stats_12m"`) {
			t.Fatalf("a hand-set configuration still claims the profile: %s", g.raw)
		}
		_, rep = getDPIA(t, e, aud)
		if strings.Contains(strings.Join(rep.Principles.Minimisation, "\n"), "in force") {
			t.Fatalf("DPIA still names a profile: %q", rep.Principles.Minimisation)
		}

		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if g := e.do("GET", "/v1/retention/profiles", e.newKey(other.ID, "aud-other", herald.RoleAuditor), nil); g.str("current") != "" ||
			!strings.Contains(string(g.raw), `"minimal_fields":false`) {
			t.Fatalf("other org: %s", g.raw)
		}
		if n := len(profileEntries(t, e, other.ID)); n != 0 {
			t.Fatalf("other org has %d profile entries", n)
		}
	})
}

// TestRetentionProfileNoContent proves "no message content stored" under
// the no_content profile: after delivery and one retention run the text is
// in no API answer and no database row, the run is a retention.ran entry
// with its counts, the DPIA's data map says content is kept until
// delivery, and the message did reach the person (the sandbox's record).
func TestRetentionProfileNoContent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		co, op, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		contact := importOne(t, e, co, map[string]any{"chat_id": "5151", "purpose": "support", "legal_basis": "contract", "source": "ticket"})
		if r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "no_content"}); r.status != 200 {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		id := e.do("POST", "/v1/actions", op, e.sendReq(contact, "support", "Secret Pangolin text")).str("action", "id")
		e.deliverAll()
		delivered := false
		for _, m := range e.sandbox.Messages() {
			delivered = delivered || (m.ChatID == "5151" && strings.Contains(m.Text, "Pangolin"))
		}
		if !delivered || !strings.Contains(storetest.Dump(t, e.s), "Pangolin") {
			t.Fatal("the message was not delivered or its text was never stored: the checks below could not fail")
		}
		counts, err := (&store.RetentionJob{Store: e.s}).RunOrg(ctx, e.org.ID)
		if err != nil || counts.Contents != 1 || counts.Payloads < 1 {
			t.Fatalf("run: %+v %v", counts, err)
		}
		if g := e.do("GET", "/v1/actions/"+id, op, nil); g.str("action", "status") != "delivered" || strings.Contains(string(g.raw), "Pangolin") {
			t.Fatalf("after the run the text is still served: %s", g.raw)
		}
		if d := storetest.Dump(t, e.s); strings.Contains(d, "Pangolin") || strings.Contains(d, "50616e676f6c696e") {
			t.Fatal("the delivered text is still in the database")
		}
		l := e.do("GET", "/v1/ledger/entries?kind=retention.ran", aud, nil)
		if !strings.Contains(string(l.raw), `"contents":1`) || !strings.Contains(string(l.raw), `"drop_content_after_delivery":true`) {
			t.Fatalf("retention.ran does not show the run: %s", l.raw)
		}
		if ex := e.do("GET", "/v1/ledger/export", aud, nil); ex.status != 200 || strings.Contains(string(ex.raw), "Pangolin") || !strings.Contains(string(ex.raw), `"purged":true`) {
			t.Fatalf("the ledger export still carries the text (%d)", ex.status)
		}
		_, rep := getDPIA(t, e, aud)
		if r := category(t, rep, "message_content").Retention; r.Period != "until delivery" || !strings.Contains(r.Rule, "only hashes and counts remain") {
			t.Fatalf("DPIA message content retention: %+v", r)
		}
		if p := category(t, rep, "content_previews").Retention.Period; p != "1 day" && p != "1 days" {
			t.Fatalf("DPIA preview retention under no_content = %q", p)
		}
	})
}

// TestRetentionProfileNoClientAddress proves the ip_90d profile's stronger
// promise: Herald stores no client address at all. Authenticated requests
// (reads, writes, a refused key, an import, a send) from 127.0.0.1 leave no
// "127.0.0.1" in any database row or request log line, while the requests did reach Herald (the
// dump holds what they wrote); the DPIA states it.
func TestRetentionProfileNoClientAddress(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, op, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		if !strings.HasPrefix(e.srv.URL, "http://127.0.0.1:") {
			t.Fatalf("the server is not on 127.0.0.1 (%s): the check could not fail", e.srv.URL)
		}
		if r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "ip_90d"}); r.status != 200 || !strings.Contains(string(r.raw), `"profile":"ip_90d"`) {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		contact := importOne(t, e, co, map[string]any{"chat_id": "6161", "purpose": "support", "legal_basis": "contract", "source": "Aardvark-form"})
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.do("POST", "/v1/actions", op, e.sendReq(contact, "support", "hello"))
				e.do("GET", "/v1/retention", aud, nil)
				e.do("GET", "/v1/contacts/"+contact, co, nil)
				e.do("GET", "/v1/retention", "not-a-key", nil)
			}()
		}
		wg.Wait()
		e.deliverAll()
		d := storetest.Dump(t, e.s)
		if !strings.Contains(d, "Aardvark-form") {
			t.Fatal("the dump does not show what the requests wrote: the check below could not fail")
		}
		for _, addr := range []string{"127.0.0.1", "::1", "3132372e302e302e31"} {
			if strings.Contains(d, addr) {
				t.Fatalf("a client address (%s) is persisted", addr)
			}
		}
		if logs := e.logs.String(); !strings.Contains(logs, "/v1/actions") || strings.Contains(logs, "127.0.0.1") {
			t.Fatal("the request log is empty, or carries the client address")
		}
		_, rep := getDPIA(t, e, aud)
		m := strings.Join(rep.Principles.Minimisation, "\n")
		if !strings.Contains(m, "no client IP address is stored") || !strings.Contains(m, "retention profile ip_90d in force") {
			t.Fatalf("DPIA minimisation: %q", rep.Principles.Minimisation)
		}
	})
}

// TestRetentionProfileMinimalFields: under minimal_fields an import or
// PATCH carrying a username, language or timezone is refused whole
// (problem+json, nothing changed), existing contacts lose those fields when
// the profile is applied (counted in the ledger entry), imports and PATCHes
// without them still work, the DPIA's minimisation section says so, and an
// organisation without the profile keeps accepting them.
func TestRetentionProfileMinimalFields(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor]
		row := func(chat string, extra map[string]any) map[string]any {
			m := map[string]any{"chat_id": chat, "purpose": "support", "legal_basis": "contract", "source": "ticket"}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		old := importOne(t, e, co, row("7171", map[string]any{"username": "okapi_fan", "language": "pt-BR", "timezone": "Europe/Lisbon"}))
		if g := e.do("GET", "/v1/contacts/"+old, co, nil); g.str("language") != "pt-BR" {
			t.Fatalf("before the profile: %s", g.raw)
		}
		r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "minimal_fields"})
		if r.status != 200 || !strings.Contains(string(r.raw), `"minimal_fields":true`) {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		if g := e.do("GET", "/v1/contacts/"+old, co, nil); g.str("language") != "" || g.str("timezone") != "" || strings.Contains(string(g.raw), "okapi_fan") {
			t.Fatalf("applying the profile kept the optional fields: %s", g.raw)
		}
		if d := storetest.Dump(t, e.s); strings.Contains(d, "okapi_fan") || strings.Contains(d, "Europe/Lisbon") {
			t.Fatal("the optional fields are still in the database")
		}
		if es := profileEntries(t, e, e.org.ID); len(es) != 1 || es[0].Attrs["contacts_minimised"] != float64(1) || es[0].Attrs["minimal_fields"] != true {
			t.Fatalf("profile entry: %+v", es)
		}

		before := e.counts()
		for _, c := range []struct {
			name, method, path string
			body               any
			field              string
		}{
			{"import username", "POST", "/v1/contacts:import", []map[string]any{row("8181", nil), row("8282", map[string]any{"username": "wombat_fan"})}, "username"},
			{"import language", "POST", "/v1/contacts:import", []map[string]any{row("8383", map[string]any{"language": "en"})}, "language"},
			{"import timezone", "POST", "/v1/contacts:import", []map[string]any{row("8484", map[string]any{"timezone": "UTC"})}, "timezone"},
			{"patch language", "PATCH", "/v1/contacts/" + old, map[string]any{"language": "en"}, "language"},
			{"patch timezone", "PATCH", "/v1/contacts/" + old, map[string]any{"timezone": "Europe/Berlin"}, "timezone"},
		} {
			r := e.do(c.method, c.path, co, c.body)
			if r.status != 422 || r.str("code") != "validation_failed" || r.header.Get("Content-Type") != "application/problem+json" ||
				!strings.Contains(string(r.raw), `"field":"`+c.field+`"`) || !strings.Contains(string(r.raw), "minimal_fields") {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused writes changed %+v → %+v", before, after)
		}
		if d := storetest.Dump(t, e.s); strings.Contains(d, "wombat_fan") || strings.Contains(d, "8181") {
			t.Fatal("a refused import left rows behind")
		}
		// Without the optional fields everything still works.
		importOne(t, e, co, row("9191", nil))
		if p := e.do("PATCH", "/v1/contacts/"+old, co, map[string]any{"language": "", "revoke_purposes": []string{"support"}}); p.status != 200 {
			t.Fatalf("PATCH without optional fields = %d %s", p.status, p.raw)
		}
		_, rep := getDPIA(t, e, aud)
		if m := rep.Principles.Minimisation; len(m) == 0 || !strings.HasPrefix(m[0], "minimal fields only") {
			t.Fatalf("DPIA minimisation: %q", m)
		}
		// The data map's contact fields follow the profile: chat id and last
		// inbound time only, no username, language or timezone.
		contactFields := func(rep dpia.Report) []string {
			for _, c := range rep.Context.Categories {
				if c.ID == "contacts" {
					var names []string
					for _, f := range c.Fields {
						names = append(names, f.Name)
					}
					return names
				}
			}
			t.Fatal("the data map has no contacts category")
			return nil
		}
		if got := contactFields(rep); !slices.Equal(got, []string{"chat_id", "last_inbound_at"}) {
			t.Fatalf("contact fields under minimal_fields = %q", got)
		}

		// Another organisation without the profile keeps the fields.
		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherCO := e.newKey(other.ID, "co-other", herald.RoleComplianceOfficer)
		id := importOne(t, e, otherCO, row("7171", map[string]any{"language": "de"}))
		if g := e.do("GET", "/v1/contacts/"+id, otherCO, nil); g.str("language") != "de" {
			t.Fatalf("other org: %s", g.raw)
		}
	})
}

// TestRetentionProfileFlagged90d proves "flagged content is deleted after
// 90 days" with the clock: a denied (flagged) message's text and its stored
// decision input survive a retention run 89 days later (the default
// configuration would have purged the text at 30 days) and are gone from
// the API and the database after the run at 91 days, which the ledger's
// retention.ran entry counts.
func TestRetentionProfileFlagged90d(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		co, op, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		contact := importOne(t, e, co, map[string]any{"chat_id": "9393", "purpose": "support", "legal_basis": "contract", "source": "ticket"})
		if r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "flagged_90d"}); r.status != 200 {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		r := e.do("POST", "/v1/actions", op, e.sendReq(contact, "marketing", "Flagged Narwhal offer"))
		if r.str("action", "status") != "denied" {
			t.Fatalf("marketing without consent = %d %s", r.status, r.raw)
		}
		id := r.str("action", "id")
		job := &store.RetentionJob{Store: e.s}

		e.advance(89 * 24 * time.Hour)
		c, err := job.RunOrg(ctx, e.org.ID)
		if err != nil || c.Contents != 0 || c.DecisionInputs != 0 {
			t.Fatalf("run at 89 days removed flagged data: %+v %v", c, err)
		}
		if g := e.do("GET", "/v1/actions/"+id, op, nil); !strings.Contains(string(g.raw), "Narwhal") {
			t.Fatalf("the flagged text is gone before 90 days: %s", g.raw)
		}

		e.advance(2 * 24 * time.Hour)
		c, err = job.RunOrg(ctx, e.org.ID)
		if err != nil || c.Contents < 1 || c.DecisionInputs < 1 {
			t.Fatalf("run at 91 days: %+v %v", c, err)
		}
		if g := e.do("GET", "/v1/actions/"+id, op, nil); g.str("action", "status") != "denied" || strings.Contains(string(g.raw), "Narwhal") {
			t.Fatalf("the flagged text is still served after 90 days: %s", g.raw)
		}
		if d := storetest.Dump(t, e.s); strings.Contains(d, "Narwhal") || strings.Contains(d, "4e61727768616c") {
			t.Fatal("the flagged text is still in the database after 90 days")
		}
		l := e.do("GET", "/v1/ledger/entries?kind=retention.ran", aud, nil)
		if !strings.Contains(string(l.raw), `"payloads_days":90`) || !strings.Contains(string(l.raw), `"decision_inputs":1`) {
			t.Fatalf("retention.ran does not show the 90-day run: %s", l.raw)
		}
	})
}

// TestRetentionProfileStats12m proves "statistics deleted within 12 months"
// from the ledger: under stats_12m, entries behind a signed checkpoint
// survive the run 364 days later and are pruned by the run at 366 days
// (retention.ran records pruned_before; the first entries are gone from the
// API), while the log still verifies from its anchor.
func TestRetentionProfileStats12m(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		co, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor]
		importOne(t, e, co, map[string]any{"chat_id": "9494", "purpose": "support", "legal_basis": "contract", "source": "ticket"})
		if r := e.do("PUT", "/v1/retention/profile", co, map[string]any{"profile": "stats_12m"}); r.status != 200 {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		skey, vkey, _ := ledger.GenerateKey("stats-test")
		signer, _ := ledger.NewSigner(skey)
		logs := store.NewLedgerLogs(e.s, "", signer)
		if _, _, err := logs.Checkpoint(ctx, e.org.ID); err != nil {
			t.Fatal(err)
		}
		job := &store.RetentionJob{Store: e.s, Logs: logs}
		e.advance(364 * 24 * time.Hour)
		if c, err := job.RunOrg(ctx, e.org.ID); err != nil || c.PrunedBefore != 0 {
			t.Fatalf("run at 364 days pruned: %+v %v", c, err)
		}
		if l := e.do("GET", "/v1/ledger/entries?kind=contact.imported", aud, nil); !strings.Contains(string(l.raw), "contact.imported") {
			t.Fatalf("the import entry is gone before 12 months: %s", l.raw)
		}
		e.advance(2 * 24 * time.Hour)
		c, err := job.RunOrg(ctx, e.org.ID)
		if err != nil || c.PrunedBefore == 0 {
			t.Fatalf("run at 366 days: %+v %v", c, err)
		}
		if l := e.do("GET", "/v1/ledger/entries?kind=contact.imported", aud, nil); l.status != 200 || strings.Contains(string(l.raw), "contact.imported") {
			t.Fatalf("the import entry survives 12 months: %d %s", l.status, l.raw)
		}
		if l := e.do("GET", "/v1/ledger/entries?kind=retention.ran", aud, nil); !strings.Contains(string(l.raw), fmt.Sprintf(`"pruned_before":%d`, c.PrunedBefore)) ||
			!strings.Contains(string(l.raw), `"ledger_entries_days":365`) {
			t.Fatalf("retention.ran does not show the pruning: %s", l.raw)
		}
		if _, _, err := logs.Checkpoint(ctx, e.org.ID); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := logs.ExportLedger(ctx, e.org.ID, store.LedgerExportOptions{}, &out); err != nil {
			t.Fatal(err)
		}
		vs, _ := ledger.NewVerifiers(vkey)
		if rep, err := ledger.Verify(ctx, bytes.NewReader(out.Bytes()), vs); err != nil || !rep.OK {
			t.Fatalf("the pruned log does not verify: %v\n%s", err, rep)
		}
	})
}
