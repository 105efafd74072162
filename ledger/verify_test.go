package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// --- raw line surgery, as an attacker with database access would do ---

func splitLines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func joinLines(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }

func cpLineIdx(t *testing.T, ls []string, size uint64) int {
	t.Helper()
	prefix := fmt.Sprintf(`{"type":"checkpoint","size":%d,`, size)
	for i, l := range ls {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	t.Fatalf("no checkpoint line for size %d", size)
	return -1
}

func entryLineIdx(t *testing.T, ls []string, seq uint64) int {
	t.Helper()
	prefix := fmt.Sprintf(`{"type":"entry","seq":%d,`, seq)
	for i, l := range ls {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	t.Fatalf("no entry line for seq %d", seq)
	return -1
}

// editLine decodes line i as a JSON object, applies f and re-encodes it.
func editLine(t *testing.T, ls []string, i int, f func(m map[string]any)) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(ls[i]))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	ls[i] = string(b)
}

func verifyBytes(t *testing.T, b []byte, vs note.Verifiers) Report {
	t.Helper()
	rep, err := Verify(context.Background(), bytes.NewReader(b), vs)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func wantOK(t *testing.T, rep Report) {
	t.Helper()
	if !rep.OK {
		t.Fatalf("verification failed:\n%s", rep)
	}
}

func wantBad(t *testing.T, rep Report, seq uint64, contains string) {
	t.Helper()
	if rep.OK {
		t.Fatalf("tampering not detected:\n%s", rep)
	}
	if rep.FirstBadSeq == nil || *rep.FirstBadSeq != seq {
		t.Fatalf("first bad seq = %v, want %d\n%s", fmtSeq(rep.FirstBadSeq), seq, rep)
	}
	if !strings.Contains(rep.Problem, contains) {
		t.Fatalf("problem %q does not mention %q", rep.Problem, contains)
	}
	if !strings.Contains(rep.String(), "FAILED") {
		t.Fatalf("report string does not say FAILED:\n%s", rep)
	}
}

func fmtSeq(s *uint64) string {
	if s == nil {
		return "nil"
	}
	return fmt.Sprint(*s)
}

// rechain re-seals entries[from:] after a modification of entries[:from],
// as an attacker who can write the database but not sign would do.
func rechain(t *testing.T, head []Entry, tail []Entry) []Entry {
	t.Helper()
	out := append([]Entry(nil), head...)
	for _, e := range tail {
		n, err := Next(out[len(out)-1], e.Kind, e.Actor, e.Time, e.Refs, e.Attrs, e.PayloadHash)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestVerifyTamperSuite(t *testing.T) {
	k := newTestKey(t, "herald.example/org_demo/k1")
	vs := verifiersFor(t, k)
	const n, every = 50, 10
	l := buildLog(t, n, every, func(uint64) testKey { return k })
	clean := l.export(t, exportOpts{consistency: true})

	t.Run("clean", func(t *testing.T) {
		rep := verifyBytes(t, clean, vs)
		wantOK(t, rep)
		if rep.Entries != n || rep.Checkpoints != 5 || rep.PayloadsVerified != 16 || rep.Uncovered != 0 {
			t.Fatalf("unexpected counts:\n%s", rep)
		}
		if !strings.HasPrefix(rep.String(), "OK") {
			t.Fatal(rep.String())
		}
	})

	for _, field := range []struct {
		name string
		f    func(m map[string]any)
	}{
		{"actor", func(m map[string]any) { m["actor"] = "principal_evil" }},
		{"time", func(m map[string]any) { m["time"] = "2026-11-21T07:59:59.000000Z" }},
		{"attrs", func(m map[string]any) { m["attrs"].(map[string]any)["outcome"] = "deny" }},
		{"refs", func(m map[string]any) { delete(m["refs"].(map[string]any), "contact_ref") }},
		{"kind", func(m map[string]any) { m["kind"] = KindActionApproved }},
		{"seq", func(m map[string]any) { m["seq"] = json.Number("37") }}, // seq 38 claims 37
	} {
		t.Run("edit "+field.name, func(t *testing.T) {
			ls := splitLines(clean)
			seq := uint64(37)
			if field.name == "seq" {
				seq = 38
				ls = append(ls[:entryLineIdx(t, ls, 37)], ls[entryLineIdx(t, ls, 37)+1:]...)
			}
			editLine(t, ls, entryLineIdx(t, ls, seq), field.f)
			want := "altered"
			if field.name == "seq" {
				seq = 37
			}
			wantBad(t, verifyBytes(t, joinLines(ls), vs), seq, want)
		})
	}

	t.Run("edit and re-hash one entry", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 37)
		editLine(t, ls, i, func(m map[string]any) { m["actor"] = "principal_evil" })
		rec, err := decodeLine([]byte(ls[i]), i+1)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := rec.Entry.ComputeHash()
		editLine(t, ls, i, func(m map[string]any) { m["hash"] = h })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 37, "do not link")
	})

	t.Run("delete entry", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 37)
		ls = append(ls[:i], ls[i+1:]...)
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 37, "missing")
	})

	t.Run("delete entry with payload", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 36) // 36 has a payload line
		ls = append(ls[:i], ls[i+2:]...)
		rep := verifyBytes(t, joinLines(ls), vs)
		if rep.OK || rep.FirstBadSeq == nil || *rep.FirstBadSeq != 36 {
			t.Fatalf("want failure at 36:\n%s", rep)
		}
	})

	t.Run("swap entries", func(t *testing.T) {
		ls := splitLines(clean)
		i, j := entryLineIdx(t, ls, 37), entryLineIdx(t, ls, 38)
		ls[i], ls[j] = ls[j], ls[i]
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 37, "missing")
	})

	t.Run("swap entry contents keeping seqs", func(t *testing.T) {
		ls := splitLines(clean)
		i, j := entryLineIdx(t, ls, 37), entryLineIdx(t, ls, 38)
		var a, b map[string]any
		_ = json.Unmarshal([]byte(ls[i]), &a)
		_ = json.Unmarshal([]byte(ls[j]), &b)
		editLine(t, ls, i, func(m map[string]any) { m["actor"], m["kind"], m["attrs"] = b["actor"], b["kind"], b["attrs"] })
		editLine(t, ls, j, func(m map[string]any) { m["actor"], m["kind"], m["attrs"] = a["actor"], a["kind"], a["attrs"] })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 37, "altered")
	})

	t.Run("insert forged entry without re-chaining", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 37)
		forged, err := Next(l.entries[36], KindActionApproved, "principal_evil", l.entries[36].Time, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w := NewExportWriter(&buf)
		_ = w.WriteHeader(Header{Org: "org_demo", From: 37, Anchor: &Anchor{Size: 37}})
		_ = w.WriteEntry(forged)
		_ = w.Flush()
		fl := splitLines(buf.Bytes())[1]
		ls = append(ls[:i], append([]string{fl}, ls[i:]...)...)
		// The forged entry takes seq 37; the genuine 37 then fails.
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 38, "expected entry seq 38")
	})

	t.Run("insert forged entry and re-chain", func(t *testing.T) {
		forged, err := Next(l.entries[36], KindActionApproved, "principal_evil", l.entries[36].Time, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		entries := rechain(t, append(append([]Entry(nil), l.entries[:37]...), forged), l.entries[37:])
		fl := *l
		fl.entries = entries
		out := fl.export(t, exportOpts{})
		// Caught by the checkpoint at 40; the one at 30 still matched.
		wantBad(t, verifyBytes(t, out, vs), 30, "do not match the signed checkpoint at size 40")
	})

	t.Run("delete entry and re-chain", func(t *testing.T) {
		entries := rechain(t, l.entries[:37], l.entries[38:])
		fl := *l
		fl.entries = entries
		wantBad(t, verifyBytes(t, fl.export(t, exportOpts{}), vs), 30, "do not match the signed checkpoint at size 40")
	})

	t.Run("truncate tail after signed checkpoint", func(t *testing.T) {
		var kept []string
		dropping := false
		for _, line := range splitLines(clean) {
			rec, err := decodeLine([]byte(line), 0)
			if err != nil {
				t.Fatal(err)
			}
			switch rec.Type {
			case RecordEntry:
				dropping = rec.Entry.Seq >= 45
			case RecordCheckpoint:
				dropping = false // the signed checkpoints stay published
			}
			if !dropping {
				kept = append(kept, line)
			}
		}
		wantBad(t, verifyBytes(t, joinLines(kept), vs), 45, "tail truncated")
	})

	t.Run("truncate tail with its checkpoint", func(t *testing.T) {
		// Dropping the checkpoint too leaves the (unsigned) header count;
		// beyond that only a previously seen checkpoint can tell.
		ls := splitLines(clean)
		ls = ls[:entryLineIdx(t, ls, 45)]
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 45, "header announces")
	})

	t.Run("replace payload", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 12) + 1
		editLine(t, ls, i, func(m map[string]any) { m["data"] = "bWFsaWNpb3Vz" })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 12, "payload of entry 12 was replaced")
	})

	t.Run("replace payload and salt", func(t *testing.T) {
		ls := splitLines(clean)
		i := entryLineIdx(t, ls, 12) + 1
		editLine(t, ls, i, func(m map[string]any) { m["data"], m["salt"] = "bWFsaWNpb3Vz", "AAAAAAAAAAAAAAAAAAAAAA==" })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 12, "replaced")
	})

	t.Run("forge checkpoint with another key", func(t *testing.T) {
		evil := newTestKey(t, "herald.example/org_demo/k1") // same name, different key
		root, _ := l.tree.Root(40)
		forged, err := Sign(Checkpoint{Origin: testOrigin, Size: 40, Root: root}, evil.signer)
		if err != nil {
			t.Fatal(err)
		}
		ls := splitLines(clean)
		editLine(t, ls, cpLineIdx(t, ls, 40), func(m map[string]any) { m["note"] = string(forged) })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "not signed by a trusted key")
	})

	t.Run("edit checkpoint body", func(t *testing.T) {
		ls := splitLines(clean)
		editLine(t, ls, cpLineIdx(t, ls, 40), func(m map[string]any) {
			m["note"] = strings.Replace(m["note"].(string), "\n40\n", "\n39\n", 1)
		})
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "trusted key")
	})

	t.Run("bad consistency proof", func(t *testing.T) {
		ls := splitLines(clean)
		editLine(t, ls, cpLineIdx(t, ls, 40), func(m map[string]any) {
			m["consistency"].([]any)[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		})
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "not consistent")
	})

	t.Run("no checkpoint", func(t *testing.T) {
		var kept []string
		for _, line := range splitLines(clean) {
			if !strings.HasPrefix(line, `{"type":"checkpoint"`) {
				kept = append(kept, line)
			}
		}
		wantBad(t, verifyBytes(t, joinLines(kept), vs), 0, "no signed checkpoint")
	})

	t.Run("malformed line", func(t *testing.T) {
		ls := splitLines(clean)
		ls[5] = "{garbage"
		rep := verifyBytes(t, joinLines(ls), vs)
		if rep.OK || !strings.Contains(rep.Problem, "line 6") {
			t.Fatalf("malformed line not reported:\n%s", rep)
		}
	})

	t.Run("entry of another org", func(t *testing.T) {
		ls := splitLines(clean)
		editLine(t, ls, 0, func(m map[string]any) { m["org"] = "org_other" })
		rep := verifyBytes(t, joinLines(ls), vs)
		wantBad(t, rep, 0, "belongs to org")
	})
}

func TestVerifyErasureAndRetention(t *testing.T) {
	k := newTestKey(t, "k1")
	l := buildLog(t, 30, 10, func(uint64) testKey { return k })
	// Erase: delete the payloads of every other payload-bearing entry.
	purged := 0
	for i, e := range l.entries {
		if e.PayloadHash != "" && i%2 == 0 {
			l.payloads[e.PayloadHash] = PayloadRecord{Hash: e.PayloadHash, Purged: true}
			purged++
		}
	}
	rep := verifyBytes(t, l.export(t, exportOpts{}), verifiersFor(t, k))
	wantOK(t, rep)
	if rep.PayloadsPurged != uint64(purged) || rep.PayloadsVerified+rep.PayloadsPurged != 9 {
		t.Fatalf("counts:\n%s", rep)
	}
	rep = verifyBytes(t, l.export(t, exportOpts{noPayloads: true}), verifiersFor(t, k))
	wantOK(t, rep)
	if rep.PayloadsMissing != 9 {
		t.Fatalf("missing:\n%s", rep)
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	k1, k2 := newTestKey(t, "herald.example/org_demo/2026-01"), newTestKey(t, "herald.example/org_demo/2026-11")
	l := buildLog(t, 50, 10, func(size uint64) testKey {
		if size < 30 {
			return k1
		}
		return k2
	})
	out := l.export(t, exportOpts{consistency: true})
	wantOK(t, verifyBytes(t, out, verifiersFor(t, k1, k2)))
	wantBad(t, verifyBytes(t, out, verifiersFor(t, k2)), 0, "unknown key")
}

func TestVerifyPrunedAnchor(t *testing.T) {
	k := newTestKey(t, "k1")
	vs := verifiersFor(t, k)
	l := buildLog(t, 57, 10, func(uint64) testKey { return k })
	out := l.export(t, exportOpts{from: 30, consistency: true})
	rep := verifyBytes(t, out, vs)
	wantOK(t, rep)
	if rep.From != 30 || rep.Entries != 27 || rep.Checkpoints != 4 || rep.Uncovered != 0 {
		t.Fatalf("counts:\n%s", rep)
	}

	t.Run("tampered anchor hash", func(t *testing.T) {
		ls := splitLines(out)
		editLine(t, ls, 0, func(m map[string]any) { m["anchor"].(map[string]any)["hash"] = strings.Repeat("ab", 32) })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "anchor hash")
	})
	t.Run("tampered anchor range", func(t *testing.T) {
		ls := splitLines(out)
		editLine(t, ls, 0, func(m map[string]any) {
			m["anchor"].(map[string]any)["range"].([]any)[0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		})
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "compact range")
	})
	t.Run("no anchor", func(t *testing.T) {
		ls := splitLines(out)
		editLine(t, ls, 0, func(m map[string]any) { delete(m, "anchor") })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 30, "without an anchor")
	})
	t.Run("edit after anchor", func(t *testing.T) {
		ls := splitLines(out)
		editLine(t, ls, entryLineIdx(t, ls, 31), func(m map[string]any) { m["actor"] = "x" })
		wantBad(t, verifyBytes(t, joinLines(ls), vs), 31, "altered")
	})
}

func TestVerifyUncoveredTail(t *testing.T) {
	k := newTestKey(t, "k1")
	l := buildLog(t, 25, 10, func(uint64) testKey { return k })
	// Drop the final (size 25) checkpoint: 5 entries are chain-verified only.
	delete(l.cps, 25)
	rep := verifyBytes(t, l.export(t, exportOpts{}), verifiersFor(t, k))
	wantOK(t, rep)
	if rep.Uncovered != 5 || !strings.Contains(rep.String(), "no signature covers them") {
		t.Fatalf("uncovered:\n%s", rep)
	}
}

func TestVerifyEarlyCheckpoint(t *testing.T) {
	// A checkpoint line may precede the entries it covers; it is checked
	// once the tree reaches its size.
	k := newTestKey(t, "k1")
	l := buildLog(t, 20, 10, func(uint64) testKey { return k })
	ls := splitLines(l.export(t, exportOpts{}))
	i := cpLineIdx(t, ls, 20)
	cp := ls[i]
	ls = append(ls[:i], ls[i+1:]...)
	j := entryLineIdx(t, ls, 15)
	ls = append(ls[:j], append([]string{cp}, ls[j:]...)...)
	wantOK(t, verifyBytes(t, joinLines(ls), verifiersFor(t, k)))
}

func TestVerifyCancelled(t *testing.T) {
	k := newTestKey(t, "k1")
	l := buildLog(t, 5, 10, func(uint64) testKey { return k })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, bytes.NewReader(l.export(t, exportOpts{})), verifiersFor(t, k)); err == nil {
		t.Fatal("cancelled verify succeeded")
	}
}

// benchExport and benchKey are built once per process: with -count N the
// benchmark runs N times and the export must stay signed by the same key.
var (
	benchExport []byte
	benchKey    testKey
)

func BenchmarkVerify(b *testing.B) {
	const n = 200_000
	if benchExport == nil {
		benchKey = newTestKey(b, "herald.example/org_demo/k1")
		benchExport = buildLog(b, n, DefaultCheckpointEntries, func(uint64) testKey { return benchKey }).export(b, exportOpts{})
	}
	vs := verifiersFor(b, benchKey)
	b.SetBytes(int64(len(benchExport)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		rep, err := Verify(context.Background(), bytes.NewReader(benchExport), vs)
		if err != nil || !rep.OK || rep.Entries != n {
			b.Fatalf("%v\n%s", err, rep)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	if cpu > 0 {
		// Includes the GC's CPU time; on an idle machine wall ≈ CPU.
		b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "entries/cpu-s")
	}
}

// TestVerifyBatchBoundaries reruns the tamper suite with tiny batches, so
// that every check also happens across batch boundaries of the parallel
// pre-hashing stage.
func TestVerifyBatchBoundaries(t *testing.T) {
	saved := verifyBatchLines
	defer func() { verifyBatchLines = saved }()
	for _, n := range []int{1, 2, 7} {
		verifyBatchLines = n
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			TestVerifyTamperSuite(t)
			TestVerifyPrunedAnchor(t)
			TestVerifyErasureAndRetention(t)
		})
	}
}
