package mtproto

import (
	"fmt"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
)

// outcome says what Herald knows about whether a failed call reached
// Telegram. The transport cannot tell for an RPC error (Telegram answered,
// so it did receive it, and the error says whether it acted).
type outcome int

const (
	// notSent: nothing was written since the call began.
	notSent outcome = iota
	// maybeSent: bytes were written; Telegram may have acted.
	maybeSent
)

// accountStops and permanents: Telegram's RPC error types (the message without
// its numeric argument, as tgerr parses it) that decide the class on their
// own. Types are Telegram's documented ones (core.telegram.org/api/errors
// and each method's error list).
var accountStops = map[string]string{
	"USER_DEACTIVATED_BAN":   "user_deactivated_ban",
	"USER_DEACTIVATED":       "user_deactivated",
	"AUTH_KEY_UNREGISTERED":  "auth_key_unregistered",
	"AUTH_KEY_INVALID":       "auth_key_invalid",
	"AUTH_KEY_PERM_EMPTY":    "auth_key_unregistered",
	"SESSION_REVOKED":        "session_revoked",
	"SESSION_EXPIRED":        "session_revoked",
	"ACCESS_TOKEN_INVALID":   "invalid_token",
	"ACCESS_TOKEN_EXPIRED":   "invalid_token",
	"API_ID_INVALID":         "api_id_invalid",
	"API_ID_PUBLISHED_FLOOD": "api_id_invalid",
	"FROZEN_METHOD_INVALID":  "account_frozen",
}

type permanent struct {
	code     string
	suppress bool
}

// permanents keeps the codes of the Bot API connector where the meaning is
// the same, so the worker and the policies see one vocabulary.
var permanents = map[string]permanent{
	// The recipient refuses: opt them out for this account, as well-run
	// senders do (source telegram.blocked).
	"USER_IS_BLOCKED":         {"blocked", true},
	"INPUT_USER_DEACTIVATED":  {"user_deactivated", true},
	"USER_PRIVACY_RESTRICTED": {"privacy_restricted", false},
	"YOU_BLOCKED_USER":        {"you_blocked_user", false},
	"USER_IS_BOT":             {"recipient_is_bot", false},
	"BOT_METHOD_INVALID":      {"bot_method_invalid", false},
	// The chat is wrong or gone.
	"PEER_ID_INVALID":       {"chat_not_found", false},
	"CHAT_ID_INVALID":       {"chat_not_found", false},
	"CHANNEL_INVALID":       {"chat_not_found", false},
	"USER_ID_INVALID":       {"user_not_found", false},
	"CHANNEL_PRIVATE":       {"not_member", false},
	"CHAT_FORBIDDEN":        {"not_member", false},
	"USER_NOT_PARTICIPANT":  {"not_member", false},
	"USERNAME_NOT_OCCUPIED": {"username_not_occupied", false},
	"USERNAME_INVALID":      {"username_invalid", false},
	// Rights.
	"CHAT_WRITE_FORBIDDEN":       {"not_enough_rights", false},
	"CHAT_ADMIN_REQUIRED":        {"not_enough_rights", false},
	"CHAT_RESTRICTED":            {"not_enough_rights", false},
	"CHAT_SEND_PLAIN_FORBIDDEN":  {"not_enough_rights", false},
	"CHAT_SEND_PHOTOS_FORBIDDEN": {"not_enough_rights", false},
	"CHAT_SEND_MEDIA_FORBIDDEN":  {"not_enough_rights", false},
	"USER_BANNED_IN_CHANNEL":     {"not_enough_rights", false},
	"CHAT_GUEST_SEND_FORBIDDEN":  {"not_enough_rights", false},
	// The message.
	"MESSAGE_TOO_LONG":            {"message_too_long", false},
	"MEDIA_CAPTION_TOO_LONG":      {"caption_too_long", false},
	"MESSAGE_EMPTY":               {"message_empty", false},
	"ENTITY_BOUNDS_INVALID":       {"bad_markup", false},
	"ENTITIES_TOO_LONG":           {"bad_markup", false},
	"ENTITY_MENTION_USER_INVALID": {"bad_markup", false},
	"MESSAGE_ID_INVALID":          {"message_not_found", false},
	"MESSAGE_IDS_EMPTY":           {"message_not_found", false},
	"MESSAGE_NOT_MODIFIED":        {"message_not_modified", false},
	"MESSAGE_EDIT_TIME_EXPIRED":   {"message_not_editable", false},
	"MESSAGE_AUTHOR_REQUIRED":     {"message_not_editable", false},
	"MESSAGE_DELETE_FORBIDDEN":    {"message_not_deletable", false},
	"PIN_RESTRICTED":              {"not_enough_rights", false},
	// The photo.
	"WEBPAGE_CURL_FAILED":      {"bad_photo", false},
	"WEBPAGE_MEDIA_EMPTY":      {"bad_photo", false},
	"MEDIA_EMPTY":              {"bad_photo", false},
	"MEDIA_INVALID":            {"bad_photo", false},
	"PHOTO_INVALID":            {"bad_photo", false},
	"PHOTO_INVALID_DIMENSIONS": {"bad_photo", false},
	"PHOTO_EXT_INVALID":        {"bad_photo", false},
	"PHOTO_SAVE_FILE_INVALID":  {"bad_photo", false},
	"FILE_REFERENCE_EXPIRED":   {"bad_photo", false},
	"FILE_REFERENCE_INVALID":   {"bad_photo", false},
}

// classify maps the failure of one call made for d to a connectors error
// class. method is the TL method called; sent says whether bytes left the
// process since the call began (ignored for RPC errors, which are answers).
// Errors that are already classified (FloodWait's RetryableError, a
// credentials source's AccountStopError) keep their class.
func classify(d connectors.Delivery, method string, err error, sent outcome) error {
	wrapped := fmt.Errorf("mtproto: action %s attempt %d: %s: %w", d.ActionID, d.Attempt, method, err)
	if connectors.IsClassified(err) {
		return wrapped
	}
	if rpc, ok := tgerr.As(err); ok {
		return classifyRPC(d, method, rpc, wrapped)
	}
	if sent == notSent {
		return &connectors.RetryableError{Err: fmt.Errorf("%w (not sent)", wrapped)}
	}
	return &connectors.UnknownError{Err: fmt.Errorf("%w (request written, no answer)", wrapped)}
}

func classifyRPC(d connectors.Delivery, method string, rpc *tgerr.Error, err error) error {
	switch rpc.Type {
	case tgerr.ErrFloodWait, errFloodPremiumWait:
		// FloodWait normally returns these already classified; this covers
		// an invoker without the middleware.
		return &connectors.RetryableError{After: seconds(rpc.Argument), Scope: MethodScope(method), Err: err}
	case "SLOWMODE_WAIT":
		return &connectors.RetryableError{After: seconds(rpc.Argument), Scope: ratelimit.ChatScope(d.ChatID), Err: err}
	case "PEER_FLOOD":
		return &connectors.AccountStopError{Code: "peer_flood", Freeze: PeerFloodFreeze, Err: err}
	case "RANDOM_ID_DUPLICATE":
		// An earlier attempt of this very action reached Telegram (the
		// random_id is derived from the action id). It was delivered, but
		// its message id is not known here: the worker surfaces it.
		return &connectors.UnknownError{Err: fmt.Errorf("%w: an earlier attempt of this action was delivered", err)}
	}
	if code, ok := accountStops[rpc.Type]; ok {
		return &connectors.AccountStopError{Code: code, Err: err}
	}
	if p, ok := permanents[rpc.Type]; ok {
		return &connectors.PermanentError{Code: p.code, Suppress: p.suppress, Err: err}
	}
	switch {
	case rpc.Code == 420:
		// Another flood limit (FLOOD_TEST_PHONE_WAIT, …): Telegram refused.
		return &connectors.RetryableError{After: seconds(rpc.Argument), Scope: MethodScope(method), Err: err}
	case rpc.Code == 401:
		return &connectors.AccountStopError{Code: "unauthorized", Err: err}
	case rpc.Code >= 500 || rpc.Code == -503:
		// INTERNAL or "Timeout": Telegram may have acted. Edits, deletes
		// and pins are idempotent, so those are retried; a send is not.
		if isSend(d.Kind) {
			return &connectors.UnknownError{Err: err}
		}
		return &connectors.RetryableError{Err: err}
	case rpc.Code == 403:
		return &connectors.PermanentError{Code: "forbidden", Err: err}
	case rpc.Code == 400:
		return &connectors.PermanentError{Code: "bad_request", Err: err}
	}
	return &connectors.PermanentError{Code: "telegram_error", Err: err}
}

// classifyStart maps a failure to start an account's client: nothing of the
// delivery was sent, so anything not decided by Telegram is retryable.
func classifyStart(d connectors.Delivery, err error) error {
	wrapped := fmt.Errorf("mtproto: account %s: start client: %w", d.Account.ID, err)
	if connectors.IsClassified(err) {
		return wrapped
	}
	if rpc, ok := tgerr.As(err); ok {
		return classifyRPC(d, "start", rpc, wrapped)
	}
	return &connectors.RetryableError{Err: fmt.Errorf("%w (not sent)", wrapped)}
}

func isSend(kind string) bool {
	return kind == connectors.KindSendMessage || kind == connectors.KindSendPhoto || kind == connectors.KindPostToChannel
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
