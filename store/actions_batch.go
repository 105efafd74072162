package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/heraldhq/herald"
)

// ActionsByIdempotencyKeys returns org's actions submitted with any of
// keys, by key: one query where a batch of submits would make one each.
func (q *queries) ActionsByIdempotencyKeys(ctx context.Context, org string, keys []string) (map[string]herald.Action, error) {
	out := make(map[string]herald.Action, len(keys))
	for start := 0; start < len(keys); start += 500 {
		chunk := keys[start:min(start+500, len(keys))]
		marks := make([]string, len(chunk))
		args := make([]any, 0, len(chunk)+1)
		args = append(args, org)
		for i, k := range chunk {
			marks[i] = fmt.Sprintf("$%d", i+2)
			args = append(args, k)
		}
		rs, err := q.q.query(ctx, `SELECT `+actionColumns+` FROM actions WHERE org_id = $1 AND idempotency_key IN (`+strings.Join(marks, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("actions by idempotency keys: %w", err)
		}
		for rs.Next() {
			a, err := scanAction(rs)
			if err != nil {
				rs.Close()
				return nil, fmt.Errorf("actions by idempotency keys: %w", err)
			}
			out[a.IdempotencyKey] = a
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, fmt.Errorf("actions by idempotency keys: %w", err)
		}
	}
	return out, nil
}
