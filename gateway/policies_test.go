package gateway_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

// denyAllFiles is a bundle that denies everything with rule custom.block,
// with a passing test.
var denyAllFiles = map[string]string{
	"decision.rego": `package herald

decision := {
	"outcome": "deny",
	"reasons": [{"rule": "custom.block", "severity": "deny", "message": "blocked by org policy", "overridable": false}],
	"suggestions": [],
	"risk": {"score": 0, "factors": []},
}
`,
	"decision_test.rego": `package herald_test

import data.herald

test_blocks if herald.decision.outcome == "deny"
`,
}

// recorder is the Decider of the test pipeline: the registry, remembering
// each input and decision so the test can store the decision record the
// pipeline stores once it calls RecordDecision itself.
type recorder struct {
	reg  *policies.Registry
	mu   sync.Mutex
	last []recorded
}

type recorded struct {
	in policies.Input
	d  policies.Decision
}

func (r *recorder) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	d, err := r.reg.Decide(ctx, in)
	r.mu.Lock()
	r.last = append(r.last, recorded{in, d})
	r.mu.Unlock()
	return d, err
}

// policyEnv is env with the policy lifecycle mounted and a pipeline that
// decides through the organisation's active bundle.
type policyEnv struct {
	*env
	reg *policies.Registry
	pol *gateway.Policies
	rec *recorder
}

func newPolicyEnv(t *testing.T, b storetest.Backend) *policyEnv {
	t.Helper()
	e := newEnv(t, b)
	reg := policies.NewRegistry(defaultEngine(t), e.s, policies.EvalTimeout(testEvalTimeout))
	pe := &policyEnv{env: e, reg: reg, pol: &gateway.Policies{Store: e.s, Registry: reg}, rec: &recorder{reg: reg}}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	m := telemetry.New(nil)
	pl := &gateway.Pipeline{Store: e.s, Authz: access.RoleMatrix{}, Decider: pe.rec, Metrics: m, Log: log}
	srv := &gateway.Server{Pipeline: pl, Store: e.s, Metrics: m, Log: log}
	main, policyAPI := srv.Handler(), pe.pol.Handler(srv)
	e.srv.Close()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/policies" || strings.HasPrefix(r.URL.Path, "/v1/policies/") {
			policyAPI.ServeHTTP(w, r)
			return
		}
		main.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return pe
}

// submit posts an action and stores its decision record, as the pipeline
// does once wired (skipped when the pipeline already recorded it).
func (pe *policyEnv) submit(target, purpose string) (id, status string, raw []byte) {
	pe.t.Helper()
	pe.rec.mu.Lock()
	pe.rec.last = nil
	pe.rec.mu.Unlock()
	r := pe.do("POST", "/v1/actions", pe.keys[herald.RoleOperator], pe.sendReq(target, purpose, "Hello"))
	if r.status != http.StatusCreated {
		pe.t.Fatalf("submit = %d %s", r.status, r.raw)
	}
	id = r.str("action", "id")
	ctx := context.Background()
	have, err := pe.s.DecisionsOf(ctx, pe.org.ID, id)
	if err != nil {
		pe.t.Fatal(err)
	}
	pe.rec.mu.Lock()
	defer pe.rec.mu.Unlock()
	if len(have) == 0 {
		if len(pe.rec.last) != 1 {
			pe.t.Fatalf("the pipeline decided %d times", len(pe.rec.last))
		}
		l := pe.rec.last[0]
		if err := pe.s.RecordDecision(ctx, pe.org.ID, id, l.in.Stage, l.in, l.d); err != nil {
			pe.t.Fatal(err)
		}
	}
	return id, r.str("action", "status"), r.raw
}

func tarGzOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func defaultFiles() map[string]string {
	out := map[string]string{}
	for k, v := range policies.DefaultBundle().Files {
		out[k] = string(v)
	}
	return out
}

func TestPolicyLifecycleEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		pe := newPolicyEnv(t, b)
		ctx := context.Background()
		co, op, aud := pe.keys[herald.RoleComplianceOfficer], pe.keys[herald.RoleOperator], pe.keys[herald.RoleAuditor]
		defHash := policies.DefaultBundle().Hash()

		// Authorization: auditors read, operators do not, only officers write.
		if r := pe.do("GET", "/v1/policies", aud, nil); r.status != http.StatusOK || r.body["active"] != nil || r.str("default_hash") != defHash {
			t.Fatalf("GET /v1/policies as auditor = %d %s", r.status, r.raw)
		}
		if r := pe.do("GET", "/v1/policies", op, nil); r.status != http.StatusForbidden {
			t.Fatalf("GET /v1/policies as operator = %d", r.status)
		}
		if r := pe.do("POST", "/v1/policies", aud, map[string]any{"files": denyAllFiles}); r.status != http.StatusForbidden {
			t.Fatalf("upload as auditor = %d", r.status)
		}

		// A bundle that does not compile: 422 policy_invalid with file:line, nothing stored.
		before := pe.counts()
		bad := map[string]string{"decision.rego": "package herald\n\ndecision := {\n  \"outcome\": \"allow\",\n  x y\n}\n"}
		r := pe.do("POST", "/v1/policies", co, map[string]any{"files": bad})
		if r.status != http.StatusUnprocessableEntity || r.str("code") != "policy_invalid" || !strings.Contains(string(r.raw), `"decision.rego:5"`) {
			t.Fatalf("broken bundle = %d %s", r.status, r.raw)
		}
		r = pe.do("POST", "/v1/policies", co, map[string]any{"files": map[string]string{"lib.rego": "package herald.lib\n\nx := 1\n"}})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.raw), "data.herald.decision") {
			t.Fatalf("bundle without a decision = %d %s", r.status, r.raw)
		}
		r = pe.do("POST", "/v1/policies", co, map[string]any{"files": map[string]string{"../etc/passwd.rego": "x"}})
		if r.status != http.StatusUnprocessableEntity || r.str("code") != "validation_failed" {
			t.Fatalf("escaping path = %d %s", r.status, r.raw)
		}
		if after := pe.counts(); after != before {
			t.Fatalf("rejected uploads changed the database: %+v → %+v", before, after)
		}

		// A bundle whose own tests fail is stored as failed and cannot be activated.
		failing := map[string]string{"decision.rego": denyAllFiles["decision.rego"],
			"decision_test.rego": "package herald_test\n\nimport data.herald\n\ntest_allows if herald.decision.outcome == \"allow\"\n"}
		r = pe.do("POST", "/v1/policies", co, map[string]any{"files": failing})
		if r.status != http.StatusCreated || r.str("status") != "failed" || r.body["version"] != 1.0 {
			t.Fatalf("bundle with a failing test = %d %s", r.status, r.raw)
		}
		if !strings.Contains(string(r.raw), `"failures"`) || !strings.Contains(string(r.raw), "test_allows") {
			t.Fatalf("the report names no failing test: %s", r.raw)
		}
		if r := pe.do("POST", "/v1/policies/1/activate", co, nil); r.status != http.StatusConflict || r.str("code") != "policy_tests_failed" {
			t.Fatalf("activating a failed bundle = %d %s", r.status, r.raw)
		}

		// v2: the default bundle as the organisation's own version.
		r = pe.do("POST", "/v1/policies", co, map[string]any{"files": defaultFiles()})
		if r.status != http.StatusCreated || r.str("status") != "candidate" || r.str("hash") != defHash || r.header.Get("Location") != "/v1/policies/2" {
			t.Fatalf("upload default bundle = %d %s", r.status, r.raw)
		}
		if r := pe.do("POST", "/v1/policies/2/activate", co, nil); r.status != http.StatusOK || r.str("status") != "active" {
			t.Fatalf("activate v2 = %d %s", r.status, r.raw)
		}

		// Traffic decided by v2: transactional posts to channels are
		// allowed, marketing to unknown people is denied.
		var allowed, denied []string
		for i := range 6 {
			id, status, raw := pe.submit(fmt.Sprintf("-10012345678%02d", i), "transactional")
			if status != "scheduled" {
				t.Fatalf("transactional post = %s", raw)
			}
			allowed = append(allowed, id)
		}
		for i := range 3 {
			id, status, raw := pe.submit(fmt.Sprintf("55500%02d", i), "marketing")
			if status != "denied" {
				t.Fatalf("marketing without consent = %s", raw)
			}
			denied = append(denied, id)
		}

		// v3: deny everything, uploaded as a tar.gz.
		r = pe.do("POST", "/v1/policies", co, tarGzOf(t, denyAllFiles), "Content-Type", "application/gzip")
		if r.status != http.StatusCreated || r.str("status") != "candidate" {
			t.Fatalf("tar.gz upload = %d %s", r.status, r.raw)
		}
		if r.body["report"].(map[string]any)["passed"] != 1.0 {
			t.Fatalf("report = %s", r.raw)
		}

		// Impact preview: every allowed decision would become a deny.
		r = pe.do("POST", "/v1/policies/3/impact", co, nil)
		if r.status != http.StatusOK {
			t.Fatalf("impact = %d %s", r.status, r.raw)
		}
		tr := r.body["transitions"].(map[string]any)
		if tr["allow→deny"] != float64(len(allowed)) || tr["deny→deny"] != float64(len(denied)) || r.body["evaluated"] != float64(len(allowed)+len(denied)) {
			t.Fatalf("impact transitions = %s", r.raw)
		}
		ex := r.body["examples"].(map[string]any)["allow→deny"].([]any)
		if len(ex) != len(allowed) || !strings.Contains(strings.Join(allowed, ","), ex[0].(string)) {
			t.Fatalf("impact examples = %v", ex)
		}
		if r := pe.do("POST", "/v1/policies/3/impact?limit=2", aud, nil); r.status != http.StatusOK || r.body["evaluated"] != 2.0 {
			t.Fatalf("impact ?limit=2 = %d %s", r.status, r.raw)
		}
		if r := pe.do("POST", "/v1/policies/3/impact?limit=0", co, nil); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("impact ?limit=0 = %d", r.status)
		}

		// Activate v3: the next submit is decided by it.
		if r := pe.do("POST", "/v1/policies/3/activate", co, nil); r.status != http.StatusOK {
			t.Fatalf("activate v3 = %d %s", r.status, r.raw)
		}
		blockedID, status, raw := pe.submit("-1001234567899", "transactional")
		if status != "denied" || !strings.Contains(string(raw), `"custom.block"`) {
			t.Fatalf("submit under v3 = %s", raw)
		}
		l := pe.do("GET", "/v1/policies", aud, nil)
		act, _ := l.body["active"].(map[string]any)
		if act == nil || act["version"] != 3.0 || len(l.body["versions"].([]any)) != 3 {
			t.Fatalf("GET /v1/policies after activation = %s", l.raw)
		}
		if v := l.body["versions"].([]any)[1].(map[string]any); v["status"] != "retired" || v["tests"].(map[string]any)["passed"].(float64) < 10 {
			t.Fatalf("v2 in the listing = %v", v)
		}

		// Rollback: activate v2 again; previous behaviour returns.
		if r := pe.do("POST", "/v1/policies/2/activate", co, nil); r.status != http.StatusOK {
			t.Fatalf("rollback = %d %s", r.status, r.raw)
		}
		if _, status, raw := pe.submit("-1001234567898", "transactional"); status != "scheduled" {
			t.Fatalf("submit after rollback = %s", raw)
		}

		// GET one version: files and report.
		g := pe.do("GET", "/v1/policies/3", aud, nil)
		if g.status != http.StatusOK || g.body["files"].(map[string]any)["decision.rego"] != denyAllFiles["decision.rego"] {
			t.Fatalf("GET /v1/policies/3 = %d %s", g.status, g.raw)
		}
		if r := pe.do("GET", "/v1/policies/99", aud, nil); r.status != http.StatusNotFound {
			t.Fatalf("GET a missing version = %d", r.status)
		}

		// Replay: each decision reproduces with the bundle that made it,
		// including the one made by a version no longer active.
		for _, id := range []string{allowed[0], denied[0], blockedID} {
			r := pe.do("POST", "/v1/policies/replay", aud, map[string]any{"action_id": id})
			if r.status != http.StatusOK || r.body["reproduced"] != true {
				t.Fatalf("replay %s = %d %s", id, r.status, r.raw)
			}
		}
		if r := pe.do("POST", "/v1/policies/replay", aud, map[string]any{"action_id": "nope"}); r.status != http.StatusNotFound {
			t.Fatalf("replay of an unknown action = %d", r.status)
		}

		// Every upload and activation is in the ledger, with no file content.
		entries, err := pe.s.LedgerEntries(ctx, pe.org.ID, store.LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, en := range entries {
			if strings.HasPrefix(en.Kind, "policy.") {
				kinds = append(kinds, en.Kind+"/"+en.Refs["policy_version"]+"/"+en.Actor)
			}
		}
		want := "policy.uploaded/1/compliance_officer-1,policy.uploaded/2/compliance_officer-1,policy.activated/2/compliance_officer-1," +
			"policy.uploaded/3/compliance_officer-1,policy.activated/3/compliance_officer-1,policy.activated/2/compliance_officer-1"
		if strings.Join(kinds, ",") != want {
			t.Fatalf("policy ledger entries:\n%s\nwant\n%s", strings.Join(kinds, ","), want)
		}
	})
}

// TestPolicyReplicasSwitchWithoutRestart: two replicas (stores and
// registries) over one PostgreSQL database; an activation through one is
// picked up by the other at its next refresh.
func TestPolicyReplicasSwitchWithoutRestart(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, storetest.Postgres)
	open := func() *store.Store {
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := open(), open()
	org, err := s1.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := policies.NewRegistry(defaultEngine(t), s1), policies.NewRegistry(defaultEngine(t), s2)
	p1 := &gateway.Policies{Store: s1, Registry: r1}
	for _, r := range []*policies.Registry{r1, r2} {
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	in := policies.Input{Now: daytime, Stage: "submit", Org: policies.OrgInput{ID: org.ID, Timezone: "UTC"},
		Action: policies.ActionInput{Kind: "send_message", Purpose: "transactional", Recipients: 1},
		Target: policies.TargetInput{ChatID: "-1001", Type: "channel"}}
	if d, _ := r2.Decide(ctx, in); d.BundleHash != defaultEngine(t).Hash() {
		t.Fatalf("replica 2 before activation decided with %s", d.BundleHash)
	}
	b := policies.Bundle{Files: map[string][]byte{}}
	for k, v := range denyAllFiles {
		b.Files[k] = []byte(v)
	}
	v, err := p1.Upload(ctx, org.ID, "carol", b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Activate(ctx, org.ID, v.Version, "carol"); err != nil {
		t.Fatal(err)
	}
	if d, _ := r1.Decide(ctx, in); d.Reasons[0].Rule != "custom.block" {
		t.Fatalf("replica 1 did not switch at activation: %+v", d)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = r2.Run(runCtx, 20*time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, _ := r2.Decide(ctx, in)
		if len(d.Reasons) > 0 && d.Reasons[0].Rule == "custom.block" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 2 still decides with %s", d.BundleHash)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPolicyImpactOf1000Decisions measures the impact preview over the
// default window of 1,000 stored decisions, with a realistic candidate: the
// default bundle with quiet hours all day and no exempt purpose.
func TestPolicyImpactOf1000Decisions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		pe := newPolicyEnv(t, b)
		ctx := context.Background()
		co := pe.keys[herald.RoleComplianceOfficer]
		// Generous deadlines: on a loaded machine the send path's 50 ms
		// would fail some of the expected decisions closed.
		def, err := policies.Compile(ctx, policies.DefaultBundle(), policies.EvalTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		files := defaultFiles()
		files["data.json"] = strings.NewReplacer(`"exempt_purposes": ["transactional"]`, `"exempt_purposes": []`,
			`"start": "21:00"`, `"start": "00:00"`, `"end": "09:00"`, `"end": "23:59"`).Replace(files["data.json"])
		cb := policies.Bundle{Files: map[string][]byte{}}
		for k, v := range files {
			cb.Files[k] = []byte(v)
		}
		cand, err := policies.Compile(ctx, cb, policies.EvalTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		err = pe.s.InTx(ctx, func(tx *store.Tx) error {
			for i := range 1000 {
				in := policies.Input{Now: daytime.Add(time.Duration(i) * time.Minute), Stage: "submit",
					Org:     policies.OrgInput{ID: pe.org.ID, Timezone: "Europe/Berlin"},
					Actor:   policies.ActorInput{Principal: "op", Roles: []string{"operator"}},
					Account: policies.AccountInput{ID: pe.account.ID, Kind: "bot", Connector: "sandbox", Status: "active", AgeDays: 100},
					Action:  policies.ActionInput{Kind: "send_message", Purpose: "transactional", Recipients: 1, Content: policies.ContentStats{Length: 40, Domains: []string{}}},
					Target:  policies.TargetInput{ChatID: "-100" + strconv.Itoa(1000000+i), Type: "channel"}}
				if i%4 == 0 {
					in.Action.Purpose, in.Target = "marketing", policies.TargetInput{ChatID: strconv.Itoa(777000 + i), Type: "user"}
				}
				d, _ := def.Decide(ctx, in)
				c, _ := cand.Decide(ctx, in)
				want[policies.Transition(d.Outcome, c.Outcome)]++
				if err := tx.RecordDecision(ctx, pe.org.ID, fmt.Sprintf("act-%04d", i), "submit", in, d); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := pe.do("POST", "/v1/policies", co, map[string]any{"files": files}); r.status != http.StatusCreated {
			t.Fatalf("upload = %d %s", r.status, r.raw)
		}
		start := time.Now()
		r := pe.do("POST", "/v1/policies/1/impact", co, nil)
		wall := time.Since(start)
		if r.status != http.StatusOK || r.body["evaluated"] != 1000.0 || r.body["errors"] != 0.0 {
			t.Fatalf("impact = %d %s", r.status, r.raw)
		}
		tr := r.body["transitions"].(map[string]any)
		if len(tr) != len(want) || want["allow→defer"] == 0 {
			t.Fatalf("transitions = %v, want %v", tr, want)
		}
		for k, n := range want {
			if tr[k] != float64(n) {
				t.Fatalf("transition %s = %v, want %d (%s)", k, tr[k], n, r.raw)
			}
		}
		t.Logf("%s: impact preview of 1000 decisions: evaluation %.1f ms, handler %.1f ms (read + compile + evaluate), HTTP round trip %s; transitions %v",
			b, r.body["duration_ms"], r.body["total_ms"], wall.Round(time.Millisecond), tr)
	})
}
