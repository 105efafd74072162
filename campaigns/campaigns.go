// Package campaigns is Herald's unit of work at scale: one message template
// sent to a saved segment (or an explicit list) of contacts, from one or
// several accounts, staggered per recipient and tracked as a whole.
//
// A campaign never bypasses the action pipeline. Its fan-out turns every
// recipient into one ordinary action submitted through the same path as
// POST /v1/actions (render, policy, ledger, idempotency), so every guarantee
// of a single action holds for each recipient.
//
// Invariants:
//   - Every recipient's action MUST be submitted with the idempotency key
//     IdempotencyKey(campaign, contact): a fan-out that crashed half way and
//     resumes MUST NOT create a second action for anyone.
//   - A recipient's account and send time MUST be fixed when the recipients
//     are materialised (rendezvous hash, local window), so a resubmission is
//     the same request and replays instead of being refused.
//   - The segment MUST be evaluated when the fan-out starts, not when the
//     campaign was written: consent and opt-outs change in between, and the
//     policy decides again per recipient at submit and at send time anyway.
//   - A campaign's state changes (draft → scheduled → running → paused →
//     completed | cancelled) MUST each be a ledger entry in the same
//     transaction as the change.
//   - A template variable that a contact lacks MUST make that recipient
//     invalid (reason template.missing_variable), never a message with a
//     hole in it; values MUST be escaped for the template's parse mode.
package campaigns

import (
	"fmt"
	"strings"
	"time"

	"github.com/heraldhq/herald"
)

// Status is where a campaign is in its life.
type Status string

const (
	StatusDraft     Status = "draft"
	StatusScheduled Status = "scheduled"
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"
	StatusCompleted Status = "completed"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every campaign status, in life order.
var Statuses = []Status{StatusDraft, StatusScheduled, StatusRunning, StatusPaused, StatusCompleted, StatusCancelled}

var transitions = map[Status][]Status{
	StatusDraft:     {StatusScheduled, StatusCancelled},
	StatusScheduled: {StatusRunning, StatusPaused, StatusCancelled},
	StatusRunning:   {StatusPaused, StatusCompleted, StatusCancelled},
	StatusPaused:    {StatusRunning, StatusScheduled, StatusCancelled},
}

// CanTransition reports whether a campaign may move from one status to another.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether nothing more happens to a campaign in status s.
func (s Status) Terminal() bool { return s == StatusCompleted || s == StatusCancelled }

// Spec is what an operator writes: the message, who gets it, from which
// accounts, and when.
type Spec struct {
	Kind     string   `json:"kind"` // send_message or send_photo
	Purpose  string   `json:"purpose"`
	Template Template `json:"template"`
	// Segment is a saved segment's id; Contacts an explicit list of contact
	// ids. Exactly one is set.
	Segment  string   `json:"segment,omitempty"`
	Contacts []string `json:"contacts,omitempty"`
	// Accounts send the campaign; each recipient sticks to one of them.
	Accounts []string `json:"accounts"`
	// StartAt is when the fan-out may begin (now when absent); EndAt, if
	// set, is when sending stops: recipients whose turn would come later
	// are skipped (window_closed).
	StartAt *time.Time `json:"start_at,omitempty"`
	EndAt   *time.Time `json:"end_at,omitempty"`
	// Window is each recipient's local sending window ("10:00"–"18:00" in
	// their own time zone, the organisation's when they have none).
	Window *Window `json:"window,omitempty"`
}

// Campaign is a stored campaign.
type Campaign struct {
	ID           string    `json:"id"`
	Org          string    `json:"org"`
	Name         string    `json:"name"`
	Status       Status    `json:"status"`
	Spec         Spec      `json:"spec"`
	CreatedBy    string    `json:"created_by"`
	RunAs        string    `json:"run_as,omitempty"`
	Materialized bool      `json:"materialized"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// MaxAccounts bounds the accounts of one campaign.
const MaxAccounts = 50

// MaxExplicitContacts bounds an explicit recipient list; larger audiences
// are segments.
const MaxExplicitContacts = 10_000

// Validate returns spec's field errors. now bounds start and end.
func (s Spec) Validate(now time.Time) []herald.FieldError {
	var fe []herald.FieldError
	add := func(field, msg string) { fe = append(fe, herald.FieldError{Field: field, Message: msg}) }
	switch s.Kind {
	case herald.KindSendMessage, herald.KindSendPhoto:
	default:
		add("kind", "must be send_message or send_photo")
	}
	if !herald.ValidPurpose(s.Purpose) {
		add("purpose", "must be one of "+strings.Join(herald.Purposes, ", "))
	}
	fe = append(fe, s.Template.Validate(s.Kind)...)
	switch {
	case s.Segment == "" && len(s.Contacts) == 0:
		add("segment", "name a segment or an explicit list of contacts")
	case s.Segment != "" && len(s.Contacts) > 0:
		add("contacts", "name a segment or contacts, not both")
	case len(s.Contacts) > MaxExplicitContacts:
		add("contacts", fmt.Sprintf("at most %d contacts; use a segment for larger audiences", MaxExplicitContacts))
	}
	for i, c := range s.Contacts {
		if !validID(c) {
			add(fmt.Sprintf("contacts[%d]", i), "must be a contact id")
		}
	}
	switch {
	case len(s.Accounts) == 0:
		add("accounts", "name at least one sending account")
	case len(s.Accounts) > MaxAccounts:
		add("accounts", fmt.Sprintf("at most %d accounts", MaxAccounts))
	}
	seen := map[string]bool{}
	for i, a := range s.Accounts {
		if !validID(a) {
			add(fmt.Sprintf("accounts[%d]", i), "must be an account id")
		} else if seen[a] {
			add(fmt.Sprintf("accounts[%d]", i), "is listed twice")
		}
		seen[a] = true
	}
	if s.StartAt != nil && s.StartAt.After(now.Add(maxAhead)) {
		add("start_at", "must be within a year")
	}
	if s.EndAt != nil {
		start := now
		if s.StartAt != nil && s.StartAt.After(now) {
			start = *s.StartAt
		}
		if !s.EndAt.After(start) {
			add("end_at", "must be after the start")
		}
	}
	if s.Window != nil {
		fe = append(fe, s.Window.Validate()...)
	}
	return fe
}

// maxAhead matches the pipeline's bound on schedule_at.
const maxAhead = 365 * 24 * time.Hour

// validID accepts Herald's ids (UUIDs) without importing the store.
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
				return false
			}
		}
	}
	return true
}

// IdempotencyKey is the key a recipient's action is submitted with.
func IdempotencyKey(campaign, contact string) string { return "campaign:" + campaign + ":" + contact }

// Ledger entry kinds of campaigns. A status change is KindPrefix + status
// ("campaign.scheduled", "campaign.paused", …).
const (
	KindPrefix       = "campaign."
	KindCreated      = "campaign.created"
	KindMaterialized = "campaign.materialized"
	// The campaign's approval (approved once for all its recipients).
	KindApprovalRequested = "campaign.approval_requested"
	KindApprovalVote      = "campaign.approval_vote"
	KindApproved          = "campaign.approved"
	KindRejected          = "campaign.rejected"
	KindApprovalExpired   = "campaign.approval_expired"
)
