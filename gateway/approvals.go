package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// DefaultMaxApprovalWait is how long an action waits for approval when it
// has no schedule: a stale request for a risky send should be resubmitted,
// not approved days later.
const DefaultMaxApprovalWait = 72 * time.Hour

// Stable error codes of the approval flow.
const (
	CodeSelfApproval   herald.Code = "self_approval"
	CodeNotApprover    herald.Code = "not_an_approver"
	CodeExpired        herald.Code = "approval_expired"
	CodeNotOverridable herald.Code = "not_overridable"
)

// minJustification is the shortest written justification an override
// accepts: a human review must say why.
const minJustification = 20

// openStages records the approval stages of a decision. An "all" stage
// with no named approvers waits for everyone holding the role when the
// stage opens, except the submitter.
func (pl *Pipeline) openStages(ctx context.Context, tx *store.Tx, a herald.Action, d policies.Decision) error {
	stages := make([]store.ApprovalStage, 0, len(d.Approvals))
	for i, s := range d.Approvals {
		if s.Stage == 0 {
			s.Stage = i + 1
		}
		if s.Mode == "all" && len(s.Approvers) == 0 {
			ps, err := tx.PrincipalsWithRole(ctx, a.Org, s.Role)
			if err != nil {
				return err
			}
			s.Approvers = slices.DeleteFunc(ps, func(p string) bool { return p == a.SubmittedBy })
		}
		stages = append(stages, s)
	}
	return tx.OpenApprovalStages(ctx, a.Org, a.ID, stages)
}

// mayVoteOn reports whether p may vote on a stage that requires role: the
// access model decides (approve on "stages/<role>"), not a role-name check here.
func (pl *Pipeline) mayVoteOn(ctx context.Context, p herald.Principal, role string) bool {
	return pl.Authz.Authorize(ctx, p, access.StageResource(role), access.VerbApprove) == nil
}

func (pl *Pipeline) maxWait() time.Duration {
	if pl.MaxApprovalWait > 0 {
		return pl.MaxApprovalWait
	}
	return DefaultMaxApprovalWait
}

// Vote approves or rejects an action waiting for approval.
func (pl *Pipeline) Vote(ctx context.Context, p herald.Principal, id, vote, comment string) (herald.Action, error) {
	if err := pl.Authz.Authorize(ctx, p, "approvals", "approve"); err != nil {
		return herald.Action{}, err
	}
	if len(comment) > 2000 {
		return herald.Action{}, herald.Invalid(herald.FieldError{Field: "comment", Message: "must be at most 2000 characters"})
	}
	var (
		a        herald.Action
		released bool
		expired  bool
	)
	err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = lockedAction(ctx, tx, p.Org, id); err != nil {
			return err
		}
		if a.Status != herald.StatusPendingApproval {
			return herald.Errorf(herald.CodeIllegalTransition, "the action is %s, not waiting for approval", a.Status)
		}
		now := pl.Store.Now()
		if (a.ScheduleAt != nil && now.After(*a.ScheduleAt)) || now.Sub(a.CreatedAt) > pl.maxWait() {
			a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusExpired, Actor: "system", Detail: "approval_too_late"})
			expired = err == nil
			return err
		}
		if a.SubmittedBy == p.ID {
			return herald.Errorf(CodeSelfApproval, "the submitter cannot approve or reject their own action")
		}
		stages, err := tx.ApprovalStages(ctx, a.Org, a.ID)
		if err != nil {
			return err
		}
		votes, err := tx.Votes(ctx, a.Org, a.ID)
		if err != nil {
			return err
		}
		cur := currentStage(stages, votes)
		if cur == nil {
			return herald.Errorf(herald.CodeConflict, "every stage is already complete")
		}
		if !pl.mayVoteOn(ctx, p, cur.Role) || (len(cur.Approvers) > 0 && !slices.Contains(cur.Approvers, p.ID)) {
			return herald.Errorf(CodeNotApprover, "stage %d needs a %s%s", cur.Stage, cur.Role, namedSuffix(cur.Approvers))
		}
		if err := tx.CastVote(ctx, a.Org, a.ID, cur.Stage, p.ID, vote); err != nil {
			return err
		}
		kind := ledger.KindActionApproved
		if vote == "reject" {
			kind = ledger.KindActionRejected
		}
		var payload []byte
		if comment != "" {
			// A comment is free text and may name people: it is a payload
			// (erasable), not an attribute of the chain.
			payload, _ = json.Marshal(map[string]string{"comment": comment})
		}
		if _, err := tx.AppendLedger(ctx, a.Org, store.LedgerRecord{Kind: kind, Actor: p.ID,
			Refs: map[string]string{"action": a.ID}, Attrs: map[string]any{"stage": cur.Stage, "role": p.Role}, Payload: payload}); err != nil {
			return err
		}
		if vote == "reject" {
			code := "rejected"
			a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusDenied, Actor: p.ID, Detail: "rejected", ErrorCode: &code})
			return err
		}
		votes = append(votes, store.Vote{Stage: cur.Stage, Principal: p.ID, Vote: vote})
		if currentStage(stages, votes) != nil {
			return nil // more stages to go
		}
		sendAt := notBefore(a.SendAt, now)
		if a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: p.ID, Detail: "approved", SendAt: &sendAt}); err != nil {
			return err
		}
		released = true
		return tx.Enqueue(ctx, a, sendAt)
	})
	if err == nil && expired {
		return a, herald.Errorf(CodeExpired, "the approval came after the action's schedule or the maximum wait; it expired")
	}
	if err == nil && released && pl.Notify != nil {
		pl.Notify()
	}
	return a, err
}

func namedSuffix(approvers []string) string {
	if len(approvers) == 0 {
		return ""
	}
	return " (one of: " + strings.Join(approvers, ", ") + ")"
}

// lockedAction reads one of org's actions and locks it for the rest of the
// transaction, so two people deciding on it at once are serialised.
func lockedAction(ctx context.Context, tx *store.Tx, org, id string) (herald.Action, error) {
	if err := tx.Lock(ctx, "herald/action/"+id); err != nil {
		return herald.Action{}, err
	}
	return tx.GetAction(ctx, org, id)
}

// notBefore returns t, or now if t has passed: a released action goes out
// at its schedule, or at once when that is past.
func notBefore(t, now time.Time) time.Time {
	if t.Before(now) {
		return now
	}
	return t
}

// currentStage is the first stage not yet complete, or nil.
func currentStage(stages []store.ApprovalStage, votes []store.Vote) *store.ApprovalStage {
	for i := range stages {
		st := &stages[i]
		approved := map[string]bool{}
		for _, v := range votes {
			if v.Stage == st.Stage && v.Vote == "approve" {
				approved[v.Principal] = true
			}
		}
		done := len(approved) > 0
		if st.Mode == "all" {
			done = len(st.Approvers) > 0
			for _, a := range st.Approvers {
				done = done && approved[a]
			}
		}
		if !done {
			return st
		}
	}
	return nil
}

// Override is the human review of an automated denial: a person with the
// right role sends an action the policy denied, when every reason of the
// denial is marked overridable, with a written justification. Opt-outs are
// never overridable. The send-time check honours the override for exactly
// the overridden rules.
func (pl *Pipeline) Override(ctx context.Context, p herald.Principal, id, justification string) (herald.Action, error) {
	if err := pl.Authz.Authorize(ctx, p, "approvals", "override"); err != nil {
		return herald.Action{}, err
	}
	if len(strings.TrimSpace(justification)) < minJustification {
		return herald.Action{}, herald.Invalid(herald.FieldError{Field: "justification",
			Message: "a written justification of at least 20 characters is required"})
	}
	var a herald.Action
	err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if a, err = lockedAction(ctx, tx, p.Org, id); err != nil {
			return err
		}
		if a.Status != herald.StatusDenied {
			return herald.Errorf(herald.CodeIllegalTransition, "only a denied action can be overridden (this one is %s)", a.Status)
		}
		if a.SubmittedBy == p.ID {
			return herald.Errorf(CodeSelfApproval, "the submitter cannot override the denial of their own action")
		}
		var d policies.Decision
		if err := json.Unmarshal(a.Decision, &d); err != nil || a.ErrorCode != "denied" {
			return herald.Errorf(CodeNotOverridable, "only a policy denial can be overridden")
		}
		rules, ok := overridableRules(d)
		if !ok {
			return herald.Errorf(CodeNotOverridable, "the denial has reasons that are not overridable (e.g. an opt-out)")
		}
		if err := tx.RecordOverride(ctx, a.Org, a.ID, p.ID, rules); err != nil {
			return err
		}
		rs := make([]any, len(rules))
		for i, r := range rules {
			rs[i] = r
		}
		payload, _ := json.Marshal(map[string]string{"justification": justification})
		if _, err := tx.AppendLedger(ctx, a.Org, store.LedgerRecord{Kind: ledger.KindActionOverridden, Actor: p.ID,
			Refs: map[string]string{"action": a.ID}, Attrs: map[string]any{"rules": rs, "role": p.Role}, Payload: payload}); err != nil {
			return err
		}
		sendAt := notBefore(a.SendAt, pl.Store.Now())
		empty := ""
		if a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: p.ID, Detail: "overridden",
			SendAt: &sendAt, ErrorCode: &empty}); err != nil {
			return err
		}
		return tx.Enqueue(ctx, a, sendAt)
	})
	if err == nil && pl.Notify != nil {
		pl.Notify()
	}
	return a, err
}

// overridableRules returns the rule ids of a denial when every deny reason
// is overridable.
func overridableRules(d policies.Decision) ([]string, bool) {
	var rules []string
	for _, r := range d.Reasons {
		if r.Severity != "deny" {
			continue
		}
		if !r.Overridable {
			return nil, false
		}
		rules = append(rules, r.Rule)
	}
	return rules, len(rules) > 0
}

// ExpireApprovals expires actions that waited for approval past their
// schedule or the maximum wait. It returns how many it expired.
func (pl *Pipeline) ExpireApprovals(ctx context.Context) (int, error) {
	list, err := pl.Store.ExpiredApprovals(ctx, pl.maxWait(), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range list {
		err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusExpired, Actor: "system", Detail: "approval_timeout"})
			return err
		})
		if herald.ErrorCode(err) == herald.CodeIllegalTransition {
			continue // decided meanwhile
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunExpiry expires overdue approvals every interval until ctx ends.
func (pl *Pipeline) RunExpiry(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := pl.ExpireApprovals(ctx); err != nil && ctx.Err() == nil {
				log.Error("expire approvals", "err", err)
			} else if n > 0 {
				log.Info("approvals expired", "actions", n)
			}
		}
	}
}

// approvalView is an action's approval state as the API shows it.
type approvalView struct {
	Action   herald.Action         `json:"action,omitzero"`
	Stages   []store.ApprovalStage `json:"stages"`
	Votes    []store.Vote          `json:"votes"`
	Current  *int                  `json:"current_stage,omitempty"`
	Override *store.Override       `json:"override,omitempty"`
}

func (s *Server) approvalState(ctx context.Context, a herald.Action) (approvalView, error) {
	v := approvalView{Action: a}
	var err error
	if v.Stages, err = s.Store.ApprovalStages(ctx, a.Org, a.ID); err != nil {
		return v, err
	}
	if v.Votes, err = s.Store.Votes(ctx, a.Org, a.ID); err != nil {
		return v, err
	}
	if a.Status == herald.StatusPendingApproval {
		if cur := currentStage(v.Stages, v.Votes); cur != nil {
			v.Current = &cur.Stage
		}
	}
	v.Override, err = s.Store.OverrideOf(ctx, a.Org, a.ID)
	return v, err
}

// listApprovals answers GET /v1/approvals: the caller's queue — actions
// waiting for a stage the caller can vote on, not their own, not yet voted.
func (s *Server) listApprovals(c *gin.Context) {
	if !s.authorize(c, "approvals", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	all := c.Query("all") == "true"
	list, _, err := s.Store.ListActions(ctx, p.Org, store.ActionFilter{Status: herald.StatusPendingApproval, Account: c.Query("account"),
		Purpose: c.Query("purpose"), Limit: 500})
	if err != nil {
		writeProblem(c, err)
		return
	}
	details, err := s.Store.PendingApprovalDetails(ctx, p.Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	out := []approvalView{}
	for _, a := range list {
		v := approvalView{Action: a, Stages: []store.ApprovalStage{}, Votes: []store.Vote{}}
		if d := details[a.ID]; d != nil {
			v.Stages, v.Votes, v.Override = d.Stages, d.Votes, d.Override
		}
		if cur := currentStage(v.Stages, v.Votes); cur != nil {
			v.Current = &cur.Stage
		}
		if !all {
			cur := currentStage(v.Stages, v.Votes)
			voted := slices.ContainsFunc(v.Votes, func(vt store.Vote) bool { return vt.Principal == p.ID })
			if cur == nil || !s.Pipeline.mayVoteOn(ctx, p, cur.Role) || a.SubmittedBy == p.ID || voted ||
				(len(cur.Approvers) > 0 && !slices.Contains(cur.Approvers, p.ID)) {
				continue
			}
		}
		out = append(out, v)
	}
	writeJSON(c, http.StatusOK, gin.H{"approvals": out})
}

type voteRequest struct {
	Comment string `json:"comment"`
}

type overrideRequest struct {
	Justification string `json:"justification"`
}

// decodeVote reads a vote's optional body (a comment); false means a
// problem was written.
func decodeVote(c *gin.Context) (voteRequest, bool) {
	var req voteRequest
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			writeProblem(c, err)
			return req, false
		}
	}
	return req, true
}

func (s *Server) voteHandler(vote string) gin.HandlerFunc {
	return func(c *gin.Context) {
		req, ok := decodeVote(c)
		if !ok {
			return
		}
		a, err := s.Pipeline.Vote(c.Request.Context(), principal(c), c.Param("id"), vote, req.Comment)
		if err != nil {
			writeProblem(c, err)
			return
		}
		s.writeApproval(c, a)
	}
}

func (s *Server) overrideAction(c *gin.Context) {
	var req overrideRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	a, err := s.Pipeline.Override(c.Request.Context(), principal(c), c.Param("id"), req.Justification)
	if err != nil {
		writeProblem(c, err)
		return
	}
	s.writeApproval(c, a)
}

func (s *Server) writeApproval(c *gin.Context, a herald.Action) {
	v, err := s.approvalState(c.Request.Context(), a)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, v)
}
