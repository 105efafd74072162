package ledger

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Merkle tree (RFC 6962 / RFC 9162 §2.1) over an org's entries: leaf i is
// the entry with seq i, and its leaf data is the 32 raw bytes of the entry
// hash, so the leaf hash is SHA-256(0x00 ‖ entry hash) and an interior node is
// SHA-256(0x01 ‖ left ‖ right).

// Hasher is the RFC 6962 SHA-256 hasher every tree, proof and checkpoint of
// the ledger uses.
var Hasher = rfc6962.DefaultHasher

// LeafHash returns the Merkle leaf hash of an entry hash (32 raw bytes).
func LeafHash(entryHash []byte) []byte { return Hasher.HashLeaf(entryHash) }

// hashChildren is rfc6962.DefaultHasher.HashChildren without its scratch
// allocation; TestHashChildrenMatchesRFC6962 holds them equal.
func hashChildren(l, r []byte) []byte {
	var buf [1 + 2*HashSize]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+HashSize:], r)
	sum := sha256.Sum256(buf[:])
	return sum[:]
}

// hashLeaf is Hasher.HashLeaf for a 32-byte entry hash, written into dst.
func hashLeaf(dst *[HashSize]byte, entryHash []byte) {
	var buf [1 + HashSize]byte
	buf[0] = rfc6962.RFC6962LeafHashPrefix
	copy(buf[1:], entryHash)
	*dst = sha256.Sum256(buf[:])
}

var rangeFactory = &compact.RangeFactory{Hash: hashChildren}

// Tree is an in-memory RFC 6962 Merkle tree built incrementally. It keeps the
// hash of every perfect subtree (2n-1 hashes of 32 bytes for n leaves, about
// 64 MB per million entries), so roots and proofs for any past size cost
// O(log n) lookups and hashes, with no recomputation over leaves.
//
// A Tree is safe for concurrent use: Append takes a write lock, readers a
// read lock, so one goroutine may append while others serve proofs.
// The zero value is an empty tree ready to use; NewTreeAt resumes a tree
// after pruning, and Tree.Anchor builds the anchor to persist before pruning.
//
// Leaves MUST be appended in seq order, each exactly once; a Tree rebuilt
// from the store MUST be fed every entry hash from seq 0 (or from the
// pruning anchor).
type Tree struct {
	mu sync.RWMutex
	// levels[l][i-base[l]] is the hash of the perfect subtree at level l,
	// index i, covering leaves [i·2^l, (i+1)·2^l).
	levels [][][HashSize]byte
	// base[l] is the index of the first node stored at level l: 0, except
	// for a tree resumed from a pruning anchor (NewTreeAt), which stores
	// only the compact range of the pruned prefix.
	base []uint64
	size uint64
}

// NewTree returns an empty Tree.
func NewTree() *Tree { return &Tree{} }

// NewTreeAt returns a tree whose first size leaves are pruned and known only
// through their compact range (Anchor.Range, RootComputer.State). It serves
// roots at sizes ≥ size, consistency proofs from sizes ≥ size, and inclusion
// proofs for leaves ≥ size; requests that need a pruned node fail.
func NewTreeAt(size uint64, rangeHashes [][]byte) (*Tree, error) {
	ids := compact.RangeNodes(0, size, nil)
	if len(ids) != len(rangeHashes) {
		return nil, fmt.Errorf("ledger: tree at size %d: got %d range hashes, want %d", size, len(rangeHashes), len(ids))
	}
	t := &Tree{size: size}
	for l := 0; l < 64 && size>>l > 0; l++ {
		t.levels = append(t.levels, nil)
		t.base = append(t.base, size>>l) // first node at level l appended later
	}
	for i, id := range ids {
		if len(rangeHashes[i]) != HashSize {
			return nil, fmt.Errorf("ledger: tree at size %d: range hash %d is %d bytes, want %d", size, i, len(rangeHashes[i]), HashSize)
		}
		// Range nodes are the rightmost complete nodes of their levels.
		t.base[id.Level] = id.Index
		t.levels[id.Level] = [][HashSize]byte{[HashSize]byte(rangeHashes[i])}
	}
	return t, nil
}

// Append adds a leaf whose data is entryHash (the 32 raw bytes of the entry
// hash; leaf index = seq) and returns the new size.
func (t *Tree) Append(entryHash []byte) (uint64, error) {
	if len(entryHash) != HashSize {
		return 0, fmt.Errorf("ledger: tree append: entry hash is %d bytes, want %d", len(entryHash), HashSize)
	}
	var h [HashSize]byte
	hashLeaf(&h, entryHash)
	t.mu.Lock()
	defer t.mu.Unlock()
	index := t.size // index of the new node at the current level
	for level := 0; ; level++ {
		if level == len(t.levels) {
			t.levels = append(t.levels, nil)
			t.base = append(t.base, index)
		}
		t.levels[level] = append(t.levels[level], h)
		if index%2 == 0 {
			break
		}
		// index is odd: its left sibling index-1 exists (stored, or a
		// compact-range node of a pruned prefix) and the parent completes.
		left := t.levels[level][index-1-t.base[level]]
		copy(h[:], hashChildren(left[:], h[:]))
		index /= 2
	}
	t.size++
	return t.size, nil
}

// Size returns the number of leaves.
func (t *Tree) Size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.sizeLocked()
}

func (t *Tree) sizeLocked() uint64 { return t.size }

// node returns the stored hash of a perfect subtree inside [0, size); the
// caller holds mu. It fails only for nodes of a pruned prefix.
func (t *Tree) node(id compact.NodeID) ([]byte, error) {
	if int(id.Level) < len(t.levels) && id.Index >= t.base[id.Level] {
		if k := id.Index - t.base[id.Level]; k < uint64(len(t.levels[id.Level])) {
			h := t.levels[id.Level][k]
			return h[:], nil
		}
	}
	return nil, fmt.Errorf("ledger: merkle node (level %d, index %d) is pruned", id.Level, id.Index)
}

// Root returns the root hash of the tree at the given size (≤ Size()).
// Root(0) is SHA-256 of the empty string, per RFC 6962.
func (t *Tree) Root(size uint64) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n := t.sizeLocked(); size > n {
		return nil, fmt.Errorf("ledger: root at size %d: tree has only %d leaves", size, n)
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := t.node(id)
		if err != nil {
			return nil, fmt.Errorf("ledger: root at size %d: %w", size, err)
		}
		hashes[i] = h
	}
	r, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("ledger: root at size %d: %w", size, err)
	}
	return rangeRoot(r)
}

// InclusionProof returns the RFC 6962 audit path for leaf index in the tree
// of the given size, ordered from the leaf up, verifiable with
// proof.VerifyInclusion(Hasher, index, size, LeafHash(entryHash), p, root).
func (t *Tree) InclusionProof(index, size uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("ledger: inclusion proof for %d in size %d: %w", index, size, err)
	}
	return t.materialise(nodes, fmt.Sprintf("inclusion proof for %d in size %d", index, size), size)
}

// ConsistencyProof returns the RFC 6962 consistency proof between tree sizes
// m ≤ n, verifiable with proof.VerifyConsistency(Hasher, m, n, p, rootM, rootN).
func (t *Tree) ConsistencyProof(m, n uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(m, n)
	if err != nil {
		return nil, fmt.Errorf("ledger: consistency proof %d→%d: %w", m, n, err)
	}
	return t.materialise(nodes, fmt.Sprintf("consistency proof %d→%d", m, n), n)
}

func (t *Tree) materialise(nodes proof.Nodes, what string, size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n := t.sizeLocked(); size > n {
		return nil, fmt.Errorf("ledger: %s: tree has only %d leaves", what, n)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		// Every ID is a perfect subtree inside [0, size), hence stored
		// unless pruned; the copy keeps callers from aliasing the tree.
		h, err := t.node(id)
		if err != nil {
			return nil, fmt.Errorf("ledger: %s: %w", what, err)
		}
		hashes[i] = bytes.Clone(h)
	}
	p, err := nodes.Rehash(hashes, hashChildren)
	if err != nil {
		return nil, fmt.Errorf("ledger: %s: %w", what, err)
	}
	return p, nil
}

// rangeRoot returns the root of a compact range starting at 0 (the empty
// root for an empty range).
func rangeRoot(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return Hasher.EmptyRoot(), nil
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("ledger: merkle root at size %d: %w", r.End(), err)
	}
	return root, nil
}

// RootComputer computes Merkle roots over a stream of entry hashes in
// O(log n) memory, using a compact range [0, size). It is what the verifier
// uses; its State is what a pruning anchor stores. Not safe for concurrent
// use.
type RootComputer struct {
	r *compact.Range
}

// NewRootComputer returns a computer for an empty tree.
func NewRootComputer() *RootComputer {
	return &RootComputer{r: rangeFactory.NewEmptyRange(0)}
}

// NewRootComputerAt resumes a computer from a saved state: the hashes of the
// minimal perfect subtrees covering [0, size), left to right, as returned by
// State (and by Tree.RangeState).
func NewRootComputerAt(size uint64, hashes [][]byte) (*RootComputer, error) {
	for i, h := range hashes {
		if len(h) != HashSize {
			return nil, fmt.Errorf("ledger: compact range at size %d: hash %d is %d bytes, want %d", size, i, len(h), HashSize)
		}
	}
	r, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("ledger: compact range at size %d: %w", size, err)
	}
	return &RootComputer{r: r}, nil
}

// Append adds the leaf for an entry hash (32 raw bytes).
func (c *RootComputer) Append(entryHash []byte) error {
	if len(entryHash) != HashSize {
		return fmt.Errorf("ledger: root computer append: entry hash is %d bytes, want %d", len(entryHash), HashSize)
	}
	var h [HashSize]byte
	hashLeaf(&h, entryHash)
	return c.r.Append(h[:], nil)
}

// appendLeafHash adds an already computed leaf hash; leaf MUST NOT be
// modified afterwards (the range keeps it).
func (c *RootComputer) appendLeafHash(leaf []byte) error { return c.r.Append(bytes.Clone(leaf), nil) }

// Size returns the number of leaves appended so far (including the resumed
// prefix).
func (c *RootComputer) Size() uint64 { return c.r.End() }

// Root returns the root hash at the current size.
func (c *RootComputer) Root() ([]byte, error) { return rangeRoot(c.r) }

// State returns the compact range hashes covering [0, Size()), left to right
// (at most 64). Together with Size it lets a verifier resume.
func (c *RootComputer) State() [][]byte {
	h := c.r.Hashes()
	out := make([][]byte, len(h))
	for i := range h {
		out[i] = bytes.Clone(h[i])
	}
	return out
}

// RangeState returns the compact range hashes covering [0, size), i.e. what
// a pruning anchor at size stores (see Anchor).
func (t *Tree) RangeState(size uint64) ([][]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n := t.sizeLocked(); size > n {
		return nil, fmt.Errorf("ledger: range state at size %d: tree has only %d leaves", size, n)
	}
	ids := compact.RangeNodes(0, size, nil)
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := t.node(id)
		if err != nil {
			return nil, fmt.Errorf("ledger: range state at size %d: %w", size, err)
		}
		out[i] = bytes.Clone(h)
	}
	return out, nil
}

// Anchor builds the pruning anchor at size (see Anchor): signedNote MUST be
// the signed checkpoint at exactly size and lastHash the hash of entry
// size-1. The store calls it before deleting entries [0, size) and persists
// the result in the same transaction.
func (t *Tree) Anchor(size uint64, lastHash string, signedNote []byte) (*Anchor, error) {
	if size == 0 {
		return nil, fmt.Errorf("ledger: anchor at size 0: nothing to prune")
	}
	rng, err := t.RangeState(size)
	if err != nil {
		return nil, err
	}
	incl, err := t.InclusionProof(size-1, size)
	if err != nil {
		return nil, err
	}
	lh, err := Entry{Seq: size - 1, Hash: lastHash}.HashBytes()
	if err != nil {
		return nil, fmt.Errorf("ledger: anchor at size %d: %w", size, err)
	}
	root, err := t.Root(size)
	if err != nil {
		return nil, err
	}
	if err := proof.VerifyInclusion(Hasher, size-1, size, LeafHash(lh), incl, root); err != nil {
		return nil, fmt.Errorf("ledger: anchor at size %d: hash %s is not leaf %d: %w", size, lastHash, size-1, err)
	}
	cp, err := ParseCheckpoint(noteBody(signedNote))
	if err != nil {
		return nil, fmt.Errorf("ledger: anchor at size %d: %w", size, err)
	}
	if cp.Size != size || !bytes.Equal(cp.Root, root) {
		return nil, fmt.Errorf("ledger: anchor at size %d: checkpoint is for size %d / another root", size, cp.Size)
	}
	return &Anchor{Size: size, Hash: lastHash, Note: string(signedNote), Range: rng, Inclusion: incl}, nil
}

// noteBody returns the text of a signed note without verifying it.
func noteBody(msg []byte) []byte {
	if i := bytes.LastIndex(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1]
	}
	return msg
}
