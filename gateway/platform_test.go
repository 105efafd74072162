package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

// platformKey makes a platform operator (admin of org A, listed in
// platform_operators, as the bootstrap key is on first start).
func (e *env) platformKey() string {
	e.t.Helper()
	tok := e.newKey(e.org.ID, "platform-op", herald.RoleAdmin)
	if err := e.s.InTx(context.Background(), func(tx *store.Tx) error {
		return tx.AddPlatformOperator(context.Background(), e.org.ID, "platform-op", "test")
	}); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) count(sql string) int {
	e.t.Helper()
	n, err := store.CountForTest(context.Background(), e.s, sql)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestOrgsLifecycle: a platform operator creates an organisation with its
// first admin key, lists, renames, suspends and resumes it through the
// API; every change is in the platform's chain and the organisation's own;
// organisation admins (not platform operators) get 403; bad input is 422
// and changes nothing.
func TestOrgsLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.platformKey()
		for role, tok := range e.keys {
			if r := e.do("POST", "/v1/orgs", tok, map[string]any{"name": "Nope"}); r.status != 403 || r.str("code") != "forbidden" {
				t.Errorf("%s creates an org: %d %s", role, r.status, r.raw)
			}
			if r := e.do("GET", "/v1/orgs", tok, nil); r.status != 403 {
				t.Errorf("%s lists orgs: %d %s", role, r.status, r.raw)
			}
		}
		orgsBefore, platformBefore := e.count("SELECT count(*) FROM orgs"), e.count("SELECT count(*) FROM ledger_entries WHERE org_id = 'platform'")
		for name, body := range map[string]any{
			"empty name":   map[string]any{"name": ""},
			"NUL in name":  map[string]any{"name": "a\u0000b"},
			"bad timezone": map[string]any{"name": "X", "timezone": "Mars/Olympus"},
			"bad admin id": map[string]any{"name": "X", "admin_telegram_id": "not-a-number"},
			"unknown":      map[string]any{"name": "X", "owner": "me"},
		} {
			r := e.do("POST", "/v1/orgs", op, body)
			if r.status != 422 && r.status != 400 {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := e.do("POST", "/v1/orgs", op, []byte("{\"name\":\"\xff\xfe\"}")); r.status != 422 && r.status != 400 {
			t.Errorf("invalid UTF-8 name: %d %s", r.status, r.raw)
		}
		if n, p := e.count("SELECT count(*) FROM orgs"), e.count("SELECT count(*) FROM ledger_entries WHERE org_id = 'platform'"); n != orgsBefore || p != platformBefore {
			t.Fatalf("bad input changed something: orgs %d→%d, platform entries %d→%d", orgsBefore, n, platformBefore, p)
		}

		r := e.do("POST", "/v1/orgs", op, map[string]any{"name": "Beta", "timezone": "Europe/Paris", "admin_key": true})
		if r.status != 201 || r.str("org", "status") != "active" || r.str("admin_token") == "" {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		beta, adminB := r.str("org", "id"), r.str("admin_token")
		if me := e.do("GET", "/v1/me", adminB, nil); me.status != 200 || me.str("org", "id") != beta {
			t.Fatalf("the first admin key of the new org: %d %s", me.status, me.raw)
		}
		// Beta's admin works in Beta only, and is no platform operator.
		if r := e.do("GET", "/v1/orgs", adminB, nil); r.status != 403 {
			t.Fatalf("Beta's admin lists orgs: %d", r.status)
		}
		list := e.do("GET", "/v1/orgs", op, nil)
		if n := len(list.body["orgs"].([]any)); list.status != 200 || n != orgsBefore+1 {
			t.Fatalf("list = %d, %d orgs: %s", list.status, n, list.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"name": "Beta GmbH"}); r.status != 200 || r.str("name") != "Beta GmbH" {
			t.Fatalf("rename = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"status": "frozen"}); r.status != 422 {
			t.Fatalf("bad status = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+missingID, op, map[string]any{"name": "x"}); r.status != 404 {
			t.Fatalf("rename a missing org = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+e.org.ID, op, map[string]any{"status": "suspended"}); r.status != 409 {
			t.Fatalf("suspending one's own org = %d %s", r.status, r.raw)
		}

		// Suspended: Beta's key gets 403 on every route; resumed: it works again.
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"status": "suspended"}); r.status != 200 || r.str("status") != "suspended" {
			t.Fatalf("suspend = %d %s", r.status, r.raw)
		}
		for _, path := range []string{"/v1/me", "/v1/accounts", "/v1/contacts", "/v1/keys", "/v1/ledger/entries"} {
			if r := e.do("GET", path, adminB, nil); r.status != 403 || r.str("code") != "forbidden" {
				t.Errorf("suspended org's key GET %s = %d %s", path, r.status, r.raw)
			}
		}
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"status": "active"}); r.status != 200 || r.str("status") != "active" {
			t.Fatalf("resume = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/me", adminB, nil); r.status != 200 {
			t.Fatalf("resumed org's key = %d %s", r.status, r.raw)
		}
		// Every change is in the platform's chain and in Beta's own.
		kinds := func(org string) string {
			rs, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM ledger_entries WHERE org_id = '"+org+"' AND kind LIKE 'org.%'")
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(rs)
		}
		if p, o := kinds("platform"), kinds(beta); p != "4" || o != "4" {
			t.Fatalf("org.* entries: platform %s, Beta %s; want 4 each (created, renamed, suspended, resumed)", p, o)
		}
	})
}

// TestSuspendedOrgQueueIsHeld: an action accepted before suspension is not
// delivered while the organisation is suspended (the job claim skips it),
// and is delivered once after resuming; the fake Telegram's record is the witness.
func TestSuspendedOrgQueueIsHeld(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.platformKey()
		r := e.do("POST", "/v1/orgs", op, map[string]any{"name": "Beta", "admin_key": true})
		if r.status != 201 {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		beta := r.str("org", "id")
		acc, err := e.s.CreateAccount(context.Background(), herald.Account{Org: beta, Name: "b", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		opB := e.newKey(beta, "beta-op", herald.RoleOperator)
		req := e.sendReq("-100555", "transactional", "held while suspended")
		req["account"] = acc.ID
		if r := e.do("POST", "/v1/actions", opB, req); r.status != 201 {
			t.Fatalf("submit = %d %s", r.status, r.raw)
		}
		// Org A keeps sending while Beta is held.
		if r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq("-1001", "transactional", "A goes on")); r.status != 201 {
			t.Fatalf("submit A = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"status": "suspended"}); r.status != 200 {
			t.Fatalf("suspend = %d %s", r.status, r.raw)
		}
		sent := func(text string) int {
			n := 0
			for _, m := range e.sandbox.Messages() {
				if strings.Contains(fmt.Sprint(m), text) {
					n++
				}
			}
			return n
		}
		// Run the worker until A's action is out (a send-time policy check
		// that times out on a loaded machine retries a little later).
		for i := 0; i < 5 && sent("A goes on") == 0; i++ {
			e.deliverAll()
			e.advance(time.Minute)
		}
		if sent("held while suspended") != 0 || sent("A goes on") != 1 {
			t.Fatalf("while suspended: Beta sent %d, A sent %d; want 0 and 1", sent("held while suspended"), sent("A goes on"))
		}
		if r := e.do("POST", "/v1/actions", opB, req); r.status != 403 {
			t.Fatalf("submit while suspended = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/orgs/"+beta, op, map[string]any{"status": "active"}); r.status != 200 {
			t.Fatalf("resume = %d %s", r.status, r.raw)
		}
		for i := 0; i < 5 && sent("held while suspended") == 0; i++ {
			e.deliverAll()
			e.advance(time.Minute)
		}
		if n := sent("held while suspended"); n != 1 {
			t.Fatalf("after resuming, Beta's action was sent %d times, want 1", n)
		}
	})
}

// TestOrgDeleteErasesPersonalData: deleting an organisation erases its
// contacts, consent history, message content and ledger payloads, revokes
// its keys and people, leaves org A untouched, and its ledger still
// verifies, ending in a signed checkpoint that covers the deletion.
func TestOrgDeleteErasesPersonalData(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		op := e.platformKey()
		r := e.do("POST", "/v1/orgs", op, map[string]any{"name": "Beta", "admin_key": true, "admin_telegram_id": "4711"})
		if r.status != 201 || r.str("admin_person", "principal") != "tg:4711" {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		beta, adminB := r.str("org", "id"), r.str("admin_token")
		acc, err := e.s.CreateAccount(ctx, herald.Account{Org: beta, Name: "b", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		coB := e.newKey(beta, "beta-co", herald.RoleComplianceOfficer)
		opB := e.newKey(beta, "beta-op", herald.RoleOperator)
		if r := e.do("POST", "/v1/contacts:import", coB, []map[string]any{
			{"chat_id": "9001", "purpose": "support", "legal_basis": "contract", "source": "crm"},
			{"chat_id": "9002", "purpose": "marketing", "legal_basis": "consent", "source": "crm"}}); r.status >= 300 {
			t.Fatalf("import = %d %s", r.status, r.raw)
		}
		req := e.sendReq("9001", "support", "secret message text for 9001")
		req["account"] = acc.ID
		if r := e.do("POST", "/v1/actions", opB, req); r.status != 201 {
			t.Fatalf("submit = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{{"chat_id": "42", "purpose": "support", "legal_basis": "contract", "source": "t"}}); r.status >= 300 {
			t.Fatalf("import A = %d %s", r.status, r.raw)
		}
		contactsA := e.count("SELECT count(*) FROM contacts WHERE org_id = '" + e.org.ID + "'")
		e.deliverAll()
		for what, q := range map[string]string{
			"ledger payloads":  "SELECT count(*) FROM ledger_payloads WHERE org_id = '" + beta + "'",
			"decision records": "SELECT count(*) FROM decision_records WHERE org_id = '" + beta + "'",
			"receipts":         "SELECT count(*) FROM actions WHERE org_id = '" + beta + "' AND receipt IS NOT NULL",
			"people":           "SELECT count(*) FROM people WHERE org_id = '" + beta + "'",
		} {
			if e.count(q) == 0 {
				t.Fatalf("the test needs %s in Beta to erase", what)
			}
		}

		for role, tok := range e.keys {
			if r := e.do("DELETE", "/v1/orgs/"+beta, tok, nil); r.status != 403 {
				t.Fatalf("%s deletes an org: %d", role, r.status)
			}
		}
		if r := e.do("DELETE", "/v1/orgs/"+beta, adminB, nil); r.status != 403 {
			t.Fatalf("the org's own admin deletes it: %d", r.status)
		}
		r = e.do("DELETE", "/v1/orgs/"+beta, op, nil)
		if r.status != 200 || r.str("org", "status") != "deleted" || r.body["checkpoint"] == nil {
			t.Fatalf("delete = %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", "/v1/orgs/"+beta, op, nil); r.status != 409 {
			t.Fatalf("delete twice = %d %s", r.status, r.raw)
		}
		for _, q := range []string{
			"SELECT count(*) FROM contacts WHERE org_id = '" + beta + "'",
			"SELECT count(*) FROM consent_events WHERE contact_id NOT IN (SELECT id FROM contacts)",
			"SELECT count(*) FROM ledger_payloads WHERE org_id = '" + beta + "'",
			"SELECT count(*) FROM actions WHERE org_id = '" + beta + "' AND target <> 'erased'",
			"SELECT count(*) FROM api_keys WHERE org_id = '" + beta + "' AND revoked_at IS NULL",
			"SELECT count(*) FROM people WHERE org_id = '" + beta + "'",
			"SELECT count(*) FROM decision_records WHERE org_id = '" + beta + "'",
			"SELECT count(*) FROM actions WHERE org_id = '" + beta + "' AND receipt IS NOT NULL",
			"SELECT count(*) FROM access_bindings WHERE org_id = '" + beta + "'",
			"SELECT count(*) FROM jobs WHERE org_id = '" + beta + "'",
		} {
			if n := e.count(q); n != 0 {
				t.Errorf("after delete, %s = %d", q, n)
			}
		}
		if n := e.count("SELECT count(*) FROM contacts WHERE org_id = '" + e.org.ID + "'"); n != contactsA {
			t.Fatalf("deleting Beta touched A's contacts: %d → %d", contactsA, n)
		}
		for _, tok := range []string{adminB, coB, opB} {
			if r := e.do("GET", "/v1/me", tok, nil); r.status < 400 {
				t.Fatalf("a deleted org's key still works: %d", r.status)
			}
		}
		// The chain verifies, every entry covered by the final checkpoint.
		v, err := note.NewVerifier(e.vkey)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := store.NewLedgerLogs(e.s, "", nil).VerifyLedger(ctx, beta, store.LedgerExportOptions{}, note.VerifierList(v))
		// The final checkpoint covers every entry but its own ledger.checkpoint
		// record (which the next checkpoint would cover), org.deleted included.
		size, _ := r.body["checkpoint"].(map[string]any)["size"].(float64)
		if err != nil || rep.Problem != "" || rep.Uncovered != 1 || uint64(size) != rep.Entries-1 || rep.PayloadsPurged == 0 {
			t.Fatalf("Beta's ledger after deletion (checkpoint size %v): %+v, %v", size, rep, err)
		}
		if n := e.count("SELECT count(*) FROM ledger_entries WHERE org_id = '" + beta + "' AND kind = 'org.deleted' AND seq < " + fmt.Sprint(int(size))); n != 1 {
			t.Fatal("the final checkpoint does not cover the org.deleted entry")
		}
		if e.count("SELECT count(*) FROM ledger_entries WHERE org_id = '"+beta+"' AND kind = 'org.deleted'") != 1 ||
			e.count("SELECT count(*) FROM ledger_entries WHERE org_id = 'platform' AND kind = 'org.deleted'") != 1 {
			t.Fatal("the deletion is not in both chains")
		}
	})
}

// TestPeopleInviteLoginRevoke: an admin invites a person by Telegram id;
// they log in with Telegram (no API key) and act by their role; revoking
// them refuses their live session on its next request and their next login.
func TestPeopleInviteLoginRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		if _, err := e.secrets.Put(ctx, "herald/login-bot", map[string]string{"token": loginBotToken}, secrets.NoCAS); err != nil {
			t.Fatal(err)
		}
		admin := e.keys[herald.RoleAdmin]
		login := func(id string) response {
			return e.do("POST", "/v1/auth/telegram?org="+e.org.ID, "", widget(map[string]string{"id": id, "auth_date": fmt.Sprint(e.s.Now().Unix())}, loginBotToken))
		}
		if r := login("31337"); r.status != 401 {
			t.Fatalf("login before the invitation = %d %s", r.status, r.raw)
		}
		orgB, err := e.s.CreateOrg(ctx, "Beta", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		accB, err := e.s.CreateAccount(ctx, herald.Account{Org: orgB.ID, Name: "b", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		before, bindings := e.counts(), countBindings(t, e.s)
		for name, body := range map[string]any{
			"bad id":             map[string]any{"telegram_id": "abc", "roles": []any{map[string]any{"role": "operator"}}},
			"no roles":           map[string]any{"telegram_id": "31337", "roles": []any{}},
			"unknown role":       map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "king"}}},
			"other org's scope":  map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "operator", "scope": "accounts/" + accB.ID}}},
			"missing scope":      map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "operator", "scope": "accounts/does-not-exist"}}},
			"NUL in name":        map[string]any{"telegram_id": "31337", "name": "a\u0000b", "roles": []any{map[string]any{"role": "operator"}}},
			"negative id":        map[string]any{"telegram_id": "-5", "roles": []any{map[string]any{"role": "operator"}}},
			"operator as caller": nil,
		} {
			tok := admin
			if body == nil {
				tok, body = e.keys[herald.RoleOperator], map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "admin"}}}
				if r := e.do("POST", "/v1/people", tok, body); r.status != 403 {
					t.Errorf("%s: %d %s", name, r.status, r.raw)
				}
				continue
			}
			if r := e.do("POST", "/v1/people", tok, body); r.status != 422 || r.str("code") != "validation_failed" {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before || countBindings(t, e.s) != bindings || e.count("SELECT count(*) FROM people") != 0 {
			t.Fatalf("refused invitations changed something: %+v → %+v", before, after)
		}

		r := e.do("POST", "/v1/people", admin, map[string]any{"telegram_id": "31337", "name": "Ops Person",
			"roles": []any{map[string]any{"role": "operator", "scope": "accounts/" + e.account.ID}, map[string]any{"role": "auditor"}}})
		if r.status != 201 || r.str("principal") != "tg:31337" || len(r.body["bindings"].([]any)) != 2 {
			t.Fatalf("invite = %d %s", r.status, r.raw)
		}
		person := r.str("id")
		if r := e.do("POST", "/v1/people", admin, map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "auditor"}}}); r.status != 409 {
			t.Fatalf("invite twice = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/people", e.keys[herald.RoleAuditor], nil); r.status != 403 {
			t.Fatalf("auditor lists people = %d", r.status)
		}
		if r := e.do("GET", "/v1/people", admin, nil); r.status != 200 || !strings.Contains(string(r.raw), person) {
			t.Fatalf("list people = %d %s", r.status, r.raw)
		}
		lr := login("31337")
		if lr.status != 200 || lr.str("principal") != "tg:31337" {
			t.Fatalf("login of the invited person = %d %s", lr.status, lr.raw)
		}
		session := lr.str("token")
		if r := e.do("POST", "/v1/actions", session, e.sendReq("-1001", "transactional", "as a person")); r.status != 201 {
			t.Fatalf("the person submits on their account = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/ledger/entries?from=0&limit=5", session, nil); r.status != 200 {
			t.Fatalf("the person reads the ledger as auditor = %d %s", r.status, r.raw)
		}
		// Revocation: several live sessions, all refused on their next request.
		second := login("31337").str("token")
		if r := e.do("DELETE", "/v1/people/"+person, admin, nil); r.status != 200 {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		for _, s := range []string{session, second} {
			if r := e.do("GET", "/v1/me", s, nil); r.status != 401 {
				t.Fatalf("a revoked person's session = %d %s", r.status, r.raw)
			}
		}
		if r := login("31337"); r.status != 401 {
			t.Fatalf("a revoked person logs in = %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", "/v1/people/"+person, admin, nil); r.status != 404 {
			t.Fatalf("revoke twice = %d %s", r.status, r.raw)
		}
		if n := e.count("SELECT count(*) FROM access_bindings WHERE principal = 'tg:31337'"); n != 0 {
			t.Fatalf("%d bindings left after revocation", n)
		}
		// Invited again: a new invitation; the old sessions stay dead.
		if r := e.do("POST", "/v1/people", admin, map[string]any{"telegram_id": "31337", "roles": []any{map[string]any{"role": "auditor"}}}); r.status != 201 {
			t.Fatalf("re-invite = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/me", session, nil); r.status != 401 {
			t.Fatalf("an old session after re-invitation = %d %s", r.status, r.raw)
		}
		if r := login("31337"); r.status != 200 {
			t.Fatalf("login after re-invitation = %d %s", r.status, r.raw)
		}
	})
}

// TestRevokedSessionRefusedOnAnotherReplica: two gateways (each with its
// own access enforcer, as two replicas have) over one database; a person
// revoked through one is refused on the other on the very next request,
// before any access reload could reach it.
func TestRevokedSessionRefusedOnAnotherReplica(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		if _, err := e.secrets.Put(ctx, "herald/login-bot", map[string]string{"token": loginBotToken}, secrets.NoCAS); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", "/v1/people", e.keys[herald.RoleAdmin], map[string]any{"telegram_id": "999", "roles": []any{map[string]any{"role": "operator"}}}); r.status != 201 {
			t.Fatalf("invite = %d %s", r.status, r.raw)
		}
		person := e.do("GET", "/v1/people", e.keys[herald.RoleAdmin], nil).body["people"].([]any)[0].(map[string]any)["id"].(string)
		replica := e.replica() // its enforcer loaded now, with the person's binding
		lr := e.do("POST", "/v1/auth/telegram?org="+e.org.ID, "", widget(map[string]string{"id": "999", "auth_date": fmt.Sprint(e.s.Now().Unix())}, loginBotToken))
		session := lr.str("token")
		if r := replica.do("GET", "/v1/actions", session, nil); r.status != 200 {
			t.Fatalf("the session on the other replica = %d %s", r.status, r.raw)
		}
		// Concurrent clients keep using the session on the replica while it is revoked.
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					replica.do("GET", "/v1/me", session, nil)
				}
			}()
		}
		if r := e.do("DELETE", "/v1/people/"+person, e.keys[herald.RoleAdmin], nil); r.status != 200 {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		wg.Wait()
		if r := replica.do("GET", "/v1/actions", session, nil); r.status != 401 {
			t.Fatalf("the other replica still accepts a revoked person's session: %d %s", r.status, r.raw)
		}
	})
}

// TestKeysAPI: an admin creates a key scoped to one account with an expiry
// and a description; its token is shown once, works on that account only,
// and stops at revocation. Listing shows no secret. Bad input is 422.
func TestKeysAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		admin := e.keys[herald.RoleAdmin]
		other, err := e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "other", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		orgB, err := e.s.CreateOrg(ctx, "Beta", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		accB, err := e.s.CreateAccount(ctx, herald.Account{Org: orgB.ID, Name: "b", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		before, bindings := e.counts(), countBindings(t, e.s)
		for name, body := range map[string]any{
			"unknown role":      map[string]any{"role": "king"},
			"other org's scope": map[string]any{"role": "operator", "scope": "accounts/" + accB.ID},
			"missing scope":     map[string]any{"role": "operator", "scope": "accounts/does-not-exist"},
			"past expiry":       map[string]any{"role": "operator", "expires_at": "2001-01-01T00:00:00Z"},
			"person principal":  map[string]any{"role": "operator", "principal": "tg:1"},
			"NUL description":   map[string]any{"role": "operator", "description": "a\u0000b"},
		} {
			if r := e.do("POST", "/v1/keys", admin, body); r.status != 422 {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := e.do("POST", "/v1/keys", e.keys[herald.RoleOperator], map[string]any{"role": "admin"}); r.status != 403 {
			t.Errorf("operator creates a key: %d", r.status)
		}
		if after := e.counts(); after != before || countBindings(t, e.s) != bindings {
			t.Fatalf("refused keys changed something: %+v → %+v", before, after)
		}
		exp := e.s.Now().Add(48 * 3600e9).Format("2006-01-02T15:04:05Z07:00")
		r := e.do("POST", "/v1/keys", admin, map[string]any{"role": "operator", "scope": "accounts/" + e.account.ID, "description": "CI pipeline", "expires_at": exp})
		if r.status != 201 || r.str("token") == "" || r.str("key", "name") != "CI pipeline" || r.str("scope") != "accounts/"+e.account.ID {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		tok, id := r.str("token"), r.str("key", "id")
		if r := e.do("POST", "/v1/actions", tok, e.sendReq("-1001", "transactional", "scoped")); r.status != 201 {
			t.Fatalf("scoped key on its account = %d %s", r.status, r.raw)
		}
		req := e.sendReq("-1001", "transactional", "elsewhere")
		req["account"] = other.ID
		if r := e.do("POST", "/v1/actions", tok, req); r.status != 403 {
			t.Fatalf("scoped key on another account = %d %s", r.status, r.raw)
		}
		list := e.do("GET", "/v1/keys", admin, nil)
		if list.status != 200 || !strings.Contains(string(list.raw), id) || strings.Contains(string(list.raw), tok) || strings.Contains(string(list.raw), strings.Split(tok, "_")[2]) {
			t.Fatalf("list = %d %s", list.status, list.raw)
		}
		if r := e.do("DELETE", "/v1/keys/"+id, admin, nil); r.status != 200 || r.body["revoked"] == nil {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/me", tok, nil); r.status != 401 {
			t.Fatalf("a revoked key = %d", r.status)
		}
		if r := e.do("DELETE", "/v1/keys/"+missingID, admin, nil); r.status != 404 {
			t.Fatalf("revoke a missing key = %d", r.status)
		}
		if n := e.count("SELECT count(*) FROM ledger_entries WHERE org_id = '" + e.org.ID + "' AND kind IN ('key.created', 'key.revoked')"); n < 2 {
			t.Fatalf("%d key ledger entries", n)
		}
	})
}

// TestRoleBindingScopeMustNameOwnAccount: a binding scoped to another
// organisation's account or to no account is refused with 422 and changes nothing.
func TestRoleBindingScopeMustNameOwnAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		orgB, err := e.s.CreateOrg(ctx, "Beta", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		accB, err := e.s.CreateAccount(ctx, herald.Account{Org: orgB.ID, Name: "b", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		before, bindings := e.counts(), countBindings(t, e.s)
		for _, scope := range []string{"accounts/" + accB.ID, "accounts/does-not-exist"} {
			r := e.do("POST", "/v1/roles/bindings", e.keys[herald.RoleAdmin], map[string]any{"principal": "operator-1", "role": "operator", "scope": scope})
			if r.status != 422 || r.str("code") != "validation_failed" || !strings.Contains(string(r.raw), `"scope"`) {
				t.Errorf("scope %s = %d %s", scope, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before || countBindings(t, e.s) != bindings {
			t.Fatalf("refused bindings changed something: %+v → %+v", before, after)
		}
		if r := e.do("POST", "/v1/roles/bindings", e.keys[herald.RoleAdmin], map[string]any{"principal": "operator-1", "role": "operator", "scope": "accounts/" + e.account.ID}); r.status != 201 {
			t.Fatalf("scope on an own account = %d %s", r.status, r.raw)
		}
	})
}

// TestContactsListAndConsentHistory: contacts are found by every filter
// and paged by cursor without loss or repetition; a contact's consent
// history records grants, changes, withdrawals and the opt-out.
func TestContactsListAndConsentHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co := e.keys[herald.RoleComplianceOfficer]
		var rows []map[string]any
		for i := 0; i < 120; i++ {
			row := map[string]any{"chat_id": fmt.Sprint(5000 + i), "purpose": "support", "legal_basis": "contract", "source": "crm"}
			if i%3 == 0 {
				row["purpose"], row["legal_basis"], row["source"] = "marketing", "consent", "web-form"
			}
			if i%4 == 0 {
				row["language"] = "de"
			}
			switch {
			case i%10 == 0:
				row["tags"] = []string{"vip", "beta"}
			case i%5 == 0:
				row["tags"] = []string{"vip"}
			}
			rows = append(rows, row)
		}
		if r := e.do("POST", "/v1/contacts:import", co, rows); r.status >= 300 {
			t.Fatalf("import = %d %s", r.status, r.raw)
		}
		e.advance(3600e9)
		cut := e.s.Now()
		e.advance(3600e9)
		if r := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "7777", "purpose": "service", "legal_basis": "contract", "source": "late"}}); r.status >= 300 {
			t.Fatalf("import = %d %s", r.status, r.raw)
		}
		// Pages: every contact once.
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			r := e.do("GET", "/v1/contacts?limit=50&cursor="+url.QueryEscape(cursor), e.keys[herald.RoleOperator], nil)
			if r.status != 200 {
				t.Fatalf("page = %d %s", r.status, r.raw)
			}
			pages++
			for _, c := range r.body["contacts"].([]any) {
				id := c.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("contact %s on two pages", id)
				}
				seen[id] = true
			}
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
		}
		if len(seen) != 121 || pages != 3 {
			t.Fatalf("paging saw %d contacts in %d pages, want 121 in 3", len(seen), pages)
		}
		count := func(query string) int {
			r := e.do("GET", "/v1/contacts?limit=500&"+query, e.keys[herald.RoleAuditor], nil)
			if r.status != 200 {
				t.Fatalf("%s = %d %s", query, r.status, r.raw)
			}
			return len(r.body["contacts"].([]any))
		}
		optOut := e.do("GET", "/v1/contacts?chat_id=5001", co, nil).body["contacts"].([]any)[0].(map[string]any)["id"].(string)
		if r := e.do("POST", "/v1/contacts/"+optOut+"/opt-out", co, map[string]any{"source": "told support"}); r.status != 200 {
			t.Fatalf("opt out = %d %s", r.status, r.raw)
		}
		for query, want := range map[string]int{
			"chat_id=5003":                      1,
			"chat_id=1":                         0,
			"consent=marketing":                 40,
			"no_consent=support":                41,
			"consent=support&consent=marketing": 0,
			"language=de":                       30,
			"source=web-form":                   40,
			"source=late":                       1,
			"opted_out=true":                    1,
			"opted_out=false":                   120,
			"imported_from=" + url.QueryEscape(cut.Format("2006-01-02T15:04:05Z07:00")): 1,
			"imported_to=" + url.QueryEscape(cut.Format("2006-01-02T15:04:05Z07:00")):   120,
			"consent=marketing&language=de":                                             10,
			"tag=vip":                                                                   24,
			"tag=vip&tag=beta":                                                          12,
			"tag=vip&language=de":                                                       6,
			"tag=nobody":                                                                0,
		} {
			if got := count(query); got != want {
				t.Errorf("GET /v1/contacts?%s: %d contacts, want %d", query, got, want)
			}
		}
		for _, query := range []string{"limit=0", "limit=501", "limit=x", "consent=spam", "opted_out=maybe", "imported_from=yesterday", "tag=a%2Cb", "tag=%20vip"} {
			if r := e.do("GET", "/v1/contacts?"+query, co, nil); r.status != 422 || r.str("code") != "validation_failed" {
				t.Errorf("GET /v1/contacts?%s = %d %s", query, r.status, r.raw)
			}
		}
		// Bad bytes are refused before any handler (invalid_encoding).
		for _, query := range []string{"chat_id=%FF", "language=a%00b", "tag=%FF"} {
			if r := e.do("GET", "/v1/contacts?"+query, co, nil); r.status != 400 || r.str("code") != "invalid_encoding" {
				t.Errorf("GET /v1/contacts?%s = %d %s", query, r.status, r.raw)
			}
		}
		// Consent history: granted (import), changed (re-import), withdrawn (patch), opted out.
		id := e.do("GET", "/v1/contacts?chat_id=5000", co, nil).body["contacts"].([]any)[0].(map[string]any)["id"].(string)
		if r := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "5000", "purpose": "marketing", "legal_basis": "legitimate_interest", "source": "renewal"}}); r.status >= 300 {
			t.Fatalf("re-import = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/contacts/"+id, co, map[string]any{"revoke_purposes": []string{"marketing"}}); r.status != 200 {
			t.Fatalf("withdraw = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/contacts/"+id+"/opt-out", co, map[string]any{"source": "STOP"}); r.status != 200 {
			t.Fatalf("opt out = %d %s", r.status, r.raw)
		}
		h := e.do("GET", "/v1/contacts/"+id+"/consents", e.keys[herald.RoleOperator], nil)
		if h.status != 200 {
			t.Fatalf("history = %d %s", h.status, h.raw)
		}
		var events []string
		for _, ev := range h.body["history"].([]any) {
			m := ev.(map[string]any)
			src, _ := m["source"].(string)
			events = append(events, fmt.Sprint(m["purpose"], ":", m["event"], ":", src))
		}
		want := "marketing:granted:web-form marketing:changed:renewal marketing:withdrawn: *:opted_out:STOP"
		if got := strings.Join(events, " "); got != want {
			t.Fatalf("history = %s\nwant      %s", got, want)
		}
		if r := e.do("GET", "/v1/contacts/"+missingID+"/consents", co, nil); r.status != 404 {
			t.Fatalf("history of a missing contact = %d", r.status)
		}
	})
}

// replica is a second gateway over the same database, as another process
// would be: its own access enforcer (loaded now, then never reloaded by
// this test) and its own HTTP server; only the database and the secret
// store (the session key) are shared.
func (e *env) replica() *env {
	e.t.Helper()
	ctx := context.Background()
	authz, err := access.NewEnforcer(ctx, e.s)
	if err != nil {
		e.t.Fatal(err)
	}
	m := telemetry.New(nil)
	pl := &gateway.Pipeline{Store: e.s, Authz: authz, Decider: defaultEngine(e.t), Metrics: m}
	r := &env{t: e.t, s: e.s, org: e.org, account: e.account, keys: e.keys, secrets: e.secrets, authz: authz}
	r.srv = httptest.NewServer((&gateway.Server{Pipeline: pl, Store: e.s, Metrics: m, Secrets: e.secrets,
		Sessions: &gateway.Sessions{Secrets: e.secrets, LoginBotPath: "herald/login-bot", Now: e.s.Now}}).Handler())
	e.t.Cleanup(r.srv.Close)
	return r
}

// TestCancelOwnActionsByModel: the access model (actions/own) decides that
// an operator cancels only their own actions, while an admin and a
// compliance officer cancel anyone's; a refused cancel changes nothing.
func TestCancelOwnActionsByModel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op2 := e.newKey(e.org.ID, "operator-2", herald.RoleOperator)
		submit := func(tok string) string {
			req := e.sendReq("-1001", "transactional", "later")
			req["schedule_at"] = daytime.Add(3 * 3600e9).Format("2006-01-02T15:04:05Z07:00")
			r := e.do("POST", "/v1/actions", tok, req)
			if r.status != 201 || r.str("action", "status") != "scheduled" {
				t.Fatalf("submit = %d %s", r.status, r.raw)
			}
			return r.str("action", "id")
		}
		mine, theirs, third := submit(e.keys[herald.RoleOperator]), submit(op2), submit(op2)
		if r := e.do("POST", "/v1/actions/"+theirs+"/cancel", e.keys[herald.RoleOperator], nil); r.status != 403 || r.str("code") != "forbidden" {
			t.Fatalf("an operator cancels another's action = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/actions/"+theirs, op2, nil); r.str("action", "status") != "scheduled" {
			t.Fatalf("a refused cancel changed the action: %s", r.raw)
		}
		if r := e.do("POST", "/v1/actions/"+mine+"/cancel", e.keys[herald.RoleOperator], nil); r.status != 200 {
			t.Fatalf("an operator cancels their own = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions/"+theirs+"/cancel", e.keys[herald.RoleAdmin], nil); r.status != 200 {
			t.Fatalf("an admin cancels an operator's = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions/"+third+"/cancel", e.keys[herald.RoleComplianceOfficer], nil); r.status != 200 {
			t.Fatalf("a compliance officer cancels an operator's = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions/"+third+"/cancel", e.keys[herald.RoleApprover], nil); r.status != 403 {
			t.Fatalf("an approver cancels = %d %s", r.status, r.raw)
		}
	})
}

// TestPlatformRoutesBadBytes: NUL bytes, control characters and invalid
// UTF-8 in the new routes' path segments, query values and bodies are bad
// input (4xx problem+json), never a 500, and change nothing, on both stores.
func TestPlatformRoutesBadBytes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op := e.platformKey()
		admin, co := e.keys[herald.RoleAdmin], e.keys[herald.RoleComplianceOfficer]
		before, bindings := e.counts(), countBindings(t, e.s)
		orgs := e.count("SELECT count(*) FROM orgs")
		cases := []struct {
			method, path, token string
			body                any
		}{
			{"PATCH", "/v1/orgs/%FF", op, map[string]any{"name": "x"}},
			{"PATCH", "/v1/orgs/a%00b", op, map[string]any{"status": "suspended"}},
			{"DELETE", "/v1/orgs/%FF%FE", op, nil},
			{"POST", "/v1/orgs", op, map[string]any{"name": "tab\there"}},
			{"POST", "/v1/orgs", op, map[string]any{"name": "ok", "timezone": "Europe/\u0000Berlin"}},
			{"POST", "/v1/orgs", op, []byte("{\"name\":\"ok\",\"admin_telegram_id\":\"1\xff\"}")},
			{"PATCH", "/v1/orgs/" + e.org.ID, op, map[string]any{"name": "a\u0000b"}},
			{"DELETE", "/v1/people/%FF", admin, nil},
			{"DELETE", "/v1/people/a%00", admin, nil},
			{"POST", "/v1/people", admin, map[string]any{"telegram_id": "1\u00002", "roles": []any{map[string]any{"role": "operator"}}}},
			{"POST", "/v1/people", admin, map[string]any{"telegram_id": "12", "roles": []any{map[string]any{"role": "operator", "scope": "accounts/a\u0000b"}}}},
			{"POST", "/v1/people", admin, []byte("{\"telegram_id\":\"12\",\"name\":\"\xc3\x28\",\"roles\":[{\"role\":\"operator\"}]}")},
			{"DELETE", "/v1/keys/%FF", admin, nil},
			{"POST", "/v1/keys", admin, map[string]any{"role": "operator", "scope": "accounts/\u0000"}},
			{"POST", "/v1/keys", admin, map[string]any{"role": "operator", "principal": "a\u0000b"}},
			{"POST", "/v1/keys", admin, []byte("{\"role\":\"operator\",\"description\":\"\xff\"}")},
			{"POST", "/v1/roles/bindings", admin, map[string]any{"principal": "operator-1", "role": "operator", "scope": "accounts/\u0000"}},
			{"GET", "/v1/contacts?chat_id=%FF", co, nil},
			{"GET", "/v1/contacts?source=a%00b", co, nil},
			{"GET", "/v1/contacts?cursor=%FF", co, nil},
			{"GET", "/v1/contacts?language=%C3%28", co, nil},
			{"GET", "/v1/contacts/%FF/consents", co, nil},
			{"GET", "/v1/contacts/a%00b/consents", co, nil},
		}
		for _, c := range cases {
			r := e.do(c.method, c.path, c.token, c.body)
			if r.status < 400 || r.status >= 500 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") || r.str("code") == "" {
				t.Errorf("%s %s = %d %s", c.method, c.path, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before || countBindings(t, e.s) != bindings || e.count("SELECT count(*) FROM orgs") != orgs ||
			e.count("SELECT count(*) FROM people") != 0 {
			t.Fatalf("bad bytes changed something: %+v → %+v", before, after)
		}
	})
}
