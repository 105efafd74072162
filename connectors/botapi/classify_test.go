package botapi

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors"
)

// Real Telegram answers (description texts as Telegram sends them).
func TestClassifyTelegramTexts(t *testing.T) {
	bot := connectors.Account{ID: "acc1", Kind: "bot"}
	private := connectors.Delivery{Account: bot, ChatID: "123456789", Kind: connectors.KindSendMessage}
	group := connectors.Delivery{Account: bot, ChatID: "-1001234567890", Kind: connectors.KindSendMessage}
	channel := connectors.Delivery{Account: bot, ChatID: "@herald_news", Kind: connectors.KindPostToChannel}

	type want struct {
		class    connectors.Class
		code     string // Permanent / AccountStop code
		suppress bool
		after    time.Duration
		scope    string
	}
	cases := []struct {
		d   connectors.Delivery
		err error
		want
	}{
		// Flood control.
		{private, &APIError{Code: 429, Description: "Too Many Requests: retry after 35", RetryAfter: 35 * time.Second},
			want{class: connectors.ClassRetryable, after: 35 * time.Second, scope: "bot:acc1"}},
		{group, &APIError{Code: 429, Description: "Too Many Requests: retry after 7", RetryAfter: 7 * time.Second},
			want{class: connectors.ClassRetryable, after: 7 * time.Second, scope: "chat:-1001234567890"}},
		{channel, &APIError{Code: 429, Description: "Too Many Requests: retry after 12", RetryAfter: 12 * time.Second},
			want{class: connectors.ClassRetryable, after: 12 * time.Second, scope: "chat:@herald_news"}},
		// No parameters: the text still carries the wait.
		{private, &APIError{Code: 429, Description: "Too Many Requests: retry after 4"},
			want{class: connectors.ClassRetryable, after: 4 * time.Second, scope: "bot:acc1"}},
		{private, &APIError{Code: 429, Description: "Too Many Requests"},
			want{class: connectors.ClassRetryable, after: DefaultRetryAfter, scope: "bot:acc1"}},
		{group, &APIError{Code: 400, Description: "Bad Request: SLOWMODE_WAIT_30"},
			want{class: connectors.ClassRetryable, after: 30 * time.Second, scope: "chat:-1001234567890"}},
		{group, &APIError{Code: 420, Description: "FLOOD_WAIT_15"},
			want{class: connectors.ClassRetryable, after: 15 * time.Second, scope: "bot:acc1"}},
		// Server side.
		{private, &APIError{Code: 500, Description: "Internal Server Error"}, want{class: connectors.ClassRetryable}},
		{private, &APIError{Code: 502, Description: "Bad Gateway"}, want{class: connectors.ClassRetryable}},
		// Token.
		{private, &APIError{Code: 401, Description: "Unauthorized"}, want{class: connectors.ClassAccountStop, code: "unauthorized"}},
		{private, &APIError{Code: 404, Description: "Not Found"}, want{class: connectors.ClassAccountStop, code: "invalid_token"}},
		// 403.
		{private, &APIError{Code: 403, Description: "Forbidden: bot was blocked by the user"},
			want{class: connectors.ClassPermanent, code: "blocked", suppress: true}},
		{private, &APIError{Code: 403, Description: "Forbidden: user is deactivated"},
			want{class: connectors.ClassPermanent, code: "user_deactivated", suppress: true}},
		{group, &APIError{Code: 403, Description: "Forbidden: bot was kicked from the group chat"},
			want{class: connectors.ClassPermanent, code: "bot_kicked"}},
		{group, &APIError{Code: 403, Description: "Forbidden: bot was kicked from the supergroup chat"},
			want{class: connectors.ClassPermanent, code: "bot_kicked"}},
		{channel, &APIError{Code: 403, Description: "Forbidden: bot was kicked from the channel chat"},
			want{class: connectors.ClassPermanent, code: "bot_kicked"}},
		{private, &APIError{Code: 403, Description: "Forbidden: bot can't initiate conversation with a user"},
			want{class: connectors.ClassPermanent, code: "cant_initiate"}},
		{private, &APIError{Code: 403, Description: "Forbidden: bot can't send messages to bots"},
			want{class: connectors.ClassPermanent, code: "recipient_is_bot"}},
		{channel, &APIError{Code: 403, Description: "Forbidden: bot is not a member of the channel chat"},
			want{class: connectors.ClassPermanent, code: "not_member"}},
		{group, &APIError{Code: 403, Description: "Forbidden: bot is not a member of the supergroup chat"},
			want{class: connectors.ClassPermanent, code: "not_member"}},
		{group, &APIError{Code: 403, Description: "Forbidden: the group chat was deleted"},
			want{class: connectors.ClassPermanent, code: "chat_deleted"}},
		{private, &APIError{Code: 403, Description: "Forbidden: bot can't send messages to the user"},
			want{class: connectors.ClassPermanent, code: "forbidden"}},
		// 400.
		{private, &APIError{Code: 400, Description: "Bad Request: chat not found"},
			want{class: connectors.ClassPermanent, code: "chat_not_found"}},
		{private, &APIError{Code: 400, Description: "Bad Request: PEER_ID_INVALID"},
			want{class: connectors.ClassPermanent, code: "chat_not_found"}},
		{private, &APIError{Code: 400, Description: "[Error]: Bad Request: user not found"},
			want{class: connectors.ClassPermanent, code: "user_not_found"}},
		{group, &APIError{Code: 400, Description: "Bad Request: group chat was deactivated"},
			want{class: connectors.ClassPermanent, code: "chat_deactivated"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message is too long"},
			want{class: connectors.ClassPermanent, code: "message_too_long"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message caption is too long"},
			want{class: connectors.ClassPermanent, code: "caption_too_long"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message text is empty"},
			want{class: connectors.ClassPermanent, code: "message_empty"}},
		{private, &APIError{Code: 400, Description: "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 12"},
			want{class: connectors.ClassPermanent, code: "bad_markup"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message to edit not found"},
			want{class: connectors.ClassPermanent, code: "message_not_found"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message to delete not found"},
			want{class: connectors.ClassPermanent, code: "message_not_found"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message can't be edited"},
			want{class: connectors.ClassPermanent, code: "message_not_editable"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message can't be deleted"},
			want{class: connectors.ClassPermanent, code: "message_not_deletable"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message can't be deleted for everyone"},
			want{class: connectors.ClassPermanent, code: "message_not_deletable"}},
		{private, &APIError{Code: 400, Description: "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"},
			want{class: connectors.ClassPermanent, code: "message_not_modified"}},
		{private, &APIError{Code: 400, Description: "Bad Request: wrong file identifier/HTTP URL specified"},
			want{class: connectors.ClassPermanent, code: "bad_photo"}},
		{private, &APIError{Code: 400, Description: "Bad Request: failed to get HTTP URL content"},
			want{class: connectors.ClassPermanent, code: "bad_photo"}},
		{group, &APIError{Code: 400, Description: "Bad Request: not enough rights to send text messages to the chat"},
			want{class: connectors.ClassPermanent, code: "not_enough_rights"}},
		{channel, &APIError{Code: 400, Description: "Bad Request: need administrator rights in the channel chat"},
			want{class: connectors.ClassPermanent, code: "not_enough_rights"}},
		{group, &APIError{Code: 400, Description: "Bad Request: have no rights to send a message"},
			want{class: connectors.ClassPermanent, code: "not_enough_rights"}},
		// A migration the connector could not follow (second hop).
		{group, &APIError{Code: 400, Description: "Bad Request: group chat was upgraded to a supergroup chat", MigrateToChatID: -1009876543210},
			want{class: connectors.ClassPermanent, code: "chat_migrated"}},
		{group, &APIError{Code: 400, Description: "Bad Request: group chat was migrated to a supergroup chat"},
			want{class: connectors.ClassPermanent, code: "chat_migrated"}},
		{private, &APIError{Code: 400, Description: "Bad Request: something new"},
			want{class: connectors.ClassPermanent, code: "bad_request"}},
		{private, &APIError{Code: 409, Description: "Conflict: terminated by other getUpdates request"},
			want{class: connectors.ClassPermanent, code: "telegram_error"}},
		// Transport.
		{private, &TransportError{Method: "sendMessage", Written: false, Err: errors.New("connection refused")},
			want{class: connectors.ClassRetryable}},
		{private, &TransportError{Method: "sendMessage", Written: true, Err: io.ErrUnexpectedEOF},
			want{class: connectors.ClassUnknown}},
	}
	for _, c := range cases {
		name := c.err.Error()
		t.Run(name, func(t *testing.T) {
			got := Classify(c.err, c.d)
			if cl := connectors.Classify(got); cl != c.class {
				t.Fatalf("class = %v, want %v (%v)", cl, c.class, got)
			}
			if !errors.Is(got, c.err) {
				t.Errorf("classified error does not wrap the original")
			}
			var p *connectors.PermanentError
			var a *connectors.AccountStopError
			var r *connectors.RetryableError
			switch {
			case errors.As(got, &p):
				if p.Code != c.code || p.Suppress != c.suppress {
					t.Errorf("permanent %q suppress=%v, want %q suppress=%v", p.Code, p.Suppress, c.code, c.suppress)
				}
			case errors.As(got, &a):
				if a.Code != c.code {
					t.Errorf("account stop %q, want %q", a.Code, c.code)
				}
			case errors.As(got, &r):
				if r.After != c.after || r.Scope != c.scope {
					t.Errorf("retryable after %v scope %q, want %v %q", r.After, r.Scope, c.after, c.scope)
				}
			}
		})
	}
}

func TestClassifyPassesClassifiedThrough(t *testing.T) {
	in := &connectors.AccountStopError{Code: "secret_deleted", Err: errors.New("gone")}
	if got := Classify(in, connectors.Delivery{}); got != in {
		t.Fatalf("got %v, want the same error", got)
	}
	if got := Classify(errors.New("odd"), connectors.Delivery{}); connectors.Classify(got) != connectors.ClassRetryable {
		t.Fatalf("unrecognised error: %v", got)
	}
}
