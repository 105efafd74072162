package botapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
)

// ConnectorName is what receipts from this package carry.
const ConnectorName = "botapi"

// TokenSource gives the bot token of an account, read from the secrets store
// at the moment of use so that a rotated token takes effect without restart.
type TokenSource interface {
	BotToken(ctx context.Context, account connectors.Account) (string, error)
}

// Refresher is implemented by a TokenSource that can re-read a secret
// bypassing any cache. After a 401 the connector calls it once: if it yields
// a different token the send is retried with it (Telegram did not act on a
// 401), otherwise the account is stopped.
type Refresher interface {
	Refresh(ctx context.Context, account connectors.Account) (string, error)
}

// Config configures a Connector.
type Config struct {
	// BaseURL of the Bot API; "" means DefaultBaseURL. Point it at a local
	// Bot API server or at telegramtest.
	BaseURL string
	// HTTPClient to use; nil means one with DefaultTimeout. A timeout after
	// the request was written is reported as outcome unknown.
	HTTPClient *http.Client
	// Tokens is required.
	Tokens TokenSource
}

// Connector implements connectors.Connector over the Bot API. It is safe for
// concurrent use. It does not rate-limit: wrap it with ratelimit.Wrap (or
// call a ratelimit.Limiter before Send).
type Connector struct {
	client *Client
	tokens TokenSource
}

var _ connectors.Connector = (*Connector)(nil)

// New returns a Connector.
func New(cfg Config) (*Connector, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("botapi: Config.Tokens is required")
	}
	return &Connector{client: NewClient(cfg.BaseURL, cfg.HTTPClient), tokens: cfg.Tokens}, nil
}

// Client returns the underlying typed client.
func (c *Connector) Client() *Client { return c.client }

// Send delivers d and classifies any failure (see Classify). When Telegram
// reports that a group was upgraded to a supergroup, Send retries once to
// the new chat id and reports it in Receipt.MigratedTo; the Receipt carries
// MigratedTo even when that retry fails, so the worker can update the chat.
func (c *Connector) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	if err := validate(d); err != nil {
		return connectors.Receipt{}, err
	}
	token, err := c.tokens.BotToken(ctx, d.Account)
	if err != nil {
		return connectors.Receipt{}, tokenError(d, err)
	}
	var migratedTo string
	refreshed := false
	for {
		target := d
		if migratedTo != "" {
			target.ChatID = migratedTo
		}
		msgID, result, err := c.do(ctx, token, target)
		if err == nil {
			return connectors.Receipt{
				MessageID: msgID, ChatID: target.ChatID, At: time.Now().UTC(),
				Connector: ConnectorName, MigratedTo: migratedTo, Message: result,
			}, nil
		}
		var ae *APIError
		if errors.As(err, &ae) {
			if ae.Code == http.StatusUnauthorized && !refreshed {
				refreshed = true
				if fresh, ok := c.refresh(ctx, d.Account, token); ok {
					token = fresh
					continue
				}
			}
			if ae.MigrateToChatID != 0 && migratedTo == "" {
				migratedTo = strconv.FormatInt(ae.MigrateToChatID, 10)
				continue
			}
		}
		failed := connectors.Receipt{}
		if migratedTo != "" {
			failed = connectors.Receipt{ChatID: migratedTo, MigratedTo: migratedTo, Connector: ConnectorName}
		}
		return failed, Classify(fmt.Errorf("action %s attempt %d: %w", d.ActionID, d.Attempt, err), target)
	}
}

// refresh re-reads the token once; ok only when it changed.
func (c *Connector) refresh(ctx context.Context, a connectors.Account, old string) (string, bool) {
	r, ok := c.tokens.(Refresher)
	if !ok {
		return "", false
	}
	fresh, err := r.Refresh(ctx, a)
	if err != nil || fresh == "" || fresh == old {
		return "", false
	}
	return fresh, true
}

// do performs one call for d and returns the message id to report and
// Telegram's result verbatim.
func (c *Connector) do(ctx context.Context, token string, d connectors.Delivery) (int64, json.RawMessage, error) {
	paid := d.Account.PaidBroadcast
	switch d.Kind {
	case connectors.KindSendMessage:
		return c.sent(ctx, token, "sendMessage", SendMessageParams{
			ChatID: d.ChatID, Text: d.Text, ParseMode: d.ParseMode,
			DisableNotification: d.DisableNotification, AllowPaidBroadcast: paid,
		})
	case connectors.KindPostToChannel:
		if d.PhotoURL == "" && d.PhotoFileID == "" {
			return c.sent(ctx, token, "sendMessage", SendMessageParams{
				ChatID: d.ChatID, Text: d.Text, ParseMode: d.ParseMode,
				DisableNotification: d.DisableNotification, AllowPaidBroadcast: paid,
			})
		}
		fallthrough
	case connectors.KindSendPhoto:
		photo := d.PhotoFileID
		if photo == "" {
			photo = d.PhotoURL
		}
		caption := d.Caption
		if caption == "" {
			caption = d.Text
		}
		return c.sent(ctx, token, "sendPhoto", SendPhotoParams{
			ChatID: d.ChatID, Photo: photo, Caption: caption, ParseMode: d.ParseMode,
			DisableNotification: d.DisableNotification, AllowPaidBroadcast: paid,
		})
	case connectors.KindEditMessage:
		return c.sent(ctx, token, "editMessageText", EditMessageTextParams{
			ChatID: d.ChatID, MessageID: d.MessageID, Text: d.Text, ParseMode: d.ParseMode,
		})
	case connectors.KindDeleteMessage:
		return d.MessageID, json.RawMessage("true"), c.client.DeleteMessage(ctx, token, DeleteMessageParams{ChatID: d.ChatID, MessageID: d.MessageID})
	case connectors.KindPinMessage:
		return d.MessageID, json.RawMessage("true"), c.client.PinChatMessage(ctx, token, PinChatMessageParams{
			ChatID: d.ChatID, MessageID: d.MessageID, DisableNotification: d.DisableNotification,
		})
	case connectors.KindEditCaption:
		return c.sent(ctx, token, "editMessageCaption", EditMessageCaptionParams{
			ChatID: d.ChatID, MessageID: d.MessageID, Caption: d.Caption, ParseMode: d.ParseMode,
		})
	case connectors.KindUnpinMessage:
		return d.MessageID, json.RawMessage("true"), c.client.UnpinChatMessage(ctx, token, UnpinChatMessageParams{
			ChatID: d.ChatID, MessageID: d.MessageID,
		})
	}
	return 0, nil, fmt.Errorf("unreachable kind %q", d.Kind) // validate rejects it
}

// sent calls a method whose result is a Message and keeps the result
// verbatim beside its id.
func (c *Connector) sent(ctx context.Context, token, method string, params any) (int64, json.RawMessage, error) {
	var raw json.RawMessage
	if err := c.client.Call(ctx, token, method, params, &raw); err != nil {
		return 0, nil, err
	}
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		// Telegram acted; only our reading of the answer failed.
		return 0, nil, &TransportError{Method: method, Written: true, Err: fmt.Errorf("decode result: %w", err)}
	}
	return m.MessageID, raw, nil
}

// validate rejects deliveries that cannot be sent, without a request.
func validate(d connectors.Delivery) error {
	invalid := func(code, why string) error {
		return &connectors.PermanentError{Code: code, Err: fmt.Errorf("botapi: action %s (%s): %s", d.ActionID, d.Kind, why)}
	}
	if d.ChatID == "" {
		return invalid("invalid_delivery", "no chat id")
	}
	switch d.Kind {
	case connectors.KindSendMessage:
		if d.Text == "" {
			return invalid("message_empty", "no text")
		}
	case connectors.KindPostToChannel:
		if !ratelimit.IsGroupChat(d.ChatID) {
			return invalid("not_a_channel", "a channel is addressed by a negative id or @username")
		}
		if d.Text == "" && d.PhotoURL == "" && d.PhotoFileID == "" {
			return invalid("message_empty", "no text and no photo")
		}
	case connectors.KindSendPhoto:
		if d.PhotoURL == "" && d.PhotoFileID == "" {
			return invalid("invalid_delivery", "no photo URL or file id")
		}
	case connectors.KindEditMessage:
		if d.MessageID <= 0 || d.Text == "" {
			return invalid("invalid_delivery", "edit needs a message id and text")
		}
	case connectors.KindEditCaption:
		if d.MessageID <= 0 || d.Caption == "" {
			return invalid("invalid_delivery", "caption edit needs a message id and a caption")
		}
	case connectors.KindDeleteMessage, connectors.KindPinMessage, connectors.KindUnpinMessage:
		if d.MessageID <= 0 {
			return invalid("invalid_delivery", "no message id")
		}
	default:
		return invalid("unsupported_kind", "kind not supported by the Bot API connector")
	}
	return nil
}

// tokenError classifies a TokenSource failure: nothing was sent, so it is
// retryable unless the source classified it itself (for example an
// AccountStopError for a deleted secret).
func tokenError(d connectors.Delivery, err error) error {
	err = fmt.Errorf("botapi: bot token for account %s: %w", d.Account.ID, err)
	if connectors.IsClassified(err) {
		return err
	}
	return &connectors.RetryableError{Err: err}
}
