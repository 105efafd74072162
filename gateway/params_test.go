package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
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

// TestPolicyParamsFollowActiveBundle: after an organisation activates a
// bundle with its own parameter set, GET /v1/policies/params reports that
// bundle's parameters (not the built-in ones) and PUT validates against
// them: a parameter of the built-in bundle the custom one lacks is refused,
// the custom bundle's own parameter is accepted. A second organisation on
// the built-in bundle is unaffected.
func TestPolicyParamsFollowActiveBundle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		reg := policies.NewRegistry(defaultEngine(t), e.s)
		pol := &gateway.Policies{Store: e.s, Registry: reg}
		log := slog.New(slog.NewJSONHandler(e.logs, nil))
		m := telemetry.New(nil)
		polAPI := pol.Handler(&gateway.Server{Pipeline: &gateway.Pipeline{Store: e.s, Authz: e.authz, Decider: reg, Metrics: m, Log: log},
			Store: e.s, Metrics: m, Log: log})
		main := e.srv.Config.Handler
		e.srv.Close()
		e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/policies/params" && strings.HasPrefix(r.URL.Path, "/v1/policies") {
				polAPI.ServeHTTP(w, r)
				return
			}
			main.ServeHTTP(w, r)
		}))
		t.Cleanup(e.srv.Close)
		co, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleAuditor]

		builtin := e.do("GET", "/v1/policies/params", aud, nil)
		if builtin.status != 200 || builtin.body["defaults"].(map[string]any)["frequency"] == nil {
			t.Fatalf("built-in params = %d %s", builtin.status, builtin.raw)
		}
		builtinCap := map[string]any{"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": 2}}}}
		if r := e.do("PUT", "/v1/policies/params", co, map[string]any{"overrides": builtinCap}); r.status != 200 {
			t.Fatalf("built-in cap override = %d %s", r.status, r.raw)
		}

		files := map[string]string{}
		for k, v := range denyAllFiles {
			files[k] = v
		}
		files["data.json"] = `{"herald":{"params":{"vip":{"daily_limit":5,"label":"gold"}}}}`
		if r := e.do("POST", "/v1/policies", co, map[string]any{"files": files}); r.status != http.StatusCreated {
			t.Fatalf("upload = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/policies/1/activate", co, nil); r.status != http.StatusOK {
			t.Fatalf("activate = %d %s", r.status, r.raw)
		}

		g := e.do("GET", "/v1/policies/params", aud, nil)
		defaults, _ := g.body["defaults"].(map[string]any)
		if g.status != 200 || defaults["frequency"] != nil || defaults["vip"] == nil {
			t.Fatalf("GET after activation must show the active bundle's params: %d %s", g.status, g.raw)
		}
		if v := g.body["bundle"].(map[string]any)["version"]; v != float64(1) {
			t.Fatalf("bundle version = %v", v)
		}
		// The override made for the built-in bundle is kept but reported:
		// the active bundle has no such parameter.
		if inv, _ := g.body["invalid_overrides"].([]any); len(inv) != 1 || !strings.Contains(string(g.raw), `"field":"overrides.frequency"`) {
			t.Fatalf("stale override not reported: %s", g.raw)
		}

		before := e.counts()
		for _, bad := range []map[string]any{
			builtinCap, // valid for the built-in bundle, not for this one
			{"vip": map[string]any{"daily_limit": "ten"}},
			{"vip": map[string]any{"label": 3}},
		} {
			r := e.do("PUT", "/v1/policies/params", co, map[string]any{"overrides": bad})
			if r.status != 422 || r.str("code") != "validation_failed" {
				t.Fatalf("PUT %v against the active bundle = %d %s", bad, r.status, r.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused overrides changed %+v → %+v", before, after)
		}
		ok := map[string]any{"vip": map[string]any{"daily_limit": 9}}
		if r := e.do("PUT", "/v1/policies/params", co, map[string]any{"overrides": ok}); r.status != 200 {
			t.Fatalf("PUT of the active bundle's own param = %d %s", r.status, r.raw)
		}
		g = e.do("GET", "/v1/policies/params", aud, nil)
		if inv, _ := g.body["invalid_overrides"].([]any); len(inv) != 0 || !strings.Contains(string(g.raw), `"daily_limit":9`) {
			t.Fatalf("after PUT: %s", g.raw)
		}
		entries, err := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: "policy.params_changed"})
		if err != nil || len(entries) != 2 {
			t.Fatalf("params changes in the ledger: %d %v", len(entries), err)
		}

		// Another organisation still validates against the built-in bundle.
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherCO := e.newKey(other.ID, "co-other", herald.RoleComplianceOfficer)
		if r := e.do("PUT", "/v1/policies/params", otherCO, map[string]any{"overrides": builtinCap}); r.status != 200 {
			t.Fatalf("other org, built-in cap = %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", "/v1/policies/params", otherCO, map[string]any{"overrides": ok}); r.status != 422 {
			t.Fatalf("other org, custom param = %d %s", r.status, r.raw)
		}
	})
}
