package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// The platform scope sits above organisations: platform operators create,
// rename, suspend, resume and delete organisations. Its invariants:
//   - Every change to an organisation MUST be a ledger entry in the
//     platform's own chain (PlatformLedger), in the change's transaction,
//     and in the organisation's own chain too, so each tenant's auditor sees
//     what happened to it without reading the platform's log.
//   - A suspended or deleted organisation's API keys and sessions MUST be
//     refused (Authenticate, SessionAllowed) and its jobs MUST NOT be
//     claimed (ClaimJobs): suspension holds the queue, resuming releases it.
//   - Deleting an organisation erases its personal data (contacts, consent
//     history, message content, ledger payloads, people) and MUST leave
//     every ledger entry in place, so the chain still verifies.

// PlatformLedger is the id of the platform's own ledger chain. It is a
// pseudo-organisation: ledger chains are keyed by organisation id and need
// no organisation row, and no organisation can have this id (organisation
// ids are UUIDs).
const PlatformLedger = "platform"

// Ledger kinds of the platform scope and of people.
const (
	KindOrgCreated    = "org.created"
	KindOrgRenamed    = "org.renamed"
	KindOrgSuspended  = "org.suspended"
	KindOrgResumed    = "org.resumed"
	KindOrgDeleted    = "org.deleted"
	KindPersonInvited = "person.invited"
	KindPersonRevoked = "person.revoked"
)

const orgColumns = `id, name, timezone, created_at, suspended_at, deleted_at`

func scanOrg(r row) (herald.Org, error) {
	var o herald.Org
	err := r.Scan(&o.ID, &o.Name, &o.Timezone, &o.CreatedAt, &o.SuspendedAt, &o.DeletedAt)
	return o, err
}

// errOrgSuspended is what a suspended (or deleted) organisation's keys and
// sessions get: a 403, not a 401, so a client can tell "your organisation
// is held" from "your key is wrong".
var errOrgSuspended = herald.Errorf(herald.CodeForbidden, "the organisation is suspended")

// maxOrgNameLen bounds an organisation's name.
const maxOrgNameLen = 200

// ValidateOrg checks an organisation's name and time zone.
func ValidateOrg(name, timezone string) []herald.FieldError {
	var fe []herald.FieldError
	switch {
	case strings.TrimSpace(name) == "":
		fe = append(fe, herald.FieldError{Field: "name", Message: "is required"})
	case !ValidText(name) || utf8.RuneCountInString(name) > maxOrgNameLen:
		fe = append(fe, herald.FieldError{Field: "name", Message: fmt.Sprintf("must be at most %d printable characters", maxOrgNameLen)})
	}
	if timezone != "" {
		if _, err := time.LoadLocation(timezone); err != nil || !utf8.ValidString(timezone) || strings.ContainsRune(timezone, 0) {
			fe = append(fe, herald.FieldError{Field: "timezone", Message: "must be an IANA time zone, e.g. Europe/Berlin"})
		}
	}
	return fe
}

// ListOrgs lists every organisation, oldest first (platform scope only).
func (q *queries) ListOrgs(ctx context.Context) ([]herald.Org, error) {
	rs, err := q.q.query(ctx, `SELECT `+orgColumns+` FROM orgs ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rs.Close()
	out := []herald.Org{}
	for rs.Next() {
		o, err := scanOrg(rs)
		if err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		out = append(out, o)
	}
	return out, rs.Err()
}

// IsPlatformOperator reports whether principal of org is a platform operator.
func (q *queries) IsPlatformOperator(ctx context.Context, org, principal string) (bool, error) {
	var n int
	if err := q.q.queryRow(ctx, `SELECT count(*) FROM platform_operators WHERE org_id = $1 AND principal = $2`,
		org, principal).Scan(&n); err != nil {
		return false, fmt.Errorf("look up platform operator: %w", err)
	}
	return n > 0, nil
}

// AddPlatformOperator makes principal of org a platform operator (first
// start, the CLI). Adding one twice is a no-op.
func (t *Tx) AddPlatformOperator(ctx context.Context, org, principal, actor string) error {
	if _, err := t.q.exec(ctx, `INSERT INTO platform_operators (org_id, principal, created_at, created_by)
		VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, principal) DO NOTHING`, org, principal, t.now(), actor); err != nil {
		return fmt.Errorf("add platform operator: %w", err)
	}
	return nil
}

// recordOrg writes one change of org to the platform's chain and to org's own.
func (t *Tx) recordOrg(ctx context.Context, kind, org, actor string, attrs map[string]any) error {
	rec := LedgerRecord{Kind: kind, Actor: actor, Refs: map[string]string{"org": org}, Attrs: attrs}
	if _, err := t.AppendLedger(ctx, PlatformLedger, rec); err != nil {
		return err
	}
	_, err := t.AppendLedger(ctx, org, rec)
	return err
}

// CreateOrgAs creates an organisation as a platform operator and records it.
func (t *Tx) CreateOrgAs(ctx context.Context, name, timezone, actor string) (herald.Org, error) {
	if fe := ValidateOrg(name, timezone); len(fe) > 0 {
		return herald.Org{}, herald.Invalid(fe...)
	}
	o, err := t.CreateOrg(ctx, strings.TrimSpace(name), timezone)
	if err != nil {
		return o, err
	}
	return o, t.recordOrg(ctx, KindOrgCreated, o.ID, actor, map[string]any{"timezone": o.Timezone})
}

// lockOrg reads org for update: organisation changes are serialised per
// organisation (advisory lock on PostgreSQL; SQLite serialises writers).
func (t *Tx) lockOrg(ctx context.Context, org string) (herald.Org, error) {
	if err := t.Lock(ctx, "herald.org."+org); err != nil {
		return herald.Org{}, err
	}
	o, err := scanOrg(t.q.queryRow(ctx, `SELECT `+orgColumns+` FROM orgs WHERE id = $1`, org))
	if err != nil {
		return o, scanNotFound(err, "organisation")
	}
	return o, nil
}

// RenameOrg renames org. A deleted organisation cannot change.
func (t *Tx) RenameOrg(ctx context.Context, org, name, actor string) (herald.Org, error) {
	if fe := ValidateOrg(name, ""); len(fe) > 0 {
		return herald.Org{}, herald.Invalid(fe...)
	}
	o, err := t.lockOrg(ctx, org)
	if err != nil {
		return o, err
	}
	if o.DeletedAt != nil {
		return o, herald.Errorf(herald.CodeConflict, "the organisation is deleted")
	}
	name = strings.TrimSpace(name)
	if name == o.Name {
		return o, nil
	}
	if _, err := t.q.exec(ctx, `UPDATE orgs SET name = $2 WHERE id = $1`, org, name); err != nil {
		return o, fmt.Errorf("rename org: %w", err)
	}
	o.Name = name
	return o, t.recordOrg(ctx, KindOrgRenamed, org, actor, nil)
}

// SetOrgSuspended suspends (true) or resumes (false) org. Doing what is
// already so changes nothing and records nothing.
func (t *Tx) SetOrgSuspended(ctx context.Context, org string, suspend bool, actor string) (herald.Org, error) {
	o, err := t.lockOrg(ctx, org)
	if err != nil {
		return o, err
	}
	if o.DeletedAt != nil {
		return o, herald.Errorf(herald.CodeConflict, "the organisation is deleted")
	}
	if suspend == (o.SuspendedAt != nil) {
		return o, nil
	}
	kind := KindOrgResumed
	o.SuspendedAt = nil
	if suspend {
		kind = KindOrgSuspended
		now := t.now()
		o.SuspendedAt = &now
	}
	if _, err := t.q.exec(ctx, `UPDATE orgs SET suspended_at = $2 WHERE id = $1`, org, o.SuspendedAt); err != nil {
		return o, fmt.Errorf("suspend org: %w", err)
	}
	return o, t.recordOrg(ctx, kind, org, actor, nil)
}

// OrgErasure says what deleting an organisation erased.
type OrgErasure struct {
	Contacts        int `json:"contacts"`
	PayloadsDeleted int `json:"payloads_deleted"`
	ActionsErased   int `json:"actions_erased"`
	KeysRevoked     int `json:"keys_revoked"`
	PeopleRevoked   int `json:"people_revoked"`
	BindingsRemoved int `json:"bindings_removed"`
}

// DeleteOrg erases org's personal data in this transaction: each contact
// (as the contact erasure does: ledger payloads with tombstones, consents,
// consent history, the contact row), the content and target of every
// action, queued deliveries, people, API keys (revoked) and role bindings,
// and every remaining ledger payload (tombstoned). Ledger entries stay, so
// the chain verifies; the caller signs a final checkpoint after commit.
// The organisation row stays, marked deleted and suspended, so nothing can
// authenticate into it again. Deleting twice is a conflict.
func (t *Tx) DeleteOrg(ctx context.Context, org, actor string) (herald.Org, OrgErasure, error) {
	var er OrgErasure
	o, err := t.lockOrg(ctx, org)
	if err != nil {
		return o, er, err
	}
	if o.DeletedAt != nil {
		return o, er, herald.Errorf(herald.CodeConflict, "the organisation is already deleted")
	}
	now := t.now()
	rs, err := t.q.query(ctx, `SELECT id FROM contacts WHERE org_id = $1 ORDER BY id`, org)
	if err != nil {
		return o, er, fmt.Errorf("delete org: list contacts: %w", err)
	}
	var contacts []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			rs.Close()
			return o, er, fmt.Errorf("delete org: list contacts: %w", err)
		}
		contacts = append(contacts, id)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return o, er, fmt.Errorf("delete org: list contacts: %w", err)
	}
	for _, id := range contacts {
		n, err := t.EraseContact(ctx, org, id)
		if err != nil {
			return o, er, err
		}
		er.PayloadsDeleted += n
		if err := t.DeleteContact(ctx, org, id); err != nil {
			return o, er, err
		}
	}
	er.Contacts = len(contacts)
	steps := []struct {
		what string
		dst  *int
		sql  string
	}{
		{"queued deliveries", nil, `DELETE FROM jobs WHERE org_id = $1`},
		{"actions", &er.ActionsErased, `UPDATE actions SET content = '{}', target = 'erased', receipt = NULL, updated_at = $2
			WHERE org_id = $1`},
		// Recorded policy inputs name recipients (contact ids, chat ids of
		// non-contacts); the ledger keeps each decision's input hash.
		{"decision records", nil, `DELETE FROM decision_records WHERE org_id = $1`},
		{"ledger payload tombstones", nil, `INSERT INTO ledger_payload_tombstones (org_id, hash, reason, purged_at)
			SELECT org_id, hash, CAST($3 AS text), CAST($2 AS timestamptz) FROM ledger_payloads WHERE org_id = $1
			ON CONFLICT (org_id, hash) DO NOTHING`},
		{"ledger payloads", &er.PayloadsDeleted, `DELETE FROM ledger_payloads WHERE org_id = $1`},
		// People's Telegram ids are personal data: their invitations go
		// (the ledger refers to them by invitation id only).
		{"people", &er.PeopleRevoked, `DELETE FROM people WHERE org_id = $1`},
		{"api keys", &er.KeysRevoked, `UPDATE api_keys SET revoked_at = $2 WHERE org_id = $1 AND revoked_at IS NULL`},
		{"role bindings", &er.BindingsRemoved, `DELETE FROM access_bindings WHERE org_id = $1`},
		{"platform operators", nil, `DELETE FROM platform_operators WHERE org_id = $1`},
		{"organisation", nil, `UPDATE orgs SET deleted_at = $2, suspended_at = COALESCE(suspended_at, $2) WHERE id = $1`},
	}
	for _, st := range steps {
		args := []any{org}
		if strings.Contains(st.sql, "$2") {
			args = append(args, now)
		}
		if strings.Contains(st.sql, "$3") {
			args = append(args, PurgeErasure)
		}
		n, err := t.q.exec(ctx, st.sql, args...)
		if err != nil {
			return o, er, fmt.Errorf("delete org: %s: %w", st.what, err)
		}
		if st.dst != nil {
			*st.dst += int(n)
		}
	}
	if err := t.bindingsChanged(ctx, org); err != nil {
		return o, er, err
	}
	o.DeletedAt = &now
	if o.SuspendedAt == nil {
		o.SuspendedAt = &now
	}
	attrs := map[string]any{"contacts": er.Contacts, "payloads_deleted": er.PayloadsDeleted, "actions_erased": er.ActionsErased,
		"keys_revoked": er.KeysRevoked, "people_revoked": er.PeopleRevoked}
	return o, er, t.recordOrg(ctx, KindOrgDeleted, org, actor, attrs)
}

// SessionAllowed reports whether a session of principal in org may still
// be used: the organisation is neither suspended nor deleted and, for a
// person's session (personID set), that invitation is not revoked; a
// session without a person (a principal known only by bindings) needs a
// binding still in place. It is one read per request, so a revocation holds
// on the next request on every replica, with no cache to wait out.
func (q *queries) SessionAllowed(ctx context.Context, org, principal, personID string) error {
	var suspended *time.Time
	var live int
	var err error
	if personID != "" {
		err = q.q.queryRow(ctx, `SELECT COALESCE(o.deleted_at, o.suspended_at),
			(SELECT count(*) FROM people p WHERE p.id = $2 AND p.org_id = o.id AND p.principal = $3 AND p.revoked_at IS NULL)
			FROM orgs o WHERE o.id = $1`, org, personID, principal).Scan(&suspended, &live)
	} else {
		err = q.q.queryRow(ctx, `SELECT COALESCE(o.deleted_at, o.suspended_at),
			(SELECT count(*) FROM access_bindings b WHERE b.org_id = o.id AND b.principal = $2)
			FROM orgs o WHERE o.id = $1`, org, principal).Scan(&suspended, &live)
	}
	switch {
	case err == errNoRows:
		return herald.Errorf(herald.CodeUnauthenticated, "the session is invalid or expired; log in again")
	case err != nil:
		return fmt.Errorf("check session: %w", err)
	case live == 0:
		// Checked before suspension: someone who is no member learns
		// nothing about the organisation's state.
		return herald.Errorf(herald.CodeUnauthenticated, "the session was revoked; log in again")
	case suspended != nil:
		return errOrgSuspended
	}
	return nil
}

// SuspendedOrg reports whether org is suspended or deleted (for routes that
// authenticate otherwise, e.g. Telegram login).
func (q *queries) SuspendedOrg(ctx context.Context, org string) (bool, error) {
	o, err := q.GetOrg(ctx, org)
	if err != nil {
		return false, err
	}
	return o.SuspendedAt != nil || o.DeletedAt != nil, nil
}
