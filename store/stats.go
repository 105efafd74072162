package store

import (
	"context"
	"fmt"
	"time"
)

// DeliveryStats summarises an organisation's actions by outcome, with the
// submit-to-delivered latency of each delivered action (for load tools and
// SLO reports).
type DeliveryStats struct {
	Delivered, Failed, Unknown, Pending int
	PerAccount                          map[string]int // delivered per account
	Latencies                           []time.Duration
}

// DeliveryStats reads org's delivery outcomes.
func (q *queries) DeliveryStats(ctx context.Context, org string) (DeliveryStats, error) {
	st := DeliveryStats{PerAccount: map[string]int{}}
	rs, err := q.q.query(ctx, `SELECT account_id, status, created_at, updated_at FROM actions WHERE org_id = $1`, org)
	if err != nil {
		return st, fmt.Errorf("delivery stats: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			account, status  string
			created, updated time.Time
		)
		if err := rs.Scan(&account, &status, &created, &updated); err != nil {
			return st, fmt.Errorf("delivery stats: %w", err)
		}
		switch status {
		case "delivered":
			st.Delivered++
			st.PerAccount[account]++
			st.Latencies = append(st.Latencies, updated.Sub(created))
		case "failed":
			st.Failed++
		case "unknown":
			st.Unknown++
		case "scheduled", "sending", "received", "decided", "pending_approval":
			st.Pending++
		}
	}
	return st, rs.Err()
}
