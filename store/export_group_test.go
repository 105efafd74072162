package store

import "context"

// QueryIntForTest reads one integer in a transaction (tests only).
func QueryIntForTest(ctx context.Context, tx *Tx, sql string, args ...any) (int, error) {
	var n int
	err := tx.q.queryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// DeferExecForTest defers a statement as the hot path's writes are (tests only).
func DeferExecForTest(ctx context.Context, tx *Tx, sql string, args ...any) error {
	return tx.q.deferExec(ctx, nil, sql, args...)
}
