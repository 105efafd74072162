package store

import "context"

// CountForTest runs a SELECT count(*) query (tests only: they snapshot
// tables to prove a rejected request changed nothing).
func CountForTest(ctx context.Context, s *Store, sql string) (int, error) {
	var n int
	err := s.q.queryRow(ctx, sql).Scan(&n)
	return n, err
}
