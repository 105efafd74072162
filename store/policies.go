package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/policies"
)

// Policy bundle statuses. A bundle is stored as a candidate when its own
// tests pass and as failed when they do not (a failed bundle can never be
// activated); activating a candidate (or a retired version: rollback)
// retires the version that was active.
const (
	PolicyCandidate = "candidate"
	PolicyActive    = "active"
	PolicyRetired   = "retired"
	PolicyFailed    = "failed"
)

// PolicyBundle is one stored bundle version of an organisation.
type PolicyBundle struct {
	Org         string              `json:"org"`
	Version     int                 `json:"version"`
	Hash        string              `json:"hash"`
	Author      string              `json:"author"`
	CreatedAt   time.Time           `json:"created_at"`
	Status      string              `json:"status"`
	Report      policies.TestReport `json:"report"`
	ActivatedAt *time.Time          `json:"activated_at,omitempty"`
	ActivatedBy string              `json:"activated_by,omitempty"`
	// Files is the bundle's content (path → text). Listings leave it empty;
	// GetPolicyBundle and PolicyBundleByHash fill it.
	Files map[string]string `json:"files,omitempty"`
}

// Bundle returns the stored files as a policies.Bundle.
func (p PolicyBundle) Bundle() policies.Bundle {
	b := policies.Bundle{Files: make(map[string][]byte, len(p.Files))}
	for k, v := range p.Files {
		b.Files[k] = []byte(v)
	}
	return b
}

// CreatePolicyBundle stores b as org's next version, with the report of its
// own tests: status candidate when rep.OK(), failed otherwise. The upload is
// a policy.uploaded ledger entry carrying the hash, the version and the test
// counts — never file contents. Compile the bundle before storing it: this
// method checks only that every file is UTF-8 text.
func (s *Store) CreatePolicyBundle(ctx context.Context, org, author string, b policies.Bundle, rep policies.TestReport) (PolicyBundle, error) {
	if len(b.Files) == 0 {
		return PolicyBundle{}, herald.Invalid(herald.FieldError{Field: "files", Message: "the bundle has no files"})
	}
	files := make(map[string]string, len(b.Files))
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		c := b.Files[p]
		if !utf8.Valid(c) || strings.IndexByte(string(c), 0) >= 0 {
			return PolicyBundle{}, herald.Invalid(herald.FieldError{Field: "files/" + p, Message: "must be UTF-8 text without NUL bytes"})
		}
		files[p] = string(c)
	}
	if author == "" {
		author = "system"
	}
	fj, err := json.Marshal(files)
	if err != nil {
		return PolicyBundle{}, fmt.Errorf("encode policy bundle files: %w", err)
	}
	rj, err := json.Marshal(rep)
	if err != nil {
		return PolicyBundle{}, fmt.Errorf("encode policy test report: %w", err)
	}
	pb := PolicyBundle{Org: org, Hash: b.Hash(), Author: author, Status: PolicyFailed, Report: rep}
	if rep.OK() {
		pb.Status = PolicyCandidate
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		if err := tx.Lock(ctx, "herald/policies/"+org); err != nil {
			return err
		}
		if err := tx.q.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_bundles WHERE org_id = $1`, org).Scan(&pb.Version); err != nil {
			return fmt.Errorf("next policy version of org %s: %w", org, err)
		}
		pb.CreatedAt = tx.now()
		if _, err := tx.q.exec(ctx, `INSERT INTO policy_bundles (org_id, version, hash, files, author, created_at, report, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			org, pb.Version, pb.Hash, string(fj), pb.Author, pb.CreatedAt, string(rj), pb.Status); err != nil {
			return fmt.Errorf("store policy bundle v%d of org %s: %w", pb.Version, org, err)
		}
		_, err := tx.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindPolicyUploaded, Actor: pb.Author,
			Refs: map[string]string{"policy_version": strconv.Itoa(pb.Version)},
			Attrs: map[string]any{"hash": pb.Hash, "version": pb.Version, "status": pb.Status, "files": len(files),
				"tests_passed": rep.Passed, "tests_failed": rep.Failed, "tests_skipped": rep.Skipped}})
		return err
	})
	if err != nil {
		return PolicyBundle{}, err
	}
	return pb, nil
}

const policyColumns = `org_id, version, hash, author, created_at, report, status, activated_at, activated_by`

func scanPolicyBundle(r row, files bool) (PolicyBundle, error) {
	var (
		p       PolicyBundle
		report  string
		fj      string
		targets = []any{&p.Org, &p.Version, &p.Hash, &p.Author, &p.CreatedAt, &report, &p.Status, &p.ActivatedAt, &p.ActivatedBy}
	)
	if files {
		targets = append(targets, &fj)
	}
	if err := r.Scan(targets...); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(report), &p.Report); err != nil {
		return p, fmt.Errorf("decode test report of policy v%d: %w", p.Version, err)
	}
	if files {
		if err := json.Unmarshal([]byte(fj), &p.Files); err != nil {
			return p, fmt.Errorf("decode files of policy v%d: %w", p.Version, err)
		}
	}
	return p, nil
}

// ListPolicyBundles returns org's bundle versions, newest first, without
// their files. The active one, if any, has Status PolicyActive.
func (q *queries) ListPolicyBundles(ctx context.Context, org string) ([]PolicyBundle, error) {
	rs, err := q.q.query(ctx, `SELECT `+policyColumns+` FROM policy_bundles WHERE org_id = $1 ORDER BY version DESC`, org)
	if err != nil {
		return nil, fmt.Errorf("list policy bundles: %w", err)
	}
	defer rs.Close()
	out := []PolicyBundle{}
	for rs.Next() {
		p, err := scanPolicyBundle(rs, false)
		if err != nil {
			return nil, fmt.Errorf("list policy bundles: %w", err)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// GetPolicyBundle returns one version of org's bundles, with its files.
func (q *queries) GetPolicyBundle(ctx context.Context, org string, version int) (PolicyBundle, error) {
	p, err := scanPolicyBundle(q.q.queryRow(ctx, `SELECT `+policyColumns+`, files FROM policy_bundles WHERE org_id = $1 AND version = $2`, org, version), true)
	if err != nil {
		return p, scanNotFound(err, fmt.Sprintf("policy version %d", version))
	}
	return p, nil
}

// PolicyBundleByHash returns the latest of org's versions with this bundle
// hash, with its files (replay loads the bundle a decision recorded).
func (q *queries) PolicyBundleByHash(ctx context.Context, org, hash string) (PolicyBundle, error) {
	p, err := scanPolicyBundle(q.q.queryRow(ctx, `SELECT `+policyColumns+`, files FROM policy_bundles
		WHERE org_id = $1 AND hash = $2 ORDER BY version DESC LIMIT 1`, org, hash), true)
	if err != nil {
		return p, scanNotFound(err, "policy bundle "+hash)
	}
	return p, nil
}

// ActivatePolicyBundle makes version org's active bundle, in one
// transaction: the previously active version becomes retired and a
// policy.activated ledger entry records both hashes. Activating an older
// version is a rollback. A failed bundle cannot be activated (an error with
// code policies.CodeTestsFailed); activating the active version changes
// nothing. Replicas pick the change up at their next Registry refresh.
func (s *Store) ActivatePolicyBundle(ctx context.Context, org string, version int, actor string) (PolicyBundle, error) {
	if actor == "" {
		actor = "system"
	}
	var p PolicyBundle
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.Lock(ctx, "herald/policies/"+org); err != nil {
			return err
		}
		var err error
		if p, err = tx.GetPolicyBundle(ctx, org, version); err != nil {
			return err
		}
		p.Files = nil
		switch p.Status {
		case PolicyActive:
			return nil
		case PolicyFailed:
			return &herald.Error{Code: policies.CodeTestsFailed,
				Message: fmt.Sprintf("policy version %d failed its own tests (%d failed, %d passed) and cannot be activated; fix the tests and upload a new version",
					version, p.Report.Failed, p.Report.Passed)}
		}
		var (
			prevVersion int
			prevHash    string
		)
		err = tx.q.queryRow(ctx, `SELECT version, hash FROM policy_bundles WHERE org_id = $1 AND status = 'active'`, org).Scan(&prevVersion, &prevHash)
		switch {
		case err == errNoRows:
		case err != nil:
			return fmt.Errorf("read active policy of org %s: %w", org, err)
		default:
			if _, err := tx.q.exec(ctx, `UPDATE policy_bundles SET status = 'retired' WHERE org_id = $1 AND version = $2`, org, prevVersion); err != nil {
				return fmt.Errorf("retire policy v%d: %w", prevVersion, err)
			}
		}
		now := tx.now()
		if _, err := tx.q.exec(ctx, `UPDATE policy_bundles SET status = 'active', activated_at = $3, activated_by = $4 WHERE org_id = $1 AND version = $2`,
			org, version, now, actor); err != nil {
			return fmt.Errorf("activate policy v%d: %w", version, err)
		}
		p.Status, p.ActivatedAt, p.ActivatedBy = PolicyActive, &now, actor
		attrs := map[string]any{"hash": p.Hash, "version": version, "rollback": prevVersion > version}
		if prevVersion > 0 {
			attrs["previous_version"], attrs["previous_hash"] = prevVersion, prevHash
		}
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindPolicyActivated, Actor: actor,
			Refs: map[string]string{"policy_version": strconv.Itoa(version)}, Attrs: attrs})
		return err
	})
	return p, err
}

// ActiveBundles returns every organisation's active bundle version. It is
// one indexed query, cheap enough for every replica to poll every few
// seconds (policies.Registry.Run). *Store implements policies.ActiveSource.
func (q *queries) ActiveBundles(ctx context.Context) (map[string]policies.BundleRef, error) {
	rs, err := q.q.query(ctx, `SELECT org_id, version, hash FROM policy_bundles WHERE status = 'active'`)
	if err != nil {
		return nil, fmt.Errorf("read active policy bundles: %w", err)
	}
	defer rs.Close()
	out := map[string]policies.BundleRef{}
	for rs.Next() {
		var (
			org string
			ref policies.BundleRef
		)
		if err := rs.Scan(&org, &ref.Version, &ref.Hash); err != nil {
			return nil, fmt.Errorf("read active policy bundles: %w", err)
		}
		out[org] = ref
	}
	return out, rs.Err()
}

// ActiveBundleVersion returns org's active bundle version; the zero
// BundleRef (Version 0) when org uses the built-in default.
func (q *queries) ActiveBundleVersion(ctx context.Context, org string) (policies.BundleRef, error) {
	var ref policies.BundleRef
	err := q.q.queryRow(ctx, `SELECT version, hash FROM policy_bundles WHERE org_id = $1 AND status = 'active'`, org).Scan(&ref.Version, &ref.Hash)
	if err == errNoRows {
		return policies.BundleRef{}, nil
	}
	if err != nil {
		return ref, fmt.Errorf("read active policy of org %s: %w", org, err)
	}
	return ref, nil
}

// LoadBundle reads one stored version's files, checking they still hash to
// the recorded bundle hash.
func (q *queries) LoadBundle(ctx context.Context, org string, version int) (policies.Bundle, error) {
	p, err := q.GetPolicyBundle(ctx, org, version)
	if err != nil {
		return policies.Bundle{}, err
	}
	b := p.Bundle()
	if h := b.Hash(); h != p.Hash {
		return policies.Bundle{}, fmt.Errorf("policy v%d of org %s: stored files hash to %s, recorded hash is %s", version, org, h, p.Hash)
	}
	return b, nil
}

// DecisionRecord is one stored policy decision: the input it was made
// from, the decision, and the bundle that made it.
type DecisionRecord struct {
	ID         int64             `json:"id"`
	Org        string            `json:"org"`
	ActionID   string            `json:"action_id"`
	Stage      string            `json:"stage"`
	At         time.Time         `json:"at"`
	BundleHash string            `json:"bundle_hash"`
	InputHash  string            `json:"input_hash"`
	Input      policies.Input    `json:"input"`
	Decision   policies.Decision `json:"decision"`
}

// Minimised reports whether the stored input differs from the decided one
// (the chat id of a contact is not stored), so its hash cannot match
// InputHash; the decision still replays, as no rule may read that id.
func (r DecisionRecord) Minimised() bool { return r.Input.Target.Contact != nil }

// RecordDecision stores a decision and its input for replay and impact
// preview, in the caller's transaction (call it on the *Tx that commits the
// action, so the record exists exactly when the decision took effect).
// The input is already PII-minimised (content statistics, never text); the
// Telegram chat id of a contact is removed as well: the contact id
// identifies the recipient pseudonymously.
func (q *queries) RecordDecision(ctx context.Context, org, actionID, stage string, in policies.Input, d policies.Decision) error {
	if in.Target.Contact != nil {
		in.Target.ChatID = ""
	}
	ij, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode decision input of action %s: %w", actionID, err)
	}
	dj, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode decision of action %s: %w", actionID, err)
	}
	return q.q.deferExec(ctx, func(err error) error { return fmt.Errorf("record decision of action %s: %w", actionID, err) },
		`INSERT INTO decision_records (org_id, action_id, stage, at, bundle_hash, input, decision, input_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		org, actionID, stage, q.now(), d.BundleHash, string(ij), string(dj), d.InputHash)
}

const decisionColumns = `id, org_id, action_id, stage, at, bundle_hash, input_hash, input, decision`

func (q *queries) decisionRecords(ctx context.Context, sql string, args ...any) ([]DecisionRecord, error) {
	rs, err := q.q.query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read decision records: %w", err)
	}
	defer rs.Close()
	out := []DecisionRecord{}
	for rs.Next() {
		var (
			r      DecisionRecord
			ij, dj string
		)
		if err := rs.Scan(&r.ID, &r.Org, &r.ActionID, &r.Stage, &r.At, &r.BundleHash, &r.InputHash, &ij, &dj); err != nil {
			return nil, fmt.Errorf("read decision records: %w", err)
		}
		if err := json.Unmarshal([]byte(ij), &r.Input); err != nil {
			return nil, fmt.Errorf("decode input of decision %d: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(dj), &r.Decision); err != nil {
			return nil, fmt.Errorf("decode decision %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// RecentDecisions returns org's last limit decisions, newest first.
func (q *queries) RecentDecisions(ctx context.Context, org string, limit int) ([]DecisionRecord, error) {
	if limit <= 0 {
		limit = 1000
	}
	return q.decisionRecords(ctx, `SELECT `+decisionColumns+` FROM decision_records WHERE org_id = $1 ORDER BY id DESC LIMIT $2`, org, limit)
}

// DecisionsOf returns the decisions taken on one action, oldest first
// (submit, then each send-time re-check).
func (q *queries) DecisionsOf(ctx context.Context, org, actionID string) ([]DecisionRecord, error) {
	return q.decisionRecords(ctx, `SELECT `+decisionColumns+` FROM decision_records WHERE org_id = $1 AND action_id = $2 ORDER BY id`, org, actionID)
}

// EraseContactDecisions deletes the decision records whose input names the
// contact (for erasure: the input holds the contact's consent facts). The
// ledger keeps the decisions' hashes; only the stored inputs go.
func (q *queries) EraseContactDecisions(ctx context.Context, org, contactID string) (int64, error) {
	expr := `json_extract(input, '$.target.contact.id')`
	if q.d.name == "postgres" {
		expr = `input->'target'->'contact'->>'id'`
	}
	n, err := q.q.exec(ctx, `DELETE FROM decision_records WHERE org_id = $1 AND `+expr+` = $2`, org, contactID)
	if err != nil {
		return 0, fmt.Errorf("erase decision records of contact %s: %w", contactID, err)
	}
	return n, nil
}

// PruneDecisionRecords deletes decision records stored before cutoff, for
// retention; impact preview and replay reach back only as far as they go.
func (q *queries) PruneDecisionRecords(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := q.q.exec(ctx, `DELETE FROM decision_records WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune decision records: %w", err)
	}
	return n, nil
}
