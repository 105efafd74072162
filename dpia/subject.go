package dpia

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// SubjectExportSchema names the JSON schema of SubjectExport.
const SubjectExportSchema = "herald.subject-export/v1"

// SubjectExport answers an access (Art. 15) or portability (Art. 20)
// request: everything Herald holds about one person, machine-readable, and
// an inclusion proof for every ledger entry about them, so the person (or
// their representative) can check offline, with the organisation's public
// key only, that these entries are in the signed log (herald subject verify).
type SubjectExport struct {
	Schema      string               `json:"schema"`
	Request     store.SubjectRequest `json:"request"`
	GeneratedAt time.Time            `json:"generated_at"`
	// NothingHeld: the request names a person the organisation holds no
	// contact for; Contact is null and Actions empty, and Ledger proves
	// only the request's own entries.
	NothingHeld bool                  `json:"nothing_held"`
	Contact     *herald.Contact       `json:"contact"`
	Actions     []store.SubjectAction `json:"actions"`
	// Ledger holds one inclusion bundle per entry about the person (the
	// entry itself inside), all against the same signed checkpoint.
	Ledger []ledger.InclusionBundle `json:"ledger"`
	// VerifierKeys are the note verifier keys the checkpoint verifies with.
	VerifierKeys []string `json:"verifier_keys"`
}

// SubjectSource is what an export reads (*store.Store).
type SubjectSource interface {
	GetContact(ctx context.Context, org, id string) (herald.Contact, error)
	SubjectActions(ctx context.Context, org, contactID string) ([]store.SubjectAction, error)
	SubjectLedgerEntries(ctx context.Context, org, contactID string, actionIDs, requestIDs []string) ([]ledger.Entry, error)
	Now() time.Time
}

// Prover signs a checkpoint covering the log and proves entries against it
// (*store.LedgerLogs).
type Prover interface {
	Checkpoint(ctx context.Context, org string) (store.LedgerCheckpoint, bool, error)
	ProveInclusion(ctx context.Context, org string, seq, size uint64) (ledger.InclusionBundle, error)
}

// BuildSubjectExport assembles the export for request r. It first asks for
// a signed checkpoint covering every entry so far, so every entry about
// the person is provable at once.
func BuildSubjectExport(ctx context.Context, src SubjectSource, p Prover, keys []string, r store.SubjectRequest) (*SubjectExport, error) {
	var (
		contact *herald.Contact
		acts    = []store.SubjectAction{}
		entries []ledger.Entry
		err     error
	)
	if r.Contact == "" {
		// A person Herald holds nothing about: the answer says so, and
		// proves the request's own entries (received, completed).
		if entries, err = src.SubjectLedgerEntries(ctx, r.Org, "", nil, []string{r.ID}); err != nil {
			return nil, err
		}
	} else {
		c, err := src.GetContact(ctx, r.Org, r.Contact)
		if err != nil {
			return nil, err
		}
		contact = &c
		if acts, err = src.SubjectActions(ctx, r.Org, r.Contact); err != nil {
			return nil, err
		}
		ids := make([]string, len(acts))
		for i, a := range acts {
			ids[i] = a.ID
		}
		if entries, err = src.SubjectLedgerEntries(ctx, r.Org, r.Contact, ids, nil); err != nil {
			return nil, err
		}
	}
	cp, _, err := p.Checkpoint(ctx, r.Org)
	if err != nil {
		return nil, fmt.Errorf("dpia: sign a checkpoint for the subject export: %w", err)
	}
	x := &SubjectExport{Schema: SubjectExportSchema, Request: r, GeneratedAt: src.Now().UTC(), NothingHeld: contact == nil, Contact: contact, Actions: acts,
		Ledger: []ledger.InclusionBundle{}, VerifierKeys: keys}
	for _, e := range entries {
		if e.Seq >= cp.Size {
			continue // appended after the checkpoint (by a concurrent change): proved in the next export
		}
		b, err := p.ProveInclusion(ctx, r.Org, e.Seq, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("dpia: prove entry %d: %w", e.Seq, err)
		}
		x.Ledger = append(x.Ledger, b)
	}
	return x, nil
}

// VerifySubjectExport checks every inclusion bundle of x against
// verifiers: the checkpoint's signature, the audit path to its root, and
// that each enclosed entry hashes to the proven leaf. It returns how many
// entries it verified.
func VerifySubjectExport(x *SubjectExport, verifiers note.Verifiers) (int, error) {
	if x.Schema != SubjectExportSchema {
		return 0, fmt.Errorf("not a subject export (schema %q)", x.Schema)
	}
	var errs []error
	for _, b := range x.Ledger {
		if b.Entry == nil {
			errs = append(errs, fmt.Errorf("entry %d: the bundle carries no entry", b.Seq))
			continue
		}
		if _, err := ledger.VerifyInclusionBundle(b, verifiers); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return len(x.Ledger), nil
}
