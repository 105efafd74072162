package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func tinyBundle(marker string) policies.Bundle {
	return policies.Bundle{Files: map[string][]byte{
		"decision.rego": []byte("package herald\n\n# " + marker + "\ndecision := {\"outcome\": \"allow\", \"reasons\": [], \"suggestions\": [], \"risk\": {\"score\": 0, \"factors\": []}}\n"),
		"data.json":     []byte(`{"herald": {"params": {"marker": "` + marker + `"}}}`),
	}}
}

var (
	passing = policies.TestReport{Passed: 3, Coverage: 95}
	failing = policies.TestReport{Passed: 2, Failed: 1, Failures: []policies.TestFailure{{Name: "data.herald.test_x", File: "x_test.rego", Line: 3, Message: "test failed"}}}
)

func TestPolicyBundleLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		s, org := f.s, f.org.ID

		if ref, err := s.ActiveBundleVersion(ctx, org); err != nil || ref.Version != 0 {
			t.Fatalf("active version of a fresh org = %+v, %v; want none", ref, err)
		}
		v1, err := s.CreatePolicyBundle(ctx, org, "carol", tinyBundle("one"), passing)
		if err != nil {
			t.Fatal(err)
		}
		if v1.Version != 1 || v1.Status != store.PolicyCandidate || v1.Hash != tinyBundle("one").Hash() || v1.Author != "carol" {
			t.Fatalf("v1 = %+v", v1)
		}
		v2, err := s.CreatePolicyBundle(ctx, org, "carol", tinyBundle("two"), failing)
		if err != nil {
			t.Fatal(err)
		}
		if v2.Version != 2 || v2.Status != store.PolicyFailed {
			t.Fatalf("v2 = %+v; want version 2, failed", v2)
		}
		got, err := s.GetPolicyBundle(ctx, org, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got.Bundle().Hash() != v2.Hash || got.Report.Failed != 1 || len(got.Report.Failures) != 1 || got.Report.Failures[0].Line != 3 {
			t.Fatalf("GetPolicyBundle(2) = %+v", got)
		}
		if _, err := s.ActivatePolicyBundle(ctx, org, 2, "carol"); herald.ErrorCode(err) != policies.CodeTestsFailed {
			t.Fatalf("activating a failed bundle: %v; want %s", err, policies.CodeTestsFailed)
		}
		if _, err := s.ActivatePolicyBundle(ctx, org, 9, "carol"); !herald.IsNotFound(err) {
			t.Fatalf("activating a missing version: %v; want not found", err)
		}
		a1, err := s.ActivatePolicyBundle(ctx, org, 1, "dave")
		if err != nil {
			t.Fatal(err)
		}
		if a1.Status != store.PolicyActive || a1.ActivatedBy != "dave" || a1.ActivatedAt == nil {
			t.Fatalf("activated v1 = %+v", a1)
		}
		v3, err := s.CreatePolicyBundle(ctx, org, "carol", tinyBundle("three"), passing)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ActivatePolicyBundle(ctx, org, 3, "dave"); err != nil {
			t.Fatal(err)
		}
		// Activating the active version again changes nothing.
		if _, err := s.ActivatePolicyBundle(ctx, org, 3, "dave"); err != nil {
			t.Fatal(err)
		}
		active, err := s.ActiveBundles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if active[org] != (policies.BundleRef{Version: 3, Hash: v3.Hash}) || len(active) != 1 {
			t.Fatalf("ActiveBundles = %+v", active)
		}
		// Rollback.
		if _, err := s.ActivatePolicyBundle(ctx, org, 1, "dave"); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListPolicyBundles(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		var statuses []string
		for _, p := range list {
			statuses = append(statuses, p.Status)
			if p.Files != nil {
				t.Fatalf("listing carries files")
			}
		}
		if strings.Join(statuses, ",") != "retired,failed,active" {
			t.Fatalf("statuses newest first = %v", statuses)
		}
		if ref, _ := s.ActiveBundleVersion(ctx, org); ref.Version != 1 || ref.Hash != v1.Hash {
			t.Fatalf("active after rollback = %+v", ref)
		}
		lb, err := s.LoadBundle(ctx, org, 1)
		if err != nil || lb.Hash() != v1.Hash {
			t.Fatalf("LoadBundle(1) = %v, %v", lb.Hash(), err)
		}
		byHash, err := s.PolicyBundleByHash(ctx, org, v3.Hash)
		if err != nil || byHash.Version != 3 || len(byHash.Files) != 2 {
			t.Fatalf("PolicyBundleByHash = %+v, %v", byHash, err)
		}

		// The ledger holds every upload and activation, never file contents.
		entries, err := s.LedgerEntries(ctx, org, store.LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		var last ledger.Entry
		for _, e := range entries {
			if strings.HasPrefix(e.Kind, "policy.") {
				kinds = append(kinds, e.Kind)
				last = e
				for k, v := range e.Attrs {
					if s, ok := v.(string); ok && strings.Contains(s, "package herald") {
						t.Fatalf("ledger attr %s carries file content", k)
					}
				}
			}
		}
		want := "policy.uploaded,policy.uploaded,policy.activated,policy.uploaded,policy.activated,policy.activated"
		if strings.Join(kinds, ",") != want {
			t.Fatalf("policy ledger entries = %v; want %s", kinds, want)
		}
		if last.Attrs["rollback"] != true || last.Attrs["hash"] != v1.Hash || last.Attrs["previous_hash"] != v3.Hash || last.Actor != "dave" {
			t.Fatalf("rollback entry = %+v", last)
		}

		// Another organisation sees none of it.
		other, err := s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPolicyBundle(ctx, other.ID, 1); !herald.IsNotFound(err) {
			t.Fatalf("other org reads v1: %v", err)
		}
		if _, err := s.ActivatePolicyBundle(ctx, other.ID, 1, "eve"); !herald.IsNotFound(err) {
			t.Fatalf("other org activates v1: %v", err)
		}
		if l, _ := s.ListPolicyBundles(ctx, other.ID); len(l) != 0 {
			t.Fatalf("other org lists %d versions", len(l))
		}
		if ov, err := s.CreatePolicyBundle(ctx, other.ID, "eve", tinyBundle("one"), passing); err != nil || ov.Version != 1 {
			t.Fatalf("other org's first version = %+v, %v; versions count per org", ov, err)
		}

		// Non-text files are refused.
		bad := policies.Bundle{Files: map[string][]byte{"x.rego": {0xff, 0xfe}}}
		if _, err := s.CreatePolicyBundle(ctx, org, "carol", bad, passing); herald.ErrorCode(err) != herald.CodeValidation {
			t.Fatalf("binary file: %v", err)
		}
	})
}

func sampleInput(org string, contact bool) policies.Input {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	in := policies.Input{Now: now, Stage: "submit",
		Action:    policies.ActionInput{Kind: "send_message", Purpose: "marketing", Recipients: 1, Content: policies.ContentStats{Length: 12, Domains: []string{}}},
		Actor:     policies.ActorInput{Principal: "op", Roles: []string{"operator"}},
		Account:   policies.AccountInput{ID: "acc", Kind: "bot", Connector: "sandbox", Status: "active"},
		Target:    policies.TargetInput{ChatID: "4242", Type: "user"},
		Org:       policies.OrgInput{ID: org, Timezone: "UTC", Params: map[string]any{"frequency": map[string]any{"bot_per_second": 3}}},
		Frequency: policies.FrequencyInput{Recipient: []policies.SendRecord{{At: now.Add(-time.Hour), Purpose: "marketing"}}},
	}
	if contact {
		in.Target.Contact = &policies.ContactInput{ID: "c-1", Timezone: "Europe/Berlin",
			Consents: map[string]policies.ConsentInput{"marketing": {Basis: "consent", Source: "form", At: now.Add(-24 * time.Hour)}}}
	}
	return in
}

func TestPolicyDecisionRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		s, org := f.s, f.org.ID
		d := policies.Decision{Outcome: "deny", Reasons: []policies.Reason{{Rule: "consent.missing", Severity: "deny", Message: "m"}},
			Suggestions: []policies.Suggestion{}, Risk: policies.Risk{Factors: []policies.RiskFactor{}}, BundleHash: "bh", InputHash: "ih"}
		withContact := sampleInput(org, true)
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.RecordDecision(ctx, org, "a-1", "submit", withContact, d); err != nil {
				return err
			}
			return tx.RecordDecision(ctx, org, "a-2", "submit", sampleInput(org, false), d)
		})
		if err != nil {
			t.Fatal(err)
		}
		d.Outcome, d.Reasons = "allow", []policies.Reason{}
		if err := s.RecordDecision(ctx, org, "a-1", "send", sampleInput(org, false), d); err != nil {
			t.Fatal(err)
		}
		if withContact.Target.ChatID != "4242" {
			t.Fatal("RecordDecision changed the caller's input")
		}
		recent, err := s.RecentDecisions(ctx, org, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(recent) != 2 || recent[0].ActionID != "a-1" || recent[0].Stage != "send" || recent[1].ActionID != "a-2" {
			t.Fatalf("RecentDecisions(2) = %+v", recent)
		}
		of, err := s.DecisionsOf(ctx, org, "a-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(of) != 2 || of[0].Stage != "submit" || of[1].Stage != "send" {
			t.Fatalf("DecisionsOf(a-1) = %+v", of)
		}
		r := of[0]
		if r.Input.Target.ChatID != "" || r.Input.Target.Contact == nil || r.Input.Target.Contact.ID != "c-1" || !r.Minimised() {
			t.Fatalf("the chat id of a contact is stored: %+v", r.Input.Target)
		}
		if r.BundleHash != "bh" || r.InputHash != "ih" || r.Decision.Outcome != "deny" || r.Decision.Reasons[0].Rule != "consent.missing" || r.At.IsZero() {
			t.Fatalf("record = %+v", r)
		}
		if !r.Input.Now.Equal(withContact.Now) || r.Input.Target.Contact.Consents["marketing"].Source != "form" {
			t.Fatalf("input does not round-trip: %+v", r.Input)
		}
		// A stored input without a contact hashes as the decided one did.
		plain := sampleInput(org, false)
		want, _ := policies.InputHash(plain)
		if got, _ := policies.InputHash(of[1].Input); got != want || of[1].Minimised() {
			t.Fatalf("stored input hashes to %s; decided input to %s", got, want)
		}
		if l, _ := s.RecentDecisions(ctx, "other-org", 10); len(l) != 0 {
			t.Fatalf("another org reads %d decisions", len(l))
		}

		// Erasure of a contact removes the inputs that name it; retention
		// prunes by age.
		if n, err := s.EraseContactDecisions(ctx, "other-org", "c-1"); err != nil || n != 0 {
			t.Fatalf("erasure in another org = %d, %v", n, err)
		}
		if n, err := s.EraseContactDecisions(ctx, org, "c-1"); err != nil || n != 1 {
			t.Fatalf("EraseContactDecisions = %d, %v", n, err)
		}
		if of, _ := s.DecisionsOf(ctx, org, "a-1"); len(of) != 1 || of[0].Stage != "send" {
			t.Fatalf("after erasure: %+v", of)
		}
		if n, err := s.PruneDecisionRecords(ctx, s.Now().Add(time.Hour)); err != nil || n != 2 {
			t.Fatalf("PruneDecisionRecords = %d, %v", n, err)
		}
	})
}
