package botapi

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
)

// DefaultRetryAfter is used for a 429 that carries no retry_after (neither in
// parameters nor in the text): long enough to let a per-chat or per-second
// window pass, short enough not to stall a queue.
const DefaultRetryAfter = 3 * time.Second

// rule maps a fragment of Telegram's description (matched case-insensitively)
// to a stable PermanentError code. Texts are Telegram's as observed in the
// wild; Telegram documents error_code but not the descriptions, so the
// fragments are kept short and the table is tested with full real texts.
type rule struct {
	status   int // 0 matches any status
	fragment string
	code     string
	suppress bool
}

var permanentRules = []rule{
	// 403: the recipient side refuses. Blocked and deactivated users are
	// opted out for the account (source telegram.blocked), as well-run
	// senders do; kicked or not-a-member concerns the bot, not a person.
	{403, "bot was blocked by the user", "blocked", true},
	{403, "user is deactivated", "user_deactivated", true},
	{403, "bot was kicked", "bot_kicked", false},
	{403, "bot can't initiate conversation", "cant_initiate", false},
	{403, "bot can't send messages to bots", "recipient_is_bot", false},
	{403, "bot is not a member", "not_member", false},
	{403, "group chat was deleted", "chat_deleted", false},
	{0, "not enough rights", "not_enough_rights", false},
	{0, "have no rights", "not_enough_rights", false},
	{0, "need administrator rights", "not_enough_rights", false},
	{0, "chat_write_forbidden", "not_enough_rights", false},
	{0, "chat_admin_required", "not_enough_rights", false},
	{0, "chat_restricted", "not_enough_rights", false},
	// 400: the request can never succeed as it is.
	{400, "chat not found", "chat_not_found", false},
	{400, "peer_id_invalid", "chat_not_found", false},
	{400, "user not found", "user_not_found", false},
	{400, "chat was deactivated", "chat_deactivated", false},
	{400, "group chat was upgraded to a supergroup", "chat_migrated", false},
	{400, "group chat was migrated to a supergroup", "chat_migrated", false},
	{400, "message is too long", "message_too_long", false},
	{400, "message caption is too long", "caption_too_long", false},
	{400, "text is empty", "message_empty", false},
	{400, "can't parse entities", "bad_markup", false},
	{400, "unsupported parse_mode", "bad_markup", false},
	{400, "entities too long", "bad_markup", false},
	{400, "message to edit not found", "message_not_found", false},
	{400, "message to delete not found", "message_not_found", false},
	{400, "message to pin not found", "message_not_found", false},
	{400, "message can't be edited", "message_not_editable", false},
	{400, "message can't be deleted", "message_not_deletable", false},
	// The edit is already in place: the worker may count it delivered.
	{400, "message is not modified", "message_not_modified", false},
	{400, "wrong file identifier", "bad_photo", false},
	{400, "wrong remote file identifier", "bad_photo", false},
	{400, "invalid file id", "bad_photo", false},
	{400, "failed to get http url content", "bad_photo", false},
	{400, "wrong type of the web page content", "bad_photo", false},
	{400, "photo_invalid_dimensions", "bad_photo", false},
	{400, "image_process_failed", "bad_photo", false},
	{400, "there is no photo in the request", "bad_photo", false},
	{400, "chat_id is empty", "invalid_request", false},
	{400, "message identifier is not specified", "invalid_request", false},
}

var (
	retryAfterText = regexp.MustCompile(`(?i)retry after (\d+)`)
	slowModeText   = regexp.MustCompile(`SLOWMODE_WAIT_(\d+)`)
	floodWaitText  = regexp.MustCompile(`FLOOD_WAIT_(\d+)`)
)

// Classify turns an error from [Client] into the connectors error class for
// delivery d (whose Account and ChatID name the scopes). Errors already
// classified pass through; anything unrecognised becomes retryable.
//
// Scope of a 429: Telegram's answer does not say which limit was hit. A
// group or channel (negative id, @username) gets "chat:<id>": the limits
// specific to it (20 msg/min per group, slow mode) are per chat, and the
// bot-wide limit is kept by Herald's own limiter, so the 429 is almost
// certainly the chat's and must not stall the bot's other chats. A private
// chat gets "bot:<account>": there Telegram's 1 msg/s per chat is also kept
// by the limiter, so a 429 most likely means the bot as a whole is over its
// budget, and pausing the whole bot is the conservative answer.
// SLOWMODE_WAIT_N is always "chat:<id>", FLOOD_WAIT_N always the account.
func Classify(err error, d connectors.Delivery) error {
	if err == nil {
		return nil
	}
	if connectors.IsClassified(err) {
		return err
	}
	acctScope := ratelimit.AccountScope(d.Account)
	chatScope := ratelimit.ChatScope(d.ChatID)

	var te *TransportError
	if errors.As(err, &te) {
		if te.Written {
			return &connectors.UnknownError{Err: err}
		}
		return &connectors.RetryableError{Err: err}
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return &connectors.RetryableError{Err: err}
	}
	desc := strings.ToLower(ae.Description)

	if m := slowModeText.FindStringSubmatch(ae.Description); m != nil {
		return &connectors.RetryableError{After: seconds(m[1]), Scope: chatScope, Err: err}
	}
	if m := floodWaitText.FindStringSubmatch(ae.Description); m != nil {
		return &connectors.RetryableError{After: seconds(m[1]), Scope: acctScope, Err: err}
	}
	if ae.Code == 429 || strings.HasPrefix(desc, "too many requests") {
		after := ae.RetryAfter
		if after <= 0 {
			if m := retryAfterText.FindStringSubmatch(ae.Description); m != nil {
				after = seconds(m[1])
			}
		}
		if after <= 0 {
			after = DefaultRetryAfter
		}
		scope := acctScope
		if ratelimit.IsGroupChat(d.ChatID) {
			scope = chatScope
		}
		return &connectors.RetryableError{After: after, Scope: scope, Err: err}
	}
	switch {
	case ae.Code == 401:
		return &connectors.AccountStopError{Code: "unauthorized", Err: err}
	case ae.Code == 404:
		// The Bot API answers 404 for a malformed token (and unknown
		// methods, which this package does not call): no send of this
		// account can succeed.
		return &connectors.AccountStopError{Code: "invalid_token", Err: err}
	case ae.Code >= 500:
		return &connectors.RetryableError{Err: err}
	}
	if ae.MigrateToChatID != 0 {
		return &connectors.PermanentError{Code: "chat_migrated", Err: err}
	}
	for _, r := range permanentRules {
		if (r.status == 0 || r.status == ae.Code) && strings.Contains(desc, r.fragment) {
			return &connectors.PermanentError{Code: r.code, Suppress: r.suppress, Err: err}
		}
	}
	switch ae.Code {
	case 400:
		return &connectors.PermanentError{Code: "bad_request", Err: err}
	case 403:
		return &connectors.PermanentError{Code: "forbidden", Err: err}
	}
	return &connectors.PermanentError{Code: "telegram_error", Err: err}
}

func seconds(s string) time.Duration {
	n, _ := strconv.Atoi(s)
	return time.Duration(n) * time.Second
}
