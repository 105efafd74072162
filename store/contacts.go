package store

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

const contactColumns = `id, org_id, chat_id, timezone, language, opted_out_at, opt_out_source, last_inbound_at, created_at, updated_at, username, restricted_at, objected_at`

func scanContact(r row) (herald.Contact, error) {
	var c herald.Contact
	err := r.Scan(&c.ID, &c.Org, &c.ChatID, &c.Timezone, &c.Language, &c.OptedOutAt, &c.OptOutSource, &c.LastInboundAt, &c.CreatedAt, &c.UpdatedAt, &c.Username, &c.RestrictedAt, &c.ObjectedAt)
	return c, err
}

func (q *queries) loadConsents(ctx context.Context, c *herald.Contact) error {
	rs, err := q.q.query(ctx, `SELECT purpose, basis, source, granted_at FROM consents WHERE contact_id = $1 ORDER BY purpose`, c.ID)
	if err != nil {
		return fmt.Errorf("load consents: %w", err)
	}
	defer rs.Close()
	c.Consents = []herald.Consent{}
	for rs.Next() {
		var k herald.Consent
		if err := rs.Scan(&k.Purpose, &k.Basis, &k.Source, &k.At); err != nil {
			return fmt.Errorf("load consents: %w", err)
		}
		c.Consents = append(c.Consents, k)
	}
	return rs.Err()
}

// GetContact returns one of org's contacts with its consents.
func (q *queries) GetContact(ctx context.Context, org, id string) (herald.Contact, error) {
	c, err := scanContact(q.q.queryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE org_id = $1 AND id = $2`, org, id))
	if err != nil {
		return c, scanNotFound(err, "contact")
	}
	return c, q.loadConsents(ctx, &c)
}

// ContactByChat returns org's contact for a Telegram chat id.
func (q *queries) ContactByChat(ctx context.Context, org, chatID string) (herald.Contact, error) {
	c, err := scanContact(q.q.queryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE org_id = $1 AND chat_id = $2`, org, chatID))
	if err != nil {
		return c, scanNotFound(err, "contact")
	}
	return c, q.loadConsents(ctx, &c)
}

// ContactByUsername returns org's contact with the public user name
// username (with or without "@", any case).
func (q *queries) ContactByUsername(ctx context.Context, org, username string) (herald.Contact, error) {
	c, err := scanContact(q.q.queryRow(ctx, `SELECT `+contactColumns+` FROM contacts WHERE org_id = $1 AND username = $2 AND username <> ''`,
		org, herald.NormalizeUsername(username)))
	if err != nil {
		return c, scanNotFound(err, "contact")
	}
	return c, q.loadConsents(ctx, &c)
}

// ImportResult says what an import did.
type ImportResult struct {
	Rows     int      `json:"rows"`
	Created  int      `json:"created"`
	Updated  int      `json:"updated"`
	Contacts []string `json:"contacts"` // ids, in row order (repeated for repeated chats)
}

// ImportContacts upserts contacts and their per-purpose consent. The caller
// validates rows first; this runs in the caller's transaction so an import is
// all or nothing. Importing never clears an opt-out: a person who opted out
// is re-opted-in only by their own action.
func (t *Tx) ImportContacts(ctx context.Context, org string, rows []herald.ContactImportRow) (ImportResult, error) {
	res := ImportResult{Rows: len(rows), Contacts: make([]string, 0, len(rows))}
	if err := t.checkMinimalRows(ctx, org, rows); err != nil { // retention profile minimal_fields (w14b)
		return res, err
	}
	now := t.now()
	seen := map[string]string{}
	for i, r := range rows {
		id, ok := seen[r.ChatID]
		if !ok {
			c, err := t.ContactByChat(ctx, org, r.ChatID)
			switch {
			case err == nil:
				id = c.ID
				res.Updated++
				if _, err := t.q.exec(ctx, `UPDATE contacts SET
					timezone = CASE WHEN $3 = '' THEN timezone ELSE $3 END,
					language = CASE WHEN $4 = '' THEN language ELSE $4 END,
					username = CASE WHEN $6 = '' THEN username ELSE $6 END,
					updated_at = $5 WHERE org_id = $1 AND id = $2`, org, id, r.Timezone, r.Language, now, herald.NormalizeUsername(r.Username)); err != nil {
					return res, fmt.Errorf("import row %d: %w", i+1, err)
				}
			case herald.IsNotFound(err):
				id = NewID()
				res.Created++
				if _, err := t.q.exec(ctx, `INSERT INTO contacts (id, org_id, chat_id, timezone, language, created_at, updated_at, username)
					VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, id, org, r.ChatID, r.Timezone, r.Language, now, herald.NormalizeUsername(r.Username)); err != nil {
					return res, fmt.Errorf("import row %d: %w", i+1, err)
				}
			default:
				return res, fmt.Errorf("import row %d: %w", i+1, err)
			}
			seen[r.ChatID] = id
		}
		at := now
		if r.ConsentedAt != nil {
			at = r.ConsentedAt.UTC().Truncate(time.Microsecond)
		}
		if err := t.putConsent(ctx, id, herald.Consent{Purpose: r.Purpose, Basis: r.LegalBasis, Source: r.Source, At: at}); err != nil {
			return res, fmt.Errorf("import row %d: %w", i+1, err)
		}
		if err := t.importLabels(ctx, org, id, r); err != nil { // campaigns (w13): tags and attributes columns
			return res, fmt.Errorf("import row %d: %w", i+1, err)
		}
		res.Contacts = append(res.Contacts, id)
	}
	return res, nil
}

func (q *queries) putConsent(ctx context.Context, contactID string, c herald.Consent) error {
	_, err := q.q.exec(ctx, `INSERT INTO consents (contact_id, purpose, basis, source, granted_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (contact_id, purpose) DO UPDATE SET basis = excluded.basis, source = excluded.source, granted_at = excluded.granted_at`,
		contactID, c.Purpose, c.Basis, c.Source, c.At)
	if err != nil {
		return fmt.Errorf("store consent: %w", err)
	}
	return nil
}

// ContactPatch lists what an update may change; nil leaves a field as it is.
type ContactPatch struct {
	Timezone *string
	Language *string
	// Consents replace the consent of their purpose.
	Consents []herald.Consent
	// RevokePurposes removes the consent of these purposes.
	RevokePurposes []string
}

// UpdateContact applies p to one of org's contacts.
func (q *queries) UpdateContact(ctx context.Context, org, id string, p ContactPatch) (herald.Contact, error) {
	c, err := q.GetContact(ctx, org, id)
	if err != nil {
		return c, err
	}
	if err := q.checkMinimalPatch(ctx, org, p); err != nil { // retention profile minimal_fields (w14b)
		return c, err
	}
	if p.Timezone != nil {
		c.Timezone = *p.Timezone
	}
	if p.Language != nil {
		c.Language = *p.Language
	}
	c.UpdatedAt = q.now()
	if _, err := q.q.exec(ctx, `UPDATE contacts SET timezone = $3, language = $4, updated_at = $5 WHERE org_id = $1 AND id = $2`,
		org, id, c.Timezone, c.Language, c.UpdatedAt); err != nil {
		return c, fmt.Errorf("update contact: %w", err)
	}
	for _, k := range p.Consents {
		if err := q.putConsent(ctx, id, k); err != nil {
			return c, err
		}
	}
	for _, purpose := range p.RevokePurposes {
		if _, err := q.q.exec(ctx, `DELETE FROM consents WHERE contact_id = $1 AND purpose = $2`, id, purpose); err != nil {
			return c, fmt.Errorf("revoke consent: %w", err)
		}
	}
	return c, q.loadConsents(ctx, &c)
}

// OptOut marks one of org's contacts as opted out (from every purpose) with
// its source. Opting out again keeps the first time and source.
func (q *queries) OptOut(ctx context.Context, org, id, source string) (herald.Contact, error) {
	now := q.now()
	_, err := q.q.exec(ctx, `UPDATE contacts SET opted_out_at = $3, opt_out_source = $4, updated_at = $3
		WHERE org_id = $1 AND id = $2 AND opted_out_at IS NULL`, org, id, now, source)
	if err != nil {
		return herald.Contact{}, fmt.Errorf("opt out: %w", err)
	}
	return q.GetContact(ctx, org, id)
}

// DeleteContact removes one of org's contacts for erasure (GDPR Art. 17):
// the contact row and its consents are deleted, and the actions that
// targeted it keep their audit facts (kind, purpose, status, decision) but
// lose their content and chat id. Call EraseContact in the same transaction
// first, so its ledger payloads go too.
func (t *Tx) DeleteContact(ctx context.Context, org, id string) error {
	if _, err := t.GetContact(ctx, org, id); err != nil {
		return err
	}
	if _, err := t.q.exec(ctx, `UPDATE actions SET content = '{}', target = 'erased', recipient = 'erased', updated_at = $3
		WHERE org_id = $1 AND contact_id = $2`, org, id, t.now()); err != nil {
		return fmt.Errorf("erase contact's actions: %w", err)
	}
	if _, err := t.q.exec(ctx, `DELETE FROM jobs WHERE action_id IN (SELECT id FROM actions WHERE org_id = $1 AND contact_id = $2)`, org, id); err != nil {
		return fmt.Errorf("erase contact's queued sends: %w", err)
	}
	if _, err := t.q.exec(ctx, `DELETE FROM consents WHERE contact_id = $1`, id); err != nil {
		return fmt.Errorf("erase consents: %w", err)
	}
	if _, err := t.q.exec(ctx, `DELETE FROM contacts WHERE org_id = $1 AND id = $2`, org, id); err != nil {
		return fmt.Errorf("erase contact: %w", err)
	}
	return nil
}
