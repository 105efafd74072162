// Package local is the embedded secret store: an age-encrypted file in the
// data directory, so that `herald serve` keeps bot tokens and sessions
// encrypted at rest on a fresh machine without Vault.
//
// Layout of the data directory:
//
//	secrets.key   the age X25519 identity, created on first start, mode 0600
//	secrets.age   every version of every secret, age-encrypted to that identity
//	secrets.lock  flock(2) target serialising processes (serve and the CLI)
//
// The store has the same semantics as the Vault store (versions, check-and-
// set, ErrNotFound) and passes the same conformance suite. Every operation
// reads the file afresh under the lock, so a secret written by `herald
// secrets put` in another process is seen by the next read, without restart.
//
// Protect secrets.key like the secrets themselves: whoever holds it and the
// store file holds every secret. Keep it off backups of secrets.age.
package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/heraldhq/herald/secrets"
)

// File names inside the data directory.
const (
	KeyFile   = "secrets.key"
	StoreFile = "secrets.age"
	LockFile  = "secrets.lock"
)

// Store is the age-encrypted file store. It is safe for concurrent use by
// goroutines and, through flock, by processes sharing the directory.
type Store struct {
	dir       string
	identity  *age.X25519Identity
	recipient *age.X25519Recipient
	lockPath  string

	mu  sync.Mutex // serialises goroutines; flock serialises processes
	now func() time.Time
}

// Open opens the store in dir, creating dir (0700) and the key file (0600)
// on first start. It refuses a key file readable by group or others.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local secrets: create data dir %q: %w", dir, err)
	}
	id, err := loadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, err
	}
	return &Store{
		dir:       dir,
		identity:  id,
		recipient: id.Recipient(),
		lockPath:  filepath.Join(dir, LockFile),
		now:       time.Now,
	}, nil
}

// Path returns the encrypted store file's path.
func (s *Store) Path() string { return filepath.Join(s.dir, StoreFile) }

// Get returns the latest version of path.
func (s *Store) Get(ctx context.Context, path string) (secrets.Secret, error) {
	var out secrets.Secret
	err := s.read(ctx, func(f *file) error {
		e, ok := f.Secrets[path]
		if !ok || len(e.Versions) == 0 {
			return fmt.Errorf("local secrets: get %q: %w", path, secrets.ErrNotFound)
		}
		out = e.Versions[len(e.Versions)-1].secret(path)
		return nil
	})
	return out, err
}

// GetVersion returns one version of path.
func (s *Store) GetVersion(ctx context.Context, path string, version int) (secrets.Secret, error) {
	var out secrets.Secret
	err := s.read(ctx, func(f *file) error {
		e, ok := f.Secrets[path]
		if !ok {
			return fmt.Errorf("local secrets: get %q version %d: %w", path, version, secrets.ErrNotFound)
		}
		for _, v := range e.Versions {
			if v.Version == version {
				out = v.secret(path)
				return nil
			}
		}
		return fmt.Errorf("local secrets: get %q version %d: %w", path, version, secrets.ErrNotFound)
	})
	return out, err
}

// Versions returns the current version of path.
func (s *Store) Versions(ctx context.Context, path string) (int, error) {
	var cur int
	err := s.read(ctx, func(f *file) error {
		e, ok := f.Secrets[path]
		if !ok || len(e.Versions) == 0 {
			return fmt.Errorf("local secrets: versions of %q: %w", path, secrets.ErrNotFound)
		}
		cur = e.Versions[len(e.Versions)-1].Version
		return nil
	})
	return cur, err
}

// Put writes data as a new version of path; see secrets.Store.
func (s *Store) Put(ctx context.Context, path string, data map[string]string, cas int) (secrets.Secret, error) {
	if path == "" {
		return secrets.Secret{}, fmt.Errorf("local secrets: put: empty path")
	}
	var out secrets.Secret
	err := s.update(ctx, func(f *file) error {
		e := f.Secrets[path]
		cur := 0
		if e != nil && len(e.Versions) > 0 {
			cur = e.Versions[len(e.Versions)-1].Version
		}
		if cas >= 0 && cas != cur {
			return fmt.Errorf("local secrets: put %q with cas %d, current version %d: %w", path, cas, cur, secrets.ErrCASMismatch)
		}
		if e == nil {
			e = &entry{}
			f.Secrets[path] = e
		}
		v := version{Version: cur + 1, Data: copyData(data), Created: s.now().UTC()}
		e.Versions = append(e.Versions, v)
		out = v.secret(path)
		out.Data = nil // Put returns the version, not the value
		return nil
	})
	return out, err
}

var _ secrets.Store = (*Store)(nil)
