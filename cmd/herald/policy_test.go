package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// runPolicy runs "herald policy args…" in process and returns its output.
func runPolicy(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runInProcess(newPolicyCmd(), args...)
}

func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const denyAllRego = `package herald

decision := {
	"outcome": "deny",
	"reasons": [{"rule": "custom.block", "severity": "deny", "message": "blocked", "overridable": false}],
	"suggestions": [],
	"risk": {"score": 0, "factors": []},
}
`

func TestPolicyTestAndCheck(t *testing.T) {
	out, err := runPolicy(t, "test")
	if err != nil || !strings.Contains(out, "PASS: ") || !strings.Contains(out, "Coverage: ") || !strings.Contains(out, "consent.rego") {
		t.Fatalf("policy test (built-in) = %v\n%s", err, out)
	}
	t.Log("herald policy test:\n" + out)
	failing := writeBundle(t, map[string]string{"decision.rego": denyAllRego,
		"decision_test.rego": "package herald_test\n\nimport data.herald\n\ntest_allows if herald.decision.outcome == \"allow\"\n"})
	out, err = runPolicy(t, "test", failing, "--coverage=false")
	if err == nil || !strings.Contains(out, "FAIL: data.herald_test.test_allows (decision_test.rego:5)") || !strings.Contains(out, "FAIL: 1/1") {
		t.Fatalf("policy test (failing) = %v\n%s", err, out)
	}
	if _, err := runPolicy(t, "test", writeBundle(t, map[string]string{"decision.rego": denyAllRego})); err == nil || !strings.Contains(err.Error(), "no tests") {
		t.Fatalf("a bundle without tests passed: %v", err)
	}
	broken := writeBundle(t, map[string]string{"decision.rego": "package herald\n\ndecision := {\n  \"outcome\": \"allow\",\n  x y\n}\n"})
	out, err = runPolicy(t, "check", broken)
	if err == nil || !strings.Contains(out, "decision.rego:5: ") {
		t.Fatalf("policy check (broken) = %v\n%s", err, out)
	}
	out, err = runPolicy(t, "check")
	if err != nil || !strings.Contains(out, "compiles") {
		t.Fatalf("policy check (built-in) = %v\n%s", err, out)
	}
}

func TestPolicyPushActivateImpactReplay(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, storetest.SQLite)
	s, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org, err := s.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	db := []string{"--database-url", url, "--log-level", "error"}

	// Decisions made by the built-in bundle, recorded as the pipeline does.
	def, err := policies.Compile(ctx, policies.DefaultBundle(), policies.EvalTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for i, purpose := range []string{"transactional", "marketing", "transactional"} {
		in := policies.Input{Now: now, Stage: "submit", Org: policies.OrgInput{ID: org.ID, Timezone: "UTC"},
			Actor:   policies.ActorInput{Principal: "op", Roles: []string{"operator"}},
			Account: policies.AccountInput{ID: "acc", Kind: "bot", Connector: "sandbox", Status: "active", AgeDays: 100},
			Action:  policies.ActionInput{Kind: "send_message", Purpose: purpose, Recipients: 1, Content: policies.ContentStats{Domains: []string{}}},
			Target:  policies.TargetInput{ChatID: "-10012345" + string(rune('0'+i)), Type: "channel"}}
		if purpose == "marketing" {
			in.Target = policies.TargetInput{ChatID: "5550001", Type: "user"}
		}
		d, err := def.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDecision(ctx, org.ID, "act-"+string(rune('a'+i)), "submit", in, d); err != nil {
			t.Fatal(err)
		}
	}

	dir := writeBundle(t, map[string]string{"decision.rego": denyAllRego,
		"decision_test.rego": "package herald_test\n\nimport data.herald\n\ntest_blocks if herald.decision.outcome == \"deny\"\n"})
	out, err := runPolicy(t, append([]string{"push", dir, "--org", org.ID, "--author", "carol"}, db...)...)
	if err != nil || !strings.Contains(out, "stored as version 1 (candidate)") {
		t.Fatalf("push = %v\n%s", err, out)
	}
	out, err = runPolicy(t, append([]string{"impact", "1"}, db...)...)
	if err != nil || !strings.Contains(out, "allow→deny") || !strings.Contains(out, "act-a") || !strings.Contains(out, "3 decisions") {
		t.Fatalf("impact = %v\n%s", err, out)
	}
	t.Log("herald policy impact 1:\n" + out)
	out, err = runPolicy(t, append([]string{"activate", "1"}, db...)...)
	if err != nil || !strings.Contains(out, "version 1 is active") {
		t.Fatalf("activate = %v\n%s", err, out)
	}
	if ref, _ := s.ActiveBundleVersion(ctx, org.ID); ref.Version != 1 {
		t.Fatalf("active version = %+v", ref)
	}
	out, err = runPolicy(t, append([]string{"list"}, db...)...)
	if err != nil || !strings.Contains(out, "active") || !strings.Contains(out, "carol") {
		t.Fatalf("list = %v\n%s", err, out)
	}
	out, err = runPolicy(t, append([]string{"replay", "act-b"}, db...)...)
	if err != nil || !strings.Contains(out, "reproduce exactly") || !strings.Contains(out, "recorded deny") {
		t.Fatalf("replay = %v\n%s", err, out)
	}
	t.Log("herald policy replay act-b:\n" + out)
	if _, err := runPolicy(t, append([]string{"replay", "act-zzz"}, db...)...); err == nil {
		t.Fatal("replay of an action without decisions succeeded")
	}
	if _, err := runPolicy(t, append([]string{"activate", "7"}, db...)...); err == nil {
		t.Fatal("activating a missing version succeeded")
	}
}
