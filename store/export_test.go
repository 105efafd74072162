package store

import "context"

// ExecForTest runs raw SQL in a transaction (tests only: tamper attempts).
func ExecForTest(ctx context.Context, tx *Tx, sql string) error {
	_, err := tx.q.exec(ctx, sql)
	return err
}
