package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// Per-organisation retention configuration.
//
// Each organisation may shorten (or, within a ceiling, lengthen) how long
// Herald keeps what it holds. Floors keep what an audit or a complaint needs
// (a ledger that can be pruned after a day proves nothing); ceilings keep
// personal data short-lived. A configuration outside them MUST be refused,
// never clamped. Every change is a retention.changed ledger entry carrying
// the new values; RetentionJob applies the configuration on its next run.

// RetentionConfig is one organisation's retention configuration, in days.
type RetentionConfig struct {
	// LedgerEntriesDays: ledger entries older than this are pruned behind
	// the latest signed checkpoint before the cut-off (docs/audit.md §6).
	LedgerEntriesDays int `json:"ledger_entries_days"`
	// DecisionInputsDays: stored policy decision inputs (for replay and
	// impact previews; they hold consent facts).
	DecisionInputsDays int `json:"decision_inputs_days"`
	// PayloadsDays: ledger payloads and the content (message preview) of
	// finished actions.
	PayloadsDays int `json:"payloads_days"`
	// ReceiptsDays: Telegram receipts (message id, chat id) of finished
	// actions; the action keeps its status and audit facts.
	ReceiptsDays int `json:"receipts_days"`
	// DropContentAfterDelivery: content of delivered actions, and the
	// ledger payloads of their entries, are deleted at the next run after
	// delivery ("no message content stored"); only hashes and counts remain.
	DropContentAfterDelivery bool `json:"drop_content_after_delivery"`
}

// RetentionLimit is the documented range of one setting.
type RetentionLimit struct {
	Field             string
	Min, Max, Default int
}

// RetentionLimits are the floors, ceilings and defaults, in days.
var RetentionLimits = []RetentionLimit{
	{"ledger_entries_days", 90, 3650, 365},
	{"decision_inputs_days", 1, 365, 90},
	{"payloads_days", 1, 365, 30},
	{"receipts_days", 7, 3650, 365},
}

// DefaultRetention is the configuration of an organisation that set none.
func DefaultRetention() RetentionConfig {
	return RetentionConfig{
		LedgerEntriesDays:  int(DefaultEntryRetention / (24 * time.Hour)),
		DecisionInputsDays: int(DefaultDecisionRetention / (24 * time.Hour)),
		PayloadsDays:       int(DefaultPayloadRetention / (24 * time.Hour)),
		ReceiptsDays:       365,
	}
}

func (c RetentionConfig) days() map[string]int {
	return map[string]int{"ledger_entries_days": c.LedgerEntriesDays, "decision_inputs_days": c.DecisionInputsDays,
		"payloads_days": c.PayloadsDays, "receipts_days": c.ReceiptsDays}
}

// Validate returns a validation_failed error naming every setting outside
// its floor and ceiling.
func (c RetentionConfig) Validate() error {
	var fe []herald.FieldError
	d := c.days()
	for _, l := range RetentionLimits {
		if v := d[l.Field]; v < l.Min || v > l.Max {
			fe = append(fe, herald.FieldError{Field: l.Field, Message: fmt.Sprintf("must be between %d and %d days (got %d)", l.Min, l.Max, v)})
		}
	}
	if len(fe) > 0 {
		return herald.Invalid(fe...)
	}
	return nil
}

// RetentionSetting is an organisation's configuration and who set it
// (UpdatedBy empty: the defaults).
type RetentionSetting struct {
	RetentionConfig
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	// Profile is the retention profile last applied (RetentionProfiles);
	// empty when the configuration was set field by field.
	Profile string `json:"profile,omitempty"`
	// MinimalFields: contacts hold no username, language or timezone
	// (refused on import and update; see retention_profiles.go).
	MinimalFields bool `json:"minimal_fields"`
}

// Retention returns org's retention configuration (the defaults when it
// set none).
func (q *queries) Retention(ctx context.Context, org string) (RetentionSetting, error) {
	var s RetentionSetting
	var at time.Time
	err := q.q.queryRow(ctx, `SELECT ledger_entries_days, decision_inputs_days, payloads_days, receipts_days,
		drop_content_after_delivery, updated_at, updated_by, profile, minimal_fields FROM org_retention WHERE org_id = $1`, org).Scan(
		&s.LedgerEntriesDays, &s.DecisionInputsDays, &s.PayloadsDays, &s.ReceiptsDays, &s.DropContentAfterDelivery, &at, &s.UpdatedBy,
		&s.Profile, &s.MinimalFields)
	if errors.Is(err, errNoRows) {
		return RetentionSetting{RetentionConfig: DefaultRetention()}, nil
	}
	if err != nil {
		return s, fmt.Errorf("read retention of org %s: %w", org, err)
	}
	s.UpdatedAt = &at
	return s, nil
}

// KindRetentionChanged and KindRetentionRan are the retention ledger kinds.
const (
	KindRetentionChanged = "retention.changed"
	KindRetentionRan     = "retention.ran"
)

// SetRetention validates and stores org's configuration and records a
// retention.changed entry with the new values, in this transaction.
func (t *Tx) SetRetention(ctx context.Context, org string, c RetentionConfig, actor string) (RetentionSetting, error) {
	if err := c.Validate(); err != nil {
		return RetentionSetting{}, err
	}
	now := t.now()
	if _, err := t.q.exec(ctx, `INSERT INTO org_retention (org_id, ledger_entries_days, decision_inputs_days, payloads_days,
		receipts_days, drop_content_after_delivery, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (org_id) DO UPDATE SET ledger_entries_days = excluded.ledger_entries_days,
		decision_inputs_days = excluded.decision_inputs_days, payloads_days = excluded.payloads_days,
		receipts_days = excluded.receipts_days, drop_content_after_delivery = excluded.drop_content_after_delivery,
		updated_at = excluded.updated_at, updated_by = excluded.updated_by, profile = ''`,
		org, c.LedgerEntriesDays, c.DecisionInputsDays, c.PayloadsDays, c.ReceiptsDays, c.DropContentAfterDelivery, now, actor); err != nil {
		return RetentionSetting{}, fmt.Errorf("store retention of org %s: %w", org, err)
	}
	attrs := map[string]any{"drop_content_after_delivery": c.DropContentAfterDelivery}
	for k, v := range c.days() {
		attrs[k] = v
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: KindRetentionChanged, Actor: actor, Attrs: attrs}); err != nil {
		return RetentionSetting{}, err
	}
	return t.Retention(ctx, org)
}
