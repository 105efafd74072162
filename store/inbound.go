package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// SetWebhookSecret stores the hash of a new webhook secret for an account
// and returns the secret, which is shown once.
func (q *queries) SetWebhookSecret(ctx context.Context, org, account string) (string, error) {
	secret := randomToken(40)
	n, err := q.q.exec(ctx, `UPDATE accounts SET webhook_secret_hash = $3, updated_at = $4 WHERE org_id = $1 AND id = $2`,
		org, account, hashSecret(secret), q.now())
	if err != nil {
		return "", fmt.Errorf("set webhook secret: %w", err)
	}
	if n == 0 {
		return "", notFound("account")
	}
	return secret, nil
}

// AccountByWebhook returns the account a webhook call is for, if secret
// matches its webhook secret. Unknown account and wrong secret give the
// same not-found error, so neither can be probed.
func (q *queries) AccountByWebhook(ctx context.Context, account, secret string) (herald.Account, error) {
	var hash string
	a, err := scanAccount(q.q.queryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, account))
	if err != nil {
		return a, scanNotFound(err, "webhook")
	}
	if err := q.q.queryRow(ctx, `SELECT webhook_secret_hash FROM accounts WHERE id = $1`, account).Scan(&hash); err != nil {
		return a, fmt.Errorf("read webhook secret: %w", err)
	}
	want := sha256.Sum256([]byte(secret))
	if hash == "" || subtle.ConstantTimeCompare([]byte(hash), []byte(hex.EncodeToString(want[:]))) != 1 {
		return herald.Account{}, notFound("webhook")
	}
	return a, nil
}

// RecordInbound notes that a chat wrote to the organisation at t, creating
// a contact (with no consent) for a chat seen for the first time: the
// "wrote within 24 h" rule of service messages depends on it.
func (q *queries) RecordInbound(ctx context.Context, org, chatID, language string, t time.Time) (herald.Contact, error) {
	now := q.now()
	_, err := q.q.exec(ctx, `INSERT INTO contacts (id, org_id, chat_id, language, last_inbound_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (org_id, chat_id) DO UPDATE SET last_inbound_at = excluded.last_inbound_at, updated_at = excluded.updated_at`,
		NewID(), org, chatID, language, t.UTC().Truncate(time.Microsecond), now)
	if err != nil {
		return herald.Contact{}, fmt.Errorf("record inbound message: %w", err)
	}
	return q.ContactByChat(ctx, org, chatID)
}

// OptIn clears a contact's opt-out after the person's own request (/start)
// and drops the consents whose basis was consent: those must be given
// again, explicitly. Purposes resting on a contract or a legitimate
// interest resume. It returns the purposes that resume.
func (q *queries) OptIn(ctx context.Context, org, id string) ([]string, error) {
	c, err := q.GetContact(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if c.OptedOutAt == nil {
		return nil, nil
	}
	if _, err := q.q.exec(ctx, `UPDATE contacts SET opted_out_at = NULL, opt_out_source = '', updated_at = $3 WHERE org_id = $1 AND id = $2`,
		org, id, q.now()); err != nil {
		return nil, fmt.Errorf("opt in: %w", err)
	}
	if _, err := q.q.exec(ctx, `DELETE FROM consents WHERE contact_id = $1 AND basis = 'consent'`, id); err != nil {
		return nil, fmt.Errorf("opt in: %w", err)
	}
	resumed := []string{}
	for _, k := range c.Consents {
		if k.Basis != herald.BasisConsent {
			resumed = append(resumed, k.Purpose)
		}
	}
	return resumed, nil
}
