package store

import (
	"context"
	"fmt"
	"time"
)

// AccountDayCounts counts, per account, org's actions due in [from, to)
// that are still to be sent (scheduled or awaiting approval).
func (q *queries) AccountDayCounts(ctx context.Context, org string, from, to time.Time) (map[string]int, error) {
	return q.countByAccount(ctx, `SELECT account_id, count(*) FROM actions WHERE org_id = $1
		AND status IN ('scheduled','pending_approval') AND send_at >= $2 AND send_at < $3 AND send_at < $4 GROUP BY account_id`, org, from, to, HeldUntil)
}

// PendingRecipientDayCounts counts, per account, campaign recipients not
// yet submitted whose send time is in [from, to).
func (q *queries) PendingRecipientDayCounts(ctx context.Context, org string, from, to time.Time) (map[string]int, error) {
	return q.countByAccount(ctx, `SELECT r.account_id, count(*) FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
		WHERE r.org_id = $1 AND r.status = 'pending' AND c.status IN ('scheduled','running') AND r.send_at >= $2 AND r.send_at < $3 AND r.send_at < $4
		GROUP BY r.account_id`, org, from, to, HeldUntil)
}

func (q *queries) countByAccount(ctx context.Context, sql string, args ...any) (map[string]int, error) {
	rs, err := q.q.query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("calendar counts: %w", err)
	}
	defer rs.Close()
	out := map[string]int{}
	for rs.Next() {
		var (
			a string
			n int
		)
		if err := rs.Scan(&a, &n); err != nil {
			return nil, fmt.Errorf("calendar counts: %w", err)
		}
		out[a] = n
	}
	return out, rs.Err()
}

// RecipientMembers returns a materialised campaign's recipients as members
// (for audience overlap), in contact id order.
func (q *queries) RecipientMembers(ctx context.Context, org, campaign string) ([]Member, error) {
	return q.members(ctx, `SELECT c.id, c.chat_id, c.timezone FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND r.status IN ('pending','submitted') ORDER BY c.id`, campaign, org)
}

// CampaignStateCounts counts every organisation's campaigns by status, and
// the recipients of unfinished campaigns by recipient status (for metrics:
// no organisation or campaign in the result).
func (q *queries) CampaignStateCounts(ctx context.Context) (campaignsByStatus, recipientsByStatus map[string]int, err error) {
	campaignsByStatus, err = q.countByAccount(ctx, `SELECT status, count(*) FROM campaigns GROUP BY status`)
	if err != nil {
		return nil, nil, err
	}
	recipientsByStatus, err = q.countByAccount(ctx, `SELECT r.status, count(*) FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
		WHERE c.status IN ('scheduled','running','paused') GROUP BY r.status`)
	return campaignsByStatus, recipientsByStatus, err
}
