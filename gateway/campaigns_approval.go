package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/store"
)

// Campaign approval (issue 13 §4). A campaign needs approval when its dry
// run at scheduling (the first approvalPredictLimit recipients in fan-out
// order, decided by the real policy) holds any recipient for approval: the
// policy decides what needs a human, for campaigns as for actions. Such a
// campaign stays a draft with a pending request; it is approved once, in
// the stages the policy asked for (the strictest recipient's), by the
// action approval rules: Casbin "approve" on approvals and on the stage's
// role, never by the requester or the campaign's creator, one vote per
// person, expiring after the pipeline's maximum approval wait or at the
// campaign's end. The last approving vote is the ledger entry
// campaign.approved; it schedules the campaign, and every recipient's
// action names that entry (attrs campaign_approval) and is not held again
// for a per-action approval. A rejection cancels the campaign.

// approvalPredictLimit is how many recipients the scheduling dry run
// decides to find out whether a campaign needs approval.
const approvalPredictLimit = 2_000

// storedPrediction is the dry run kept with an approval request: counts
// only. The rendered samples carry personal data and are not stored; a
// fresh dry run shows them.
func storedPrediction(pr fanout.Prediction) json.RawMessage {
	pr.Samples = []fanout.Sample{}
	b, _ := json.Marshal(pr)
	return b
}

// requestApprovalIfNeeded runs the scheduling dry run of draft campaign c
// as p and, when any recipient would need approval, opens the campaign's
// approval request. It returns nil when no approval is needed.
func (s *Server) requestApprovalIfNeeded(ctx context.Context, p herald.Principal, c campaigns.Campaign) (*store.CampaignApproval, error) {
	if ap, err := s.Store.CampaignApprovalOf(ctx, p.Org, c.ID); err != nil {
		return nil, err
	} else if ap != nil && ap.Status == store.ApprovalPending {
		return nil, herald.Errorf(herald.CodeConflict, "the campaign is waiting for approval")
	}
	pr, err := fanout.Predict(ctx, s.Store, CampaignSubmitter{s.Pipeline}, p, c, approvalPredictLimit, 0)
	if err != nil {
		return nil, err
	}
	if pr.Outcomes["approve"] == 0 {
		return nil, nil
	}
	reasons := []string{}
	for rule := range pr.ByRule {
		if len(rule) > len("approve:") && rule[:len("approve:")] == "approve:" {
			reasons = append(reasons, rule[len("approve:"):])
		}
	}
	slices.Sort(reasons)
	stages := make([]store.ApprovalStage, 0, len(pr.Approvals))
	for i, st := range pr.Approvals {
		if st.Stage == 0 {
			st.Stage = i + 1
		}
		stages = append(stages, st)
	}
	if len(stages) == 0 {
		stages = append(stages, store.ApprovalStage{Stage: 1, Role: herald.RoleApprover, Mode: "any"})
	}
	var out store.CampaignApproval
	err = s.Store.InTx(ctx, func(tx *store.Tx) error {
		for i, st := range stages {
			if st.Mode == "all" && len(st.Approvers) == 0 {
				ps, err := tx.PrincipalsWithRole(ctx, p.Org, st.Role)
				if err != nil {
					return err
				}
				stages[i].Approvers = slices.DeleteFunc(ps, func(x string) bool { return x == p.ID || x == c.CreatedBy })
			}
		}
		var err error
		out, err = tx.RequestCampaignApproval(ctx, store.CampaignApproval{Campaign: c.ID, Org: p.Org, RequestedBy: p.ID,
			Reasons: reasons, Stages: stages, Prediction: storedPrediction(pr)})
		if err != nil {
			return err
		}
		outcomes := map[string]any{}
		for k, v := range pr.Outcomes {
			outcomes[k] = v
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: campaigns.KindApprovalRequested, Actor: p.ID,
			Refs:  map[string]string{"campaign": c.ID},
			Attrs: map[string]any{"stages": len(stages), "evaluated": pr.Evaluated, "recipients": pr.Recipients, "outcomes": outcomes}})
		return err
	})
	return &out, err
}

// VoteCampaign approves or rejects a campaign waiting for approval.
func (pl *Pipeline) VoteCampaign(ctx context.Context, p herald.Principal, id, vote, comment string) (campaigns.Campaign, error) {
	if err := pl.Authz.Authorize(ctx, p, "approvals", "approve"); err != nil {
		return campaigns.Campaign{}, err
	}
	if len(comment) > 2000 {
		return campaigns.Campaign{}, herald.Invalid(herald.FieldError{Field: "comment", Message: "must be at most 2000 characters"})
	}
	var (
		c       campaigns.Campaign
		expired bool
	)
	err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
		var (
			ap  *store.CampaignApproval
			err error
		)
		if c, ap, err = tx.LockCampaignApproval(ctx, p.Org, id); err != nil {
			return err
		}
		if ap == nil || ap.Status != store.ApprovalPending || c.Status != campaigns.StatusDraft {
			return herald.Errorf(herald.CodeIllegalTransition, "the campaign is not waiting for approval")
		}
		now := pl.Store.Now()
		if now.Sub(ap.RequestedAt) > pl.maxWait() || (c.Spec.EndAt != nil && !now.Before(*c.Spec.EndAt)) {
			expired = true
			return expireCampaignApproval(ctx, tx, c)
		}
		if ap.RequestedBy == p.ID || c.CreatedBy == p.ID {
			return herald.Errorf(CodeSelfApproval, "the campaign's creator or requester cannot approve or reject it")
		}
		cur := currentStage(ap.Stages, ap.Votes)
		if cur == nil {
			return herald.Errorf(herald.CodeConflict, "every stage is already complete")
		}
		if !pl.mayVoteOn(ctx, p, cur.Role) || (len(cur.Approvers) > 0 && !slices.Contains(cur.Approvers, p.ID)) {
			return herald.Errorf(CodeNotApprover, "stage %d needs a %s%s", cur.Stage, cur.Role, namedSuffix(cur.Approvers))
		}
		if err := tx.CastCampaignVote(ctx, p.Org, c.ID, cur.Stage, p.ID, vote); err != nil {
			return err
		}
		var payload []byte
		if comment != "" {
			// Free text may name people: a payload (erasable), not in the chain.
			payload, _ = json.Marshal(map[string]string{"comment": comment})
		}
		rec := store.LedgerRecord{Actor: p.ID, Refs: map[string]string{"campaign": c.ID},
			Attrs: map[string]any{"stage": cur.Stage, "role": p.Role}, Payload: payload}
		if vote == "reject" {
			rec.Kind = campaigns.KindRejected
			if _, err := tx.AppendLedger(ctx, p.Org, rec); err != nil {
				return err
			}
			if err := tx.DecideCampaignApproval(ctx, p.Org, c.ID, store.ApprovalRejected, 0); err != nil {
				return err
			}
			c, err = tx.SetCampaignStatus(ctx, p.Org, c.ID, campaigns.StatusCancelled, p.ID, "")
			return err
		}
		votes := append(ap.Votes, store.Vote{Stage: cur.Stage, Principal: p.ID, Vote: vote})
		if currentStage(ap.Stages, votes) != nil {
			rec.Kind = campaigns.KindApprovalVote
			_, err := tx.AppendLedger(ctx, p.Org, rec)
			return err // more stages to go
		}
		rec.Kind = campaigns.KindApproved
		rec.Refs["requested_by"] = ap.RequestedBy
		entry, err := tx.AppendLedger(ctx, p.Org, rec)
		if err != nil {
			return err
		}
		if err := tx.DecideCampaignApproval(ctx, p.Org, c.ID, store.ApprovalApproved, entry.Seq); err != nil {
			return err
		}
		// The fan-out submits as the requester, whose accounts were checked
		// when they asked.
		c, err = tx.SetCampaignStatus(ctx, p.Org, c.ID, campaigns.StatusScheduled, p.ID, ap.RequestedBy)
		return err
	})
	if err == nil && expired {
		return c, herald.Errorf(CodeExpired, "the approval came after the maximum wait or the campaign's end; it expired")
	}
	return c, err
}

func expireCampaignApproval(ctx context.Context, tx *store.Tx, c campaigns.Campaign) error {
	if err := tx.DecideCampaignApproval(ctx, c.Org, c.ID, store.ApprovalExpired, 0); err != nil {
		return err
	}
	_, err := tx.AppendLedger(ctx, c.Org, store.LedgerRecord{Kind: campaigns.KindApprovalExpired, Actor: "system",
		Refs: map[string]string{"campaign": c.ID}})
	return err
}

// ExpireCampaignApprovals expires campaign approval requests that waited
// past the maximum approval wait or the campaign's end; the campaign stays
// a draft and scheduling it again asks again. It returns how many expired.
func (pl *Pipeline) ExpireCampaignApprovals(ctx context.Context) (int, error) {
	list, err := pl.Store.PendingCampaignApprovals(ctx, "", 500)
	if err != nil {
		return 0, err
	}
	now, n := pl.Store.Now(), 0
	for _, ap := range list {
		err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
			c, cur, err := tx.LockCampaignApproval(ctx, ap.Org, ap.Campaign)
			if err != nil || cur == nil || cur.Status != store.ApprovalPending {
				return err
			}
			if now.Sub(cur.RequestedAt) <= pl.maxWait() && (c.Spec.EndAt == nil || now.Before(*c.Spec.EndAt)) {
				return errNotDue
			}
			return expireCampaignApproval(ctx, tx, c)
		})
		switch {
		case errors.Is(err, errNotDue), herald.ErrorCode(err) == herald.CodeIllegalTransition:
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

var errNotDue = herald.Errorf(herald.CodeConflict, "not due")

// CampaignApprovalExpirer adapts the pipeline for the fan-out runner.
type CampaignApprovalExpirer struct{ Pipeline *Pipeline }

// ExpireApprovals implements fanout.ApprovalExpirer.
func (e CampaignApprovalExpirer) ExpireApprovals(ctx context.Context) (int, error) {
	return e.Pipeline.ExpireCampaignApprovals(ctx)
}

func (s *Server) voteCampaign(vote string) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, ok := decodeVote(c)
		if !ok {
			return
		}
		cp, err := s.Pipeline.VoteCampaign(c.Request.Context(), principal(c), c.Param("id"), vote, req.Comment)
		if err != nil {
			writeProblem(c, err)
			return
		}
		ap, err := s.Store.CampaignApprovalOf(c.Request.Context(), cp.Org, cp.ID)
		if err != nil {
			writeProblem(c, err)
			return
		}
		logger(c).Info("campaign approval vote", "event", "campaign.approval_vote", "campaign", cp.ID, "vote", vote)
		writeJSON(c, http.StatusOK, gin.H{"campaign": cp, "approval": approvalOut(ap)})
	}
}

// campaignApprovalView is a campaign's approval as the API shows it.
type campaignApprovalView struct {
	*store.CampaignApproval
	Current *int `json:"current_stage,omitempty"`
}

func approvalOut(ap *store.CampaignApproval) *campaignApprovalView {
	if ap == nil {
		return nil
	}
	v := &campaignApprovalView{CampaignApproval: ap}
	if ap.Status == store.ApprovalPending {
		if cur := currentStage(ap.Stages, ap.Votes); cur != nil {
			v.Current = &cur.Stage
		}
	}
	return v
}

// listCampaignApprovals answers GET /v1/campaign-approvals: the caller's
// queue of campaigns waiting for a stage they can vote on (not their own,
// not yet voted); ?all=true lists every pending one.
func (s *Server) listCampaignApprovals(c *gin.Context) {
	if !s.authorize(c, "approvals", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	list, err := s.Store.PendingCampaignApprovals(ctx, p.Org, 500)
	if err != nil {
		writeProblem(c, err)
		return
	}
	type item struct {
		Campaign campaigns.Campaign    `json:"campaign"`
		Approval *campaignApprovalView `json:"approval"`
	}
	out := []item{}
	for i := range list {
		ap := &list[i]
		cp, err := s.Store.GetCampaign(ctx, p.Org, ap.Campaign)
		if err != nil {
			writeProblem(c, err)
			return
		}
		if cp.Status != campaigns.StatusDraft {
			continue // cancelled while waiting: nothing to decide
		}
		if c.Query("all") != "true" {
			cur := currentStage(ap.Stages, ap.Votes)
			voted := slices.ContainsFunc(ap.Votes, func(v store.Vote) bool { return v.Principal == p.ID })
			if cur == nil || !s.Pipeline.mayVoteOn(ctx, p, cur.Role) || ap.RequestedBy == p.ID || cp.CreatedBy == p.ID || voted ||
				(len(cur.Approvers) > 0 && !slices.Contains(cur.Approvers, p.ID)) {
				continue
			}
		}
		out = append(out, item{Campaign: cp, Approval: approvalOut(ap)})
	}
	writeJSON(c, http.StatusOK, gin.H{"approvals": out})
}
