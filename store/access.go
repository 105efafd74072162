package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
)

// Role bindings (who holds which role in which organisation) are the part of
// the access policy that lives in the database; access.Enforcer loads them.
// Every change, in its own transaction: the binding row, an access.granted or
// access.revoked ledger entry, a bump of access_version (replicas poll it),
// and on PostgreSQL a notification on access.NotifyChannel (delivered at
// commit, so a replica that reloads on it sees the change).

const bindingColumns = `org_id, principal, role, scope, created_at, created_by`

func scanBinding(r row) (access.Binding, error) {
	var b access.Binding
	err := r.Scan(&b.Org, &b.Principal, &b.Role, &b.Scope, &b.CreatedAt, &b.CreatedBy)
	return b, err
}

func (q *queries) listBindings(ctx context.Context, where string, args ...any) ([]access.Binding, error) {
	rs, err := q.q.query(ctx, `SELECT `+bindingColumns+` FROM access_bindings `+where+
		` ORDER BY org_id, principal, role, scope`, args...)
	if err != nil {
		return nil, fmt.Errorf("list role bindings: %w", err)
	}
	defer rs.Close()
	out := []access.Binding{}
	for rs.Next() {
		b, err := scanBinding(rs)
		if err != nil {
			return nil, fmt.Errorf("list role bindings: %w", err)
		}
		out = append(out, b)
	}
	return out, rs.Err()
}

// ListBindings lists org's role bindings, ordered by principal, role, scope.
func (q *queries) ListBindings(ctx context.Context, org string) ([]access.Binding, error) {
	return q.listBindings(ctx, `WHERE org_id = $1`, org)
}

// AllBindings lists every organisation's role bindings (for access.Enforcer,
// which holds them all in memory; never for an API response).
func (q *queries) AllBindings(ctx context.Context) ([]access.Binding, error) {
	return q.listBindings(ctx, ``)
}

// BindingsVersion returns a counter that changes in every transaction that
// changes a binding: one primary-key read, cheap enough to poll.
func (q *queries) BindingsVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := q.q.queryRow(ctx, `SELECT version FROM access_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read bindings version: %w", err)
	}
	return v, nil
}

// principalKnown reports whether some unrevoked API key of org carries
// principal, or a live invitation of a person does.
func (q *queries) principalKnown(ctx context.Context, org, principal string) (bool, error) {
	var n int
	err := q.q.queryRow(ctx, `SELECT (SELECT count(*) FROM api_keys WHERE org_id = $1 AND principal = $2 AND revoked_at IS NULL)
		+ (SELECT count(*) FROM people WHERE org_id = $1 AND principal = $2 AND revoked_at IS NULL)`,
		org, principal).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up principal: %w", err)
	}
	return n > 0, nil
}

// bindingsChanged bumps the version and, on PostgreSQL, notifies replicas
// (the notification is delivered when this transaction commits).
func (t *Tx) bindingsChanged(ctx context.Context, org string) error {
	if _, err := t.q.exec(ctx, `UPDATE access_version SET version = version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump bindings version: %w", err)
	}
	if t.d.name == "postgres" {
		if _, err := t.q.exec(ctx, `SELECT pg_notify($1, $2)`, access.NotifyChannel, org); err != nil {
			return fmt.Errorf("notify %s: %w", access.NotifyChannel, err)
		}
	}
	return nil
}

// GrantRole binds principal to role in org, restricted to scope ("" or "*"
// for none, or "accounts/<id>"), and records it in the ledger as actor.
// Errors: validation_failed for an empty or unknown principal (no unrevoked
// API key of org carries it), an unknown role or an invalid scope;
// conflict when the same binding exists. Nothing changes on error.
func (t *Tx) GrantRole(ctx context.Context, org, principal, role, scope, actor string) (access.Binding, error) {
	scope = access.NormalizeScope(scope)
	if fe := access.ValidateBinding(principal, role, scope); len(fe) > 0 {
		return access.Binding{}, herald.Invalid(fe...)
	}
	known, err := t.principalKnown(ctx, org, principal)
	if err != nil {
		return access.Binding{}, err
	}
	if !known {
		return access.Binding{}, herald.Invalid(herald.FieldError{Field: "principal",
			Message: "unknown principal " + quote(principal) + ": no API key or invited person of this organisation carries it"})
	}
	if err := t.scopeExists(ctx, org, scope); err != nil {
		return access.Binding{}, err
	}
	return t.grant(ctx, org, principal, role, scope, actor)
}

// scopeExists checks that a scope names an item of org: "accounts/<id>"
// must be one of org's accounts. Another organisation's account is answered
// exactly as a missing one, so ids cannot be probed through bindings.
func (t *Tx) scopeExists(ctx context.Context, org, scope string) error {
	typ, id, ok := strings.Cut(scope, "/")
	if !ok || typ != access.ResAccounts {
		return nil
	}
	var n int
	if err := t.q.queryRow(ctx, `SELECT count(*) FROM accounts WHERE org_id = $1 AND id = $2`, org, id).Scan(&n); err != nil {
		return fmt.Errorf("check scope: %w", err)
	}
	if n == 0 {
		return herald.Invalid(herald.FieldError{Field: "scope", Message: "names no account of this organisation"})
	}
	return nil
}

func (t *Tx) grant(ctx context.Context, org, principal, role, scope, actor string) (access.Binding, error) {
	b := access.Binding{Org: org, Principal: principal, Role: role, Scope: scope, CreatedAt: t.now(), CreatedBy: actor}
	n, err := t.q.exec(ctx, `INSERT INTO access_bindings (`+bindingColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (org_id, principal, role, scope) DO NOTHING`,
		b.Org, b.Principal, b.Role, b.Scope, b.CreatedAt, b.CreatedBy)
	if err != nil {
		return access.Binding{}, fmt.Errorf("grant role: %w", err)
	}
	if n == 0 {
		return access.Binding{}, herald.Errorf(herald.CodeConflict, "%s already holds %s", quote(principal), quote(b.RoleName()))
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindAccessGranted, Actor: actor,
		Attrs: map[string]any{"principal": principal, "role": role, "scope": scope}}); err != nil {
		return access.Binding{}, err
	}
	return b, t.bindingsChanged(ctx, org)
}

// EnsureRole gives principal role in org, unrestricted, unless the
// principal already holds that role (with any scope: an existing scoped
// binding is never widened). It is what creating an API key with a role
// does, in the key's transaction, after the key row is inserted. It reports
// whether it granted.
func (t *Tx) EnsureRole(ctx context.Context, org, principal, role, actor string) (bool, error) {
	if fe := access.ValidateBinding(principal, role, access.ScopeAll); len(fe) > 0 {
		return false, herald.Invalid(fe...)
	}
	var n int
	if err := t.q.queryRow(ctx, `SELECT count(*) FROM access_bindings WHERE org_id = $1 AND principal = $2 AND role = $3`,
		org, principal, role).Scan(&n); err != nil {
		return false, fmt.Errorf("ensure role: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := t.grant(ctx, org, principal, role, access.ScopeAll, actor); err != nil {
		return false, err
	}
	return true, nil
}

// RevokeRole removes principal's binding to role with scope ("" = "*") in
// org and records it in the ledger as actor. Errors: validation_failed for
// invalid fields; not_found when org has no such binding (another org's
// binding included); conflict when it is the organisation's last
// unrestricted admin binding, which would leave no one able to grant roles.
func (t *Tx) RevokeRole(ctx context.Context, org, principal, role, scope, actor string) (access.Binding, error) {
	scope = access.NormalizeScope(scope)
	if fe := access.ValidateBinding(principal, role, scope); len(fe) > 0 {
		return access.Binding{}, herald.Invalid(fe...)
	}
	// Lock the org's admin bindings so two concurrent revocations cannot
	// each see the other admin and remove both.
	if err := t.Lock(ctx, "herald.access."+org); err != nil {
		return access.Binding{}, err
	}
	b, err := scanBinding(t.q.queryRow(ctx, `SELECT `+bindingColumns+` FROM access_bindings
		WHERE org_id = $1 AND principal = $2 AND role = $3 AND scope = $4`, org, principal, role, scope))
	if err != nil {
		return b, scanNotFound(err, "role binding")
	}
	if role == herald.RoleAdmin && scope == access.ScopeAll {
		var n int
		if err := t.q.queryRow(ctx, `SELECT count(*) FROM access_bindings WHERE org_id = $1 AND role = $2 AND scope = $3`,
			org, herald.RoleAdmin, access.ScopeAll).Scan(&n); err != nil {
			return b, fmt.Errorf("revoke role: %w", err)
		}
		if n <= 1 {
			return b, herald.Errorf(herald.CodeConflict, "%s is the organisation's last admin; grant admin to someone else first", quote(principal))
		}
	}
	if _, err := t.q.exec(ctx, `DELETE FROM access_bindings WHERE org_id = $1 AND principal = $2 AND role = $3 AND scope = $4`,
		org, principal, role, scope); err != nil {
		return b, fmt.Errorf("revoke role: %w", err)
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindAccessRevoked, Actor: actor,
		Attrs: map[string]any{"principal": principal, "role": role, "scope": scope}}); err != nil {
		return b, err
	}
	return b, t.bindingsChanged(ctx, org)
}

// GrantRole runs Tx.GrantRole in its own transaction.
func (s *Store) GrantRole(ctx context.Context, org, principal, role, scope, actor string) (b access.Binding, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		b, err = tx.GrantRole(ctx, org, principal, role, scope, actor)
		return err
	})
	return b, err
}

// EnsureRole runs Tx.EnsureRole in its own transaction.
func (s *Store) EnsureRole(ctx context.Context, org, principal, role, actor string) (granted bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		granted, err = tx.EnsureRole(ctx, org, principal, role, actor)
		return err
	})
	return granted, err
}

// RevokeRole runs Tx.RevokeRole in its own transaction.
func (s *Store) RevokeRole(ctx context.Context, org, principal, role, scope, actor string) (b access.Binding, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		b, err = tx.RevokeRole(ctx, org, principal, role, scope, actor)
		return err
	})
	return b, err
}

var _ access.Source = (*Store)(nil)
