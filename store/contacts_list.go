package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// ContactFilter selects contacts for ListContacts. Zero fields do not filter.
type ContactFilter struct {
	ChatID   string
	Language string
	// Source keeps contacts with a consent of this source (the import's
	// "source" column or the API that recorded it).
	Source string
	// WithConsent keeps contacts holding a consent for every purpose listed;
	// WithoutConsent those holding none for every purpose listed.
	WithConsent, WithoutConsent []string
	// Tags keeps contacts carrying every tag listed (contact labels).
	Tags []string
	// OptedOut: nil any, true only opted out, false only not opted out.
	OptedOut *bool
	// ImportedFrom (inclusive) and ImportedTo (exclusive) bound when the
	// contact was first imported (created).
	ImportedFrom, ImportedTo *time.Time
	// After is the cursor: the last id of the previous page ("" = first page).
	After string
	Limit int
}

// Listing bounds.
const (
	DefaultContactPage = 50
	MaxContactPage     = 500
)

// ListContacts returns a page of org's contacts matching f, ordered by id
// (ids are time-ordered, so this is creation order and a stable cursor),
// with their consents, and the cursor of the next page ("" when this is the
// last). The cost of a page does not grow with the page number: each page
// starts at its cursor in the (org_id, id) index.
func (q *queries) ListContacts(ctx context.Context, org string, f ContactFilter) ([]herald.Contact, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultContactPage
	}
	limit = min(limit, MaxContactPage)
	where := []string{"c.org_id = $1"}
	args := []any{org}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// consentBound repeats the cursor inside the consent subqueries: it
	// changes no answer (they are correlated on c.id), but lets PostgreSQL
	// start a merge join at the cursor instead of at the organisation's
	// first consent, which keeps a deep page as cheap as the first.
	consentBound := ""
	if f.After != "" {
		where = append(where, "c.id > "+arg(f.After))
		consentBound = " AND k.contact_id > $" + strconv.Itoa(len(args))
	}
	if f.ChatID != "" {
		where = append(where, "c.chat_id = "+arg(f.ChatID))
	}
	if f.Language != "" {
		where = append(where, "c.language = "+arg(f.Language))
	}
	if f.Source != "" {
		where = append(where, "EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id"+consentBound+" AND k.source = "+arg(f.Source)+")")
	}
	for _, t := range f.Tags {
		where = append(where, "EXISTS (SELECT 1 FROM contact_tags g WHERE g.contact_id = c.id AND g.org_id = c.org_id AND g.tag = "+arg(t)+")")
	}
	for _, p := range f.WithConsent {
		where = append(where, "EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id"+consentBound+" AND k.purpose = "+arg(p)+")")
	}
	for _, p := range f.WithoutConsent {
		where = append(where, "NOT EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id"+consentBound+" AND k.purpose = "+arg(p)+")")
	}
	if f.OptedOut != nil {
		if *f.OptedOut {
			where = append(where, "c.opted_out_at IS NOT NULL")
		} else {
			where = append(where, "c.opted_out_at IS NULL")
		}
	}
	if f.ImportedFrom != nil {
		where = append(where, "c.created_at >= "+arg(*f.ImportedFrom))
	}
	if f.ImportedTo != nil {
		where = append(where, "c.created_at < "+arg(*f.ImportedTo))
	}
	sql := `SELECT ` + prefixed("c.", contactColumns) + ` FROM contacts c WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY c.id LIMIT ` + arg(limit+1)
	rs, err := q.q.query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list contacts: %w", err)
	}
	out := []herald.Contact{}
	for rs.Next() {
		c, err := scanContact(rs)
		if err != nil {
			rs.Close()
			return nil, "", fmt.Errorf("list contacts: %w", err)
		}
		c.Consents = []herald.Consent{}
		out = append(out, c)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, "", fmt.Errorf("list contacts: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	if err := q.loadPageConsents(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// loadPageConsents loads the consents of a page of contacts in one query.
func (q *queries) loadPageConsents(ctx context.Context, page []herald.Contact) error {
	if len(page) == 0 {
		return nil
	}
	idx := make(map[string]int, len(page))
	ph := make([]string, len(page))
	args := make([]any, len(page))
	for i, c := range page {
		idx[c.ID] = i
		ph[i] = "$" + strconv.Itoa(i+1)
		args[i] = c.ID
	}
	rs, err := q.q.query(ctx, `SELECT contact_id, purpose, basis, source, granted_at FROM consents
		WHERE contact_id IN (`+strings.Join(ph, ", ")+`) ORDER BY contact_id, purpose`, args...)
	if err != nil {
		return fmt.Errorf("list contacts: consents: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var (
			id string
			k  herald.Consent
		)
		if err := rs.Scan(&id, &k.Purpose, &k.Basis, &k.Source, &k.At); err != nil {
			return fmt.Errorf("list contacts: consents: %w", err)
		}
		c := &page[idx[id]]
		c.Consents = append(c.Consents, k)
	}
	return rs.Err()
}

func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = p + c
	}
	return strings.Join(cols, ", ")
}

// ConsentEvent is one entry of a contact's consent history: a purpose's
// consent granted, changed or withdrawn, or the contact opting out (purpose "*").
type ConsentEvent struct {
	Purpose string    `json:"purpose"`
	Event   string    `json:"event"`
	Basis   string    `json:"basis,omitempty"`
	Source  string    `json:"source,omitempty"`
	At      time.Time `json:"at"`
}

// ConsentHistory returns the full consent history of one of org's contacts,
// oldest first. Database triggers (migration 0011) record it on every write
// to consents and on opt-out, whatever code path made the change.
func (q *queries) ConsentHistory(ctx context.Context, org, contactID string) ([]ConsentEvent, error) {
	if _, err := q.GetContact(ctx, org, contactID); err != nil {
		return nil, err
	}
	rs, err := q.q.query(ctx, `SELECT purpose, event, basis, source, at FROM consent_events WHERE contact_id = $1 ORDER BY id`, contactID)
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	defer rs.Close()
	out := []ConsentEvent{}
	for rs.Next() {
		var e ConsentEvent
		if err := rs.Scan(&e.Purpose, &e.Event, &e.Basis, &e.Source, &e.At); err != nil {
			return nil, fmt.Errorf("consent history: %w", err)
		}
		out = append(out, e)
	}
	return out, rs.Err()
}
