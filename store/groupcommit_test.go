package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestConcurrentTransactionsStayExact drives many concurrent transactions
// through InTx (on SQLite they share group commits; on PostgreSQL their
// writes are deferred into batches) and checks each behaves as if alone:
// read-modify-write under the lock loses no increment, a failed
// transaction leaves none of its writes while the ones committed with it
// keep theirs, a panic reaches its own caller, a cancelled caller stores
// nothing.
func TestConcurrentTransactionsStayExact(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		mustTx := func(sql string) {
			t.Helper()
			if err := s.InTx(ctx, func(tx *store.Tx) error { return store.ExecForTest(ctx, tx, sql) }); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		mustTx(`CREATE TABLE group_counter (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)`)
		mustTx(`CREATE TABLE group_rows (k INTEGER PRIMARY KEY)`)
		mustTx(`INSERT INTO group_counter (k, n) VALUES (1, 0)`)

		const clients, each = 32, 8
		errBoom := errors.New("boom")
		var wg sync.WaitGroup
		var mu sync.Mutex
		committed, failed := map[int]bool{}, map[int]bool{}
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					k := c*each + i
					fail := k%3 == 0
					err := s.InTx(ctx, func(tx *store.Tx) error {
						// The submit path's shape: lock, read, write from what
						// was read, deferred writes.
						if err := tx.Lock(ctx, "group-counter"); err != nil {
							return err
						}
						n, err := store.QueryIntForTest(ctx, tx, `SELECT n FROM group_counter WHERE k = 1`)
						if err != nil {
							return err
						}
						if err := store.DeferExecForTest(ctx, tx, `UPDATE group_counter SET n = $1 WHERE k = 1`, n+1); err != nil {
							return err
						}
						if err := store.DeferExecForTest(ctx, tx, `INSERT INTO group_rows (k) VALUES ($1)`, k); err != nil {
							return err
						}
						if fail {
							return errBoom
						}
						return nil
					})
					mu.Lock()
					switch {
					case fail && errors.Is(err, errBoom):
						failed[k] = true
					case !fail && err == nil:
						committed[k] = true
					default:
						t.Errorf("transaction %d (fail=%v): %v", k, fail, err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if n, err := store.CountForTest(ctx, s, `SELECT n FROM group_counter WHERE k = 1`); err != nil || n != len(committed) {
			t.Fatalf("counter = %d after %d committed increments (%v)", n, len(committed), err)
		}
		if n, err := store.CountForTest(ctx, s, `SELECT count(*) FROM group_rows`); err != nil || n != len(committed) {
			t.Fatalf("%d rows after %d committed inserts (%v)", n, len(committed), err)
		}
		for k := range failed {
			if n, err := store.CountForTest(ctx, s, fmt.Sprintf(`SELECT count(*) FROM group_rows WHERE k = %d`, k)); err != nil || n != 0 {
				t.Fatalf("failed transaction %d left its row (%d, %v)", k, n, err)
			}
		}

		// A panic in one transaction is its caller's, and the store goes on.
		func() {
			defer func() {
				if p := recover(); p != "tx panic" {
					t.Fatalf("recovered %v, want the transaction's panic", p)
				}
			}()
			_ = s.InTx(ctx, func(tx *store.Tx) error {
				if err := store.ExecForTest(ctx, tx, `INSERT INTO group_rows (k) VALUES (-1)`); err != nil {
					return err
				}
				panic("tx panic")
			})
		}()
		// A cancelled caller stores nothing.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.InTx(cctx, func(tx *store.Tx) error { return store.ExecForTest(cctx, tx, `INSERT INTO group_rows (k) VALUES (-2)`) })
		if err == nil {
			t.Fatal("a cancelled transaction committed")
		}
		mustTx(`INSERT INTO group_rows (k) VALUES (-3)`)
		if n, err := store.CountForTest(ctx, s, `SELECT count(*) FROM group_rows WHERE k < 0`); err != nil || n != 1 {
			t.Fatalf("after a panic and a cancelled transaction: %d negative rows, want only the last one (%v)", n, err)
		}
	})
}
