package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// campaignReviewBundle holds every marketing send for approval (one
// approver), denies opted-out people whatever the purpose, and allows the
// rest: the campaign needs approval, and an opted-out recipient stays
// denied after it.
const campaignReviewBundle = `package herald

import rego.v1

decision := {"outcome": "deny", "reasons": [{"rule": "consent.opted_out", "severity": "deny", "message": "opted out", "overridable": false}],
	"suggestions": [], "risk": {"score": 100, "factors": []}} if {
	input.target.contact.opted_out
} else := {"outcome": "approve", "approvals": [{"stage": 1, "role": "approver", "mode": "any"}],
	"reasons": [{"rule": "custom.marketing_review", "severity": "warning", "message": "marketing needs sign-off", "overridable": false}],
	"suggestions": [], "risk": {"score": 50, "factors": []}} if {
	input.action.purpose == "marketing"
} else := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}
`

func campaignReviewEnv(t *testing.T, b storetest.Backend) *env {
	eng, err := policies.Compile(context.Background(), policies.Bundle{Files: map[string][]byte{"decision.rego": []byte(campaignReviewBundle)}},
		policies.EvalTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvWith(t, b, eng)
}

// TestCampaignApprovedOnce: a campaign whose recipients the policy would
// each hold for approval is approved once, as a whole. Through the HTTP
// API: the operator's schedule opens the request (202) with the predicted
// counts; the operator cannot approve it; an approver sees it in the queue
// and approves; the fan-out submits every recipient without a per-action
// approval (the opted-out one is still denied); each action's decision
// entry names the campaign.approved entry; the sandbox delivers exactly
// the allowed ones.
func TestCampaignApprovedOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := campaignReviewEnv(t, b)
		ctx := context.Background()
		op, appr, co := e.keys[herald.RoleOperator], e.keys[herald.RoleApprover], e.keys[herald.RoleComplianceOfficer]
		ids := e.importPeople("2001", "2002", "2003", "2004")
		e.post("/v1/contacts/"+ids[3]+"/opt-out", co, nil, http.StatusOK)
		cid := e.post("/v1/campaigns", op, map[string]any{"name": "Launch", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "We launched"}, "contacts": ids, "accounts": []string{e.account.ID}}, http.StatusCreated).str("id")

		req := e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusAccepted)
		if req.str("approval", "status") != "pending" || req.str("campaign", "status") != "draft" {
			t.Fatalf("schedule of a campaign needing approval: %s", req.raw)
		}
		got := e.do("GET", "/v1/campaigns/"+cid, op, nil)
		pred := path(got.body, "approval", "prediction", "outcomes")
		if num(pred["approve"]) != 3 || num(pred["deny"]) != 1 || num(path(got.body, "approval")["current_stage"]) != 1 {
			t.Fatalf("the approver's view lacks the predicted counts: %s", got.raw)
		}
		// Nothing runs while it waits.
		if n := e.runFanout(e.runner("r0")); n != 0 {
			t.Fatalf("a campaign waiting for approval fanned out %d", n)
		}
		if r := e.do("POST", "/v1/campaigns/"+cid+"/schedule", op, nil); r.status != http.StatusConflict {
			t.Fatalf("second schedule while pending = %d %s", r.status, r.raw)
		}
		if r := e.do("PATCH", "/v1/campaigns/"+cid, op, map[string]any{"name": "Launch", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "Something else"}, "contacts": ids, "accounts": []string{e.account.ID}}); r.status != http.StatusConflict {
			t.Fatalf("editing a campaign waiting for approval = %d %s", r.status, r.raw)
		}
		before := e.counts()
		if r := e.do("POST", "/v1/campaigns/"+cid+"/approve", op, nil); r.status != http.StatusForbidden {
			t.Fatalf("operator approving = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/campaigns/"+cid+"/approve", co, nil); r.status != http.StatusForbidden || r.str("code") != "not_an_approver" {
			t.Fatalf("compliance officer on the approver's stage = %d %s", r.status, r.raw)
		}
		if after := e.counts(); after != before {
			t.Fatalf("refused votes changed %+v → %+v", before, after)
		}
		if q := e.do("GET", "/v1/campaign-approvals", appr, nil); len(q.body["approvals"].([]any)) != 1 {
			t.Fatalf("approver's queue: %s", q.raw)
		}
		if q := e.do("GET", "/v1/campaign-approvals", op, nil); q.status == http.StatusOK && len(q.body["approvals"].([]any)) != 0 {
			t.Fatalf("the requester's queue lists their own campaign: %s", q.raw)
		}
		ok := e.post("/v1/campaigns/"+cid+"/approve", appr, map[string]any{"comment": "fine"}, http.StatusOK)
		if ok.str("campaign", "status") != "scheduled" || ok.str("approval", "status") != "approved" {
			t.Fatalf("approve: %s", ok.raw)
		}
		seq := uint64(num(path(ok.body, "approval")["ledger_seq"]))
		approvedEntries, err := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: "campaign.approved"})
		if err != nil || len(approvedEntries) != 1 || approvedEntries[0].Seq != seq || approvedEntries[0].Refs["campaign"] != cid {
			t.Fatalf("campaign.approved entries %+v (err %v), approval names seq %d", approvedEntries, err, seq)
		}

		if n := e.runFanout(e.runner("r1")); n != 4 {
			t.Fatalf("fan-out submitted %d, want 4", n)
		}
		if n, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM actions WHERE status = 'pending_approval'"); n != 0 {
			t.Fatalf("%d recipients held for a per-action approval after the campaign's", n)
		}
		e.deliverAll()
		d := e.delivered()
		if d["2001"] != 1 || d["2002"] != 1 || d["2003"] != 1 || d["2004"] != 0 || len(e.sandbox.Messages()) != 3 {
			t.Fatalf("sandbox record %v: want 2001–2003 once, the opted-out 2004 never", d)
		}
		decided, err := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{Kind: "action.decided"})
		if err != nil || len(decided) != 4 {
			t.Fatalf("action.decided entries: %d (err %v)", len(decided), err)
		}
		for _, en := range decided {
			if fmt.Sprint(en.Attrs["campaign_approval"]) != fmt.Sprint(seq) || en.Attrs["campaign"] != cid {
				t.Fatalf("decision entry %d does not name the approval %d: %v", en.Seq, seq, en.Attrs)
			}
		}
	})
}

// TestCampaignRejectedSendsNothing: a rejection cancels the campaign; no
// action exists and a fan-out pass sends nothing. A vote after the
// request expired is refused and the campaign stays a draft.
func TestCampaignRejectedSendsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := campaignReviewEnv(t, b)
		ctx := context.Background()
		op, appr := e.keys[herald.RoleOperator], e.keys[herald.RoleApprover]
		ids := e.importPeople("3001", "3002")
		newCampaign := func(name string) string {
			return e.post("/v1/campaigns", op, map[string]any{"name": name, "kind": "send_message", "purpose": "marketing",
				"template": map[string]any{"text": "Offer"}, "contacts": ids, "accounts": []string{e.account.ID}}, http.StatusCreated).str("id")
		}
		cid := newCampaign("Rejected")
		e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusAccepted)
		rej := e.post("/v1/campaigns/"+cid+"/reject", appr, map[string]any{"comment": "not now"}, http.StatusOK)
		if rej.str("campaign", "status") != "cancelled" || rej.str("approval", "status") != "rejected" {
			t.Fatalf("reject: %s", rej.raw)
		}
		if r := e.do("POST", "/v1/campaigns/"+cid+"/approve", e.newKey(e.org.ID, "appr-2", herald.RoleApprover), nil); r.status != http.StatusConflict {
			t.Fatalf("approve after rejection = %d %s", r.status, r.raw)
		}
		if n := e.runFanout(e.runner("r1")); n != 0 {
			t.Fatalf("a rejected campaign fanned out %d", n)
		}
		e.deliverAll()
		if n, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM actions"); n != 0 || len(e.sandbox.Messages()) != 0 {
			t.Fatalf("a rejected campaign made %d actions, %d messages", n, len(e.sandbox.Messages()))
		}

		// Expiry: the request outlives the maximum wait.
		late := newCampaign("Late")
		e.post("/v1/campaigns/"+late+"/schedule", op, nil, http.StatusAccepted)
		e.advance(gateway.DefaultMaxApprovalWait + time.Hour)
		if r := e.do("POST", "/v1/campaigns/"+late+"/approve", appr, nil); r.status == http.StatusOK || r.str("code") != "approval_expired" {
			t.Fatalf("approve after expiry = %d %s", r.status, r.raw)
		}
		g := e.do("GET", "/v1/campaigns/"+late, op, nil)
		if g.str("campaign", "status") != "draft" || g.str("approval", "status") != "expired" {
			t.Fatalf("after expiry: %s", g.raw)
		}
		// Asking again opens a fresh request.
		if r := e.post("/v1/campaigns/"+late+"/schedule", op, nil, http.StatusAccepted); r.str("approval", "status") != "pending" {
			t.Fatalf("re-request: %s", r.raw)
		}
	})
}
