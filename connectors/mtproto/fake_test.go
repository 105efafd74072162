package mtproto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/cluster"
	"github.com/gotd/td/transport"

	"github.com/heraldhq/herald/connectors"
)

// The in-process Telegram: gotd's tgtest server (real MTProto key exchange,
// encryption and transport on loopback) with handlers for the methods the
// connector calls. One cluster serves the whole package: its RSA key and the
// per-test key exchanges are the slow part. Tests address distinct user ids
// so they can script answers independently.

const (
	testAppID   = 17349
	testAppHash = "0123456789abcdef0123456789abcdef" // checked never to appear in errors
	testToken   = "4242:bot-secret-token"            // likewise
	testDC      = 2

	// Resolvable usernames and what they resolve to.
	aliceUsername   = "alice"
	aliceID         = 500
	aliceHash       = 7700
	newsUsername    = "herald_news"
	newsChannelID   = 900
	newsChannelHash = 9900
)

// reply scripts the answer to the n-th (from 1) call for one peer: a nil
// error means success.
type reply func(n int) *tgerr.Error

// fakeTelegram records requests and answers them per script.
type fakeTelegram struct {
	cluster *cluster.Cluster

	mu        sync.Mutex
	script    map[int64]reply
	calls     map[int64]int     // sendMessage/sendMedia calls per peer id
	randomIDs map[int64][]int64 // random_ids received per peer id
	requests  []any             // every decoded content request, in order
	resolves  map[string]int    // contacts.resolveUsername per username
	logins    int               // auth.importBotAuthorization calls
	tokens    []string          // bot tokens received
	authed    map[[8]byte]bool  // auth key ids logged in (bot or user)
	silentFor map[int64]bool    // peers whose sendMessage is never answered
	nextID    int
}

var (
	fake     *fakeTelegram
	fakeErr  error
	stopFake context.CancelFunc

	// loggedInSession is a session whose key is logged in as a user;
	// plainSession one whose key never logged in (as after the account's
	// sessions were terminated from a phone). Tests copy them: a key
	// exchange costs seconds under the race detector on a shared machine,
	// so they are made once, before the tests and outside their budget.
	loggedInSession []byte
	plainSession    []byte

	// freshBot is the outcome of the connector's first Send for a bot with
	// nothing in its SessionStore: key exchange, bot login, session stored.
	// It runs in TestMain for the same reason (its key exchange alone took
	// 2–8 s under -race with a load average of 7 on 2 cores); the test
	// TestBotLoginAndSessionPersistedThroughStore asserts on it.
	freshBot struct {
		account connectors.Account
		store   *memStore
		creds   *testCreds
		err     error
		logins  int
	}
)

func TestMain(m *testing.M) {
	fake, fakeErr = setupFake()
	code := m.Run()
	if stopFake != nil {
		stopFake()
	}
	os.Exit(code)
}

// setupFake starts the shared cluster and makes the shared sessions.
func setupFake() (*fakeTelegram, error) {
	f := &fakeTelegram{
		script: map[int64]reply{}, calls: map[int64]int{}, randomIDs: map[int64][]int64{},
		resolves: map[string]int{}, authed: map[[8]byte]bool{},
		silentFor: map[int64]bool{}, nextID: 100,
	}
	f.cluster = cluster.NewCluster(cluster.Options{Protocol: transport.Intermediate})
	f.register(f.cluster.Dispatch(testDC, "dc2"))
	ctx, cancel := context.WithCancel(context.Background())
	stopFake = cancel
	go func() { _ = f.cluster.Up(ctx) }()
	select {
	case <-f.cluster.Ready():
	case <-time.After(time.Minute):
		return nil, errors.New("tgtest cluster did not start")
	}
	var err error
	if loggedInSession, err = f.newSession(true); err != nil {
		return nil, fmt.Errorf("log the test user in: %w", err)
	}
	if plainSession, err = f.newSession(false); err != nil {
		return nil, fmt.Errorf("make a session: %w", err)
	}
	f.sendAsFreshBot()
	return f, nil
}

// sendAsFreshBot sends once as a bot whose SessionStore is empty, through a
// connector closed afterwards (as a process exiting), and records the outcome.
func (f *fakeTelegram) sendAsFreshBot() {
	freshBot.account = connectors.Account{ID: "b-session", Org: "org1", Kind: kindBot, Connector: ConnectorName}
	freshBot.store = newMemStore()
	freshBot.creds = &testCreds{}
	c, err := New(f.config(freshBot.creds, freshBot.store))
	if err != nil {
		freshBot.err = err
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, freshBot.err = c.Send(ctx, connectors.Delivery{
		ActionID: "act-bot-1", Account: freshBot.account, Kind: connectors.KindSendMessage,
		ChatID: "user:1050:77", Text: "hi",
	})
	// gotd stores the session right after the connection is ready,
	// concurrently with the first call: wait for it before closing.
	for range 500 {
		if data, _ := freshBot.store.snapshot(freshBot.account.ID); len(data) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	freshBot.logins = f.loginCount()
}

// startFake returns the shared in-process Telegram.
func startFake(tb testing.TB) *fakeTelegram {
	tb.Helper()
	if fakeErr != nil {
		tb.Fatalf("tgtest: %v", fakeErr)
	}
	return fake
}

func (f *fakeTelegram) register(d *tgtest.Dispatcher) {
	d.HandleFunc(tg.UsersGetUsersRequestTypeID, f.getUsers)
	d.HandleFunc(tg.AuthImportBotAuthorizationRequestTypeID, f.importBot)
	d.HandleFunc(tg.AuthSignInRequestTypeID, f.signIn)
	d.HandleFunc(tg.ContactsResolveUsernameRequestTypeID, f.resolveUsername)
	d.HandleFunc(tg.MessagesSendMessageRequestTypeID, f.sendMessage)
	d.HandleFunc(tg.MessagesSendMediaRequestTypeID, f.sendMedia)
	d.HandleFunc(tg.MessagesEditMessageRequestTypeID, f.editMessage)
	d.HandleFunc(tg.MessagesDeleteMessagesRequestTypeID, f.deleteMessages)
	d.HandleFunc(tg.ChannelsDeleteMessagesRequestTypeID, f.deleteChannelMessages)
	d.HandleFunc(tg.MessagesUpdatePinnedMessageRequestTypeID, f.updatePinned)
}

// config is a connector Config pointing at the cluster, without jitter.
func (f *fakeTelegram) config(creds Credentials, store SessionStore) Config {
	return Config{
		Credentials: creds,
		Sessions:    store,
		DC:          testDC,
		DCList:      f.cluster.List(),
		PublicKeys:  f.cluster.Keys(),
		Protocol:    transport.Intermediate,
		NoJitter:    true,
	}
}

// reset forgets what the fake recorded for peer ids and their scripts, so a
// test (run again with -count) starts from zero.
func (f *fakeTelegram) reset(ids ...int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.calls, id)
		delete(f.randomIDs, id)
		delete(f.script, id)
		delete(f.silentFor, id)
	}
}

// on scripts the answers for peer id.
func (f *fakeTelegram) on(peerID int64, r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[peerID] = r
}

func (f *fakeTelegram) callsTo(peerID int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[peerID]
}

func (f *fakeTelegram) resolvesOf(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resolves[name]
}

func (f *fakeTelegram) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeTelegram) randomIDsOf(peerID int64) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.randomIDs[peerID]...)
}

// lastRequest returns the last recorded request of type T.
func lastRequest[T any](f *fakeTelegram) (T, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if r, ok := f.requests[i].(T); ok {
			return r, true
		}
	}
	var zero T
	return zero, false
}

// authorized answers like Telegram for a key that never logged in.
func (f *fakeTelegram) authorized(req *tgtest.Request) *tgerr.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.authed[req.Session.AuthKey.ID] {
		return tgerr.New(401, "AUTH_KEY_UNREGISTERED")
	}
	return nil
}

func (f *fakeTelegram) getUsers(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.UsersGetUsersRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.authorized(req); err != nil {
		return s.SendErr(req, err)
	}
	return s.SendVector(req, &tg.User{ID: 1, Self: true, AccessHash: 1})
}

func (f *fakeTelegram) importBot(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.AuthImportBotAuthorizationRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	f.mu.Lock()
	f.logins++
	f.tokens = append(f.tokens, m.BotAuthToken)
	ok := m.BotAuthToken == testToken && m.APIID == testAppID && m.APIHash == testAppHash
	if ok {
		f.authed[req.Session.AuthKey.ID] = true
	}
	f.mu.Unlock()
	if !ok {
		return s.SendErr(req, tgerr.New(400, "ACCESS_TOKEN_INVALID"))
	}
	return s.SendResult(req, &tg.AuthAuthorization{User: &tg.User{ID: 4242, Bot: true, AccessHash: 1}})
}

func (f *fakeTelegram) signIn(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.AuthSignInRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	f.mu.Lock()
	f.authed[req.Session.AuthKey.ID] = true
	f.mu.Unlock()
	return s.SendResult(req, &tg.AuthAuthorization{User: &tg.User{ID: 1, Self: true, AccessHash: 1}})
}

func (f *fakeTelegram) resolveUsername(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.ContactsResolveUsernameRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.authorized(req); err != nil {
		return s.SendErr(req, err)
	}
	f.mu.Lock()
	f.resolves[m.Username]++
	f.mu.Unlock()
	switch m.Username {
	case aliceUsername:
		return s.SendResult(req, &tg.ContactsResolvedPeer{
			Peer:  &tg.PeerUser{UserID: aliceID},
			Users: []tg.UserClass{&tg.User{ID: aliceID, AccessHash: aliceHash, Username: aliceUsername}},
		})
	case newsUsername:
		return s.SendResult(req, &tg.ContactsResolvedPeer{
			Peer:  &tg.PeerChannel{ChannelID: newsChannelID},
			Chats: []tg.ChatClass{&tg.Channel{ID: newsChannelID, AccessHash: newsChannelHash, Title: "News", Photo: &tg.ChatPhotoEmpty{}}},
		})
	}
	return s.SendErr(req, tgerr.New(400, "USERNAME_NOT_OCCUPIED"))
}

// peerID is the user, channel or chat id of an input peer.
func peerID(p tg.InputPeerClass) int64 {
	switch p := p.(type) {
	case *tg.InputPeerUser:
		return p.UserID
	case *tg.InputPeerChannel:
		return p.ChannelID
	case *tg.InputPeerChat:
		return p.ChatID
	}
	return 0
}

// send records one send to peer and answers it per script.
func (f *fakeTelegram) send(s *tgtest.Server, req *tgtest.Request, request any, peer tg.InputPeerClass, randomID int64) error {
	if err := f.authorized(req); err != nil {
		return s.SendErr(req, err)
	}
	id := peerID(peer)
	f.mu.Lock()
	f.requests = append(f.requests, request)
	f.calls[id]++
	n := f.calls[id]
	f.randomIDs[id] = append(f.randomIDs[id], randomID)
	r := f.script[id]
	silent := f.silentFor[id]
	f.nextID++
	msgID := f.nextID
	f.mu.Unlock()
	if silent {
		return nil // received, never answered: the outcome is unknown to the client
	}
	if r != nil {
		if e := r(n); e != nil {
			return s.SendErr(req, e)
		}
	}
	return s.SendResult(req, &tg.Updates{Updates: []tg.UpdateClass{
		&tg.UpdateMessageID{ID: msgID, RandomID: randomID},
		&tg.UpdateNewMessage{Message: &tg.Message{ID: msgID, PeerID: &tg.PeerUser{UserID: id}}},
	}})
}

func (f *fakeTelegram) sendMessage(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.MessagesSendMessageRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	return f.send(s, req, &m, m.Peer, m.RandomID)
}

func (f *fakeTelegram) sendMedia(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.MessagesSendMediaRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	return f.send(s, req, &m, m.Peer, m.RandomID)
}

// record stores a request that needs no script and checks authorization.
func (f *fakeTelegram) record(req *tgtest.Request, request any) *tgerr.Error {
	if err := f.authorized(req); err != nil {
		return err
	}
	f.mu.Lock()
	f.requests = append(f.requests, request)
	f.mu.Unlock()
	return nil
}

func (f *fakeTelegram) editMessage(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.MessagesEditMessageRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.record(req, &m); err != nil {
		return s.SendErr(req, err)
	}
	if m.ID == 404 {
		return s.SendErr(req, tgerr.New(400, "MESSAGE_ID_INVALID"))
	}
	return s.SendResult(req, &tg.Updates{})
}

func (f *fakeTelegram) deleteMessages(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.MessagesDeleteMessagesRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.record(req, &m); err != nil {
		return s.SendErr(req, err)
	}
	return s.SendResult(req, &tg.MessagesAffectedMessages{Pts: 1, PtsCount: 1})
}

func (f *fakeTelegram) deleteChannelMessages(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.ChannelsDeleteMessagesRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.record(req, &m); err != nil {
		return s.SendErr(req, err)
	}
	return s.SendResult(req, &tg.MessagesAffectedMessages{Pts: 1, PtsCount: 1})
}

func (f *fakeTelegram) updatePinned(s *tgtest.Server, req *tgtest.Request) error {
	var m tg.MessagesUpdatePinnedMessageRequest
	if err := m.Decode(req.Buf); err != nil {
		return err
	}
	if err := f.record(req, &m); err != nil {
		return s.SendErr(req, err)
	}
	return s.SendResult(req, &tg.Updates{})
}

// newSession makes a session outside the connector: a key exchange, then,
// if login, auth.signIn, the way an operator logs a user account in. It
// returns the session bytes as a secrets store would hold them.
func (f *fakeTelegram) newSession(login bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mem := &session.StorageMemory{}
	client := telegram.NewClient(testAppID, testAppHash, telegram.Options{
		DC: testDC, DCList: f.cluster.List(), PublicKeys: f.cluster.Keys(),
		Resolver: f.cluster.Resolver(), SessionStorage: mem, NoUpdates: true,
	})
	err := client.Run(ctx, func(ctx context.Context) error {
		if !login {
			return nil
		}
		_, err := client.API().AuthSignIn(ctx, &tg.AuthSignInRequest{
			PhoneNumber: "+15550000000", PhoneCodeHash: "hash", PhoneCode: "12345",
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	// gotd saves the session right after the connection is ready, which
	// may be just after the callback returned.
	for range 100 {
		if data, err := mem.LoadSession(ctx); err == nil && len(data) > 0 {
			return data, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, errors.New("no session stored")
}

// memStore is a SessionStore in memory (the secrets store in tests).
type memStore struct {
	mu     sync.Mutex
	data   map[string][]byte
	stores int
}

func newMemStore() *memStore { return &memStore{data: map[string][]byte{}} }

func (s *memStore) Load(_ context.Context, a connectors.Account) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.data[a.ID]...), nil
}

func (s *memStore) Store(_ context.Context, a connectors.Account, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[a.ID] = append([]byte(nil), data...)
	s.stores++
	return nil
}

func (s *memStore) snapshot(id string) ([]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.data[id]...), s.stores
}

// testCreds is a Credentials with fixed secrets.
type testCreds struct {
	token string
	mu    sync.Mutex
	reads int
}

func (c *testCreds) AppCredentials(context.Context, connectors.Account) (int, string, error) {
	return testAppID, testAppHash, nil
}

func (c *testCreds) BotToken(context.Context, connectors.Account) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if c.token == "" {
		return testToken, nil
	}
	return c.token, nil
}

// userAccount returns a logged-in user account and its store. Accounts of
// different tests share one logged-in auth key, as the server does not mind.
func userAccount(tb testing.TB, f *fakeTelegram, id string) (connectors.Account, *memStore) {
	tb.Helper()
	store := newMemStore()
	acct := connectors.Account{ID: id, Org: "org1", Kind: kindUser, Connector: ConnectorName, SecretRef: "vault:kv/mtproto/" + id}
	store.data[id] = append([]byte(nil), loggedInSession...)
	return acct, store
}

// newTestConnector returns a connector on the fake, closed at test end.
func newTestConnector(tb testing.TB, cfg Config) *Connector {
	tb.Helper()
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
