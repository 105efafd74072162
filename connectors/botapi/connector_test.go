package botapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
)

const (
	token    = "123456:AAH-secret-token-do-not-leak"
	newToken = "123456:AAH-rotated-token-do-not-leak"
)

var bot = connectors.Account{ID: "acc-1", Org: "org-1", Kind: "bot", Connector: "botapi", SecretRef: "bots/acc-1"}

// tokens is a TokenSource; with refreshTo set it is also a Refresher.
type tokens struct {
	token     string
	refreshTo string
	refreshes atomic.Int32
}

func (t *tokens) BotToken(context.Context, connectors.Account) (string, error) { return t.token, nil }

type refreshing struct{ *tokens }

func (r refreshing) Refresh(context.Context, connectors.Account) (string, error) {
	r.refreshes.Add(1)
	return r.refreshTo, nil
}

func newConnector(t testing.TB, baseURL string, ts botapi.TokenSource) *botapi.Connector {
	t.Helper()
	if ts == nil {
		ts = &tokens{token: token}
	}
	c, err := botapi.New(botapi.Config{BaseURL: baseURL, HTTPClient: &http.Client{Timeout: 5 * time.Second}, Tokens: ts})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func msg(chat, text string) connectors.Delivery {
	return connectors.Delivery{ActionID: "act-" + chat, Attempt: 1, Account: bot, Kind: connectors.KindSendMessage, ChatID: chat, Text: text}
}

// assertNoToken fails if the token appears anywhere in err: its text, or
// the URL of a *url.Error in its chain.
func assertNoToken(t *testing.T, err error) {
	t.Helper()
	for _, tok := range []string{token, newToken, "AAH-"} {
		if s := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(s, tok) {
			t.Errorf("error text contains the token: %s", s)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.URL, "AAH-") {
		t.Errorf("url.Error in the chain carries the token: %s", ue.URL)
	}
}

func TestSendEveryKind(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	c := newConnector(t, fake.URL(), nil)
	ctx := context.Background()

	send := func(d connectors.Delivery) connectors.Receipt {
		t.Helper()
		r, err := c.Send(ctx, d)
		if err != nil {
			t.Fatalf("%s: %v", d.Kind, err)
		}
		if r.Connector != "botapi" || r.ChatID != d.ChatID || r.At.IsZero() {
			t.Fatalf("%s: receipt %+v", d.Kind, r)
		}
		return r
	}
	d := msg("1001", "*hello*")
	d.ParseMode, d.DisableNotification = "MarkdownV2", true
	first := send(d)
	photoURL := send(connectors.Delivery{Account: bot, Kind: connectors.KindSendPhoto, ChatID: "1001", PhotoURL: "https://example.org/cat.jpg", Caption: "a <b>cat</b>", ParseMode: "HTML"})
	photoID := send(connectors.Delivery{Account: bot, Kind: connectors.KindSendPhoto, ChatID: "1001", PhotoFileID: "AgACAgIAAxkBAAIB", Caption: "again"})
	if !(first.MessageID < photoURL.MessageID && photoURL.MessageID < photoID.MessageID) {
		t.Errorf("message ids not increasing per chat: %d %d %d", first.MessageID, photoURL.MessageID, photoID.MessageID)
	}
	edit := send(connectors.Delivery{Account: bot, Kind: connectors.KindEditMessage, ChatID: "1001", MessageID: first.MessageID, Text: "*hello, edited*", ParseMode: "MarkdownV2"})
	pin := send(connectors.Delivery{Account: bot, Kind: connectors.KindPinMessage, ChatID: "1001", MessageID: first.MessageID, DisableNotification: true})
	del := send(connectors.Delivery{Account: bot, Kind: connectors.KindDeleteMessage, ChatID: "1001", MessageID: photoID.MessageID})
	post := send(connectors.Delivery{Account: bot, Kind: connectors.KindPostToChannel, ChatID: "@herald_news", Text: "news"})
	postPhoto := send(connectors.Delivery{Account: bot, Kind: connectors.KindPostToChannel, ChatID: "-1001234567890", PhotoURL: "https://example.org/chart.png", Text: "chart"})
	if edit.MessageID != first.MessageID || pin.MessageID != first.MessageID || del.MessageID != photoID.MessageID {
		t.Errorf("edit/pin/delete receipts name the wrong message: %d %d %d", edit.MessageID, pin.MessageID, del.MessageID)
	}
	if post.MessageID != 1 || postPhoto.MessageID != 1 {
		t.Errorf("channel message ids: %d %d", post.MessageID, postPhoto.MessageID)
	}

	got := fake.Messages()
	want := []struct{ method, chat, text string }{
		{"sendMessage", "1001", "*hello*"},
		{"sendPhoto", "1001", "a <b>cat</b>"},
		{"sendPhoto", "1001", "again"},
		{"editMessageText", "1001", "*hello, edited*"},
		{"pinChatMessage", "1001", ""},
		{"deleteMessage", "1001", ""},
		{"sendMessage", "@herald_news", "news"},
		{"sendPhoto", "-1001234567890", "chart"},
	}
	if len(got) != len(want) {
		t.Fatalf("fake recorded %d calls, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Method != w.method || got[i].Chat != w.chat || got[i].Text != w.text || got[i].Bot != "123456" {
			t.Errorf("call %d = %+v, want %+v", i, got[i], w)
		}
	}
	if !got[0].DisableNotification || got[0].ParseMode != "MarkdownV2" || got[1].Photo != "https://example.org/cat.jpg" {
		t.Errorf("parameters lost: %+v %+v", got[0], got[1])
	}

	// Editing a deleted message is Telegram's "message to edit not found".
	_, err := c.Send(ctx, connectors.Delivery{Account: bot, Kind: connectors.KindEditMessage, ChatID: "1001", MessageID: photoID.MessageID, Text: "x"})
	wantPermanent(t, err, "message_not_found", false)
}

func TestInvalidDeliveriesAreNotSent(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	c := newConnector(t, fake.URL(), nil)
	for _, d := range []connectors.Delivery{
		{Account: bot, Kind: connectors.KindSendMessage, ChatID: "1"},
		{Account: bot, Kind: connectors.KindSendMessage, Text: "no chat"},
		{Account: bot, Kind: connectors.KindSendPhoto, ChatID: "1"},
		{Account: bot, Kind: connectors.KindEditMessage, ChatID: "1", Text: "x"},
		{Account: bot, Kind: connectors.KindPostToChannel, ChatID: "42", Text: "user, not channel"},
		{Account: bot, Kind: "send_sticker", ChatID: "1"},
	} {
		_, err := c.Send(context.Background(), d)
		if connectors.Classify(err) != connectors.ClassPermanent {
			t.Errorf("%+v: %v, want permanent", d, err)
		}
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("fake received %d calls", n)
	}
}

func wantPermanent(t *testing.T, err error, code string, suppress bool) {
	t.Helper()
	var p *connectors.PermanentError
	if !errors.As(err, &p) || p.Code != code || p.Suppress != suppress {
		t.Fatalf("got %v, want permanent %q suppress=%v", err, code, suppress)
	}
	assertNoToken(t, err)
}

func TestScriptedRecipients(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	fake.Script("10", telegramtest.Blocked)
	fake.Script("11", telegramtest.Deactivated)
	fake.Script("12", telegramtest.NotFound)
	fake.Script("-13", telegramtest.Kicked)
	fake.Script("14", telegramtest.CantInitiate)
	c := newConnector(t, fake.URL(), nil)
	for _, tc := range []struct {
		chat, code string
		suppress   bool
	}{
		{"10", "blocked", true},
		{"11", "user_deactivated", true},
		{"12", "chat_not_found", false},
		{"-13", "bot_kicked", false},
		{"14", "cant_initiate", false},
	} {
		_, err := c.Send(context.Background(), msg(tc.chat, "hi"))
		wantPermanent(t, err, tc.code, tc.suppress)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Errorf("fake accepted %d messages", n)
	}
}

func TestMigrationFollowedOnce(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	fake.Script("-200", telegramtest.MigratedTo(-1000000000200))
	c := newConnector(t, fake.URL(), nil)

	r, err := c.Send(context.Background(), msg("-200", "to the old group"))
	if err != nil {
		t.Fatal(err)
	}
	if r.MigratedTo != "-1000000000200" || r.ChatID != "-1000000000200" {
		t.Fatalf("receipt %+v, want delivery to the supergroup", r)
	}
	if got := fake.MessagesTo("-1000000000200"); len(got) != 1 || got[0].Text != "to the old group" {
		t.Fatalf("supergroup got %+v", got)
	}

	// A second hop is not followed: one retry, then a permanent error that
	// still reports where the first hop led.
	fake.Script("-300", telegramtest.MigratedTo(-1000000000300))
	fake.Script("-1000000000300", telegramtest.MigratedTo(-1000000000301))
	r, err = c.Send(context.Background(), msg("-300", "hop"))
	wantPermanent(t, err, "chat_migrated", false)
	if r.MigratedTo != "-1000000000300" {
		t.Errorf("failed receipt %+v should carry the first migration", r)
	}
	if n := len(fake.Messages()); n != 1 {
		t.Errorf("fake accepted %d messages, want 1", n)
	}
}

func TestUnauthorizedRefreshThenStop(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{newToken}})
	defer fake.Close()

	// The secret was rotated: one refresh finds the new token.
	src := refreshing{&tokens{token: token, refreshTo: newToken}}
	if _, err := newConnector(t, fake.URL(), src).Send(context.Background(), msg("1", "hi")); err != nil {
		t.Fatalf("after refresh: %v", err)
	}
	if n := src.refreshes.Load(); n != 1 {
		t.Errorf("refreshed %d times, want 1", n)
	}

	// The refreshed token is refused too: refresh once, then stop.
	fake.RevokeToken(newToken)
	src = refreshing{&tokens{token: token, refreshTo: newToken}}
	_, err := newConnector(t, fake.URL(), src).Send(context.Background(), msg("1", "hi"))
	var stop *connectors.AccountStopError
	if !errors.As(err, &stop) || stop.Code != "unauthorized" {
		t.Fatalf("got %v, want account stop unauthorized", err)
	}
	if n := src.refreshes.Load(); n != 1 {
		t.Errorf("refreshed %d times, want 1", n)
	}
	assertNoToken(t, err)

	// Without a Refresher the first 401 stops the account.
	_, err = newConnector(t, fake.URL(), &tokens{token: token}).Send(context.Background(), msg("1", "hi"))
	if connectors.Classify(err) != connectors.ClassAccountStop {
		t.Fatalf("got %v, want account stop", err)
	}
	assertNoToken(t, err)
	if st := fake.Stats(); st.Unauthorized != 4 || st.Accepted != 1 {
		t.Errorf("fake stats %+v", st)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("5xx is retryable", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}, ServerErrorRate: 1})
		defer fake.Close()
		_, err := newConnector(t, fake.URL(), nil).Send(ctx, msg("1", "hi"))
		if connectors.Classify(err) != connectors.ClassRetryable {
			t.Fatalf("got %v", err)
		}
		assertNoToken(t, err)
	})
	t.Run("dropped after the message was accepted is unknown", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}, DropAfterRate: 1})
		defer fake.Close()
		_, err := newConnector(t, fake.URL(), nil).Send(ctx, msg("1", "hi"))
		if connectors.Classify(err) != connectors.ClassUnknown {
			t.Fatalf("got %v, want unknown", err)
		}
		assertNoToken(t, err)
		// This is why: Telegram did deliver it.
		if n := len(fake.Messages()); n != 1 {
			t.Fatalf("fake accepted %d messages, want 1", n)
		}
	})
	t.Run("dropped after the request was written is unknown", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}, DropBeforeRate: 1})
		defer fake.Close()
		_, err := newConnector(t, fake.URL(), nil).Send(ctx, msg("1", "hi"))
		if connectors.Classify(err) != connectors.ClassUnknown {
			t.Fatalf("got %v, want unknown: the client cannot tell it from a drop after delivery", err)
		}
		assertNoToken(t, err)
	})
	t.Run("refused before writing is retryable", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
		u := fake.URL()
		fake.Close() // nothing listens there any more
		_, err := newConnector(t, u, nil).Send(ctx, msg("1", "hi"))
		var te *botapi.TransportError
		if connectors.Classify(err) != connectors.ClassRetryable || !errors.As(err, &te) || te.Written {
			t.Fatalf("got %v, want retryable, not written", err)
		}
		assertNoToken(t, err)
	})
	t.Run("timeout after writing is unknown", func(t *testing.T) {
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
		}))
		defer slow.Close()
		defer close(release)
		c, _ := botapi.New(botapi.Config{BaseURL: slow.URL, HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}, Tokens: &tokens{token: token}})
		_, err := c.Send(ctx, msg("1", "hi"))
		if connectors.Classify(err) != connectors.ClassUnknown {
			t.Fatalf("got %v, want unknown", err)
		}
		assertNoToken(t, err)
	})
	t.Run("cancelled before sending is retryable", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
		defer fake.Close()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := newConnector(t, fake.URL(), nil).Send(cctx, msg("1", "hi"))
		if connectors.Classify(err) != connectors.ClassRetryable || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want retryable wrapping context.Canceled", err)
		}
		assertNoToken(t, err)
	})
	t.Run("malformed token is an account stop", func(t *testing.T) {
		fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
		defer fake.Close()
		_, err := newConnector(t, fake.URL()+"/nowhere", nil).Send(ctx, msg("1", "hi"))
		if connectors.Classify(err) == connectors.ClassNone {
			t.Fatal("no error")
		}
		assertNoToken(t, err)
	})
}

func TestNaiveSenderGets429(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	c := newConnector(t, fake.URL(), nil)

	// Ten messages into one private chat at once: over the per-chat burst.
	var retry *connectors.RetryableError
	for i := range 10 {
		_, err := c.Send(context.Background(), msg("777", fmt.Sprint("burst ", i)))
		if err != nil && errors.As(err, &retry) {
			break
		}
	}
	if retry == nil || retry.After < time.Second || retry.Scope != "bot:acc-1" {
		t.Fatalf("got %v, want a 429 with retry_after for the bot", retry)
	}
	// Sixty distinct chats at once: over the bot's 30 msg/s.
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() { c.Send(context.Background(), msg(fmt.Sprint(5000+i), "hi")) })
	}
	wg.Wait()
	if n := fake.TooManyRequests(); n < 2 {
		t.Fatalf("fake issued %d 429s, want the chat's and the bot's", n)
	}
}

// A 30 msg/s stream over about 2.5 s through Connector+Limiter gets no 429.
func TestLimiterKeepsTheFakesLimits(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	lim := ratelimit.New(ratelimit.Config{})
	c := ratelimit.Wrap(newConnector(t, fake.URL(), nil), lim)

	var deliveries []connectors.Delivery
	for i := range 70 {
		deliveries = append(deliveries, msg(fmt.Sprint(9000+i), "broadcast"))
	}
	for range 4 { // one chat, more than its burst
		deliveries = append(deliveries, msg("4242", "thread"))
	}
	for range 3 { // a group, within its burst
		deliveries = append(deliveries, msg("-1004242", "group"))
	}
	jobs := make(chan connectors.Delivery)
	var failed atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for d := range jobs {
				if _, err := c.Send(context.Background(), d); err != nil {
					failed.Add(1)
					t.Errorf("%s: %v", d.ChatID, err)
				}
			}
		})
	}
	for _, d := range deliveries {
		jobs <- d
	}
	close(jobs)
	wg.Wait()
	if n := fake.TooManyRequests(); n != 0 {
		t.Errorf("fake issued %d 429s", n)
	}
	if got := len(fake.Messages()); got != len(deliveries) || failed.Load() != 0 {
		t.Errorf("delivered %d of %d", got, len(deliveries))
	}
}

// Slow mode in one group penalizes that group only.
func TestRetryAfterHonouredPerScope(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	defer fake.Close()
	fake.Script("-100555", telegramtest.SlowMode(20*time.Second))
	lim := ratelimit.New(ratelimit.Config{})
	c := ratelimit.Wrap(newConnector(t, fake.URL(), nil), lim)
	ctx := context.Background()

	if _, err := c.Send(ctx, msg("-100555", "first")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Send(ctx, msg("-100555", "second"))
	var re *connectors.RetryableError
	if !errors.As(err, &re) || re.Scope != "chat:-100555" || re.After <= 0 {
		t.Fatalf("got %v, want retryable for the chat", err)
	}

	// The group waits; a deadline shorter than the penalty fails at once
	// without sending.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Send(short, msg("-100555", "third")); connectors.Classify(err) != connectors.ClassRetryable {
		t.Fatalf("group under penalty: %v", err)
	}
	// Other chats of the same bot are not held back.
	for i := range 5 {
		if _, err := c.Send(short, msg(fmt.Sprint(600+i), "elsewhere")); err != nil {
			t.Fatalf("other chat held back by the group's slow mode: %v", err)
		}
	}
	if got := len(fake.MessagesTo("-100555")); got != 1 {
		t.Errorf("group got %d messages, want 1", got)
	}
}
