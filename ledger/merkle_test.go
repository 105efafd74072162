package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
)

// --- A second, deliberately naive implementation straight from RFC 9162 §2.1,
// sharing no code with merkle.go, used to cross-check roots and proofs. ---

func refLeaf(d []byte) []byte {
	s := sha256.Sum256(append([]byte{0}, d...))
	return s[:]
}

func refNode(l, r []byte) []byte {
	s := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return s[:]
}

// refMTH is MTH(D[n]) from RFC 9162 §2.1.1.
func refMTH(d [][]byte) []byte {
	switch n := len(d); n {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		return refLeaf(d[0])
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return refNode(refMTH(d[:k]), refMTH(d[k:]))
	}
}

// refVerifyInclusion is RFC 9162 §2.1.3.2.
func refVerifyInclusion(index, size uint64, leafHash []byte, path [][]byte, root []byte) bool {
	if index >= size {
		return false
	}
	fn, sn, r := index, size-1, leafHash
	for _, p := range path {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = refNode(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = refNode(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(r, root)
}

// refVerifyConsistency is RFC 9162 §2.1.4.2.
func refVerifyConsistency(first, second uint64, path [][]byte, firstHash, secondHash []byte) bool {
	if first == second {
		return len(path) == 0 && bytes.Equal(firstHash, secondHash)
	}
	if first == 0 || first > second || len(path) == 0 {
		return false
	}
	if first&(first-1) == 0 {
		path = append([][]byte{firstHash}, path...)
	}
	fn, sn := first-1, second-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			fr = refNode(c, fr)
			sr = refNode(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = refNode(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(fr, firstHash) && bytes.Equal(sr, secondHash)
}

func leafData(i uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	s := sha256.Sum256(b[:])
	return s[:]
}

func TestHashChildrenMatchesRFC6962(t *testing.T) {
	a, b := leafData(1), leafData(2)
	if !bytes.Equal(hashChildren(a, b), Hasher.HashChildren(a, b)) || !bytes.Equal(hashChildren(a, b), refNode(a, b)) {
		t.Fatal("hashChildren differs from rfc6962")
	}
	var h [HashSize]byte
	hashLeaf(&h, a)
	if !bytes.Equal(h[:], LeafHash(a)) || !bytes.Equal(h[:], refLeaf(a)) {
		t.Fatal("hashLeaf differs from rfc6962")
	}
}

func TestTreeAgainstReference(t *testing.T) {
	const n = 70
	tree := NewTree()
	rc := NewRootComputer()
	var data [][]byte
	roots := [][]byte{refMTH(nil)}
	for i := uint64(0); i < n; i++ {
		d := leafData(i)
		data = append(data, d)
		if _, err := tree.Append(d); err != nil {
			t.Fatal(err)
		}
		if err := rc.Append(d); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, refMTH(data))
		got, err := rc.Root()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, roots[i+1]) {
			t.Fatalf("RootComputer at %d differs from reference", i+1)
		}
	}
	for size := uint64(0); size <= n; size++ {
		root, err := tree.Root(size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(root, roots[size]) {
			t.Fatalf("Root(%d) differs from reference MTH", size)
		}
		for idx := uint64(0); idx < size; idx++ {
			p, err := tree.InclusionProof(idx, size)
			if err != nil {
				t.Fatal(err)
			}
			lh := LeafHash(data[idx])
			if err := proof.VerifyInclusion(Hasher, idx, size, lh, p, root); err != nil {
				t.Fatalf("inclusion %d/%d: transparency-dev verifier: %v", idx, size, err)
			}
			if !refVerifyInclusion(idx, size, lh, p, root) {
				t.Fatalf("inclusion %d/%d: RFC 9162 verifier rejects", idx, size)
			}
			if size > 1 && refVerifyInclusion(idx, size, refLeaf(leafData(999)), p, root) {
				t.Fatalf("inclusion %d/%d: wrong leaf accepted", idx, size)
			}
		}
		for m := uint64(0); m <= size; m++ {
			p, err := tree.ConsistencyProof(m, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(Hasher, m, size, p, roots[m], root); err != nil {
				t.Fatalf("consistency %d→%d: transparency-dev verifier: %v", m, size, err)
			}
			if m > 0 && !refVerifyConsistency(m, size, p, roots[m], root) {
				t.Fatalf("consistency %d→%d: RFC 9162 verifier rejects", m, size)
			}
			if m > 0 && m < size && refVerifyConsistency(m, size, p, roots[m], roots[size-1]) {
				t.Fatalf("consistency %d→%d: wrong root accepted", m, size)
			}
		}
		// Resuming from the range state gives the same roots going forward.
		st, err := tree.RangeState(size)
		if err != nil {
			t.Fatal(err)
		}
		rc2, err := NewRootComputerAt(size, st)
		if err != nil {
			t.Fatal(err)
		}
		for i := size; i < n; i++ {
			if err := rc2.Append(data[i]); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := rc2.Root(); !bytes.Equal(got, roots[n]) {
			t.Fatalf("resumed at %d: root differs", size)
		}
	}
	if _, err := tree.InclusionProof(5, n+1); err == nil {
		t.Fatal("proof beyond size succeeded")
	}
	if _, err := tree.Root(n + 1); err == nil {
		t.Fatal("root beyond size succeeded")
	}
	if _, err := tree.Append([]byte{1}); err == nil {
		t.Fatal("short hash accepted")
	}
}

func TestTreeConcurrent(t *testing.T) {
	tree := NewTree()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); i < 500; i++ {
			if _, err := tree.Append(leafData(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 300; k++ {
				size := tree.Size()
				if size == 0 {
					continue
				}
				root, err := tree.Root(size)
				if err != nil {
					t.Error(err)
					return
				}
				idx := uint64(k) % size
				p, err := tree.InclusionProof(idx, size)
				if err != nil {
					t.Error(err)
					return
				}
				if err := proof.VerifyInclusion(Hasher, idx, size, LeafHash(leafData(idx)), p, root); err != nil {
					t.Error(fmt.Errorf("concurrent proof %d/%d: %w", idx, size, err))
					return
				}
			}
		}()
	}
	wg.Wait()
}

var (
	benchTreeOnce sync.Once
	benchTree     *Tree
)

func BenchmarkInclusionProof1M(b *testing.B) {
	const n = 1_000_000
	benchTreeOnce.Do(func() {
		benchTree = NewTree()
		for i := uint64(0); i < n; i++ {
			if _, err := benchTree.Append(leafData(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	root, err := benchTree.Root(n)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		idx := (i * 7919) % n
		i++
		if _, err := benchTree.InclusionProof(idx, n); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	p, _ := benchTree.InclusionProof(123456, n)
	if err := proof.VerifyInclusion(Hasher, 123456, n, LeafHash(leafData(123456)), p, root); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkTreeAppend(b *testing.B) {
	tree := NewTree()
	d := leafData(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tree.Append(d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTreeResumedFromAnchor(t *testing.T) {
	const n = 40
	full := NewTree()
	var data [][]byte
	for i := uint64(0); i < n; i++ {
		data = append(data, leafData(i))
		if _, err := full.Append(data[i]); err != nil {
			t.Fatal(err)
		}
	}
	for a := uint64(0); a <= n; a++ {
		st, err := full.RangeState(a)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTreeAt(a, st)
		if err != nil {
			t.Fatal(err)
		}
		for i := a; i < n; i++ {
			if _, err := tr.Append(data[i]); err != nil {
				t.Fatal(err)
			}
		}
		if tr.Size() != n {
			t.Fatalf("anchor %d: size %d", a, tr.Size())
		}
		for size := a; size <= n; size++ {
			want, _ := full.Root(size)
			got, err := tr.Root(size)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("anchor %d: root(%d): %v", a, size, err)
			}
			for idx := a; idx < size; idx++ {
				p, err := tr.InclusionProof(idx, size)
				if err != nil {
					t.Fatalf("anchor %d: inclusion %d/%d: %v", a, idx, size, err)
				}
				if !refVerifyInclusion(idx, size, refLeaf(data[idx]), p, want) {
					t.Fatalf("anchor %d: inclusion %d/%d does not verify", a, idx, size)
				}
			}
			for m := a; m <= size; m++ {
				p, err := tr.ConsistencyProof(m, size)
				if err != nil {
					t.Fatalf("anchor %d: consistency %d→%d: %v", a, m, size, err)
				}
				rm, _ := full.Root(m)
				if err := proof.VerifyConsistency(Hasher, m, size, p, rm, want); err != nil {
					t.Fatalf("anchor %d: consistency %d→%d: %v", a, m, size, err)
				}
			}
		}
		if _, err := tr.InclusionProof(0, n); a >= 2 && err == nil {
			t.Fatalf("anchor %d: proof for pruned leaf 0 succeeded", a) // needs leaf 1, pruned
		}
	}
	if _, err := NewTreeAt(5, nil); err == nil {
		t.Fatal("NewTreeAt with missing range accepted")
	}
}
