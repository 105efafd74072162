package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
)

// CreateSegment stores a named filter. Names are unique per organisation.
func (q *queries) CreateSegment(ctx context.Context, s campaigns.Segment) (campaigns.Segment, error) {
	f, err := json.Marshal(s.Filter)
	if err != nil {
		return s, fmt.Errorf("encode filter: %w", err)
	}
	s.ID = NewID()
	s.CreatedAt = q.now()
	s.UpdatedAt = s.CreatedAt
	_, err = q.q.exec(ctx, `INSERT INTO segments (id, org_id, name, filter, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		s.ID, s.Org, s.Name, string(f), s.CreatedBy, s.CreatedAt)
	if err != nil {
		if q.d.isUnique(err) {
			return s, herald.Errorf(herald.CodeConflict, "a segment named %q exists", s.Name)
		}
		return s, fmt.Errorf("create segment: %w", err)
	}
	return s, nil
}

const segmentColumns = `id, org_id, name, filter, created_by, created_at, updated_at`

func scanSegment(r row) (campaigns.Segment, error) {
	var (
		s campaigns.Segment
		f string
	)
	if err := r.Scan(&s.ID, &s.Org, &s.Name, &f, &s.CreatedBy, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(f), &s.Filter); err != nil {
		return s, fmt.Errorf("decode segment %s: %w", s.ID, err)
	}
	return s, nil
}

// GetSegment returns one of org's segments.
func (q *queries) GetSegment(ctx context.Context, org, id string) (campaigns.Segment, error) {
	s, err := scanSegment(q.q.queryRow(ctx, `SELECT `+segmentColumns+` FROM segments WHERE org_id = $1 AND id = $2`, org, id))
	return s, scanNotFound(err, "segment")
}

// ListSegments returns org's segments by name.
func (q *queries) ListSegments(ctx context.Context, org string) ([]campaigns.Segment, error) {
	rs, err := q.q.query(ctx, `SELECT `+segmentColumns+` FROM segments WHERE org_id = $1 ORDER BY name LIMIT 1000`, org)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	defer rs.Close()
	out := []campaigns.Segment{}
	for rs.Next() {
		s, err := scanSegment(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}

// UpdateSegment replaces a segment's name and filter.
func (q *queries) UpdateSegment(ctx context.Context, org, id, name string, f campaigns.Filter) (campaigns.Segment, error) {
	s, err := q.GetSegment(ctx, org, id)
	if err != nil {
		return s, err
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return s, fmt.Errorf("encode filter: %w", err)
	}
	s.Name, s.Filter, s.UpdatedAt = name, f, q.now()
	if _, err := q.q.exec(ctx, `UPDATE segments SET name = $3, filter = $4, updated_at = $5 WHERE org_id = $1 AND id = $2`,
		org, id, name, string(raw), s.UpdatedAt); err != nil {
		if q.d.isUnique(err) {
			return s, herald.Errorf(herald.CodeConflict, "a segment named %q exists", name)
		}
		return s, fmt.Errorf("update segment: %w", err)
	}
	return s, nil
}

// DeleteSegment removes a segment; campaigns that name it fail validation
// when they would start, so it is refused while one is not finished.
func (q *queries) DeleteSegment(ctx context.Context, org, id string) error {
	var n int
	if err := q.q.queryRow(ctx, `SELECT count(*) FROM campaigns WHERE org_id = $1 AND status IN ('draft','scheduled','running','paused') AND spec LIKE $2`,
		org, `%"segment":"`+id+`"%`).Scan(&n); err != nil {
		return fmt.Errorf("check segment use: %w", err)
	}
	if n > 0 {
		return herald.Errorf(herald.CodeConflict, "%d unfinished campaigns use this segment", n)
	}
	c, err := q.q.exec(ctx, `DELETE FROM segments WHERE org_id = $1 AND id = $2`, org, id)
	if err != nil {
		return fmt.Errorf("delete segment: %w", err)
	}
	if c == 0 {
		return notFound("segment")
	}
	return nil
}

// countingStatuses are the action statuses that count toward a recipient
// cap (the pipeline's reservation: see docs/architecture.md).
const countingStatuses = `'pending_approval','scheduled','sending','delivered','unknown'`

// segmentWhere translates f into a WHERE clause over contacts c, with org as $1.
func segmentWhere(org string, f campaigns.Filter) (string, []any) {
	where := []string{"c.org_id = $1"}
	args := []any{org}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	list := func(vs []string) string {
		ph := make([]string, len(vs))
		for i, v := range vs {
			ph[i] = arg(v)
		}
		return strings.Join(ph, ", ")
	}
	for _, tag := range f.Tags {
		where = append(where, `EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag = `+arg(tag)+`)`)
	}
	if len(f.ExcludeTags) > 0 {
		where = append(where, `NOT EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact_id = c.id AND t.tag IN (`+list(f.ExcludeTags)+`))`)
	}
	if len(f.Languages) > 0 {
		where = append(where, `c.language IN (`+list(f.Languages)+`)`)
	}
	if len(f.Timezones) > 0 {
		where = append(where, `c.timezone IN (`+list(f.Timezones)+`)`)
	}
	for _, k := range f.Consent {
		cond := `EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id AND k.purpose = ` + arg(k.Purpose) + `)`
		if k.State == "absent" {
			cond = "NOT " + cond
		}
		where = append(where, cond)
	}
	if len(f.Sources) > 0 {
		where = append(where, `EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id AND k.source IN (`+list(f.Sources)+`))`)
	}
	if f.ImportedAfter != nil {
		where = append(where, `c.created_at >= `+arg(f.ImportedAfter.UTC()))
	}
	if f.ImportedBefore != nil {
		where = append(where, `c.created_at < `+arg(f.ImportedBefore.UTC()))
	}
	contacted := func(since time.Time) string {
		return `EXISTS (SELECT 1 FROM actions a WHERE a.org_id = $1 AND a.contact_id = c.id AND a.status IN ('sending','delivered','unknown') AND a.send_at >= ` + arg(since.UTC()) + `)`
	}
	if f.LastContactedBefore != nil {
		where = append(where, "NOT "+contacted(*f.LastContactedBefore))
	}
	if f.LastContactedAfter != nil {
		where = append(where, contacted(*f.LastContactedAfter))
	}
	names := make([]string, 0, len(f.Attributes))
	for k := range f.Attributes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		where = append(where, `EXISTS (SELECT 1 FROM contact_attributes x WHERE x.contact_id = c.id AND x.name = `+arg(k)+` AND x.value = `+arg(f.Attributes[k])+`)`)
	}
	return strings.Join(where, " AND "), args
}

// Member is a contact a segment selects, with what the fan-out needs to
// place it (its time zone).
type Member struct {
	ID       string
	ChatID   string
	Timezone string
}

// SegmentMembers evaluates f over org's contacts now, in id order.
func (q *queries) SegmentMembers(ctx context.Context, org string, f campaigns.Filter) ([]Member, error) {
	where, args := segmentWhere(org, f)
	return q.members(ctx, `SELECT c.id, c.chat_id, c.timezone FROM contacts c WHERE `+where+` ORDER BY c.id`, args...)
}

// ContactMembers returns those of ids that are org's contacts, in id order.
func (q *queries) ContactMembers(ctx context.Context, org string, ids []string) ([]Member, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := inList(2, ids)
	return q.members(ctx, `SELECT c.id, c.chat_id, c.timezone FROM contacts c WHERE c.org_id = $1 AND c.id IN (`+in+`) ORDER BY c.id`, append([]any{org}, args...)...)
}

func (q *queries) members(ctx context.Context, sql string, args ...any) ([]Member, error) {
	rs, err := q.q.query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("evaluate segment: %w", err)
	}
	defer rs.Close()
	var out []Member
	for rs.Next() {
		var m Member
		if err := rs.Scan(&m.ID, &m.ChatID, &m.Timezone); err != nil {
			return nil, fmt.Errorf("evaluate segment: %w", err)
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

// PreviewOptions are the policy facts a preview estimates exclusions with.
type PreviewOptions struct {
	Purpose string
	Now     time.Time
	// DailyCap is the recipient's per-day cap for Purpose (0: no cap).
	DailyCap int
	// ConsentMaxAge is how long a "consent" basis lasts (0: forever).
	ConsentMaxAge time.Duration
	// ConsentRequired: Purpose needs a recorded legal basis.
	ConsentRequired bool
	Sample          int
}

// SegmentPreview is what a segment selects now and how many of those the
// policy would turn away, by reason. Exclusions are estimates from the
// same facts the policy reads (opt-out, legal basis, caps); the decision
// itself is taken per recipient at send time.
type SegmentPreview struct {
	Count      int              `json:"count"`
	Eligible   int              `json:"eligible"`
	Excluded   map[string]int   `json:"excluded"`
	Sample     []PreviewContact `json:"sample"`
	ComputedAt time.Time        `json:"computed_at"`
}

// PreviewContact is one sampled member (ids and coarse facts only).
type PreviewContact struct {
	ID       string `json:"id"`
	Language string `json:"language,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	Excluded string `json:"excluded,omitempty"`
}

// Exclusion reasons of a preview, in the order they are tested (a contact
// counts under the first that applies). They name the policy rules that
// would decide the same.
const (
	ExcludedOptedOut       = "consent.opted_out"
	ExcludedNoLegalBasis   = "consent.no_legal_basis"
	ExcludedConsentExpired = "consent.expired"
	ExcludedCapped         = "frequency.recipient_daily"
)

// PreviewSegment evaluates f for a preview: one aggregate query for the
// counts and one for the sample.
func (q *queries) PreviewSegment(ctx context.Context, org string, f campaigns.Filter, o PreviewOptions) (SegmentPreview, error) {
	where, args := segmentWhere(org, f)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	// PostgreSQL: one pass over the segment with two outer joins (the
	// purpose's consent row, and the recipient's counting sends in the cap
	// window aggregated once), which it hash-joins. SQLite plans that join
	// badly (measured 6× slower) and answers correlated subqueries by index
	// lookups in-process, so it gets those.
	purpose := arg(o.Purpose)
	pg := q.d.name == "postgres"
	noBasis, expired, capped, from := "0=1", "0=1", "0=1", "contacts c"
	consentRow := func(extra string) string {
		return `EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = c.id AND k.purpose = ` + purpose + extra + `)`
	}
	if pg {
		from = `contacts c LEFT JOIN consents k ON k.contact_id = c.id AND k.purpose = ` + purpose
	}
	if o.ConsentRequired {
		noBasis = "NOT " + consentRow("")
		if pg {
			noBasis = "k.contact_id IS NULL"
		}
		if o.ConsentMaxAge > 0 {
			cond := " AND k.basis = 'consent' AND k.granted_at < " + arg(o.Now.Add(-o.ConsentMaxAge))
			expired = consentRow(cond)
			if pg {
				expired = "k.contact_id IS NOT NULL" + cond
			}
		}
	}
	if o.DailyCap > 0 {
		window := ` AND a.status IN (` + countingStatuses + `) AND a.send_at >= ` + arg(o.Now.Add(-24*time.Hour)) +
			` AND a.send_at < ` + arg(o.Now.Add(24*time.Hour))
		if pg {
			from += ` LEFT JOIN (SELECT a.contact_id, count(*) AS n FROM actions a WHERE a.org_id = $1 AND a.purpose = ` + purpose +
				` AND a.contact_id IS NOT NULL` + window + ` GROUP BY a.contact_id) sent ON sent.contact_id = c.id`
			capped = "sent.n >= " + arg(o.DailyCap)
		} else {
			capped = `(SELECT count(*) FROM actions a WHERE a.org_id = $1 AND a.contact_id = c.id AND a.purpose = ` + purpose + window +
				`) >= ` + arg(o.DailyCap)
		}
	}
	reason := `CASE WHEN c.opted_out_at IS NOT NULL THEN '` + ExcludedOptedOut + `'
		WHEN ` + noBasis + ` THEN '` + ExcludedNoLegalBasis + `'
		WHEN ` + expired + ` THEN '` + ExcludedConsentExpired + `'
		WHEN ` + capped + ` THEN '` + ExcludedCapped + `'
		ELSE '' END`
	p := SegmentPreview{Excluded: map[string]int{}, Sample: []PreviewContact{}, ComputedAt: o.Now}
	rs, err := q.q.query(ctx, `SELECT r, count(*) FROM (SELECT `+reason+` AS r FROM `+from+` WHERE `+where+`) x GROUP BY r`, args...)
	if err != nil {
		return p, fmt.Errorf("preview segment: %w", err)
	}
	for rs.Next() {
		var (
			r string
			n int
		)
		if err := rs.Scan(&r, &n); err != nil {
			rs.Close()
			return p, fmt.Errorf("preview segment: %w", err)
		}
		p.Count += n
		if r == "" {
			p.Eligible += n
		} else {
			p.Excluded[r] = n
		}
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return p, fmt.Errorf("preview segment: %w", err)
	}
	if o.Sample <= 0 {
		return p, nil
	}
	rs, err = q.q.query(ctx, `SELECT c.id, c.language, c.timezone, `+reason+` FROM `+from+` WHERE `+where+` ORDER BY c.id LIMIT `+arg(o.Sample), args...)
	if err != nil {
		return p, fmt.Errorf("preview sample: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var s PreviewContact
		if err := rs.Scan(&s.ID, &s.Language, &s.Timezone, &s.Excluded); err != nil {
			return p, fmt.Errorf("preview sample: %w", err)
		}
		p.Sample = append(p.Sample, s)
	}
	return p, rs.Err()
}
