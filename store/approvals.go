package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
)

// ApprovalStage is one stage an action must pass before it is scheduled:
// the stage the policy decision asked for (approvers filled in for an "all"
// stage without named approvers).
type ApprovalStage = policies.Stage

// Vote is one person's approval or rejection.
type Vote struct {
	Stage     int       `json:"stage"`
	Principal string    `json:"principal"`
	Vote      string    `json:"vote"` // approve | reject
	At        time.Time `json:"at"`
}

// Override is a person's override of an overridable denial.
type Override struct {
	Principal string    `json:"principal"`
	Rules     []string  `json:"rules"`
	At        time.Time `json:"at"`
}

// OpenApprovalStages records the stages an action waits in.
func (t *Tx) OpenApprovalStages(ctx context.Context, org, actionID string, stages []ApprovalStage) error {
	for _, st := range stages {
		if st.Approvers == nil {
			st.Approvers = []string{}
		}
		b, _ := json.Marshal(st.Approvers)
		if _, err := t.q.exec(ctx, `INSERT INTO approval_stages (action_id, org_id, stage, role, mode, approvers) VALUES ($1, $2, $3, $4, $5, $6)`,
			actionID, org, st.Stage, st.Role, st.Mode, string(b)); err != nil {
			return fmt.Errorf("open approval stage %d of action %s: %w", st.Stage, actionID, err)
		}
	}
	return nil
}

// ApprovalStages returns an action's stages in order.
func (q *queries) ApprovalStages(ctx context.Context, org, actionID string) ([]ApprovalStage, error) {
	rs, err := q.q.query(ctx, `SELECT stage, role, mode, approvers FROM approval_stages WHERE org_id = $1 AND action_id = $2 ORDER BY stage`, org, actionID)
	if err != nil {
		return nil, fmt.Errorf("approval stages: %w", err)
	}
	defer rs.Close()
	out := []ApprovalStage{}
	for rs.Next() {
		var (
			st  ApprovalStage
			raw string
		)
		if err := rs.Scan(&st.Stage, &st.Role, &st.Mode, &raw); err != nil {
			return nil, fmt.Errorf("approval stages: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &st.Approvers); err != nil {
			return nil, fmt.Errorf("approval stage approvers: %w", err)
		}
		out = append(out, st)
	}
	return out, rs.Err()
}

// Votes returns the votes cast on an action, oldest first.
func (q *queries) Votes(ctx context.Context, org, actionID string) ([]Vote, error) {
	rs, err := q.q.query(ctx, `SELECT stage, principal, vote, at FROM approval_votes WHERE org_id = $1 AND action_id = $2 ORDER BY at, principal`, org, actionID)
	if err != nil {
		return nil, fmt.Errorf("votes: %w", err)
	}
	defer rs.Close()
	out := []Vote{}
	for rs.Next() {
		var v Vote
		if err := rs.Scan(&v.Stage, &v.Principal, &v.Vote, &v.At); err != nil {
			return nil, fmt.Errorf("votes: %w", err)
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// CastVote records principal's vote; a person votes once per action.
func (t *Tx) CastVote(ctx context.Context, org, actionID string, stage int, principal, vote string) error {
	_, err := t.q.exec(ctx, `INSERT INTO approval_votes (action_id, org_id, stage, principal, vote, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		actionID, org, stage, principal, vote, t.now())
	if err != nil {
		if t.d.isUnique(err) {
			return herald.Errorf(herald.CodeConflict, "%s has already voted on this action; one person counts once", principal)
		}
		return fmt.Errorf("cast vote: %w", err)
	}
	return nil
}

// RecordOverride records a person's override of an action's denial.
func (t *Tx) RecordOverride(ctx context.Context, org, actionID, principal string, rules []string) error {
	b, _ := json.Marshal(rules)
	_, err := t.q.exec(ctx, `INSERT INTO action_overrides (action_id, org_id, principal, rules, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (action_id) DO UPDATE SET principal = excluded.principal, rules = excluded.rules, at = excluded.at`,
		actionID, org, principal, string(b), t.now())
	if err != nil {
		return fmt.Errorf("record override: %w", err)
	}
	return nil
}

// OverrideOf returns an action's override, or nil.
func (q *queries) OverrideOf(ctx context.Context, org, actionID string) (*Override, error) {
	var (
		o   Override
		raw string
	)
	err := q.q.queryRow(ctx, `SELECT principal, rules, at FROM action_overrides WHERE org_id = $1 AND action_id = $2`, org, actionID).
		Scan(&o.Principal, &raw, &o.At)
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("override: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &o.Rules); err != nil {
		return nil, fmt.Errorf("override rules: %w", err)
	}
	return &o, nil
}

// PrincipalsWithRole lists the principals holding role in org through an
// active API key (the snapshot an "all" stage without named approvers
// waits for).
func (q *queries) PrincipalsWithRole(ctx context.Context, org, role string) ([]string, error) {
	rs, err := q.q.query(ctx, `SELECT DISTINCT principal FROM api_keys WHERE org_id = $1 AND role = $2 AND revoked_at IS NULL
		AND (expires_at IS NULL OR expires_at > $3) ORDER BY principal`, org, role, q.now())
	if err != nil {
		return nil, fmt.Errorf("principals with role: %w", err)
	}
	defer rs.Close()
	out := []string{}
	for rs.Next() {
		var p string
		if err := rs.Scan(&p); err != nil {
			return nil, fmt.Errorf("principals with role: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// ExpiredApprovals lists actions waiting for approval past their schedule
// or past maxWait since they were submitted.
func (q *queries) ExpiredApprovals(ctx context.Context, maxWait time.Duration, limit int) ([]herald.Action, error) {
	now := q.now()
	rs, err := q.q.query(ctx, `SELECT `+actionColumns+` FROM actions WHERE status = 'pending_approval'
		AND ((schedule_at IS NOT NULL AND schedule_at < $1) OR created_at < $2) ORDER BY created_at LIMIT $3`,
		now, now.Add(-maxWait), limit)
	if err != nil {
		return nil, fmt.Errorf("expired approvals: %w", err)
	}
	defer rs.Close()
	var out []herald.Action
	for rs.Next() {
		a, err := scanAction(rs)
		if err != nil {
			return nil, fmt.Errorf("expired approvals: %w", err)
		}
		out = append(out, a)
	}
	return out, rs.Err()
}

// ApprovalDetail is what the approval queue shows of one action: its
// stages, the votes cast and any override.
type ApprovalDetail struct {
	Stages   []ApprovalStage
	Votes    []Vote
	Override *Override
}

// PendingApprovalDetails reads the stages, votes and overrides of every
// action of org waiting for approval, in three queries whatever the queue's
// length (the queue page would otherwise make three per action).
func (q *queries) PendingApprovalDetails(ctx context.Context, org string) (map[string]*ApprovalDetail, error) {
	out := map[string]*ApprovalDetail{}
	detail := func(id string) *ApprovalDetail {
		d := out[id]
		if d == nil {
			d = &ApprovalDetail{Stages: []ApprovalStage{}, Votes: []Vote{}}
			out[id] = d
		}
		return d
	}
	const pending = ` AND action_id IN (SELECT id FROM actions WHERE org_id = $1 AND status = 'pending_approval')`
	rs, err := q.q.query(ctx, `SELECT action_id, stage, role, mode, approvers FROM approval_stages WHERE org_id = $1`+pending+` ORDER BY action_id, stage`, org)
	if err != nil {
		return nil, fmt.Errorf("pending approval stages: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id, raw string
			st      ApprovalStage
		)
		if err := rs.Scan(&id, &st.Stage, &st.Role, &st.Mode, &raw); err != nil {
			return nil, fmt.Errorf("pending approval stages: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &st.Approvers); err != nil {
			return nil, fmt.Errorf("approval stage approvers: %w", err)
		}
		d := detail(id)
		d.Stages = append(d.Stages, st)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("pending approval stages: %w", err)
	}
	rs.Close()
	if rs, err = q.q.query(ctx, `SELECT action_id, stage, principal, vote, at FROM approval_votes WHERE org_id = $1`+pending+` ORDER BY action_id, at, principal`, org); err != nil {
		return nil, fmt.Errorf("pending approval votes: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id string
			v  Vote
		)
		if err := rs.Scan(&id, &v.Stage, &v.Principal, &v.Vote, &v.At); err != nil {
			return nil, fmt.Errorf("pending approval votes: %w", err)
		}
		d := detail(id)
		d.Votes = append(d.Votes, v)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("pending approval votes: %w", err)
	}
	rs.Close()
	if rs, err = q.q.query(ctx, `SELECT action_id, principal, rules, at FROM action_overrides WHERE org_id = $1`+pending, org); err != nil {
		return nil, fmt.Errorf("pending approval overrides: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id, raw string
			o       Override
		)
		if err := rs.Scan(&id, &o.Principal, &raw, &o.At); err != nil {
			return nil, fmt.Errorf("pending approval overrides: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &o.Rules); err != nil {
			return nil, fmt.Errorf("override rules: %w", err)
		}
		detail(id).Override = &o
	}
	return out, rs.Err()
}
