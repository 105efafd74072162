// Package store persists Herald's domain in PostgreSQL (production, through
// pgx/v5) or SQLite (the embedded default, pure Go). Both run the same
// queries through a small adapter (see db.go) and are held to one contract
// suite (storetest). Every method that reads or writes tenant data takes the
// organisation id and filters on it: a row of another organisation is
// indistinguishable from a missing one.
package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Store is a connection to Herald's database.
type Store struct {
	queries
	db database
	// Now is the clock; tests replace it. It returns UTC at microsecond
	// precision, the precision both databases keep.
	now func() time.Time
	// pseudo keys person refs in the ledger (SetPseudonymizer).
	pseudo Pseudonymizer
}

// Tx is a unit of work: everything done through it commits or rolls back together.
type Tx struct {
	queries
}

// queries holds the methods shared by Store and Tx.
type queries struct {
	q      querier
	d      dialect
	now    func() time.Time
	pseudo Pseudonymizer
}

// Open connects to url: "postgres://…" or "postgresql://…" for PostgreSQL,
// "sqlite:PATH" or a bare file path for SQLite. It does not migrate; call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	var (
		db  database
		err error
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = openPostgres(ctx, url)
	case strings.HasPrefix(url, "sqlite:"):
		db, err = openSQLite(ctx, filepath.Clean(strings.TrimPrefix(url, "sqlite:")))
	case url == "":
		return nil, errors.New("open store: empty database url")
	default:
		db, err = openSQLite(ctx, url)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, now: defaultNow}
	s.queries = queries{q: db, d: db.dialect(), now: s.clock}
	return s, nil
}

func defaultNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func (s *Store) clock() time.Time { return s.now() }

// SetClock replaces the store's clock (tests only).
func (s *Store) SetClock(now func() time.Time) {
	s.now = func() time.Time { return now().UTC().Truncate(time.Microsecond) }
}

// Now returns the store's current time.
func (s *Store) Now() time.Time { return s.now() }

// Dialect names the database: "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.ping(ctx) }

// Close releases the connections.
func (s *Store) Close() { s.db.close() }

// InTx runs fn in one transaction. If fn returns an error, nothing it did is kept.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return s.db.inTx(ctx, func(q querier) error {
		return fn(&Tx{queries{q: q, d: s.d, now: s.clock, pseudo: s.pseudo}})
	})
}

// Lock takes transaction-scoped exclusive locks on keys, in order, in one
// round trip (released at commit or rollback). Used to make
// decide-and-reserve atomic per recipient and per account across replicas;
// callers always list keys in the same order so two transactions never
// deadlock. On SQLite the transaction already excludes every other writer.
func (t *Tx) Lock(ctx context.Context, keys ...string) error {
	if !t.d.advisoryLocks || len(keys) == 0 {
		return nil
	}
	// PostgreSQL evaluates a select list left to right: one statement takes
	// the locks in the order given.
	calls := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		calls[i] = fmt.Sprintf("pg_advisory_xact_lock(hashtextextended($%d, 0))", i+1)
		args[i] = k
	}
	// Deferred: the locks travel with the transaction's next statement (the
	// facts read), which PostgreSQL runs only once they are held.
	return t.q.deferExec(ctx, func(err error) error {
		// Lock keys embed chat ids and Idempotency-Keys: errors are logged,
		// so only digests of the keys may appear in them.
		digests := make([]string, len(keys))
		for i, k := range keys {
			digests[i] = LogKey(k)
		}
		return fmt.Errorf("lock %v: %w", digests, err)
	}, "SELECT "+strings.Join(calls, ", "), args...)
}

// NewID returns a new time-ordered id (UUIDv7), so ids sort by creation and
// serve as pagination cursors.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// scanNotFound maps the adapters' no-rows error to herald's not-found error.
func scanNotFound(err error, what string) error {
	if errors.Is(err, errNoRows) {
		return notFound(what)
	}
	return err
}
