package mtproto

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
)

func TestClassifyRPCErrors(t *testing.T) {
	d := connectors.Delivery{ActionID: "a1", Kind: connectors.KindSendMessage, ChatID: "channel:5:6"}
	cases := []struct {
		code     int
		message  string
		class    connectors.Class
		errCode  string // Permanent or AccountStop code
		suppress bool
		after    time.Duration
		scope    string
		freeze   time.Duration
	}{
		{420, "FLOOD_WAIT_60", connectors.ClassRetryable, "", false, time.Minute, "method:messages.sendMessage", 0},
		{420, "FLOOD_PREMIUM_WAIT_7", connectors.ClassRetryable, "", false, 7 * time.Second, "method:messages.sendMessage", 0},
		{420, "SLOWMODE_WAIT_30", connectors.ClassRetryable, "", false, 30 * time.Second, "chat:channel:5:6", 0},
		{400, "PEER_FLOOD", connectors.ClassAccountStop, "peer_flood", false, 0, "", 24 * time.Hour},
		{403, "USER_DEACTIVATED_BAN", connectors.ClassAccountStop, "user_deactivated_ban", false, 0, "", 0},
		{401, "USER_DEACTIVATED", connectors.ClassAccountStop, "user_deactivated", false, 0, "", 0},
		{401, "AUTH_KEY_UNREGISTERED", connectors.ClassAccountStop, "auth_key_unregistered", false, 0, "", 0},
		{401, "SESSION_REVOKED", connectors.ClassAccountStop, "session_revoked", false, 0, "", 0},
		{401, "SOMETHING_NEW", connectors.ClassAccountStop, "unauthorized", false, 0, "", 0},
		{400, "USER_IS_BLOCKED", connectors.ClassPermanent, "blocked", true, 0, "", 0},
		{400, "INPUT_USER_DEACTIVATED", connectors.ClassPermanent, "user_deactivated", true, 0, "", 0},
		{403, "USER_PRIVACY_RESTRICTED", connectors.ClassPermanent, "privacy_restricted", false, 0, "", 0},
		{400, "PEER_ID_INVALID", connectors.ClassPermanent, "chat_not_found", false, 0, "", 0},
		{403, "CHAT_WRITE_FORBIDDEN", connectors.ClassPermanent, "not_enough_rights", false, 0, "", 0},
		{400, "MESSAGE_TOO_LONG", connectors.ClassPermanent, "message_too_long", false, 0, "", 0},
		{400, "MESSAGE_ID_INVALID", connectors.ClassPermanent, "message_not_found", false, 0, "", 0},
		{400, "USERNAME_NOT_OCCUPIED", connectors.ClassPermanent, "username_not_occupied", false, 0, "", 0},
		{400, "SOME_NEW_400", connectors.ClassPermanent, "bad_request", false, 0, "", 0},
		{403, "SOME_NEW_403", connectors.ClassPermanent, "forbidden", false, 0, "", 0},
		{500, "INTERNAL", connectors.ClassUnknown, "", false, 0, "", 0},
		{-503, "Timeout", connectors.ClassUnknown, "", false, 0, "", 0},
		{400, "RANDOM_ID_DUPLICATE", connectors.ClassUnknown, "", false, 0, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.message, func(t *testing.T) {
			err := classify(d, "messages.sendMessage", tgerr.New(tc.code, tc.message), maybeSent)
			if got := connectors.Classify(err); got != tc.class {
				t.Fatalf("class %v, want %v (%v)", got, tc.class, err)
			}
			if !tgerr.Is(err, tgerr.New(tc.code, tc.message).Type) {
				t.Fatal("RPC error not reachable through Unwrap")
			}
			var (
				p *connectors.PermanentError
				a *connectors.AccountStopError
				r *connectors.RetryableError
			)
			switch {
			case errors.As(err, &p):
				if p.Code != tc.errCode || p.Suppress != tc.suppress {
					t.Fatalf("permanent %q suppress %v", p.Code, p.Suppress)
				}
			case errors.As(err, &a):
				if a.Code != tc.errCode || a.Freeze != tc.freeze {
					t.Fatalf("stop %q freeze %v", a.Code, a.Freeze)
				}
			case errors.As(err, &r):
				if r.After != tc.after || r.Scope != tc.scope {
					t.Fatalf("retry after %v scope %q", r.After, r.Scope)
				}
			}
		})
	}
}

func TestClassifyInternalErrorOnIdempotentKindsRetries(t *testing.T) {
	for _, kind := range []string{connectors.KindEditMessage, connectors.KindDeleteMessage, connectors.KindPinMessage} {
		d := connectors.Delivery{ActionID: "a", Kind: kind}
		if got := connectors.Classify(classify(d, "m", tgerr.New(500, "INTERNAL"), maybeSent)); got != connectors.ClassRetryable {
			t.Errorf("%s: %v", kind, got)
		}
	}
}

func TestClassifyTransportErrorsBySentOrNot(t *testing.T) {
	d := connectors.Delivery{ActionID: "a", Kind: connectors.KindSendMessage}
	for _, err := range []error{io.ErrUnexpectedEOF, context.DeadlineExceeded, errors.New("engine closed")} {
		if got := connectors.Classify(classify(d, "m", err, notSent)); got != connectors.ClassRetryable {
			t.Errorf("%v not sent: %v", err, got)
		}
		if got := connectors.Classify(classify(d, "m", err, maybeSent)); got != connectors.ClassUnknown {
			t.Errorf("%v maybe sent: %v", err, got)
		}
	}
}

func TestClassifyKeepsClassifiedErrors(t *testing.T) {
	d := connectors.Delivery{ActionID: "a", Kind: connectors.KindSendMessage}
	in := &connectors.RetryableError{After: time.Minute, Scope: "method:x", Err: tgerr.New(420, "FLOOD_WAIT_60")}
	err := classify(d, "x", in, maybeSent)
	if connectors.RetryAfter(err) != time.Minute || !errors.Is(err, in) {
		t.Fatalf("got %v", err)
	}
	stop := &connectors.AccountStopError{Code: "secret_deleted", Err: errors.New("gone")}
	if got := classifyStart(d, stop); !errors.Is(got, stop) {
		t.Fatalf("start: %v", got)
	}
	if got := connectors.Classify(classifyStart(d, io.EOF)); got != connectors.ClassRetryable {
		t.Fatalf("start network failure: %v", got)
	}
}
