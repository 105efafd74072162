package mtproto

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
)

// These tests run the connector against gotd's in-process MTProto server
// (tgtest): real key exchange, encryption and transport on loopback.

func msg(acct connectors.Account, action, chat, text string) connectors.Delivery {
	return connectors.Delivery{ActionID: action, Attempt: 1, Account: acct, Kind: connectors.KindSendMessage, ChatID: chat, Text: text}
}

func userPeer(id int64) string { return "user:" + strconv.FormatInt(id, 10) + ":77" }

// assertNoSecrets fails if an error text carries a secret.
func assertNoSecrets(t *testing.T, err error, session []byte) {
	t.Helper()
	if err == nil {
		return
	}
	text := err.Error()
	for _, s := range []string{testAppHash, testToken, "bot-secret-token"} {
		if strings.Contains(text, s) {
			t.Fatalf("error carries a secret: %q", text)
		}
	}
	if len(session) > 8 && strings.Contains(text, string(session[:8])) {
		t.Fatalf("error carries session bytes: %q", text)
	}
}

func TestSendMessageDelivers(t *testing.T) {
	f := startFake(t)
	f.reset(1001)
	acct, store := userAccount(t, f, "u-success")
	c := newTestConnector(t, f.config(&testCreds{}, store))

	const peer = 1001
	rec, err := c.Send(testCtx(t), msg(acct, "act-1", userPeer(peer), "<b>hello</b> there"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.MessageID <= 0 || rec.ChatID != userPeer(peer) || rec.Connector != ConnectorName || rec.At.IsZero() {
		t.Fatalf("receipt %+v", rec)
	}
	if got := f.randomIDsOf(peer); len(got) != 1 || got[0] != RandomID("act-1") {
		t.Fatalf("random_id %v, want [%d]", got, RandomID("act-1"))
	}
	// ParseMode is empty: the text goes as is, without entities.
	m, ok := lastRequest[*tg.MessagesSendMessageRequest](f)
	if !ok || m.Message != "<b>hello</b> there" || len(m.Entities) != 0 {
		t.Fatalf("request %+v", m)
	}
	if p, ok := m.Peer.(*tg.InputPeerUser); !ok || p.AccessHash != 77 {
		t.Fatalf("peer %#v", m.Peer)
	}
}

func TestSendMessageHTMLEntities(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-html")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	d := msg(acct, "act-html", userPeer(1002), "<b>hello</b> there")
	d.ParseMode = "HTML"
	if _, err := c.Send(testCtx(t), d); err != nil {
		t.Fatal(err)
	}
	m, _ := lastRequest[*tg.MessagesSendMessageRequest](f)
	if m.Message != "hello there" || len(m.Entities) != 1 {
		t.Fatalf("text %q entities %v", m.Message, m.Entities)
	}
	if _, ok := m.Entities[0].(*tg.MessageEntityBold); !ok {
		t.Fatalf("entity %T", m.Entities[0])
	}

	d.ParseMode = "MarkdownV2"
	_, err := c.Send(testCtx(t), d)
	var p *connectors.PermanentError
	if !errors.As(err, &p) || p.Code != "bad_markup" {
		t.Fatalf("MarkdownV2: %v", err)
	}
}

func TestFloodWaitShortIsWaitedAndRetried(t *testing.T) {
	f := startFake(t)
	f.reset(1010)
	acct, store := userAccount(t, f, "u-flood2")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	const peer = 1010
	f.on(peer, func(n int) *tgerr.Error {
		if n == 1 {
			return tgerr.New(420, "FLOOD_WAIT_2")
		}
		return nil
	})
	rec, err := c.Send(testCtx(t), msg(acct, "act-flood2", userPeer(peer), "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.MessageID <= 0 {
		t.Fatalf("receipt %+v", rec)
	}
	if n := f.callsTo(peer); n != 2 {
		t.Fatalf("calls %d, want 2 (one refused, one retried)", n)
	}
	ids := f.randomIDsOf(peer)
	if ids[0] != ids[1] {
		t.Fatalf("retry changed random_id: %v", ids)
	}
}

func TestFloodWaitLongIsRetryableForTheMethod(t *testing.T) {
	f := startFake(t)
	f.reset(1011, 1012)
	acct, store := userAccount(t, f, "u-flood60")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	const peer = 1011
	f.on(peer, func(int) *tgerr.Error { return tgerr.New(420, "FLOOD_WAIT_60") })

	_, err := c.Send(testCtx(t), msg(acct, "act-flood60", userPeer(peer), "hi"))
	var r *connectors.RetryableError
	if !errors.As(err, &r) || r.After != 60*time.Second || r.Scope != "method:messages.sendMessage" {
		t.Fatalf("got %v", err)
	}
	if connectors.Classify(err) != connectors.ClassRetryable || connectors.RetryAfter(err) != 60*time.Second {
		t.Fatalf("class %v after %v", connectors.Classify(err), connectors.RetryAfter(err))
	}
	if n := f.callsTo(peer); n != 1 {
		t.Fatalf("calls %d, want 1", n)
	}
	// The method stays held: the next send (any chat) is refused locally.
	_, err = c.Send(testCtx(t), msg(acct, "act-flood60-b", userPeer(1012), "hi"))
	if !errors.As(err, &r) || !errors.Is(err, ErrMethodHeld) || r.After <= 0 || r.After > 60*time.Second {
		t.Fatalf("held: %v", err)
	}
	if n := f.callsTo(1012); n != 0 {
		t.Fatalf("a held method reached Telegram %d times", n)
	}
	if held := c.FloodWaitHeld(acct, "messages.sendMessage"); held <= 0 {
		t.Fatalf("FloodWaitHeld = %v", held)
	}
	// The hold outlives the client: a client that died and restarted
	// still does not call the method inside its flood wait.
	c.mu.Lock()
	live := c.accounts[accountKey(acct)]
	c.mu.Unlock()
	live.stop()
	_, err = c.Send(testCtx(t), msg(acct, "act-flood60-c", userPeer(1012), "hi"))
	if !errors.Is(err, ErrMethodHeld) || f.callsTo(1012) != 0 {
		t.Fatalf("after restart: %v (calls %d)", err, f.callsTo(1012))
	}
	c.mu.Lock()
	restarted := c.accounts[accountKey(acct)] != live
	c.mu.Unlock()
	if !restarted {
		t.Fatal("client was not restarted")
	}
}

func TestPeerFloodStopsAccount(t *testing.T) {
	f := startFake(t)
	f.reset(1020)
	acct, store := userAccount(t, f, "u-peerflood")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	const peer = 1020
	f.on(peer, func(int) *tgerr.Error { return tgerr.New(400, "PEER_FLOOD") })
	_, err := c.Send(testCtx(t), msg(acct, "act-pf", userPeer(peer), "hi"))
	var a *connectors.AccountStopError
	if !errors.As(err, &a) || a.Code != "peer_flood" || a.Freeze != 24*time.Hour {
		t.Fatalf("got %v", err)
	}
	assertNoSecrets(t, err, nil)
}

func TestUserIsBlockedSuppresses(t *testing.T) {
	f := startFake(t)
	f.reset(1030)
	acct, store := userAccount(t, f, "u-blocked")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	const peer = 1030
	f.on(peer, func(int) *tgerr.Error { return tgerr.New(400, "USER_IS_BLOCKED") })
	_, err := c.Send(testCtx(t), msg(acct, "act-blocked", userPeer(peer), "hi"))
	var p *connectors.PermanentError
	if !errors.As(err, &p) || p.Code != "blocked" || !p.Suppress {
		t.Fatalf("got %v", err)
	}
}

func TestSlowModeIsScopedToTheChat(t *testing.T) {
	f := startFake(t)
	f.reset(1040)
	acct, store := userAccount(t, f, "u-slow")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	const channel = 1040
	f.on(channel, func(int) *tgerr.Error { return tgerr.New(420, "SLOWMODE_WAIT_30") })
	chat := "channel:1040:5"
	_, err := c.Send(testCtx(t), msg(acct, "act-slow", chat, "hi"))
	var r *connectors.RetryableError
	if !errors.As(err, &r) || r.After != 30*time.Second || r.Scope != "chat:"+chat {
		t.Fatalf("got %v", err)
	}
}

func TestResolveUsernameIsCached(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-resolve")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	before := f.resolvesOf(aliceUsername)
	for i, chat := range []string{"@alice", "@Alice"} {
		if _, err := c.Send(testCtx(t), msg(acct, "act-res-"+strconv.Itoa(i), chat, "hi")); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.resolvesOf(aliceUsername) - before; n != 1 {
		t.Fatalf("resolved %d times, want 1", n)
	}
	if n := f.callsTo(aliceID); n < 2 {
		t.Fatalf("sends to alice %d", n)
	}
	m, _ := lastRequest[*tg.MessagesSendMessageRequest](f)
	if p, ok := m.Peer.(*tg.InputPeerUser); !ok || p.UserID != aliceID || p.AccessHash != aliceHash {
		t.Fatalf("peer %#v", m.Peer)
	}

	_, err := c.Send(testCtx(t), msg(acct, "act-res-x", "@nobody_here", "hi"))
	var p *connectors.PermanentError
	if !errors.As(err, &p) || p.Code != "username_not_occupied" {
		t.Fatalf("unknown username: %v", err)
	}
}

func TestBotLoginAndSessionPersistedThroughStore(t *testing.T) {
	f := startFake(t)
	// First process (run in TestMain, see freshBot): no session in the
	// store, so the connector did the key exchange and the bot login.
	if freshBot.err != nil {
		t.Fatalf("first send as a fresh bot: %v", freshBot.err)
	}
	if freshBot.logins != 1 {
		t.Fatalf("bot logins %d, want 1", freshBot.logins)
	}
	f.mu.Lock()
	token := f.tokens[0]
	f.mu.Unlock()
	if token != testToken {
		t.Fatal("the token from Credentials did not reach auth.importBotAuthorization")
	}
	data, stores := freshBot.store.snapshot(freshBot.account.ID)
	if len(data) == 0 || stores == 0 {
		t.Fatalf("session not stored (stores=%d)", stores)
	}

	// A new process: the session comes back from the store, no new login.
	before := f.loginCount()
	c := newTestConnector(t, f.config(freshBot.creds, freshBot.store))
	if _, err := c.Send(testCtx(t), msg(freshBot.account, "act-bot-2", userPeer(1050), "hi again")); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount() - before; n != 0 {
		t.Fatalf("bot logged in again (%d logins): session not reused", n)
	}

}

func TestBadBotTokenStopsAccountWithoutLeakingSecrets(t *testing.T) {
	f := startFake(t)
	bot := connectors.Account{ID: "b-badtoken", Org: "org1", Kind: kindBot, Connector: ConnectorName}
	store := newMemStore()
	store.data[bot.ID] = append([]byte(nil), plainSession...) // not logged in: the bot logs in
	c := newTestConnector(t, f.config(&testCreds{token: "9999:wrong-secret"}, store))
	_, err := c.Send(testCtx(t), msg(bot, "act-badtoken", userPeer(1060), "hi"))
	var a *connectors.AccountStopError
	if !errors.As(err, &a) || a.Code != "invalid_token" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("token in error: %v", err)
	}
	assertNoSecrets(t, err, nil)
}

func TestUserAccountWithoutSessionStops(t *testing.T) {
	f := startFake(t)
	acct := connectors.Account{ID: "u-nosession", Org: "org1", Kind: kindUser}
	c := newTestConnector(t, f.config(&testCreds{}, newMemStore()))
	_, err := c.Send(testCtx(t), msg(acct, "act-nosession", userPeer(1070), "hi"))
	var a *connectors.AccountStopError
	if !errors.As(err, &a) || a.Code != "no_session" {
		t.Fatalf("got %v", err)
	}
}

func TestRevokedUserSessionStops(t *testing.T) {
	f := startFake(t)
	acct := connectors.Account{ID: "u-revoked", Org: "org1", Kind: kindUser}
	store := newMemStore()
	data := append([]byte(nil), plainSession...) // a key that is not (or no longer) logged in
	store.data[acct.ID] = data
	c := newTestConnector(t, f.config(&testCreds{}, store))
	_, err := c.Send(testCtx(t), msg(acct, "act-revoked", userPeer(1080), "hi"))
	var a *connectors.AccountStopError
	if !errors.As(err, &a) || a.Code != "auth_key_unregistered" {
		t.Fatalf("got %v", err)
	}
	assertNoSecrets(t, err, data)
}

func TestNoAnswerAfterWriteIsUnknown(t *testing.T) {
	f := startFake(t)
	f.reset(1090, 1091)
	acct, store := userAccount(t, f, "u-silent")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	// Connect first, so the silent call is the only thing in flight.
	if _, err := c.Send(testCtx(t), msg(acct, "act-warm", userPeer(1090), "hi")); err != nil {
		t.Fatal(err)
	}
	const peer = 1091
	f.mu.Lock()
	f.silentFor[peer] = true
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, msg(acct, "act-silent", userPeer(peer), "hi"))
	var u *connectors.UnknownError
	if !errors.As(err, &u) {
		t.Fatalf("got %v (%v), want unknown", err, connectors.Classify(err))
	}
	if f.callsTo(peer) != 1 {
		t.Fatalf("server saw %d calls", f.callsTo(peer))
	}
}

func TestUnreachableServerIsRetryable(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-unreachable")
	cfg := f.config(&testCreds{}, store)
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, errors.New("connection refused (test dialer)")
	}
	c := newTestConnector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, msg(acct, "act-unreach", userPeer(1100), "hi"))
	var r *connectors.RetryableError
	if !errors.As(err, &r) {
		t.Fatalf("got %v (%v), want retryable", err, connectors.Classify(err))
	}
	assertNoSecrets(t, err, nil)
}

func TestAllKinds(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-kinds")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	ctx := testCtx(t)
	chat := userPeer(1200)
	channel := "channel:1201:33"

	t.Run("send_photo", func(t *testing.T) {
		d := connectors.Delivery{ActionID: "k-photo", Account: acct, Kind: connectors.KindSendPhoto, ChatID: chat,
			PhotoURL: "https://example.org/cat.jpg", Caption: "a cat"}
		rec, err := c.Send(ctx, d)
		if err != nil || rec.MessageID <= 0 {
			t.Fatalf("%+v %v", rec, err)
		}
		m, _ := lastRequest[*tg.MessagesSendMediaRequest](f)
		ext, ok := m.Media.(*tg.InputMediaPhotoExternal)
		if !ok || ext.URL != d.PhotoURL || m.Message != "a cat" || m.RandomID != RandomID("k-photo") {
			t.Fatalf("request %+v", m)
		}
	})
	t.Run("edit_message", func(t *testing.T) {
		d := connectors.Delivery{ActionID: "k-edit", Account: acct, Kind: connectors.KindEditMessage, ChatID: chat, MessageID: 7, Text: "fixed"}
		rec, err := c.Send(ctx, d)
		if err != nil || rec.MessageID != 7 {
			t.Fatalf("%+v %v", rec, err)
		}
		m, _ := lastRequest[*tg.MessagesEditMessageRequest](f)
		if m.ID != 7 || m.Message != "fixed" {
			t.Fatalf("request %+v", m)
		}
		d.MessageID = 404
		_, err = c.Send(ctx, d)
		var p *connectors.PermanentError
		if !errors.As(err, &p) || p.Code != "message_not_found" {
			t.Fatalf("MESSAGE_ID_INVALID: %v", err)
		}
	})
	t.Run("delete_message", func(t *testing.T) {
		d := connectors.Delivery{ActionID: "k-del", Account: acct, Kind: connectors.KindDeleteMessage, ChatID: chat, MessageID: 8}
		if _, err := c.Send(ctx, d); err != nil {
			t.Fatal(err)
		}
		m, _ := lastRequest[*tg.MessagesDeleteMessagesRequest](f)
		if !m.Revoke || len(m.ID) != 1 || m.ID[0] != 8 {
			t.Fatalf("request %+v", m)
		}
		d.ChatID = channel
		if _, err := c.Send(ctx, d); err != nil {
			t.Fatal(err)
		}
		cm, _ := lastRequest[*tg.ChannelsDeleteMessagesRequest](f)
		ch, ok := cm.Channel.(*tg.InputChannel)
		if !ok || ch.ChannelID != 1201 || ch.AccessHash != 33 || cm.ID[0] != 8 {
			t.Fatalf("request %+v", cm)
		}
	})
	t.Run("pin_message", func(t *testing.T) {
		d := connectors.Delivery{ActionID: "k-pin", Account: acct, Kind: connectors.KindPinMessage, ChatID: channel, MessageID: 9, DisableNotification: true}
		if _, err := c.Send(ctx, d); err != nil {
			t.Fatal(err)
		}
		m, _ := lastRequest[*tg.MessagesUpdatePinnedMessageRequest](f)
		if m.ID != 9 || !m.Silent || peerID(m.Peer) != 1201 {
			t.Fatalf("request %+v", m)
		}
	})
	t.Run("post_to_channel", func(t *testing.T) {
		d := connectors.Delivery{ActionID: "k-post", Account: acct, Kind: connectors.KindPostToChannel, ChatID: "@herald_news", Text: "news"}
		if _, err := c.Send(ctx, d); err != nil {
			t.Fatal(err)
		}
		m, _ := lastRequest[*tg.MessagesSendMessageRequest](f)
		if p, ok := m.Peer.(*tg.InputPeerChannel); !ok || p.ChannelID != newsChannelID || p.AccessHash != newsChannelHash {
			t.Fatalf("peer %#v", m.Peer)
		}
		d.ChatID = chat
		_, err := c.Send(ctx, d)
		var p *connectors.PermanentError
		if !errors.As(err, &p) || p.Code != "not_a_channel" {
			t.Fatalf("to a user: %v", err)
		}
	})
}

func TestResolveIsRateLimitedLocally(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-resolve-limit")
	cfg := f.config(&testCreds{}, store)
	cfg.ResolvePerMinute, cfg.ResolveBurst, cfg.ResolveMaxWait = 1, 1, time.Millisecond
	c := newTestConnector(t, cfg)
	if _, err := c.Send(testCtx(t), msg(acct, "act-rl-1", "@alice", "hi")); err != nil {
		t.Fatal(err)
	}
	before := f.resolvesOf(newsUsername)
	_, err := c.Send(testCtx(t), msg(acct, "act-rl-2", "@herald_news", "hi"))
	var r *connectors.RetryableError
	if !errors.As(err, &r) || r.Scope != "method:contacts.resolveUsername" || r.After <= 0 {
		t.Fatalf("got %v", err)
	}
	if f.resolvesOf(newsUsername) != before {
		t.Fatal("a rate-limited resolve reached Telegram")
	}
	// A cached name still goes out.
	if _, err := c.Send(testCtx(t), msg(acct, "act-rl-3", "@alice", "hi")); err != nil {
		t.Fatal(err)
	}
}

func TestJitterRange(t *testing.T) {
	c, err := New(Config{Credentials: &testCreds{}, Sessions: newMemStore(), JitterMin: 10 * time.Millisecond, JitterMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 200 {
		if j := c.jitter(); j < 10*time.Millisecond || j > 20*time.Millisecond {
			t.Fatalf("jitter %v", j)
		}
	}
	d, _ := New(Config{Credentials: &testCreds{}, Sessions: newMemStore()})
	defer d.Close()
	if j := d.jitter(); j < DefaultJitterMin || j > DefaultJitterMax {
		t.Fatalf("default jitter %v", j)
	}
	n, _ := New(Config{Credentials: &testCreds{}, Sessions: newMemStore(), NoJitter: true})
	defer n.Close()
	if j := n.jitter(); j != 0 {
		t.Fatalf("NoJitter: %v", j)
	}
}

func TestSendAfterCloseIsRetryable(t *testing.T) {
	f := startFake(t)
	acct, store := userAccount(t, f, "u-closed")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	if _, err := c.Send(testCtx(t), msg(acct, "act-c1", userPeer(1300), "hi")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Send(testCtx(t), msg(acct, "act-c2", userPeer(1300), "hi"))
	if !errors.Is(err, ErrClosed) || connectors.Classify(err) != connectors.ClassRetryable {
		t.Fatalf("got %v", err)
	}
}

func TestConcurrentSendsShareOneClient(t *testing.T) {
	f := startFake(t)
	f.reset(1400)
	acct, store := userAccount(t, f, "u-concurrent")
	c := newTestConnector(t, f.config(&testCreds{}, store))
	ctx := testCtx(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := c.Send(ctx, msg(acct, "act-cc-"+strconv.Itoa(i), userPeer(1400), "hi"))
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	n := len(c.accounts)
	c.mu.Unlock()
	if n != 1 || f.callsTo(1400) != 8 {
		t.Fatalf("clients %d, calls %d", n, f.callsTo(1400))
	}
}
