package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
)

// Retention defaults (per organisation settings may override them later).
const (
	// DefaultPayloadRetention is how long ledger payloads (message previews,
	// contact fields) are kept: 30 days is enough to investigate a complaint
	// about a message while keeping personal data short-lived.
	DefaultPayloadRetention = 30 * 24 * time.Hour
	// DefaultEntryRetention is how long entries are kept before pruning
	// behind a signed anchor: 12 months covers a yearly audit cycle.
	DefaultEntryRetention = 365 * 24 * time.Hour
	// DefaultRetentionInterval is how often RetentionJob runs.
	DefaultRetentionInterval = time.Hour
)

// Ledger kinds written by retention (the list of kinds is open).
const (
	KindLedgerPayloadsPurged = "ledger.payloads_purged"
	KindLedgerPruned         = "ledger.pruned"
)

// Tombstone reasons.
const (
	PurgeRetention = "retention"
	PurgeErasure   = "erasure"
)

// PurgeLedgerPayloads deletes org's ledger payloads stored before
// olderThan, leaving a tombstone for each (so exports mark them purged),
// and records a ledger.payloads_purged entry when any were deleted. Entries
// are untouched: the chain, the tree and every checkpoint still verify.
func (s *Store) PurgeLedgerPayloads(ctx context.Context, org string, olderThan time.Time) (int, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if _, err = tx.q.exec(ctx, `INSERT INTO ledger_payload_tombstones (org_id, hash, reason, purged_at)
			SELECT org_id, hash, CAST($3 AS text), CAST($4 AS timestamptz) FROM ledger_payloads WHERE org_id = $1 AND created_at < $2
			ON CONFLICT (org_id, hash) DO NOTHING`, org, olderThan, PurgeRetention, tx.now()); err != nil {
			return fmt.Errorf("purge ledger payloads of org %q: %w", org, err)
		}
		if n, err = tx.q.exec(ctx, `DELETE FROM ledger_payloads WHERE org_id = $1 AND created_at < $2`, org, olderThan); err != nil {
			return fmt.Errorf("purge ledger payloads of org %q: %w", org, err)
		}
		if n == 0 {
			return nil
		}
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindLedgerPayloadsPurged, Actor: ledger.GenesisActor,
			Attrs: map[string]any{"payloads": n, "reason": PurgeRetention, "before": olderThan.UTC().Format(time.RFC3339)}})
		return err
	})
	return int(n), err
}

// EraseContact deletes the ledger payloads of every entry that refers to
// contactID (refs "contact" or "contact_ref"), leaving tombstones, and
// records a contact.erased entry, in this transaction: callers delete the
// contact's own row and pepper-derived mapping in the same transaction.
// It returns how many payloads were deleted.
func (t *Tx) EraseContact(ctx context.Context, org, contactID string) (int, error) {
	if contactID == "" {
		return 0, herald.Invalid(herald.FieldError{Field: "contact", Message: "is required"})
	}
	refs, err := t.contactRefs(ctx, org, contactID)
	if err != nil {
		return 0, fmt.Errorf("erase contact %q: %w", contactID, err)
	}
	// payloadsOf selects the payload hashes of entries naming the contact;
	// its parameters are numbered after the first `first` arguments.
	payloadsOf := func(first int) (string, []any) {
		marks := make([]string, len(refs))
		args := make([]any, len(refs))
		for i, r := range refs {
			marks[i], args[i] = fmt.Sprintf("$%d", first+i+1), r
		}
		in := strings.Join(marks, ", ")
		return `SELECT e.payload_hash FROM ledger_entries e WHERE e.org_id = $1 AND e.payload_hash <> '' AND (` +
			t.jsonRef("e.refs", "contact") + ` IN (` + in + `) OR ` + t.jsonRef("e.refs", "contact_ref") + ` IN (` + in + `))`, args
	}
	sub, refArgs := payloadsOf(3)
	if _, err := t.q.exec(ctx, `INSERT INTO ledger_payload_tombstones (org_id, hash, reason, purged_at)
		SELECT org_id, hash, CAST($2 AS text), CAST($3 AS timestamptz) FROM ledger_payloads WHERE org_id = $1 AND hash IN (`+sub+`)
		ON CONFLICT (org_id, hash) DO NOTHING`, append([]any{org, PurgeErasure, t.now()}, refArgs...)...); err != nil {
		return 0, fmt.Errorf("erase contact %q: %w", contactID, err)
	}
	sub, refArgs = payloadsOf(1)
	n, err := t.q.exec(ctx, `DELETE FROM ledger_payloads WHERE org_id = $1 AND hash IN (`+sub+`)`, append([]any{org}, refArgs...)...)
	if err != nil {
		return 0, fmt.Errorf("erase contact %q: %w", contactID, err)
	}
	// Stored decision inputs hold the contact's consent facts: they go too.
	if _, err := t.EraseContactDecisions(ctx, org, contactID); err != nil {
		return 0, err
	}
	if _, err := t.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindContactErased, Actor: ledger.GenesisActor,
		Refs: map[string]string{"contact": contactID}, Attrs: map[string]any{"payloads": n}}); err != nil {
		return 0, err
	}
	return int(n), nil
}

// EraseContact runs Tx.EraseContact in its own transaction.
func (s *Store) EraseContact(ctx context.Context, org, contactID string) (int, error) {
	var n int
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		n, err = tx.EraseContact(ctx, org, contactID)
		return err
	})
	return n, err
}

// PruneLedger deletes org's entries older than before, up to the latest
// signed checkpoint whose last entry is older than before, keeping that
// checkpoint as the log's new trust anchor (docs/audit.md §6). In one
// transaction it stores the anchor (ledger.Anchor: signed note, hash of the
// last pruned entry, compact range, inclusion proof), deletes the pruned
// entries with their payloads and tombstones, and records a ledger.pruned
// entry. Roots, proofs and exports from the anchor on keep verifying. It
// returns nil when nothing can be pruned.
func (l *LedgerLogs) PruneLedger(ctx context.Context, org string, before time.Time) (*ledger.Anchor, error) {
	cur, err := l.Store.LatestLedgerAnchor(ctx, org)
	if err != nil {
		return nil, err
	}
	c, err := scanCheckpoint(l.Store.q.queryRow(ctx, `SELECT c.org_id, c.size, c.root, c.note, c.key_id, c.created_at
		FROM ledger_checkpoints c JOIN ledger_entries e ON e.org_id = c.org_id AND e.seq = c.size - 1
		WHERE c.org_id = $1 AND e.time < $2 ORDER BY c.size DESC LIMIT 1`, org, before))
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("prune ledger of org %q: %w", org, err)
	}
	if cur != nil && c.Size <= cur.Size {
		return nil, nil
	}
	tree, _, err := l.Tree(ctx, org)
	if err != nil {
		return nil, err
	}
	if err := checkAgainst(tree, org, &c); err != nil {
		return nil, err
	}
	es, err := l.Store.LedgerEntries(ctx, org, LedgerFilter{FromSeq: c.Size - 1, ToSeq: c.Size - 1, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("prune ledger of org %q: entry %d is missing", org, c.Size-1)
	}
	a, err := tree.Anchor(c.Size, es[0].Hash, []byte(c.Note))
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	err = l.Store.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.exec(ctx, `INSERT INTO ledger_anchors (org_id, size, anchor, created_at) VALUES ($1, $2, $3, $4)`,
			org, int64(a.Size), string(raw), tx.now()); err != nil {
			return fmt.Errorf("prune ledger of org %q: store anchor: %w", org, err)
		}
		sub := `SELECT payload_hash FROM ledger_entries WHERE org_id = $1 AND seq < $2 AND payload_hash <> ''`
		if _, err := tx.q.exec(ctx, `DELETE FROM ledger_payloads WHERE org_id = $1 AND hash IN (`+sub+`)`, org, int64(a.Size)); err != nil {
			return fmt.Errorf("prune ledger of org %q: payloads: %w", org, err)
		}
		if _, err := tx.q.exec(ctx, `DELETE FROM ledger_payload_tombstones WHERE org_id = $1 AND hash IN (`+sub+`)`, org, int64(a.Size)); err != nil {
			return fmt.Errorf("prune ledger of org %q: tombstones: %w", org, err)
		}
		if _, err := tx.q.exec(ctx, `DELETE FROM ledger_entries WHERE org_id = $1 AND seq < $2`, org, int64(a.Size)); err != nil {
			return fmt.Errorf("prune ledger of org %q: entries: %w", org, err)
		}
		_, err := tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindLedgerPruned, Actor: ledger.GenesisActor,
			Attrs: map[string]any{"size": a.Size, "before": before.UTC().Format(time.RFC3339)}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// RetentionJob applies retention to every org on a schedule: payloads
// older than Payloads are purged; when Entries > 0, entries older than it
// are pruned behind a signed checkpoint (Logs required). Zero values use
// DefaultPayloadRetention and DefaultRetentionInterval; entry pruning is
// opt-in (set Entries to DefaultEntryRetention).
type RetentionJob struct {
	Store    *Store
	Logs     *LedgerLogs
	Payloads time.Duration
	Entries  time.Duration
	// Decisions bounds how long stored decision inputs (for replay and
	// impact preview) are kept; DefaultDecisionRetention when zero.
	Decisions time.Duration
	Interval  time.Duration
	Log       *slog.Logger
	// Observe, when set, is told the result of every run (metrics: a
	// failing retention job is alerted on, see deploy/prometheus).
	Observe func(err error)
}

// DefaultDecisionRetention keeps decision inputs for a quarter: enough to
// replay any decision an auditor asks about soon after, and to preview a
// policy change against recent traffic; they hold consent facts, so not longer.
const DefaultDecisionRetention = 90 * 24 * time.Hour

// Run applies retention until ctx is cancelled.
func (j *RetentionJob) Run(ctx context.Context) error {
	iv := j.Interval
	if iv <= 0 {
		iv = DefaultRetentionInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		err := j.RunOnce(ctx)
		if ctx.Err() == nil && j.Observe != nil {
			j.Observe(err)
		}
		if err != nil && ctx.Err() == nil && j.Log != nil {
			j.Log.Error("ledger retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce applies retention to every org once.
func (j *RetentionJob) RunOnce(ctx context.Context) error {
	keep := j.Payloads
	if keep <= 0 {
		keep = DefaultPayloadRetention
	}
	orgs, err := j.Store.OrgIDs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	now := j.Store.Now()
	for _, org := range orgs {
		if _, err := j.Store.PurgeLedgerPayloads(ctx, org, now.Add(-keep)); err != nil {
			errs = append(errs, err)
		}
		if j.Entries > 0 && j.Logs != nil {
			if _, err := j.Logs.PruneLedger(ctx, org, now.Add(-j.Entries)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	decisions := j.Decisions
	if decisions <= 0 {
		decisions = DefaultDecisionRetention
	}
	if _, err := j.Store.PruneDecisionRecords(ctx, now.Add(-decisions)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
