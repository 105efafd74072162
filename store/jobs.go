package store

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/telemetry"
)

// Job is a claimed delivery: the outbox row of one scheduled action.
type Job struct {
	ID       int64
	ActionID string
	Org      string
	Account  string
	RunAt    time.Time
	Attempts int
	// TraceParent is the W3C traceparent of the request that queued the
	// job ("" when tracing was off): the worker's spans join that trace.
	TraceParent string
}

// Enqueue adds the delivery job of a scheduled action, due at runAt. It runs
// in the transaction that moves the action to scheduled, so a committed
// scheduled action always has its job and a rolled-back one never does.
func (t *Tx) Enqueue(ctx context.Context, a herald.Action, runAt time.Time) error {
	id := a.ID
	return t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("enqueue action %s: %w", id, err) },
		`INSERT INTO jobs (action_id, org_id, account_id, run_at, created_at, trace_parent) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (action_id) DO UPDATE SET run_at = excluded.run_at, locked_by = '', locked_until = NULL, trace_parent = excluded.trace_parent`,
		a.ID, a.Org, a.Account, runAt.UTC().Truncate(time.Microsecond), t.now(), telemetry.TraceParent(ctx))
}

// ClaimJobs leases up to limit due jobs to worker for lease. Jobs of
// suspended organisations are held (until they are resumed), jobs of accounts
// that are paused, disabled or frozen (until their freeze ends) are held, and
// so are jobs of accounts whose send lease another live worker holds. A
// job whose lease expired (its worker died) can be claimed again; the
// worker then finds its action in sending and marks it unknown rather than
// sending twice.
func (q *queries) ClaimJobs(ctx context.Context, worker string, lease time.Duration, limit int) ([]Job, error) {
	now := q.now()
	rs, err := q.q.query(ctx, `UPDATE jobs SET locked_by = $1, locked_until = $2
		WHERE id IN (
			SELECT j.id FROM jobs j JOIN accounts a ON a.id = j.account_id
			WHERE j.run_at <= $3 AND (j.locked_until IS NULL OR j.locked_until < $3)
			  AND (a.status = 'active' OR (a.status = 'frozen' AND a.frozen_until IS NOT NULL AND a.frozen_until <= $3))
			  AND NOT EXISTS (SELECT 1 FROM orgs o WHERE o.id = j.org_id AND o.suspended_at IS NOT NULL)
			  AND NOT EXISTS (SELECT 1 FROM account_leases l WHERE l.account_id = j.account_id AND l.owner <> $1 AND l.expires_at > $3)
			ORDER BY j.run_at LIMIT $4 `+q.d.skipLocked+`)
		RETURNING id, action_id, org_id, account_id, run_at, attempts, trace_parent`, worker, now.Add(lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	defer rs.Close()
	var out []Job
	for rs.Next() {
		var j Job
		if err := rs.Scan(&j.ID, &j.ActionID, &j.Org, &j.Account, &j.RunAt, &j.Attempts, &j.TraceParent); err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rs.Err()
}

// DeleteJob removes an action's job (its outcome is recorded).
func (t *Tx) DeleteJob(ctx context.Context, actionID string) error {
	if _, err := t.q.exec(ctx, `DELETE FROM jobs WHERE action_id = $1`, actionID); err != nil {
		return fmt.Errorf("delete job of action %s: %w", actionID, err)
	}
	return nil
}

// RescheduleJob releases an action's job and makes it due at runAt.
func (t *Tx) RescheduleJob(ctx context.Context, actionID string, runAt time.Time, lastError string, countAttempt bool) error {
	inc := 0
	if countAttempt {
		inc = 1
	}
	_, err := t.q.exec(ctx, `UPDATE jobs SET run_at = $2, locked_by = '', locked_until = NULL, last_error = $3, attempts = attempts + $4
		WHERE action_id = $1`, actionID, runAt.UTC().Truncate(time.Microsecond), lastError, inc)
	if err != nil {
		return fmt.Errorf("reschedule job of action %s: %w", actionID, err)
	}
	return nil
}

// ReleaseJobs hands back every job leased to worker (graceful shutdown), so
// another worker can take them at once instead of waiting out the lease.
func (q *queries) ReleaseJobs(ctx context.Context, worker string) (int64, error) {
	n, err := q.q.exec(ctx, `UPDATE jobs SET locked_by = '', locked_until = NULL WHERE locked_by = $1`, worker)
	if err != nil {
		return 0, fmt.Errorf("release jobs of %s: %w", worker, err)
	}
	return n, nil
}

// ReleaseJob hands back one job without other changes.
func (q *queries) ReleaseJob(ctx context.Context, actionID, worker string) error {
	_, err := q.q.exec(ctx, `UPDATE jobs SET locked_by = '', locked_until = NULL WHERE action_id = $1 AND locked_by = $2`, actionID, worker)
	if err != nil {
		return fmt.Errorf("release job of action %s: %w", actionID, err)
	}
	return nil
}

// NextJobAt returns when the earliest unleased job is due, or nil if none is queued.
func (q *queries) NextJobAt(ctx context.Context) (*time.Time, error) {
	var t *time.Time
	if err := q.q.queryRow(ctx, `SELECT min(run_at) FROM jobs WHERE locked_until IS NULL`).Scan(&t); err != nil {
		return nil, fmt.Errorf("next job: %w", err)
	}
	return t, nil
}

// CountJobs returns the number of queued jobs (for metrics and tests).
func (q *queries) CountJobs(ctx context.Context) (int, error) {
	var n int
	if err := q.q.queryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count jobs: %w", err)
	}
	return n, nil
}
