package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

// Auth is how the Client obtains a token: TokenAuth or AppRoleAuth.
type Auth interface {
	// login returns a token secret (Auth set) and installs the token on c.
	login(ctx context.Context, c *Client) (*api.Secret, error)
}

// TokenAuth uses a fixed token (an orphan periodic token, or the root token
// of a dev server in tests). A token cannot be re-obtained, only renewed: if
// it expires, the Client keeps retrying and reports ErrPermissionDenied.
type TokenAuth struct {
	Token string
}

func (a TokenAuth) login(ctx context.Context, c *Client) (*api.Secret, error) {
	c.api.SetToken(a.Token)
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, err := c.api.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, wrapErr(ctx, "token lookup-self", "auth/token", err)
	}
	renewable, _ := s.TokenIsRenewable()
	ttl, _ := s.TokenTTL()
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   a.Token,
		Renewable:     renewable,
		LeaseDuration: int(ttl / time.Second),
	}}, nil
}

// AppRoleAuth logs in with AppRole; use it as a pointer
// (&vault.AppRoleAuth{...}). Provide the secret id either in clear
// (SecretID) or, preferably, as a response-wrapping token (WrappedSecretID)
// that the Client unwraps once: a wrapping token is single-use, so an
// intercepted one is detected when the real unwrap fails.
//
// The unwrapped secret id is kept in memory, never logged, to log in again
// when the token reaches its max TTL; give the role a secret_id_num_uses
// of 0 or large enough for that.
type AppRoleAuth struct {
	Mount           string // default "approle"
	RoleID          string
	SecretID        string
	WrappedSecretID string

	mu        sync.Mutex // the unwrap happens once
	unwrapped string
}

func (a *AppRoleAuth) login(ctx context.Context, c *Client) (*api.Secret, error) {
	mount := a.Mount
	if mount == "" {
		mount = "approle"
	}
	secretID, err := a.secretID(ctx, c)
	if err != nil {
		return nil, err
	}
	// A clone has no token: the login request must not carry the expired
	// or wrapping token.
	anon, err := c.api.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault: approle login: clone client: %w", err)
	}
	anon.ClearToken()
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, err := anon.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{
		"role_id":   a.RoleID,
		"secret_id": secretID,
	})
	if err != nil {
		return nil, wrapErr(ctx, "approle login", "auth/"+mount+"/login", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("vault: approle login at auth/%s/login: no token in response", mount)
	}
	c.api.SetToken(s.Auth.ClientToken)
	return s, nil
}

// secretID returns the clear secret id, unwrapping WrappedSecretID on first
// use.
func (a *AppRoleAuth) secretID(ctx context.Context, c *Client) (string, error) {
	if a.SecretID != "" {
		return a.SecretID, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.unwrapped != "" {
		return a.unwrapped, nil
	}
	if a.WrappedSecretID == "" {
		return "", errors.New("vault: approle: neither SecretID nor WrappedSecretID set")
	}
	w, err := c.api.Clone()
	if err != nil {
		return "", fmt.Errorf("vault: approle unwrap: clone client: %w", err)
	}
	w.SetToken(a.WrappedSecretID)
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	s, err := w.Logical().UnwrapWithContext(ctx, "")
	if err != nil {
		return "", wrapErr(ctx, "unwrap secret id", "sys/wrapping/unwrap", err)
	}
	if s == nil || s.Data == nil {
		return "", errors.New("vault: unwrap secret id: empty response (wrapping token already used?)")
	}
	id, _ := s.Data["secret_id"].(string)
	if id == "" {
		return "", errors.New("vault: unwrap secret id: response has no secret_id")
	}
	a.unwrapped = id
	return id, nil
}

// login runs the configured auth method and records the token secret for
// the renewal goroutine.
func (c *Client) login(ctx context.Context) (*api.Secret, error) {
	s, err := c.auth.login(ctx, c)
	if err != nil {
		return nil, err
	}
	c.authMu.Lock()
	c.authSecret, c.authAt = s, time.Now()
	c.authMu.Unlock()
	return s, nil
}

// reloginAfterDenied logs in again after a request was denied with token
// stale, unless another goroutine already replaced that token. Vault says
// "invalid token" for an expired or revoked token; without that hint (older
// Vaults) a token younger than freshToken is taken to be denied by policy. It reports
// whether a retry may help. The renewal goroutine is told to watch the new
// token.
func (c *Client) reloginAfterDenied(ctx context.Context, stale string, invalidToken bool) bool {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.api.Token() != stale {
		return true
	}
	c.authMu.Lock()
	age := time.Since(c.authAt)
	c.authMu.Unlock()
	if !invalidToken && age < freshToken {
		return false // a fresh, valid token denied: a policy matter
	}
	if _, err := c.login(ctx); err != nil {
		c.log.Warn("vault login after permission denied failed", "err", err)
		return false
	}
	if c.api.Token() == stale {
		return false // same token (TokenAuth): the denial is a policy matter
	}
	c.log.Info("vault token was refused; logged in again")
	select {
	case c.relogged <- struct{}{}:
	default:
	}
	return true
}

// Re-login backoff bounds: quick enough to recover within seconds when Vault
// returns, slow enough not to hammer a sealed Vault.
const (
	reloginMinBackoff = 500 * time.Millisecond
	reloginMaxBackoff = 30 * time.Second
	// freshToken: a token younger than this that is denied without "invalid
	// token" is denied by policy, so logging in again would only mint tokens
	// in a loop.
	freshToken = 2 * time.Second
)

// keepAlive renews the token with api.LifetimeWatcher and logs in again
// whenever renewal ends (max TTL reached, token revoked, or renewal failing
// past the lease), until ctx ends. A token with no TTL (root) needs nothing.
func (c *Client) keepAlive(ctx context.Context, s *api.Secret) {
	lastLogin := time.Now()
	for {
		if s == nil {
			// A token that is still valid but close to its max TTL makes
			// the watcher return at once; space logins out so that case
			// does not spin.
			if wait := reloginMinBackoff - time.Since(lastLogin); wait > 0 {
				if !sleep(ctx, wait) {
					return
				}
			}
			s = c.reloginUntilOK(ctx)
			if s == nil {
				return // ctx done
			}
			lastLogin = time.Now()
		}
		if s.Auth == nil || s.Auth.LeaseDuration == 0 {
			// Non-expiring token: nothing to renew until a request-path
			// re-login installs another one.
			select {
			case <-ctx.Done():
				return
			case <-c.relogged:
				s = c.currentAuth()
				continue
			}
		}
		w, err := c.api.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
		if err != nil {
			c.log.Error("vault token watcher", "err", err)
			s = nil
			continue
		}
		go w.Start()
		s = c.watch(ctx, w)
		w.Stop()
		if ctx.Err() != nil {
			return
		}
	}
}

func (c *Client) currentAuth() *api.Secret {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return c.authSecret
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// watch waits for the watcher to end. It returns nil so the caller logs in
// again, or the new token's secret if a request already logged in again.
func (c *Client) watch(ctx context.Context, w *api.LifetimeWatcher) *api.Secret {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.relogged:
			return c.currentAuth()
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				c.log.Debug("vault token renewed", "ttl_seconds", r.Secret.Auth.LeaseDuration)
			}
		case err := <-w.DoneCh():
			if err != nil {
				c.log.Warn("vault token renewal ended; logging in again", "err", err)
			} else {
				c.log.Info("vault token reached its renewal limit; logging in again")
			}
			return nil
		}
	}
}

func (c *Client) reloginUntilOK(ctx context.Context) *api.Secret {
	wait := reloginMinBackoff
	for {
		c.loginMu.Lock()
		s, err := c.login(ctx)
		c.loginMu.Unlock()
		if err == nil {
			c.log.Info("vault login succeeded")
			return s
		}
		c.log.Warn("vault login failed; retrying", "err", err, "retry_in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, reloginMaxBackoff)
	}
}
