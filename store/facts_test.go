package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestSendCountersFollowEveryMove: the account counters follow each move
// an action makes — reservation, cancel (release), deferral (a new
// send_at), start of a send, failure by a block — in the transaction that
// makes it, concurrent reservations are all counted (40 at once), and
// Telegram's 429 / FLOOD_WAIT / PEER_FLOOD answers are counted too.
func TestSendCountersFollowEveryMove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		now := f.s.Now()
		f.s.SetClock(func() time.Time { return now })
		facts := func(self *herald.Action) store.SendFacts {
			t.Helper()
			fs, err := f.s.SendFacts(ctx, store.FactQuery{Org: f.org.ID, Account: f.account.ID, Recipient: "42", At: now, Self: self})
			if err != nil {
				t.Fatal(err)
			}
			return fs
		}
		want := func(label string, fs store.SendFacts, sec, minute, day, blocked int) {
			t.Helper()
			if fs.AccountLastSecond != sec || fs.AccountLastMinute != minute || fs.AccountSends24h != day || fs.AccountBlocked24h != blocked {
				t.Fatalf("%s: second %d minute %d day %d blocked %d; want %d %d %d %d", label,
					fs.AccountLastSecond, fs.AccountLastMinute, fs.AccountSends24h, fs.AccountBlocked24h, sec, minute, day, blocked)
			}
		}
		move := func(a herald.Action, tr store.Transition) herald.Action {
			t.Helper()
			var out herald.Action
			if err := f.s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				out, err = tx.Transition(ctx, f.org.ID, a.ID, tr)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return out
		}
		a1 := f.insertScheduled(t, "42", now.Add(-500*time.Millisecond), "")
		a2 := f.insertScheduled(t, "42", now.Add(-30*time.Second), "")
		a3 := f.insertScheduled(t, "43", now.Add(-2*time.Hour), "")
		f.insertScheduled(t, "44", now.Add(time.Hour), "") // later: in no window yet
		want("reserved", facts(nil), 1, 2, 3, 0)

		move(a2, store.Transition{To: herald.StatusCancelled, Actor: "op"})
		want("after cancel", facts(nil), 1, 1, 2, 0)

		later := now.Add(2 * time.Hour)
		move(a1, store.Transition{To: herald.StatusScheduled, Actor: "policy", SendAt: &later, LedgerKind: "action.deferred"})
		want("after deferral", facts(nil), 0, 0, 1, 0)

		// At send time the second and minute windows count sends that
		// started, and the re-decided action never counts itself.
		self, err := f.s.GetAction(ctx, f.org.ID, a3.ID)
		if err != nil {
			t.Fatal(err)
		}
		want("send stage, self excluded", facts(&self), 0, 0, 0, 0)
		a3 = move(a3, store.Transition{To: herald.StatusSending, Actor: "system"})
		want("started", facts(&self), 1, 1, 0, 0)
		code := "blocked"
		move(a3, store.Transition{To: herald.StatusFailed, Actor: "system", ErrorCode: &code})
		want("blocked", facts(nil), 0, 0, 0, 1)

		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				a := herald.Action{Org: f.org.ID, Account: f.account.ID, Kind: herald.KindSendMessage, Purpose: herald.PurposeTransactional,
					Target: fmt.Sprintf("%d", 1000+i), SendAt: now, SubmittedBy: "op"}
				sa := now
				if err := f.s.InTx(ctx, func(tx *store.Tx) error {
					if err := tx.Lock(ctx, "herald/account/"+f.account.ID); err != nil {
						return err
					}
					return tx.InsertAction(ctx, &a, store.Transition{To: herald.StatusDecided, Actor: "policy"},
						store.Transition{To: herald.StatusScheduled, Actor: "system", SendAt: &sa})
				}); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		want("40 concurrent", facts(nil), 40, 40, 40, 1)

		// Telegram's slow-down answers are counted for risk.
		if err := f.s.InTx(ctx, func(tx *store.Tx) error {
			for _, ev := range []string{store.EventTooManyRequests, store.EventTooManyRequests, store.EventFloodWait, store.EventPeerFlood} {
				if err := tx.CountAccountEvent(ctx, f.org.ID, f.account.ID, ev, now.Add(-time.Hour)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if fs := facts(nil); fs.Account429_24h != 2 || fs.AccountFlood24h != 1 || fs.AccountPeerFlood != 1 {
			t.Fatalf("429 / flood / peer flood = %d / %d / %d, want 2 / 1 / 1", fs.Account429_24h, fs.AccountFlood24h, fs.AccountPeerFlood)
		}

		// Buckets older than every window go; the current ones stay.
		if _, err := f.s.PruneSendCounters(ctx, now.Add(30*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := store.CountForTest(ctx, f.s, "SELECT count(*) FROM send_counters"); err != nil || n != 0 {
			t.Fatalf("after pruning a month later: %d counter rows (%v)", n, err)
		}
	})
}

// BenchmarkSendFacts measures the facts of one decision with 1,000 and
// 1,000,000 recent actions of the same account (seeded directly in SQL,
// with their counters): the cost must stay flat, since every account fact
// is a counter range and the recipient lookup an index range.
func BenchmarkSendFacts(b *testing.B) {
	type seeded struct {
		s *store.Store
		q store.FactQuery
	}
	// The benchmark function runs more than once per size (b.N=1 first):
	// seed each size once, in a store that lives as long as the parent.
	parent := b
	cache := map[string]seeded{}
	for _, backend := range storetest.Backends {
		for _, n := range []int{1000, 1000000} {
			name := fmt.Sprintf("%s/recent=%d", backend, n)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				sd, ok := cache[name]
				if !ok {
					s := storetest.Open(parent, backend)
					org, err := s.CreateOrg(ctx, "Acme", "UTC")
					if err != nil {
						b.Fatal(err)
					}
					acc, err := s.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
					if err != nil {
						b.Fatal(err)
					}
					now := time.Now().UTC().Truncate(time.Microsecond)
					seedRecent(b, s, backend, org.ID, acc.ID, n, now)
					sd = seeded{s, store.FactQuery{Org: org.ID, Account: acc.ID, Recipient: "100500", At: now}}
					f, err := s.SendFacts(ctx, sd.q)
					if err != nil {
						b.Fatal(err)
					}
					if f.AccountSends24h != n || len(f.Recipient) != 1 {
						b.Fatalf("seeded %d, counters say %d in 24 h and %d to the recipient", n, f.AccountSends24h, len(f.Recipient))
					}
					cache[name] = sd
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := sd.s.SendFacts(ctx, sd.q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// seedRecent inserts n delivered actions of account spread from 2 to 23
// hours ago (to n distinct chats), and the hourly counters they imply, in
// SQL.
func seedRecent(b *testing.B, s *store.Store, backend storetest.Backend, org, account string, n int, now time.Time) {
	b.Helper()
	ctx := context.Background()
	span := int64(21 * time.Hour / time.Microsecond)
	now = now.Add(-2 * time.Hour)
	var stmts []string
	if backend == storetest.Postgres {
		at := fmt.Sprintf("to_timestamp(%d::float8 / 1e6) - (g * %d / %d) * interval '1 microsecond'", now.UnixMicro(), span, n)
		stmts = []string{
			fmt.Sprintf(`INSERT INTO actions (id, org_id, account_id, kind, purpose, target, recipient, content, status, send_at,
				submitted_by, created_at, updated_at)
				SELECT 'seed-' || g, '%s', '%s', 'send_message', 'transactional', (100000 + g)::text, (100000 + g)::text, '{}', 'delivered',
				%s, 'op', %s, %s FROM generate_series(1, %d) g`, org, account, at, at, at, n),
			fmt.Sprintf(`INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
				SELECT account_id, 'r3', floor(extract(epoch FROM send_at) / 3600)::bigint, '%s', count(*) FROM actions
				WHERE account_id = '%s' GROUP BY 1, 3`, org, account),
			// Autovacuum analyses a table that grew by a million rows only
			// later; production tables have statistics.
			`ANALYZE actions`, `ANALYZE send_counters`,
		}
	} else {
		at := fmt.Sprintf("(%d - (g * %d / %d))", now.UnixMicro(), span, n)
		stmts = []string{
			fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d)
				INSERT INTO actions (id, org_id, account_id, kind, purpose, target, recipient, content, status, send_at,
				submitted_by, created_at, updated_at)
				SELECT 'seed-' || g, '%s', '%s', 'send_message', 'transactional', CAST(100000 + g AS TEXT), CAST(100000 + g AS TEXT), '{}', 'delivered',
				%s, 'op', %s, %s FROM s`, n, org, account, at, at, at),
			fmt.Sprintf(`INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
				SELECT account_id, 'r3', send_at / 3600000000, '%s', count(*) FROM actions WHERE account_id = '%s' GROUP BY 1, 3`, org, account),
		}
	}
	for _, q := range stmts {
		if err := s.InTx(ctx, func(tx *store.Tx) error { return store.ExecForTest(ctx, tx, q) }); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
}
