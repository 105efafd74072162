package store_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// accessCounts snapshots what a binding change touches.
func accessCounts(t *testing.T, s *store.Store) [3]int {
	t.Helper()
	var c [3]int
	for i, q := range []string{"SELECT count(*) FROM access_bindings", "SELECT count(*) FROM ledger_entries", "SELECT version FROM access_version"} {
		n, err := store.CountForTest(context.Background(), s, q)
		if err != nil {
			t.Fatal(err)
		}
		c[i] = n
	}
	return c
}

func TestAccessBindingsGrantListRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		s := f.s
		other, err := s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct{ org, principal, role string }{
			{f.org.ID, "alice", herald.RoleAdmin}, {f.org.ID, "bob", herald.RoleOperator}, {other.ID, "mallory", herald.RoleAdmin},
		} {
			if _, _, err := s.CreateAPIKey(ctx, k.org, k.principal, k.role, "", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.EnsureRole(ctx, k.org, k.principal, k.role, "test"); err != nil {
				t.Fatal(err)
			}
		}
		v0, err := s.BindingsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// EnsureRole again is a no-op.
		if granted, err := s.EnsureRole(ctx, f.org.ID, "bob", herald.RoleOperator, "test"); err != nil || granted {
			t.Fatalf("EnsureRole twice = %v, %v; want false, nil", granted, err)
		}
		scope := "accounts/" + f.account.ID
		got, err := s.GrantRole(ctx, f.org.ID, "bob", herald.RoleApprover, "", "alice")
		if err != nil || got.Scope != access.ScopeAll || got.CreatedBy != "alice" || got.CreatedAt.IsZero() {
			t.Fatalf("GrantRole = %+v, %v", got, err)
		}
		if _, err := s.GrantRole(ctx, f.org.ID, "bob", herald.RoleOperator, scope, "alice"); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.BindingsVersion(ctx); v != v0+2 {
			t.Fatalf("version = %d after two grants from %d", v, v0)
		}
		list, err := s.ListBindings(ctx, f.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range list {
			if b.Org != f.org.ID {
				t.Fatalf("ListBindings returned another org's binding %+v", b)
			}
			names = append(names, b.Principal+"="+b.RoleName())
		}
		want := []string{"alice=admin", "bob=approver", "bob=operator", "bob=operator@" + scope}
		if len(names) != len(want) {
			t.Fatalf("bindings = %v, want %v", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("bindings = %v, want %v", names, want)
			}
		}
		all, err := s.AllBindings(ctx)
		if err != nil || len(all) != 5 {
			t.Fatalf("AllBindings = %d, %v; want 5", len(all), err)
		}
		// Revoking is a ledger entry and bumps the version.
		if _, err := s.RevokeRole(ctx, f.org.ID, "bob", herald.RoleOperator, scope, "alice"); err != nil {
			t.Fatal(err)
		}
		entries, err := s.LedgerEntries(ctx, f.org.ID, store.LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range entries {
			if e.Kind == ledger.KindAccessGranted || e.Kind == ledger.KindAccessRevoked {
				kinds = append(kinds, e.Kind+":"+e.Attrs["principal"].(string)+":"+e.Attrs["role"].(string)+":"+e.Attrs["scope"].(string)+":"+e.Actor)
			}
		}
		wantKinds := []string{
			"access.granted:alice:admin:*:test", "access.granted:bob:operator:*:test", "access.granted:bob:approver:*:alice",
			"access.granted:bob:operator:" + scope + ":alice", "access.revoked:bob:operator:" + scope + ":alice",
		}
		if len(kinds) != len(wantKinds) {
			t.Fatalf("ledger = %v, want %v", kinds, wantKinds)
		}
		for i := range kinds {
			if kinds[i] != wantKinds[i] {
				t.Fatalf("ledger = %v, want %v", kinds, wantKinds)
			}
		}
		if v, _ := s.BindingsVersion(ctx); v != v0+3 {
			t.Fatalf("version = %d after three changes from %d", v, v0)
		}
	})
}

func TestAccessBindingErrorsChangeNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		s := f.s
		other, err := s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []struct{ org, principal, role string }{
			{f.org.ID, "alice", herald.RoleAdmin}, {f.org.ID, "bob", herald.RoleOperator}, {other.ID, "mallory", herald.RoleAdmin},
		} {
			if _, _, err := s.CreateAPIKey(ctx, k.org, k.principal, k.role, "", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.EnsureRole(ctx, k.org, k.principal, k.role, "test"); err != nil {
				t.Fatal(err)
			}
		}
		revoked, _, err := s.CreateAPIKey(ctx, f.org.ID, "gone", herald.RoleOperator, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeAPIKey(ctx, f.org.ID, revoked.ID); err != nil {
			t.Fatal(err)
		}
		before := accessCounts(t, s)
		cases := []struct {
			name                         string
			revoke                       bool
			principal, role, scope, code string
		}{
			{"unknown role", false, "bob", "root", "", "validation_failed"},
			{"empty principal", false, "", herald.RoleAuditor, "", "validation_failed"},
			{"unknown principal", false, "nobody", herald.RoleAuditor, "", "validation_failed"},
			{"principal of another org", false, "mallory", herald.RoleAuditor, "", "validation_failed"},
			{"principal with only a revoked key", false, "gone", herald.RoleAuditor, "", "validation_failed"},
			{"bad scope", false, "bob", herald.RoleOperator, "accounts", "validation_failed"},
			{"wildcard scope item", false, "bob", herald.RoleOperator, "accounts/*", "validation_failed"},
			{"unknown scope type", false, "bob", herald.RoleOperator, "bots/1", "validation_failed"},
			{"scope the role cannot use", false, "bob", herald.RoleOperator, "keys/1", "validation_failed"},
			{"duplicate", false, "bob", herald.RoleOperator, "*", "conflict"},
			{"revoke missing", true, "bob", herald.RoleAuditor, "", "not_found"},
			{"revoke another org's binding", true, "mallory", herald.RoleAdmin, "", "not_found"},
			{"revoke unknown role", true, "bob", "root", "", "validation_failed"},
			{"revoke last admin", true, "alice", herald.RoleAdmin, "", "conflict"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var err error
				if c.revoke {
					_, err = s.RevokeRole(ctx, f.org.ID, c.principal, c.role, c.scope, "alice")
				} else {
					_, err = s.GrantRole(ctx, f.org.ID, c.principal, c.role, c.scope, "alice")
				}
				if got := herald.ErrorCode(err); string(got) != c.code {
					t.Fatalf("err = %v (%s), want %s", err, got, c.code)
				}
			})
		}
		if after := accessCounts(t, s); after != before {
			t.Fatalf("rejected changes changed the database: %v → %v", before, after)
		}
		if list, _ := s.ListBindings(ctx, other.ID); len(list) != 1 || list[0].Principal != "mallory" {
			t.Fatalf("other org's bindings changed: %+v", list)
		}
	})
}

// TestAccessMigrationBackfillsBindings re-applies migration 0003 over keys
// made without bindings: every unrevoked key's principal gets its role.
func TestAccessMigrationBackfillsBindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		s := f.s
		for _, k := range []struct{ principal, role string }{{"alice", herald.RoleAdmin}, {"bob", herald.RoleOperator}, {"bob", herald.RoleOperator}, {"carol", herald.RoleAuditor}} {
			if _, _, err := s.CreateAPIKey(ctx, f.org.ID, k.principal, k.role, "", nil); err != nil {
				t.Fatal(err)
			}
		}
		gone, _, err := s.CreateAPIKey(ctx, f.org.ID, "dave", herald.RoleAdmin, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeAPIKey(ctx, f.org.ID, gone.ID); err != nil {
			t.Fatal(err)
		}
		err = s.InTx(ctx, func(tx *store.Tx) error {
			for _, q := range []string{"DROP TABLE access_bindings", "DROP TABLE access_version", "DELETE FROM schema_migrations WHERE version = 3"} {
				if err := store.ExecForTest(ctx, tx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListBindings(ctx, f.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range list {
			got = append(got, b.Principal+"="+b.RoleName()+" by "+b.CreatedBy)
		}
		want := "[alice=admin by migration:0003 bob=operator by migration:0003 carol=auditor by migration:0003]"
		if s := fmtList(got); s != want {
			t.Fatalf("backfilled %s, want %s", s, want)
		}
	})
}

func fmtList(v []string) string {
	out := "["
	for i, s := range v {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out + "]"
}
