package mtproto

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/secrets"
)

// Keys of an MTProto account's secret (at its SecretRef), and the suffix of
// the path its session is kept at.
const (
	SecretAppID    = "api_id"
	SecretAppHash  = "api_hash"
	SecretBotToken = "bot_token"
	SessionSuffix  = "/session"
	sessionKey     = "data"
)

// SecretStore keeps an account's credentials and its MTProto session in
// the secret store: never in a plain file or the database. The session is
// versioned like any secret, so a bad write can be rolled back.
type SecretStore struct {
	Secrets secrets.Store
}

var (
	_ Credentials  = SecretStore{}
	_ SessionStore = SecretStore{}
)

func (s SecretStore) read(ctx context.Context, a connectors.Account) (map[string]string, error) {
	if a.SecretRef == "" {
		return nil, &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s has no credentials in the secret store", a.ID)}
	}
	sec, err := s.Secrets.Get(ctx, a.SecretRef)
	switch {
	case errors.Is(err, secrets.ErrNotFound):
		return nil, &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s: secret not found", a.ID)}
	case err != nil:
		return nil, &connectors.RetryableError{Scope: "secret:" + a.ID, Err: fmt.Errorf("read credentials of account %s: %w", a.ID, err)}
	}
	return sec.Data, nil
}

// AppCredentials implements Credentials.
func (s SecretStore) AppCredentials(ctx context.Context, a connectors.Account) (int, string, error) {
	d, err := s.read(ctx, a)
	if err != nil {
		return 0, "", err
	}
	id, err := strconv.Atoi(d[SecretAppID])
	if err != nil || id <= 0 || d[SecretAppHash] == "" {
		return 0, "", &connectors.AccountStopError{Code: "no_secret", Err: fmt.Errorf("account %s: api_id/api_hash missing or malformed", a.ID)}
	}
	return id, d[SecretAppHash], nil
}

// BotToken implements Credentials ("" for a user account).
func (s SecretStore) BotToken(ctx context.Context, a connectors.Account) (string, error) {
	d, err := s.read(ctx, a)
	if err != nil {
		return "", err
	}
	return d[SecretBotToken], nil
}

// Load implements SessionStore: nil when the account has no session yet.
func (s SecretStore) Load(ctx context.Context, a connectors.Account) ([]byte, error) {
	sec, err := s.Secrets.Get(ctx, a.SecretRef+SessionSuffix)
	switch {
	case errors.Is(err, secrets.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, &connectors.RetryableError{Scope: "secret:" + a.ID, Err: fmt.Errorf("load session of account %s: %w", a.ID, err)}
	}
	return base64.StdEncoding.DecodeString(sec.Data[sessionKey])
}

// Store implements SessionStore.
func (s SecretStore) Store(ctx context.Context, a connectors.Account, data []byte) error {
	if _, err := s.Secrets.Put(ctx, a.SecretRef+SessionSuffix, map[string]string{sessionKey: base64.StdEncoding.EncodeToString(data)}, secrets.NoCAS); err != nil {
		return fmt.Errorf("store session of account %s: %w", a.ID, err)
	}
	return nil
}
