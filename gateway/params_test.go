package gateway_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestPolicyParamsPerOrganisation: a compliance officer raises the
// marketing cap for their organisation; the next decisions use it; bad
// overrides are refused and change nothing.
func TestPolicyParamsPerOrganisation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		co, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator]
		e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "777", "timezone": "Europe/Berlin", "purpose": "marketing",
			"legal_basis": "consent", "source": "form", "consented_at": daytime.Add(-72 * 3600e9).Format("2006-01-02T15:04:05Z07:00")}})
		outcomes := func(n int) []string {
			var out []string
			for i := 0; i < n; i++ {
				out = append(out, e.do("POST", "/v1/actions", op, e.sendReq("777", "marketing", "Offer")).str("decision", "outcome"))
			}
			return out
		}
		if got := outcomes(2); got[0] != "allow" || got[1] == "allow" {
			t.Fatalf("default cap of 1 a day: %v", got)
		}
		before := e.counts()
		for _, bad := range []map[string]any{
			{"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": "two"}}}},
			{"frequency": map[string]any{"per_hour": 5}},
			{"quiet_hours": 5},
		} {
			if r := e.do("PUT", "/v1/policies/params", co, map[string]any{"overrides": bad}); r.status != 422 || r.str("code") != "validation_failed" {
				t.Fatalf("bad overrides %v = %d %s", bad, r.status, r.raw)
			}
		}
		if r := e.do("PUT", "/v1/policies/params", op, map[string]any{"overrides": map[string]any{}}); r.status != 403 {
			t.Fatalf("operator may not change policy params: %d", r.status)
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused overrides changed %+v → %+v", before, after)
		}
		r := e.do("PUT", "/v1/policies/params", co, map[string]any{"overrides": map[string]any{
			"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": 3, "per_week": 10}}}}})
		if r.status != 200 {
			t.Fatalf("set overrides = %d %s", r.status, r.raw)
		}
		if got := outcomes(2); got[0] != "allow" || got[1] != "allow" {
			t.Fatalf("after raising the cap to 3 a day: %v", got)
		}
		if got := outcomes(1); got[0] == "allow" {
			t.Fatalf("the fourth of the day must not be allowed: %v", got)
		}
		g := e.do("GET", "/v1/policies/params", e.keys[herald.RoleAuditor], nil)
		if g.status != 200 || g.body["defaults"] == nil {
			t.Fatalf("get params = %d %s", g.status, g.raw)
		}
		entries, _ := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{Kind: "policy.params_changed"})
		if len(entries) != 1 || entries[0].Attrs["params_hash"] == "" {
			t.Fatalf("params change not in the ledger: %+v", entries)
		}
	})
}
