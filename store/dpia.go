package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald/ledger"
)

// Evidence queries for the DPIA and the record of processing (dpia/). They
// count; they never return message text or contact fields.

// BasisCount is how many of an organisation's contacts hold a purpose under
// a legal basis.
type BasisCount struct {
	Purpose  string `json:"purpose"`
	Basis    string `json:"basis"`
	Contacts int    `json:"contacts"`
}

// ConsentBasisCounts counts org's consent records by purpose and legal basis.
func (q *queries) ConsentBasisCounts(ctx context.Context, org string) ([]BasisCount, error) {
	rs, err := q.q.query(ctx, `SELECT c.purpose, c.basis, count(*) FROM consents c
		JOIN contacts ct ON ct.id = c.contact_id WHERE ct.org_id = $1
		GROUP BY c.purpose, c.basis ORDER BY c.purpose, c.basis`, org)
	if err != nil {
		return nil, fmt.Errorf("count consents of org %q: %w", org, err)
	}
	defer rs.Close()
	out := []BasisCount{}
	for rs.Next() {
		var b BasisCount
		if err := rs.Scan(&b.Purpose, &b.Basis, &b.Contacts); err != nil {
			return nil, fmt.Errorf("count consents of org %q: %w", org, err)
		}
		out = append(out, b)
	}
	return out, rs.Err()
}

// ContactCounts is the size of an organisation's audience and the opt-outs
// it honours, by the channel the opt-out came through.
type ContactCounts struct {
	Contacts     int            `json:"contacts"`
	WithTimezone int            `json:"with_timezone"`
	WithLanguage int            `json:"with_language"`
	WithUsername int            `json:"with_username"`
	OptedOut     int            `json:"opted_out"`
	OptOutBy     map[string]int `json:"opt_out_by"`
}

// ContactCounts counts org's contacts, the optional fields they carry and
// their opt-outs.
func (q *queries) ContactCounts(ctx context.Context, org string) (ContactCounts, error) {
	c := ContactCounts{OptOutBy: map[string]int{}}
	err := q.q.queryRow(ctx, `SELECT count(*),
		coalesce(sum(CASE WHEN timezone <> '' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN language <> '' THEN 1 ELSE 0 END), 0),
		coalesce(sum(CASE WHEN username <> '' THEN 1 ELSE 0 END), 0)
		FROM contacts WHERE org_id = $1`, org).Scan(&c.Contacts, &c.WithTimezone, &c.WithLanguage, &c.WithUsername)
	if err != nil {
		return c, fmt.Errorf("count contacts of org %q: %w", org, err)
	}
	rs, err := q.q.query(ctx, `SELECT opt_out_source, count(*) FROM contacts
		WHERE org_id = $1 AND opted_out_at IS NOT NULL GROUP BY opt_out_source`, org)
	if err != nil {
		return c, fmt.Errorf("count opt-outs of org %q: %w", org, err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			src string
			n   int
		)
		if err := rs.Scan(&src, &n); err != nil {
			return c, fmt.Errorf("count opt-outs of org %q: %w", org, err)
		}
		if src == "" {
			src = "unspecified"
		}
		c.OptOutBy[src] += n
		c.OptedOut += n
	}
	return c, rs.Err()
}

// StatusCounts counts org's rows of table ("actions" or "accounts") by
// status, or its accounts by connector ("account_connectors"); for actions
// only those created in [from, to).
func (q *queries) StatusCounts(ctx context.Context, org, table string, from, to time.Time) (map[string]int, error) {
	var sql string
	args := []any{org}
	switch table {
	case "actions":
		sql = `SELECT status, count(*) FROM actions WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY status`
		args = append(args, from, to)
	case "accounts":
		sql = `SELECT status, count(*) FROM accounts WHERE org_id = $1 GROUP BY status`
	case "account_connectors":
		sql = `SELECT connector, count(*) FROM accounts WHERE org_id = $1 GROUP BY connector`
	default:
		return nil, fmt.Errorf("status counts: unknown table %q", table)
	}
	rs, err := q.q.query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("count %s of org %q: %w", table, org, err)
	}
	defer rs.Close()
	out := map[string]int{}
	for rs.Next() {
		var (
			st string
			n  int
		)
		if err := rs.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count %s of org %q: %w", table, org, err)
		}
		out[st] = n
	}
	return out, rs.Err()
}

// LastLedgerEntryAny returns org's latest entry of any kind, or nil.
func (q *queries) LastLedgerEntryAny(ctx context.Context, org string) (*ledger.Entry, error) {
	return q.LastLedgerEntry(ctx, org, "")
}

// LastLedgerEntry returns org's latest entry of kind ("" = any kind), or
// nil when there is none.
func (q *queries) LastLedgerEntry(ctx context.Context, org, kind string) (*ledger.Entry, error) {
	var (
		e           ledger.Entry
		seq         int64
		refs, attrs *string
	)
	err := q.q.queryRow(ctx, `SELECT org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash
		FROM ledger_entries WHERE org_id = $1 AND ($2 = '' OR kind = $2) ORDER BY seq DESC LIMIT 1`, org, kind).
		Scan(&e.Org, &seq, &e.Time, &e.Kind, &e.Actor, &refs, &attrs, &e.PayloadHash, &e.PrevHash, &e.Hash)
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last %s entry of org %q: %w", kind, org, err)
	}
	e.Seq = uint64(seq)
	if err := decodeRefsAttrs(&e, refs, attrs); err != nil {
		return nil, err
	}
	return &e, nil
}

// CountLedgerEntries counts org's entries of kind recorded in [from, to).
func (q *queries) CountLedgerEntries(ctx context.Context, org, kind string, from, to time.Time) (int, error) {
	var n int
	err := q.q.queryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE org_id = $1 AND kind = $2 AND time >= $3 AND time < $4`,
		org, kind, from, to).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s entries of org %q: %w", kind, org, err)
	}
	return n, nil
}

// SchemaTables lists the tables of the live schema, sorted, so the DPIA's
// data map is checked against what the database really holds.
func (q *queries) SchemaTables(ctx context.Context) ([]string, error) {
	sql := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if q.d.name == "postgres" {
		sql = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rs, err := q.q.query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("list schema tables: %w", err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var name string
		if err := rs.Scan(&name); err != nil {
			return nil, fmt.Errorf("list schema tables: %w", err)
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out, rs.Err()
}

// DPIAPlan returns org's stored DPIA action plan (a JSON array), or nil
// when the organisation has never edited it.
func (q *queries) DPIAPlan(ctx context.Context, org string) (json.RawMessage, error) {
	var raw string
	err := q.q.queryRow(ctx, `SELECT plan FROM dpia_plans WHERE org_id = $1`, org).Scan(&raw)
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read DPIA plan of org %q: %w", org, err)
	}
	return json.RawMessage(raw), nil
}

// KindDPIAPlanChanged records an edit of the DPIA action plan.
const KindDPIAPlanChanged = "dpia.plan_changed"

// SetDPIAPlan replaces org's DPIA action plan (validated by the caller) and
// records a dpia.plan_changed entry, in one transaction.
func (s *Store) SetDPIAPlan(ctx context.Context, org string, plan json.RawMessage, hash, actor string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `INSERT INTO dpia_plans (org_id, plan, updated_at, updated_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			org, string(plan), tx.now(), actor); err != nil {
			return fmt.Errorf("store DPIA plan of org %q: %w", org, err)
		}
		_, err := tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindDPIAPlanChanged, Actor: actor,
			Attrs: map[string]any{"plan_hash": hash}})
		return err
	})
}

// RecordLedger appends one entry to org's chain in its own transaction
// (for records that change nothing else, such as dpia.generated).
func (s *Store) RecordLedger(ctx context.Context, org string, r LedgerRecord) (ledger.Entry, error) {
	var e ledger.Entry
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		e, err = tx.AppendLedger(ctx, org, r)
		return err
	})
	return e, err
}

// FindLedgerEntry returns org's latest entry of kind whose attrs[key] is
// value, or nil when there is none.
func (q *queries) FindLedgerEntry(ctx context.Context, org, kind, key, value string) (*ledger.Entry, error) {
	var (
		e           ledger.Entry
		seq         int64
		refs, attrs *string
	)
	err := q.q.queryRow(ctx, `SELECT org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash
		FROM ledger_entries WHERE org_id = $1 AND kind = $2 AND `+q.jsonRef("attrs", key)+` = $3 ORDER BY seq DESC LIMIT 1`,
		org, kind, value).
		Scan(&e.Org, &seq, &e.Time, &e.Kind, &e.Actor, &refs, &attrs, &e.PayloadHash, &e.PrevHash, &e.Hash)
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find %s entry of org %q: %w", kind, org, err)
	}
	e.Seq = uint64(seq)
	if err := decodeRefsAttrs(&e, refs, attrs); err != nil {
		return nil, err
	}
	return &e, nil
}

// Pseudonymised reports whether ledger refs to people are keyed hashes
// (SetPseudonymizer was called), for the DPIA's evidence.
func (s *Store) Pseudonymised() bool { return s.pseudo != nil }
