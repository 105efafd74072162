package vault

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/secrets"
)

// TransitSigningKey is an Ed25519 Transit key that signs ledger checkpoints.
// The private key never leaves Vault: Herald sends the note text and gets a
// signature back. Each Transit key version is one note key; publish the
// verifier keys of all versions (VerifierKeys) so checkpoints signed before
// a rotation keep verifying.
type TransitSigningKey struct {
	Client *Client
	Key    string // Transit key name, e.g. "herald-checkpoints"
	Name   string // note signer name, e.g. "herald.example.org/ledger"
}

// Ensure creates the Ed25519 key if it does not exist.
func (k TransitSigningKey) Ensure(ctx context.Context) error {
	return k.Client.CreateKey(ctx, k.Key, KeyEd25519)
}

// Rotate adds a key version; new signers sign with it.
func (k TransitSigningKey) Rotate(ctx context.Context) (oldVersion, newVersion int, err error) {
	return k.Client.RotateKey(ctx, k.Key)
}

// PublicKeys returns the Ed25519 public key of every key version Vault still
// holds.
func (k TransitSigningKey) PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error) {
	data, err := k.Client.readKey(ctx, k.Key)
	if err != nil {
		return nil, err
	}
	if t, _ := data["type"].(string); t != KeyEd25519 {
		return nil, fmt.Errorf("vault: transit key %s is %q, want %q", k.Key, t, KeyEd25519)
	}
	keys, _ := data["keys"].(map[string]any)
	out := make(map[int]ed25519.PublicKey, len(keys))
	for vs, raw := range keys {
		v, err := strconv.Atoi(vs)
		if err != nil {
			return nil, fmt.Errorf("vault: transit key %s: version %q: %w", k.Key, vs, err)
		}
		m, _ := raw.(map[string]any)
		b64, _ := m["public_key"].(string)
		pub, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("vault: transit key %s version %d: malformed public key", k.Key, v)
		}
		out[v] = ed25519.PublicKey(pub)
	}
	return out, nil
}

// VerifierKeys returns the note verifier key of every version.
func (k TransitSigningKey) VerifierKeys(ctx context.Context) (map[int]string, error) {
	pubs, err := k.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	return secrets.VerifierKeys(k.Name, pubs)
}

// Signer returns a note signer pinned to the key's latest version. Pinning
// keeps KeyHash and the signature consistent if the key is rotated while a
// note is being signed; take a new Signer after a rotation.
func (k TransitSigningKey) Signer(ctx context.Context) (*Signer, error) {
	info, err := k.Client.KeyInfo(ctx, k.Key)
	if err != nil {
		return nil, err
	}
	pubs, err := k.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	pub, ok := pubs[info.LatestVersion]
	if !ok {
		return nil, fmt.Errorf("vault: transit key %s: no public key for latest version %d", k.Key, info.LatestVersion)
	}
	vkey, err := note.NewEd25519VerifierKey(k.Name, pub)
	if err != nil {
		return nil, fmt.Errorf("vault: transit key %s: %w", k.Key, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("vault: transit key %s: %w", k.Key, err)
	}
	return &Signer{key: k, version: info.LatestVersion, pub: pub, vkey: vkey, hash: v.KeyHash()}, nil
}

// Signer is a note.Signer backed by Vault Transit, pinned to one key
// version.
type Signer struct {
	key     TransitSigningKey
	version int
	pub     ed25519.PublicKey
	vkey    string
	hash    uint32
}

var (
	_ secrets.NoteSigner      = (*Signer)(nil)
	_ secrets.PublicKeySource = TransitSigningKey{}
)

// Name implements note.Signer.
func (s *Signer) Name() string { return s.key.Name }

// KeyHash implements note.Signer.
func (s *Signer) KeyHash() uint32 { return s.hash }

// KeyVersion is the Transit key version this signer uses.
func (s *Signer) KeyVersion() int { return s.version }

// VerifierKey is the note verifier key of that version.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign implements note.Signer; it is bounded by the client's timeout because
// note.Signer has no context.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	return s.SignContext(context.Background(), msg)
}

// SignContext asks Vault to sign msg with the pinned key version and checks
// the signature against the version's public key before returning it, so a
// misconfigured key (prehashed, wrong type) fails here and not in an
// auditor's verifier.
func (s *Signer) SignContext(ctx context.Context, msg []byte) ([]byte, error) {
	c := s.key.Client
	path := c.transit + "/sign/" + s.key.Key
	resp, err := c.write(ctx, path, map[string]any{
		"input":       base64.StdEncoding.EncodeToString(msg),
		"key_version": s.version,
	})
	if err != nil {
		return nil, wrapErr(ctx, fmt.Sprintf("sign with version %d of", s.version), c.transit+"/keys/"+s.key.Key, err)
	}
	raw, _ := dataString(resp, "signature")
	sig, err := parseSignature(raw, s.version)
	if err != nil {
		return nil, fmt.Errorf("vault: sign with %s/keys/%s: %w", c.transit, s.key.Key, err)
	}
	if !ed25519.Verify(s.pub, msg, sig) {
		return nil, fmt.Errorf("vault: sign with %s/keys/%s version %d: signature does not verify with the published key", c.transit, s.key.Key, s.version)
	}
	return sig, nil
}

// parseSignature decodes Vault's "vault:v<N>:<base64>" signature.
func parseSignature(raw string, version int) ([]byte, error) {
	parts := strings.SplitN(raw, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || parts[1] != "v"+strconv.Itoa(version) {
		return nil, fmt.Errorf("unexpected signature format (want vault:v%d:…)", version)
	}
	sig, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("malformed signature")
	}
	return sig, nil
}
