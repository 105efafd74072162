package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

func notFound(what string) error { return herald.NotFound(what) }

// CreateOrg creates an organisation.
func (q *queries) CreateOrg(ctx context.Context, name, timezone string) (herald.Org, error) {
	if timezone == "" {
		timezone = "UTC"
	}
	o := herald.Org{ID: NewID(), Name: name, Timezone: timezone, CreatedAt: q.now()}
	_, err := q.q.exec(ctx, `INSERT INTO orgs (id, name, timezone, created_at) VALUES ($1, $2, $3, $4)`,
		o.ID, o.Name, o.Timezone, o.CreatedAt)
	if err != nil {
		return herald.Org{}, fmt.Errorf("create org: %w", err)
	}
	return o, nil
}

// GetOrg returns an organisation.
func (q *queries) GetOrg(ctx context.Context, id string) (herald.Org, error) {
	var o herald.Org
	err := q.q.queryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1`, id).
		Scan(&o.ID, &o.Name, &o.Timezone, &o.CreatedAt, &o.SuspendedAt, &o.DeletedAt)
	if err != nil {
		return o, scanNotFound(err, "organisation")
	}
	return o, nil
}

// CountOrgs returns how many organisations exist (0 on a fresh database).
func (q *queries) CountOrgs(ctx context.Context) (int, error) {
	var n int
	if err := q.q.queryRow(ctx, `SELECT count(*) FROM orgs`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count orgs: %w", err)
	}
	return n, nil
}

// API keys look like "hk_<prefix>_<secret>": the prefix (public, unique)
// finds the row, the secret is checked against its SHA-256. The secret has
// 256 bits of entropy, so a fast hash is sufficient (no password stretching
// needed) and authentication stays off the submit path's profile.
const (
	keyPrefixLen = 12
	keyScheme    = "hk"
)

// CreateAPIKey creates a key and returns it with the plaintext token, which is
// shown once and never stored.
func (q *queries) CreateAPIKey(ctx context.Context, org, principal, role, name string, expiresAt *time.Time) (herald.APIKey, string, error) {
	if !herald.ValidRole(role) {
		return herald.APIKey{}, "", herald.Invalid(herald.FieldError{Field: "role", Message: "unknown role " + quote(role)})
	}
	if principal == "" {
		return herald.APIKey{}, "", herald.Invalid(herald.FieldError{Field: "principal", Message: "is required"})
	}
	prefix := randomToken(keyPrefixLen)
	secret := randomToken(32)
	k := herald.APIKey{ID: NewID(), Org: org, Principal: principal, Role: role, Name: name,
		Prefix: prefix, CreatedAt: q.now(), ExpiresAt: expiresAt}
	_, err := q.q.exec(ctx, `INSERT INTO api_keys (id, org_id, principal, role, name, prefix, hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, org, principal, role, name, prefix, hashSecret(secret), k.CreatedAt, expiresAt)
	if err != nil {
		return herald.APIKey{}, "", fmt.Errorf("create api key: %w", err)
	}
	return k, keyScheme + "_" + prefix + "_" + secret, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	s := base64.RawURLEncoding.EncodeToString(b)
	// Keep tokens free of '_' so the "hk_prefix_secret" split is unambiguous.
	return strings.NewReplacer("_", "x", "-", "y").Replace(s)[:n]
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

const keyColumns = `id, org_id, principal, role, name, prefix, created_at, expires_at, revoked_at, last_used_at`

func scanKey(r row) (herald.APIKey, error) {
	var k herald.APIKey
	err := r.Scan(&k.ID, &k.Org, &k.Principal, &k.Role, &k.Name, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt)
	return k, err
}

// ListAPIKeys lists an organisation's keys, newest first.
func (q *queries) ListAPIKeys(ctx context.Context, org string) ([]herald.APIKey, error) {
	rs, err := q.q.query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE org_id = $1 ORDER BY created_at DESC, id DESC`, org)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rs.Close()
	var out []herald.APIKey
	for rs.Next() {
		k, err := scanKey(rs)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rs.Err()
}

// RevokeAPIKey revokes a key by id or prefix. Revoking twice is a no-op.
func (q *queries) RevokeAPIKey(ctx context.Context, org, idOrPrefix string) (herald.APIKey, error) {
	_, err := q.q.exec(ctx, `UPDATE api_keys SET revoked_at = $3
		WHERE org_id = $1 AND (id = $2 OR prefix = $2) AND revoked_at IS NULL`, org, idOrPrefix, q.now())
	if err != nil {
		return herald.APIKey{}, fmt.Errorf("revoke api key: %w", err)
	}
	k, err := scanKey(q.q.queryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE org_id = $1 AND (id = $2 OR prefix = $2)`, org, idOrPrefix))
	if err != nil {
		return k, scanNotFound(err, "api key")
	}
	return k, nil
}

// GetAPIKey returns one of org's keys by id or prefix.
func (q *queries) GetAPIKey(ctx context.Context, org, idOrPrefix string) (herald.APIKey, error) {
	k, err := scanKey(q.q.queryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE org_id = $1 AND (id = $2 OR prefix = $2)`, org, idOrPrefix))
	if err != nil {
		return k, scanNotFound(err, "api key")
	}
	return k, nil
}

// lastUsedGranularity bounds how often authentication writes last_used_at:
// a write per request would put a row update on every submit.
const lastUsedGranularity = time.Minute

// Authenticate resolves a bearer token to its principal. Unknown, malformed,
// revoked and expired tokens all give the same error.
func (q *queries) Authenticate(ctx context.Context, token string) (herald.Principal, error) {
	unauth := herald.Errorf(herald.CodeUnauthenticated, "invalid or revoked API key")
	scheme, rest, ok := strings.Cut(token, "_")
	if !ok || scheme != keyScheme {
		return herald.Principal{}, unauth
	}
	prefix, secret, ok := strings.Cut(rest, "_")
	if !ok || len(prefix) != keyPrefixLen || secret == "" {
		return herald.Principal{}, unauth
	}
	var (
		k         herald.APIKey
		hash      string
		suspended *time.Time
	)
	err := q.q.queryRow(ctx, `SELECT k.id, k.org_id, k.principal, k.role, k.hash, k.expires_at, k.revoked_at, k.last_used_at,
		COALESCE(o.deleted_at, o.suspended_at)
		FROM api_keys k JOIN orgs o ON o.id = k.org_id WHERE k.prefix = $1`, prefix).
		Scan(&k.ID, &k.Org, &k.Principal, &k.Role, &hash, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt, &suspended)
	if err != nil {
		if err == errNoRows {
			return herald.Principal{}, unauth
		}
		return herald.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(hashSecret(secret))) != 1 {
		return herald.Principal{}, unauth
	}
	now := q.now()
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return herald.Principal{}, unauth
	}
	if suspended != nil {
		return herald.Principal{}, errOrgSuspended
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > lastUsedGranularity {
		if _, err := q.q.exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, k.ID, now); err != nil {
			return herald.Principal{}, fmt.Errorf("authenticate: record last use: %w", err)
		}
	}
	return herald.Principal{ID: k.Principal, Org: k.Org, Role: k.Role, KeyID: k.ID}, nil
}

// OrgIDs lists every organisation id (for operator tooling).
func (q *queries) OrgIDs(ctx context.Context) ([]string, error) {
	rs, err := q.q.query(ctx, `SELECT id FROM orgs ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, id)
	}
	return out, rs.Err()
}
