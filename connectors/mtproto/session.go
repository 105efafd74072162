package mtproto

import (
	"context"
	"fmt"

	"github.com/gotd/td/session"

	"github.com/heraldhq/herald/connectors"
)

// sessionStorage adapts a SessionStore to gotd's session.Storage for one
// account. gotd saves the session (auth key, DC, salt) after each new
// connection; the bytes go to the secrets store only, and errors name the
// account, never the data.
type sessionStorage struct {
	store   SessionStore
	account connectors.Account
}

var _ session.Storage = sessionStorage{}

func (s sessionStorage) LoadSession(ctx context.Context) ([]byte, error) {
	data, err := s.store.Load(ctx, s.account)
	if err != nil {
		return nil, fmt.Errorf("load session of account %s: %w", s.account.ID, err)
	}
	if len(data) == 0 {
		return nil, session.ErrNotFound
	}
	return data, nil
}

func (s sessionStorage) StoreSession(ctx context.Context, data []byte) error {
	if err := s.store.Store(ctx, s.account, data); err != nil {
		return fmt.Errorf("store session of account %s: %w", s.account.ID, err)
	}
	return nil
}
