package botapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/secrets"
)

// SecretTokenKey is the key of a bot token in its account's secret.
const SecretTokenKey = "token"

// SecretReader reads secrets; secrets.Store and secrets.CachedStore satisfy it.
type SecretReader interface {
	Get(ctx context.Context, path string) (secrets.Secret, error)
}

// SecretTokens reads bot tokens from the secret store at the account's
// SecretRef. Tokens are fetched per send (through the store's short cache),
// never kept for the process lifetime, so a rotated token written by the
// operator is used on the next send without a restart.
type SecretTokens struct {
	Store SecretReader
	// Invalidate drops a cached path (secrets.CachedStore.Invalidate); it is
	// called before the re-read that follows a 401.
	Invalidate func(path string)
}

// BotToken implements TokenSource.
func (s SecretTokens) BotToken(ctx context.Context, a connectors.Account) (string, error) {
	if a.SecretRef == "" {
		return "", &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s has no bot token in the secret store", a.ID)}
	}
	sec, err := s.Store.Get(ctx, a.SecretRef)
	switch {
	case errors.Is(err, secrets.ErrNotFound):
		return "", &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s: secret %s not found", a.ID, a.SecretRef)}
	case err != nil:
		// Vault sealed or unreachable: wait, never send with a stale token.
		return "", &connectors.RetryableError{Scope: "secret:" + a.ID, Err: fmt.Errorf("read bot token of account %s: %w", a.ID, err)}
	}
	tok := sec.Data[SecretTokenKey]
	if tok == "" {
		return "", &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s: secret has no %q", a.ID, SecretTokenKey)}
	}
	return tok, nil
}

// Refresh implements Refresher: after a 401 the token is read again,
// bypassing the cache, before the account is stopped.
func (s SecretTokens) Refresh(ctx context.Context, a connectors.Account) (string, error) {
	if s.Invalidate != nil {
		s.Invalidate(a.SecretRef)
	}
	return s.BotToken(ctx, a)
}
