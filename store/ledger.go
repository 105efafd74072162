package store

import (
	"context"
	"encoding/json"
	"fmt"

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
func (t *Tx) AppendLedger(ctx context.Context, org string, r LedgerRecord) (ledger.Entry, error) {
	prev, err := t.ledgerHead(ctx, org)
	if err != nil {
		return ledger.Entry{}, err
	}
	payloadHash := ""
	if r.Payload != nil {
		salt := ledger.NewSalt()
		payloadHash = ledger.HashPayload(salt, r.Payload)
		if _, err := t.q.exec(ctx, `INSERT INTO ledger_payloads (org_id, hash, salt, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
			org, payloadHash, salt, r.Payload, t.now()); err != nil {
			return ledger.Entry{}, fmt.Errorf("ledger: store payload: %w", err)
		}
	}
	e, err := ledger.Next(prev, r.Kind, r.Actor, t.now(), r.Refs, r.Attrs, payloadHash)
	if err != nil {
		return e, err
	}
	if err := t.insertEntry(ctx, e); err != nil {
		return e, err
	}
	if _, err := t.q.exec(ctx, `UPDATE ledger_heads SET seq = $2, hash = $3, time = $4 WHERE org_id = $1`, org, int64(e.Seq), e.Hash, e.Time); err != nil {
		return e, fmt.Errorf("ledger: advance head: %w", err)
	}
	return e, nil
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
	refs, attrs, err := encodeRefsAttrs(e)
	if err != nil {
		return err
	}
	_, err = t.q.exec(ctx, `INSERT INTO ledger_entries (org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		e.Org, int64(e.Seq), e.Time, e.Kind, e.Actor, refs, attrs, e.PayloadHash, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("ledger: append %s entry %d: %w", e.Kind, e.Seq, err)
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
	Limit   int
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
	rs, err := q.q.query(ctx, `SELECT org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash
		FROM ledger_entries WHERE org_id = $1 AND seq >= $2 AND seq <= $3 AND ($4 = '' OR kind = $4)
		ORDER BY seq LIMIT $5`, org, int64(f.FromSeq), to, f.Kind, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rs.Close()
	out := []ledger.Entry{}
	for rs.Next() {
		var (
			e           ledger.Entry
			seq         int64
			refs, attrs *string
		)
		if err := rs.Scan(&e.Org, &seq, &e.Time, &e.Kind, &e.Actor, &refs, &attrs, &e.PayloadHash, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		e.Seq = uint64(seq)
		if refs != nil {
			if err := json.Unmarshal([]byte(*refs), &e.Refs); err != nil {
				return nil, fmt.Errorf("read ledger entry %d refs: %w", seq, err)
			}
		}
		if attrs != nil {
			if err := json.Unmarshal([]byte(*attrs), &e.Attrs); err != nil {
				return nil, fmt.Errorf("read ledger entry %d attrs: %w", seq, err)
			}
		}
		out = append(out, e)
	}
	return out, rs.Err()
}
