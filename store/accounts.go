package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

const accountColumns = `id, org_id, name, kind, connector, status, secret_ref, paid_broadcast, frozen_until, created_at, updated_at`

func scanAccount(r row) (herald.Account, error) {
	var a herald.Account
	err := r.Scan(&a.ID, &a.Org, &a.Name, &a.Kind, &a.Connector, &a.Status, &a.SecretRef, &a.PaidBroadcast, &a.FrozenUntil, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

// ValidateAccount checks an account's fields.
func ValidateAccount(a herald.Account) error {
	var fe []herald.FieldError
	if strings.TrimSpace(a.Name) == "" {
		fe = append(fe, herald.FieldError{Field: "name", Message: "is required"})
	} else if len(a.Name) > 200 {
		fe = append(fe, herald.FieldError{Field: "name", Message: "must be at most 200 characters"})
	}
	if a.Kind != herald.AccountBot && a.Kind != herald.AccountUser {
		fe = append(fe, herald.FieldError{Field: "kind", Message: `must be "bot" or "user"`})
	}
	switch a.Connector {
	case herald.ConnectorSandbox, herald.ConnectorBotAPI, herald.ConnectorMTProto:
	default:
		fe = append(fe, herald.FieldError{Field: "connector", Message: `must be "sandbox", "botapi" or "mtproto"`})
	}
	if a.Connector == herald.ConnectorBotAPI && a.Kind != herald.AccountBot {
		fe = append(fe, herald.FieldError{Field: "connector", Message: "the Bot API serves bot accounts only"})
	}
	switch a.Status {
	case herald.AccountActive, herald.AccountPaused, herald.AccountFrozen, herald.AccountDisabled:
	default:
		fe = append(fe, herald.FieldError{Field: "status", Message: `must be "active", "paused", "frozen" or "disabled"`})
	}
	if len(fe) > 0 {
		return herald.Invalid(fe...)
	}
	return nil
}

// CreateAccount stores a new account.
func (q *queries) CreateAccount(ctx context.Context, a herald.Account) (herald.Account, error) {
	if a.Status == "" {
		a.Status = herald.AccountActive
	}
	if err := ValidateAccount(a); err != nil {
		return a, err
	}
	now := q.now()
	if a.ID == "" {
		a.ID = NewID()
	}
	a.CreatedAt, a.UpdatedAt = now, now
	_, err := q.q.exec(ctx, `INSERT INTO accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.ID, a.Org, a.Name, a.Kind, a.Connector, a.Status, a.SecretRef, a.PaidBroadcast, a.FrozenUntil, a.CreatedAt, a.UpdatedAt)
	if err != nil {
		return a, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// GetAccount returns one of org's accounts.
func (q *queries) GetAccount(ctx context.Context, org, id string) (herald.Account, error) {
	a, err := scanAccount(q.q.queryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE org_id = $1 AND id = $2`, org, id))
	if err != nil {
		return a, scanNotFound(err, "account")
	}
	return a, nil
}

// ListAccounts lists org's accounts in creation order.
func (q *queries) ListAccounts(ctx context.Context, org string) ([]herald.Account, error) {
	rs, err := q.q.query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE org_id = $1 ORDER BY id`, org)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rs.Close()
	out := []herald.Account{}
	for rs.Next() {
		a, err := scanAccount(rs)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rs.Err()
}

// AccountPatch lists the fields an update may change; nil leaves a field as it is.
type AccountPatch struct {
	Name          *string
	Status        *string
	PaidBroadcast *bool
	SecretRef     *string
	// FrozenUntil is applied when SetFrozenUntil is true (nil clears it).
	FrozenUntil    *time.Time
	SetFrozenUntil bool
}

// UpdateAccount applies p to one of org's accounts.
func (q *queries) UpdateAccount(ctx context.Context, org, id string, p AccountPatch) (herald.Account, error) {
	a, err := q.GetAccount(ctx, org, id)
	if err != nil {
		return a, err
	}
	if p.Name != nil {
		a.Name = *p.Name
	}
	if p.Status != nil {
		a.Status = *p.Status
	}
	if p.PaidBroadcast != nil {
		a.PaidBroadcast = *p.PaidBroadcast
	}
	if p.SecretRef != nil {
		a.SecretRef = *p.SecretRef
	}
	if p.SetFrozenUntil {
		a.FrozenUntil = p.FrozenUntil
	}
	if err := ValidateAccount(a); err != nil {
		return a, err
	}
	a.UpdatedAt = q.now()
	_, err = q.q.exec(ctx, `UPDATE accounts SET name = $3, status = $4, paid_broadcast = $5, secret_ref = $6, frozen_until = $7, updated_at = $8
		WHERE org_id = $1 AND id = $2`, org, id, a.Name, a.Status, a.PaidBroadcast, a.SecretRef, a.FrozenUntil, a.UpdatedAt)
	if err != nil {
		return a, fmt.Errorf("update account: %w", err)
	}
	return a, nil
}
