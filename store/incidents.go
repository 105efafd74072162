package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// Personal data breaches (GDPR Art. 33–34).

// BreachNotificationWindow is Art. 33(1)'s deadline: the supervisory
// authority is notified within 72 hours of becoming aware of the breach.
const BreachNotificationWindow = 72 * time.Hour

// Ledger kinds of incidents.
const (
	KindIncidentRecorded = "incident.recorded"
	KindIncidentNotified = "incident.notified"
)

// Incident is one recorded breach.
type Incident struct {
	ID               string     `json:"id"`
	Org              string     `json:"org"`
	Title            string     `json:"title"`
	Description      string     `json:"description"`
	DetectedAt       time.Time  `json:"detected_at"`
	DeadlineAt       time.Time  `json:"deadline_at"`
	WindowFrom       time.Time  `json:"window_from"`
	WindowTo         time.Time  `json:"window_to"`
	Accounts         []string   `json:"accounts"`
	AffectedSubjects int        `json:"affected_subjects"`
	AffectedActions  int        `json:"affected_actions"`
	Status           string     `json:"status"`
	NotifiedAt       *time.Time `json:"notified_at,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	CreatedBy        string     `json:"created_by"`
	// Overdue is computed: not notified and past the deadline.
	Overdue bool `json:"overdue"`
}

const incidentColumns = `id, org_id, title, description, detected_at, deadline_at, window_from, window_to, accounts,
	affected_subjects, affected_actions, status, notified_at, created_at, created_by`

func (q *queries) scanIncident(r row) (Incident, error) {
	var (
		in       Incident
		accounts string
	)
	err := r.Scan(&in.ID, &in.Org, &in.Title, &in.Description, &in.DetectedAt, &in.DeadlineAt, &in.WindowFrom, &in.WindowTo,
		&accounts, &in.AffectedSubjects, &in.AffectedActions, &in.Status, &in.NotifiedAt, &in.CreatedAt, &in.CreatedBy)
	if err != nil {
		return in, err
	}
	if err := json.Unmarshal([]byte(accounts), &in.Accounts); err != nil {
		return in, fmt.Errorf("decode incident %s accounts: %w", in.ID, err)
	}
	in.Overdue = in.Status == "open" && q.now().After(in.DeadlineAt)
	return in, nil
}

// AffectedByWindow counts the distinct people (contact refs) and actions
// the ledger records for org's accounts in [from, to): who a breach of
// those accounts over that time may have touched. It counts; it never
// lists the people.
func (q *queries) AffectedByWindow(ctx context.Context, org string, accounts []string, from, to time.Time) (subjects, actions int, err error) {
	if len(accounts) == 0 {
		return 0, 0, nil
	}
	args := []any{org, from, to}
	ph := make([]string, len(accounts))
	for i, a := range accounts {
		args = append(args, a)
		ph[i] = fmt.Sprintf("$%d", len(args))
	}
	err = q.q.queryRow(ctx, `SELECT count(DISTINCT `+q.jsonRef("refs", "contact")+`), count(DISTINCT `+q.jsonRef("refs", "action")+`)
		FROM ledger_entries WHERE org_id = $1 AND time >= $2 AND time < $3 AND kind LIKE 'action.%'
		AND `+q.jsonRef("refs", "account")+` IN (`+strings.Join(ph, ", ")+`)`, args...).Scan(&subjects, &actions)
	if err != nil {
		return 0, 0, fmt.Errorf("count people affected in org %q: %w", org, err)
	}
	return subjects, actions, nil
}

// RecordIncident computes the affected counts, stores the incident and
// records incident.recorded, in one transaction. Every account MUST be
// one of org's.
func (s *Store) RecordIncident(ctx context.Context, in Incident) (Incident, error) {
	err := s.InTx(ctx, func(tx *Tx) error {
		for _, a := range in.Accounts {
			if _, err := tx.GetAccount(ctx, in.Org, a); err != nil {
				return err
			}
		}
		var err error
		if in.AffectedSubjects, in.AffectedActions, err = tx.AffectedByWindow(ctx, in.Org, in.Accounts, in.WindowFrom, in.WindowTo); err != nil {
			return err
		}
		in.ID, in.Status, in.CreatedAt = NewID(), "open", tx.now()
		in.DeadlineAt = in.DetectedAt.Add(BreachNotificationWindow)
		in.Overdue = tx.now().After(in.DeadlineAt)
		accounts, _ := json.Marshal(in.Accounts)
		if _, err := tx.q.exec(ctx, `INSERT INTO incidents (`+incidentColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			in.ID, in.Org, in.Title, in.Description, in.DetectedAt, in.DeadlineAt, in.WindowFrom, in.WindowTo, string(accounts),
			in.AffectedSubjects, in.AffectedActions, in.Status, nil, in.CreatedAt, in.CreatedBy); err != nil {
			return fmt.Errorf("record incident: %w", err)
		}
		// The title and description may name people: they go in the
		// payload (erasable), the counts and the clock in the chain.
		payload, _ := json.Marshal(map[string]string{"title": in.Title, "description": in.Description})
		_, err = tx.AppendLedger(ctx, in.Org, LedgerRecord{Kind: KindIncidentRecorded, Actor: in.CreatedBy,
			Refs: map[string]string{"incident": in.ID},
			Attrs: map[string]any{"detected_at": in.DetectedAt.UTC().Format(time.RFC3339), "deadline_at": in.DeadlineAt.UTC().Format(time.RFC3339),
				"affected_subjects": in.AffectedSubjects, "affected_actions": in.AffectedActions, "accounts": len(in.Accounts)},
			Payload: payload})
		return err
	})
	return in, err
}

// GetIncident returns one of org's incidents.
func (q *queries) GetIncident(ctx context.Context, org, id string) (Incident, error) {
	in, err := q.scanIncident(q.q.queryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE org_id = $1 AND id = $2`, org, id))
	if err != nil {
		return in, scanNotFound(err, "incident")
	}
	return in, nil
}

// ListIncidents lists org's incidents, newest first.
func (q *queries) ListIncidents(ctx context.Context, org string) ([]Incident, error) {
	rs, err := q.q.query(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE org_id = $1 ORDER BY detected_at DESC, id DESC LIMIT 1000`, org)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rs.Close()
	out := []Incident{}
	for rs.Next() {
		in, err := q.scanIncident(rs)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, in)
	}
	return out, rs.Err()
}

// MarkIncidentNotified records that the authority was notified.
func (s *Store) MarkIncidentNotified(ctx context.Context, org, id, actor string) (Incident, error) {
	var in Incident
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.Lock(ctx, "incident:"+id); err != nil {
			return err
		}
		var err error
		if in, err = tx.GetIncident(ctx, org, id); err != nil {
			return err
		}
		if in.Status != "open" {
			return herald.Errorf(herald.CodeConflict, "the incident was already notified")
		}
		now := tx.now()
		if _, err := tx.q.exec(ctx, `UPDATE incidents SET status = 'notified', notified_at = $3 WHERE org_id = $1 AND id = $2`, org, id, now); err != nil {
			return fmt.Errorf("mark incident %s notified: %w", id, err)
		}
		onTime := !now.After(in.DeadlineAt)
		in.Status, in.NotifiedAt, in.Overdue = "notified", &now, false
		_, err = tx.AppendLedger(ctx, org, LedgerRecord{Kind: KindIncidentNotified, Actor: actor,
			Refs: map[string]string{"incident": id}, Attrs: map[string]any{"on_time": onTime,
				"hours_after_detection": int64(now.Sub(in.DetectedAt) / time.Hour)}})
		return err
	})
	return in, err
}
