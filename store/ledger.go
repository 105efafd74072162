package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/heraldhq/herald/ledger"
)

// LedgerRecord is what a change asks the ledger to record.
type LedgerRecord struct {
	Kind  string
	Actor string
	Refs  map[string]string
	Attrs map[string]any
	// Payload is personal content (message text, contact fields). It is
	// stored apart from the chain, keyed by a salted hash, so retention and
	// erasure can delete it while the chain still verifies.
	Payload []byte
}

// AppendLedger appends one entry to org's chain, in this transaction. The
// org's head row is locked (FOR UPDATE on PostgreSQL; SQLite serialises all
// writers), so appends are serialised per organisation and never across
// organisations. The entry commits or rolls back with the change it records:
// that is the write-ahead audit invariant.
//
// On PostgreSQL an append costs two round trips: the locked head read, and
// one statement that inserts the payload and the entry and advances the head.
// Callers recording many entries at once use AppendLedgerBatch.
func (t *Tx) AppendLedger(ctx context.Context, org string, r LedgerRecord) (ledger.Entry, error) {
	es, err := t.AppendLedgerBatch(ctx, org, []LedgerRecord{r})
	if err != nil {
		return ledger.Entry{}, err
	}
	return es[0], nil
}

// ledgerBatchRows bounds one multi-row INSERT (10 parameters per row, far
// below both databases' parameter limits).
const ledgerBatchRows = 500

// AppendLedgerBatch appends records to org's chain in order, in this
// transaction (group commit): one locked head read, multi-row inserts, one
// head update. Semantics are those of AppendLedger for each record.
func (t *Tx) AppendLedgerBatch(ctx context.Context, org string, rs []LedgerRecord) ([]ledger.Entry, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	prev, err := t.ledgerHead(ctx, org)
	if err != nil {
		return nil, err
	}
	now := t.now()
	out := make([]ledger.Entry, len(rs))
	type payload struct {
		hash       string
		salt, data []byte
	}
	var payloads []payload
	for i, r := range rs {
		payloadHash := ""
		if r.Payload != nil {
			salt := ledger.NewSalt()
			payloadHash = ledger.HashPayload(salt, r.Payload)
			payloads = append(payloads, payload{payloadHash, salt, r.Payload})
		}
		refs, err := t.pseudonymize(ctx, org, r.Refs)
		if err != nil {
			return nil, err
		}
		e, err := ledger.Next(prev, r.Kind, r.Actor, now, refs, withTraceID(ctx, r.Attrs), payloadHash)
		if err != nil {
			return nil, err
		}
		out[i], prev = e, e
	}
	last := out[len(out)-1]
	if t.d.name == "postgres" && len(out) == 1 && len(payloads) <= 1 {
		// One round trip: payload, entry and head in one statement.
		e := out[0]
		refs, attrs, err := encodeRefsAttrs(e)
		if err != nil {
			return nil, err
		}
		var p payload
		if len(payloads) == 1 {
			p = payloads[0]
		}
		err = t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("ledger: append %s entry %d: %w", e.Kind, e.Seq, err) }, `WITH pay AS (
				INSERT INTO ledger_payloads (org_id, hash, salt, data, created_at)
				SELECT $1, $8, $11::bytea, $12::bytea, $3 WHERE $8 <> ''
			), ent AS (
				INSERT INTO ledger_entries (org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			)
			UPDATE ledger_heads SET seq = $2, hash = $10, time = $3 WHERE org_id = $1`,
			org, int64(e.Seq), e.Time, e.Kind, e.Actor, refs, attrs, e.PayloadHash, e.PrevHash, e.Hash, p.salt, p.data)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	for len(payloads) > 0 {
		n := min(len(payloads), ledgerBatchRows)
		var b strings.Builder
		b.WriteString(`INSERT INTO ledger_payloads (org_id, hash, salt, data, created_at) VALUES `)
		args := []any{org, now}
		for i, p := range payloads[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($1, $%d, $%d, $%d, $2)", len(args)+1, len(args)+2, len(args)+3)
			args = append(args, p.hash, p.salt, p.data)
		}
		if err := t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("ledger: store payloads: %w", err) }, b.String(), args...); err != nil {
			return nil, err
		}
		payloads = payloads[n:]
	}
	if err := t.insertEntries(ctx, out); err != nil {
		return nil, err
	}
	if err := t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("ledger: advance head: %w", err) },
		`UPDATE ledger_heads SET seq = $2, hash = $3, time = $4 WHERE org_id = $1`, org, int64(last.Seq), last.Hash, last.Time); err != nil {
		return nil, err
	}
	return out, nil
}

// ledgerHead returns org's latest entry (hash and seq), creating the genesis
// entry on first use, with the head row locked for this transaction.
func (t *Tx) ledgerHead(ctx context.Context, org string) (ledger.Entry, error) {
	forUpdate := ""
	if t.d.name == "postgres" {
		forUpdate = " FOR UPDATE"
	}
	var (
		seq  int64
		prev = ledger.Entry{Org: org}
	)
	err := t.q.queryRow(ctx, `SELECT seq, hash, time FROM ledger_heads WHERE org_id = $1`+forUpdate, org).Scan(&seq, &prev.Hash, &prev.Time)
	if err == nil {
		prev.Seq = uint64(seq)
		return prev, nil
	}
	if err != errNoRows {
		return prev, fmt.Errorf("ledger: read head: %w", err)
	}
	g, err := ledger.Genesis(org, t.now())
	if err != nil {
		return g, err
	}
	// ON CONFLICT DO NOTHING + re-read: two replicas may create the genesis
	// at once; exactly one wins and both continue from it.
	n, err := t.q.exec(ctx, `INSERT INTO ledger_heads (org_id, seq, hash, time) VALUES ($1, 0, $2, $3) ON CONFLICT (org_id) DO NOTHING`, org, g.Hash, g.Time)
	if err != nil {
		return g, fmt.Errorf("ledger: create head: %w", err)
	}
	if n == 0 {
		return t.ledgerHead(ctx, org)
	}
	if err := t.insertEntry(ctx, g); err != nil {
		return g, err
	}
	return g, nil
}

func (t *Tx) insertEntry(ctx context.Context, e ledger.Entry) error {
	return t.insertEntries(ctx, []ledger.Entry{e})
}

// insertEntries inserts sealed entries with multi-row INSERTs.
func (t *Tx) insertEntries(ctx context.Context, es []ledger.Entry) error {
	for len(es) > 0 {
		n := min(len(es), ledgerBatchRows)
		chunk := es[:n]
		es = es[n:]
		var b strings.Builder
		b.WriteString(`INSERT INTO ledger_entries (org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash) VALUES `)
		args := make([]any, 0, 10*n)
		for i, e := range chunk {
			refs, attrs, err := encodeRefsAttrs(e)
			if err != nil {
				return err
			}
			if i > 0 {
				b.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9, k+10)
			args = append(args, e.Org, int64(e.Seq), e.Time, e.Kind, e.Actor, refs, attrs, e.PayloadHash, e.PrevHash, e.Hash)
		}
		kind, seq := chunk[0].Kind, chunk[0].Seq
		if err := t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("ledger: append %s entry %d (+%d): %w", kind, seq, n-1, err) },
			b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

func encodeRefsAttrs(e ledger.Entry) (refs, attrs *string, err error) {
	enc := func(v any, empty bool) (*string, error) {
		if empty {
			return nil, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("ledger: encode entry %d: %w", e.Seq, err)
		}
		s := string(b)
		return &s, nil
	}
	if refs, err = enc(e.Refs, len(e.Refs) == 0); err != nil {
		return nil, nil, err
	}
	attrs, err = enc(e.Attrs, len(e.Attrs) == 0)
	return refs, attrs, err
}

// LedgerFilter selects entries.
type LedgerFilter struct {
	FromSeq uint64 // inclusive
	ToSeq   uint64 // inclusive; 0 = no bound
	Kind    string
	Action  string // entries whose refs.action is this action id
	Limit   int    // default 1000
}

// jsonRef is the SQL expression for refs.<key> as text (the expression the
// 0004 indexes are built on).
func (q *queries) jsonRef(col, key string) string {
	if q.d.name == "postgres" {
		return col + "->>'" + key + "'"
	}
	return "json_extract(" + col + ", '$." + key + "')"
}

// LedgerEntries returns org's entries in seq order.
func (q *queries) LedgerEntries(ctx context.Context, org string, f LedgerFilter) ([]ledger.Entry, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	to := int64(f.ToSeq)
	if f.ToSeq == 0 {
		to = 1<<62 - 1
	}
	sql := `SELECT org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash
		FROM ledger_entries WHERE org_id = $1 AND seq >= $2 AND seq <= $3 AND ($4 = '' OR kind = $4)`
	args := []any{org, int64(f.FromSeq), to, f.Kind, f.Limit}
	if f.Action != "" {
		sql += ` AND ` + q.jsonRef("refs", "action") + ` = $6`
		args = append(args, f.Action)
	}
	rs, err := q.q.query(ctx, sql+` ORDER BY seq LIMIT $5`, args...)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return scanLedgerEntries(rs, "read ledger")
}

// scanLedgerEntries reads rows of (org_id, seq, time, kind, actor, refs,
// attrs, payload_hash, prev_hash, hash) and closes them; what names the
// caller in errors.
func scanLedgerEntries(rs rows, what string) ([]ledger.Entry, error) {
	defer rs.Close()
	out := []ledger.Entry{}
	for rs.Next() {
		var (
			e           ledger.Entry
			seq         int64
			refs, attrs *string
		)
		if err := rs.Scan(&e.Org, &seq, &e.Time, &e.Kind, &e.Actor, &refs, &attrs, &e.PayloadHash, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		e.Seq = uint64(seq)
		if err := decodeRefsAttrs(&e, refs, attrs); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

func decodeRefsAttrs(e *ledger.Entry, refs, attrs *string) error {
	if refs != nil {
		if err := json.Unmarshal([]byte(*refs), &e.Refs); err != nil {
			return fmt.Errorf("read ledger entry %d refs: %w", e.Seq, err)
		}
	}
	if attrs != nil {
		if err := json.Unmarshal([]byte(*attrs), &e.Attrs); err != nil {
			return fmt.Errorf("read ledger entry %d attrs: %w", e.Seq, err)
		}
	}
	return nil
}

// Pseudonymizer turns a person's id into a keyed reference (HMAC with the
// organisation's pepper from the secret store) for the ledger, and lists a
// value's references under every pepper version for erasure.
type Pseudonymizer interface {
	Ref(ctx context.Context, org, kind, value string) (string, error)
	AllRefs(ctx context.Context, org, kind, value string) ([]string, error)
}

// personRefs are the ref keys that name a person; their values are
// pseudonymised before they enter the chain.
var personRefs = []string{"contact"}

// SetPseudonymizer makes the ledger record people by keyed references
// instead of their contact ids. Without one (tests, tools), contact ids are
// recorded as they are.
func (s *Store) SetPseudonymizer(p Pseudonymizer) { s.pseudo = p; s.queries.pseudo = p }

func (q *queries) pseudonymize(ctx context.Context, org string, refs map[string]string) (map[string]string, error) {
	if q.pseudo == nil || len(refs) == 0 {
		return refs, nil
	}
	var out map[string]string
	for _, k := range personRefs {
		v, ok := refs[k]
		if !ok || v == "" {
			continue
		}
		ref, err := q.pseudo.Ref(ctx, org, k, v)
		if err != nil {
			return nil, fmt.Errorf("ledger: pseudonymise %s ref: %w", k, err)
		}
		if out == nil {
			out = maps.Clone(refs)
		}
		out[k] = ref
	}
	if out == nil {
		return refs, nil
	}
	return out, nil
}

// contactRefs are the values a contact can appear under in refs: its id,
// and its pseudonym under every pepper version.
func (q *queries) contactRefs(ctx context.Context, org, contactID string) ([]string, error) {
	refs := []string{contactID}
	if q.pseudo == nil {
		return refs, nil
	}
	more, err := q.pseudo.AllRefs(ctx, org, "contact", contactID)
	if err != nil {
		return nil, err
	}
	return append(refs, more...), nil
}
