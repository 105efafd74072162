package herald

import (
	"encoding/json"
	"time"
)

// Status is where an action is in its life. See Transition for the legal moves.
type Status string

const (
	StatusReceived        Status = "received"
	StatusDecided         Status = "decided"
	StatusPendingApproval Status = "pending_approval"
	StatusScheduled       Status = "scheduled"
	StatusSending         Status = "sending"
	StatusDelivered       Status = "delivered"
	StatusFailed          Status = "failed"
	StatusDenied          Status = "denied"
	StatusCancelled       Status = "cancelled"
	StatusExpired         Status = "expired"
	// StatusUnknown: a worker died between the network call and recording its
	// result. The message may or may not have been sent; Herald never resends
	// on its own, an operator decides.
	StatusUnknown Status = "unknown"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{StatusReceived, StatusDecided, StatusPendingApproval, StatusScheduled,
	StatusSending, StatusDelivered, StatusFailed, StatusDenied, StatusCancelled, StatusExpired, StatusUnknown}

// transitions is the state machine. A status absent as a key is terminal.
var transitions = map[Status][]Status{
	StatusReceived:        {StatusDecided},
	StatusDecided:         {StatusPendingApproval, StatusScheduled, StatusDenied},
	StatusPendingApproval: {StatusScheduled, StatusDenied, StatusCancelled, StatusExpired},
	StatusScheduled:       {StatusSending, StatusCancelled, StatusExpired, StatusDenied, StatusScheduled}, // → scheduled: a send-time deferral
	StatusSending:         {StatusDelivered, StatusFailed, StatusScheduled, StatusUnknown},
	StatusUnknown:         {StatusScheduled, StatusDelivered, StatusFailed},
	// A denial whose reasons are all overridable can be overridden by a
	// person (human review of an automated decision).
	StatusDenied: {StatusScheduled},
}

// CanTransition reports whether from → to is a legal move.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether s ends the action's life (a denial can still be
// overridden by a person, but nothing automatic follows it).
func (s Status) Terminal() bool {
	switch s {
	case StatusDelivered, StatusFailed, StatusDenied, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// TransitionError reports an illegal move; the stored state is unchanged.
func TransitionError(from, to Status) *Error {
	return Errorf(CodeIllegalTransition, "an action in status %q cannot move to %q", from, to)
}

// Action kinds, as in the public API.
const (
	KindSendMessage   = "send_message"
	KindSendPhoto     = "send_photo"
	KindEditMessage   = "edit_message"
	KindDeleteMessage = "delete_message"
	KindPinMessage    = "pin_message"
	KindUnpinMessage  = "unpin_message"
	KindEditCaption   = "edit_caption"
	KindPostToChannel = "post_to_channel"
)

// Kinds lists every action kind.
var Kinds = []string{KindSendMessage, KindSendPhoto, KindEditMessage, KindDeleteMessage, KindPinMessage, KindUnpinMessage, KindEditCaption, KindPostToChannel}

// Content is what an action sends, after rendering. It is personal data and
// lives only in the action row (and, later, the ledger's payload table); it
// never goes to logs or policy input.
type Content struct {
	Text                string `json:"text,omitempty"`
	ParseMode           string `json:"parse_mode,omitempty"`
	PhotoURL            string `json:"photo_url,omitempty"`
	PhotoFileID         string `json:"photo_file_id,omitempty"`
	Caption             string `json:"caption,omitempty"`
	MessageID           int64  `json:"message_id,omitempty"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
}

// Action is one outbound Telegram action and everything Herald decided about it.
type Action struct {
	ID        string    `json:"id"`
	Org       string    `json:"org"`
	Account   string    `json:"account"`
	Kind      string    `json:"kind"`
	Purpose   string    `json:"purpose"`
	Target    string    `json:"target"`            // Telegram chat id or @username
	ContactID string    `json:"contact,omitempty"` // set when the target is a known contact
	Recipient string    `json:"-"`                 // the key the person is counted by, however addressed
	Content   Content   `json:"content"`
	Status    Status    `json:"status"`
	SendAt    time.Time `json:"send_at"` // when it is (or was) due to go out
	// ScheduleAt is what the caller asked for, if anything.
	ScheduleAt     *time.Time      `json:"schedule_at,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	RequestHash    string          `json:"-"`
	SubmittedBy    string          `json:"submitted_by"`
	Decision       json.RawMessage `json:"decision,omitempty"`
	Receipt        json.RawMessage `json:"receipt,omitempty"`
	Attempts       int             `json:"attempts"`
	ErrorCode      string          `json:"error_code,omitempty"`
	ErrorMessage   string          `json:"error_message,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// ActionEvent is one recorded transition.
type ActionEvent struct {
	From   Status    `json:"from,omitempty"`
	To     Status    `json:"to"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Detail string    `json:"detail,omitempty"`
	// TraceID is the OpenTelemetry trace of the request or delivery attempt
	// that made the move; empty when tracing was off.
	TraceID string `json:"trace_id,omitempty"`
}
