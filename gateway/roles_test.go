package gateway_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// withCasbin binds every unrevoked API key's principal to the key's role
// (as key creation does; tests create some keys straight in the store) and
// reloads the environment's Casbin enforcer.
func withCasbin(e *env) *access.Enforcer {
	e.t.Helper()
	ctx := context.Background()
	orgs, err := e.s.OrgIDs(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, org := range orgs {
		keys, err := e.s.ListAPIKeys(ctx, org)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, k := range keys {
			if k.RevokedAt == nil {
				if _, err := e.s.EnsureRole(ctx, org, k.Principal, k.Role, "test"); err != nil {
					e.t.Fatal(err)
				}
			}
		}
	}
	if err := e.authz.Reload(ctx); err != nil {
		e.t.Fatal(err)
	}
	return e.authz
}

func countBindings(t testing.TB, s *store.Store) int {
	t.Helper()
	n, err := store.CountForTest(context.Background(), s, "SELECT count(*) FROM access_bindings")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRoleBindingsAPI grants, scopes and revokes roles over HTTP and checks
// each change is effective on the next request and recorded in the ledger.
func TestRoleBindingsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b)
		admin, op, auditor := e.keys[herald.RoleAdmin], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		// An agency operator's key, made before the enforcer loads: it has
		// no binding yet, so it may do nothing.
		_, agency, err := e.s.CreateAPIKey(ctx, e.org.ID, "agency-op", herald.RoleOperator, "agency", nil)
		if err != nil {
			t.Fatal(err)
		}
		withCasbin(e)
		// withCasbin bound agency-op as an unrestricted operator (its key's
		// role); narrow it to one account.
		if r := e.do("DELETE", "/v1/roles/bindings?principal=agency-op&role=operator", admin, nil); r.status != 200 || r.str("revoked", "principal") != "agency-op" {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/me", agency, nil); r.status != 200 || len(r.body["roles"].([]any)) != 0 {
			t.Fatalf("me without bindings = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions", agency, e.sendReq("-1001", "transactional", "hi")); r.status != 403 || r.str("code") != "forbidden" {
			t.Fatalf("submit without a binding = %d %s", r.status, r.raw)
		}
		scope := "accounts/" + e.account.ID
		r := e.do("POST", "/v1/roles/bindings", admin, map[string]any{"principal": "agency-op", "role": "operator", "scope": scope})
		if r.status != 201 || r.str("scope") != scope || r.str("created_by") != herald.RoleAdmin+"-1" || r.str("org") != e.org.ID {
			t.Fatalf("grant = %d %s", r.status, r.raw)
		}
		other := e.do("POST", "/v1/accounts", admin, map[string]any{"name": "client B", "kind": "bot", "connector": "sandbox"})
		if other.status != 201 {
			t.Fatalf("create account = %d %s", other.status, other.raw)
		}
		if r := e.do("POST", "/v1/actions", agency, e.sendReq("-1001", "transactional", "hi")); r.status != 201 {
			t.Fatalf("scoped operator through its account = %d %s", r.status, r.raw)
		}
		viaB := e.sendReq("-1001", "transactional", "hi")
		viaB["account"] = other.str("id")
		if r := e.do("POST", "/v1/actions", agency, viaB); r.status != 403 {
			t.Fatalf("scoped operator through another account = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions", op, viaB); r.status != 201 {
			t.Fatalf("unrestricted operator through B = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/me", agency, nil); fmt.Sprint(r.body["roles"]) != "[operator@"+scope+"]" {
			t.Fatalf("me = %s", r.raw)
		}
		// Listing: the org's bindings, filterable by principal.
		r = e.do("GET", "/v1/roles/bindings", admin, nil)
		if r.status != 200 || len(r.body["bindings"].([]any)) != len(herald.Roles)+1 {
			t.Fatalf("list = %d %s", r.status, r.raw)
		}
		r = e.do("GET", "/v1/roles/bindings?principal=agency-op", admin, nil)
		if bs := r.body["bindings"].([]any); len(bs) != 1 || bs[0].(map[string]any)["scope"] != scope {
			t.Fatalf("list filtered = %s", r.raw)
		}
		// Roles combine: the operator also becomes an auditor.
		if r := e.do("GET", "/v1/ledger/entries", op, nil); r.status != 403 {
			t.Fatalf("operator reads ledger = %d", r.status)
		}
		if r := e.do("POST", "/v1/roles/bindings", admin, map[string]any{"principal": herald.RoleOperator + "-1", "role": "auditor"}); r.status != 201 {
			t.Fatalf("grant auditor = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/ledger/entries", op, nil); r.status != 200 {
			t.Fatalf("operator+auditor reads ledger = %d %s", r.status, r.raw)
		}
		// Revocation is effective on the very next request (JSON body form).
		if r := e.do("DELETE", "/v1/roles/bindings", admin, map[string]any{"principal": herald.RoleOperator + "-1", "role": "operator"}); r.status != 200 {
			t.Fatalf("revoke = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions", op, e.sendReq("-1001", "transactional", "again")); r.status != 403 {
			t.Fatalf("submit after revocation = %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/ledger/entries", op, nil); r.status != 200 {
			t.Fatalf("the remaining role stopped working: %d", r.status)
		}
		// Only admins manage roles.
		for _, role := range []string{herald.RoleOperator, herald.RoleAuditor, herald.RoleApprover, herald.RoleComplianceOfficer} {
			if r := e.do("POST", "/v1/roles/bindings", e.keys[role], map[string]any{"principal": "agency-op", "role": "admin"}); r.status != 403 {
				t.Fatalf("%s grants admin = %d %s", role, r.status, r.raw)
			}
		}
		// Every change is in the ledger, naming who made it.
		var kinds []string
		r = e.do("GET", "/v1/ledger/entries?limit=1000", auditor, nil)
		for _, en := range r.body["entries"].([]any) {
			m := en.(map[string]any)
			if k := m["kind"].(string); k == ledger.KindAccessGranted || k == ledger.KindAccessRevoked {
				if m["actor"] == herald.RoleAdmin+"-1" {
					a := m["attrs"].(map[string]any)
					kinds = append(kinds, fmt.Sprintf("%s %s %s %s", k, a["principal"], a["role"], a["scope"]))
				}
			}
		}
		want := []string{
			"access.revoked agency-op operator *",
			"access.granted agency-op operator " + scope,
			"access.granted operator-1 auditor *",
			"access.revoked operator-1 operator *",
		}
		if !slices.Equal(kinds, want) {
			t.Fatalf("ledger = %q, want %q", kinds, want)
		}
	})
}

// TestRoleBindingsBadInput: each rejected change is problem+json with a
// stable code, and nothing changes.
func TestRoleBindingsBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b)
		otherOrg, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.s.CreateAPIKey(ctx, otherOrg.ID, "stranger", herald.RoleAdmin, "", nil); err != nil {
			t.Fatal(err)
		}
		withCasbin(e)
		admin := e.keys[herald.RoleAdmin]
		op := herald.RoleOperator + "-1"
		cases := []struct {
			name, method, path string
			body               any
			status             int
			code, field        string
		}{
			{"unknown role", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "root"}, 422, "validation_failed", "role"},
			{"empty principal", "POST", "/v1/roles/bindings", map[string]any{"principal": "", "role": "auditor"}, 422, "validation_failed", "principal"},
			{"missing principal", "POST", "/v1/roles/bindings", map[string]any{"role": "auditor"}, 422, "validation_failed", "principal"},
			{"unknown principal", "POST", "/v1/roles/bindings", map[string]any{"principal": "ghost", "role": "auditor"}, 422, "validation_failed", "principal"},
			{"another org's principal", "POST", "/v1/roles/bindings", map[string]any{"principal": "stranger", "role": "auditor"}, 422, "validation_failed", "principal"},
			{"bad scope", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "operator", "scope": "accounts"}, 422, "validation_failed", "scope"},
			{"scope the role cannot use", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "operator", "scope": "keys/k1"}, 422, "validation_failed", "scope"},
			{"duplicate", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "operator"}, 409, "conflict", ""},
			{"duplicate with explicit scope", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "operator", "scope": "*"}, 409, "conflict", ""},
			{"malformed", "POST", "/v1/roles/bindings", []byte(`{"principal":`), 400, "invalid_json", ""},
			{"unknown field", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "auditor", "roles": []string{"x"}}, 400, "invalid_json", "roles"},
			{"wrong type", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": 7}, 400, "invalid_json", "role"},
			{"by a non-admin", "POST", "/v1/roles/bindings", map[string]any{"principal": op, "role": "admin"}, 403, "forbidden", ""},
			{"revoke missing", "DELETE", "/v1/roles/bindings?principal=" + op + "&role=auditor", nil, 404, "not_found", ""},
			{"revoke another org's binding", "DELETE", "/v1/roles/bindings?principal=stranger&role=admin", nil, 404, "not_found", ""},
			{"revoke unknown role", "DELETE", "/v1/roles/bindings", map[string]any{"principal": op, "role": "root"}, 422, "validation_failed", "role"},
			{"revoke without principal", "DELETE", "/v1/roles/bindings", nil, 422, "validation_failed", "principal"},
			{"revoke last admin", "DELETE", "/v1/roles/bindings?principal=" + url.QueryEscape(herald.RoleAdmin+"-1") + "&role=admin", nil, 409, "conflict", ""},
			{"revoke by a non-admin", "DELETE", "/v1/roles/bindings?principal=" + op + "&role=operator", nil, 403, "forbidden", ""},
			{"list by a non-admin", "GET", "/v1/roles/bindings", nil, 403, "forbidden", ""},
		}
		before, beforeBindings := e.counts(), countBindings(t, e.s)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				token := admin
				if c.code == "forbidden" {
					token = e.keys[herald.RoleOperator]
				}
				r := e.do(c.method, c.path, token, c.body)
				if r.status != c.status || r.str("code") != c.code {
					t.Fatalf("= %d %s; want %d %s", r.status, r.raw, c.status, c.code)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type = %q", ct)
				}
				if c.field != "" && !slices.ContainsFunc(r.body["errors"].([]any), func(v any) bool { return v.(map[string]any)["field"] == c.field }) {
					t.Fatalf("no error names field %q: %s", c.field, r.raw)
				}
			})
		}
		if after, afterBindings := e.counts(), countBindings(t, e.s); after != before || afterBindings != beforeBindings {
			t.Fatalf("rejected changes changed the database: %+v/%d → %+v/%d", before, beforeBindings, after, afterBindings)
		}
	})
}
