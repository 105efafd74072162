package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func TestSubmitIsDeliveredEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.keys[herald.RoleOperator]
		r := e.do("POST", "/v1/actions", op, e.sendReq("-1001234567890", "transactional", "Your order *shipped*"))
		if r.status != http.StatusCreated || r.str("action", "status") != "scheduled" {
			t.Fatalf("submit = %d %s", r.status, r.raw)
		}
		if r.header.Get("Location") != "/v1/actions/"+r.str("action", "id") {
			t.Fatalf("Location = %q", r.header.Get("Location"))
		}
		id := r.str("action", "id")
		e.deliverAll()
		got := e.do("GET", "/v1/actions/"+id, op, nil)
		if got.str("action", "status") != "delivered" {
			t.Fatalf("after delivery: %s", got.raw)
		}
		events := got.body["events"].([]any)
		var tos []string
		for _, ev := range events {
			tos = append(tos, ev.(map[string]any)["to"].(string))
		}
		if strings.Join(tos, ",") != "received,decided,scheduled,sending,delivered" {
			t.Fatalf("transitions = %v", tos)
		}
		msgs := e.sandbox.Messages()
		if len(msgs) != 1 || msgs[0].ActionID != id || msgs[0].Text != "Your order *shipped*" || msgs[0].ChatID != "-1001234567890" {
			t.Fatalf("sandbox recorded %+v", msgs)
		}
		// Every transition is in the ledger, and the ledger's sending entry
		// precedes the delivery (write-ahead audit).
		entries, err := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, en := range entries {
			if en.Refs["action"] == id {
				kinds = append(kinds, en.Kind)
			}
		}
		if strings.Join(kinds, ",") != "action.received,action.decided,action.scheduled,action.sending,action.delivered" {
			t.Fatalf("ledger kinds for the action = %v", kinds)
		}
		// Nothing is delivered twice.
		e.deliverAll()
		if n := len(e.sandbox.Messages()); n != 1 {
			t.Fatalf("sandbox has %d messages after a second worker round", n)
		}
	})
}

func TestIdempotencyUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.keys[herald.RoleOperator]
		body := e.sendReq("-100777", "transactional", "once")
		const n = 50
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			ids    = map[string]int{}
			status = map[int]int{}
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v1/actions", op, body, "Idempotency-Key", "order-42")
				mu.Lock()
				defer mu.Unlock()
				status[r.status]++
				ids[r.str("action", "id")]++
			}()
		}
		wg.Wait()
		if len(ids) != 1 || status[http.StatusCreated] != 1 || status[http.StatusOK] != n-1 {
			t.Fatalf("50 identical submits gave ids %v and statuses %v; want one action, one 201", ids, status)
		}
		if c := e.counts(); c.actions != 1 || c.jobs != 1 {
			t.Fatalf("stored %d actions and %d jobs, want 1 and 1", c.actions, c.jobs)
		}
		before := e.counts()
		r := e.do("POST", "/v1/actions", op, e.sendReq("-100777", "transactional", "different"), "Idempotency-Key", "order-42")
		if r.status != http.StatusConflict || r.str("code") != "idempotency_key_reused" {
			t.Fatalf("same key, other body = %d %s", r.status, r.raw)
		}
		if after := e.counts(); after != before {
			t.Fatalf("a refused submit changed %+v → %+v", before, after)
		}
	})
}

func TestDryRunStoresNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		before := e.counts()
		r := e.do("POST", "/v1/actions?dry_run=true", e.keys[herald.RoleOperator],
			e.sendReq("-100555", "transactional", "<b>Hi</b> see https://bit.ly/x"), "Idempotency-Key", "dry-1")
		// The text is HTML without parse mode: plain text, so valid.
		if r.status != http.StatusOK || r.body["dry_run"] != true {
			t.Fatalf("dry run = %d %s", r.status, r.raw)
		}
		if r.str("preview", "plain") != "<b>Hi</b> see https://bit.ly/x" || r.str("decision", "outcome") == "" {
			t.Fatalf("dry run preview/decision missing: %s", r.raw)
		}
		stats := r.body["preview"].(map[string]any)["stats"].(map[string]any)
		if stats["shortened_links"].(float64) != 1 {
			t.Fatalf("stats = %v", stats)
		}
		if after := e.counts(); after != before {
			t.Fatalf("dry run changed the database: %+v → %+v", before, after)
		}
		// ?explain=full adds the policy trace for an officer.
		ex := e.do("POST", "/v1/actions?dry_run=true&explain=full", e.keys[herald.RoleOperator], e.sendReq("5559999", "marketing", "Sale"))
		if ex.str("decision", "outcome") != "deny" || len(ex.body["explain"].([]any)) == 0 || !strings.Contains(string(ex.raw), ".rego:") {
			t.Fatalf("explained dry run = %s", ex.raw)
		}
		if after := e.counts(); after != before {
			t.Fatalf("explained dry run changed the database: %+v → %+v", before, after)
		}
		// The same key can still be used for the real submit.
		r = e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq("-100555", "transactional", "<b>Hi</b> see https://bit.ly/x"), "Idempotency-Key", "dry-1")
		if r.status != http.StatusCreated {
			t.Fatalf("submit after dry run = %d %s", r.status, r.raw)
		}
	})
}

func TestPolicyDecidesEveryAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.keys[herald.RoleOperator]
		// A person without consent cannot get marketing.
		r := e.do("POST", "/v1/actions", op, e.sendReq("5550001", "marketing", "Big sale"))
		if r.status != http.StatusCreated || r.str("action", "status") != "denied" {
			t.Fatalf("marketing without consent = %d %s", r.status, r.raw)
		}
		if !strings.Contains(string(r.raw), `"consent.`) {
			t.Fatalf("the denial names no consent rule: %s", r.raw)
		}
		// Import consent; then it goes.
		imp := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{
			{"chat_id": "5550001", "timezone": "Europe/Berlin", "purpose": "marketing", "legal_basis": "consent", "source": "signup form",
				"consented_at": daytime.Add(-24 * time.Hour).Format(time.RFC3339)},
		})
		if imp.status != http.StatusOK {
			t.Fatalf("import = %d %s", imp.status, imp.raw)
		}
		r = e.do("POST", "/v1/actions", op, e.sendReq("5550001", "marketing", "Big sale"))
		if r.str("action", "status") != "scheduled" {
			t.Fatalf("marketing with consent = %s", r.raw)
		}
		contactID := r.str("action", "contact")
		if contactID == "" {
			t.Fatal("the action is not linked to its contact")
		}
		// Opt-out between submit and send: the send-time re-check denies.
		oo := e.do("POST", "/v1/contacts/"+contactID+"/opt-out", op, nil)
		if oo.status != http.StatusOK || oo.str("opted_out_at") == "" {
			t.Fatalf("opt-out = %d %s", oo.status, oo.raw)
		}
		e.deliverAll()
		got := e.do("GET", "/v1/actions/"+r.str("action", "id"), op, nil)
		if got.str("action", "status") != "denied" || len(e.sandbox.Messages()) != 0 {
			t.Fatalf("opted-out contact was not protected at send time: %s", got.raw)
		}
	})
}

func TestContactsImportIsAllOrNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co := e.keys[herald.RoleComplianceOfficer]
		before := e.counts()
		r := e.do("POST", "/v1/contacts:import", co, []map[string]any{
			{"chat_id": "1", "purpose": "marketing", "legal_basis": "consent", "source": "form"},
			{"chat_id": "2", "purpose": "marketing", "source": "form"},
			{"chat_id": "3", "purpose": "marketing", "legal_basis": "consent"},
			{"chat_id": "x y", "purpose": "nope", "legal_basis": "vibes", "source": "s"},
		})
		if r.status != http.StatusUnprocessableEntity || r.str("code") != "import_rejected" {
			t.Fatalf("import with bad rows = %d %s", r.status, r.raw)
		}
		if r.body["rejected_rows"].(float64) != 3 {
			t.Fatalf("report = %s", r.raw)
		}
		rows := map[float64][]string{}
		for _, fe := range r.body["errors"].([]any) {
			m := fe.(map[string]any)
			rows[m["row"].(float64)] = append(rows[m["row"].(float64)], m["field"].(string))
		}
		if fmt.Sprint(rows[2]) != "[legal_basis]" || fmt.Sprint(rows[3]) != "[source]" || len(rows[4]) != 3 || len(rows[1]) != 0 {
			t.Fatalf("per-row report = %v", rows)
		}
		if after := e.counts(); after != before {
			t.Fatalf("a rejected import changed %+v → %+v", before, after)
		}
		// CSV, as a body and as an upload.
		csv := "chat_id,timezone,purpose,legal_basis,source,consented_at\n10,Europe/Paris,marketing,consent,web,2026-01-01T10:00:00Z\n@newsfan,,support,contract,order 1,\n"
		r = e.do("POST", "/v1/contacts:import", co, []byte(csv), "Content-Type", "text/csv")
		if r.status != http.StatusOK || r.body["created"].(float64) != 2 {
			t.Fatalf("csv import = %d %s", r.status, r.raw)
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "contacts.csv")
		fw.Write([]byte("chat_id,purpose,legal_basis,source\n11,service,contract,crm\n"))
		mw.Close()
		r = e.do("POST", "/v1/contacts:import", co, buf.Bytes(), "Content-Type", mw.FormDataContentType())
		if r.status != http.StatusOK || r.body["created"].(float64) != 1 {
			t.Fatalf("multipart import = %d %s", r.status, r.raw)
		}
		ids := r.body["contacts"].([]any)
		c := e.do("GET", "/v1/contacts/"+ids[0].(string), co, nil)
		if c.str("chat_id") != "11" || len(c.body["consents"].([]any)) != 1 {
			t.Fatalf("imported contact = %s", c.raw)
		}
		// PATCH consent and revoke.
		p := e.do("PATCH", "/v1/contacts/"+ids[0].(string), co, map[string]any{
			"timezone": "Asia/Tokyo", "consents": []map[string]any{{"purpose": "marketing", "legal_basis": "consent", "source": "call"}},
			"revoke_purposes": []string{"service"}})
		if p.status != http.StatusOK || p.str("timezone") != "Asia/Tokyo" || len(p.body["consents"].([]any)) != 1 ||
			p.body["consents"].([]any)[0].(map[string]any)["purpose"] != "marketing" {
			t.Fatalf("patch = %d %s", p.status, p.raw)
		}
	})
}

func TestCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.keys[herald.RoleOperator]
		req := e.sendReq("-1009", "transactional", "later")
		req["schedule_at"] = daytime.Add(2 * time.Hour).Format(time.RFC3339)
		r := e.do("POST", "/v1/actions", op, req)
		id := r.str("action", "id")
		if r.str("action", "status") != "scheduled" {
			t.Fatalf("submit = %s", r.raw)
		}
		if c := e.do("POST", "/v1/actions/"+id+"/cancel", e.keys[herald.RoleApprover], nil); c.status != http.StatusForbidden {
			t.Fatalf("approver cancel = %d", c.status)
		}
		c := e.do("POST", "/v1/actions/"+id+"/cancel", op, nil)
		if c.status != http.StatusOK || c.str("action", "status") != "cancelled" {
			t.Fatalf("cancel = %d %s", c.status, c.raw)
		}
		if e.counts().jobs != 0 {
			t.Fatal("a cancelled action kept its job")
		}
		again := e.do("POST", "/v1/actions/"+id+"/cancel", op, nil)
		if again.status != http.StatusConflict || again.str("code") != "illegal_transition" {
			t.Fatalf("second cancel = %d %s", again.status, again.raw)
		}
		e.advance(3 * time.Hour)
		e.deliverAll()
		if len(e.sandbox.Messages()) != 0 {
			t.Fatal("a cancelled action was delivered")
		}
	})
}

func TestOtherOrganisationsSeeNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq("-1001", "transactional", "mine"))
		id := r.str("action", "id")
		other, _ := e.s.CreateOrg(ctx, "Rival", "UTC")
		tok := e.newKey(other.ID, "eve", herald.RoleAdmin)
		before := e.counts()
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/actions/" + id}, {"POST", "/v1/actions/" + id + "/cancel"},
			{"GET", "/v1/accounts/" + e.account.ID}, {"PATCH", "/v1/accounts/" + e.account.ID},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"name": "pwned"}
			}
			got := e.do(c.method, c.path, tok, body)
			if got.status != http.StatusNotFound {
				t.Errorf("%s %s from another org = %d %s", c.method, c.path, got.status, got.raw)
			}
		}
		list := e.do("GET", "/v1/actions", tok, nil)
		if n := len(list.body["actions"].([]any)); n != 0 {
			t.Errorf("another org lists %d actions", n)
		}
		sub := e.do("POST", "/v1/actions", tok, map[string]any{"kind": "send_message", "account": e.account.ID, "target": "-1001", "purpose": "transactional", "text": "x"})
		if sub.status != http.StatusUnprocessableEntity {
			t.Errorf("submitting through another org's account = %d", sub.status)
		}
		if after := e.counts(); after != before {
			t.Fatalf("cross-org requests changed %+v → %+v", before, after)
		}
	})
}

func TestLogsCarryNoPersonalData(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	op := e.keys[herald.RoleOperator]
	e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{
		{"chat_id": "987654321", "purpose": "support", "legal_basis": "contract", "source": "ticket 5"}})
	e.do("POST", "/v1/actions", op, e.sendReq("987654321", "support", "Secret diagnosis Zebra-Quokka"))
	e.do("POST", "/v1/actions", op, []byte(`{"kind":"send_message","text":"Zebra-Quokka 2"`))
	e.deliverAll()
	logs := e.logs.String()
	if !strings.Contains(logs, `"route":"/v1/actions"`) {
		t.Fatalf("request logs missing: %s", logs)
	}
	for _, secret := range []string{"Zebra-Quokka", "987654321", op, "ticket 5"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q", secret)
		}
	}
}

func TestReadinessAndMetrics(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	if r := e.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz = %d", r.status)
	}
	if r := e.do("GET", "/readyz", "", nil); r.status != 200 || r.str("status") != "ready" {
		t.Fatalf("readyz = %d %s", r.status, r.raw)
	}
	e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq("-1002", "transactional", "m"))
	e.deliverAll()
	m := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`herald_http_requests_total{code="201",method="POST",route="/v1/actions"} 1`,
		`herald_pipeline_stage_duration_seconds_count{stage="commit"} 1`,
		`herald_policy_decisions_total{outcome="allow",stage="send"} 1`,
		`herald_actions_total{status="delivered"} 1`,
	} {
		if !strings.Contains(string(m.raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
