package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
)

// Data-subject requests (GDPR Art. 12–22). A request names a contact,
// is due SubjectResponseTime after it was received (extendable once by
// SubjectExtension, Art. 12(3)), and each step — received, extended,
// completed, lifted — is a ledger entry that names the person only by
// their pseudonymous ref.

// Kinds of data-subject request.
const (
	SubjectAccess        = "access"
	SubjectRectification = "rectification"
	SubjectErasure       = "erasure"
	SubjectPortability   = "portability"
	SubjectRestriction   = "restriction"
	SubjectObjection     = "objection"
	SubjectHumanReview   = "human_review"
)

// SubjectKinds lists every kind.
var SubjectKinds = []string{SubjectAccess, SubjectRectification, SubjectErasure, SubjectPortability,
	SubjectRestriction, SubjectObjection, SubjectHumanReview}

// Statuses of a data-subject request.
const (
	SubjectOpen      = "open"
	SubjectCompleted = "completed"
	SubjectLifted    = "lifted"
)

const (
	// SubjectResponseTime is the answer deadline: one month (Art. 12(3)),
	// counted as 30 days so every month gives the person the same time.
	SubjectResponseTime = 30 * 24 * time.Hour
	// SubjectExtension is the one extension Art. 12(3) allows for complex
	// or numerous requests: two further months.
	SubjectExtension = 60 * 24 * time.Hour
)

// Ledger kinds of data-subject requests.
const (
	KindSubjectReceived  = "subject_request.received"
	KindSubjectExtended  = "subject_request.extended"
	KindSubjectCompleted = "subject_request.completed"
	KindSubjectLifted    = "subject_request.lifted"
)

// SubjectRequest is one data-subject request.
type SubjectRequest struct {
	ID          string     `json:"id"`
	Org         string     `json:"org"`
	Kind        string     `json:"kind"`
	Contact     string     `json:"contact"`
	Status      string     `json:"status"`
	ReceivedAt  time.Time  `json:"received_at"`
	DueAt       time.Time  `json:"due_at"`
	Extended    bool       `json:"extended"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	LiftedAt    *time.Time `json:"lifted_at,omitempty"`
	CreatedBy   string     `json:"created_by"`
	CompletedBy string     `json:"completed_by,omitempty"`
	// Overdue is computed: open past its due time.
	Overdue bool `json:"overdue"`
}

const subjectColumns = `id, org_id, kind, contact_id, status, received_at, due_at, extended, completed_at, lifted_at, created_by, completed_by`

func (q *queries) scanSubject(r row) (SubjectRequest, error) {
	var s SubjectRequest
	var ext any
	err := r.Scan(&s.ID, &s.Org, &s.Kind, &s.Contact, &s.Status, &s.ReceivedAt, &s.DueAt, &ext, &s.CompletedAt, &s.LiftedAt, &s.CreatedBy, &s.CompletedBy)
	switch v := ext.(type) {
	case bool:
		s.Extended = v
	case int64:
		s.Extended = v != 0
	}
	if err == nil {
		s.Overdue = s.Status == SubjectOpen && q.now().After(s.DueAt)
	}
	return s, err
}

// CreateSubjectRequest records a request about contactID (which MUST be
// one of org's contacts) and its ledger entry, in one transaction.
func (s *Store) CreateSubjectRequest(ctx context.Context, org, kind, contactID, actor string) (SubjectRequest, error) {
	if contactID == "" {
		return SubjectRequest{}, herald.NotFound("contact")
	}
	return s.createSubjectRequest(ctx, org, kind, contactID, "", actor)
}

// CreateUnknownSubjectRequest records a request about a person org holds
// no contact for (named by chat id or Telegram id, chatID): the controller
// answers every request (Art. 12), so it is recorded, due and completed
// like any other, with contact "" and, once completed, "nothing held". The
// chat id itself is stored nowhere: with a pseudonymiser the ledger entry
// carries its keyed ref ("subject"), without one no person ref at all.
func (s *Store) CreateUnknownSubjectRequest(ctx context.Context, org, kind, chatID, actor string) (SubjectRequest, error) {
	ref := ""
	if s.pseudo != nil && chatID != "" {
		r, err := s.pseudo.Ref(ctx, org, "chat", chatID)
		if err != nil {
			return SubjectRequest{}, fmt.Errorf("pseudonymise the subject of a request: %w", err)
		}
		ref = r
	}
	return s.createSubjectRequest(ctx, org, kind, "", ref, actor)
}

func (s *Store) createSubjectRequest(ctx context.Context, org, kind, contactID, subjectRef, actor string) (SubjectRequest, error) {
	var out SubjectRequest
	err := s.InTx(ctx, func(tx *Tx) error {
		refs := map[string]string{}
		if contactID != "" {
			if _, err := tx.GetContact(ctx, org, contactID); err != nil {
				return err
			}
			refs["contact"] = contactID
		} else if subjectRef != "" {
			refs["subject"] = subjectRef
		}
		now := tx.now()
		out = SubjectRequest{ID: NewID(), Org: org, Kind: kind, Contact: contactID, Status: SubjectOpen,
			ReceivedAt: now, DueAt: now.Add(SubjectResponseTime), CreatedBy: actor}
		if _, err := tx.q.exec(ctx, `INSERT INTO subject_requests (id, org_id, kind, contact_id, status, received_at, due_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, out.ID, org, kind, contactID, SubjectOpen, now, out.DueAt, actor); err != nil {
			return fmt.Errorf("record subject request: %w", err)
		}
		refs["subject_request"] = out.ID
		attrs := map[string]any{"kind": kind, "due_at": out.DueAt.UTC().Format(time.RFC3339)}
		if contactID == "" {
			attrs["person_known"] = false
		}
		_, err := tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindSubjectReceived, Actor: actor, Refs: refs, Attrs: attrs})
		return err
	})
	return out, err
}

// GetSubjectRequest returns one of org's requests.
func (q *queries) GetSubjectRequest(ctx context.Context, org, id string) (SubjectRequest, error) {
	r, err := q.scanSubject(q.q.queryRow(ctx, `SELECT `+subjectColumns+` FROM subject_requests WHERE org_id = $1 AND id = $2`, org, id))
	if err != nil {
		return r, scanNotFound(err, "subject request")
	}
	return r, nil
}

// ListSubjectRequests lists org's requests, newest first; status filters
// when not empty.
func (q *queries) ListSubjectRequests(ctx context.Context, org, status string) ([]SubjectRequest, error) {
	rs, err := q.q.query(ctx, `SELECT `+subjectColumns+` FROM subject_requests WHERE org_id = $1 AND ($2 = '' OR status = $2)
		ORDER BY received_at DESC, id DESC LIMIT 1000`, org, status)
	if err != nil {
		return nil, fmt.Errorf("list subject requests: %w", err)
	}
	defer rs.Close()
	out := []SubjectRequest{}
	for rs.Next() {
		r, err := q.scanSubject(rs)
		if err != nil {
			return nil, fmt.Errorf("list subject requests: %w", err)
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// lockSubject reads a request for update in this transaction.
func (t *Tx) lockSubject(ctx context.Context, org, id string) (SubjectRequest, error) {
	if err := t.Lock(ctx, "subject_request:"+id); err != nil {
		return SubjectRequest{}, err
	}
	return t.GetSubjectRequest(ctx, org, id)
}

// ExtendSubjectRequest pushes an open request's due date back by
// SubjectExtension, once.
func (s *Store) ExtendSubjectRequest(ctx context.Context, org, id, actor string) (SubjectRequest, error) {
	var r SubjectRequest
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if r, err = tx.lockSubject(ctx, org, id); err != nil {
			return err
		}
		if r.Status != SubjectOpen || r.Extended {
			return herald.Errorf(herald.CodeConflict, "only an open request that was never extended can be extended (status %s, extended %v)", r.Status, r.Extended)
		}
		r.DueAt = r.DueAt.Add(SubjectExtension)
		r.Extended = true
		if _, err := tx.q.exec(ctx, `UPDATE subject_requests SET due_at = $3, extended = $4 WHERE org_id = $1 AND id = $2`,
			org, id, r.DueAt, true); err != nil {
			return fmt.Errorf("extend subject request %s: %w", id, err)
		}
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindSubjectExtended, Actor: actor,
			Refs: map[string]string{"subject_request": id}, Attrs: map[string]any{"due_at": r.DueAt.UTC().Format(time.RFC3339)}})
		return err
	})
	r.Overdue = r.Status == SubjectOpen && s.Now().After(r.DueAt)
	return r, err
}

// CompleteSubjectRequest completes an open request: apply (which may be
// nil) carries out the kind's effect in the same transaction (erase,
// restrict, …), then the request is closed and its completion recorded
// with whether it was on time.
func (s *Store) CompleteSubjectRequest(ctx context.Context, org, id, actor string, apply func(tx *Tx, r SubjectRequest) error) (SubjectRequest, error) {
	var r SubjectRequest
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if r, err = tx.lockSubject(ctx, org, id); err != nil {
			return err
		}
		if r.Status != SubjectOpen {
			return herald.Errorf(herald.CodeConflict, "the request is %s, not open", r.Status)
		}
		if apply != nil {
			if err := apply(tx, r); err != nil {
				return err
			}
		}
		now := tx.now()
		if _, err := tx.q.exec(ctx, `UPDATE subject_requests SET status = $3, completed_at = $4, completed_by = $5 WHERE org_id = $1 AND id = $2`,
			org, id, SubjectCompleted, now, actor); err != nil {
			return fmt.Errorf("complete subject request %s: %w", id, err)
		}
		onTime := !now.After(r.DueAt)
		r.Status, r.CompletedAt, r.CompletedBy, r.Overdue = SubjectCompleted, &now, actor, false
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindSubjectCompleted, Actor: actor,
			Refs:  map[string]string{"subject_request": id},
			Attrs: completedAttrs(r, onTime, now)})
		return err
	})
	return r, err
}

func completedAttrs(r SubjectRequest, onTime bool, now time.Time) map[string]any {
	a := map[string]any{"kind": r.Kind, "on_time": onTime, "response_hours": int64(now.Sub(r.ReceivedAt) / time.Hour)}
	if r.Contact == "" {
		a["nothing_held"] = true
	}
	return a
}

// SetContactMark sets (on) or clears a contact's restriction or objection
// mark ("restricted_at" or "objected_at"), in this transaction.
func (t *Tx) SetContactMark(ctx context.Context, org, contactID, column string, on bool) error {
	if column != "restricted_at" && column != "objected_at" {
		return fmt.Errorf("set contact mark: unknown column %q", column)
	}
	var v *time.Time
	if on {
		now := t.now()
		v = &now
	}
	n, err := t.q.exec(ctx, `UPDATE contacts SET `+column+` = $3, updated_at = $4 WHERE org_id = $1 AND id = $2`, org, contactID, v, t.now())
	if err != nil {
		return fmt.Errorf("mark contact %s: %w", contactID, err)
	}
	if n == 0 {
		return notFound("contact")
	}
	return nil
}

// LiftSubjectRequest lifts a completed restriction or objection: the
// contact's mark is cleared and the lift recorded.
func (s *Store) LiftSubjectRequest(ctx context.Context, org, id, actor string) (SubjectRequest, error) {
	var r SubjectRequest
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if r, err = tx.lockSubject(ctx, org, id); err != nil {
			return err
		}
		col := map[string]string{SubjectRestriction: "restricted_at", SubjectObjection: "objected_at"}[r.Kind]
		if col == "" || r.Status != SubjectCompleted {
			return herald.Errorf(herald.CodeConflict, "only a completed restriction or objection can be lifted (kind %s, status %s)", r.Kind, r.Status)
		}
		if r.Contact != "" { // about an unknown person: nothing was marked
			if err := tx.SetContactMark(ctx, org, r.Contact, col, false); err != nil {
				return err
			}
		}
		now := tx.now()
		if _, err := tx.q.exec(ctx, `UPDATE subject_requests SET status = $3, lifted_at = $4 WHERE org_id = $1 AND id = $2`,
			org, id, SubjectLifted, now); err != nil {
			return fmt.Errorf("lift subject request %s: %w", id, err)
		}
		r.Status, r.LiftedAt = SubjectLifted, &now
		refs := map[string]string{"subject_request": id}
		if r.Contact != "" {
			refs["contact"] = r.Contact
		}
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindSubjectLifted, Actor: actor, Refs: refs, Attrs: map[string]any{"kind": r.Kind}})
		return err
	})
	return r, err
}

// SubjectStats summarises org's requests for the DPIA.
type SubjectStats struct {
	Received  int            `json:"received"`
	ByKind    map[string]int `json:"by_kind"`
	Completed int            `json:"completed"`
	OnTime    int            `json:"completed_on_time"`
	Open      int            `json:"open"`
	Overdue   int            `json:"overdue"`
	// MaxResponseHours is the longest time to completion in the period.
	MaxResponseHours int `json:"max_response_hours"`
}

// SubjectStats counts org's requests received in [from, to), and every
// request open and overdue now.
func (q *queries) SubjectStats(ctx context.Context, org string, from, to time.Time) (SubjectStats, error) {
	st := SubjectStats{ByKind: map[string]int{}}
	rs, err := q.q.query(ctx, `SELECT `+subjectColumns+` FROM subject_requests WHERE org_id = $1 AND (received_at >= $2 OR status = $3)`,
		org, from, SubjectOpen)
	if err != nil {
		return st, fmt.Errorf("subject request stats: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		r, err := q.scanSubject(rs)
		if err != nil {
			return st, fmt.Errorf("subject request stats: %w", err)
		}
		if r.Status == SubjectOpen {
			st.Open++
			if r.Overdue {
				st.Overdue++
			}
		}
		if r.ReceivedAt.Before(from) || !r.ReceivedAt.Before(to) {
			continue
		}
		st.Received++
		st.ByKind[r.Kind]++
		if r.CompletedAt != nil {
			st.Completed++
			if !r.CompletedAt.After(r.DueAt) {
				st.OnTime++
			}
			if h := int(r.CompletedAt.Sub(r.ReceivedAt) / time.Hour); h > st.MaxResponseHours {
				st.MaxResponseHours = h
			}
		}
	}
	return st, rs.Err()
}

// OverdueSubjectRequests counts open requests past their due time, in
// every organisation (for /metrics: a count, never an organisation's id).
func (q *queries) OverdueSubjectRequests(ctx context.Context) (int, error) {
	var n int
	err := q.q.queryRow(ctx, `SELECT count(*) FROM subject_requests WHERE status = $1 AND due_at < $2`, SubjectOpen, q.now()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count overdue subject requests: %w", err)
	}
	return n, nil
}

// SubjectAction is an action addressed to the person, as an access export
// shows it.
type SubjectAction struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	Purpose   string          `json:"purpose"`
	Status    string          `json:"status"`
	Content   json.RawMessage `json:"content,omitempty"`
	Decision  json.RawMessage `json:"decision,omitempty"`
	Receipt   json.RawMessage `json:"receipt,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// SubjectActions lists org's actions addressed to contactID, oldest first.
func (q *queries) SubjectActions(ctx context.Context, org, contactID string) ([]SubjectAction, error) {
	rs, err := q.q.query(ctx, `SELECT id, kind, purpose, status, content, decision, receipt, created_at FROM actions
		WHERE org_id = $1 AND contact_id = $2 ORDER BY created_at, id`, org, contactID)
	if err != nil {
		return nil, fmt.Errorf("subject actions: %w", err)
	}
	defer rs.Close()
	out := []SubjectAction{}
	for rs.Next() {
		var (
			a                 SubjectAction
			content           string
			decision, receipt *string
		)
		if err := rs.Scan(&a.ID, &a.Kind, &a.Purpose, &a.Status, &content, &decision, &receipt, &a.CreatedAt); err != nil {
			return nil, fmt.Errorf("subject actions: %w", err)
		}
		a.Content = rawOrNil(&content)
		a.Decision, a.Receipt = rawOrNil(decision), rawOrNil(receipt)
		out = append(out, a)
	}
	return out, rs.Err()
}

func rawOrNil(s *string) json.RawMessage {
	if s == nil || *s == "" || !json.Valid([]byte(*s)) {
		return nil
	}
	return json.RawMessage(*s)
}

// SubjectLedgerEntries returns org's entries that refer to contactID
// (under any pepper version; none when contactID is ""), to one of
// actionIDs or to one of requestIDs, in seq order.
func (q *queries) SubjectLedgerEntries(ctx context.Context, org, contactID string, actionIDs, requestIDs []string) ([]ledger.Entry, error) {
	var refs []string
	if contactID != "" {
		var err error
		if refs, err = q.contactRefs(ctx, org, contactID); err != nil {
			return nil, err
		}
	}
	args := []any{org}
	var conds []string
	in := func(expr string, vals []string) {
		if len(vals) == 0 {
			return
		}
		ph := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, v)
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		conds = append(conds, expr+" IN ("+strings.Join(ph, ", ")+")")
	}
	in(q.jsonRef("refs", "contact"), refs)
	in(q.jsonRef("refs", "action"), actionIDs)
	in(q.jsonRef("refs", "subject_request"), requestIDs)
	if len(conds) == 0 {
		return []ledger.Entry{}, nil
	}
	rs, err := q.q.query(ctx, `SELECT org_id, seq, time, kind, actor, refs, attrs, payload_hash, prev_hash, hash
		FROM ledger_entries WHERE org_id = $1 AND (`+strings.Join(conds, " OR ")+`) ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("subject ledger entries: %w", err)
	}
	return scanLedgerEntries(rs, "subject ledger entries")
}
