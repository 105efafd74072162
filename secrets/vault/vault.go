// Package vault is the production secrets.Store: HashiCorp Vault through the
// MPL-licensed github.com/hashicorp/vault/api client.
//
//   - KV v2 holds bot tokens, api_id/api_hash and MTProto session blobs,
//     versioned, with check-and-set on write (kv.go).
//   - Transit encrypts what Herald must store itself and signs ledger
//     checkpoints with an Ed25519 key that never leaves Vault (transit.go,
//     signer.go).
//   - The client logs in with a token or with AppRole and a response-wrapped
//     secret id, renews its token with api.LifetimeWatcher and logs in again
//     when renewal ends (auth.go).
//
// Every error wraps one of the secrets sentinels, so callers never look at
// Vault's HTTP codes: unreachable, sealed or slow Vault is
// secrets.ErrUnavailable within Config.Timeout.
package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/heraldhq/herald/secrets"
)

// Defaults, each chosen so that a Vault outage is noticed quickly and
// surfaced as secrets.ErrUnavailable rather than hanging a delivery worker.
const (
	// DefaultKVMount is the mount Vault's dev server and most installs use
	// for KV v2.
	DefaultKVMount = "secret"
	// DefaultTransitMount is Transit's conventional mount.
	DefaultTransitMount = "transit"
	// DefaultTimeout bounds one operation, retries included: a paused or
	// partitioned Vault yields ErrUnavailable after this long.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxRetries retries idempotent failures (5xx, connection
	// errors) inside the timeout.
	DefaultMaxRetries = 2
)

// Config configures a Client. Address and Auth are required.
type Config struct {
	Address string // e.g. "https://vault.internal:8200"
	Auth    Auth   // TokenAuth or AppRoleAuth

	KVMount      string        // default DefaultKVMount
	TransitMount string        // default DefaultTransitMount
	Timeout      time.Duration // default DefaultTimeout
	MaxRetries   int           // default DefaultMaxRetries; negative disables retries
	TLS          *api.TLSConfig
	Logger       *slog.Logger // default slog.Default(); never receives values
	// WrapTransport, when set, wraps the HTTP transport (after TLS is
	// configured), e.g. in tracing spans.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// Client talks to one Vault. It implements secrets.Store (KV v2) and offers
// Transit operations. It is safe for concurrent use.
type Client struct {
	api     *api.Client
	kv      string
	transit string
	timeout time.Duration
	auth    Auth
	log     *slog.Logger

	loginMu    sync.Mutex    // one login at a time
	authMu     sync.Mutex    // guards authSecret and authAt
	authSecret *api.Secret   // the current token's secret, for renewal
	authAt     time.Time     // when it was obtained
	relogged   chan struct{} // a request-path login replaced the token

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

var _ secrets.Store = (*Client)(nil)

// Open connects and logs in, then keeps the token alive in the background
// until Close. It fails if the first login fails, so that a misconfigured
// server does not start; later outages are retried in the background.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Address == "" || cfg.Auth == nil {
		return nil, errors.New("vault: config needs Address and Auth")
	}
	if cfg.KVMount == "" {
		cfg.KVMount = DefaultKVMount
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = DefaultTransitMount
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	ac := api.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("vault: default config: %w", ac.Error)
	}
	ac.Address = cfg.Address
	ac.Timeout = cfg.Timeout
	ac.MaxRetries = cfg.MaxRetries
	if cfg.TLS != nil {
		if err := ac.ConfigureTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("vault: configure TLS: %w", err)
		}
	}
	if cfg.WrapTransport != nil && ac.HttpClient != nil {
		ac.HttpClient.Transport = cfg.WrapTransport(ac.HttpClient.Transport)
	}
	client, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault: new client for %s: %w", cfg.Address, err)
	}
	// api.NewClient picks up VAULT_TOKEN from the environment; Herald's
	// credentials come from Config only.
	client.ClearToken()

	c := &Client{
		api:     client,
		kv:      cfg.KVMount,
		transit: cfg.TransitMount,
		timeout: cfg.Timeout,
		auth:    cfg.Auth,
		log:     cfg.Logger.With("component", "vault"),
		done:    make(chan struct{}),

		relogged: make(chan struct{}, 1),
	}
	first, err := c.login(ctx)
	if err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		defer close(c.done)
		c.keepAlive(bg, first)
	}()
	return c, nil
}

// Close stops token renewal. It does not revoke the token: a replica that
// restarts logs in anew and the old token expires by its TTL.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.cancel()
		<-c.done
	})
	return nil
}

// API returns the underlying client, for health checks and tests.
func (c *Client) API() *api.Client { return c.api }

// withTimeout applies the operation timeout even when the caller's context
// has none, so no call can hang on a paused Vault.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// read and write run one request bounded by the operation timeout. If Vault
// answers 403 they log in again once and retry: the token may have expired
// in the gap between the last renewal and the background re-login, or been
// revoked. A 403 means Vault refused before acting, so retrying a write is
// safe. Errors are returned raw for wrapErr.
func (c *Client) read(ctx context.Context, path string, query map[string][]string) (*api.Secret, error) {
	return c.call(ctx, func(ctx context.Context) (*api.Secret, error) {
		if query == nil {
			return c.api.Logical().ReadWithContext(ctx, path)
		}
		return c.api.Logical().ReadWithDataWithContext(ctx, path, query)
	})
}

func (c *Client) write(ctx context.Context, path string, data map[string]any) (*api.Secret, error) {
	return c.call(ctx, func(ctx context.Context) (*api.Secret, error) {
		return c.api.Logical().WriteWithContext(ctx, path, data)
	})
}

func (c *Client) call(ctx context.Context, fn func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	token := c.api.Token()
	tctx, cancel := c.withTimeout(ctx)
	s, err := fn(tctx)
	cancel()
	forbidden, invalidToken := denial(err)
	if !forbidden || !c.reloginAfterDenied(ctx, token, invalidToken) {
		return s, err
	}
	tctx, cancel = c.withTimeout(ctx)
	defer cancel()
	return fn(tctx)
}

// denial reports whether err is a 403 and whether Vault said the token
// itself is invalid (expired or revoked).
func denial(err error) (forbidden, invalidToken bool) {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		return false, false
	}
	return true, containsAny(re.Errors, "invalid token")
}
