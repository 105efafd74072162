package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/slo"
	"github.com/heraldhq/herald/telemetry"
)

// SLOOutcomes reads the final outcomes (delivered, failed, unknown) recorded
// in [from, to) with each action's due time, for the SLO report. org ""
// reads every organisation. The outcome's time is its action event's, so
// an action counts in the window it ended in. No content, target or contact
// column is read.
func (q *queries) SLOOutcomes(ctx context.Context, org string, from, to time.Time) ([]slo.Outcome, error) {
	rs, err := q.q.query(ctx, `SELECT a.account_id, acc.connector, e.to_status, a.send_at, e.at
		FROM action_events e
		JOIN actions a ON a.id = e.action_id
		JOIN accounts acc ON acc.id = a.account_id
		WHERE e.to_status IN ('delivered', 'failed', 'unknown') AND e.at >= $1 AND e.at < $2
		  AND ($3 = '' OR e.org_id = $3)
		ORDER BY e.id`, from.UTC(), to.UTC(), org)
	if err != nil {
		return nil, fmt.Errorf("slo outcomes: %w", err)
	}
	defer rs.Close()
	var out []slo.Outcome
	for rs.Next() {
		var o slo.Outcome
		if err := rs.Scan(&o.Account, &o.Connector, &o.Status, &o.Due, &o.At); err != nil {
			return nil, fmt.Errorf("slo outcomes: %w", err)
		}
		out = append(out, o)
	}
	return out, rs.Err()
}

// QueueHealth reads, across organisations, the age of the oldest due
// delivery job of an active account, of the oldest action pending approval,
// and how many actions are in unknown (the scrape-time gauges of
// telemetry.Probes).
func (q *queries) QueueHealth(ctx context.Context) (telemetry.QueueHealth, error) {
	var h telemetry.QueueHealth
	now := q.now()
	oldest := func(sql string, args ...any) (time.Duration, error) {
		var t time.Time
		err := q.q.queryRow(ctx, sql, args...).Scan(&t)
		if errors.Is(err, errNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return max(now.Sub(t), 0), nil
	}
	var err error
	if h.OldestDue, err = oldest(`SELECT j.run_at FROM jobs j JOIN accounts a ON a.id = j.account_id
		WHERE j.run_at <= $1 AND a.status = 'active' ORDER BY j.run_at LIMIT 1`, now); err != nil {
		return h, fmt.Errorf("queue health: oldest due job: %w", err)
	}
	if h.OldestApproval, err = oldest(`SELECT created_at FROM actions WHERE status = 'pending_approval' ORDER BY created_at LIMIT 1`); err != nil {
		return h, fmt.Errorf("queue health: oldest approval: %w", err)
	}
	if err := q.q.queryRow(ctx, `SELECT COUNT(*) FROM actions WHERE status = 'unknown'`).Scan(&h.Unknown); err != nil {
		return h, fmt.Errorf("queue health: unknown actions: %w", err)
	}
	return h, nil
}
