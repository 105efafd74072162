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
