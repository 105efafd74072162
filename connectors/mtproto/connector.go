package mtproto

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/heraldhq/herald/connectors"
)

// ErrClosed is wrapped by the RetryableError of a Send after Close.
var ErrClosed = errors.New("mtproto: connector closed")

// Connector implements connectors.Connector over MTProto. It keeps one live
// client per account, started by the account's first Send and stopped by
// Close. It is safe for concurrent use. It does not pace sends beyond the
// jitter and Telegram's flood waits: wrap it with ratelimit.Wrap, whose
// per-account bucket for user accounts ("user:<id>") is the real limit.
type Connector struct {
	cfg Config

	ctx    context.Context // parent of every client; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	accounts map[string]*account // live clients
	memory   map[string]*memory  // per account, outlives its clients
	closed   bool
}

var _ connectors.Connector = (*Connector)(nil)

// New returns a Connector; no connection is made until the first Send.
func New(cfg Config) (*Connector, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("mtproto: Config.Credentials is required")
	}
	if cfg.Sessions == nil {
		return nil, errors.New("mtproto: Config.Sessions is required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Connector{
		cfg:      cfg.withDefaults(),
		ctx:      ctx,
		cancel:   cancel,
		accounts: make(map[string]*account),
		memory:   make(map[string]*memory),
	}, nil
}

// Close stops every account's client and waits for them. Sends after Close
// fail as retryable (nothing is sent).
func (c *Connector) Close() error {
	c.mu.Lock()
	c.closed = true
	accounts := c.accounts
	c.accounts = make(map[string]*account)
	c.mu.Unlock()
	for _, a := range accounts {
		a.stop()
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

// accountKey identifies an account across organisations.
func accountKey(a connectors.Account) string { return a.Org + "\x00" + a.ID }

// client returns the account's live client, starting it if needed, and
// waits until it is connected and authorized or ctx ends. Its errors are
// classified; none of them means anything was sent.
func (c *Connector) client(ctx context.Context, d connectors.Delivery) (*account, error) {
	key := accountKey(d.Account)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, &connectors.RetryableError{Err: ErrClosed}
	}
	a, ok := c.accounts[key]
	if ok && a.dead() {
		delete(c.accounts, key)
		ok = false
	}
	if !ok {
		m := c.memory[key]
		if m == nil {
			m = newMemory(c.cfg)
			c.memory[key] = m
		}
		a = newAccount(c.ctx, m)
		c.accounts[key] = a
	}
	c.mu.Unlock()
	if !ok {
		c.start(ctx, a, d.Account)
	}

	select {
	case <-a.ready:
		return a, nil
	case <-a.done:
		c.forget(key, a)
		return nil, classifyStart(d, a.err)
	case <-ctx.Done():
		return nil, classifyStart(d, fmt.Errorf("waiting for connection: %w", ctx.Err()))
	}
}

// forget drops a dead client so the next Send starts a new one.
func (c *Connector) forget(key string, a *account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accounts[key] == a {
		delete(c.accounts, key)
	}
}

// Send delivers d. See the package documentation for the classification of
// failures; docs/connectors.md has the full table.
func (c *Connector) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	if err := validate(d); err != nil {
		return connectors.Receipt{}, err
	}
	a, err := c.client(ctx, d)
	if err != nil {
		return connectors.Receipt{}, err
	}
	if err := sleepCtx(ctx, c.jitter()); err != nil {
		return connectors.Receipt{}, classify(d, "jitter", err, notSent)
	}
	peer, err := c.peer(ctx, a, d)
	if err != nil {
		return connectors.Receipt{}, err
	}
	before := a.writes.load()
	msgID, method, err := c.do(ctx, a, d, peer)
	if err != nil {
		sent := notSent
		if a.writes.load() != before {
			sent = maybeSent
		}
		return connectors.Receipt{}, classify(d, method, err, sent)
	}
	return connectors.Receipt{MessageID: msgID, ChatID: d.ChatID, At: time.Now().UTC(), Connector: ConnectorName}, nil
}

// jitter is a uniformly random pause in [JitterMin, JitterMax].
func (c *Connector) jitter() time.Duration {
	if c.cfg.NoJitter || c.cfg.JitterMax <= 0 {
		return 0
	}
	span := c.cfg.JitterMax - c.cfg.JitterMin
	if span <= 0 {
		return c.cfg.JitterMin
	}
	return c.cfg.JitterMin + rand.N(span+1)
}

// FloodWaitHeld reports how long method is held for account by an earlier
// FLOOD_WAIT (0 if not).
func (c *Connector) FloodWaitHeld(account connectors.Account, method string) time.Duration {
	c.mu.Lock()
	m, ok := c.memory[accountKey(account)]
	c.mu.Unlock()
	if !ok {
		return 0
	}
	return m.flood.Held(method)
}
