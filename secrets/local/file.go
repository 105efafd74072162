package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/heraldhq/herald/secrets"
)

// formatVersion is bumped when the plaintext layout changes.
const formatVersion = 1

// file is the plaintext inside secrets.age. It exists only in memory for the
// duration of one operation.
type file struct {
	Format  int               `json:"format"`
	Secrets map[string]*entry `json:"secrets"`
}

type entry struct {
	Versions []version `json:"versions"` // ascending
}

type version struct {
	Version int               `json:"version"`
	Data    map[string]string `json:"data"`
	Created time.Time         `json:"created"`
}

func (v version) secret(path string) secrets.Secret {
	return secrets.Secret{Path: path, Version: v.Version, Data: copyData(v.Data), UpdatedAt: v.Created}
}

func copyData(d map[string]string) map[string]string {
	out := make(map[string]string, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}

// read runs fn on the decrypted file under a shared lock.
func (s *Store) read(ctx context.Context, fn func(*file) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.lockPath, false)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.load()
	if err != nil {
		return err
	}
	return fn(f)
}

// update runs fn on the decrypted file under an exclusive lock and writes the
// result atomically if fn succeeds.
func (s *Store) update(ctx context.Context, fn func(*file) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.lockPath, true)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		return err
	}
	return s.save(f)
}

func (s *Store) load() (*file, error) {
	raw, err := os.ReadFile(s.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return &file{Format: formatVersion, Secrets: map[string]*entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("local secrets: read %s: %w", s.Path(), err)
	}
	r, err := age.Decrypt(bytes.NewReader(raw), s.identity)
	if err != nil {
		return nil, fmt.Errorf("local secrets: decrypt %s (wrong %s?): %w", s.Path(), KeyFile, err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("local secrets: decrypt %s: %w", s.Path(), err)
	}
	var f file
	if err := json.Unmarshal(plain, &f); err != nil {
		// json errors can quote input: do not wrap it.
		return nil, fmt.Errorf("local secrets: %s is corrupt (invalid JSON after decryption)", s.Path())
	}
	clear(plain)
	if f.Format != formatVersion {
		return nil, fmt.Errorf("local secrets: %s has format %d, this build reads %d", s.Path(), f.Format, formatVersion)
	}
	if f.Secrets == nil {
		f.Secrets = map[string]*entry{}
	}
	return &f, nil
}

// save encrypts f to a temporary file in the same directory, syncs it and
// renames it over the store file, then syncs the directory: a crash leaves
// either the old or the new file, never a torn one.
func (s *Store) save(f *file) error {
	plain, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("local secrets: encode store: %w", err)
	}
	defer clear(plain)

	tmp, err := os.CreateTemp(s.dir, ".secrets-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("local secrets: create temp file: %w", err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("local secrets: chmod temp file: %w", err)
	}
	w, err := age.Encrypt(tmp, s.recipient)
	if err != nil {
		return fmt.Errorf("local secrets: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return fmt.Errorf("local secrets: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("local secrets: encrypt: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("local secrets: sync temp file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("local secrets: close temp file: %w", err)
	}
	if err := os.Rename(tmpName, s.Path()); err != nil {
		return fmt.Errorf("local secrets: replace %s: %w", s.Path(), err)
	}
	committed = true
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("local secrets: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("local secrets: sync dir %s: %w", dir, err)
	}
	return nil
}

// loadOrCreateKey reads the identity, or creates it with O_EXCL so that two
// processes starting together never end up with different keys.
func loadOrCreateKey(path string) (*age.X25519Identity, error) {
	for range 2 {
		id, err := readKey(path)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return id, err
		}
		id, err = age.GenerateX25519Identity()
		if err != nil {
			return nil, fmt.Errorf("local secrets: generate key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // another process won; read its key
		}
		if err != nil {
			return nil, fmt.Errorf("local secrets: create key file %s: %w", path, err)
		}
		_, werr := f.WriteString("# herald local secret store key; keep private\n" + id.String() + "\n")
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("local secrets: write key file %s: %w", path, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return nil, err
		}
		return id, nil
	}
	return readKey(path)
}

func readKey(path string) (*age.X25519Identity, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("local secrets: key file %s has mode %04o; it must not be readable by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local secrets: read key file %s: %w", path, err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(raw))
	if err != nil || len(ids) != 1 {
		// Do not wrap: the parser may quote key material.
		return nil, fmt.Errorf("local secrets: key file %s does not hold exactly one age identity", path)
	}
	id, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("local secrets: key file %s does not hold an X25519 identity", path)
	}
	return id, nil
}
