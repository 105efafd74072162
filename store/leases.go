package store

import (
	"context"
	"fmt"
	"time"
)

// AcquireLease takes (or renews) account's send lease for owner until now+ttl.
// It succeeds when the lease is free, expired, or already owner's; it
// returns false, without waiting, when another live owner holds it.
func (q *queries) AcquireLease(ctx context.Context, account, owner string, ttl time.Duration) (bool, error) {
	now := q.now()
	rs, err := q.q.query(ctx, `INSERT INTO account_leases (account_id, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE account_leases.owner = excluded.owner OR account_leases.expires_at < $4
		RETURNING owner`, account, owner, now.Add(ttl), now)
	if err != nil {
		return false, fmt.Errorf("acquire lease of account %s: %w", account, err)
	}
	defer rs.Close()
	got := rs.Next()
	return got, rs.Err()
}

// ReleaseLease gives up owner's lease on account (no-op if not held).
func (q *queries) ReleaseLease(ctx context.Context, account, owner string) error {
	if _, err := q.q.exec(ctx, `DELETE FROM account_leases WHERE account_id = $1 AND owner = $2`, account, owner); err != nil {
		return fmt.Errorf("release lease of account %s: %w", account, err)
	}
	return nil
}
