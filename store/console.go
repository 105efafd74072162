package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/heraldhq/herald"
)

// ConsoleSession is a web console sign-in (issue 17). Only the SHA-256 of
// the browser's cookie token is stored; the token itself is returned once,
// by CreateConsoleSession.
type ConsoleSession struct {
	Org       string
	Principal string
	// Person is the invitation a Telegram sign-in was made for ("" for a key).
	Person string
	// KeyID is the API key signed in with ("" for Telegram); revoking the
	// key ends the session.
	KeyID      string
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// consoleTouchEvery bounds how often a console request writes last_seen_at:
// the idle timeout is minutes long, so a write a minute is precise enough.
const consoleTouchEvery = time.Minute

func consoleTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func consoleRandom() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateConsoleSession stores a new console session lasting at most maxAge
// and returns the cookie token (shown to the browser once, stored hashed).
func (q *queries) CreateConsoleSession(ctx context.Context, cs ConsoleSession, maxAge time.Duration) (ConsoleSession, string, error) {
	if cs.Org == "" || cs.Principal == "" {
		return cs, "", herald.Invalid(herald.FieldError{Field: "principal", Message: "is required"})
	}
	token := consoleRandom()
	now := q.now()
	cs.CSRF, cs.CreatedAt, cs.LastSeenAt, cs.ExpiresAt = consoleRandom(), now, now, now.Add(maxAge)
	_, err := q.q.exec(ctx, `INSERT INTO console_sessions (token_hash, org_id, principal, person_id, key_id, csrf, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		consoleTokenHash(token), cs.Org, cs.Principal, cs.Person, cs.KeyID, cs.CSRF, now, now, cs.ExpiresAt)
	if err != nil {
		return cs, "", fmt.Errorf("create console session: %w", err)
	}
	// Sessions past their end are removed by whoever signs in next: the
	// table stays as small as the number of people signed in.
	if _, err := q.q.exec(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, now); err != nil {
		return cs, "", fmt.Errorf("prune console sessions: %w", err)
	}
	return cs, token, nil
}

// ConsoleSession returns the live session of token, refreshing its
// last-seen time. A session idle for longer than idle, past its end, or
// signed in with a key since revoked or expired is deleted and reported as
// unauthenticated, like an unknown token.
func (q *queries) ConsoleSession(ctx context.Context, token string, idle time.Duration) (ConsoleSession, error) {
	gone := herald.Errorf(herald.CodeUnauthenticated, "the console session ended; sign in again")
	if token == "" || len(token) > 128 {
		return ConsoleSession{}, gone
	}
	hash := consoleTokenHash(token)
	var (
		cs          ConsoleSession
		keyRevoked  *time.Time
		keyExpires  *time.Time
		keyMissing  bool
		keyPresence int
	)
	err := q.q.queryRow(ctx, `SELECT s.org_id, s.principal, s.person_id, s.key_id, s.csrf, s.created_at, s.last_seen_at, s.expires_at,
		k.revoked_at, k.expires_at, (CASE WHEN k.id IS NULL THEN 0 ELSE 1 END)
		FROM console_sessions s LEFT JOIN api_keys k ON k.id = s.key_id AND k.org_id = s.org_id
		WHERE s.token_hash = $1`, hash).
		Scan(&cs.Org, &cs.Principal, &cs.Person, &cs.KeyID, &cs.CSRF, &cs.CreatedAt, &cs.LastSeenAt, &cs.ExpiresAt,
			&keyRevoked, &keyExpires, &keyPresence)
	if err == errNoRows {
		return ConsoleSession{}, gone
	}
	if err != nil {
		return ConsoleSession{}, fmt.Errorf("read console session: %w", err)
	}
	now := q.now()
	keyMissing = cs.KeyID != "" && keyPresence == 0
	keyDead := cs.KeyID != "" && (keyMissing || keyRevoked != nil || (keyExpires != nil && !now.Before(*keyExpires)))
	if keyDead || !now.Before(cs.ExpiresAt) || now.Sub(cs.LastSeenAt) > idle {
		if _, err := q.q.exec(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, hash); err != nil {
			return ConsoleSession{}, fmt.Errorf("end console session: %w", err)
		}
		return ConsoleSession{}, gone
	}
	if now.Sub(cs.LastSeenAt) >= consoleTouchEvery {
		if _, err := q.q.exec(ctx, `UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1`, hash, now); err != nil {
			return ConsoleSession{}, fmt.Errorf("touch console session: %w", err)
		}
		cs.LastSeenAt = now
	}
	return cs, nil
}

// DeleteConsoleSession ends the session of token (sign-out). Ending an
// unknown session is not an error.
func (q *queries) DeleteConsoleSession(ctx context.Context, token string) error {
	if _, err := q.q.exec(ctx, `DELETE FROM console_sessions WHERE token_hash = $1`, consoleTokenHash(token)); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}
