package store

import (
	"context"
	"fmt"
	"time"
)

// countedStatuses are the statuses that consume a frequency cap: everything
// committed to go out or already out. Denied actions never count; cancelled,
// expired and failed ones release their reservation.
const countedStatuses = `('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')`

// RecipientSend is one earlier counted send to a recipient.
type RecipientSend struct {
	At      time.Time
	Purpose string
}

// SendFacts are the counters policies decide frequency and risk from.
type SendFacts struct {
	Recipient         []RecipientSend
	AccountLastSecond int
	AccountLastMinute int
	AccountSends24h   int
	AccountBlocked24h int
	AccountDaily7d    float64
	ChatLastMinute    int
	ChatLastPostAt    *time.Time
}

// recipientWindow is how far back recipient sends are listed: a calendar
// week in the recipient's zone plus a day of zone slack.
const recipientWindow = 8 * 24 * time.Hour

// SendFacts gathers the counters for an action of account to target due at
// at. Run inside the deciding transaction, after Lock on the account and the
// recipient, the counts and the reservation (the inserted action) are atomic.
// excludeAction leaves one action out (the one being re-decided at send time).
func (q *queries) SendFacts(ctx context.Context, org, account, target string, at time.Time, excludeAction string) (SendFacts, error) {
	var f SendFacts
	rs, err := q.q.query(ctx, `SELECT send_at, purpose FROM actions
		WHERE org_id = $1 AND target = $2 AND status IN `+countedStatuses+` AND send_at >= $3 AND send_at <= $4 AND id <> $5
		ORDER BY send_at`, org, target, at.Add(-recipientWindow), at.Add(recipientWindow), excludeAction)
	if err != nil {
		return f, fmt.Errorf("recipient sends: %w", err)
	}
	for rs.Next() {
		var s RecipientSend
		if err := rs.Scan(&s.At, &s.Purpose); err != nil {
			rs.Close()
			return f, fmt.Errorf("recipient sends: %w", err)
		}
		f.Recipient = append(f.Recipient, s)
		if !s.At.Before(at.Add(-time.Minute)) && !s.At.After(at) {
			f.ChatLastMinute++
		}
		if !s.At.After(at) {
			t := s.At
			f.ChatLastPostAt = &t
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return f, fmt.Errorf("recipient sends: %w", err)
	}
	var week int
	err = q.q.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN send_at > $3 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN send_at > $4 THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN send_at > $5 THEN 1 ELSE 0 END), 0),
			COUNT(*)
		FROM actions WHERE org_id = $1 AND account_id = $2 AND status IN `+countedStatuses+`
		  AND send_at > $6 AND send_at <= $7 AND id <> $8`,
		org, account, at.Add(-time.Second), at.Add(-time.Minute), at.Add(-24*time.Hour), at.Add(-7*24*time.Hour), at, excludeAction).
		Scan(&f.AccountLastSecond, &f.AccountLastMinute, &f.AccountSends24h, &week)
	if err != nil {
		return f, fmt.Errorf("account sends: %w", err)
	}
	f.AccountDaily7d = float64(week) / 7
	if err := q.q.queryRow(ctx, `SELECT COUNT(*) FROM actions WHERE org_id = $1 AND account_id = $2 AND error_code = 'blocked'
		AND updated_at > $3`, org, account, at.Add(-24*time.Hour)).Scan(&f.AccountBlocked24h); err != nil {
		return f, fmt.Errorf("account blocked count: %w", err)
	}
	return f, nil
}
