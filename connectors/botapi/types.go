package botapi

import (
	"fmt"
	"time"
)

// DefaultBaseURL is Telegram's cloud Bot API. A local Bot API server or the
// telegramtest fake is configured by its base URL instead.
const DefaultBaseURL = "https://api.telegram.org"

// maxResponseBytes bounds how much of an answer is read: Bot API answers to
// the methods used here are a few kilobytes.
const maxResponseBytes = 1 << 20

// Chat is the part of Telegram's Chat object Herald reads.
type Chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// Message is the part of Telegram's Message object Herald reads.
type Message struct {
	MessageID int64  `json:"message_id"`
	Date      int64  `json:"date"`
	Chat      Chat   `json:"chat"`
	Text      string `json:"text,omitempty"`
	Caption   string `json:"caption,omitempty"`
}

// SendMessageParams are sendMessage's parameters Herald uses.
type SendMessageParams struct {
	ChatID              string `json:"chat_id"`
	Text                string `json:"text"`
	ParseMode           string `json:"parse_mode,omitempty"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
	// AllowPaidBroadcast lifts the 30 msg/s limit to 1000 msg/s for a fee
	// in Telegram Stars.
	AllowPaidBroadcast bool `json:"allow_paid_broadcast,omitempty"`
}

// SendPhotoParams are sendPhoto's parameters; Photo is an HTTP URL Telegram
// fetches or a file_id of a photo already on Telegram's servers.
type SendPhotoParams struct {
	ChatID              string `json:"chat_id"`
	Photo               string `json:"photo"`
	Caption             string `json:"caption,omitempty"`
	ParseMode           string `json:"parse_mode,omitempty"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
	AllowPaidBroadcast  bool   `json:"allow_paid_broadcast,omitempty"`
}

// EditMessageTextParams are editMessageText's parameters.
type EditMessageTextParams struct {
	ChatID    string `json:"chat_id"`
	MessageID int64  `json:"message_id"`
	Text      string `json:"text"`
	ParseMode string `json:"parse_mode,omitempty"`
}

// EditMessageCaptionParams are editMessageCaption's parameters.
type EditMessageCaptionParams struct {
	ChatID    string `json:"chat_id"`
	MessageID int64  `json:"message_id"`
	Caption   string `json:"caption"`
	ParseMode string `json:"parse_mode,omitempty"`
}

// DeleteMessageParams are deleteMessage's parameters.
type DeleteMessageParams struct {
	ChatID    string `json:"chat_id"`
	MessageID int64  `json:"message_id"`
}

// PinChatMessageParams are pinChatMessage's parameters.
type PinChatMessageParams struct {
	ChatID              string `json:"chat_id"`
	MessageID           int64  `json:"message_id"`
	DisableNotification bool   `json:"disable_notification,omitempty"`
}

// UnpinChatMessageParams are unpinChatMessage's parameters (Herald always
// names the message: unpinning "the most recent" is not an action).
type UnpinChatMessageParams struct {
	ChatID    string `json:"chat_id"`
	MessageID int64  `json:"message_id"`
}

// APIError is Telegram's answer {"ok":false,...} to one call.
type APIError struct {
	Method      string
	Code        int    // error_code, equal to the HTTP status
	Description string // e.g. "Forbidden: bot was blocked by the user"
	// RetryAfter is parameters.retry_after (flood control).
	RetryAfter time.Duration
	// MigrateToChatID is parameters.migrate_to_chat_id: the group became
	// a supergroup with this id.
	MigrateToChatID int64
}

func (e *APIError) Error() string {
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}

// TransportError is a call that got no answer from Telegram. Written tells
// whether the whole request had been written to the connection: if it had,
// Telegram may have executed it.
type TransportError struct {
	Method  string
	Written bool
	Err     error // token already redacted
}

func (e *TransportError) Error() string {
	if e.Written {
		return fmt.Sprintf("telegram %s: request sent, no answer: %v", e.Method, e.Err)
	}
	return fmt.Sprintf("telegram %s: request not sent: %v", e.Method, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }
