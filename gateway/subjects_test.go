package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// importSubject imports one contact with the given purpose → basis rows and
// returns its id.
func importSubject(t *testing.T, e *env, chat string, bases map[string]string) string {
	t.Helper()
	var rows []map[string]any
	for purpose, basis := range bases {
		rows = append(rows, map[string]any{"chat_id": chat, "purpose": purpose, "legal_basis": basis, "source": "form " + purpose})
	}
	r := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], rows)
	if r.status != http.StatusOK {
		t.Fatalf("import = %d %s", r.status, r.raw)
	}
	return r.body["contacts"].([]any)[0].(string)
}

func fileRequest(t *testing.T, e *env, token, kind string, subject map[string]any) store.SubjectRequest {
	t.Helper()
	r := e.do("POST", "/v1/subject-requests", token, map[string]any{"kind": kind, "subject": subject})
	if r.status != http.StatusCreated {
		t.Fatalf("file %s request = %d %s", kind, r.status, r.raw)
	}
	var sr store.SubjectRequest
	if err := json.Unmarshal(r.raw, &sr); err != nil {
		t.Fatal(err)
	}
	return sr
}

// TestSubjectAccessExportVerifiesOffline: an auditor alone answers an
// access request named by Telegram id; the export holds the contact, the
// message sent to them with its content and decision, and an inclusion
// proof for every ledger entry about them, which verify with nothing but
// the public key, and stop verifying when one entry is altered.
func TestSubjectAccessExportVerifiesOffline(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud := e.keys[herald.RoleAuditor]
		contact := importSubject(t, e, "4242001", map[string]string{"transactional": "contract"})
		importSubject(t, e, "4242002", map[string]string{"transactional": "contract"}) // someone else
		for _, to := range []string{"4242001", "4242002"} {
			if r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq(to, "transactional", "Parcel for "+to)); r.status/100 != 2 {
				t.Fatalf("submit = %d %s", r.status, r.raw)
			}
		}
		e.deliverAll()
		req := fileRequest(t, e, aud, "access", map[string]any{"telegram_id": "4242001"})
		if req.Contact != contact || req.Status != "open" || !req.DueAt.Equal(req.ReceivedAt.Add(30*24*time.Hour)) {
			t.Fatalf("request = %+v", req)
		}
		r := e.do("GET", "/v1/subject-requests/"+req.ID+"/export", aud, nil)
		if r.status != http.StatusOK {
			t.Fatalf("export = %d %s", r.status, r.raw)
		}
		var x dpia.SubjectExport
		if err := json.Unmarshal(r.raw, &x); err != nil {
			t.Fatal(err)
		}
		if x.Contact.ID != contact || len(x.Contact.Consents) != 1 || len(x.Actions) != 1 ||
			!strings.Contains(string(x.Actions[0].Content), "Parcel for 4242001") || x.Actions[0].Status != "delivered" || len(x.Actions[0].Decision) == 0 {
			t.Fatalf("export content = %+v", x)
		}
		if strings.Contains(string(r.raw), "4242002") {
			t.Error("the export holds another person's data")
		}
		kinds := map[string]bool{}
		for _, bnd := range x.Ledger {
			kinds[bnd.Entry.Kind] = true
		}
		for _, k := range []string{ledger.KindActionDecided, ledger.KindActionReceived, ledger.KindActionDelivered, store.KindSubjectReceived} {
			if !kinds[k] {
				t.Errorf("export lacks the %s entry (has %v)", k, kinds)
			}
		}
		vs, err := ledger.NewVerifiers(e.vkey)
		if err != nil {
			t.Fatal(err)
		}
		n, err := dpia.VerifySubjectExport(&x, vs)
		if err != nil || n != len(x.Ledger) || n < 5 {
			t.Fatalf("offline verification: %d entries, %v", n, err)
		}
		x.Ledger[0].Entry.Actor = "someone-else"
		if _, err := dpia.VerifySubjectExport(&x, vs); err == nil {
			t.Fatal("an altered entry still verifies")
		}
		if done := e.do("POST", "/v1/subject-requests/"+req.ID+"/complete", aud, nil); done.status != http.StatusOK || done.str("request", "status") != "completed" {
			t.Fatalf("auditor completes access = %d %s", done.status, done.raw)
		}
	})
}

// TestRestrictionAndObjectionBlockSends: a completed restriction denies
// every purpose and an objection marketing and legitimate interest, at
// submit through the API; nothing reaches the connector; lifting restores
// sending.
func TestRestrictionAndObjectionBlockSends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator]
		importSubject(t, e, "5151001", map[string]string{"marketing": "consent", "transactional": "contract"})
		importSubject(t, e, "5151002", map[string]string{"marketing": "consent", "transactional": "contract", "support": "legitimate_interest"})
		restrict := fileRequest(t, e, co, "restriction", map[string]any{"chat_id": "5151001"})
		object := fileRequest(t, e, co, "objection", map[string]any{"chat_id": "5151002"})
		submit := func(to, purpose string) response {
			return e.do("POST", "/v1/actions", op, e.sendReq(to, purpose, "Hello "+purpose))
		}
		// Before completion the marks do not exist: sends are allowed.
		if r := submit("5151001", "transactional"); r.str("action", "status") != "scheduled" {
			t.Fatalf("before restriction = %d %s", r.status, r.raw)
		}
		e.deliverAll()
		sentBefore := len(e.sandbox.Messages())
		for _, id := range []string{restrict.ID, object.ID} {
			if r := e.do("POST", "/v1/subject-requests/"+id+"/complete", co, nil); r.status != http.StatusOK {
				t.Fatalf("complete = %d %s", r.status, r.raw)
			}
		}
		for _, c := range []struct {
			to, purpose, rule string
		}{
			{"5151001", "marketing", "consent.restricted"}, {"5151001", "transactional", "consent.restricted"},
			{"5151002", "marketing", "consent.objected"}, {"5151002", "support", "consent.objected"},
		} {
			r := submit(c.to, c.purpose)
			if r.str("action", "status") != "denied" || !strings.Contains(string(r.raw), c.rule) {
				t.Errorf("%s to %s = %d %s, want denied by %s", c.purpose, c.to, r.status, r.raw, c.rule)
			}
		}
		// An objection leaves a contract's service messages alone.
		if r := submit("5151002", "transactional"); r.str("action", "status") != "scheduled" {
			t.Errorf("transactional after objection = %d %s", r.status, r.raw)
		}
		e.deliverAll()
		msgs := e.sandbox.Messages()
		if len(msgs) != sentBefore+1 {
			t.Fatalf("connector saw %d messages, want %d", len(msgs), sentBefore+1)
		}
		if r := e.do("POST", "/v1/subject-requests/"+restrict.ID+"/lift", co, nil); r.status != http.StatusOK || r.str("status") != "lifted" {
			t.Fatalf("lift = %d %s", r.status, r.raw)
		}
		if r := submit("5151001", "transactional"); r.str("action", "status") != "scheduled" {
			t.Errorf("after lifting = %d %s", r.status, r.raw)
		}
		e.deliverAll()
		if n := len(e.sandbox.Messages()); n != sentBefore+2 {
			t.Errorf("connector saw %d messages after lifting, want %d", n, sentBefore+2)
		}
	})
}

// TestSubjectRequestDeadlines: 30 days, one 60-day extension, overdue in
// the request, in /metrics and in the DPIA; completion records whether it
// was on time; erasure through a request reuses the erasure path and the
// ledger still verifies.
func TestSubjectRequestDeadlines(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud, co := e.keys[herald.RoleAuditor], e.keys[herald.RoleComplianceOfficer]
		contact := importSubject(t, e, "6161001", map[string]string{"marketing": "consent"})
		req := fileRequest(t, e, aud, "erasure", map[string]any{"contact": contact})
		ext := e.do("POST", "/v1/subject-requests/"+req.ID+"/extend", aud, nil)
		if ext.status != http.StatusOK {
			t.Fatalf("extend = %d %s", ext.status, ext.raw)
		}
		var extended store.SubjectRequest
		_ = json.Unmarshal(ext.raw, &extended)
		if !extended.Extended || !extended.DueAt.Equal(req.DueAt.Add(60*24*time.Hour)) {
			t.Fatalf("extended = %+v", extended)
		}
		if r := e.do("POST", "/v1/subject-requests/"+req.ID+"/extend", aud, nil); r.status != http.StatusConflict || r.str("code") != "conflict" {
			t.Errorf("second extension = %d %s", r.status, r.raw)
		}
		e.advance(91 * 24 * time.Hour)
		if r := e.do("GET", "/v1/subject-requests/"+req.ID, aud, nil); r.body["overdue"] != true {
			t.Errorf("after 91 days: %s", r.raw)
		}
		metrics := e.do("GET", "/metrics", "", nil)
		if !strings.Contains(string(metrics.raw), "herald_subject_requests_overdue 1") {
			t.Errorf("/metrics lacks the overdue request")
		}
		_, rep := getDPIA(t, e, aud)
		if sr := rep.Principles.SubjectRequests; sr.Open != 1 || sr.Overdue != 1 {
			t.Errorf("DPIA subject requests = %+v", sr)
		}
		// The auditor may not erase; the compliance officer does.
		if r := e.do("POST", "/v1/subject-requests/"+req.ID+"/complete", aud, nil); r.status != http.StatusForbidden {
			t.Errorf("auditor completes erasure = %d %s", r.status, r.raw)
		}
		done := e.do("POST", "/v1/subject-requests/"+req.ID+"/complete", co, nil)
		if done.status != http.StatusOK || done.str("request", "status") != "completed" {
			t.Fatalf("complete erasure = %d %s", done.status, done.raw)
		}
		if r := e.do("GET", "/v1/contacts/"+contact, co, nil); r.status != http.StatusNotFound {
			t.Errorf("erased contact = %d", r.status)
		}
		ctx := context.Background()
		last, err := e.s.LastLedgerEntry(ctx, e.org.ID, store.KindSubjectCompleted)
		if err != nil || last == nil || last.Attrs["on_time"] != false || last.Attrs["kind"] != "erasure" {
			t.Fatalf("completion entry = %+v, %v", last, err)
		}
		if r := e.do("POST", "/v1/ledger/checkpoint", co, nil); r.status/100 != 2 {
			t.Fatalf("checkpoint = %d", r.status)
		}
		vs, _ := ledger.NewVerifiers(e.vkey)
		rep2, err := store.NewLedgerLogs(e.s, "", nil).VerifyLedger(ctx, e.org.ID, store.LedgerExportOptions{}, vs)
		if err != nil || !rep2.OK {
			t.Fatalf("ledger after erasure: %+v %v", rep2, err)
		}
		if n := strings.Count(string(e.do("GET", "/metrics", "", nil).raw), "herald_subject_requests_overdue 0"); n != 1 {
			t.Error("the overdue gauge did not fall back to 0 after completion")
		}
	})
}

// TestSubjectRequestsRefuseBadInput: typed problems, nothing changes;
// other roles and organisations see nothing.
func TestSubjectRequestsRefuseBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud := e.keys[herald.RoleAuditor]
		contact := importSubject(t, e, "7171001", map[string]string{"marketing": "consent"})
		req := fileRequest(t, e, aud, "access", map[string]any{"contact": contact})
		ctx := context.Background()
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherAud := e.newKey(other.ID, "other-aud", herald.RoleAuditor)
		before := e.counts()
		for _, c := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			code                      string
		}{
			{"operator files", "POST", "/v1/subject-requests", e.keys[herald.RoleOperator], map[string]any{"kind": "access", "subject": map[string]any{"contact": contact}}, 403, "forbidden"},
			{"unknown kind", "POST", "/v1/subject-requests", aud, map[string]any{"kind": "forget", "subject": map[string]any{"contact": contact}}, 422, "validation_failed"},
			{"two subjects", "POST", "/v1/subject-requests", aud, map[string]any{"kind": "access", "subject": map[string]any{"contact": contact, "chat_id": "7171001"}}, 422, "validation_failed"},
			{"bad telegram id", "POST", "/v1/subject-requests", aud, map[string]any{"kind": "access", "subject": map[string]any{"telegram_id": "12a"}}, 422, "validation_failed"},
			{"unknown contact id", "POST", "/v1/subject-requests", aud, map[string]any{"kind": "access", "subject": map[string]any{"contact": "no-such-contact"}}, 404, "not_found"},
			{"NUL in id", "POST", "/v1/subject-requests", aud, []byte(`{"kind":"access","subject":{"contact":"a\u0000b"}}`), 422, "validation_failed"},
			{"invalid utf-8", "POST", "/v1/subject-requests", aud, []byte("{\"kind\":\"access\",\"subject\":{\"chat_id\":\"\xff\"}}"), 400, "invalid_encoding"},
			{"unknown field", "POST", "/v1/subject-requests", aud, map[string]any{"kind": "access", "subject": map[string]any{"name": "Ann"}}, 400, "invalid_json"},
			{"bad status filter", "GET", "/v1/subject-requests?status=x", aud, nil, 422, "validation_failed"},
			{"other org reads", "GET", "/v1/subject-requests/" + req.ID, otherAud, nil, 404, "not_found"},
			{"other org exports", "GET", "/v1/subject-requests/" + req.ID + "/export", otherAud, nil, 404, "not_found"},
			{"NUL in path", "GET", "/v1/subject-requests/a%00b", aud, nil, 400, "invalid_encoding"},
			{"lift an access request", "POST", "/v1/subject-requests/" + req.ID + "/lift", e.keys[herald.RoleComplianceOfficer], nil, 409, "conflict"},
		} {
			r := e.do(c.method, c.path, c.token, c.body)
			if r.status != c.status || r.str("code") != c.code {
				t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.raw, c.status, c.code)
			}
		}
		if after := e.counts(); after != before {
			t.Errorf("refused requests changed state: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/subject-requests", otherAud, nil); r.status != 200 || len(r.body["requests"].([]any)) != 0 {
			t.Errorf("other org lists = %d %s", r.status, r.raw)
		}
	})
}

// TestSubjectRequestCompletesOnce: concurrent completions of one erasure
// request (two compliance officers clicking at once) erase once, answer
// one 200 and 409 for the rest, and record one completion.
func TestSubjectRequestCompletesOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co := e.keys[herald.RoleComplianceOfficer]
		contact := importSubject(t, e, "8282001", map[string]string{"marketing": "consent"})
		req := fileRequest(t, e, co, "erasure", map[string]any{"contact": contact})
		const n = 8
		statuses := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- e.do("POST", "/v1/subject-requests/"+req.ID+"/complete", co, nil).status
			}()
		}
		wg.Wait()
		close(statuses)
		got := map[int]int{}
		for s := range statuses {
			got[s]++
		}
		if got[http.StatusOK] != 1 || got[http.StatusConflict] != n-1 {
			t.Errorf("statuses = %v, want one 200 and %d 409", got, n-1)
		}
		done, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM ledger_entries WHERE kind = 'subject_request.completed'")
		if err != nil || done != 1 {
			t.Errorf("completion entries = %d, %v", done, err)
		}
	})
}

// TestSubjectRequestAboutUnknownPerson: a request naming a person Herald
// holds no contact for (by chat id or Telegram id) is still recorded, due
// in 30 days, listed and answered: access and portability export "nothing
// held" (no contact, no actions) with the request's own ledger entries
// proven like any export; restriction, objection and erasure complete with
// nothing held. Neither id appears in the ledger, the database or the logs.
func TestSubjectRequestAboutUnknownPerson(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud, co := e.keys[herald.RoleAuditor], e.keys[herald.RoleComplianceOfficer]
		importSubject(t, e, "9090001", map[string]string{"transactional": "contract"}) // someone Herald does hold
		const chat, tgID = "-1009393939391", "93939392"
		access := fileRequest(t, e, aud, "access", map[string]any{"chat_id": chat})
		port := fileRequest(t, e, aud, "portability", map[string]any{"telegram_id": tgID})
		var others []store.SubjectRequest
		for _, k := range []string{"restriction", "objection", "erasure"} {
			others = append(others, fileRequest(t, e, co, k, map[string]any{"telegram_id": tgID}))
		}
		for _, r := range append([]store.SubjectRequest{access, port}, others...) {
			if r.Contact != "" || r.Status != "open" || r.ID == "" || !r.DueAt.Equal(r.ReceivedAt.Add(30*24*time.Hour)) {
				t.Fatalf("request = %+v", r)
			}
		}
		if l := e.do("GET", "/v1/subject-requests?status=open", aud, nil); l.status != 200 || len(l.body["requests"].([]any)) != 5 {
			t.Fatalf("list = %d %s", l.status, l.raw)
		}
		vs, err := ledger.NewVerifiers(e.vkey)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []store.SubjectRequest{access, port} {
			if done := e.do("POST", "/v1/subject-requests/"+r.ID+"/complete", aud, nil); done.status != http.StatusOK ||
				done.str("request", "status") != "completed" || done.body["nothing_held"] != true {
				t.Fatalf("complete %s = %d %s", r.Kind, done.status, done.raw)
			}
			x := e.do("GET", "/v1/subject-requests/"+r.ID+"/export", aud, nil)
			if x.status != http.StatusOK || x.body["nothing_held"] != true || x.body["contact"] != nil ||
				len(x.body["actions"].([]any)) != 0 {
				t.Fatalf("export %s = %d %s", r.Kind, x.status, x.raw)
			}
			var ex dpia.SubjectExport
			if err := json.Unmarshal(x.raw, &ex); err != nil {
				t.Fatal(err)
			}
			kinds := map[string]bool{}
			for _, bnd := range ex.Ledger {
				kinds[bnd.Entry.Kind] = true
				if bnd.Entry.Refs["subject_request"] != r.ID {
					t.Errorf("the export proves an entry of something else: %+v", bnd.Entry)
				}
			}
			if !kinds[store.KindSubjectReceived] || !kinds[store.KindSubjectCompleted] {
				t.Errorf("export %s proves %v", r.Kind, kinds)
			}
			if n, err := dpia.VerifySubjectExport(&ex, vs); err != nil || n != len(ex.Ledger) || n < 2 {
				t.Fatalf("offline verification: %d entries, %v", n, err)
			}
		}
		for _, r := range others {
			done := e.do("POST", "/v1/subject-requests/"+r.ID+"/complete", co, nil)
			if done.status != http.StatusOK || done.str("request", "status") != "completed" || done.body["nothing_held"] != true {
				t.Fatalf("complete %s = %d %s", r.Kind, done.status, done.raw)
			}
		}
		if l := e.do("POST", "/v1/subject-requests/"+others[0].ID+"/lift", co, nil); l.status != http.StatusOK || l.str("status") != "lifted" {
			t.Fatalf("lift a restriction about nobody = %d %s", l.status, l.raw)
		}
		if l := e.do("GET", "/v1/subject-requests?status=open", aud, nil); len(l.body["requests"].([]any)) != 0 {
			t.Fatalf("still open: %s", l.raw)
		}
		received, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM ledger_entries WHERE kind = 'subject_request.received'")
		if err != nil || received != 5 {
			t.Errorf("received entries = %d, %v", received, err)
		}
		exp := e.do("GET", "/v1/ledger/export", aud, nil)
		if exp.status != http.StatusOK || !strings.Contains(string(exp.raw), access.ID) {
			t.Fatalf("ledger export = %d %.300s", exp.status, exp.raw)
		}
		for _, id := range []string{chat, tgID, "9393939391"} {
			if strings.Contains(string(exp.raw), id) {
				t.Errorf("the ledger export holds the raw id %s", id)
			}
			if strings.Contains(e.logs.String(), id) {
				t.Errorf("the logs hold the raw id %s", id)
			}
			if strings.Contains(storetest.Dump(t, e.s), id) {
				t.Errorf("the database holds the raw id %s", id)
			}
		}
	})
}

// TestSubjectRequestAboutUnknownPersonPseudonymised: when the server
// pseudonymises ledger refs, the received entry of a request about an
// unknown person keeps the keyed ref of the id (the same for its chat id
// and Telegram id), never the id itself.
func TestSubjectRequestAboutUnknownPersonPseudonymised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		e.s.SetPseudonymizer(secrets.Pseudonymizer{Store: e.secrets})
		aud := e.keys[herald.RoleAuditor]
		const id = "93939394"
		a := fileRequest(t, e, aud, "access", map[string]any{"telegram_id": id})
		o := fileRequest(t, e, aud, "objection", map[string]any{"chat_id": id})
		refs := map[string]string{}
		for _, r := range []store.SubjectRequest{a, o} {
			es, err := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{Kind: store.KindSubjectReceived})
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range es {
				if en.Refs["subject_request"] == r.ID {
					refs[r.ID] = en.Refs["subject"]
					if _, ok := en.Refs["contact"]; ok {
						t.Errorf("entry names a contact: %+v", en.Refs)
					}
				}
			}
		}
		if refs[a.ID] == "" || refs[a.ID] != refs[o.ID] || strings.Contains(refs[a.ID], id) {
			t.Fatalf("subject refs = %v", refs)
		}
		exp := e.do("GET", "/v1/ledger/export", aud, nil)
		if exp.status != http.StatusOK || strings.Contains(string(exp.raw), id) || strings.Contains(e.logs.String(), id) {
			t.Fatalf("the raw id leaked (export %d)", exp.status)
		}
	})
}
