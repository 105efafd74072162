package store

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
)

// Facade deferral modes: what a bot is answered when policy defers a call
// (quiet hours, caps) or holds it for approval.
const (
	// FacadeDeferRetryAfter answers 429 with parameters.retry_after; the
	// action stays scheduled and the bot's retry returns its Message.
	FacadeDeferRetryAfter = "retry_after"
	// FacadeDeferScheduled answers ok with the documented synthetic result.
	FacadeDeferScheduled = "scheduled"
)

// facadeScheme starts every facade token: "hf_<prefix>_<secret>".
const facadeScheme = "hf"

// FacadeToken is a credential a bot uses at /bot<token>/<method> in place of
// its Telegram token. The plaintext is returned once, at creation.
type FacadeToken struct {
	ID        string     `json:"id"`
	Org       string     `json:"org"`
	Account   string     `json:"account"`
	Principal string     `json:"principal"`
	Role      string     `json:"role"`
	Name      string     `json:"name,omitempty"`
	Purpose   string     `json:"purpose"`
	Deferral  string     `json:"deferral"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Caller is the principal the token acts as.
func (t FacadeToken) Caller() herald.Principal {
	return herald.Principal{ID: t.Principal, Org: t.Org, Role: t.Role, KeyID: t.ID}
}

const facadeColumns = `id, org_id, account_id, principal, role, name, purpose, deferral, prefix, created_at, created_by, revoked_at`

func scanFacadeToken(r row) (FacadeToken, error) {
	var t FacadeToken
	err := r.Scan(&t.ID, &t.Org, &t.Account, &t.Principal, &t.Role, &t.Name, &t.Purpose, &t.Deferral, &t.Prefix,
		&t.CreatedAt, &t.CreatedBy, &t.RevokedAt)
	return t, err
}

// CreateFacadeToken validates t, stores it with the hash of a new secret,
// binds its principal to its role (so Casbin decides its calls) and records
// both in the ledger, in one transaction. It returns the plaintext token.
func (s *Store) CreateFacadeToken(ctx context.Context, t FacadeToken) (FacadeToken, string, error) {
	// The principal is bound to the role: the binding's rules apply.
	fe := access.ValidateBinding(t.Principal, t.Role, "*")
	if !herald.ValidPurpose(t.Purpose) {
		fe = append(fe, herald.FieldError{Field: "purpose", Message: "must be one of " + strings.Join(herald.Purposes, ", ")})
	}
	switch t.Deferral {
	case "":
		t.Deferral = FacadeDeferRetryAfter
	case FacadeDeferRetryAfter, FacadeDeferScheduled:
	default:
		fe = append(fe, herald.FieldError{Field: "deferral", Message: `must be "retry_after" or "scheduled"`})
	}
	if len(t.Name) > 200 || !utf8.ValidString(t.Name) || strings.ContainsFunc(t.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		fe = append(fe, herald.FieldError{Field: "name", Message: "must be at most 200 bytes of printable UTF-8"})
	}
	if len(fe) > 0 {
		return FacadeToken{}, "", herald.Invalid(fe...)
	}
	if _, err := s.GetAccount(ctx, t.Org, t.Account); err != nil {
		return FacadeToken{}, "", err
	}
	t.ID, t.Prefix, t.CreatedAt, t.RevokedAt = NewID(), randomToken(keyPrefixLen), s.now(), nil
	secret := randomToken(32)
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `INSERT INTO facade_tokens (`+facadeColumns+`, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12)`,
			t.ID, t.Org, t.Account, t.Principal, t.Role, t.Name, t.Purpose, t.Deferral, t.Prefix,
			t.CreatedAt, t.CreatedBy, hashSecret(secret)); err != nil {
			return fmt.Errorf("create facade token: %w", err)
		}
		if _, err := tx.AppendLedger(ctx, t.Org, LedgerRecord{Kind: ledger.KindKeyCreated, Actor: t.CreatedBy,
			Refs: map[string]string{"account": t.Account},
			Attrs: map[string]any{"type": "facade", "token_id": t.ID, "principal": t.Principal, "role": t.Role,
				"purpose": t.Purpose, "deferral": t.Deferral}}); err != nil {
			return err
		}
		_, err := tx.EnsureRole(ctx, t.Org, t.Principal, t.Role, t.CreatedBy)
		return err
	})
	if err != nil {
		return FacadeToken{}, "", err
	}
	return t, facadeScheme + "_" + t.Prefix + "_" + secret, nil
}

// ListFacadeTokens lists an account's facade tokens, newest first.
func (q *queries) ListFacadeTokens(ctx context.Context, org, account string) ([]FacadeToken, error) {
	rs, err := q.q.query(ctx, `SELECT `+facadeColumns+` FROM facade_tokens WHERE org_id = $1 AND account_id = $2
		ORDER BY created_at DESC, id DESC`, org, account)
	if err != nil {
		return nil, fmt.Errorf("list facade tokens: %w", err)
	}
	defer rs.Close()
	out := []FacadeToken{}
	for rs.Next() {
		t, err := scanFacadeToken(rs)
		if err != nil {
			return nil, fmt.Errorf("list facade tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rs.Err()
}

// RevokeFacadeToken revokes one of an account's tokens; revoking twice is a
// no-op. The revocation is ledgered.
func (s *Store) RevokeFacadeToken(ctx context.Context, org, account, id, actor string) (FacadeToken, error) {
	var t FacadeToken
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		t, err = scanFacadeToken(tx.q.queryRow(ctx, `SELECT `+facadeColumns+` FROM facade_tokens
			WHERE org_id = $1 AND account_id = $2 AND id = $3`, org, account, id))
		if err != nil {
			return scanNotFound(err, "facade token")
		}
		if t.RevokedAt != nil {
			return nil
		}
		now := tx.now()
		if _, err := tx.q.exec(ctx, `UPDATE facade_tokens SET revoked_at = $2 WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("revoke facade token: %w", err)
		}
		t.RevokedAt = &now
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindKeyRevoked, Actor: actor,
			Refs: map[string]string{"account": account}, Attrs: map[string]any{"type": "facade", "token_id": id}})
		return err
	})
	return t, err
}

// AuthenticateFacadeToken resolves a facade token. Unknown, malformed and
// revoked tokens give the same error.
func (q *queries) AuthenticateFacadeToken(ctx context.Context, token string) (FacadeToken, error) {
	unauth := herald.Errorf(herald.CodeUnauthenticated, "invalid or revoked facade token")
	scheme, rest, ok := strings.Cut(token, "_")
	if !ok || scheme != facadeScheme {
		return FacadeToken{}, unauth
	}
	prefix, secret, ok := strings.Cut(rest, "_")
	if !ok || len(prefix) != keyPrefixLen || secret == "" {
		return FacadeToken{}, unauth
	}
	var hash string
	r := q.q.queryRow(ctx, `SELECT `+facadeColumns+`, hash FROM facade_tokens WHERE prefix = $1`, prefix)
	var t FacadeToken
	err := r.Scan(&t.ID, &t.Org, &t.Account, &t.Principal, &t.Role, &t.Name, &t.Purpose, &t.Deferral, &t.Prefix,
		&t.CreatedAt, &t.CreatedBy, &t.RevokedAt, &hash)
	if err != nil {
		if err == errNoRows {
			return FacadeToken{}, unauth
		}
		return FacadeToken{}, fmt.Errorf("authenticate facade token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(hashSecret(secret))) != 1 || t.RevokedAt != nil {
		return FacadeToken{}, unauth
	}
	return t, nil
}

// LatestFacadeCall returns the action of the latest call with this hash
// made with this token, if any.
func (q *queries) LatestFacadeCall(ctx context.Context, tokenID, callHash string) (actionID string, at time.Time, err error) {
	err = q.q.queryRow(ctx, `SELECT action_id, created_at FROM facade_calls WHERE token_id = $1 AND call_hash = $2
		ORDER BY created_at DESC LIMIT 1`, tokenID, callHash).Scan(&actionID, &at)
	if err != nil {
		return "", time.Time{}, scanNotFound(err, "facade call")
	}
	return actionID, at, nil
}

// RecordFacadeCall links a call's hash to the action it created.
func (q *queries) RecordFacadeCall(ctx context.Context, t FacadeToken, callHash, actionID string) error {
	_, err := q.q.exec(ctx, `INSERT INTO facade_calls (token_id, call_hash, org_id, action_id, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, t.ID, callHash, t.Org, actionID, q.now())
	if err != nil {
		return fmt.Errorf("record facade call: %w", err)
	}
	return nil
}

// FacadeCallHorizon is how long a facade call's hash is kept: far beyond
// the facade's dedup window (minutes), so a retry always finds its action,
// and short, because the hash is derived from the text and the chat.
const FacadeCallHorizon = 24 * time.Hour

// PruneFacadeCalls deletes the hashes of facade calls made before
// before - FacadeCallHorizon. An identical call after that is a new call;
// the action's idempotency key still finds an action in flight.
func (q *queries) PruneFacadeCalls(ctx context.Context, before time.Time) (int64, error) {
	n, err := q.q.exec(ctx, `DELETE FROM facade_calls WHERE created_at < $1`, before.Add(-FacadeCallHorizon))
	if err != nil {
		return 0, fmt.Errorf("prune facade calls: %w", err)
	}
	return n, nil
}

// FacadeWebhook is the URL a bot registered with setWebhook through the
// facade: Herald forwards each update to it after processing opt-outs.
type FacadeWebhook struct {
	Org     string
	Account string
	TokenID string
	URL     string
	// SecretToken is the bot's own secret_token, sent back to it in
	// X-Telegram-Bot-Api-Secret-Token; never logged or answered.
	SecretToken    string
	MaxConnections int
	// AllowedUpdates is the bot's allowed_updates (nil = Telegram's default).
	AllowedUpdates   []string
	CreatedAt        time.Time
	LastErrorAt      *time.Time
	LastErrorMessage string
}

// FacadeUpdate is an update Herald processed, waiting for the bot.
type FacadeUpdate struct {
	Account  string
	UpdateID int64
	Kind     string
	Payload  []byte
	Received time.Time
}

// SetFacadeWebhook registers (or replaces) an account's webhook. With
// dropPending, the updates waiting for the bot are dropped, as Telegram's
// drop_pending_updates does.
func (s *Store) SetFacadeWebhook(ctx context.Context, w FacadeWebhook, dropPending bool) error {
	allowed := ""
	if w.AllowedUpdates != nil {
		allowed = `["` + strings.Join(w.AllowedUpdates, `","`) + `"]`
		if len(w.AllowedUpdates) == 0 {
			allowed = "[]"
		}
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `INSERT INTO facade_webhooks (account_id, org_id, token_id, url, secret_token, max_connections,
				allowed_updates, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (account_id) DO UPDATE SET token_id = excluded.token_id, url = excluded.url,
				secret_token = excluded.secret_token, max_connections = excluded.max_connections,
				allowed_updates = excluded.allowed_updates, created_at = excluded.created_at,
				last_error_at = NULL, last_error_message = ''`,
			w.Account, w.Org, w.TokenID, w.URL, w.SecretToken, w.MaxConnections, allowed, tx.now()); err != nil {
			return fmt.Errorf("set facade webhook: %w", err)
		}
		if dropPending {
			return tx.dropFacadeUpdates(ctx, w.Org, w.Account)
		}
		return nil
	})
}

// DeleteFacadeWebhook removes an account's webhook; it reports whether
// there was one.
func (s *Store) DeleteFacadeWebhook(ctx context.Context, org, account string, dropPending bool) (bool, error) {
	var existed bool
	err := s.InTx(ctx, func(tx *Tx) error {
		n, err := tx.q.exec(ctx, `DELETE FROM facade_webhooks WHERE org_id = $1 AND account_id = $2`, org, account)
		if err != nil {
			return fmt.Errorf("delete facade webhook: %w", err)
		}
		existed = n > 0
		if dropPending {
			return tx.dropFacadeUpdates(ctx, org, account)
		}
		return nil
	})
	return existed, err
}

func (q *queries) dropFacadeUpdates(ctx context.Context, org, account string) error {
	if _, err := q.q.exec(ctx, `DELETE FROM facade_updates WHERE org_id = $1 AND account_id = $2`, org, account); err != nil {
		return fmt.Errorf("drop facade updates: %w", err)
	}
	return nil
}

// GetFacadeWebhook returns an account's webhook (not found if none).
func (q *queries) GetFacadeWebhook(ctx context.Context, org, account string) (FacadeWebhook, error) {
	var w FacadeWebhook
	var allowed string
	err := q.q.queryRow(ctx, `SELECT org_id, account_id, token_id, url, secret_token, max_connections, allowed_updates,
			created_at, last_error_at, last_error_message FROM facade_webhooks WHERE org_id = $1 AND account_id = $2`, org, account).
		Scan(&w.Org, &w.Account, &w.TokenID, &w.URL, &w.SecretToken, &w.MaxConnections, &allowed, &w.CreatedAt,
			&w.LastErrorAt, &w.LastErrorMessage)
	if err != nil {
		return w, scanNotFound(err, "facade webhook")
	}
	if allowed != "" {
		w.AllowedUpdates = []string{}
		for _, s := range strings.Split(strings.Trim(allowed, "[]"), ",") {
			if s = strings.Trim(s, `"`); s != "" {
				w.AllowedUpdates = append(w.AllowedUpdates, s)
			}
		}
	}
	return w, nil
}

// FacadeWebhooks lists every registered webhook (the forwarder's work list).
func (q *queries) FacadeWebhooks(ctx context.Context) ([]FacadeWebhook, error) {
	rs, err := q.q.query(ctx, `SELECT org_id, account_id FROM facade_webhooks ORDER BY account_id`)
	if err != nil {
		return nil, fmt.Errorf("list facade webhooks: %w", err)
	}
	var keys [][2]string
	for rs.Next() {
		var k [2]string
		if err := rs.Scan(&k[0], &k[1]); err != nil {
			rs.Close()
			return nil, fmt.Errorf("list facade webhooks: %w", err)
		}
		keys = append(keys, k)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list facade webhooks: %w", err)
	}
	out := make([]FacadeWebhook, 0, len(keys))
	for _, k := range keys {
		w, err := q.GetFacadeWebhook(ctx, k[0], k[1])
		if herald.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// RecordFacadeWebhookError notes the last failed forward (shown by
// getWebhookInfo); an empty message clears it.
func (q *queries) RecordFacadeWebhookError(ctx context.Context, org, account, message string) error {
	var at *time.Time
	if message != "" {
		now := q.now()
		at = &now
	}
	if _, err := q.q.exec(ctx, `UPDATE facade_webhooks SET last_error_at = $3, last_error_message = $4
		WHERE org_id = $1 AND account_id = $2`, org, account, at, message); err != nil {
		return fmt.Errorf("record facade webhook error: %w", err)
	}
	return nil
}

// EnqueueFacadeUpdate queues an update Herald has processed for the bot of
// acc, if the account has an active facade token (otherwise no bot reads
// it through Herald and nothing is kept). A resent update (same update_id)
// is queued once. It reports whether the update was queued.
func (q *queries) EnqueueFacadeUpdate(ctx context.Context, acc herald.Account, updateID int64, kind, chat string, payload []byte) (bool, error) {
	n, err := q.q.exec(ctx, `INSERT INTO facade_updates (account_id, update_id, org_id, kind, chat_id, payload, received_at)
		SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM facade_tokens
			WHERE org_id = $3 AND account_id = $1 AND revoked_at IS NULL)
		ON CONFLICT (account_id, update_id) DO NOTHING`, acc.ID, updateID, acc.Org, kind, chat, string(payload), q.now())
	if err != nil {
		return false, fmt.Errorf("enqueue facade update: %w", err)
	}
	return n > 0, nil
}

// FacadeUpdates returns up to limit queued updates of an account with
// update_id ≥ offset, as getUpdates does: first, updates before offset are
// confirmed (deleted). A negative offset takes the last -offset updates and
// forgets the ones before them.
func (s *Store) FacadeUpdates(ctx context.Context, org, account string, offset int64, limit int) ([]FacadeUpdate, error) {
	var out []FacadeUpdate
	err := s.InTx(ctx, func(tx *Tx) error {
		if offset < 0 {
			var from int64
			err := tx.q.queryRow(ctx, `SELECT update_id FROM facade_updates WHERE org_id = $1 AND account_id = $2
				ORDER BY update_id DESC LIMIT 1 OFFSET $3`, org, account, -offset-1).Scan(&from)
			if err != nil && err != errNoRows {
				return fmt.Errorf("facade updates: %w", err)
			}
			if err == errNoRows {
				from = math.MinInt64
			}
			offset = from
		}
		if offset != 0 && offset != math.MinInt64 {
			if _, err := tx.q.exec(ctx, `DELETE FROM facade_updates WHERE org_id = $1 AND account_id = $2 AND update_id < $3`,
				org, account, offset); err != nil {
				return fmt.Errorf("confirm facade updates: %w", err)
			}
		}
		rs, err := tx.q.query(ctx, `SELECT account_id, update_id, kind, payload, received_at FROM facade_updates
			WHERE org_id = $1 AND account_id = $2 ORDER BY update_id LIMIT $3`, org, account, limit)
		if err != nil {
			return fmt.Errorf("facade updates: %w", err)
		}
		defer rs.Close()
		out = out[:0]
		for rs.Next() {
			var u FacadeUpdate
			var payload string
			if err := rs.Scan(&u.Account, &u.UpdateID, &u.Kind, &payload, &u.Received); err != nil {
				return fmt.Errorf("facade updates: %w", err)
			}
			u.Payload = []byte(payload)
			out = append(out, u)
		}
		return rs.Err()
	})
	return out, err
}

// DeleteFacadeUpdate removes one update (forwarded to the bot's webhook).
func (q *queries) DeleteFacadeUpdate(ctx context.Context, org, account string, updateID int64) error {
	if _, err := q.q.exec(ctx, `DELETE FROM facade_updates WHERE org_id = $1 AND account_id = $2 AND update_id = $3`,
		org, account, updateID); err != nil {
		return fmt.Errorf("delete facade update: %w", err)
	}
	return nil
}

// PendingFacadeUpdates counts an account's queued updates.
func (q *queries) PendingFacadeUpdates(ctx context.Context, org, account string) (int, error) {
	var n int
	if err := q.q.queryRow(ctx, `SELECT count(*) FROM facade_updates WHERE org_id = $1 AND account_id = $2`, org, account).Scan(&n); err != nil {
		return 0, fmt.Errorf("count facade updates: %w", err)
	}
	return n, nil
}

// FacadeUpdateHorizon is how long an unread update is kept, as Telegram
// keeps them.
const FacadeUpdateHorizon = 24 * time.Hour

// PruneFacadeUpdates deletes updates received before now - FacadeUpdateHorizon.
func (q *queries) PruneFacadeUpdates(ctx context.Context, now time.Time) (int64, error) {
	n, err := q.q.exec(ctx, `DELETE FROM facade_updates WHERE received_at < $1`, now.Add(-FacadeUpdateHorizon))
	if err != nil {
		return 0, fmt.Errorf("prune facade updates: %w", err)
	}
	return n, nil
}
