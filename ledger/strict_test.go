package ledger

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVerifyRejectsLenientJSON: each line below hashes to the stored hash
// under a lenient reader (encoding/json keeps the last duplicate, folds case
// and ignores unknown members), so before strict reading all of them
// verified OK. Each must now fail, naming the entry's seq.
func TestVerifyRejectsLenientJSON(t *testing.T) {
	k := newTestKey(t, "herald.example/org_demo/k1")
	vs := verifiersFor(t, k)
	l := buildLog(t, 50, 10, func(uint64) testKey { return k })
	clean := l.export(t, exportOpts{consistency: true})
	wantOK(t, verifyBytes(t, clean, vs))

	const seq = 37
	actor := l.entries[seq].Actor
	realActor := `"actor":"` + actor + `"`
	for _, c := range []struct {
		name, want string
		edit       func(line string) string
	}{
		{"unknown member", `unknown member "note"`, func(s string) string {
			return strings.Replace(s, `"type":"entry",`, `"type":"entry","note":"approved by the board",`, 1)
		}},
		{"case-variant duplicate after", `unknown member "ACTOR"`, func(s string) string {
			return strings.Replace(s, realActor, realActor+`,"ACTOR":"mallory"`, 1)
		}},
		{"case-variant duplicate before", `unknown member "Actor"`, func(s string) string {
			return strings.Replace(s, realActor, `"Actor":"mallory",`+realActor, 1)
		}},
		{"duplicate member before the real one", `duplicate member "actor"`, func(s string) string {
			return strings.Replace(s, realActor, `"actor":"mallory",`+realActor, 1)
		}},
		{"escaped duplicate", `duplicate member "actor"`, func(s string) string {
			return strings.Replace(s, realActor, `"act\u006fr":"mallory",`+realActor, 1)
		}},
		{"duplicate inside attrs", `attrs: duplicate member "outcome"`, func(s string) string {
			return strings.Replace(s, `"attrs":{`, `"attrs":{"outcome":"deny",`, 1)
		}},
		{"duplicate inside refs", `refs: duplicate member "action"`, func(s string) string {
			return strings.Replace(s, `"refs":{`, `"refs":{"action":"act_forged",`, 1)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ls := splitLines(clean)
			i := entryLineIdx(t, ls, seq)
			edited := c.edit(ls[i])
			if edited == ls[i] {
				t.Fatalf("edit did not apply to %s", ls[i])
			}
			ls[i] = edited
			rep := verifyBytes(t, joinLines(ls), vs)
			wantBad(t, rep, seq, c.want)
			if !strings.Contains(rep.Problem, "entry seq 37") {
				t.Fatalf("problem does not name the seq: %q", rep.Problem)
			}
			// The streaming reader used by every other consumer is as
			// strict as the verifier.
			x := NewExportReader(strings.NewReader(string(joinLines(ls))))
			var rerr error
			for _, err := range x.All() {
				if err != nil {
					rerr = err
				}
			}
			if rerr == nil || !strings.Contains(rerr.Error(), c.want) {
				t.Fatalf("ExportReader error = %v, want %q", rerr, c.want)
			}
		})
	}

	// Other record types: an unknown member on a payload, checkpoint or
	// header line (or in the anchor) is as suspicious as on an entry.
	for _, c := range []struct {
		name, find, repl, want string
	}{
		{"payload", `{"type":"payload",`, `{"type":"payload","Purged":true,`, `unknown member "Purged"`},
		{"checkpoint", `{"type":"checkpoint",`, `{"type":"checkpoint","Note":"x",`, `unknown member "Note"`},
		{"header", `{"type":"header",`, `{"type":"header","from":7,`, `duplicate member "from"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := strings.Replace(string(clean), c.find, c.repl, 1)
			if s == string(clean) {
				t.Fatal("edit did not apply")
			}
			rep := verifyBytes(t, []byte(s), vs)
			if rep.OK || !strings.Contains(rep.Problem, c.want) {
				t.Fatalf("want failure mentioning %q:\n%s", c.want, rep)
			}
		})
	}

	t.Run("anchor member", func(t *testing.T) {
		out := l.export(t, exportOpts{from: 30})
		wantOK(t, verifyBytes(t, out, vs))
		s := strings.Replace(string(out), `"anchor":{`, `"anchor":{"Size":1,`, 1)
		rep := verifyBytes(t, []byte(s), vs)
		if rep.OK || !strings.Contains(rep.Problem, `anchor: unknown member "Size"`) {
			t.Fatalf("want an anchor failure:\n%s", rep)
		}
	})
}

// TestVerifyAcceptsCaseDistinctDataKeys: keys inside attrs and refs are
// data, so "a" and "A" there are two keys, both hashed, and verify.
func TestVerifyAcceptsCaseDistinctDataKeys(t *testing.T) {
	k := newTestKey(t, "herald.example/org_demo/k1")
	vs := verifiersFor(t, k)
	l := buildLog(t, 5, 100, func(uint64) testKey { return k })
	l.cps, l.cpSizes = map[uint64]string{}, nil
	e, err := Next(l.entries[len(l.entries)-1], KindActionDecided, "system", time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		map[string]string{"x": "1", "X": "2"}, map[string]any{"a": 1, "A": map[string]any{"b": 1, "B": 2}}, "")
	if err != nil {
		t.Fatal(err)
	}
	l.add(t, e)
	l.checkpoint(t, k)
	out := l.export(t, exportOpts{})
	if !regexp.MustCompile(`"A":\{"B":2,"b":1\}`).Match(out) {
		t.Fatalf("export does not carry the case-distinct keys:\n%s", out)
	}
	wantOK(t, verifyBytes(t, out, vs))
}
