package store

import (
	"context"
	"fmt"
	"sync"
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
	// Exact counters for the caps, over a bounded window (an index range).
	err = q.q.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN send_at > $3 THEN 1 ELSE 0 END), 0),
			COUNT(*)
		FROM actions WHERE org_id = $1 AND account_id = $2 AND status IN `+countedStatuses+`
		  AND send_at > $4 AND send_at <= $5 AND id <> $6`,
		org, account, at.Add(-time.Second), at.Add(-time.Minute), at, excludeAction).
		Scan(&f.AccountLastSecond, &f.AccountLastMinute)
	if err != nil {
		return f, fmt.Errorf("account sends: %w", err)
	}
	v, err := q.accountVolumes(ctx, org, account, at)
	if err != nil {
		return f, err
	}
	f.AccountSends24h, f.AccountDaily7d, f.AccountBlocked24h = v.sends24h, float64(v.week)/7, v.blocked24h
	return f, nil
}

// accountVolumes are an account's day and week volumes, for risk scoring
// (new-account bursts, blocks). They are not caps, so a value up to
// volumeTTL old is good enough, and it spares every decision a scan of the
// account's whole week.
type accountVolumes struct {
	sends24h, week, blocked24h int
	at                         time.Time
}

// volumeTTL bounds how stale cached volumes may be.
const volumeTTL = 30 * time.Second

type volumeCache struct {
	mu sync.Mutex
	m  map[string]accountVolumes
}

func (q *queries) accountVolumes(ctx context.Context, org, account string, at time.Time) (accountVolumes, error) {
	now := q.now()
	cacheable := q.vol != nil && at.Sub(now).Abs() < volumeTTL
	if cacheable {
		q.vol.mu.Lock()
		v, ok := q.vol.m[account]
		q.vol.mu.Unlock()
		if ok && now.Sub(v.at) < volumeTTL {
			return v, nil
		}
	}
	v := accountVolumes{at: now}
	err := q.q.queryRow(ctx, `SELECT
			COALESCE(SUM(CASE WHEN send_at > $3 THEN 1 ELSE 0 END), 0),
			COUNT(*)
		FROM actions WHERE org_id = $1 AND account_id = $2 AND status IN `+countedStatuses+`
		  AND send_at > $4 AND send_at <= $5`,
		org, account, at.Add(-24*time.Hour), at.Add(-7*24*time.Hour), at).Scan(&v.sends24h, &v.week)
	if err != nil {
		return v, fmt.Errorf("account volumes: %w", err)
	}
	if err := q.q.queryRow(ctx, `SELECT COUNT(*) FROM actions WHERE account_id = $1 AND error_code = 'blocked'
		AND updated_at > $2`, account, at.Add(-24*time.Hour)).Scan(&v.blocked24h); err != nil {
		return v, fmt.Errorf("account blocked count: %w", err)
	}
	if cacheable {
		q.vol.mu.Lock()
		if q.vol.m == nil || len(q.vol.m) > 10000 {
			q.vol.m = map[string]accountVolumes{} // bounded: drop all, refill lazily
		}
		q.vol.m[account] = v
		q.vol.mu.Unlock()
	}
	return v, nil
}
