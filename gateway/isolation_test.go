package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

// missingID is an id no organisation has: org B's ids must be answered
// exactly as this one is, so another tenant's ids cannot be probed.
const missingID = "01a1fcf0-0000-7000-8000-000000000000"

// isolationProbe is one request on org B's objects. {action}, {account},
// {contact} and {principal} in path and body are replaced by B's ids (and
// by missing ones for the comparison request).
type isolationProbe struct {
	method, path string
	body         map[string]any
	// want is the answer when the role may use the route at all: 404
	// not_found for an id in the path, 422 validation_failed for an id in
	// the body (exactly as for a missing id).
	want int
	code string
}

// TestTenantIsolation: with each role's key of org A, every /v1 endpoint
// is tried on org B's ids. Id-addressed routes answer 404 (a role that may
// not use the route at all gets its 403 for any id, B's or missing, so the
// answer never depends on B), ids in bodies are unknown (422), listings
// hold only A's rows, and nothing changes. Runs with the Casbin enforcer.
func TestTenantIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b)
		orgB, err := e.s.CreateOrg(ctx, "Beta", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		accB, err := e.s.CreateAccount(ctx, herald.Account{Org: orgB.ID, Name: "beta bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		keysB := map[string]string{}
		for _, role := range herald.Roles {
			_, tok, err := e.s.CreateAPIKey(ctx, orgB.ID, "beta-"+role, role, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			keysB[role] = tok
		}
		withCasbin(e)

		// Org B's objects, made through the API with B's keys; and a few of A's.
		r := e.do("POST", "/v1/contacts:import", keysB[herald.RoleComplianceOfficer], []map[string]any{{"chat_id": "777", "purpose": "support", "legal_basis": "contract", "source": "t"}})
		if r.status != 200 && r.status != 201 {
			t.Fatalf("import B = %d %s", r.status, r.raw)
		}
		contactB := r.body["contacts"].([]any)[0].(string)
		req := e.sendReq("-100777", "transactional", "beta")
		req["account"] = accB.ID
		r = e.do("POST", "/v1/actions", keysB[herald.RoleOperator], req)
		if r.status != 201 {
			t.Fatalf("submit B = %d %s", r.status, r.raw)
		}
		actionB := r.str("action", "id")
		if r := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{{"chat_id": "42", "purpose": "support", "legal_basis": "contract", "source": "t"}}); r.status >= 300 {
			t.Fatalf("import A = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq("-1001", "transactional", "acme")); r.status != 201 {
			t.Fatalf("submit A = %d %s", r.status, r.raw)
		}
		// B's person and key, for /v1/people/{id} and /v1/keys/{id}.
		r = e.do("POST", "/v1/people", keysB[herald.RoleAdmin], map[string]any{"telegram_id": "4242", "roles": []any{map[string]any{"role": "auditor"}}})
		if r.status != 201 {
			t.Fatalf("invite B = %d %s", r.status, r.raw)
		}
		personB := r.str("id")
		r = e.do("POST", "/v1/keys", keysB[herald.RoleAdmin], map[string]any{"role": "operator", "description": "B's"})
		if r.status != 201 {
			t.Fatalf("key B = %d %s", r.status, r.raw)
		}
		keyB := r.str("key", "id")
		idsB := map[string]string{"{action}": actionB, "{account}": accB.ID, "{contact}": contactB, "{principal}": "beta-" + herald.RoleAdmin,
			"{person}": personB, "{key}": keyB, "{org}": orgB.ID}
		idsMissing := map[string]string{"{action}": missingID, "{account}": missingID, "{contact}": missingID, "{principal}": "nobody-" + missingID,
			"{person}": missingID, "{key}": missingID, "{org}": missingID}
		subst := func(s string, ids map[string]string) string {
			for k, v := range ids {
				s = strings.ReplaceAll(s, k, v)
			}
			return s
		}
		var substValue func(v any, ids map[string]string) any
		substValue = func(v any, ids map[string]string) any {
			switch x := v.(type) {
			case string:
				return subst(x, ids)
			case []any:
				out := make([]any, len(x))
				for i, it := range x {
					out[i] = substValue(it, ids)
				}
				return out
			case map[string]any:
				out := map[string]any{}
				for k, it := range x {
					out[k] = substValue(it, ids)
				}
				return out
			}
			return v
		}
		substBody := func(m map[string]any, ids map[string]string) any {
			if m == nil {
				return nil
			}
			return substValue(m, ids)
		}
		sendVia := func(account, target string) map[string]any {
			m := e.sendReq(target, "transactional", "x")
			m["account"] = account
			return m
		}
		probes := []isolationProbe{
			{"GET", "/v1/actions/{action}", nil, 404, "not_found"},
			{"POST", "/v1/actions/{action}/cancel", nil, 404, "not_found"},
			{"GET", "/v1/accounts/{account}", nil, 404, "not_found"},
			{"PATCH", "/v1/accounts/{account}", map[string]any{"name": "pwned", "status": "paused"}, 404, "not_found"},
			{"GET", "/v1/contacts/{contact}", nil, 404, "not_found"},
			{"PATCH", "/v1/contacts/{contact}", map[string]any{"language": "xx", "timezone": "UTC"}, 404, "not_found"},
			{"POST", "/v1/contacts/{contact}/opt-out", map[string]any{"source": "isolation test"}, 404, "not_found"},
			{"POST", "/v1/actions", sendVia("{account}", "-1001"), 422, "validation_failed"},
			{"POST", "/v1/actions", sendVia(e.account.ID, "{contact}"), 422, "validation_failed"},
			{"POST", "/v1/actions?dry_run=true", sendVia("{account}", "{contact}"), 422, "validation_failed"},
			{"DELETE", "/v1/roles/bindings?principal={principal}&role=admin", nil, 404, "not_found"},
			{"POST", "/v1/roles/bindings", map[string]any{"principal": "{principal}", "role": "auditor"}, 422, "validation_failed"},
			{"POST", "/v1/roles/bindings", map[string]any{"principal": "operator-1", "role": "operator", "scope": "accounts/{account}"}, 422, "validation_failed"},
			{"DELETE", "/v1/people/{person}", nil, 404, "not_found"},
			{"POST", "/v1/people", map[string]any{"telegram_id": "5151", "roles": []any{map[string]any{"role": "operator", "scope": "accounts/{account}"}}}, 422, "validation_failed"},
			{"DELETE", "/v1/keys/{key}", nil, 404, "not_found"},
			{"POST", "/v1/keys", map[string]any{"role": "operator", "scope": "accounts/{account}"}, 422, "validation_failed"},
			{"GET", "/v1/contacts/{contact}/consents", nil, 404, "not_found"},
			// Organisation routes are the platform's: no org role may use them, whatever the id.
			{"PATCH", "/v1/orgs/{org}", map[string]any{"status": "suspended"}, 0, ""},
			{"DELETE", "/v1/orgs/{org}", nil, 0, ""},
		}
		covered := map[string]bool{}
		for _, p := range probes {
			covered[p.method+" "+strings.SplitN(p.path, "?", 2)[0]] = true
		}
		// Routes added later that address an action, account or contact by
		// id are probed too, with an empty object as body: whatever they
		// answer, B's id must be answered as a missing one, never with success.
		for _, rt := range (&gateway.Server{Metrics: telemetry.New(nil)}).Routes() {
			method, path, _ := strings.Cut(rt, " ")
			norm := path
			for _, typ := range []string{"action", "account", "contact"} {
				norm = strings.Replace(norm, "/"+typ+"s/{id}", "/"+typ+"s/{"+typ+"}", 1)
			}
			if !strings.HasPrefix(path, "/v1/") || covered[method+" "+norm] {
				continue
			}
			switch {
			case strings.Contains(norm, "{action}") || strings.Contains(norm, "{account}") || strings.Contains(norm, "{contact}"):
				var body map[string]any
				if method != "GET" && method != "DELETE" {
					body = map[string]any{}
				}
				probes = append(probes, isolationProbe{method: method, path: norm, body: body})
			case strings.Contains(path, "{"):
				t.Logf("not probed (no org-B id for it): %s", rt)
			}
		}

		var sweep []string
		for _, rt := range (&gateway.Server{Metrics: telemetry.New(nil)}).Routes() {
			if path, ok := strings.CutPrefix(rt, "GET "); ok && strings.HasPrefix(path, "/v1/") && !strings.Contains(path, "{") {
				sweep = append(sweep, path, path+"?from=0&to=100000&limit=1000&seq=3")
			}
		}

		before, beforeBindings := e.counts(), countBindings(t, e.s)
		reached := make([]bool, len(probes)) // some role got past authorization
		for role, token := range e.keys {
			for i, p := range probes {
				rb := e.do(p.method, subst(p.path, idsB), token, substBody(p.body, idsB))
				rm := e.do(p.method, subst(p.path, idsMissing), token, substBody(p.body, idsMissing))
				name := role + " " + p.method + " " + p.path
				if rb.status < 300 {
					t.Errorf("%s on org B's ids succeeded: %d %s", name, rb.status, rb.raw)
					continue
				}
				if rb.status != rm.status || rb.str("code") != rm.str("code") {
					t.Errorf("%s: B's id answers %d %s, a missing id %d %s: ids can be probed", name, rb.status, rb.str("code"), rm.status, rm.str("code"))
				}
				if rb.status != 403 {
					reached[i] = true
					if p.want != 0 && (rb.status != p.want || rb.str("code") != p.code) {
						t.Errorf("%s = %d %s, want %d %s", name, rb.status, rb.raw, p.want, p.code)
					}
				}
			}
			// Listings hold only A's rows, whatever the filter names.
			listings := map[string]string{
				"/v1/actions": "actions", "/v1/actions?account=" + accB.ID: "actions", "/v1/accounts": "accounts",
				"/v1/ledger/entries?from=0&limit=1000": "entries", "/v1/ledger/entries?from=1&to=100000": "entries",
				"/v1/roles/bindings": "bindings", "/v1/roles/bindings?principal=beta-admin": "bindings",
				"/v1/contacts": "contacts", "/v1/contacts?chat_id=777": "contacts", "/v1/contacts?source=t&limit=500": "contacts",
				"/v1/people": "people", "/v1/people?include_revoked=true": "people", "/v1/keys": "keys",
			}
			for path, member := range listings {
				r := e.do("GET", path, token, nil)
				if r.status == 403 {
					continue
				}
				if r.status != 200 {
					t.Errorf("%s GET %s = %d %s", role, path, r.status, r.raw)
					continue
				}
				items, _ := r.body[member].([]any)
				for _, it := range items {
					m := it.(map[string]any)
					if m["org"] != e.org.ID || slices.Contains([]any{actionB, accB.ID, contactB}, m["id"]) {
						t.Errorf("%s GET %s returned another org's row: %v", role, path, m)
					}
				}
			}
			if r := e.do("GET", "/v1/me", token, nil); r.str("org", "id") != e.org.ID {
				t.Errorf("%s /v1/me = %s", role, r.raw)
			}
			// Every GET route without path parameters (listings, ledger
			// checkpoints, exports, whatever is added later): no answer
			// mentions org B or any of its objects.
			for _, path := range sweep {
				r := e.do("GET", path, token, nil)
				for _, secret := range []string{orgB.ID, accB.ID, actionB, contactB, "beta-"} {
					if strings.Contains(string(r.raw), secret) {
						t.Errorf("%s GET %s mentions org B (%s): %d %s", role, path, secret, r.status, r.raw)
					}
				}
			}
		}
		for i, p := range probes {
			if p.want != 0 && !reached[i] {
				t.Errorf("no role of org A may use %s %s: the probe proves nothing", p.method, p.path)
			}
		}
		if after, afterBindings := e.counts(), countBindings(t, e.s); after != before || afterBindings != beforeBindings {
			t.Fatalf("probing org B changed the database: %+v/%d → %+v/%d", before, beforeBindings, after, afterBindings)
		}
		// B's objects, seen by B, are as they were.
		if r := e.do("GET", "/v1/accounts/"+accB.ID, keysB[herald.RoleAdmin], nil); r.status != 200 || r.str("name") != "beta bot" || r.str("status") != "active" {
			t.Fatalf("B's account = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/contacts/"+contactB, keysB[herald.RoleOperator], nil); r.status != 200 || r.body["opted_out_at"] != nil || r.str("language") != "" {
			t.Fatalf("B's contact = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/actions/"+actionB, keysB[herald.RoleOperator], nil); r.status != 200 || r.str("action", "status") == string(herald.StatusCancelled) {
			t.Fatalf("B's action = %d %s", r.status, r.raw)
		}
	})
}

// TestSuspendedOrgIsRefusedEverywhere: once its organisation is suspended,
// every key of every role and a person's live session get 403 on every
// authenticated route, and nothing changes; org A is not affected, and
// resuming restores B's access.
func TestSuspendedOrgIsRefusedEverywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b)
		op := e.platformKey()
		if _, err := e.secrets.Put(ctx, "herald/login-bot", map[string]string{"token": loginBotToken}, secrets.NoCAS); err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/v1/orgs", op, map[string]any{"name": "Beta", "admin_key": true, "admin_telegram_id": "6060"})
		if r.status != 201 {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		orgB := r.str("org", "id")
		tokens := map[string]string{"first admin key": r.str("admin_token")}
		for _, role := range herald.Roles {
			tokens[role] = e.newKey(orgB, "beta-"+role, role)
		}
		lr := e.do("POST", "/v1/auth/telegram?org="+orgB, "", widget(map[string]string{"id": "6060", "auth_date": fmt.Sprint(e.s.Now().Unix())}, loginBotToken))
		if lr.status != 200 {
			t.Fatalf("login = %d %s", lr.status, lr.raw)
		}
		tokens["person session"] = lr.str("token")
		if r := e.do("PATCH", "/v1/orgs/"+orgB, op, map[string]any{"status": "suspended"}); r.status != 200 {
			t.Fatalf("suspend = %d %s", r.status, r.raw)
		}
		before, beforeBindings := e.counts(), countBindings(t, e.s)
		for who, tok := range tokens {
			for _, rt := range (&gateway.Server{Metrics: telemetry.New(nil)}).Routes() {
				method, path, _ := strings.Cut(rt, " ")
				// Public routes (no key needed: the API document, the webhook,
				// login, the ledger's public keys) are not the org's to refuse.
				if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.json" || strings.HasPrefix(path, "/v1/telegram/") ||
					path == "/v1/auth/telegram" || path == "/v1/ledger/keys" {
					continue
				}
				path = strings.NewReplacer("{id}", missingID, "{version}", "1", "{account}", missingID).Replace(path)
				var body any
				if method != "GET" && method != "DELETE" {
					body = map[string]any{}
				}
				if r := e.do(method, path, tok, body); r.status != 403 || r.str("code") != "forbidden" {
					t.Errorf("%s %s %s while suspended = %d %s", who, method, path, r.status, r.raw)
				}
			}
		}
		if r := e.do("POST", "/v1/auth/telegram?org="+orgB, "", widget(map[string]string{"id": "6060", "auth_date": fmt.Sprint(e.s.Now().Unix())}, loginBotToken)); r.status != 403 {
			t.Errorf("login into a suspended org = %d %s", r.status, r.raw)
		}
		if after, afterBindings := e.counts(), countBindings(t, e.s); after != before || afterBindings != beforeBindings {
			t.Fatalf("a suspended org's requests changed the database: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/accounts", e.keys[herald.RoleAdmin], nil); r.status != 200 {
			t.Fatalf("org A while B is suspended = %d", r.status)
		}
		if r := e.do("PATCH", "/v1/orgs/"+orgB, op, map[string]any{"status": "active"}); r.status != 200 {
			t.Fatalf("resume = %d %s", r.status, r.raw)
		}
		for who, tok := range tokens {
			if r := e.do("GET", "/v1/me", tok, nil); r.status != 200 {
				t.Errorf("%s after resuming = %d %s", who, r.status, r.raw)
			}
		}
	})
}
