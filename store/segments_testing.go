package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SeedContact is one contact SeedContactsForTest writes.
type SeedContact struct {
	ChatID, Timezone, Language string
	Tags                       []string
	// Purpose, when set, records a consent basis for it.
	Purpose  string
	OptedOut bool
}

// SeedContactsForTest bulk-inserts contacts with their tags and consent in
// multi-row statements (benchmarks and tests only: an import of 100,000
// rows through the API is what a benchmark of the segment must not time).
func SeedContactsForTest(ctx context.Context, s *Store, org string, cs []SeedContact) ([]string, error) {
	ids := make([]string, len(cs))
	now := s.Now()
	const batch = 500
	for start := 0; start < len(cs); start += batch {
		end := min(start+batch, len(cs))
		var contacts, tags, consents []string
		var cargs, targs, kargs []any
		for i := start; i < end; i++ {
			c := cs[i]
			ids[i] = NewID()
			var (
				opted  *time.Time
				source string
			)
			if c.OptedOut {
				opted, source = &now, "seed"
			}
			n := len(cargs)
			contacts = append(contacts, fmt.Sprintf("($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+8))
			cargs = append(cargs, ids[i], org, c.ChatID, c.Timezone, c.Language, opted, source, now)
			for _, tag := range c.Tags {
				n := len(targs)
				tags = append(tags, fmt.Sprintf("($%d, $%d, $%d)", n+1, n+2, n+3))
				targs = append(targs, ids[i], org, tag)
			}
			if c.Purpose != "" {
				n := len(kargs)
				consents = append(consents, fmt.Sprintf("($%d, $%d, 'consent', 'seed', $%d)", n+1, n+2, n+3))
				kargs = append(kargs, ids[i], c.Purpose, now)
			}
		}
		if _, err := s.q.exec(ctx, `INSERT INTO contacts (id, org_id, chat_id, timezone, language, opted_out_at, opt_out_source, created_at, updated_at) VALUES `+
			strings.Join(contacts, ", "), cargs...); err != nil {
			return nil, fmt.Errorf("seed contacts: %w", err)
		}
		if len(tags) > 0 {
			if _, err := s.q.exec(ctx, `INSERT INTO contact_tags (contact_id, org_id, tag) VALUES `+strings.Join(tags, ", "), targs...); err != nil {
				return nil, fmt.Errorf("seed tags: %w", err)
			}
		}
		if len(consents) > 0 {
			if _, err := s.q.exec(ctx, `INSERT INTO consents (contact_id, purpose, basis, source, granted_at) VALUES `+strings.Join(consents, ", "), kargs...); err != nil {
				return nil, fmt.Errorf("seed consents: %w", err)
			}
		}
	}
	return ids, nil
}
