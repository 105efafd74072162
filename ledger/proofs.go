package ledger

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// InclusionBundle is a self-contained inclusion proof: what
// `herald ledger prove SEQ` prints and GET /v1/ledger/proof/inclusion
// returns. A third party checks it with VerifyInclusionBundle and the log's
// public key only.
type InclusionBundle struct {
	Seq        uint64   `json:"seq"`
	EntryHash  string   `json:"entry_hash"`      // hex
	Size       uint64   `json:"size"`            // tree size the proof is for
	Proof      [][]byte `json:"proof"`           // RFC 6962 audit path, base64 each
	Checkpoint string   `json:"checkpoint"`      // signed checkpoint note at Size
	Entry      *Entry   `json:"entry,omitempty"` // optional: the entry itself, to re-hash
}

// ProveInclusion builds the bundle for entry seq (whose hash is entryHash)
// against signedCheckpoint, which MUST be a signed checkpoint of this tree
// with size > seq.
func (t *Tree) ProveInclusion(seq uint64, entryHash string, signedCheckpoint []byte) (InclusionBundle, error) {
	cp, err := ParseCheckpoint(noteBody(signedCheckpoint))
	if err != nil {
		return InclusionBundle{}, fmt.Errorf("ledger: prove %d: %w", seq, err)
	}
	p, err := t.InclusionProof(seq, cp.Size)
	if err != nil {
		return InclusionBundle{}, err
	}
	b := InclusionBundle{Seq: seq, EntryHash: entryHash, Size: cp.Size, Proof: p, Checkpoint: string(signedCheckpoint)}
	// Refuse to hand out a bundle that would not verify.
	if err := b.verifyAgainst(cp); err != nil {
		return InclusionBundle{}, fmt.Errorf("ledger: prove %d: %w", seq, err)
	}
	return b, nil
}

// VerifyInclusionBundle checks the checkpoint signature against verifiers,
// then that EntryHash is leaf Seq of the signed tree and, when Entry is
// included, that it hashes to EntryHash. It returns the verified checkpoint
// (the caller SHOULD check its Origin names the expected log).
func VerifyInclusionBundle(b InclusionBundle, verifiers note.Verifiers) (Checkpoint, error) {
	cp, err := OpenCheckpoint([]byte(b.Checkpoint), verifiers)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: inclusion of %d: %w", b.Seq, err)
	}
	if cp.Size != b.Size {
		return Checkpoint{}, fmt.Errorf("ledger: inclusion of %d: proof is for size %d, checkpoint for %d", b.Seq, b.Size, cp.Size)
	}
	if err := b.verifyAgainst(cp); err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: inclusion of %d: %w", b.Seq, err)
	}
	return cp, nil
}

func (b InclusionBundle) verifyAgainst(cp Checkpoint) error {
	if b.Entry != nil {
		if b.Entry.Seq != b.Seq || b.Entry.Hash != b.EntryHash {
			return errors.New("entry does not match the proven seq and hash")
		}
		if err := b.Entry.Check(); err != nil {
			return err
		}
	}
	h, err := Entry{Seq: b.Seq, Hash: b.EntryHash}.HashBytes()
	if err != nil {
		return err
	}
	if err := proof.VerifyInclusion(Hasher, b.Seq, cp.Size, LeafHash(h), b.Proof, cp.Root); err != nil {
		return fmt.Errorf("entry %d is not in the signed tree of size %d: %w", b.Seq, cp.Size, err)
	}
	return nil
}

// ConsistencyBundle proves that the log at size To extends the log at size
// From (GET /v1/ledger/proof/consistency): nothing signed at From was
// rewritten later.
type ConsistencyBundle struct {
	From           uint64   `json:"from"`
	To             uint64   `json:"to"`
	Proof          [][]byte `json:"proof"`           // RFC 6962 consistency proof, base64 each
	FromCheckpoint string   `json:"from_checkpoint"` // signed note at From
	ToCheckpoint   string   `json:"to_checkpoint"`   // signed note at To
}

// ProveConsistency builds the bundle between two signed checkpoints of this
// tree.
func (t *Tree) ProveConsistency(fromCheckpoint, toCheckpoint []byte) (ConsistencyBundle, error) {
	c1, err := ParseCheckpoint(noteBody(fromCheckpoint))
	if err != nil {
		return ConsistencyBundle{}, fmt.Errorf("ledger: prove consistency: %w", err)
	}
	c2, err := ParseCheckpoint(noteBody(toCheckpoint))
	if err != nil {
		return ConsistencyBundle{}, fmt.Errorf("ledger: prove consistency: %w", err)
	}
	p, err := t.ConsistencyProof(c1.Size, c2.Size)
	if err != nil {
		return ConsistencyBundle{}, err
	}
	b := ConsistencyBundle{From: c1.Size, To: c2.Size, Proof: p, FromCheckpoint: string(fromCheckpoint), ToCheckpoint: string(toCheckpoint)}
	if err := proof.VerifyConsistency(Hasher, c1.Size, c2.Size, p, c1.Root, c2.Root); err != nil {
		return ConsistencyBundle{}, fmt.Errorf("ledger: prove consistency %d→%d: checkpoints are not of this tree: %w", c1.Size, c2.Size, err)
	}
	return b, nil
}

// VerifyConsistencyBundle checks both signatures, that both checkpoints are
// for the same log, and the consistency proof between them.
func VerifyConsistencyBundle(b ConsistencyBundle, verifiers note.Verifiers) (from, to Checkpoint, err error) {
	from, err = OpenCheckpoint([]byte(b.FromCheckpoint), verifiers)
	if err != nil {
		return from, to, fmt.Errorf("ledger: consistency %d→%d: %w", b.From, b.To, err)
	}
	to, err = OpenCheckpoint([]byte(b.ToCheckpoint), verifiers)
	if err != nil {
		return from, to, fmt.Errorf("ledger: consistency %d→%d: %w", b.From, b.To, err)
	}
	if from.Origin != to.Origin {
		return from, to, fmt.Errorf("ledger: consistency %d→%d: checkpoints are for logs %q and %q", b.From, b.To, from.Origin, to.Origin)
	}
	if from.Size != b.From || to.Size != b.To {
		return from, to, fmt.Errorf("ledger: consistency %d→%d: checkpoints are for sizes %d and %d", b.From, b.To, from.Size, to.Size)
	}
	if err := proof.VerifyConsistency(Hasher, from.Size, to.Size, b.Proof, from.Root, to.Root); err != nil {
		return from, to, fmt.Errorf("ledger: consistency %d→%d: the log was rewritten: %w", b.From, b.To, err)
	}
	return from, to, nil
}
