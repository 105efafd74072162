package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func openSQLiteForTest(t *testing.T) (*Store, *sqliteDB) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s, s.db.(*sqliteDB)
}

func (c *stmtCache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// TestSQLiteStatementCache: a statement is prepared once and then reused,
// inside and outside transactions, by concurrent callers, with the same
// results as before; scripts still run every statement they hold; and the
// cache stays bounded whatever SQL callers build.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	s, db := openSQLiteForTest(t)

	if _, err := s.CreateOrg(ctx, "first", "UTC"); err != nil {
		t.Fatal(err)
	}
	warm := db.stmts.size()
	if warm == 0 {
		t.Fatal("creating an organisation cached no statement")
	}
	// Concurrent writers (transactions) and readers (the pool) share the
	// cached statements.
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.CreateOrg(ctx, fmt.Sprintf("org %d", i), "Europe/Berlin")
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.CountOrgs(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.CountOrgs(ctx); err != nil || got != n+1 {
		t.Fatalf("CountOrgs = %d, %v; want %d", got, err, n+1)
	}
	if grown := db.stmts.size(); grown > warm+1 { // + CountOrgs' one statement
		t.Fatalf("repeating the same calls grew the cache from %d to %d statements", warm, grown)
	}

	// A script holds several statements: it is run whole, never cached.
	before := db.stmts.size()
	err := s.InTx(ctx, func(tx *Tx) error {
		return ExecForTest(ctx, tx, "CREATE TABLE stmt_probe (a INTEGER); INSERT INTO stmt_probe VALUES (1); INSERT INTO stmt_probe VALUES (2);")
	})
	if err != nil {
		t.Fatal(err)
	}
	var rowsIn int
	if err := db.queryRow(ctx, "SELECT count(*) FROM stmt_probe").Scan(&rowsIn); err != nil || rowsIn != 2 {
		t.Fatalf("the script inserted %d rows (%v), want 2", rowsIn, err)
	}
	if db.stmts.size() != before+1 { // only the SELECT
		t.Fatalf("cache went from %d to %d statements; scripts must not be cached", before, db.stmts.size())
	}

	// Distinct texts beyond the bound still run, uncached.
	for i := range maxCachedStatements + 50 {
		var got int
		if err := db.queryRow(ctx, fmt.Sprintf("SELECT $1 + %d", i), 1).Scan(&got); err != nil || got != i+1 {
			t.Fatalf("SELECT $1 + %d = %d, %v", i, got, err)
		}
	}
	if size := db.stmts.size(); size > maxCachedStatements {
		t.Fatalf("cache holds %d statements, bound %d", size, maxCachedStatements)
	}
}

// TestSQLiteStatementCacheSurvivesFailedTransactions: a statement borrowed
// by a rolled-back transaction stays usable for the next one.
func TestSQLiteStatementCacheSurvivesFailedTransactions(t *testing.T) {
	ctx := context.Background()
	s, _ := openSQLiteForTest(t)
	boom := fmt.Errorf("boom")
	for range 3 {
		err := s.InTx(ctx, func(tx *Tx) error {
			if _, err := tx.CreateOrg(ctx, "rolled back", "UTC"); err != nil {
				return err
			}
			return boom
		})
		if err != boom {
			t.Fatalf("InTx = %v, want the callback's error", err)
		}
	}
	if _, err := s.CreateOrg(ctx, "kept", "UTC"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountOrgs(ctx); err != nil || n != 1 {
		t.Fatalf("CountOrgs = %d, %v; want only the committed one", n, err)
	}
}
