package store

import (
	"context"
	"fmt"

	"github.com/heraldhq/herald"
)

// Retention profiles.
//
// A profile is a named, complete retention configuration that reproduces a
// promise real Telegram services make in their privacy policies. Applying
// one replaces the organisation's configuration in one transaction and
// records a retention.changed entry naming the profile, so the ledger shows
// which promise was in force when. Invariants:
//   - A profile MUST be a valid RetentionConfig (floors and ceilings hold).
//   - Setting the configuration field by field (SetRetention) MUST clear
//     the profile name: a hand-tuned configuration no longer keeps the
//     profile's promise.
//   - Under MinimalFields, an import or update that carries a username,
//     language or timezone MUST be refused whole (validation_failed), never
//     silently trimmed, and applying the profile clears those fields of the
//     organisation's existing contacts.

// RetentionProfile is one named configuration and the promise it keeps.
type RetentionProfile struct {
	Name string `json:"name"`
	// Promise is the privacy-policy sentence the profile reproduces.
	Promise string `json:"promise"`
	// Keeps says precisely what Herald does under the profile; Limits what
	// it cannot promise (docs/audit.md §7.3).
	Keeps         string          `json:"keeps"`
	Limits        string          `json:"limits"`
	Settings      RetentionConfig `json:"settings"`
	MinimalFields bool            `json:"minimal_fields"`
}

// RetentionProfiles are the shipped profiles, in a stable order.
var RetentionProfiles = []RetentionProfile{
	{Name: "no_content", Promise: "No message content is stored.",
		Keeps:    "the content of a delivered message and the ledger payloads of its entries are deleted at the first retention run after delivery; previews of messages that end otherwise (denied, failed, cancelled, expired) go after 1 day; only hashes and counts remain",
		Limits:   "content is held until delivery (it must be sent) and until the next retention run (hourly by default); scheduled messages keep their text until they are sent",
		Settings: RetentionConfig{LedgerEntriesDays: 365, DecisionInputsDays: 90, PayloadsDays: 1, ReceiptsDays: 365, DropContentAfterDelivery: true}},
	{Name: "flagged_90d", Promise: "Flagged content is deleted after 90 days.",
		Keeps:    "previews of denied (flagged) and other finished messages, ledger payloads and stored decision inputs are deleted 90 days after the action finished or the decision was taken",
		Limits:   "Herald deletes by age for every finished message, not only flagged ones; the ledger entry recording the denial (hashes, counts, rule ids) is kept for the ledger period (365 days)",
		Settings: RetentionConfig{LedgerEntriesDays: 365, DecisionInputsDays: 90, PayloadsDays: 90, ReceiptsDays: 365}},
	{Name: "stats_12m", Promise: "Statistics are deleted within 12 months after the bot leaves a group.",
		Keeps:    "ledger entries (the counts statistics are built from) are pruned 365 days after they were written, behind a signed checkpoint; receipts (message id, chat id) go after 365 days",
		Limits:   "Herald does not learn when a bot leaves a group, so it counts 12 months from each entry, which is never later than 12 months after leaving; pruning needs a signed checkpoint older than the cut-off (Herald signs checkpoints every 10 s by default while entries arrive)",
		Settings: RetentionConfig{LedgerEntriesDays: 365, DecisionInputsDays: 90, PayloadsDays: 30, ReceiptsDays: 365}},
	{Name: "ip_90d", Promise: "IP addresses are anonymised after 90 days.",
		Keeps:    "Herald stores no client IP address at all: not in sessions, keys, the ledger or any table; the rate limiter holds the peer address in memory only, and request logs do not carry it",
		Limits:   "a reverse proxy or load balancer in front of Herald keeps its own access logs: their retention is the operator's (docs/operations.md)",
		Settings: RetentionConfig{LedgerEntriesDays: 365, DecisionInputsDays: 90, PayloadsDays: 30, ReceiptsDays: 365}},
	{Name: "minimal_fields", Promise: "We store only the minimal fields needed to reach you.",
		Keeps:    "contacts hold a chat id and consent only: a username, language or timezone is refused on import and update, and applying the profile clears them from existing contacts",
		Limits:   "without a timezone, quiet hours use the organisation's timezone; a contact can no longer be addressed by @username",
		Settings: RetentionConfig{LedgerEntriesDays: 365, DecisionInputsDays: 90, PayloadsDays: 30, ReceiptsDays: 365}, MinimalFields: true},
}

// RetentionProfileByName returns the named profile.
func RetentionProfileByName(name string) (RetentionProfile, bool) {
	for _, p := range RetentionProfiles {
		if p.Name == name {
			return p, true
		}
	}
	return RetentionProfile{}, false
}

// ApplyRetentionProfile replaces org's configuration with the named
// profile, clears the optional contact fields under MinimalFields, and
// records a retention.changed entry with the profile, the settings and how
// many contacts were minimised, in this transaction.
func (t *Tx) ApplyRetentionProfile(ctx context.Context, org, name, actor string) (RetentionSetting, error) {
	p, ok := RetentionProfileByName(name)
	if !ok {
		return RetentionSetting{}, herald.Invalid(herald.FieldError{Field: "profile", Message: fmt.Sprintf("unknown retention profile %q", name)})
	}
	c := p.Settings
	if err := c.Validate(); err != nil {
		return RetentionSetting{}, fmt.Errorf("retention profile %s: %w", name, err)
	}
	if _, err := t.q.exec(ctx, `INSERT INTO org_retention (org_id, ledger_entries_days, decision_inputs_days, payloads_days,
		receipts_days, drop_content_after_delivery, updated_at, updated_by, profile, minimal_fields)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (org_id) DO UPDATE SET ledger_entries_days = excluded.ledger_entries_days,
		decision_inputs_days = excluded.decision_inputs_days, payloads_days = excluded.payloads_days,
		receipts_days = excluded.receipts_days, drop_content_after_delivery = excluded.drop_content_after_delivery,
		updated_at = excluded.updated_at, updated_by = excluded.updated_by, profile = excluded.profile,
		minimal_fields = excluded.minimal_fields`,
		org, c.LedgerEntriesDays, c.DecisionInputsDays, c.PayloadsDays, c.ReceiptsDays, c.DropContentAfterDelivery,
		t.now(), actor, p.Name, p.MinimalFields); err != nil {
		return RetentionSetting{}, fmt.Errorf("apply retention profile %s to org %s: %w", name, org, err)
	}
	var minimised int64
	if p.MinimalFields {
		var err error
		if minimised, err = t.q.exec(ctx, `UPDATE contacts SET username = '', language = '', timezone = '', updated_at = $2
			WHERE org_id = $1 AND (username <> '' OR language <> '' OR timezone <> '')`, org, t.now()); err != nil {
			return RetentionSetting{}, fmt.Errorf("apply retention profile %s to org %s: minimise contacts: %w", name, org, err)
		}
	}
	attrs := map[string]any{"profile": p.Name, "drop_content_after_delivery": c.DropContentAfterDelivery,
		"minimal_fields": p.MinimalFields, "contacts_minimised": minimised}
	for k, v := range c.days() {
		attrs[k] = v
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: KindRetentionChanged, Actor: actor, Attrs: attrs}); err != nil {
		return RetentionSetting{}, err
	}
	return t.Retention(ctx, org)
}

// minimalFieldErrors names the optional contact fields that are set.
func minimalFieldErrors(username, language, timezone string) []herald.FieldError {
	var fe []herald.FieldError
	for _, f := range [][2]string{{"username", username}, {"language", language}, {"timezone", timezone}} {
		if f[1] != "" {
			fe = append(fe, herald.FieldError{Field: f[0], Message: "is not stored under the minimal_fields retention profile"})
		}
	}
	return fe
}

// checkMinimalRows refuses contact fields org's retention profile does not
// allow: under MinimalFields, any row carrying a username, language or
// timezone refuses the whole import. The configuration is read only when a
// row carries one, so imports without them cost nothing extra.
func (q *queries) checkMinimalRows(ctx context.Context, org string, rows []herald.ContactImportRow) error {
	var fe []herald.FieldError
	for _, r := range rows {
		fe = append(fe, minimalFieldErrors(r.Username, r.Language, r.Timezone)...)
		if len(fe) > 0 {
			break
		}
	}
	return q.refuseUnlessAllowed(ctx, org, fe)
}

// checkMinimalPatch is checkMinimalRows for a contact update; clearing a
// field (setting it to "") is always allowed.
func (q *queries) checkMinimalPatch(ctx context.Context, org string, p ContactPatch) error {
	var tz, lang string
	if p.Timezone != nil {
		tz = *p.Timezone
	}
	if p.Language != nil {
		lang = *p.Language
	}
	return q.refuseUnlessAllowed(ctx, org, minimalFieldErrors("", lang, tz))
}

func (q *queries) refuseUnlessAllowed(ctx context.Context, org string, fe []herald.FieldError) error {
	if len(fe) == 0 {
		return nil
	}
	set, err := q.Retention(ctx, org)
	if err != nil {
		return err
	}
	if !set.MinimalFields {
		return nil
	}
	return herald.Invalid(fe...)
}
