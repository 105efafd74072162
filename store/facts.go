package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
)

// Counting for policy decisions.
//
// Invariants:
//   - Account facts MUST come from send_counters, never from a scan of
//     actions: their cost is one primary-key range per decision whatever the
//     traffic.
//   - send_counters MUST be changed only in the transaction that changes the
//     action it counts (InsertAction, Transition), so a counter always equals
//     what the actions table says, on every replica.
//   - A reservation is an action in a counted status; it is counted at its
//     send_at. Leaving the counted statuses (cancel, deny, expiry, failure)
//     or moving send_at (deferral, retry) moves the count with it.
//
// Recipient facts are read from actions by the (org_id, recipient, send_at)
// index: the list the policy needs is bounded by what one person receives in
// 16 days, not by the organisation's traffic.

// countedStatuses are the statuses that consume a frequency cap: everything
// committed to go out or already out. Denied actions never count; cancelled,
// expired and failed ones release their reservation.
const countedStatuses = `('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')`

// counted mirrors countedStatuses for Go.
func counted(s herald.Status) bool {
	switch s {
	case herald.StatusPendingApproval, herald.StatusScheduled, herald.StatusSending, herald.StatusDelivered, herald.StatusUnknown:
		return true
	}
	return false
}

// Counter scopes (see migration 0009): r* count reservations by send_at,
// s* count sends by the time they started, b3 counts blocks. The second
// character gives the bucket width (bucketWidth).
const (
	scopeReserved100ms = "r1"
	scopeReserved1s    = "r2"
	scopeReserved1h    = "r3"
	scopeReserved1m    = "r4"
	scopeStarted100ms  = "s1"
	scopeStarted1s     = "s2"
	scopeBlocked1h     = "b3"
	scope429_1h        = "q3"
	scopeFloodWait1h   = "f3"
	scopePeerFlood1h   = "p3"
)

// Account events counted for risk (CountAccountEvent).
const (
	EventTooManyRequests = "too_many_requests" // Bot API 429 (incl. flood and slow-mode waits)
	EventFloodWait       = "flood_wait"        // MTProto FLOOD_WAIT
	EventPeerFlood       = "peer_flood"        // MTProto PEER_FLOOD
)

var eventScopes = map[string]string{EventTooManyRequests: scope429_1h, EventFloodWait: scopeFloodWait1h, EventPeerFlood: scopePeerFlood1h}

// CountAccountEvent counts one rate-limit answer Telegram gave account at
// at, in the caller's transaction (the one recording the attempt).
func (t *Tx) CountAccountEvent(ctx context.Context, org, account, event string, at time.Time) error {
	scope, ok := eventScopes[event]
	if !ok {
		return fmt.Errorf("count account event: unknown event %q", event)
	}
	return t.applyCounters(ctx, org, account, []counterDelta{{scope, at, 1}})
}

// bucketWidth is each scope's bucket width.
func bucketWidth(scope string) time.Duration {
	switch scope[1] {
	case '1':
		return 100 * time.Millisecond
	case '2':
		return time.Second
	case '4':
		return time.Minute
	}
	return time.Hour
}

func bucketOf(scope string, t time.Time) int64 {
	return t.UnixMicro() / bucketWidth(scope).Microseconds()
}

// RecipientSend is one earlier counted send to a recipient.
type RecipientSend struct {
	At      time.Time
	Purpose string
}

// SendFacts are the counters policies decide frequency and risk from.
type SendFacts struct {
	Recipient         []RecipientSend
	AccountLastSecond int
	AccountLastMinute int
	AccountSends24h   int
	AccountBlocked24h int
	Account429_24h    int
	AccountFlood24h   int
	AccountPeerFlood  int // PEER_FLOOD answers in the last 24 h
	AccountDaily7d    float64
	ChatLastMinute    int
	ChatLastPostAt    *time.Time
}

// FactQuery names what SendFacts counts for.
type FactQuery struct {
	Org     string
	Account string
	// Recipient is the resolved recipient key (policyinput.RecipientKey).
	Recipient string
	// At is the decision instant.
	At time.Time
	// Self is the stored action being re-decided at send time; nil at
	// submit. It selects the send-time ordering rule: the action counts only
	// the sends before it, never itself or later reservations.
	Self *herald.Action
}

// recipientWindow is how far back recipient sends are listed: a calendar
// week in the recipient's zone plus a day of zone slack.
const recipientWindow = 8 * 24 * time.Hour

// SendFacts gathers the counters for an action due at q.At. Run inside the
// deciding transaction, after Lock on the account and the recipient, the
// counts and the reservation (the inserted action) are atomic.
//
// At submit (q.Self nil) every reservation counts, wherever it is in line.
// At send time an action's place in line is (send_at, id): it counts sends
// already started or done (sending, delivered, unknown) and reservations
// ahead of it, never itself or the ones behind it, so N due sends under a
// cap of k let exactly k through instead of each counting all the others.
// For the account's second and minute windows, send time counts the sends
// that actually started in the window (what Telegram sees).
func (q *queries) SendFacts(ctx context.Context, fq FactQuery) (SendFacts, error) {
	var f SendFacts
	at := fq.At
	ws := accountWindows(fq)
	// One statement, one round trip: the account's counter sums (one row)
	// joined to the recipient's counted sends (zero or more rows). The
	// sums repeat on every recipient row; a recipient without sends yields
	// the one row with a NULL send_at.
	args := make([]any, 0, factsArgs+2)
	args = append(args, fq.Account)
	for _, w := range ws {
		args = append(args, w.scope, w.from, w.to)
	}
	args = append(args, fq.Org, fq.Recipient, at.Add(-recipientWindow), at.Add(recipientWindow))
	query := factsSQL
	if fq.Self != nil {
		args = append(args, fq.Self.ID, fq.Self.SendAt)
		query = factsSelfSQL
	}
	rs, err := q.q.query(ctx, query, args...)
	if err != nil {
		return f, fmt.Errorf("send facts: %w", err)
	}
	defer rs.Close()
	var sums [numWindows]int64
	dst := make([]any, numWindows+2)
	for i := range sums {
		dst[i] = &sums[i]
	}
	var (
		sendAt  *time.Time
		purpose *string
	)
	dst[numWindows], dst[numWindows+1] = &sendAt, &purpose
	rows := 0
	for rs.Next() {
		if err := rs.Scan(dst...); err != nil {
			return f, fmt.Errorf("send facts: %w", err)
		}
		rows++
		if sendAt == nil {
			continue
		}
		s := RecipientSend{At: *sendAt}
		if purpose != nil {
			s.Purpose = *purpose
		}
		f.Recipient = append(f.Recipient, s)
		if !s.At.Before(at.Add(-time.Minute)) && !s.At.After(at) {
			f.ChatLastMinute++
		}
		if !s.At.After(at) {
			t := s.At
			f.ChatLastPostAt = &t
		}
	}
	if err := rs.Err(); err != nil {
		return f, fmt.Errorf("send facts: %w", err)
	}
	if rows == 0 {
		return f, fmt.Errorf("send facts: the counter sums returned no row")
	}
	accountFacts(fq, ws, sums, &f)
	return f, nil
}

// window is one counter read: the sum of scope's buckets in (from, to].
type window struct {
	scope    string
	from, to int64
}

func windowEnding(scope string, at time.Time, span time.Duration) window {
	to := bucketOf(scope, at)
	return window{scope: scope, from: to - int64(span/bucketWidth(scope)), to: to}
}

// The account windows, in the order of their sums.
const (
	wSecond = iota
	wMinute
	wDayHours
	wWeekHours
	wHourMinutes
	wMinuteSeconds
	wBlocked
	w429
	wFlood
	wPeerFlood
	numWindows
)

// accountWindows are the counter ranges of the account's facts: one
// primary-key range per window.
//
// The day and week windows are the 24 (168) whole hours before the current
// one, plus the current hour's whole minutes, plus the current minute's
// seconds up to at: a reservation due later in the current hour is not
// counted as sent yet.
func accountWindows(fq FactQuery) [numWindows]window {
	at := fq.At
	sec, minute := scopeReserved100ms, scopeReserved1s
	if fq.Self != nil {
		sec, minute = scopeStarted100ms, scopeStarted1s
	}
	hb, mb, sb := bucketOf(scopeReserved1h, at), bucketOf(scopeReserved1m, at), bucketOf(scopeReserved1s, at)
	return [numWindows]window{
		wSecond:        windowEnding(sec, at, time.Second),
		wMinute:        windowEnding(minute, at, time.Minute),
		wDayHours:      {scopeReserved1h, hb - 25, hb - 1},
		wWeekHours:     {scopeReserved1h, hb - 7*24 - 1, hb - 1},
		wHourMinutes:   {scopeReserved1m, hb*60 - 1, mb - 1},
		wMinuteSeconds: {scopeReserved1s, mb*60 - 1, sb},
		wBlocked:       windowEnding(scopeBlocked1h, at, 24*time.Hour),
		w429:           windowEnding(scope429_1h, at, 24*time.Hour),
		wFlood:         windowEnding(scopeFloodWait1h, at, 24*time.Hour),
		wPeerFlood:     windowEnding(scopePeerFlood1h, at, 24*time.Hour),
	}
}

// factsArgs is the number of arguments of factsSQL: the account, three per
// window, then the organisation, the recipient and the recipient window.
const factsArgs = 1 + 3*numWindows + 4

// factsSQL reads every fact of a decision in one statement, one round trip:
// the account's counter sums (one row; one primary-key range per window)
// joined to the recipient's counted sends (zero or more rows, by the
// (org_id, recipient, send_at) index). The sums repeat on every recipient
// row; a recipient without sends yields the one row with a NULL send_at.
// factsSelfSQL adds the send-time ordering rule (FactQuery.Self). The texts
// are built once: the statement caches of both stores key on them.
var factsSQL, factsSelfSQL = buildFactsSQL()

func buildFactsSQL() (plain, self string) {
	var sel, where strings.Builder
	for i := range numWindows {
		n := 1 + 3*(i+1)
		cond := fmt.Sprintf("(scope = $%d AND bucket > $%d AND bucket <= $%d)", n-2, n-1, n)
		if i > 0 {
			sel.WriteString(", ")
			where.WriteString(" OR ")
		}
		// SUM of bigint is numeric in PostgreSQL: cast back for the scan.
		fmt.Fprintf(&sel, "CAST(COALESCE(SUM(CASE WHEN %s THEN n ELSE 0 END), 0) AS bigint) AS w%d", cond, i)
		where.WriteString(cond)
	}
	n := factsArgs
	recipient := fmt.Sprintf(`SELECT send_at, purpose FROM actions
		WHERE org_id = $%d AND recipient = $%d AND status IN `+countedStatuses+` AND send_at >= $%d AND send_at <= $%d`, n-3, n-2, n-1, n)
	recipientSelf := recipient + fmt.Sprintf(
		` AND id <> $%d AND (status IN ('sending', 'delivered', 'unknown') OR send_at < $%d OR (send_at = $%d AND id < $%d))`, n+1, n+2, n+2, n+1)
	stmt := func(recipient string) string {
		return `SELECT c.*, r.send_at, r.purpose FROM (SELECT ` + sel.String() + ` FROM send_counters WHERE account_id = $1 AND (` +
			where.String() + `)) c LEFT JOIN (` + recipient + `) r ON 1 = 1 ORDER BY r.send_at`
	}
	return stmt(recipient), stmt(recipientSelf)
}

// accountFacts turns the window sums into the account's facts.
func accountFacts(fq FactQuery, ws [numWindows]window, sums [numWindows]int64, f *SendFacts) {
	current := sums[wHourMinutes] + sums[wMinuteSeconds]
	day, week := sums[wDayHours]+current, sums[wWeekHours]+current
	// The action re-decided at send time is itself a reservation in the
	// day and week windows: it never counts against itself.
	if s := fq.Self; s != nil && counted(s.Status) {
		in := func(w window) bool {
			b := bucketOf(w.scope, s.SendAt)
			return b > w.from && b <= w.to
		}
		cur := in(ws[wHourMinutes]) || in(ws[wMinuteSeconds])
		if (cur || in(ws[wDayHours])) && day > 0 {
			day--
		}
		if (cur || in(ws[wWeekHours])) && week > 0 {
			week--
		}
	}
	f.AccountLastSecond, f.AccountLastMinute = int(sums[wSecond]), int(sums[wMinute])
	f.AccountSends24h, f.AccountDaily7d, f.AccountBlocked24h = int(day), float64(week)/7, int(sums[wBlocked])
	f.Account429_24h, f.AccountFlood24h, f.AccountPeerFlood = int(sums[w429]), int(sums[wFlood]), int(sums[wPeerFlood])
}

// counterDelta is one change to send_counters.
type counterDelta struct {
	scope string
	at    time.Time
	n     int
}

func reservation(at time.Time, n int) []counterDelta {
	return []counterDelta{{scopeReserved100ms, at, n}, {scopeReserved1s, at, n}, {scopeReserved1m, at, n}, {scopeReserved1h, at, n}}
}

// countMove returns the counter changes of an action moving from one state
// to another (status, send_at, error code); now is the time of the move.
func countMove(from, to herald.Action, now time.Time) []counterDelta {
	var ds []counterDelta
	was, is := counted(from.Status), counted(to.Status)
	moved := !from.SendAt.Equal(to.SendAt)
	if was && (!is || moved) {
		ds = append(ds, reservation(from.SendAt, -1)...)
	}
	if is && (!was || moved) {
		ds = append(ds, reservation(to.SendAt, 1)...)
	}
	if to.Status == herald.StatusSending && from.Status != herald.StatusSending {
		ds = append(ds, counterDelta{scopeStarted100ms, now, 1}, counterDelta{scopeStarted1s, now, 1})
	}
	if to.ErrorCode == "blocked" && from.ErrorCode != "blocked" {
		ds = append(ds, counterDelta{scopeBlocked1h, now, 1})
	}
	return ds
}

// applyCounters adds ds to the account's counters in one statement.
func (t *Tx) applyCounters(ctx context.Context, org, account string, ds []counterDelta) error {
	if len(ds) == 0 {
		return nil
	}
	// Sum per key first: one statement may not touch a row twice. A move
	// changes a handful of buckets: a slice beats a map.
	type keySum struct {
		scope  string
		bucket int64
		n      int
	}
	sums := make([]keySum, 0, len(ds))
next:
	for _, d := range ds {
		b := bucketOf(d.scope, d.at)
		for i := range sums {
			if sums[i].scope == d.scope && sums[i].bucket == b {
				sums[i].n += d.n
				continue next
			}
		}
		sums = append(sums, keySum{d.scope, b, d.n})
	}
	args := make([]any, 2, 2+3*len(sums))
	args[0], args[1] = account, org
	rows := 0
	for _, k := range sums {
		if k.n == 0 {
			continue
		}
		args = append(args, k.scope, k.bucket, k.n)
		rows++
	}
	if rows == 0 {
		return nil
	}
	return t.q.deferExec(ctx, func(err error) error { return fmt.Errorf("update send counters: %w", err) }, countersUpsertSQL(rows), args...)
}

// countersUpsertSQLs caches the upsert text per row count (a move touches
// at most a dozen buckets), so building it allocates nothing.
var countersUpsertSQLs sync.Map // int → string

func countersUpsertSQL(rows int) string {
	if q, ok := countersUpsertSQLs.Load(rows); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO send_counters (account_id, scope, bucket, org_id, n) VALUES `)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		n := 2 + 3*(i+1)
		fmt.Fprintf(&b, "($1, $%d, $%d, $2, $%d)", n-2, n-1, n)
	}
	b.WriteString(`
		ON CONFLICT (account_id, scope, bucket) DO UPDATE SET n = send_counters.n + excluded.n`)
	q := b.String()
	if rows <= 32 {
		countersUpsertSQLs.Store(rows, q)
	}
	return q
}

// counterHorizon is how long counter buckets are kept: the longest window
// read (7 days, at a decision up to a day ahead) with slack.
const counterHorizon = 9 * 24 * time.Hour

// PruneSendCounters deletes counter buckets no window can read any more
// (older than before - counterHorizon); it returns how many went.
func (q *queries) PruneSendCounters(ctx context.Context, before time.Time) (int64, error) {
	cut := before.Add(-counterHorizon)
	var total int64
	for _, scope := range []string{scopeReserved100ms, scopeReserved1s, scopeReserved1m, scopeReserved1h, scopeStarted100ms, scopeStarted1s,
		scopeBlocked1h, scope429_1h, scopeFloodWait1h, scopePeerFlood1h} {
		n, err := q.q.exec(ctx, `DELETE FROM send_counters WHERE scope = $1 AND bucket < $2`, scope, bucketOf(scope, cut))
		if err != nil {
			return total, fmt.Errorf("prune send counters: %w", err)
		}
		total += n
	}
	return total, nil
}
