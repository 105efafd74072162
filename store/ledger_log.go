package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
)

// DefaultLedgerHost is the host part of checkpoint origins
// ("<host>/<org>") when the composition root configures none.
const DefaultLedgerHost = "herald.local"

// ledgerTreePage is how many entry hashes one catch-up query reads: 10,000
// rows of ~130 bytes keep a query short and the transient memory near 1 MB.
const ledgerTreePage = 10_000

// LedgerLogs is the read and signing side of every organisation's ledger:
// one in-memory Merkle tree per org (ledger.Tree), signed checkpoints,
// inclusion and consistency proofs, exports and pruning.
//
// Trees are a cache. They are built from the stored entry hashes on first
// use (from the latest pruning anchor, if any) and, before every answer,
// reconciled with the size committed in the database, so a replica serves
// entries other replicas appended. Catch-up checks that every new entry
// links to the last hash the tree holds: a database whose history was
// rewritten under a running replica is reported, not absorbed. Memory: a
// tree keeps every perfect-subtree hash, 2n-1 × 32 bytes ≈ 64 MB per million
// entries per org.
//
// Safe for concurrent use.
type LedgerLogs struct {
	Store *Store
	// Host names the log: checkpoint origins are Host + "/" + org.
	Host string
	// Signer signs checkpoints (Ed25519 note signer: ledger.NewSigner,
	// ledger.NewExternalSigner over Vault Transit, …). Nil: the logs are
	// read-only and Checkpoint fails.
	Signer note.Signer

	mu    sync.Mutex
	trees map[string]*orgTree
}

type orgTree struct {
	mu   sync.Mutex // serialises catch-up; the tree itself allows concurrent readers
	tree *ledger.Tree
	last string // hash of the last leaf, "" for an empty tree
}

// NewLedgerLogs returns the logs of s; host names the logs in checkpoint
// origins (DefaultLedgerHost when empty); signer may be nil (read-only).
func NewLedgerLogs(s *Store, host string, signer note.Signer) *LedgerLogs {
	if host == "" {
		host = DefaultLedgerHost
	}
	return &LedgerLogs{Store: s, Host: host, Signer: signer}
}

// Origin returns org's checkpoint origin.
func (l *LedgerLogs) Origin(org string) string { return ledger.Origin(l.host(), org) }

func (l *LedgerLogs) host() string {
	if l.Host == "" {
		return DefaultLedgerHost
	}
	return l.Host
}

// ErrLedgerDiverged is returned when the stored entries no longer extend
// what a tree (or a signed checkpoint) already committed to: the database
// was altered behind Herald's back. Nothing is signed over such a log.
var ErrLedgerDiverged = errors.New("ledger: stored entries diverge from the committed history")

// LedgerSize returns the number of committed entries of org's log (head seq
// + 1), 0 when the org has no ledger yet.
func (q *queries) LedgerSize(ctx context.Context, org string) (uint64, error) {
	var seq int64
	err := q.q.queryRow(ctx, `SELECT seq FROM ledger_heads WHERE org_id = $1`, org).Scan(&seq)
	if errors.Is(err, errNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read ledger size of org %q: %w", org, err)
	}
	return uint64(seq) + 1, nil
}

// Tree returns org's Merkle tree caught up with the committed log, and the
// committed size it was reconciled with (the tree may hold more leaves when
// another goroutine caught up meanwhile; use size for answers).
func (l *LedgerLogs) Tree(ctx context.Context, org string) (*ledger.Tree, uint64, error) {
	l.mu.Lock()
	if l.trees == nil {
		l.trees = map[string]*orgTree{}
	}
	ot := l.trees[org]
	if ot == nil {
		ot = &orgTree{}
		l.trees[org] = ot
	}
	l.mu.Unlock()

	size, err := l.Store.LedgerSize(ctx, org)
	if err != nil {
		return nil, 0, err
	}
	ot.mu.Lock()
	defer ot.mu.Unlock()
	if ot.tree == nil {
		t, last, err := l.Store.newLedgerTree(ctx, org)
		if err != nil {
			return nil, 0, err
		}
		ot.tree, ot.last = t, last
	}
	if err := l.Store.catchUp(ctx, org, ot, size); err != nil {
		if errors.Is(err, ErrLedgerDiverged) {
			// Drop the cache: the next call rebuilds from the database, and
			// the checkpoint check then refuses to sign over it.
			l.mu.Lock()
			delete(l.trees, org)
			l.mu.Unlock()
		}
		return nil, 0, err
	}
	if ot.tree.Size() < size {
		size = ot.tree.Size()
	}
	return ot.tree, size, nil
}

// newLedgerTree returns an empty tree, or the tree resumed at org's latest
// pruning anchor.
func (q *queries) newLedgerTree(ctx context.Context, org string) (*ledger.Tree, string, error) {
	a, err := q.LatestLedgerAnchor(ctx, org)
	if err != nil {
		return nil, "", err
	}
	if a == nil {
		return ledger.NewTree(), "", nil
	}
	t, err := ledger.NewTreeAt(a.Size, a.Range)
	if err != nil {
		return nil, "", fmt.Errorf("ledger of org %q: resume at anchor %d: %w", org, a.Size, err)
	}
	return t, a.Hash, nil
}

// catchUp appends the hashes of entries [tree size, size) in pages.
func (q *queries) catchUp(ctx context.Context, org string, ot *orgTree, size uint64) error {
	for next := ot.tree.Size(); next < size; {
		rs, err := q.q.query(ctx, `SELECT seq, prev_hash, hash FROM ledger_entries
			WHERE org_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4`, org, int64(next), int64(size), ledgerTreePage)
		if err != nil {
			return fmt.Errorf("ledger of org %q: read entry hashes from %d: %w", org, next, err)
		}
		n := 0
		for rs.Next() {
			var (
				seq        int64
				prev, hash string
			)
			if err := rs.Scan(&seq, &prev, &hash); err != nil {
				rs.Close()
				return fmt.Errorf("ledger of org %q: read entry hashes: %w", org, err)
			}
			if uint64(seq) != next {
				rs.Close()
				return fmt.Errorf("%w: org %q: entry %d is missing (found %d)", ErrLedgerDiverged, org, next, seq)
			}
			want := ot.last
			if want == "" {
				want = ledger.ZeroHash
			}
			if prev != want {
				rs.Close()
				return fmt.Errorf("%w: org %q: entry %d does not link to entry %d", ErrLedgerDiverged, org, seq, int64(seq)-1)
			}
			hb, err := hex.DecodeString(hash)
			if err != nil || len(hb) != ledger.HashSize {
				rs.Close()
				return fmt.Errorf("%w: org %q: entry %d has a malformed hash", ErrLedgerDiverged, org, seq)
			}
			if _, err := ot.tree.Append(hb); err != nil {
				rs.Close()
				return err
			}
			ot.last = hash
			next++
			n++
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return fmt.Errorf("ledger of org %q: read entry hashes: %w", org, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: org %q: entry %d is missing", ErrLedgerDiverged, org, next)
		}
	}
	return nil
}

// LedgerCheckpoint is a stored signed checkpoint.
type LedgerCheckpoint struct {
	Org       string    `json:"org"`
	Size      uint64    `json:"size"`
	Root      string    `json:"root"` // standard base64
	Note      string    `json:"note"` // the signed note, verbatim
	KeyID     string    `json:"key_id"`
	CreatedAt time.Time `json:"created_at"`
}

const checkpointColumns = `org_id, size, root, note, key_id, created_at`

func scanCheckpoint(r interface{ Scan(...any) error }) (LedgerCheckpoint, error) {
	var (
		c    LedgerCheckpoint
		size int64
	)
	err := r.Scan(&c.Org, &size, &c.Root, &c.Note, &c.KeyID, &c.CreatedAt)
	c.Size = uint64(size)
	return c, err
}

// LatestLedgerCheckpoint returns org's latest signed checkpoint, or a
// not_found error when none was signed yet.
func (q *queries) LatestLedgerCheckpoint(ctx context.Context, org string) (LedgerCheckpoint, error) {
	c, err := scanCheckpoint(q.q.queryRow(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints
		WHERE org_id = $1 ORDER BY size DESC LIMIT 1`, org))
	if err != nil {
		return c, scanNotFound(err, "ledger checkpoint")
	}
	return c, nil
}

// LedgerCheckpointAt returns org's checkpoint at exactly size, or not_found.
func (q *queries) LedgerCheckpointAt(ctx context.Context, org string, size uint64) (LedgerCheckpoint, error) {
	c, err := scanCheckpoint(q.q.queryRow(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints
		WHERE org_id = $1 AND size = $2`, org, int64(size)))
	if err != nil {
		return c, scanNotFound(err, fmt.Sprintf("signed ledger checkpoint at size %d", size))
	}
	return c, nil
}

// latestCheckpointAtMost returns the latest checkpoint with size ≤ size, or
// nil when there is none.
func (q *queries) latestCheckpointAtMost(ctx context.Context, org string, size uint64) (*LedgerCheckpoint, error) {
	c, err := scanCheckpoint(q.q.queryRow(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints
		WHERE org_id = $1 AND size <= $2 ORDER BY size DESC LIMIT 1`, org, int64(size)))
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger checkpoints of org %q: %w", org, err)
	}
	return &c, nil
}

// LedgerCheckpoints returns org's checkpoints with fromSize ≤ size ≤
// toSize, in size order, at most limit (default 1000).
func (q *queries) LedgerCheckpoints(ctx context.Context, org string, fromSize, toSize uint64, limit int) ([]LedgerCheckpoint, error) {
	if limit <= 0 {
		limit = 1000
	}
	rs, err := q.q.query(ctx, `SELECT `+checkpointColumns+` FROM ledger_checkpoints
		WHERE org_id = $1 AND size >= $2 AND size <= $3 ORDER BY size LIMIT $4`, org, int64(fromSize), int64(min(toSize, 1<<62)), limit)
	if err != nil {
		return nil, fmt.Errorf("read ledger checkpoints of org %q: %w", org, err)
	}
	defer rs.Close()
	var out []LedgerCheckpoint
	for rs.Next() {
		c, err := scanCheckpoint(rs)
		if err != nil {
			return nil, fmt.Errorf("read ledger checkpoints of org %q: %w", org, err)
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// LatestLedgerAnchor returns org's latest pruning anchor, nil when the log
// was never pruned.
func (q *queries) LatestLedgerAnchor(ctx context.Context, org string) (*ledger.Anchor, error) {
	var raw string
	err := q.q.queryRow(ctx, `SELECT anchor FROM ledger_anchors WHERE org_id = $1 ORDER BY size DESC LIMIT 1`, org).Scan(&raw)
	if errors.Is(err, errNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger anchor of org %q: %w", org, err)
	}
	var a ledger.Anchor
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, fmt.Errorf("decode ledger anchor of org %q: %w", org, err)
	}
	return &a, nil
}

// pendingEntries counts org's entries at seq ≥ from other than
// ledger.checkpoint entries: what a new checkpoint would newly cover.
func (q *queries) pendingEntries(ctx context.Context, org string, from uint64) (int, error) {
	var n int
	err := q.q.queryRow(ctx, `SELECT count(*) FROM ledger_entries WHERE org_id = $1 AND seq >= $2 AND kind <> $3`,
		org, int64(from), ledger.KindLedgerCheckpoint).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count new ledger entries of org %q: %w", org, err)
	}
	return n, nil
}

// Checkpoint signs a checkpoint of org's log now, unless nothing but
// ledger.checkpoint entries was appended since the latest one, in which
// case it returns the latest (created = false). See CheckpointJob for the
// schedule and docs/audit.md §3 for what is signed.
//
// The checkpoint commits to the entries committed when it starts, [0, N);
// it is stored together with a ledger.checkpoint entry (attrs: size, root,
// key) appended after them, so the chain shows when each checkpoint was
// made and the next checkpoint covers that entry. Before signing, the
// stored history is checked against the previous checkpoint (same root at
// its size): Herald never signs over a rewritten log. Concurrent calls (on
// any replica) sign at most one checkpoint per size.
func (l *LedgerLogs) Checkpoint(ctx context.Context, org string) (cp LedgerCheckpoint, created bool, err error) {
	if l.Signer == nil {
		return cp, false, herald.Errorf(herald.CodeUnavailable, "no ledger signing key is configured")
	}
	prev, err := l.Store.latestCheckpointAtMost(ctx, org, 1<<62)
	if err != nil {
		return cp, false, err
	}
	from := uint64(0)
	if prev != nil {
		from = prev.Size
	}
	n, err := l.Store.pendingEntries(ctx, org, from)
	if err != nil {
		return cp, false, err
	}
	if n == 0 {
		if prev == nil {
			return cp, false, herald.Errorf(herald.CodeNotFound, "the ledger of this organisation has no entries yet")
		}
		return *prev, false, nil
	}
	return l.sign(ctx, org, prev)
}

// sign signs the committed size of org's log and stores the checkpoint.
func (l *LedgerLogs) sign(ctx context.Context, org string, prev *LedgerCheckpoint) (LedgerCheckpoint, bool, error) {
	tree, size, err := l.Tree(ctx, org)
	if err != nil {
		return LedgerCheckpoint{}, false, err
	}
	if prev != nil {
		if prev.Size >= size {
			return *prev, false, nil
		}
		if err := checkAgainst(tree, org, prev); err != nil {
			return LedgerCheckpoint{}, false, err
		}
	}
	root, err := tree.Root(size)
	if err != nil {
		return LedgerCheckpoint{}, false, err
	}
	signer := l.Signer
	if r, ok := signer.(interface{ Current() note.Signer }); ok {
		signer = r.Current() // pin one key version for the whole signature
	}
	msg, err := ledger.Sign(ledger.Checkpoint{Origin: l.Origin(org), Size: size, Root: root}, signer)
	if err != nil {
		return LedgerCheckpoint{}, false, err
	}
	cp := LedgerCheckpoint{Org: org, Size: size, Root: base64.StdEncoding.EncodeToString(root), Note: string(msg),
		KeyID: fmt.Sprintf("%s+%08x", signer.Name(), signer.KeyHash())}
	created := false
	err = l.Store.InTx(ctx, func(tx *Tx) error {
		cp.CreatedAt = tx.now()
		n, err := tx.q.exec(ctx, `INSERT INTO ledger_checkpoints (org_id, size, root, note, key_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, size) DO NOTHING`,
			org, int64(cp.Size), cp.Root, cp.Note, cp.KeyID, cp.CreatedAt)
		if err != nil {
			return fmt.Errorf("store ledger checkpoint of org %q at size %d: %w", org, cp.Size, err)
		}
		if n == 0 {
			return nil // another replica signed this size first
		}
		created = true
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: ledger.KindLedgerCheckpoint, Actor: ledger.GenesisActor,
			Attrs: map[string]any{"size": cp.Size, "root": cp.Root, "key": cp.KeyID}})
		return err
	})
	if err != nil {
		return LedgerCheckpoint{}, false, err
	}
	if !created {
		c, err := l.Store.LedgerCheckpointAt(ctx, org, size)
		return c, false, err
	}
	return cp, true, nil
}

// checkAgainst reports ErrLedgerDiverged when the tree's root at c.Size is
// not the root c signed.
func checkAgainst(tree *ledger.Tree, org string, c *LedgerCheckpoint) error {
	root, err := tree.Root(c.Size)
	if err != nil {
		return err
	}
	want, err := base64.StdEncoding.DecodeString(c.Root)
	if err != nil || !bytes.Equal(root, want) {
		return fmt.Errorf("%w: org %q: the stored entries 0..%d do not hash to the root signed at size %d", ErrLedgerDiverged, org, c.Size-1, c.Size)
	}
	return nil
}

// ProveInclusion returns the inclusion bundle of entry seq in the signed
// checkpoint at size (0: the latest checkpoint), with the entry itself.
func (l *LedgerLogs) ProveInclusion(ctx context.Context, org string, seq, size uint64) (ledger.InclusionBundle, error) {
	var (
		cp  LedgerCheckpoint
		err error
	)
	if size == 0 {
		cp, err = l.Store.LatestLedgerCheckpoint(ctx, org)
	} else {
		cp, err = l.Store.LedgerCheckpointAt(ctx, org, size)
	}
	if err != nil {
		return ledger.InclusionBundle{}, err
	}
	if seq >= cp.Size {
		return ledger.InclusionBundle{}, herald.Errorf(herald.CodeConflict,
			"entry %d is not covered by the signed checkpoint at size %d yet; ask for a checkpoint (POST /v1/ledger/checkpoint) and retry", seq, cp.Size)
	}
	es, err := l.Store.LedgerEntries(ctx, org, LedgerFilter{FromSeq: seq, ToSeq: seq, Limit: 1})
	if err != nil {
		return ledger.InclusionBundle{}, err
	}
	if len(es) != 1 {
		return ledger.InclusionBundle{}, herald.Errorf(herald.CodeNotFound, "ledger entry %d was pruned or does not exist", seq)
	}
	tree, _, err := l.Tree(ctx, org)
	if err != nil {
		return ledger.InclusionBundle{}, err
	}
	b, err := tree.ProveInclusion(seq, es[0].Hash, []byte(cp.Note))
	if err != nil {
		return b, err
	}
	b.Entry = &es[0]
	return b, nil
}

// ProveConsistency returns the consistency bundle between org's signed
// checkpoints at sizes from and to (to = 0: the latest).
func (l *LedgerLogs) ProveConsistency(ctx context.Context, org string, from, to uint64) (ledger.ConsistencyBundle, error) {
	c1, err := l.Store.LedgerCheckpointAt(ctx, org, from)
	if err != nil {
		return ledger.ConsistencyBundle{}, err
	}
	var c2 LedgerCheckpoint
	if to == 0 {
		c2, err = l.Store.LatestLedgerCheckpoint(ctx, org)
	} else {
		c2, err = l.Store.LedgerCheckpointAt(ctx, org, to)
	}
	if err != nil {
		return ledger.ConsistencyBundle{}, err
	}
	if c2.Size < c1.Size {
		return ledger.ConsistencyBundle{}, herald.Invalid(herald.FieldError{Field: "to", Message: "must not be below from"})
	}
	tree, _, err := l.Tree(ctx, org)
	if err != nil {
		return ledger.ConsistencyBundle{}, err
	}
	return tree.ProveConsistency([]byte(c1.Note), []byte(c2.Note))
}
