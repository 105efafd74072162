package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestLedgerTamperIsDetected tampers with a stored log as a database
// superuser would (bypassing the append-only triggers) and checks that
// verification of the live database (what `herald ledger verify --online`
// runs) reports each change with the right first bad seq.
func TestLedgerTamperIsDetected(t *testing.T) {
	// The log: genesis, 5 actions (20 entries), checkpoint at 21 (its entry
	// is seq 21), 5 actions, checkpoint at 42, 3 actions, checkpoint at 55;
	// 56 entries in all.
	build := func(t *testing.T, b storetest.Backend) *ledgerFixture {
		f := newLedgerFixture(t, b)
		for _, n := range []int{5, 5, 3} {
			f.actions(t, n)
			f.checkpoint(t)
		}
		if rep := f.verify(t); !rep.OK || rep.Checkpoints != 3 || rep.Entries != 56 {
			t.Fatalf("untampered log:\n%s", rep)
		}
		return f
	}
	cases := []struct {
		name    string
		tamper  func(t *testing.T, f *ledgerFixture, b storetest.Backend)
		badSeq  uint64
		problem string
	}{
		{"edit a field", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.superuser(t, b, `UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 30`)
		}, 30, "altered"},
		{"edit attrs", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.superuser(t, b, `UPDATE ledger_entries SET attrs = '{"outcome":"deny","rules":["consent.ok"]}' WHERE seq = 23`)
		}, 23, "altered"},
		{"delete an entry", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.superuser(t, b, `DELETE FROM ledger_entries WHERE seq = 30`)
		}, 30, "missing"},
		{"swap two entries", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.superuser(t, b, `UPDATE ledger_entries SET seq = -1 WHERE seq = 30`,
				`UPDATE ledger_entries SET seq = 30 WHERE seq = 31`,
				`UPDATE ledger_entries SET seq = 31 WHERE seq = -1`)
		}, 30, "altered"},
		{"insert a forged entry and re-hash the chain", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.forgeFrom(t, b, 30)
		}, 21, "do not match the signed checkpoint at size 42"},
		{"truncate the tail after a signed checkpoint", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			f.superuser(t, b, `DELETE FROM ledger_entries WHERE seq >= 50`,
				`UPDATE ledger_heads SET seq = 49, hash = (SELECT hash FROM ledger_entries WHERE seq = 49)`)
		}, 50, "tail truncated"},
		{"replace a payload", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			es, _ := f.s.LedgerEntries(context.Background(), f.org, store.LedgerFilter{FromSeq: 26, ToSeq: 26})
			if len(es) != 1 || es[0].PayloadHash == "" {
				t.Fatalf("entry 26 = %+v, want one with a payload", es)
			}
			f.superuser(t, b, fmt.Sprintf(`UPDATE ledger_payloads SET data = data || data WHERE hash = '%s'`, es[0].PayloadHash))
		}, 26, "replaced"},
		{"forge a checkpoint with another key", func(t *testing.T, f *ledgerFixture, b storetest.Backend) {
			c, err := f.s.LedgerCheckpointAt(context.Background(), f.org, 42)
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := ledger.ParseCheckpoint([]byte(c.Note[:strings.Index(c.Note, "\n\n")+1]))
			skey, _, _ := ledger.GenerateKey("herald.test/" + f.org + "/k1") // same name, other key
			evil, _ := ledger.NewSigner(skey)
			forged, err := ledger.Sign(cp, evil)
			if err != nil {
				t.Fatal(err)
			}
			f.superuser(t, b, fmt.Sprintf(`UPDATE ledger_checkpoints SET note = '%s' WHERE size = 42`, forged))
		}, 21, "checkpoint"},
	}
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				f := build(t, b)
				tc.tamper(t, f, b)
				rep := f.verify(t)
				if rep.OK {
					t.Fatalf("tampering not detected:\n%s", rep)
				}
				if rep.FirstBadSeq == nil || *rep.FirstBadSeq != tc.badSeq || !strings.Contains(rep.Problem, tc.problem) {
					t.Fatalf("want first bad seq %d (%q), got:\n%s", tc.badSeq, tc.problem, rep)
				}
				t.Logf("%s", strings.SplitN(rep.String(), "\n", 5)[3])
			})
		}
	})
}

// superuser runs statements with the append-only triggers out of the way,
// as a database superuser (or a SQLite file owner) could.
func (f *ledgerFixture) superuser(t *testing.T, b storetest.Backend, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	var pre, post []string
	if b == storetest.Postgres {
		for _, tbl := range []string{"ledger_entries", "ledger_checkpoints"} {
			pre = append(pre, "ALTER TABLE "+tbl+" DISABLE TRIGGER USER")
			post = append(post, "ALTER TABLE "+tbl+" ENABLE TRIGGER USER")
		}
	} else {
		for _, tr := range []string{"ledger_entries_no_update", "ledger_entries_no_delete", "ledger_checkpoints_no_update", "ledger_checkpoints_no_delete"} {
			pre = append(pre, "DROP TRIGGER "+tr)
		}
	}
	err := f.s.InTx(ctx, func(tx *store.Tx) error {
		for _, q := range append(append(pre, stmts...), post...) {
			if err := store.ExecForTest(ctx, tx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// forgeFrom inserts a forged entry at seq and re-seals every later entry so
// the hash chain is intact again: only the signed checkpoints can tell.
func (f *ledgerFixture) forgeFrom(t *testing.T, b storetest.Backend, seq uint64) {
	t.Helper()
	ctx := context.Background()
	all, err := f.s.LedgerEntries(ctx, f.org, store.LedgerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	prev := all[seq-1]
	forged, err := ledger.Next(prev, ledger.KindActionCancelled, "mallory", prev.Time, map[string]string{"action": "act_forged"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	chain := []ledger.Entry{forged}
	prev = forged
	for _, e := range all[seq:] {
		n, err := ledger.Next(prev, e.Kind, e.Actor, e.Time, e.Refs, e.Attrs, e.PayloadHash)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, n)
		prev = n
	}
	stmts := []string{fmt.Sprintf(`DELETE FROM ledger_entries WHERE seq >= %d`, seq)}
	for _, e := range chain {
		stmts = append(stmts, insertSQL(b, e))
	}
	stmts = append(stmts, fmt.Sprintf(`UPDATE ledger_heads SET seq = %d, hash = '%s'`, prev.Seq, prev.Hash))
	f.superuser(t, b, stmts...)
}

func insertSQL(b storetest.Backend, e ledger.Entry) string {
	lit := func(v any, empty bool) string {
		if empty {
			return "NULL"
		}
		j, _ := json.Marshal(v)
		return "'" + strings.ReplaceAll(string(j), "'", "''") + "'"
	}
	ts := "'" + e.Time.Format(ledger.TimeFormat) + "'"
	if b == storetest.SQLite {
		ts = fmt.Sprint(e.Time.UnixMicro())
	}
	return fmt.Sprintf(`INSERT INTO ledger_entries (org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash)
		VALUES ('%s', %d, %s, '%s', '%s', %s, %s, '%s', '%s', '%s')`, e.Org, e.Seq, ts, e.Kind, e.Actor,
		lit(e.Refs, len(e.Refs) == 0), lit(e.Attrs, len(e.Attrs) == 0), e.PayloadHash, e.PrevHash, e.Hash)
}
