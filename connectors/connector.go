// Package connectors defines how Herald hands one decided, committed action to
// Telegram, and how the outcome is classified so the delivery worker can turn
// it into state: delivered, retry at a time, fail with a reason, or stop the
// account.
//
// A Connector MUST NOT retry on its own beyond what it can prove is safe: a
// request that may have reached Telegram is reported as an error of class
// Unknown (see [UnknownError]) so the worker never double-messages a person.
package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Action kinds Herald can deliver. They mirror the public API's kinds.
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

// Account is what a connector needs to know about the sending identity.
// Secrets are never carried here: SecretRef names where the connector's
// secret source finds them.
type Account struct {
	ID        string
	Org       string
	Kind      string // "bot" or "user"
	Connector string // "sandbox", "botapi", "mtproto"
	SecretRef string
	// PaidBroadcast lets a bot exceed the free 30 msg/s limit (Telegram's
	// allow_paid_broadcast, up to 1000 msg/s, billed in Stars).
	PaidBroadcast bool
}

// Delivery is one rendered action ready to go out.
type Delivery struct {
	ActionID string
	Attempt  int
	Account  Account
	Kind     string
	// ChatID is the Telegram chat: a numeric id ("123", "-100…") or "@username".
	ChatID              string
	Text                string
	ParseMode           string // "", "MarkdownV2", "HTML"
	PhotoURL            string
	PhotoFileID         string
	Caption             string
	MessageID           int64 // for edit, delete, pin
	DisableNotification bool
}

// Receipt is Telegram's acknowledgement of a delivery.
type Receipt struct {
	MessageID int64     `json:"message_id,omitempty"`
	ChatID    string    `json:"chat_id"`
	At        time.Time `json:"at"`
	// Connector names who produced the receipt ("sandbox", "botapi", …).
	Connector string `json:"connector"`
	// MigratedTo is set when Telegram answered that the target group was
	// upgraded to a supergroup (migrate_to_chat_id) and the connector
	// delivered to the new chat instead. ChatID is then the new chat too;
	// the worker records MigratedTo so later deliveries use the new id.
	MigratedTo string `json:"migrated_to,omitempty"`
	// Message is Telegram's own result object (a Message, or true), verbatim,
	// when the connector has one: the Bot API facade returns it to the bot
	// that made the call, exactly as Telegram answered.
	Message json.RawMessage `json:"message,omitempty"`
}

// Connector delivers one action. Implementations must be safe for concurrent use.
type Connector interface {
	Send(ctx context.Context, d Delivery) (Receipt, error)
}

// RetryableError: the action did not reach Telegram (or Telegram refused it
// for now) and may be tried again after After. Scope says which limit was hit
// ("chat:<id>", "bot:<account>", "method:<name>") so only that scope waits.
type RetryableError struct {
	After time.Duration
	Scope string
	Err   error
}

func (e *RetryableError) Error() string {
	return fmt.Sprintf("retryable after %s (scope %q): %v", e.After, e.Scope, e.Err)
}
func (e *RetryableError) Unwrap() error { return e.Err }

// PermanentError: this action can never succeed as it is. Code is a stable
// machine-readable reason ("blocked", "chat_not_found", "message_too_long", …).
// Suppress is set when the recipient must be opted out for this account
// (they blocked the bot, or their account is deleted).
type PermanentError struct {
	Code     string
	Suppress bool
	Err      error
}

func (e *PermanentError) Error() string { return fmt.Sprintf("permanent (%s): %v", e.Code, e.Err) }
func (e *PermanentError) Unwrap() error { return e.Err }

// AccountStopError: the sending account must stop (PEER_FLOOD, banned,
// revoked token). Freeze is how long to hold its queue; zero means until a
// person intervenes.
type AccountStopError struct {
	Code   string
	Freeze time.Duration
	Err    error
}

func (e *AccountStopError) Error() string {
	return fmt.Sprintf("account stop (%s, freeze %s): %v", e.Code, e.Freeze, e.Err)
}
func (e *AccountStopError) Unwrap() error { return e.Err }

// UnknownError: the request may or may not have reached Telegram (the
// connection broke after the request was written). The worker marks the
// action unknown and never resends it on its own.
type UnknownError struct{ Err error }

func (e *UnknownError) Error() string { return fmt.Sprintf("outcome unknown: %v", e.Err) }
func (e *UnknownError) Unwrap() error { return e.Err }

// Class is the worker-facing classification of a Send error.
type Class int

const (
	ClassNone Class = iota
	ClassRetryable
	ClassPermanent
	ClassAccountStop
	ClassUnknown
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetryable:
		return "retryable"
	case ClassPermanent:
		return "permanent"
	case ClassAccountStop:
		return "account_stop"
	case ClassUnknown:
		return "unknown"
	}
	return "invalid"
}

// Classify maps any Send error to its class. An unclassified error is
// treated as retryable with no delay hint: the worker applies its backoff.
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	if c, ok := classOf(err); ok {
		return c
	}
	return ClassRetryable
}

// IsClassified reports whether err already carries one of the error
// classes (a connector passes such an error through unchanged, e.g. one a
// token source returned).
func IsClassified(err error) bool {
	_, ok := classOf(err)
	return ok
}

func classOf(err error) (Class, bool) {
	var (
		r *RetryableError
		p *PermanentError
		a *AccountStopError
		u *UnknownError
	)
	switch {
	case errors.As(err, &a):
		return ClassAccountStop, true
	case errors.As(err, &p):
		return ClassPermanent, true
	case errors.As(err, &u):
		return ClassUnknown, true
	case errors.As(err, &r):
		return ClassRetryable, true
	}
	return ClassNone, false
}

// RetryAfter returns the connector's delay hint for a retryable error, or 0.
func RetryAfter(err error) time.Duration {
	var r *RetryableError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}
