package local

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/secrets"
)

// seedField holds the base64 Ed25519 seed in the signing key's secret.
const seedField = "ed25519_seed"

// signTimeout bounds the store read behind note.Signer.Sign, which has no
// context of its own.
const signTimeout = 10 * time.Second

// SigningKey is a rotating Ed25519 checkpoint signing key kept in a
// secrets.Store (normally the local encrypted store), for installations
// without Vault Transit. Each KV version of Path is one key version.
type SigningKey struct {
	Store secrets.Store
	// Path is where the seed lives, e.g. "herald/ledger/checkpoint-key".
	Path string
	// Name is the note signer name, e.g. "herald.example.org/ledger".
	Name string
}

// Signer returns a note signer for the latest key version, creating version
// 1 on first use.
func (k SigningKey) Signer(ctx context.Context) (*Signer, error) {
	s, err := k.Store.Get(ctx, k.Path)
	if errors.Is(err, secrets.ErrNotFound) {
		if _, err := k.put(ctx, secrets.MustNotExist); err != nil && !errors.Is(err, secrets.ErrCASMismatch) {
			return nil, err
		}
		s, err = k.Store.Get(ctx, k.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", k.Path, err)
	}
	priv, err := privateKey(s)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	clear(priv)
	vkey, err := note.NewEd25519VerifierKey(k.Name, pub)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", k.Path, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", k.Path, err)
	}
	return &Signer{key: k, version: s.Version, vkey: vkey, hash: v.KeyHash()}, nil
}

// Rotate adds a new key version; signatures made with older versions keep
// verifying with their published verifier keys.
func (k SigningKey) Rotate(ctx context.Context) (oldVersion, newVersion int, err error) {
	cur, err := k.Store.Versions(ctx, k.Path)
	if err != nil && !errors.Is(err, secrets.ErrNotFound) {
		return 0, 0, fmt.Errorf("rotate signing key %q: %w", k.Path, err)
	}
	s, err := k.put(ctx, cur)
	if err != nil {
		return 0, 0, err
	}
	return cur, s.Version, nil
}

// PublicKeys returns the public key of every version.
func (k SigningKey) PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error) {
	cur, err := k.Store.Versions(ctx, k.Path)
	if err != nil {
		return nil, fmt.Errorf("signing key %q: %w", k.Path, err)
	}
	out := make(map[int]ed25519.PublicKey, cur)
	for v := 1; v <= cur; v++ {
		s, err := k.Store.GetVersion(ctx, k.Path, v)
		if errors.Is(err, secrets.ErrNotFound) {
			continue // version deleted
		}
		if err != nil {
			return nil, fmt.Errorf("signing key %q version %d: %w", k.Path, v, err)
		}
		priv, err := privateKey(s)
		if err != nil {
			return nil, err
		}
		out[v] = priv.Public().(ed25519.PublicKey)
		clear(priv)
	}
	return out, nil
}

func (k SigningKey) put(ctx context.Context, cas int) (secrets.Secret, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return secrets.Secret{}, fmt.Errorf("signing key %q: generate: %w", k.Path, err)
	}
	s, err := k.Store.Put(ctx, k.Path, map[string]string{seedField: base64.StdEncoding.EncodeToString(seed)}, cas)
	clear(seed)
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("signing key %q: write new version: %w", k.Path, err)
	}
	return s, nil
}

func privateKey(s secrets.Secret) (ed25519.PrivateKey, error) {
	seed, err := base64.StdEncoding.DecodeString(s.Data[seedField])
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key %q version %d is malformed", s.Path, s.Version)
	}
	defer clear(seed)
	return ed25519.NewKeyFromSeed(seed), nil
}

// Signer is a note.Signer pinned to one key version. It reads the seed from
// the store for each signature instead of holding it.
type Signer struct {
	key     SigningKey
	version int
	vkey    string
	hash    uint32
}

// Name implements note.Signer.
func (s *Signer) Name() string { return s.key.Name }

// KeyHash implements note.Signer.
func (s *Signer) KeyHash() uint32 { return s.hash }

// KeyVersion is the key version this signer signs with.
func (s *Signer) KeyVersion() int { return s.version }

// VerifierKey is the note verifier key of this version.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign implements note.Signer.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), signTimeout)
	defer cancel()
	return s.SignContext(ctx, msg)
}

// SignContext signs msg with the pinned key version.
func (s *Signer) SignContext(ctx context.Context, msg []byte) ([]byte, error) {
	sec, err := s.key.Store.GetVersion(ctx, s.key.Path, s.version)
	if err != nil {
		return nil, fmt.Errorf("sign with %q version %d: %w", s.key.Path, s.version, err)
	}
	priv, err := privateKey(sec)
	if err != nil {
		return nil, err
	}
	defer clear(priv)
	return ed25519.Sign(priv, msg), nil
}

var (
	_ secrets.NoteSigner      = (*Signer)(nil)
	_ secrets.PublicKeySource = SigningKey{}
)
