package storetest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/heraldhq/herald/store"
)

// Backend names a database the suite runs on.
type Backend string

const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists every supported database. Tests range over it so each
// behaviour is proven on both.
var Backends = []Backend{SQLite, Postgres}

// URL returns a fresh, empty database URL for backend b.
func URL(t testing.TB, b Backend) string {
	t.Helper()
	if b == Postgres {
		return NewDatabase(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "herald.db")
}

// Open returns a fresh, migrated store on backend b, closed when the test ends.
func Open(t testing.TB, b Backend) *store.Store {
	t.Helper()
	ctx := context.Background()
	u := URL(t, b)
	s, err := store.Open(ctx, u)
	if err != nil {
		t.Fatalf("open %s store: %v", b, err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s store: %v", b, err)
	}
	urls.Store(s, u)
	return s
}

// urls remembers the database URL of every store Open returned.
var urls sync.Map

// DatabaseURL returns the URL of a store opened by Open, for tests that
// inspect the database with outside tools (pg_dump, a raw connection).
func DatabaseURL(t testing.TB, s *store.Store) string {
	t.Helper()
	u, ok := urls.Load(s)
	if !ok {
		t.Fatal("storetest.DatabaseURL: store was not opened by storetest.Open")
	}
	return u.(string)
}

// Each runs fn as a subtest on every backend.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) { fn(t, b) })
	}
}
