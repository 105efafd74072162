package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func retentionBody(entries, decisions, payloads, receipts int, drop bool) map[string]any {
	return map[string]any{"ledger_entries_days": entries, "decision_inputs_days": decisions, "payloads_days": payloads,
		"receipts_days": receipts, "drop_content_after_delivery": drop}
}

// TestRetentionAPI: auditors read the retention configuration, compliance
// officers and admins set it, operators do neither; a value outside its
// floor or ceiling, a missing or unknown field, a wrong type and bad bytes
// are problem documents that change nothing; a change is a
// retention.changed entry; each organisation has its own.
func TestRetentionAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		co, aud, op, adm := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor], e.keys[herald.RoleOperator], e.keys[herald.RoleAdmin]

		g := e.do("GET", "/v1/retention", aud, nil)
		if g.status != 200 || !strings.Contains(string(g.raw), `"ledger_entries_days":365`) || !strings.Contains(string(g.raw), `"min":90`) {
			t.Fatalf("auditor GET defaults = %d %s", g.status, g.raw)
		}
		if r := e.do("GET", "/v1/retention", op, nil); r.status != http.StatusForbidden || r.str("code") != "forbidden" {
			t.Fatalf("operator GET = %d %s", r.status, r.raw)
		}
		good := retentionBody(180, 30, 7, 30, true)
		for _, tok := range []string{aud, op} {
			if r := e.do("PUT", "/v1/retention", tok, good); r.status != http.StatusForbidden {
				t.Fatalf("PUT by a reader = %d %s", r.status, r.raw)
			}
		}

		before := e.counts()
		for _, c := range []struct {
			name   string
			body   any
			status int
			code   string
			field  string
		}{
			{"entries below floor", retentionBody(30, 30, 7, 30, false), 422, "validation_failed", "ledger_entries_days"},
			{"payloads above ceiling", retentionBody(365, 30, 400, 30, false), 422, "validation_failed", "payloads_days"},
			{"negative receipts", retentionBody(365, 30, 7, -1, false), 422, "validation_failed", "receipts_days"},
			{"missing field", map[string]any{"ledger_entries_days": 365}, 422, "validation_failed", "payloads_days"},
			{"unknown field", func() map[string]any { m := retentionBody(365, 30, 7, 30, false); m["logs_days"] = 9; return m }(), 400, "", ""},
			{"wrong type", func() map[string]any {
				m := retentionBody(365, 30, 7, 30, false)
				m["payloads_days"] = "thirty"
				return m
			}(), 400, "", ""},
			{"invalid UTF-8", []byte("{\"ledger_entries_days\": \"\xff\xfe\"}"), 400, "", ""},
			{"NUL byte", []byte("{\"ledger_entries_days\": 365\x00}"), 400, "", ""},
		} {
			r := e.do("PUT", "/v1/retention", co, c.body)
			if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" || r.str("code") == "" ||
				(c.code != "" && r.str("code") != c.code) || !strings.Contains(string(r.raw), c.field) {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused configurations changed %+v → %+v", before, after)
		}
		if g2 := e.do("GET", "/v1/retention", aud, nil); !bytes.Equal(g2.raw, g.raw) {
			t.Fatalf("refused configurations changed the answer: %s", g2.raw)
		}

		r := e.do("PUT", "/v1/retention", co, good)
		if r.status != 200 || !strings.Contains(string(r.raw), `"updated_by":"compliance_officer-1"`) {
			t.Fatalf("CO PUT = %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", "/v1/retention", adm, retentionBody(200, 30, 7, 30, true)); r.status != 200 {
			t.Fatalf("admin PUT = %d %s", r.status, r.raw)
		}
		g = e.do("GET", "/v1/retention", aud, nil)
		if !strings.Contains(string(g.raw), `"ledger_entries_days":200`) || !strings.Contains(string(g.raw), `"drop_content_after_delivery":true`) {
			t.Fatalf("GET after PUT: %s", g.raw)
		}
		es, err := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: store.KindRetentionChanged})
		if err != nil || len(es) != 2 || es[1].Actor != "admin-1" || es[1].Attrs["ledger_entries_days"] != float64(200) {
			t.Fatalf("retention.changed entries: %+v %v", es, err)
		}

		// Another organisation keeps the defaults.
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if r := e.do("GET", "/v1/retention", e.newKey(other.ID, "aud-other", herald.RoleAuditor), nil); !strings.Contains(string(r.raw), `"ledger_entries_days":365`) {
			t.Fatalf("other org: %s", r.raw)
		}
	})
}

// TestRetentionNoContentAfterDelivery proves the "no message content
// stored" promise from the user's side: with drop_content_after_delivery,
// after delivery and one retention run the message text is in no API
// answer, no database row and no ledger export (its payload is marked
// purged), while the ledger still verifies and the run is a retention.ran
// entry with its counts. An undelivered (scheduled) message keeps its text.
func TestRetentionNoContentAfterDelivery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		co, op, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "4242", "purpose": "support", "legal_basis": "contract", "source": "ticket"}})
		if r := e.do("PUT", "/v1/retention", co, retentionBody(365, 90, 30, 365, true)); r.status != 200 {
			t.Fatalf("PUT = %d %s", r.status, r.raw)
		}
		sent := e.do("POST", "/v1/actions", op, e.sendReq("4242", "support", "Secret Wombat text")).str("action", "id")
		later := e.sendReq("4242", "support", "Pending Quokka text")
		later["schedule_at"] = daytime.Add(48 * time.Hour).Format(time.RFC3339)
		queued := e.do("POST", "/v1/actions", op, later).str("action", "id")
		e.deliverAll()
		if g := e.do("GET", "/v1/actions/"+sent, op, nil); g.str("action", "status") != "delivered" || !strings.Contains(string(g.raw), "Wombat") {
			t.Fatalf("before the run: %s", g.raw)
		}
		if !strings.Contains(storetest.Dump(t, e.s), "Wombat") {
			t.Fatal("the dump does not show the text before the run: the check below could not fail")
		}

		job := &store.RetentionJob{Store: e.s}
		counts, err := job.RunOrg(ctx, e.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Contents != 1 || counts.Payloads < 1 {
			t.Fatalf("run counts: %+v", counts)
		}
		if g := e.do("GET", "/v1/actions/"+sent, op, nil); g.str("action", "status") != "delivered" || strings.Contains(string(g.raw), "Wombat") {
			t.Fatalf("after the run the delivered text is still served: %s", g.raw)
		}
		if g := e.do("GET", "/v1/actions/"+queued, op, nil); !strings.Contains(string(g.raw), "Quokka") {
			t.Fatalf("an undelivered message lost its text: %s", g.raw)
		}
		if d := storetest.Dump(t, e.s); strings.Contains(d, "Wombat") || strings.Contains(d, "576f6d626174") {
			t.Fatal("the delivered text is still in the database")
		}
		l := e.do("GET", "/v1/ledger/entries?kind=retention.ran", aud, nil)
		if l.status != 200 || !strings.Contains(string(l.raw), `"contents":1`) {
			t.Fatalf("retention.ran not in the ledger: %s", l.raw)
		}

		skey, vkey, _ := ledger.GenerateKey("retention-test")
		signer, _ := ledger.NewSigner(skey)
		logs := store.NewLedgerLogs(e.s, "", signer)
		if _, _, err := logs.Checkpoint(ctx, e.org.ID); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := logs.ExportLedger(ctx, e.org.ID, store.LedgerExportOptions{}, &out); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out.Bytes(), []byte("Wombat")) || !bytes.Contains(out.Bytes(), []byte(`"purged":true`)) {
			t.Fatal("the export still carries the delivered text, or marks nothing purged")
		}
		vs, _ := ledger.NewVerifiers(vkey)
		rep, err := ledger.Verify(ctx, bytes.NewReader(out.Bytes()), vs)
		if err != nil || !rep.OK || rep.PayloadsPurged < 1 {
			t.Fatalf("after the run: %v\n%s", err, rep)
		}
	})
}
