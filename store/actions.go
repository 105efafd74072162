package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/telemetry"
)

const actionColumns = `id, org_id, account_id, kind, purpose, target, contact_id, content, status, send_at, schedule_at,
	idempotency_key, request_hash, submitted_by, decision, receipt, attempts, error_code, error_message, created_at, updated_at, recipient`

func scanAction(r row) (herald.Action, error) {
	var (
		a                  herald.Action
		contactID, idemKey *string
		content            string
		decision, receipt  *string
	)
	err := r.Scan(&a.ID, &a.Org, &a.Account, &a.Kind, &a.Purpose, &a.Target, &contactID, &content, &a.Status, &a.SendAt, &a.ScheduleAt,
		&idemKey, &a.RequestHash, &a.SubmittedBy, &decision, &receipt, &a.Attempts, &a.ErrorCode, &a.ErrorMessage, &a.CreatedAt, &a.UpdatedAt, &a.Recipient)
	if err != nil {
		return a, err
	}
	if contactID != nil {
		a.ContactID = *contactID
	}
	if idemKey != nil {
		a.IdempotencyKey = *idemKey
	}
	if err := json.Unmarshal([]byte(content), &a.Content); err != nil {
		return a, fmt.Errorf("decode content of action %s: %w", a.ID, err)
	}
	if decision != nil {
		a.Decision = json.RawMessage(*decision)
	}
	if receipt != nil {
		a.Receipt = json.RawMessage(*receipt)
	}
	return a, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullableJSON(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

// InsertAction stores a new action in status received and records
// action.received in the ledger, with the content as its payload. The
// transitions in then are applied at once, exactly as if Transition had
// been called for each (state machine checked, an action_events row and a
// ledger entry per move, all in this transaction), but in a few statements
// instead of several per move: the submit path's received → decided →
// scheduled is the hot path.
func (t *Tx) InsertAction(ctx context.Context, a *herald.Action, then ...Transition) error {
	now := t.now()
	if a.ID == "" {
		a.ID = NewID()
	}
	if a.Recipient == "" {
		// Callers resolve the recipient (policyinput.Resolve); a raw chat
		// is its own key otherwise.
		a.Recipient = a.Target
	}
	a.Status, a.CreatedAt, a.UpdatedAt = herald.StatusReceived, now, now
	froms := make([]herald.Status, len(then))
	for i, tr := range then {
		if !herald.CanTransition(a.Status, tr.To) {
			return herald.TransitionError(a.Status, tr.To)
		}
		froms[i] = a.Status
		applyTransition(a, tr, now)
	}
	content, err := json.Marshal(a.Content)
	if err != nil {
		return fmt.Errorf("encode content: %w", err)
	}
	// The inserts below are deferred (db.go): on PostgreSQL they reach the
	// server together with the ledger head read, in one round trip.
	isUnique := t.d.isUnique
	err = t.q.deferExec(ctx, func(err error) error {
		if isUnique(err) {
			return herald.Errorf(herald.CodeIdempotencyReuse, "an action with this Idempotency-Key already exists")
		}
		return fmt.Errorf("insert action: %w", err)
	}, `INSERT INTO actions (`+actionColumns+`) VALUES
		($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`,
		a.ID, a.Org, a.Account, a.Kind, a.Purpose, a.Target, nullable(a.ContactID), string(content), a.Status, a.SendAt, a.ScheduleAt,
		nullable(a.IdempotencyKey), a.RequestHash, a.SubmittedBy, nullableJSON(a.Decision), nullableJSON(a.Receipt), a.Attempts,
		a.ErrorCode, a.ErrorMessage, a.CreatedAt, a.UpdatedAt, a.Recipient)
	if err != nil {
		return err
	}
	args := make([]any, 5, 5+4*len(then))
	args[0], args[1], args[2], args[3], args[4] = a.ID, a.Org, now, a.SubmittedBy, nullable(telemetry.TraceID(ctx))
	for i, tr := range then {
		args = append(args, string(froms[i]), string(tr.To), tr.Actor, tr.Detail)
	}
	id := a.ID
	if err := t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("record transitions of action %s: %w", id, err) },
		insertEventsSQL(len(then)), args...); err != nil {
		return err
	}
	if counted(a.Status) {
		if err := t.applyCounters(ctx, a.Org, a.Account, reservation(a.SendAt, 1)); err != nil {
			return err
		}
	}
	payload, err := json.Marshal(struct {
		Target  string         `json:"target"`
		Content herald.Content `json:"content"`
	}{a.Target, a.Content})
	if err != nil {
		return fmt.Errorf("encode ledger payload: %w", err)
	}
	records := []LedgerRecord{{
		Kind:    ledger.KindActionReceived,
		Actor:   a.SubmittedBy,
		Refs:    actionRefs(*a),
		Attrs:   map[string]any{"kind": a.Kind, "purpose": a.Purpose, "status": string(herald.StatusReceived)},
		Payload: payload,
	}}
	for i, tr := range then {
		records = append(records, transitionRecord(*a, froms[i], tr))
	}
	_, err = t.AppendLedgerBatch(ctx, a.Org, records)
	return err
}

// insertEventsSQLs caches the action_events insert of InsertAction per
// number of transitions (the submit path uses two).
var insertEventsSQLs sync.Map // int → string

// insertEventsSQL is the insert of the received event and n transitions:
// $1–$5 are shared (action, org, time, submitter, trace), then four
// arguments per transition.
func insertEventsSQL(n int) string {
	if q, ok := insertEventsSQLs.Load(n); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO action_events (action_id, org_id, from_status, to_status, at, actor, detail, trace_id) VALUES ($1, $2, '', 'received', $3, $4, '', $5)`)
	for i := range n {
		k := 5 + 4*(i+1)
		fmt.Fprintf(&b, ", ($1, $2, $%d, $%d, $3, $%d, $%d, $5)", k-3, k-2, k-1, k)
	}
	q := b.String()
	if n <= 8 {
		insertEventsSQLs.Store(n, q)
	}
	return q
}

// applyTransition makes tr's field changes on a.
func applyTransition(a *herald.Action, tr Transition, now time.Time) {
	a.Status, a.UpdatedAt = tr.To, now
	if tr.SendAt != nil {
		a.SendAt = tr.SendAt.UTC().Truncate(time.Microsecond)
	}
	if tr.Decision != nil {
		a.Decision = tr.Decision
	}
	if tr.Receipt != nil {
		a.Receipt = tr.Receipt
	}
	if tr.ErrorCode != nil {
		a.ErrorCode = *tr.ErrorCode
	}
	if tr.ErrorMessage != nil {
		a.ErrorMessage = *tr.ErrorMessage
	}
	if tr.CountAttempt {
		a.Attempts++
	}
}

// transitionRecord is the ledger record of the move from → tr.To.
func transitionRecord(a herald.Action, from herald.Status, tr Transition) LedgerRecord {
	attrs := map[string]any{"from": string(from), "to": string(tr.To)}
	if tr.Detail != "" {
		attrs["detail"] = tr.Detail
	}
	for k, v := range tr.Attrs {
		attrs[k] = v
	}
	kind := "action." + string(tr.To)
	if tr.LedgerKind != "" {
		kind = tr.LedgerKind
	}
	return LedgerRecord{Kind: kind, Actor: tr.Actor, Refs: actionRefs(a), Attrs: attrs}
}

func actionRefs(a herald.Action) map[string]string {
	r := map[string]string{"action": a.ID, "account": a.Account}
	if a.ContactID != "" {
		r["contact"] = a.ContactID
	}
	return r
}

func (t *Tx) event(ctx context.Context, a *herald.Action, from, to herald.Status, actor, detail string) error {
	_, err := t.q.exec(ctx, `INSERT INTO action_events (action_id, org_id, from_status, to_status, at, actor, detail, trace_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, a.ID, a.Org, string(from), string(to), t.now(), actor, detail,
		nullable(telemetry.TraceID(ctx)))
	if err != nil {
		return fmt.Errorf("record transition of action %s: %w", a.ID, err)
	}
	return nil
}

// GetAction returns one of org's actions.
func (q *queries) GetAction(ctx context.Context, org, id string) (herald.Action, error) {
	a, err := scanAction(q.q.queryRow(ctx, `SELECT `+actionColumns+` FROM actions WHERE org_id = $1 AND id = $2`, org, id))
	if err != nil {
		return a, scanNotFound(err, "action")
	}
	return a, nil
}

// ActionByIdempotencyKey returns org's action submitted with key.
func (q *queries) ActionByIdempotencyKey(ctx context.Context, org, key string) (herald.Action, error) {
	a, err := scanAction(q.q.queryRow(ctx, `SELECT `+actionColumns+` FROM actions WHERE org_id = $1 AND idempotency_key = $2`, org, key))
	if err != nil {
		return a, scanNotFound(err, "action")
	}
	return a, nil
}

// ActionFilter selects actions in a listing. Cursor is the id of the last
// action of the previous page (ids are time-ordered).
type ActionFilter struct {
	Status  herald.Status
	Account string
	Purpose string
	From    *time.Time // created_at >= From
	To      *time.Time // created_at < To
	Cursor  string
	Limit   int
}

// ListActions lists org's actions newest first and returns the next page's
// cursor ("" on the last page).
func (q *queries) ListActions(ctx context.Context, org string, f ActionFilter) ([]herald.Action, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	var (
		where = []string{"org_id = $1"}
		args  = []any{org}
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", string(f.Status))
	}
	if f.Account != "" {
		add("account_id = $%d", f.Account)
	}
	if f.Purpose != "" {
		add("purpose = $%d", f.Purpose)
	}
	if f.From != nil {
		add("created_at >= $%d", *f.From)
	}
	if f.To != nil {
		add("created_at < $%d", *f.To)
	}
	if f.Cursor != "" {
		add("id < $%d", f.Cursor)
	}
	args = append(args, f.Limit+1)
	rs, err := q.q.query(ctx, `SELECT `+actionColumns+` FROM actions WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list actions: %w", err)
	}
	defer rs.Close()
	out := []herald.Action{}
	for rs.Next() {
		a, err := scanAction(rs)
		if err != nil {
			return nil, "", fmt.Errorf("list actions: %w", err)
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, "", fmt.Errorf("list actions: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// ActionEvents returns the transitions of one of org's actions, oldest first.
func (q *queries) ActionEvents(ctx context.Context, org, id string) ([]herald.ActionEvent, error) {
	rs, err := q.q.query(ctx, `SELECT from_status, to_status, at, actor, detail, COALESCE(trace_id, '') FROM action_events
		WHERE org_id = $1 AND action_id = $2 ORDER BY id`, org, id)
	if err != nil {
		return nil, fmt.Errorf("action events: %w", err)
	}
	defer rs.Close()
	out := []herald.ActionEvent{}
	for rs.Next() {
		var e herald.ActionEvent
		if err := rs.Scan(&e.From, &e.To, &e.At, &e.Actor, &e.Detail, &e.TraceID); err != nil {
			return nil, fmt.Errorf("action events: %w", err)
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

// Transition describes one state change.
type Transition struct {
	To     herald.Status
	Actor  string
	Detail string // short, non-personal: a reason code, never message text
	// Optional field changes made with the move.
	SendAt       *time.Time
	Decision     []byte
	Receipt      []byte
	ErrorCode    *string
	ErrorMessage *string
	CountAttempt bool
	// Attrs are added to the ledger entry (outcome, rule ids, bundle hash…).
	Attrs map[string]any
	// LedgerKind names the ledger entry; "action.<To>" when empty (a
	// send-time deferral, scheduled → scheduled, is "action.deferred").
	LedgerKind string
}

// Transition moves one of org's actions to tr.To, if the state machine
// allows it from the action's current status; otherwise it returns an
// illegal_transition error and changes nothing. The row is locked for the
// rest of the transaction, the move is recorded in action_events, and the
// ledger gets its action.<status> entry in the same transaction.
func (t *Tx) Transition(ctx context.Context, org, id string, tr Transition) (herald.Action, error) {
	forUpdate := ""
	if t.d.name == "postgres" {
		forUpdate = " FOR UPDATE"
	}
	a, err := scanAction(t.q.queryRow(ctx, `SELECT `+actionColumns+` FROM actions WHERE org_id = $1 AND id = $2`+forUpdate, org, id))
	if err != nil {
		return a, scanNotFound(err, "action")
	}
	if !herald.CanTransition(a.Status, tr.To) {
		return a, herald.TransitionError(a.Status, tr.To)
	}
	from, before := a.Status, a
	applyTransition(&a, tr, t.now())
	_, err = t.q.exec(ctx, `UPDATE actions SET status = $3, send_at = $4, decision = $5, receipt = $6, attempts = $7,
		error_code = $8, error_message = $9, updated_at = $10 WHERE org_id = $1 AND id = $2`,
		org, id, string(a.Status), a.SendAt, nullableJSON(a.Decision), nullableJSON(a.Receipt), a.Attempts,
		a.ErrorCode, a.ErrorMessage, a.UpdatedAt)
	if err != nil {
		return a, fmt.Errorf("move action %s to %s: %w", id, tr.To, err)
	}
	if err := t.applyCounters(ctx, org, a.Account, countMove(before, a, t.now())); err != nil {
		return a, err
	}
	if err := t.event(ctx, &a, from, tr.To, tr.Actor, tr.Detail); err != nil {
		return a, err
	}
	_, err = t.AppendLedger(ctx, org, transitionRecord(a, from, tr))
	return a, err
}

// SeedDeliveredActions inserts n delivered actions of account, to n
// distinct chats, sent from 2 to 23 hours before now, and the hourly
// counters they imply, in a few bulk SQL statements (load and flatness
// measurements only: nothing is recorded in the ledger, so the seeded
// organisation's chain does not vouch for them). It measures how the
// submit path's cost behaves against a large actions table without
// spending an hour submitting through the API.
func (s *Store) SeedDeliveredActions(ctx context.Context, org, account string, n int, now time.Time) error {
	span := int64(21 * time.Hour / time.Microsecond)
	end := now.Add(-2 * time.Hour).UnixMicro()
	var stmts []string
	if s.d.name == "postgres" {
		at := fmt.Sprintf("to_timestamp(%d::float8 / 1e6) - (g * %d / %d) * interval '1 microsecond'", end, span, n)
		stmts = []string{
			fmt.Sprintf(`INSERT INTO actions (id, org_id, account_id, kind, purpose, target, recipient, content, status, send_at,
				submitted_by, created_at, updated_at)
				SELECT 'seed-' || g, $1, $2, 'send_message', 'transactional', (-100000000000 - g)::text, (-100000000000 - g)::text, '{}', 'delivered',
				%s, 'seed', %s, %s FROM generate_series(1, %d) g`, at, at, at, n),
			`INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
				SELECT account_id, 'r3', floor(extract(epoch FROM send_at) / 3600)::bigint, org_id, count(*) FROM actions
				WHERE org_id = $1 AND account_id = $2 AND submitted_by = 'seed' GROUP BY 1, 3, 4`,
			// Autovacuum analyses a table that grew by a million rows only
			// later; production tables have statistics.
			`ANALYZE actions`, `ANALYZE send_counters`,
		}
	} else {
		at := fmt.Sprintf("(%d - (g * %d / %d))", end, span, n)
		stmts = []string{
			fmt.Sprintf(`WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %d)
				INSERT INTO actions (id, org_id, account_id, kind, purpose, target, recipient, content, status, send_at,
				submitted_by, created_at, updated_at)
				SELECT 'seed-' || g, $1, $2, 'send_message', 'transactional', CAST(-100000000000 - g AS TEXT), CAST(-100000000000 - g AS TEXT), '{}', 'delivered',
				%s, 'seed', %s, %s FROM s`, n, at, at, at),
			`INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
				SELECT account_id, 'r3', send_at / 3600000000, org_id, count(*) FROM actions
				WHERE org_id = $1 AND account_id = $2 AND submitted_by = 'seed' GROUP BY 1, 3, 4`,
			`ANALYZE`,
		}
	}
	for _, q := range stmts {
		var args []any
		if strings.Contains(q, "$1") {
			args = []any{org, account}
		}
		if err := s.InTx(ctx, func(tx *Tx) error {
			_, err := tx.q.exec(ctx, q, args...)
			return err
		}); err != nil {
			return fmt.Errorf("seed %d delivered actions: %w", n, err)
		}
	}
	return nil
}
