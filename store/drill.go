package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Helpers for recovery drills (drill/).

// BackupSQLite writes a transactionally consistent copy of a SQLite store
// to path with VACUUM INTO (SQLite's online backup: readers and writers go
// on while it runs). path MUST NOT exist.
func (s *Store) BackupSQLite(ctx context.Context, path string) error {
	if s.d.name != "sqlite" {
		return fmt.Errorf("backup: VACUUM INTO is for SQLite stores, this one is %s", s.d.name)
	}
	if strings.ContainsAny(path, "'\x00") {
		return fmt.Errorf("backup: unusable path %q", path)
	}
	if _, err := s.q.exec(ctx, `VACUUM INTO '`+path+`'`); err != nil {
		return fmt.Errorf("backup sqlite to %s: %w", path, err)
	}
	return nil
}

// acceptedStatuses are the statuses of actions Herald accepted: a restore
// that loses one of them loses a promise made to a client.
const acceptedStatuses = `'pending_approval','scheduled','sending','delivered','failed','unknown','cancelled','expired'`

// AcceptedActionIDs lists org's accepted actions (created before until).
func (q *queries) AcceptedActionIDs(ctx context.Context, org string, until time.Time) ([]string, error) {
	rs, err := q.q.query(ctx, `SELECT id FROM actions WHERE org_id = $1 AND created_at <= $2 AND status IN (`+acceptedStatuses+`) ORDER BY id`, org, until)
	if err != nil {
		return nil, fmt.Errorf("list accepted actions of org %q: %w", org, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("list accepted actions of org %q: %w", org, err)
		}
		out = append(out, id)
	}
	return out, rs.Err()
}

// LastLedgerTime is the time of org's newest ledger entry (zero when none).
func (q *queries) LastLedgerTime(ctx context.Context, org string) (time.Time, error) {
	e, err := q.LastLedgerEntryAny(ctx, org)
	if err != nil || e == nil {
		return time.Time{}, err
	}
	return e.Time, nil
}

// MissingActions returns the ids among ids that org does not hold.
func (q *queries) MissingActions(ctx context.Context, org string, ids []string) ([]string, error) {
	have := map[string]bool{}
	const batch = 500
	for i := 0; i < len(ids); i += batch {
		part := ids[i:min(i+batch, len(ids))]
		args := []any{org}
		ph := make([]string, len(part))
		for j, id := range part {
			args = append(args, id)
			ph[j] = fmt.Sprintf("$%d", j+2)
		}
		rs, err := q.q.query(ctx, `SELECT id FROM actions WHERE org_id = $1 AND id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("check actions of org %q: %w", org, err)
		}
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				rs.Close()
				return nil, fmt.Errorf("check actions of org %q: %w", org, err)
			}
			have[id] = true
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, fmt.Errorf("check actions of org %q: %w", org, err)
		}
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}
