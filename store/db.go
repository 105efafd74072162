package store

import (
	"context"
	"errors"
)

// querier is the slice of a database connection the queries need. Both the
// PostgreSQL (pgx) and the SQLite (database/sql) adapters implement it, for a
// pool and for a transaction, so every query is written once. SQL uses $N
// placeholders, which both databases bind by number.
type querier interface {
	exec(ctx context.Context, sql string, args ...any) (int64, error)
	query(ctx context.Context, sql string, args ...any) (rows, error)
	queryRow(ctx context.Context, sql string, args ...any) row
	// deferExec runs a statement whose result the caller does not need
	// before its next statement: in a PostgreSQL transaction it is sent
	// with the next statement (or COMMIT) in one round trip, and its error
	// (wrapped by wrap) is returned by that statement; elsewhere it runs
	// at once. The caller MUST NOT branch on it having succeeded until a
	// later statement returns (or the transaction commits).
	deferExec(ctx context.Context, wrap func(error) error, sql string, args ...any) error
}

// runNow is deferExec for queriers that do not defer.
func runNow(ctx context.Context, q querier, wrap func(error) error, sql string, args ...any) error {
	if _, err := q.exec(ctx, sql, args...); err != nil {
		if wrap != nil {
			return wrap(err)
		}
		return err
	}
	return nil
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type row interface {
	Scan(dest ...any) error
}

// database is a connection pool of one dialect.
type database interface {
	querier
	// inTx runs fn in a read-write transaction, committing when fn returns nil.
	inTx(ctx context.Context, fn func(q querier) error) error
	dialect() dialect
	ping(ctx context.Context) error
	close()
}

// dialect captures the few places PostgreSQL and SQLite differ.
type dialect struct {
	name string
	// skipLocked is appended to the claim query's subselect: PostgreSQL lets
	// concurrent workers skip each other's rows; SQLite serialises writers.
	skipLocked string
	// advisoryLocks: Tx.Lock takes transaction-scoped advisory locks;
	// false when the transaction already excludes all other writers.
	advisoryLocks bool
	// isUnique reports a unique-constraint violation.
	isUnique func(error) bool
}

// errNoRows is what row.Scan returns when the query matched nothing, for both adapters.
var errNoRows = errors.New("no rows in result set")
