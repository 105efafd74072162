package mtproto

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
)

// Account kinds, as in connectors.Account.Kind.
const (
	kindBot  = "bot"
	kindUser = "user"
)

// errNoSession: a user account must be logged in by a person (phone code,
// 2FA) before Herald may send as it; the connector never starts a login.
var errNoSession = errors.New("no MTProto session in the secrets store: log the account in first")

// account is the live MTProto client of one account. It is started once
// (lazily, by the first Send) and lives until Close or until the client
// stops on its own, after which the next Send starts a new one.
type account struct {
	client *telegram.Client
	writes *writeCounter
	*memory

	ready  chan struct{} // closed once connected and authorized
	done   chan struct{} // closed when the client stopped; err says why
	err    error         // written before done is closed
	runCtx context.Context
	cancel context.CancelFunc
}

// api is the account's raw API, through the FloodWait middleware.
func (a *account) api() *tg.Client { return a.client.API() }

// memory is what the connector keeps about an account across its clients:
// a flood wait or a resolved username outlives a client that died, so a
// restart neither hits a method inside its flood wait nor resolves again.
type memory struct {
	flood *FloodWait
	names *resolver
}

func newMemory(cfg Config) *memory {
	return &memory{
		flood: NewFloodWait(cfg.FloodWaitThreshold, cfg.MethodFloodWaitThreshold),
		names: newResolver(cfg),
	}
}

// newAccount returns an account whose client is not started yet; parent is
// the Connector's context, so Close stops it even mid-start.
func newAccount(parent context.Context, m *memory) *account {
	runCtx, cancel := context.WithCancel(parent)
	return &account{
		writes: &writeCounter{},
		memory: m,
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		runCtx: runCtx,
		cancel: cancel,
	}
}

// start reads the account's secrets with ctx (the first Send's context) and
// starts its client in the background. Other Sends for the account wait on
// ready or done meanwhile, so a slow secrets store holds only this account.
// On failure done is closed with err set.
func (c *Connector) start(ctx context.Context, a *account, acct connectors.Account) {
	if err := c.spawn(ctx, a, acct); err != nil {
		a.err = err
		a.cancel()
		close(a.done)
	}
}

func (c *Connector) spawn(ctx context.Context, a *account, acct connectors.Account) error {
	appID, appHash, err := c.cfg.Credentials.AppCredentials(ctx, acct)
	if err != nil {
		return fmt.Errorf("app credentials: %w", err)
	}
	stored, err := c.cfg.Sessions.Load(ctx, acct)
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	if len(stored) == 0 && acct.Kind != kindBot {
		return &connectors.AccountStopError{Code: "no_session", Err: errNoSession}
	}
	if err := a.runCtx.Err(); err != nil {
		return fmt.Errorf("connector closing: %w", err)
	}

	a.client = telegram.NewClient(appID, appHash, telegram.Options{
		DC:         c.cfg.DC,
		DCList:     c.cfg.DCList,
		PublicKeys: c.cfg.PublicKeys,
		Resolver: dcs.Plain(dcs.PlainOptions{
			Protocol: c.cfg.Protocol,
			Dial:     a.writes.dial(c.cfg.Dial),
		}),
		SessionStorage: sessionStorage{store: c.cfg.Sessions, account: acct},
		Middlewares:    []telegram.Middleware{a.flood},
		NoUpdates:      true, // Herald sends; inbound updates come through the bot webhook.
		Device:         c.cfg.Device,
	})

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(a.done)
		err := a.client.Run(a.runCtx, func(ctx context.Context) error {
			if err := c.authorize(ctx, a, acct); err != nil {
				return err
			}
			close(a.ready)
			<-ctx.Done()
			return nil
		})
		if err == nil {
			err = errors.New("client stopped")
		}
		a.err = err
	}()
	return nil
}

// authorize checks that the session is logged in (users.getUsers on self)
// and, for a bot, logs it in with its token (auth.importBotAuthorization)
// when it is not. A user account that is not logged in stops.
func (c *Connector) authorize(ctx context.Context, a *account, acct connectors.Account) error {
	_, err := a.api().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUserSelf{}})
	if err == nil {
		return nil
	}
	if acct.Kind != kindBot || !tgerr.Is(err, "AUTH_KEY_UNREGISTERED") {
		return fmt.Errorf("check authorization: %w", err)
	}
	token, err := c.cfg.Credentials.BotToken(ctx, acct)
	if err != nil {
		return fmt.Errorf("bot token: %w", err)
	}
	if _, err := a.client.Auth().Bot(ctx, token); err != nil {
		return fmt.Errorf("bot login (auth.importBotAuthorization): %w", err)
	}
	return nil
}

// stop ends the client and waits for it.
func (a *account) stop() {
	a.cancel()
	<-a.done
}

// dead reports whether the client has stopped.
func (a *account) dead() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}
