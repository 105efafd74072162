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
	flood  *FloodWait
	names  *resolver

	ready  chan struct{} // closed once connected and authorized
	done   chan struct{} // closed when the client stopped; err says why
	err    error
	cancel context.CancelFunc
}

// api is the account's raw API, through the FloodWait middleware.
func (a *account) api() *tg.Client { return a.client.API() }

// startAccount reads the account's secrets with ctx (the first Send's
// context) and starts its client in the background under parent.
func (c *Connector) startAccount(ctx, parent context.Context, acct connectors.Account) (*account, error) {
	appID, appHash, err := c.cfg.Credentials.AppCredentials(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("app credentials: %w", err)
	}
	stored, err := c.cfg.Sessions.Load(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	fresh := len(stored) == 0
	if fresh && acct.Kind != kindBot {
		return nil, &connectors.AccountStopError{Code: "no_session", Err: errNoSession}
	}

	a := &account{
		writes: &writeCounter{},
		flood:  NewFloodWait(c.cfg.FloodWaitThreshold, c.cfg.MethodFloodWaitThreshold),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
	a.names = newResolver(c.cfg, a.api)
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

	runCtx, cancel := context.WithCancel(parent)
	a.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(a.done)
		a.err = a.client.Run(runCtx, func(ctx context.Context) error {
			if err := c.authorize(ctx, a, acct); err != nil {
				return err
			}
			close(a.ready)
			<-ctx.Done()
			return nil
		})
		if a.err == nil {
			a.err = errors.New("client stopped")
		}
	}()
	return a, nil
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
