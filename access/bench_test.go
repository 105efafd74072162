package access_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
)

// benchBindings is a realistic policy set: 100 organisations × 50
// principals. Per org: 2 admins, 3 compliance officers, 5 approvers, 5
// auditors, 25 unrestricted operators, and 10 agency operators each bound to
// two of the org's accounts (so 200 scoped roles in all).
func benchBindings() []access.Binding {
	var bs []access.Binding
	for o := range 100 {
		org := fmt.Sprintf("org-%03d", o)
		n := 0
		add := func(count int, role string, scopes ...string) {
			for range count {
				p := fmt.Sprintf("p-%03d-%02d", o, n)
				n++
				if len(scopes) == 0 {
					bs = append(bs, bind(org, p, role, ""))
				}
				for _, s := range scopes {
					bs = append(bs, bind(org, p, role, s))
				}
			}
		}
		add(2, herald.RoleAdmin)
		add(3, herald.RoleComplianceOfficer)
		add(5, herald.RoleApprover)
		add(5, herald.RoleAuditor)
		add(25, herald.RoleOperator)
		add(10, herald.RoleOperator, fmt.Sprintf("accounts/acc-%03d-a", o), fmt.Sprintf("accounts/acc-%03d-b", o))
	}
	return bs
}

// BenchmarkEnforce measures Authorize on the submit path (an operator
// submitting through an account), a scoped operator, an auditor, and a
// denial; then the same decisions uncached, and a full reload.
func BenchmarkEnforce(b *testing.B) {
	src := &memSource{}
	src.set(benchBindings()...)
	e := newEnforcer(b, src)
	ctx := context.Background()
	cases := []struct {
		name     string
		p        herald.Principal
		resource string
		verb     string
		allow    bool
	}{
		{"operator-submit", herald.Principal{ID: "p-042-20", Org: "org-042"}, "accounts/acc-042-x", access.VerbSubmit, true},
		{"scoped-operator-submit", herald.Principal{ID: "p-042-45", Org: "org-042"}, "accounts/acc-042-b", access.VerbSubmit, true},
		{"auditor-ledger-export", herald.Principal{ID: "p-042-12", Org: "org-042"}, "ledger", access.VerbExport, true},
		{"denied-other-org", herald.Principal{ID: "p-042-20", Org: "org-043"}, "accounts/acc-043-a", access.VerbSubmit, false},
	}
	for _, c := range cases {
		if got := e.Authorize(ctx, c.p, c.resource, c.verb) == nil; got != c.allow {
			b.Fatalf("%s: allowed = %v", c.name, got)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = e.Authorize(ctx, c.p, c.resource, c.verb)
			}
		})
	}
	// The same decisions without the decision cache: one organisation's
	// Casbin enforcer (default policy, its 20 scoped roles, 50 principals).
	var org42 []access.Binding
	for _, bd := range benchBindings() {
		if bd.Org == "org-042" {
			org42 = append(org42, bd)
		}
	}
	ce, err := access.NewCasbin(org42)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cases {
		b.Run("uncached-"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ce.Enforce("principal:"+c.p.ID, c.p.Org, c.resource, c.verb)
			}
		})
	}
	b.Run("parallel-operator-submit", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = e.Authorize(ctx, cases[0].p, cases[0].resource, cases[0].verb)
			}
		})
	})
	// A reload after a change in one organisation: the other 99 keep
	// their enforcers and caches.
	b.Run("reload-one-org-changed", func(b *testing.B) {
		b.ReportAllocs()
		all := benchBindings()
		for i := 0; b.Loop(); i++ {
			bs := slices.Clone(all)
			bs[0].Principal = fmt.Sprintf("p-000-00-%d", i)
			src.set(bs...)
			if err := e.Reload(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Building every organisation's enforcer: start-up.
	b.Run("load-all-5000-bindings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := access.NewEnforcer(ctx, src); err != nil {
				b.Fatal(err)
			}
		}
	})
}
