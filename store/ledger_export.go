package store

import (
	"context"
	"fmt"
	"io"
	"iter"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
)

// ledgerExportPage is how many entries one export query reads: memory
// stays at one page (≈ 1–2 MB with payloads of message size), whatever the
// length of the log.
const ledgerExportPage = 2000

// LedgerExportOptions selects the range of an export.
type LedgerExportOptions struct {
	// From is the first seq wanted. A range that does not start at genesis
	// starts at the latest signed checkpoint ≤ From (or at the pruning
	// anchor), whose anchor the header then carries, so the export still
	// verifies on its own.
	From uint64
	// To is one past the last seq wanted; 0 means the committed size.
	To uint64
}

// LedgerExportHeader resolves the range of an export of org's log: the
// header ExportLedger writes first (From and To adjusted, anchor built).
func (l *LedgerLogs) LedgerExportHeader(ctx context.Context, org string, o LedgerExportOptions) (ledger.Header, error) {
	size, err := l.Store.LedgerSize(ctx, org)
	if err != nil {
		return ledger.Header{}, err
	}
	if size == 0 {
		return ledger.Header{}, herald.Errorf(herald.CodeNotFound, "the ledger of this organisation has no entries yet")
	}
	to := o.To
	if to == 0 || to > size {
		to = size
	}
	if o.From >= to {
		return ledger.Header{}, herald.Invalid(herald.FieldError{Field: "from", Message: fmt.Sprintf("must be below to (%d)", to)})
	}
	h := ledger.Header{Version: ledger.ExportVersion, Org: org, Origin: l.Origin(org), To: to}
	// The origin the log was signed under wins over this process's
	// configuration (a CLI export names the log the server signed).
	if c, err := l.Store.LatestLedgerCheckpoint(ctx, org); err == nil {
		if i := strings.Index(c.Note, "\n"); i > 0 {
			h.Origin = c.Note[:i]
		}
	}
	pruned, err := l.Store.LatestLedgerAnchor(ctx, org)
	if err != nil {
		return h, err
	}
	if pruned != nil && o.From <= pruned.Size {
		h.From, h.Anchor = pruned.Size, pruned
		return h, nil
	}
	if o.From == 0 {
		return h, nil
	}
	c, err := l.Store.latestCheckpointAtMost(ctx, org, o.From)
	if err != nil {
		return h, err
	}
	if c == nil || (pruned != nil && c.Size <= pruned.Size) {
		if pruned != nil {
			h.From, h.Anchor = pruned.Size, pruned
		}
		return h, nil
	}
	tree, _, err := l.Tree(ctx, org)
	if err != nil {
		return h, err
	}
	es, err := l.Store.LedgerEntries(ctx, org, LedgerFilter{FromSeq: c.Size - 1, ToSeq: c.Size - 1, Limit: 1})
	if err != nil {
		return h, err
	}
	if len(es) != 1 {
		return h, fmt.Errorf("ledger export of org %q: entry %d is missing", org, c.Size-1)
	}
	a, err := tree.Anchor(c.Size, es[0].Hash, []byte(c.Note))
	if err != nil {
		return h, err
	}
	h.From, h.Anchor = c.Size, a
	return h, nil
}

// ExportLedger streams org's log as a JSONL export (docs/audit.md §4) to w:
// the header, then every entry in seq order, each followed by its payload
// line (data while retained, "purged" after retention or erasure), with
// every signed checkpoint in the range right after the entry it ends at.
// Rows are read in pages, so memory is constant in the length of the log.
func (l *LedgerLogs) ExportLedger(ctx context.Context, org string, o LedgerExportOptions, w io.Writer) (ledger.Header, error) {
	h, err := l.LedgerExportHeader(ctx, org, o)
	if err != nil {
		return h, err
	}
	x := ledger.NewExportWriter(w)
	if err := x.WriteHeader(h); err != nil {
		return h, err
	}
	// Checkpoints with From < size ≤ To, merged in by size. A whole-log
	// export also carries checkpoints beyond the stored head, so a log whose
	// tail (and head row) was cut back is reported as truncated.
	cpHi := h.To
	if o.To == 0 {
		cpHi = 1 << 62
	}
	cps, cpNext := []LedgerCheckpoint(nil), h.From+1
	nextCP := func() (*LedgerCheckpoint, error) {
		if len(cps) == 0 && cpNext <= cpHi {
			var err error
			if cps, err = l.Store.LedgerCheckpoints(ctx, org, cpNext, cpHi, ledgerExportPage); err != nil {
				return nil, err
			}
			if len(cps) == 0 {
				cpNext = cpHi + 1
			} else {
				cpNext = cps[len(cps)-1].Size + 1
			}
		}
		if len(cps) == 0 {
			return nil, nil
		}
		return &cps[0], nil
	}
	for next := h.From; next < h.To; {
		if err := ctx.Err(); err != nil {
			return h, err
		}
		rows, err := l.Store.exportPage(ctx, org, next, h.To)
		if err != nil {
			return h, err
		}
		if len(rows) == 0 {
			break // the tail is gone: the checkpoints below say so
		}
		for _, r := range rows {
			if r.e.Seq != next {
				// A hole (a deleted or moved entry) is what tampering
				// looks like: the ExportWriter refuses to write it, so the
				// row goes out as is and the stream ends; Verify reports
				// the first missing seq.
				if err := x.Flush(); err != nil {
					return h, err
				}
				return h, writeRawEntry(w, r.e)
			}
			if err := x.WriteEntry(r.e); err != nil {
				return h, err
			}
			if r.e.PayloadHash != "" {
				switch {
				case r.salt != nil:
					err = x.WritePayload(ledger.PayloadRecord{Hash: r.e.PayloadHash, Salt: r.salt, Data: r.data})
				case r.purged:
					err = x.WritePayload(ledger.PayloadRecord{Hash: r.e.PayloadHash, Purged: true})
				}
				if err != nil {
					return h, err
				}
			}
			for {
				c, err := nextCP()
				if err != nil {
					return h, err
				}
				if c == nil || c.Size > r.e.Seq+1 {
					break
				}
				if err := x.WriteCheckpoint(ledger.CheckpointRecord{Size: c.Size, Note: c.Note}); err != nil {
					return h, err
				}
				cps = cps[1:]
			}
			next = r.e.Seq + 1
		}
	}
	// Checkpoints beyond the last exported entry (a truncated log): written
	// so the verifier sees what was signed.
	for {
		c, err := nextCP()
		if err != nil {
			return h, err
		}
		if c == nil {
			break
		}
		if err := x.WriteCheckpoint(ledger.CheckpointRecord{Size: c.Size, Note: c.Note}); err != nil {
			return h, err
		}
		cps = cps[1:]
	}
	return h, x.Flush()
}

type exportRow struct {
	e          ledger.Entry
	salt, data []byte
	purged     bool
}

func (q *queries) exportPage(ctx context.Context, org string, from, to uint64) ([]exportRow, error) {
	rs, err := q.q.query(ctx, `SELECT e.seq, e.time, e.kind, e.actor, e.refs, e.attrs, e.payload_hash, e.prev_hash, e.hash,
			p.salt, p.data, t.reason
		FROM ledger_entries e
		LEFT JOIN ledger_payloads p ON p.org_id = e.org_id AND p.hash = e.payload_hash
		LEFT JOIN ledger_payload_tombstones t ON t.org_id = e.org_id AND t.hash = e.payload_hash
		WHERE e.org_id = $1 AND e.seq >= $2 AND e.seq < $3 ORDER BY e.seq LIMIT $4`, org, int64(from), int64(to), ledgerExportPage)
	if err != nil {
		return nil, fmt.Errorf("export ledger of org %q from %d: %w", org, from, err)
	}
	defer rs.Close()
	out := make([]exportRow, 0, ledgerExportPage)
	for rs.Next() {
		var (
			r           exportRow
			seq         int64
			refs, attrs *string
			reason      *string
		)
		if err := rs.Scan(&seq, &r.e.Time, &r.e.Kind, &r.e.Actor, &refs, &attrs, &r.e.PayloadHash, &r.e.PrevHash, &r.e.Hash,
			&r.salt, &r.data, &reason); err != nil {
			return nil, fmt.Errorf("export ledger of org %q: %w", org, err)
		}
		r.e.Seq, r.e.Org, r.purged = uint64(seq), org, reason != nil
		if err := decodeRefsAttrs(&r.e, refs, attrs); err != nil {
			return nil, err
		}
		if r.salt != nil && r.data == nil {
			r.data = []byte{}
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// LedgerEntriesRange iterates over org's entries [from, to) in seq order,
// reading pages (for the CSV view of an export).
func (q *queries) LedgerEntriesRange(ctx context.Context, org string, from, to uint64) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		for next := from; next < to; {
			es, err := q.LedgerEntries(ctx, org, LedgerFilter{FromSeq: next, ToSeq: to - 1, Limit: ledgerExportPage})
			if err != nil {
				yield(ledger.Entry{}, err)
				return
			}
			if len(es) == 0 {
				return
			}
			for _, e := range es {
				if !yield(e, nil) {
					return
				}
			}
			next = es[len(es)-1].Seq + 1
		}
	}
}

// VerifyLedger verifies org's stored log as an auditor would verify an
// export of it (ledger.Verify over ExportLedger, streamed through a pipe in
// constant memory) against the given public keys.
func (l *LedgerLogs) VerifyLedger(ctx context.Context, org string, o LedgerExportOptions, verifiers note.Verifiers) (ledger.Report, error) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, err := l.ExportLedger(ctx, org, o, pw)
		pw.CloseWithError(err)
	}()
	rep, err := ledger.Verify(ctx, pr, verifiers)
	pr.CloseWithError(io.ErrClosedPipe)
	return rep, err
}

// writeRawEntry writes an entry line without the ExportWriter's ordering
// checks (for the one out-of-order row of a damaged log).
func writeRawEntry(w io.Writer, e ledger.Entry) error {
	b, err := ledger.MarshalEntryLine(e)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
