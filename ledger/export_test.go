package ledger

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "herald.example/org_demo"

// testLog is an in-memory ledger like the store keeps: entries, payloads by
// hash, a tree and the signed checkpoints.
type testLog struct {
	entries  []Entry
	payloads map[string]PayloadRecord // by hash; Purged when erased
	tree     *Tree
	cps      map[uint64]string // size -> signed note
	cpSizes  []uint64
}

type testKey struct {
	signer note.Signer
	vkey   string
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, vkey}
}

func verifiersFor(t testing.TB, keys ...testKey) note.Verifiers {
	t.Helper()
	var vk []string
	for _, k := range keys {
		vk = append(vk, k.vkey)
	}
	vs, err := NewVerifiers(vk...)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// buildLog appends n entries (genesis included); every third entry has a
// payload. A checkpoint is signed every cpEvery entries and at the end;
// keyFor picks the signing key by checkpoint size (key rotation).
func buildLog(t testing.TB, n int, cpEvery uint64, keyFor func(size uint64) testKey) *testLog {
	t.Helper()
	l := &testLog{payloads: map[string]PayloadRecord{}, tree: NewTree(), cps: map[uint64]string{}}
	base := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	g, err := Genesis("org_demo", base)
	if err != nil {
		t.Fatal(err)
	}
	l.add(t, g)
	for i := 1; i < n; i++ {
		ph := ""
		if i%3 == 0 {
			salt := NewSalt()
			data := []byte(fmt.Sprintf("message text %d", i))
			ph = HashPayload(salt, data)
			l.payloads[ph] = PayloadRecord{Hash: ph, Salt: salt, Data: data}
		}
		e, err := Next(l.entries[i-1], Kinds()[2+i%14], fmt.Sprintf("principal_%d", i%5), base.Add(time.Duration(i)*time.Millisecond),
			map[string]string{"action": fmt.Sprintf("act_%d", i/4), "contact_ref": fmt.Sprintf("%064x", i%7)},
			map[string]any{"outcome": "allow", "rules": []string{"consent.ok"}, "attempt": i % 3},
			ph)
		if err != nil {
			t.Fatal(err)
		}
		l.add(t, e)
		if uint64(i+1)%cpEvery == 0 {
			l.checkpoint(t, keyFor(uint64(i+1)))
		}
	}
	if l.tree.Size()%cpEvery != 0 {
		l.checkpoint(t, keyFor(l.tree.Size()))
	}
	return l
}

func (l *testLog) add(t testing.TB, e Entry) {
	t.Helper()
	l.entries = append(l.entries, e)
	hb, err := e.HashBytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.tree.Append(hb); err != nil {
		t.Fatal(err)
	}
}

func (l *testLog) checkpoint(t testing.TB, k testKey) {
	t.Helper()
	size := l.tree.Size()
	root, err := l.tree.Root(size)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Sign(Checkpoint{Origin: testOrigin, Size: size, Root: root}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	l.cps[size] = string(msg)
	l.cpSizes = append(l.cpSizes, size)
}

type exportOpts struct {
	from        uint64 // must be 0 or a checkpoint size
	consistency bool
	noPayloads  bool
}

// export writes the log through ExportWriter, as the store's export
// endpoint does.
func (l *testLog) export(t testing.TB, o exportOpts) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewExportWriter(&buf)
	h := Header{Org: "org_demo", Origin: testOrigin, From: o.from, To: uint64(len(l.entries))}
	if o.from > 0 {
		h.Anchor = l.anchor(t, o.from)
	}
	if err := w.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	prevCP := o.from
	for _, e := range l.entries[o.from:] {
		if err := w.WriteEntry(e); err != nil {
			t.Fatal(err)
		}
		if p, ok := l.payloads[e.PayloadHash]; ok && !o.noPayloads {
			if err := w.WritePayload(p); err != nil {
				t.Fatal(err)
			}
		}
		if msg, ok := l.cps[e.Seq+1]; ok {
			rec := CheckpointRecord{Size: e.Seq + 1, Note: msg}
			if o.consistency && prevCP > 0 {
				p, err := l.tree.ConsistencyProof(prevCP, e.Seq+1)
				if err != nil {
					t.Fatal(err)
				}
				rec.Consistency = p
			}
			if err := w.WriteCheckpoint(rec); err != nil {
				t.Fatal(err)
			}
			prevCP = e.Seq + 1
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// anchor builds the pruning anchor at a checkpoint size, as the store keeps it.
func (l *testLog) anchor(t testing.TB, size uint64) *Anchor {
	t.Helper()
	msg, ok := l.cps[size]
	if !ok {
		t.Fatalf("no checkpoint at %d", size)
	}
	a, err := l.tree.Anchor(size, l.entries[size-1].Hash, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.tree.Anchor(size, l.entries[size-2].Hash, []byte(msg)); err == nil {
		t.Fatal("anchor with the wrong hash accepted")
	}
	return a
}

func TestExportRoundTrip(t *testing.T) {
	k := newTestKey(t, "herald.example/org_demo/k1")
	l := buildLog(t, 25, 10, func(uint64) testKey { return k })
	out := l.export(t, exportOpts{consistency: true})
	r := NewExportReader(bytes.NewReader(out))
	var entries []Entry
	var cps, payloads int
	for rec, err := range r.All() {
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Type {
		case RecordHeader:
			if rec.Header.Org != "org_demo" || rec.Header.To != 25 || rec.Header.Version != 1 {
				t.Fatalf("header %+v", rec.Header)
			}
		case RecordEntry:
			if err := rec.Entry.Check(); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, *rec.Entry)
		case RecordCheckpoint:
			cps++
		case RecordPayload:
			payloads++
		}
	}
	if len(entries) != 25 || cps != 3 || payloads != 8 {
		t.Fatalf("entries %d, checkpoints %d, payloads %d", len(entries), cps, payloads)
	}
	for i := range entries {
		if entries[i].Hash != l.entries[i].Hash || !entries[i].Time.Equal(l.entries[i].Time) {
			t.Fatalf("entry %d differs after round trip", i)
		}
	}
	first := strings.SplitN(string(out), "\n", 3)
	if !strings.HasPrefix(first[0], `{"type":"header","version":1,"org":"org_demo"`) || !strings.HasPrefix(first[1], `{"type":"entry","seq":0,"org":"org_demo","time":"2026-11-21T08:00:00.000000Z"`) {
		t.Fatalf("unexpected wire form:\n%s\n%s", first[0], first[1])
	}
}

func TestExportWriterEnforcesOrder(t *testing.T) {
	k := newTestKey(t, "k")
	l := buildLog(t, 5, 10, func(uint64) testKey { return k })
	w := NewExportWriter(io.Discard)
	if err := w.WriteEntry(l.entries[0]); err == nil {
		t.Fatal("entry before header accepted")
	}
	if err := w.WriteHeader(Header{Org: "org_demo", From: 3}); err == nil {
		t.Fatal("from without anchor accepted")
	}
	if err := w.WriteHeader(Header{Org: "org_demo"}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEntry(l.entries[1]); err == nil {
		t.Fatal("gap accepted")
	}
	if err := w.WriteEntry(l.entries[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.WritePayload(PayloadRecord{Hash: strings.Repeat("0", 64)}); err == nil {
		t.Fatal("payload without entry accepted")
	}
	if err := w.WriteEntry(l.entries[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteCheckpoint(CheckpointRecord{Size: 1}); err == nil {
		t.Fatal("late checkpoint accepted")
	}
}

func TestExportReaderMalformed(t *testing.T) {
	for _, s := range []string{`{"type":"nope"}`, `{"type":"entry"}`, `not json`, `{"type":"entry","seq":1,"time":"yesterday"}`, `{"type":"checkpoint"}`} {
		_, err := NewExportReader(strings.NewReader(s + "\n")).Next()
		if err == nil {
			t.Errorf("%s: no error", s)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	k := newTestKey(t, "k")
	l := buildLog(t, 4, 10, func(uint64) testKey { return k })
	l.entries[2].Actor = "=cmd|' /C calc'!A0" // formula injection attempt
	var buf bytes.Buffer
	seq := func(yield func(Entry, error) bool) {
		for _, e := range l.entries {
			if !yield(e, nil) {
				return
			}
		}
	}
	if err := WriteCSV(&buf, iter.Seq2[Entry, error](seq)); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 || strings.Join(rows[0], ",") != strings.Join(CSVColumns, ",") {
		t.Fatalf("rows %v", rows)
	}
	if rows[3][4] != "'=cmd|' /C calc'!A0" {
		t.Fatalf("formula not neutralised: %q", rows[3][4])
	}
	var refs map[string]string
	if err := json.Unmarshal([]byte(rows[2][5]), &refs); err != nil || refs["action"] == "" {
		t.Fatalf("refs cell %q: %v", rows[2][5], err)
	}
}

// BenchmarkExportWrite streams entries through ExportWriter into io.Discard:
// B/op and allocs/op per entry stay flat, i.e. exporting is constant-memory.
func BenchmarkExportWrite(b *testing.B) {
	k := newTestKey(b, "k")
	l := buildLog(b, 1000, DefaultCheckpointEntries, func(uint64) testKey { return k })
	w := NewExportWriter(io.Discard)
	if err := w.WriteHeader(Header{Org: "org_demo"}); err != nil {
		b.Fatal(err)
	}
	e := l.entries[1]
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		e.Seq = seq
		if err := w.WriteEntry(e); err != nil {
			b.Fatal(err)
		}
		seq++
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
