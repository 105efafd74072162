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

// Retention defaults: what an organisation without its own retention
// configuration gets (RetentionConfig, retention_config.go).
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

// RetentionJob applies each organisation's retention configuration
// (Store.Retention; the defaults when it set none) on a schedule. Per
// organisation and run it purges ledger payloads and the content of finished
// actions older than payloads_days (and the content of delivered actions at
// once when drop_content_after_delivery is set), drops receipts older than
// receipts_days, deletes decision inputs older than decision_inputs_days,
// prunes ledger entries older than ledger_entries_days behind the latest
// signed checkpoint before the cut-off (Logs required), and records a
// retention.ran entry with the counts: every run that removed something,
// and at least once a day otherwise, so the ledger shows that retention runs.
type RetentionJob struct {
	Store *Store
	// Logs prunes entries behind signed anchors; without it entries are
	// kept (and the job logs so once per run).
	Logs     *LedgerLogs
	Interval time.Duration
	Log      *slog.Logger
	// Observe, when set, is told the result of every run (metrics: a
	// failing retention job is alerted on, see deploy/prometheus).
	Observe func(err error)
}

// DefaultDecisionRetention keeps decision inputs for a quarter: enough to
// replay any decision an auditor asks about soon after, and to preview a
// policy change against recent traffic; they hold consent facts, so not longer.
const DefaultDecisionRetention = 90 * 24 * time.Hour

// retentionHeartbeat is how often a run that removed nothing is recorded.
const retentionHeartbeat = 24 * time.Hour

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

// RetentionCounts is what one run removed for one organisation.
type RetentionCounts struct {
	Payloads       int64 `json:"payloads"`        // ledger payloads purged (age or drop-after-delivery)
	Contents       int64 `json:"contents"`        // action contents (previews) removed
	Receipts       int64 `json:"receipts"`        // action receipts removed
	DecisionInputs int64 `json:"decision_inputs"` // stored decision inputs deleted
	// PrunedBefore is the new anchor size when entries were pruned (0: none).
	PrunedBefore uint64 `json:"pruned_before"`
}

func (c RetentionCounts) any() bool {
	return c.Payloads+c.Contents+c.Receipts+c.DecisionInputs > 0 || c.PrunedBefore > 0
}

// RunOnce applies retention to every org once.
func (j *RetentionJob) RunOnce(ctx context.Context) error {
	orgs, err := j.Store.OrgIDs(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, org := range orgs {
		if _, err := j.RunOrg(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// days converts a configured number of days to a duration.
func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// RunOrg applies org's retention configuration once and returns what it
// removed.
func (j *RetentionJob) RunOrg(ctx context.Context, org string) (RetentionCounts, error) {
	var c RetentionCounts
	cfg, err := j.Store.Retention(ctx, org)
	if err != nil {
		return c, err
	}
	now := j.Store.Now()
	n, err := j.Store.PurgeLedgerPayloads(ctx, org, now.Add(-days(cfg.PayloadsDays)))
	if err != nil {
		return c, err
	}
	c.Payloads += int64(n)
	err = j.Store.InTx(ctx, func(tx *Tx) error {
		var err error
		if c.Contents, c.Receipts, c.DecisionInputs, err = tx.applyRowRetention(ctx, org, cfg.RetentionConfig, now); err != nil {
			return err
		}
		if !cfg.DropContentAfterDelivery {
			return nil
		}
		n, err := tx.purgeDeliveredPayloads(ctx, org)
		c.Payloads += n
		return err
	})
	if err != nil {
		return c, fmt.Errorf("retention of org %q: %w", org, err)
	}
	if j.Logs != nil {
		a, err := j.Logs.PruneLedger(ctx, org, now.Add(-days(cfg.LedgerEntriesDays)))
		if err != nil {
			return c, err
		}
		if a != nil {
			c.PrunedBefore = a.Size
		}
	} else if j.Log != nil {
		j.Log.Warn("ledger retention: no ledger logs configured, entries are not pruned")
	}
	return c, j.record(ctx, org, cfg.RetentionConfig, c, now)
}

// terminalStatuses are the statuses after which an action's content and
// receipt serve only the audit trail.
var terminalStatuses = []herald.Status{herald.StatusDelivered, herald.StatusFailed, herald.StatusDenied,
	herald.StatusCancelled, herald.StatusExpired}

// applyRowRetention trims org's action contents, receipts and decision
// inputs by cfg.
func (t *Tx) applyRowRetention(ctx context.Context, org string, cfg RetentionConfig, now time.Time) (contents, receipts, decisions int64, err error) {
	args := []any{org, nil}
	marks := make([]string, len(terminalStatuses))
	for i, st := range terminalStatuses {
		args = append(args, string(st))
		marks[i] = fmt.Sprintf("$%d", i+3)
	}
	finished := `org_id = $1 AND updated_at < $2 AND status IN (` + strings.Join(marks, ", ") + `)`
	args[1] = now.Add(-days(cfg.PayloadsDays))
	if contents, err = t.q.exec(ctx, `UPDATE actions SET content = '{}' WHERE `+finished+` AND content <> '{}'`, args...); err != nil {
		return 0, 0, 0, fmt.Errorf("action contents: %w", err)
	}
	if cfg.DropContentAfterDelivery {
		n, err := t.q.exec(ctx, `UPDATE actions SET content = '{}' WHERE org_id = $1 AND status = $2 AND content <> '{}'`,
			org, string(herald.StatusDelivered))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("delivered contents: %w", err)
		}
		contents += n
	}
	args[1] = now.Add(-days(cfg.ReceiptsDays))
	if receipts, err = t.q.exec(ctx, `UPDATE actions SET receipt = NULL WHERE `+finished+` AND receipt IS NOT NULL`, args...); err != nil {
		return 0, 0, 0, fmt.Errorf("receipts: %w", err)
	}
	if decisions, err = t.q.exec(ctx, `DELETE FROM decision_records WHERE org_id = $1 AND at < $2`,
		org, now.Add(-days(cfg.DecisionInputsDays))); err != nil {
		return 0, 0, 0, fmt.Errorf("decision inputs: %w", err)
	}
	return contents, receipts, decisions, nil
}

// purgeDeliveredPayloads deletes (and tombstones) the ledger payloads of
// entries about org's delivered actions: with drop_content_after_delivery,
// a message's text does not outlive its delivery anywhere.
func (t *Tx) purgeDeliveredPayloads(ctx context.Context, org string) (int64, error) {
	sub := `SELECT p.hash FROM ledger_payloads p
		JOIN ledger_entries e ON e.org_id = p.org_id AND e.payload_hash = p.hash
		JOIN actions a ON a.org_id = e.org_id AND a.id = ` + t.jsonRef("e.refs", "action") + `
		WHERE p.org_id = $1 AND a.status = $2`
	if _, err := t.q.exec(ctx, `INSERT INTO ledger_payload_tombstones (org_id, hash, reason, purged_at)
		SELECT org_id, hash, CAST($3 AS text), CAST($4 AS timestamptz) FROM ledger_payloads WHERE org_id = $1 AND hash IN (`+sub+`)
		ON CONFLICT (org_id, hash) DO NOTHING`, org, string(herald.StatusDelivered), PurgeRetention, t.now()); err != nil {
		return 0, fmt.Errorf("delivered payloads: %w", err)
	}
	n, err := t.q.exec(ctx, `DELETE FROM ledger_payloads WHERE org_id = $1 AND hash IN (`+sub+`)`, org, string(herald.StatusDelivered))
	if err != nil {
		return 0, fmt.Errorf("delivered payloads: %w", err)
	}
	return n, nil
}

// record appends retention.ran with the counts and the configuration
// applied, when the run removed something or the last record is older
// than retentionHeartbeat. Replicas run the job concurrently: the idle
// heartbeat is claimed by a conditional write on retention_runs, so one
// replica records it, not each.
func (j *RetentionJob) record(ctx context.Context, org string, cfg RetentionConfig, c RetentionCounts, now time.Time) error {
	return j.Store.InTx(ctx, func(tx *Tx) error {
		if c.any() {
			if _, err := tx.q.exec(ctx, `INSERT INTO retention_runs (org_id, recorded_at) VALUES ($1, $2)
				ON CONFLICT (org_id) DO UPDATE SET recorded_at = excluded.recorded_at`, org, now); err != nil {
				return fmt.Errorf("retention of org %q: record run: %w", org, err)
			}
		} else {
			n, err := tx.q.exec(ctx, `UPDATE retention_runs SET recorded_at = $2 WHERE org_id = $1 AND recorded_at <= $3`,
				org, now, now.Add(-retentionHeartbeat))
			if err == nil && n == 0 {
				n, err = tx.q.exec(ctx, `INSERT INTO retention_runs (org_id, recorded_at) VALUES ($1, $2)
					ON CONFLICT (org_id) DO NOTHING`, org, now)
			}
			if err != nil {
				return fmt.Errorf("retention of org %q: record run: %w", org, err)
			}
			if n == 0 {
				return nil // recorded within the last day, by this or another replica
			}
		}
		attrs := map[string]any{"payloads": c.Payloads, "contents": c.Contents, "receipts": c.Receipts,
			"decision_inputs": c.DecisionInputs, "pruned_before": c.PrunedBefore,
			"drop_content_after_delivery": cfg.DropContentAfterDelivery}
		for k, v := range cfg.days() {
			attrs[k] = v
		}
		_, err := tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindRetentionRan, Actor: ledger.GenesisActor, Attrs: attrs})
		return err
	})
}
