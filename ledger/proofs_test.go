package ledger

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestInclusionAndConsistencyBundles(t *testing.T) {
	k := newTestKey(t, "herald.example/org_demo/k1")
	vs := verifiersFor(t, k)
	l := buildLog(t, 35, 10, func(uint64) testKey { return k })
	cp30 := []byte(l.cps[30])

	for _, seq := range []uint64{0, 7, 29} {
		b, err := l.tree.ProveInclusion(seq, l.entries[seq].Hash, cp30)
		if err != nil {
			t.Fatal(err)
		}
		e := l.entries[seq]
		b.Entry = &e
		// Round trip through JSON, as a third party would receive it.
		raw, _ := json.Marshal(b)
		var got InclusionBundle
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		cp, err := VerifyInclusionBundle(got, vs)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if cp.Size != 30 || cp.Origin != testOrigin {
			t.Fatalf("checkpoint %+v", cp)
		}
		if !refVerifyInclusion(seq, 30, LeafHash(mustHashBytes(t, e)), got.Proof, cp.Root) {
			t.Fatalf("seq %d: RFC 9162 verifier rejects the bundle", seq)
		}
		// Tampering: another entry's hash, an edited entry, another key.
		bad := got
		bad.EntryHash = l.entries[seq+1].Hash
		bad.Entry = nil
		if _, err := VerifyInclusionBundle(bad, vs); err == nil {
			t.Fatal("wrong hash accepted")
		}
		bad = got
		edited := *got.Entry
		edited.Actor = "x"
		bad.Entry = &edited
		if _, err := VerifyInclusionBundle(bad, vs); err == nil {
			t.Fatal("edited entry accepted")
		}
		if _, err := VerifyInclusionBundle(got, verifiersFor(t, newTestKey(t, "other"))); err == nil {
			t.Fatal("unknown key accepted")
		}
	}
	if _, err := l.tree.ProveInclusion(30, l.entries[30].Hash, cp30); err == nil {
		t.Fatal("proof beyond checkpoint size accepted")
	}
	if _, err := l.tree.ProveInclusion(3, l.entries[4].Hash, cp30); err == nil {
		t.Fatal("bundle with wrong hash built")
	}

	cb, err := l.tree.ProveConsistency([]byte(l.cps[10]), []byte(l.cps[35]))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := VerifyConsistencyBundle(cb, vs); err != nil {
		t.Fatal(err)
	}
	bad := cb
	bad.Proof = append([][]byte(nil), cb.Proof...)
	bad.Proof[0] = make([]byte, HashSize)
	if _, _, err := VerifyConsistencyBundle(bad, vs); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("bad consistency proof: %v", err)
	}
	bad = cb
	bad.From = 20
	if _, _, err := VerifyConsistencyBundle(bad, vs); err == nil {
		t.Fatal("size mismatch accepted")
	}
}

func mustHashBytes(t *testing.T, e Entry) []byte {
	t.Helper()
	b, err := e.HashBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
