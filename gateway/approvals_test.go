package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// reviewBundle denies marketing outright (not overridable), denies long
// texts with an overridable reason, asks for two-stage approval of texts
// mentioning "launch", and allows the rest.
const reviewBundle = `package herald

import rego.v1

allow := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}

decision := {"outcome": "deny", "reasons": [{"rule": "custom.hard", "severity": "deny", "message": "never", "overridable": false}],
	"suggestions": [], "risk": {"score": 90, "factors": []}} if {
	input.action.purpose == "marketing"
} else := {"outcome": "deny", "reasons": [{"rule": "custom.review", "severity": "deny", "message": "too long", "overridable": true}],
	"suggestions": [], "risk": {"score": 75, "factors": []}} if {
	input.action.content.length > 40
} else := {"outcome": "approve", "approvals": [{"stage": 1, "role": "approver", "mode": "any"}, {"stage": 2, "role": "compliance_officer", "mode": "all"}],
	"reasons": [{"rule": "custom.launch", "severity": "warning", "message": "launches need sign-off", "overridable": false}],
	"suggestions": [], "risk": {"score": 50, "factors": []}} if {
	input.action.content.length == 6
} else := allow
`

func reviewEnv(t *testing.T, b storetest.Backend) *env {
	eng, err := policies.Compile(context.Background(), policies.Bundle{Files: map[string][]byte{"decision.rego": []byte(reviewBundle)}})
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, b, eng)
}

func TestStagedApprovals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := reviewEnv(t, b)
		ctx := context.Background()
		// A second compliance officer: stage 2 is "all" of them.
		co2 := e.newKey(e.org.ID, "co-2", herald.RoleComplianceOfficer)
		op, appr, co := e.keys[herald.RoleOperator], e.keys[herald.RoleApprover], e.keys[herald.RoleComplianceOfficer]
		r := e.do("POST", "/v1/actions", op, e.sendReq("-1001", "service", "launch"))
		id := r.str("action", "id")
		if r.str("action", "status") != "pending_approval" {
			t.Fatalf("submit = %s", r.raw)
		}
		queue := e.do("GET", "/v1/approvals", appr, nil)
		if n := len(queue.body["approvals"].([]any)); n != 1 {
			t.Fatalf("approver queue has %d items: %s", n, queue.raw)
		}
		if q := e.do("GET", "/v1/approvals", co, nil); len(q.body["approvals"].([]any)) != 0 {
			t.Fatal("stage 2 approvers see the action before stage 1 is done")
		}
		before := e.counts()
		for _, c := range []struct {
			key, path, code string
			status          int
		}{
			{co, "/approve", "not_an_approver", 403}, // stage 1 is the approver's
			{e.keys[herald.RoleAuditor], "/approve", "forbidden", 403},
		} {
			got := e.do("POST", "/v1/actions/"+id+c.path, c.key, map[string]any{"comment": "x"})
			if got.status != c.status || got.str("code") != c.code {
				t.Fatalf("%s = %d %s", c.path, got.status, got.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused votes changed %+v → %+v", before, after)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/approve", appr, map[string]any{"comment": "looks fine"}); got.status != 200 || got.body["current_stage"].(float64) != 2 {
			t.Fatalf("stage 1 approve = %d %s", got.status, got.raw)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/approve", appr, nil); got.status != http.StatusForbidden && got.status != http.StatusConflict {
			t.Fatalf("second vote by the same person = %d %s", got.status, got.raw)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/approve", co, nil); got.str("action", "status") != "pending_approval" {
			t.Fatalf("one of two compliance officers moved it: %s", got.raw)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/approve", co, nil); got.status != http.StatusConflict {
			t.Fatalf("double approval = %d %s", got.status, got.raw)
		}
		got := e.do("POST", "/v1/actions/"+id+"/approve", co2, nil)
		if got.str("action", "status") != "scheduled" {
			t.Fatalf("after all stages: %s", got.raw)
		}
		e.deliverAll()
		if len(e.sandbox.Messages()) != 1 {
			t.Fatal("the approved action was not delivered")
		}
		entries, _ := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: "action.approved"})
		if len(entries) != 3 {
			t.Fatalf("action.approved entries = %d, want 3", len(entries))
		}
		if entries[0].PayloadHash == "" || strings.Contains(string(entries[0].Kind), "looks fine") {
			t.Fatal("the comment must be a payload, not in the chain")
		}
	})
}

func TestSelfApprovalRejectionAndExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := reviewEnv(t, b)
		ctx := context.Background()
		// The approver submits (approvers may not, so use a second key of
		// the operator principal… instead: an approver-role key whose
		// principal also submits is what self-approval guards against).
		both := e.newKey(e.org.ID, "operator-1", herald.RoleApprover)
		op, appr := e.keys[herald.RoleOperator], e.keys[herald.RoleApprover]
		id := e.do("POST", "/v1/actions", op, e.sendReq("-1002", "service", "launch")).str("action", "id")
		if got := e.do("POST", "/v1/actions/"+id+"/approve", both, nil); got.status != 403 || got.str("code") != "self_approval" {
			t.Fatalf("self approval = %d %s", got.status, got.raw)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/reject", appr, map[string]any{"comment": "not now"}); got.str("action", "status") != "denied" {
			t.Fatalf("reject = %s", got.raw)
		}
		if got := e.do("POST", "/v1/actions/"+id+"/approve", appr, nil); got.status != 409 || got.str("code") != "illegal_transition" {
			t.Fatalf("approving a rejected action = %d %s", got.status, got.raw)
		}
		// An approval after the schedule expires the action.
		req := e.sendReq("-1003", "service", "launch")
		req["schedule_at"] = daytime.Add(time.Hour).Format(time.RFC3339)
		late := e.do("POST", "/v1/actions", op, req).str("action", "id")
		e.advance(2 * time.Hour)
		if got := e.do("POST", "/v1/actions/"+late+"/approve", appr, nil); got.status != 409 || got.str("code") != "approval_expired" {
			t.Fatalf("late approval = %d %s", got.status, got.raw)
		}
		if a, _ := e.s.GetAction(ctx, e.org.ID, late); a.Status != herald.StatusExpired {
			t.Fatalf("late action is %s", a.Status)
		}
	})
}

func TestHumanOverrideOfOverridableDenial(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := reviewEnv(t, b)
		ctx := context.Background()
		op, appr := e.keys[herald.RoleOperator], e.keys[herald.RoleApprover]
		long := e.do("POST", "/v1/actions", op, e.sendReq("-1004", "service", strings.Repeat("long text ", 6)))
		id := long.str("action", "id")
		if long.str("action", "status") != "denied" {
			t.Fatalf("submit = %s", long.raw)
		}
		hard := e.do("POST", "/v1/actions", op, e.sendReq("-1005", "marketing", "buy")).str("action", "id")
		before := e.counts()
		for _, c := range []struct {
			key, id, just, code string
			status              int
		}{
			{appr, id, "too short", "validation_failed", 422},
			{op, id, "I am sure this is fine to send today", "forbidden", 403},
			{appr, hard, "I am sure this is fine to send today", "not_overridable", 409},
		} {
			got := e.do("POST", "/v1/actions/"+c.id+"/override", c.key, map[string]any{"justification": c.just})
			if got.status != c.status || got.str("code") != c.code {
				t.Fatalf("override = %d %s; want %d %s", got.status, got.raw, c.status, c.code)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused overrides changed %+v → %+v", before, after)
		}
		got := e.do("POST", "/v1/actions/"+id+"/override", appr, map[string]any{"justification": "Customer asked for the full text in ticket 1234"})
		if got.str("action", "status") != "scheduled" || got.body["override"] == nil {
			t.Fatalf("override = %d %s", got.status, got.raw)
		}
		e.deliverAll()
		if a, _ := e.s.GetAction(ctx, e.org.ID, id); a.Status != herald.StatusDelivered {
			t.Fatalf("overridden action is %s (the send-time check must honour the override)", a.Status)
		}
		entries, _ := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: "action.overridden"})
		if len(entries) != 1 || entries[0].Actor != "approver-1" || entries[0].PayloadHash == "" {
			t.Fatalf("override ledger entry = %+v", entries)
		}
	})
}
