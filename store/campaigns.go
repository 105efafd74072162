package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
)

const campaignColumns = `id, org_id, name, status, spec, created_by, run_as, materialized, created_at, updated_at`

func scanCampaign(r row) (campaigns.Campaign, error) {
	var (
		c    campaigns.Campaign
		spec string
	)
	if err := r.Scan(&c.ID, &c.Org, &c.Name, &c.Status, &spec, &c.CreatedBy, &c.RunAs, &c.Materialized, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(spec), &c.Spec); err != nil {
		return c, fmt.Errorf("decode campaign %s: %w", c.ID, err)
	}
	return c, nil
}

// CreateCampaign stores a draft campaign and its ledger entry.
func (t *Tx) CreateCampaign(ctx context.Context, c campaigns.Campaign) (campaigns.Campaign, error) {
	spec, err := json.Marshal(c.Spec)
	if err != nil {
		return c, fmt.Errorf("encode campaign: %w", err)
	}
	c.ID, c.Status = NewID(), campaigns.StatusDraft
	c.CreatedAt = t.now()
	c.UpdatedAt = c.CreatedAt
	if _, err := t.q.exec(ctx, `INSERT INTO campaigns (id, org_id, name, status, spec, created_by, start_at, end_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, c.ID, c.Org, c.Name, string(c.Status), string(spec), c.CreatedBy,
		c.Spec.StartAt, c.Spec.EndAt, c.CreatedAt); err != nil {
		return c, fmt.Errorf("create campaign: %w", err)
	}
	_, err = t.AppendLedger(ctx, c.Org, LedgerRecord{Kind: campaigns.KindCreated, Actor: c.CreatedBy,
		Refs:  map[string]string{"campaign": c.ID},
		Attrs: map[string]any{"purpose": c.Spec.Purpose, "accounts": len(c.Spec.Accounts), "segment": c.Spec.Segment != ""}})
	return c, err
}

// GetCampaign returns one of org's campaigns.
func (q *queries) GetCampaign(ctx context.Context, org, id string) (campaigns.Campaign, error) {
	c, err := scanCampaign(q.q.queryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE org_id = $1 AND id = $2`, org, id))
	return c, scanNotFound(err, "campaign")
}

// ListCampaigns returns org's campaigns, newest first, optionally of one status.
func (q *queries) ListCampaigns(ctx context.Context, org string, status campaigns.Status, limit int) ([]campaigns.Campaign, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	sql, args := `SELECT `+campaignColumns+` FROM campaigns WHERE org_id = $1`, []any{org}
	if status != "" {
		sql += ` AND status = $2`
		args = append(args, string(status))
	}
	rs, err := q.q.query(ctx, sql+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	defer rs.Close()
	out := []campaigns.Campaign{}
	for rs.Next() {
		c, err := scanCampaign(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// UpdateCampaignSpec replaces a draft campaign's name and spec.
func (t *Tx) UpdateCampaignSpec(ctx context.Context, org, id, name string, spec campaigns.Spec) (campaigns.Campaign, error) {
	c, err := t.lockCampaign(ctx, org, id)
	if err != nil {
		return c, err
	}
	if c.Status != campaigns.StatusDraft {
		return c, herald.Errorf(herald.CodeIllegalTransition, "only a draft campaign can be edited (this one is %s)", c.Status)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return c, fmt.Errorf("encode campaign: %w", err)
	}
	c.Name, c.Spec, c.UpdatedAt = name, spec, t.now()
	_, err = t.q.exec(ctx, `UPDATE campaigns SET name = $3, spec = $4, start_at = $5, end_at = $6, updated_at = $7 WHERE org_id = $1 AND id = $2`,
		org, id, name, string(raw), spec.StartAt, spec.EndAt, c.UpdatedAt)
	if err != nil {
		return c, fmt.Errorf("update campaign: %w", err)
	}
	return c, nil
}

func (t *Tx) lockCampaign(ctx context.Context, org, id string) (campaigns.Campaign, error) {
	forUpdate := ""
	if t.d.name == "postgres" {
		forUpdate = " FOR UPDATE"
	}
	c, err := scanCampaign(t.q.queryRow(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE org_id = $1 AND id = $2`+forUpdate, org, id))
	return c, scanNotFound(err, "campaign")
}

// SetCampaignStatus moves a campaign, with its ledger entry, and applies
// what the move means to the actions already created for it:
//   - paused: their queued sends are held (jobs pushed to HeldUntil);
//   - running or scheduled again: held sends are released at their time;
//   - cancelled: every action not yet sending is cancelled and every
//     recipient not yet submitted is dropped.
//
// runAs, when not empty, becomes the principal the fan-out submits as.
func (t *Tx) SetCampaignStatus(ctx context.Context, org, id string, to campaigns.Status, actor, runAs string) (campaigns.Campaign, error) {
	c, err := t.lockCampaign(ctx, org, id)
	if err != nil {
		return c, err
	}
	if !campaigns.CanTransition(c.Status, to) {
		return c, herald.Errorf(herald.CodeIllegalTransition, "a %s campaign cannot become %s", c.Status, to)
	}
	from := c.Status
	c.Status, c.UpdatedAt = to, t.now()
	if runAs != "" {
		c.RunAs = runAs
	}
	if _, err := t.q.exec(ctx, `UPDATE campaigns SET status = $3, run_as = $4, updated_at = $5 WHERE org_id = $1 AND id = $2`,
		org, id, string(to), c.RunAs, c.UpdatedAt); err != nil {
		return c, fmt.Errorf("move campaign to %s: %w", to, err)
	}
	attrs := map[string]any{"from": string(from), "to": string(to)}
	switch to {
	case campaigns.StatusPaused:
		n, err := t.HoldCampaignJobs(ctx, org, id)
		if err != nil {
			return c, err
		}
		attrs["held"] = n
	case campaigns.StatusRunning, campaigns.StatusScheduled:
		if from == campaigns.StatusPaused {
			n, err := t.q.exec(ctx, `UPDATE jobs SET run_at = (SELECT a.send_at FROM actions a WHERE a.id = jobs.action_id)
				WHERE run_at = $2 AND action_id IN (SELECT action_id FROM campaign_recipients WHERE campaign_id = $1 AND action_id IS NOT NULL)`,
				id, HeldUntil)
			if err != nil {
				return c, fmt.Errorf("release campaign sends: %w", err)
			}
			attrs["released"] = n
		}
	case campaigns.StatusCancelled:
		n, err := t.CancelCampaignActions(ctx, org, id, actor)
		if err != nil {
			return c, err
		}
		attrs["cancelled_actions"] = n
		if _, err := t.q.exec(ctx, `UPDATE campaign_recipients SET status = 'cancelled', reason = 'campaign.cancelled', updated_at = $2
			WHERE campaign_id = $1 AND status = 'pending'`, id, c.UpdatedAt); err != nil {
			return c, fmt.Errorf("drop pending recipients: %w", err)
		}
	}
	_, err = t.AppendLedger(ctx, org, LedgerRecord{Kind: campaigns.KindPrefix + string(to), Actor: actor,
		Refs: map[string]string{"campaign": id}, Attrs: attrs})
	return c, err
}

// HeldUntil is the run time of a paused campaign's queued sends: far enough
// that no worker claims them, and a marker that resume restores.
var HeldUntil = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// HoldCampaignJobs holds the queued sends of a campaign's actions that no
// worker is sending (a claimed job whose action is already sending is left
// alone: it is in Telegram's hands). It returns how many it held.
func (t *Tx) HoldCampaignJobs(ctx context.Context, org, id string) (int64, error) {
	n, err := t.q.exec(ctx, `UPDATE jobs SET run_at = $3, locked_by = '', locked_until = NULL
		WHERE org_id = $1 AND action_id IN (SELECT r.action_id FROM campaign_recipients r JOIN actions a ON a.id = r.action_id
			WHERE r.campaign_id = $2 AND a.status IN ('scheduled','pending_approval'))`, org, id, HeldUntil)
	if err != nil {
		return 0, fmt.Errorf("hold campaign sends: %w", err)
	}
	return n, nil
}

// CancelCampaignActions cancels every action of a campaign that is not yet
// sending (and drops its queued send), each with its transition and ledger
// entry. It returns how many it cancelled.
func (t *Tx) CancelCampaignActions(ctx context.Context, org, id, actor string) (int, error) {
	rs, err := t.q.query(ctx, `SELECT a.id FROM campaign_recipients r JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND a.org_id = $2 AND a.status IN ('scheduled','pending_approval') ORDER BY a.id`, id, org)
	if err != nil {
		return 0, fmt.Errorf("find campaign actions: %w", err)
	}
	var ids []string
	for rs.Next() {
		var a string
		if err := rs.Scan(&a); err != nil {
			rs.Close()
			return 0, err
		}
		ids = append(ids, a)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, err
	}
	for _, a := range ids {
		if _, err := t.Transition(ctx, org, a, Transition{To: herald.StatusCancelled, Actor: actor, Detail: "campaign cancelled"}); err != nil {
			return 0, err
		}
		if err := t.DeleteJob(ctx, a); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// DueCampaigns lists campaigns whose fan-out has work: scheduled ones
// whose start has come, and running ones.
func (q *queries) DueCampaigns(ctx context.Context, now time.Time, limit int) ([]campaigns.Campaign, error) {
	rs, err := q.q.query(ctx, `SELECT `+campaignColumns+` FROM campaigns
		WHERE status = 'running' OR (status = 'scheduled' AND (start_at IS NULL OR start_at <= $1))
		ORDER BY id LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("due campaigns: %w", err)
	}
	defer rs.Close()
	var out []campaigns.Campaign
	for rs.Next() {
		c, err := scanCampaign(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// ClaimCampaign takes (or renews) the fan-out lease of a campaign, so two
// runners (two replicas) do not fan out the same campaign at once. The
// idempotency keys make a double fan-out harmless; the lease makes it rare.
func (q *queries) ClaimCampaign(ctx context.Context, id, owner string, ttl time.Duration) (bool, error) {
	now := q.now()
	n, err := q.q.exec(ctx, `UPDATE campaigns SET lease_owner = $2, lease_until = $3
		WHERE id = $1 AND (lease_owner = $2 OR lease_until IS NULL OR lease_until < $4)`, id, owner, now.Add(ttl), now)
	if err != nil {
		return false, fmt.Errorf("claim campaign: %w", err)
	}
	return n == 1, nil
}

// ReleaseCampaign gives up a fan-out lease.
func (q *queries) ReleaseCampaign(ctx context.Context, id, owner string) error {
	_, err := q.q.exec(ctx, `UPDATE campaigns SET lease_owner = '', lease_until = NULL WHERE id = $1 AND lease_owner = $2`, id, owner)
	return err
}

// Recipient is one person of a campaign and what became of them.
type Recipient struct {
	Campaign string    `json:"-"`
	Contact  string    `json:"contact"`
	Seq      int64     `json:"seq"`
	Account  string    `json:"account"`
	SendAt   time.Time `json:"send_at"`
	Status   string    `json:"status"` // pending | submitted | invalid | skipped | cancelled
	Action   string    `json:"action,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// ActionStatus is the status of the recipient's action, when read with results.
	ActionStatus string `json:"action_status,omitempty"`
	// ChatID is the contact's chat, read with pending recipients for the
	// submit ("" when the contact was erased since). Never serialised.
	ChatID string `json:"-"`
}

// Recipient statuses.
const (
	RecipientPending   = "pending"
	RecipientSubmitted = "submitted"
	RecipientInvalid   = "invalid"
	RecipientSkipped   = "skipped"
	RecipientCancelled = "cancelled"
)

// recipientBatch bounds one multi-row insert (7 parameters a row, well
// under SQLite's parameter limit).
const recipientBatch = 500

// MaterializeRecipients inserts a campaign's recipients (existing ones are
// kept: a crashed materialisation resumes) and marks the campaign
// materialised, in the caller's transaction.
func (t *Tx) MaterializeRecipients(ctx context.Context, org, campaign string, rs []Recipient) error {
	now := t.now()
	for start := 0; start < len(rs); start += recipientBatch {
		end := min(start+recipientBatch, len(rs))
		var (
			sb   strings.Builder
			args = make([]any, 0, (end-start)*9)
		)
		sb.WriteString(`INSERT INTO campaign_recipients (campaign_id, org_id, contact_id, seq, account_id, send_at, status, reason, updated_at) VALUES `)
		for i, r := range rs[start:end] {
			if i > 0 {
				sb.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&sb, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9)
			status := r.Status
			if status == "" {
				status = RecipientPending
			}
			args = append(args, campaign, org, r.Contact, r.Seq, r.Account, r.SendAt, status, r.Reason, now)
		}
		sb.WriteString(` ON CONFLICT (campaign_id, contact_id) DO NOTHING`)
		if _, err := t.q.exec(ctx, sb.String(), args...); err != nil {
			return fmt.Errorf("store recipients: %w", err)
		}
	}
	_, err := t.q.exec(ctx, `UPDATE campaigns SET materialized = $3, updated_at = $4 WHERE org_id = $1 AND id = $2`, org, campaign, true, now)
	if err != nil {
		return fmt.Errorf("mark campaign materialised: %w", err)
	}
	_, err = t.AppendLedger(ctx, org, LedgerRecord{Kind: campaigns.KindMaterialized, Actor: "system",
		Refs: map[string]string{"campaign": campaign}, Attrs: map[string]any{"recipients": len(rs)}})
	return err
}

func scanRecipient(r row, extra ...any) (Recipient, error) {
	var (
		x      Recipient
		action *string
	)
	dest := append([]any{&x.Campaign, &x.Contact, &x.Seq, &x.Account, &x.SendAt, &x.Status, &action, &x.Reason}, extra...)
	if err := r.Scan(dest...); err != nil {
		return x, err
	}
	if action != nil {
		x.Action = *action
	}
	return x, nil
}

// PendingRecipients returns up to limit of a campaign's recipients not yet
// submitted, in fan-out order.
func (q *queries) PendingRecipients(ctx context.Context, org, campaign string, limit int) ([]Recipient, error) {
	rs, err := q.q.query(ctx, `SELECT r.campaign_id, r.contact_id, r.seq, r.account_id, r.send_at, r.status, r.action_id, r.reason, COALESCE(c.chat_id, '')
		FROM campaign_recipients r LEFT JOIN contacts c ON c.id = r.contact_id AND c.org_id = r.org_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND r.status = 'pending' ORDER BY r.seq LIMIT $3`, campaign, org, limit)
	if err != nil {
		return nil, fmt.Errorf("pending recipients: %w", err)
	}
	defer rs.Close()
	var out []Recipient
	for rs.Next() {
		var chat string
		r, err := scanRecipient(rs, &chat)
		if err != nil {
			return nil, fmt.Errorf("pending recipients: %w", err)
		}
		r.ChatID = chat
		out = append(out, r)
	}
	return out, rs.Err()
}

// RecordRecipients stores what the fan-out did for a batch of recipients
// (their status, action, reason and account: a recipient moved off an
// unhealthy account is recorded on the one it was sent from), in one
// statement per 200. Only pending recipients change: a cancel that dropped
// them wins.
func (q *queries) RecordRecipients(ctx context.Context, org, campaign string, rs []Recipient) error {
	now := q.now()
	for start := 0; start < len(rs); start += 200 {
		chunk := rs[start:min(start+200, len(rs))]
		rows := make([]string, len(chunk))
		args := []any{campaign, org, now}
		for i, r := range chunk {
			n := len(args)
			rows[i] = fmt.Sprintf("($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
			args = append(args, r.Contact, r.Status, nullable(r.Action), r.Reason, r.Account)
		}
		// VALUES columns are column1… on both databases.
		if _, err := q.q.exec(ctx, `UPDATE campaign_recipients SET status = v.column2, action_id = v.column3, reason = v.column4,
			account_id = v.column5, updated_at = $3
			FROM (VALUES `+strings.Join(rows, ", ")+`) AS v
			WHERE campaign_recipients.campaign_id = $1 AND campaign_recipients.org_id = $2
			AND campaign_recipients.contact_id = v.column1 AND campaign_recipients.status = 'pending'`, args...); err != nil {
			return fmt.Errorf("record recipients: %w", err)
		}
	}
	return nil
}

// OpenCampaignActions counts a campaign's recipients still to be submitted
// and its actions not yet final: zero means the campaign is complete.
func (q *queries) OpenCampaignActions(ctx context.Context, org, campaign string) (int, error) {
	var n int
	err := q.q.queryRow(ctx, `SELECT count(*) FROM campaign_recipients r LEFT JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND (r.status = 'pending'
			OR (r.status = 'submitted' AND a.status IN ('received','decided','pending_approval','scheduled','sending')))`, campaign, org).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open campaign actions: %w", err)
	}
	return n, nil
}

// CampaignResults are a campaign's counts.
type CampaignResults struct {
	Recipients  int            `json:"recipients"`
	ByRecipient map[string]int `json:"by_recipient_status"`
	// ByStatus counts the recipients' actions by status.
	ByStatus map[string]int `json:"by_action_status"`
	// ByReason counts non-delivered outcomes by reason: the deny rule
	// (denied), the error code (failed), the template problem (invalid).
	ByReason map[string]int `json:"by_reason"`
	// OptedOutDuring counts recipients who opted out after the campaign was created.
	OptedOutDuring int `json:"opted_out_during_campaign"`
	// DeliveryRate is the campaign's deliveries per minute over the last
	// hour (UTC minutes, oldest first, minutes without deliveries omitted).
	DeliveryRate []RateBucket `json:"delivery_rate"`
	// Completion estimates when the campaign's last message goes out.
	Completion *Completion `json:"completion_estimate,omitempty"`
}

// RateBucket is one minute's deliveries.
type RateBucket struct {
	Minute    time.Time `json:"minute"`
	Delivered int       `json:"delivered"`
}

// Completion is a campaign's completion estimate: the open work (recipients
// not yet submitted and actions not yet final) at the delivery rate of the
// last ten minutes, and never before the latest queued send time (a
// deferred recipient waits for their turn whatever the rate).
type Completion struct {
	Open int `json:"open"`
	// PerMinute is the recent delivery rate the estimate assumes.
	PerMinute float64 `json:"per_minute"`
	// LatestSendAt is the latest send time among the open actions.
	LatestSendAt *time.Time `json:"latest_send_at,omitempty"`
	// At is the estimate; absent while nothing has been delivered recently
	// and no send time is known.
	At *time.Time `json:"at,omitempty"`
}

// rateWindow is how far back DeliveryRate reaches; estimateWindow is the
// span whose rate the completion estimate assumes.
const (
	rateWindow     = time.Hour
	estimateWindow = 10 * time.Minute
)

// deliveryProgress fills the delivery rate and completion estimate.
func (q *queries) deliveryProgress(ctx context.Context, org, campaign string, res *CampaignResults) error {
	now := q.now()
	rs, err := q.q.query(ctx, `SELECT e.at FROM campaign_recipients r JOIN action_events e ON e.action_id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND e.to_status = 'delivered' AND e.at >= $3`, campaign, org, now.Add(-rateWindow))
	if err != nil {
		return fmt.Errorf("campaign delivery rate: %w", err)
	}
	buckets := map[time.Time]int{}
	recent := 0
	for rs.Next() {
		var at time.Time
		if err := rs.Scan(&at); err != nil {
			rs.Close()
			return fmt.Errorf("campaign delivery rate: %w", err)
		}
		buckets[at.UTC().Truncate(time.Minute)]++
		if !at.Before(now.Add(-estimateWindow)) {
			recent++
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	res.DeliveryRate = make([]RateBucket, 0, len(buckets))
	for m, n := range buckets {
		res.DeliveryRate = append(res.DeliveryRate, RateBucket{Minute: m, Delivered: n})
	}
	sort.Slice(res.DeliveryRate, func(i, j int) bool { return res.DeliveryRate[i].Minute.Before(res.DeliveryRate[j].Minute) })
	open, err := q.OpenCampaignActions(ctx, org, campaign)
	if err != nil || open == 0 {
		return err
	}
	c := &Completion{Open: open, PerMinute: float64(recent) / estimateWindow.Minutes()}
	var latest *time.Time
	if err := q.q.queryRow(ctx, `SELECT max(a.send_at) FROM campaign_recipients r JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND a.status IN ('scheduled','pending_approval')`, campaign, org).Scan(&latest); err != nil {
		return fmt.Errorf("campaign latest send: %w", err)
	}
	c.LatestSendAt = latest
	if c.PerMinute > 0 {
		at := now.Add(time.Duration(float64(open) / c.PerMinute * float64(time.Minute))).UTC().Truncate(time.Second)
		c.At = &at
	}
	if latest != nil && latest.After(now) && (c.At == nil || latest.After(*c.At)) {
		at := latest.UTC()
		c.At = &at
	}
	res.Completion = c
	return nil
}

// CampaignResults counts a campaign's recipients and actions.
func (q *queries) CampaignResults(ctx context.Context, org, campaign string) (CampaignResults, error) {
	res := CampaignResults{ByRecipient: map[string]int{}, ByStatus: map[string]int{}, ByReason: map[string]int{}}
	rs, err := q.q.query(ctx, `SELECT r.status, COALESCE(a.status, ''), CASE WHEN r.status = 'submitted' THEN COALESCE(a.error_code, '') ELSE r.reason END, count(*)
		FROM campaign_recipients r LEFT JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 GROUP BY 1, 2, 3`, campaign, org)
	if err != nil {
		return res, fmt.Errorf("campaign results: %w", err)
	}
	for rs.Next() {
		var (
			rst, ast, reason string
			n                int
		)
		if err := rs.Scan(&rst, &ast, &reason, &n); err != nil {
			rs.Close()
			return res, fmt.Errorf("campaign results: %w", err)
		}
		res.Recipients += n
		res.ByRecipient[rst] += n
		if ast != "" {
			res.ByStatus[ast] += n
		}
		if reason != "" && ast != string(herald.StatusDelivered) {
			res.ByReason[reason] += n
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return res, err
	}
	// Denied actions carry the rule ids in their decision; count by rule.
	rs, err = q.q.query(ctx, `SELECT a.decision FROM campaign_recipients r JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 AND a.status = 'denied'`, campaign, org)
	if err != nil {
		return res, fmt.Errorf("campaign denials: %w", err)
	}
	for rs.Next() {
		var d *string
		if err := rs.Scan(&d); err != nil {
			rs.Close()
			return res, err
		}
		if d != nil {
			for _, rule := range denyRules([]byte(*d)) {
				res.ByReason[rule]++
			}
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return res, err
	}
	err = q.q.queryRow(ctx, `SELECT count(*) FROM campaign_recipients r JOIN contacts c ON c.id = r.contact_id
		JOIN campaigns g ON g.id = r.campaign_id WHERE r.campaign_id = $1 AND r.org_id = $2 AND c.opted_out_at >= g.created_at`,
		campaign, org).Scan(&res.OptedOutDuring)
	if err != nil {
		return res, err
	}
	return res, q.deliveryProgress(ctx, org, campaign, &res)
}

// denyRules returns the rule ids of a decision's deny reasons.
func denyRules(decision []byte) []string {
	var d struct {
		Reasons []struct {
			Rule     string `json:"rule"`
			Severity string `json:"severity"`
		} `json:"reasons"`
	}
	if json.Unmarshal(decision, &d) != nil {
		return nil
	}
	var out []string
	for _, r := range d.Reasons {
		if r.Severity == "deny" {
			out = append(out, r.Rule)
		}
	}
	return out
}

// CampaignRecipients streams a campaign's recipients with their action
// status, in fan-out order, calling fn for each.
func (q *queries) CampaignRecipients(ctx context.Context, org, campaign string, fn func(Recipient) error) error {
	rs, err := q.q.query(ctx, `SELECT r.campaign_id, r.contact_id, r.seq, r.account_id, r.send_at, r.status, r.action_id, r.reason, COALESCE(a.status, '')
		FROM campaign_recipients r LEFT JOIN actions a ON a.id = r.action_id
		WHERE r.campaign_id = $1 AND r.org_id = $2 ORDER BY r.seq`, campaign, org)
	if err != nil {
		return fmt.Errorf("campaign recipients: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var ast string
		r, err := scanRecipient(rs, &ast)
		if err != nil {
			return fmt.Errorf("campaign recipients: %w", err)
		}
		r.ActionStatus = ast
		if err := fn(r); err != nil {
			return err
		}
	}
	return rs.Err()
}

// Campaign approval statuses.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// CampaignApproval is a campaign's request for approval: the stages it
// waits in (the policy's, as for an action), the dry run the approvers
// decide on, their votes, and once approved the ledger entry every
// recipient's action refers to.
type CampaignApproval struct {
	Campaign    string          `json:"campaign"`
	Org         string          `json:"-"`
	Status      string          `json:"status"`
	RequestedBy string          `json:"requested_by"`
	RequestedAt time.Time       `json:"requested_at"`
	Reasons     []string        `json:"reasons"`
	Stages      []ApprovalStage `json:"stages"`
	Prediction  json.RawMessage `json:"prediction"`
	DecidedAt   *time.Time      `json:"decided_at,omitempty"`
	// LedgerSeq is the seq of the campaign.approved entry.
	LedgerSeq int64  `json:"ledger_seq,omitempty"`
	Votes     []Vote `json:"votes"`
}

const campaignApprovalColumns = `campaign_id, org_id, status, requested_by, requested_at, reasons, stages, prediction, decided_at, ledger_seq`

func scanCampaignApproval(r row) (CampaignApproval, error) {
	var (
		a                        CampaignApproval
		reasons, stages, predict string
		seq                      *int64
	)
	if err := r.Scan(&a.Campaign, &a.Org, &a.Status, &a.RequestedBy, &a.RequestedAt, &reasons, &stages, &predict, &a.DecidedAt, &seq); err != nil {
		return a, err
	}
	if seq != nil {
		a.LedgerSeq = *seq
	}
	a.Prediction = json.RawMessage(predict)
	if err := json.Unmarshal([]byte(reasons), &a.Reasons); err != nil {
		return a, fmt.Errorf("decode approval reasons of campaign %s: %w", a.Campaign, err)
	}
	if err := json.Unmarshal([]byte(stages), &a.Stages); err != nil {
		return a, fmt.Errorf("decode approval stages of campaign %s: %w", a.Campaign, err)
	}
	return a, nil
}

// RequestCampaignApproval opens (or, after an expiry, reopens) a
// campaign's approval request; earlier votes are discarded.
func (t *Tx) RequestCampaignApproval(ctx context.Context, a CampaignApproval) (CampaignApproval, error) {
	a.Status, a.RequestedAt, a.DecidedAt, a.LedgerSeq, a.Votes = ApprovalPending, t.now(), nil, 0, []Vote{}
	if a.Reasons == nil {
		a.Reasons = []string{}
	}
	reasons, _ := json.Marshal(a.Reasons)
	stages, _ := json.Marshal(a.Stages)
	if len(a.Prediction) == 0 {
		a.Prediction = json.RawMessage("{}")
	}
	if _, err := t.q.exec(ctx, `DELETE FROM campaign_approval_votes WHERE campaign_id = $1`, a.Campaign); err != nil {
		return a, fmt.Errorf("reset campaign votes: %w", err)
	}
	if _, err := t.q.exec(ctx, `INSERT INTO campaign_approvals (`+campaignApprovalColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)
		ON CONFLICT (campaign_id) DO UPDATE SET status = excluded.status, requested_by = excluded.requested_by, requested_at = excluded.requested_at,
		reasons = excluded.reasons, stages = excluded.stages, prediction = excluded.prediction, decided_at = NULL, ledger_seq = NULL`,
		a.Campaign, a.Org, a.Status, a.RequestedBy, a.RequestedAt, string(reasons), string(stages), string(a.Prediction)); err != nil {
		return a, fmt.Errorf("request campaign approval: %w", err)
	}
	return a, nil
}

// CampaignApprovalOf returns a campaign's approval request with its votes,
// or nil when it never needed one.
func (q *queries) CampaignApprovalOf(ctx context.Context, org, campaign string) (*CampaignApproval, error) {
	a, err := scanCampaignApproval(q.q.queryRow(ctx, `SELECT `+campaignApprovalColumns+` FROM campaign_approvals WHERE org_id = $1 AND campaign_id = $2`, org, campaign))
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("campaign approval: %w", err)
	}
	if a.Votes, err = q.campaignVotes(ctx, org, campaign); err != nil {
		return nil, err
	}
	return &a, nil
}

func (q *queries) campaignVotes(ctx context.Context, org, campaign string) ([]Vote, error) {
	rs, err := q.q.query(ctx, `SELECT stage, principal, vote, at FROM campaign_approval_votes WHERE org_id = $1 AND campaign_id = $2 ORDER BY at, principal`, org, campaign)
	if err != nil {
		return nil, fmt.Errorf("campaign votes: %w", err)
	}
	defer rs.Close()
	out := []Vote{}
	for rs.Next() {
		var v Vote
		if err := rs.Scan(&v.Stage, &v.Principal, &v.Vote, &v.At); err != nil {
			return nil, fmt.Errorf("campaign votes: %w", err)
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// LockCampaignApproval reads a campaign's approval request under the
// campaign's row lock, so two votes on it are serialised.
func (t *Tx) LockCampaignApproval(ctx context.Context, org, campaign string) (campaigns.Campaign, *CampaignApproval, error) {
	c, err := t.lockCampaign(ctx, org, campaign)
	if err != nil {
		return c, nil, err
	}
	a, err := t.CampaignApprovalOf(ctx, org, campaign)
	return c, a, err
}

// CastCampaignVote records principal's vote; a person votes once per campaign.
func (t *Tx) CastCampaignVote(ctx context.Context, org, campaign string, stage int, principal, vote string) error {
	_, err := t.q.exec(ctx, `INSERT INTO campaign_approval_votes (campaign_id, org_id, stage, principal, vote, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		campaign, org, stage, principal, vote, t.now())
	if err != nil {
		if t.d.isUnique(err) {
			return herald.Errorf(herald.CodeConflict, "%s has already voted on this campaign; one person counts once", principal)
		}
		return fmt.Errorf("cast campaign vote: %w", err)
	}
	return nil
}

// DecideCampaignApproval closes a pending request: approved (with the
// ledger entry's seq), rejected or expired.
func (t *Tx) DecideCampaignApproval(ctx context.Context, org, campaign, status string, seq uint64) error {
	var s any
	if seq > 0 {
		s = int64(seq)
	}
	res, err := t.q.exec(ctx, `UPDATE campaign_approvals SET status = $3, decided_at = $4, ledger_seq = $5
		WHERE org_id = $1 AND campaign_id = $2 AND status = 'pending'`, org, campaign, status, t.now(), s)
	if err != nil {
		return fmt.Errorf("decide campaign approval: %w", err)
	}
	if res == 0 {
		return herald.Errorf(herald.CodeIllegalTransition, "the campaign's approval is no longer pending")
	}
	return nil
}

// PendingCampaignApprovals lists org's campaign approval requests still
// waiting (all organisations when org is empty), oldest first.
func (q *queries) PendingCampaignApprovals(ctx context.Context, org string, limit int) ([]CampaignApproval, error) {
	rs, err := q.q.query(ctx, `SELECT `+campaignApprovalColumns+` FROM campaign_approvals WHERE status = 'pending' AND ($1 = '' OR org_id = $1)
		ORDER BY requested_at LIMIT $2`, org, limit)
	if err != nil {
		return nil, fmt.Errorf("pending campaign approvals: %w", err)
	}
	var out []CampaignApproval
	for rs.Next() {
		a, err := scanCampaignApproval(rs)
		if err != nil {
			rs.Close()
			return nil, fmt.Errorf("pending campaign approvals: %w", err)
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		rs.Close()
		return nil, err
	}
	rs.Close()
	for i := range out {
		if out[i].Votes, err = q.campaignVotes(ctx, out[i].Org, out[i].Campaign); err != nil {
			return nil, err
		}
	}
	return out, nil
}
