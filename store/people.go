package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/ledger"
)

// People are humans invited into an organisation by their Telegram user id.
// A person's principal is "tg:<telegram id>": Telegram Login issues them a
// session with no API key involved. Invariants:
//   - An invitation and its role bindings are created in one transaction;
//     revoking a person marks the invitation revoked and removes every
//     binding of their principal in one transaction.
//   - A session carries the invitation's id; SessionAllowed refuses it
//     once that invitation is revoked, so revocation holds on the next
//     request on every replica. Inviting the same person again makes a new
//     invitation: sessions of the revoked one stay dead.

// PersonPrincipalPrefix starts a person's principal.
const PersonPrincipalPrefix = "tg:"

// Person is an invited human.
type Person struct {
	ID         string           `json:"id"`
	Org        string           `json:"org"`
	TelegramID string           `json:"telegram_id"`
	Principal  string           `json:"principal"`
	Name       string           `json:"name,omitempty"`
	Bindings   []access.Binding `json:"bindings"`
	CreatedAt  time.Time        `json:"created_at"`
	CreatedBy  string           `json:"created_by"`
	RevokedAt  *time.Time       `json:"revoked_at,omitempty"`
}

// RoleGrant is one role (optionally scoped) to give.
type RoleGrant struct {
	Role  string `json:"role"`
	Scope string `json:"scope,omitempty"`
}

const personColumns = `id, org_id, telegram_id, principal, name, created_at, created_by, revoked_at`

func scanPerson(r row) (Person, error) {
	var p Person
	err := r.Scan(&p.ID, &p.Org, &p.TelegramID, &p.Principal, &p.Name, &p.CreatedAt, &p.CreatedBy, &p.RevokedAt)
	return p, err
}

// validTelegramID reports whether s is a Telegram user id (a positive integer).
func validTelegramID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// InvitePerson invites a Telegram user into org with roles, recording each
// binding in the ledger as actor. Errors: validation_failed for a bad
// Telegram id, name, role or scope (a scope must name an account of org);
// conflict when the person already has a live invitation. Nothing changes
// on error.
func (t *Tx) InvitePerson(ctx context.Context, org, telegramID, name string, roles []RoleGrant, actor string) (Person, error) {
	var fe []herald.FieldError
	if !validTelegramID(telegramID) {
		fe = append(fe, herald.FieldError{Field: "telegram_id", Message: "must be a Telegram user id (a positive integer)"})
	}
	if len(name) > maxOrgNameLen || !ValidText(name) {
		fe = append(fe, herald.FieldError{Field: "name", Message: fmt.Sprintf("must be at most %d printable characters", maxOrgNameLen)})
	}
	if len(roles) == 0 {
		fe = append(fe, herald.FieldError{Field: "roles", Message: "give the person at least one role"})
	}
	principal := PersonPrincipalPrefix + telegramID
	for i, r := range roles {
		for _, f := range access.ValidateBinding(principal, r.Role, access.NormalizeScope(r.Scope)) {
			f.Field = fmt.Sprintf("roles[%d].%s", i, f.Field)
			fe = append(fe, f)
		}
	}
	if len(fe) > 0 {
		return Person{}, herald.Invalid(fe...)
	}
	p := Person{ID: NewID(), Org: org, TelegramID: telegramID, Principal: principal, Name: name,
		CreatedAt: t.now(), CreatedBy: actor, Bindings: []access.Binding{}}
	if err := t.Lock(ctx, "herald.person."+org+"."+principal); err != nil {
		return Person{}, err
	}
	var n int
	if err := t.q.queryRow(ctx, `SELECT count(*) FROM people WHERE org_id = $1 AND principal = $2 AND revoked_at IS NULL`,
		org, principal).Scan(&n); err != nil {
		return Person{}, fmt.Errorf("invite person: %w", err)
	}
	if n > 0 {
		return Person{}, herald.Errorf(herald.CodeConflict, "this Telegram user is already invited; revoke the invitation first or change their roles")
	}
	if _, err := t.q.exec(ctx, `INSERT INTO people (`+personColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)`,
		p.ID, org, telegramID, principal, name, p.CreatedAt, actor); err != nil {
		return Person{}, fmt.Errorf("invite person: %w", err)
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: KindPersonInvited, Actor: actor,
		Refs: map[string]string{"person": p.ID}}); err != nil {
		return Person{}, err
	}
	for i, r := range roles {
		b, err := t.GrantRole(ctx, org, principal, r.Role, r.Scope, actor)
		if herald.ErrorCode(err) == herald.CodeConflict {
			continue // the same role listed twice, or a binding kept from before
		}
		if e, ok := err.(*herald.Error); ok && e.Code == herald.CodeValidation {
			for j := range e.Fields {
				e.Fields[j].Field = fmt.Sprintf("roles[%d].%s", i, e.Fields[j].Field)
			}
		}
		if err != nil {
			return Person{}, err
		}
		p.Bindings = append(p.Bindings, b)
	}
	return p, nil
}

// ListPeople lists org's people (revoked ones too when all), oldest first,
// each with its current role bindings.
func (q *queries) ListPeople(ctx context.Context, org string, all bool) ([]Person, error) {
	where := `WHERE org_id = $1`
	if !all {
		where += ` AND revoked_at IS NULL`
	}
	rs, err := q.q.query(ctx, `SELECT `+personColumns+` FROM people `+where+` ORDER BY created_at, id`, org)
	if err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	out := []Person{}
	for rs.Next() {
		p, err := scanPerson(rs)
		if err != nil {
			rs.Close()
			return nil, fmt.Errorf("list people: %w", err)
		}
		out = append(out, p)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	bs, err := q.ListBindings(ctx, org)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Bindings = []access.Binding{}
		if out[i].RevokedAt != nil {
			continue
		}
		for _, b := range bs {
			if b.Principal == out[i].Principal {
				out[i].Bindings = append(out[i].Bindings, b)
			}
		}
	}
	return out, nil
}

// PersonByPrincipal returns org's live invitation of principal.
func (q *queries) PersonByPrincipal(ctx context.Context, org, principal string) (Person, error) {
	p, err := scanPerson(q.q.queryRow(ctx, `SELECT `+personColumns+` FROM people
		WHERE org_id = $1 AND principal = $2 AND revoked_at IS NULL`, org, principal))
	if err != nil {
		return p, scanNotFound(err, "person")
	}
	return p, nil
}

// RevokePerson revokes one of org's people by invitation id: the invitation
// is marked revoked (ending its sessions) and every binding of the
// principal is removed, each removal a ledger entry. Errors: not_found
// (another org's person included); conflict when it would remove the
// organisation's last unrestricted admin. Revoking twice is not_found.
func (t *Tx) RevokePerson(ctx context.Context, org, id, actor string) (Person, error) {
	if err := t.Lock(ctx, "herald.access."+org); err != nil {
		return Person{}, err
	}
	p, err := scanPerson(t.q.queryRow(ctx, `SELECT `+personColumns+` FROM people
		WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL`, org, id))
	if err != nil {
		return p, scanNotFound(err, "person")
	}
	bs, err := t.listBindings(ctx, `WHERE org_id = $1 AND principal = $2`, org, p.Principal)
	if err != nil {
		return p, err
	}
	var admins, own int
	if err := t.q.queryRow(ctx, `SELECT count(*), COALESCE(sum(CASE WHEN principal = $3 THEN 1 ELSE 0 END), 0)
		FROM access_bindings WHERE org_id = $1 AND role = $2 AND scope = '*'`, org, herald.RoleAdmin, p.Principal).Scan(&admins, &own); err != nil {
		return p, fmt.Errorf("revoke person: %w", err)
	}
	if own > 0 && admins <= own {
		return p, herald.Errorf(herald.CodeConflict, "this person is the organisation's last admin; grant admin to someone else first")
	}
	now := t.now()
	if _, err := t.q.exec(ctx, `UPDATE people SET revoked_at = $3 WHERE org_id = $1 AND id = $2`, org, id, now); err != nil {
		return p, fmt.Errorf("revoke person: %w", err)
	}
	p.RevokedAt = &now
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: KindPersonRevoked, Actor: actor,
		Refs: map[string]string{"person": p.ID}}); err != nil {
		return p, err
	}
	for _, b := range bs {
		if _, err := t.q.exec(ctx, `DELETE FROM access_bindings WHERE org_id = $1 AND principal = $2 AND role = $3 AND scope = $4`,
			org, b.Principal, b.Role, b.Scope); err != nil {
			return p, fmt.Errorf("revoke person: %w", err)
		}
		if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindAccessRevoked, Actor: actor,
			Attrs: map[string]any{"principal": b.Principal, "role": b.Role, "scope": b.Scope}}); err != nil {
			return p, err
		}
	}
	p.Bindings = bs
	return p, t.bindingsChanged(ctx, org)
}

// ValidText reports whether s is valid UTF-8 without control characters.
func ValidText(s string) bool {
	// U+FFFD is refused too: encoding/json puts it where the client sent
	// invalid UTF-8, so it marks corrupt input rather than a real character.
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError })
}
