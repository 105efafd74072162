package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint defaults. The pipeline signs a checkpoint whenever either
// threshold is crossed, and on demand (export, API).
const (
	// DefaultCheckpointEntries bounds how many entries can be appended
	// without a signed checkpoint: 1,000 keeps the unsigned tail small while
	// signing at most a few times per second at peak load.
	DefaultCheckpointEntries = 1000
	// DefaultCheckpointIntervalSeconds bounds how long an entry can stay
	// outside a signed checkpoint on a quiet log; 10 s is short enough that
	// an operator cannot quietly rewrite recent history.
	DefaultCheckpointIntervalSeconds = 10
)

// Checkpoint is a commitment to the first Size entries of one org's log, in
// the C2SP tlog-checkpoint format (https://c2sp.org/tlog-checkpoint):
//
//	<origin>\n
//	<size, decimal>\n
//	<root hash, standard base64>\n
//
// wrapped in a C2SP signed note (golang.org/x/mod/sumdb/note, Ed25519).
type Checkpoint struct {
	// Origin names the log: "<host>/<org>", e.g. "herald.example/org_demo".
	// A verifier MUST check it is the log it expects.
	Origin string
	// Size is the number of entries committed to (entries 0..Size-1).
	Size uint64
	// Root is the RFC 6962 Merkle root of those entries (32 bytes).
	Root []byte
}

// Origin returns the checkpoint origin line for org's log on host.
func Origin(host, org string) string { return host + "/" + org }

// Marshal returns the checkpoint body (the signed-note text).
func (c Checkpoint) Marshal() ([]byte, error) {
	if err := checkOrigin(c.Origin); err != nil {
		return nil, err
	}
	if len(c.Root) != HashSize {
		return nil, fmt.Errorf("ledger: checkpoint %q size %d: root is %d bytes, want %d", c.Origin, c.Size, len(c.Root), HashSize)
	}
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root)), nil
}

func checkOrigin(o string) error {
	if o == "" || strings.TrimSpace(o) != o || strings.ContainsAny(o, "\n\r") || !utf8.ValidString(o) {
		return fmt.Errorf("ledger: invalid checkpoint origin %q", o)
	}
	return nil
}

// ParseCheckpoint parses a checkpoint body (note text, signatures already
// stripped). Herald writes no extension lines and this parser rejects them,
// so a body has exactly three lines.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	s := string(text)
	if !strings.HasSuffix(s, "\n") {
		return Checkpoint{}, errors.New("ledger: checkpoint body is not newline-terminated")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 3 {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint body has %d lines, want 3 (origin, size, root)", len(lines))
	}
	if err := checkOrigin(lines[0]); err != nil {
		return Checkpoint{}, err
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint %q: invalid size line %q", lines[0], lines[1])
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != HashSize {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint %q size %d: invalid root line %q", lines[0], size, lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// Sign returns the signed note for cp. Any note.Signer works, so the key can
// live in Vault Transit (implement Name, KeyHash and Sign over the Transit
// API; the key hash is note's keyHash(name, 0x01 ‖ public key)).
func Sign(cp Checkpoint, signer note.Signer) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("ledger: sign checkpoint: nil signer")
	}
	text, err := cp.Marshal()
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign checkpoint %q size %d with key %s: %w", cp.Origin, cp.Size, signer.Name(), err)
	}
	return msg, nil
}

// ErrCheckpointSignature is wrapped by OpenCheckpoint when no trusted key
// signed the checkpoint, or a trusted key's signature is invalid.
var ErrCheckpointSignature = errors.New("ledger: checkpoint not signed by a trusted key")

// OpenCheckpoint verifies a signed checkpoint note against the trusted keys
// and parses it. At least one signature MUST verify with a key in verifiers;
// signatures by unknown keys are ignored, an invalid signature by a known key
// is an error. For key rotation pass every key ever used for the log (old
// checkpoints stay verifiable with their old key).
func OpenCheckpoint(msg []byte, verifiers note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var keys []string
			for _, s := range unverified.Note.UnverifiedSigs {
				keys = append(keys, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return Checkpoint{}, fmt.Errorf("%w: signed only by unknown key(s) %s", ErrCheckpointSignature, strings.Join(keys, ", "))
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrCheckpointSignature, err)
		}
		return Checkpoint{}, fmt.Errorf("ledger: open checkpoint note: %w", err)
	}
	return ParseCheckpoint([]byte(n.Text))
}

// GenerateKey returns a new Ed25519 signer key and verifier key in note
// format ("PRIVATE+KEY+<name>+<hash>+<key>" and "<name>+<hash>+<key>").
// name should identify the log and key generation, e.g.
// "herald.example/org_demo/2026-11". The verifier key is what
// GET /v1/ledger/keys publishes and `herald ledger verify --key` takes.
func GenerateKey(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("ledger: generate key %q: %w", name, err)
	}
	return skey, vkey, nil
}

// NewSigner parses a signer key from GenerateKey.
func NewSigner(skey string) (note.Signer, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("ledger: parse signer key: %w", err)
	}
	return s, nil
}

// NewVerifiers parses verifier keys (all keys of a log, current and
// retired) into the set OpenCheckpoint and Verify accept.
func NewVerifiers(vkeys ...string) (note.Verifiers, error) {
	if len(vkeys) == 0 {
		return nil, errors.New("ledger: no verifier keys")
	}
	list := make([]note.Verifier, 0, len(vkeys))
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("ledger: parse verifier key %q: %w", k, err)
		}
		list = append(list, v)
	}
	return note.VerifierList(list...), nil
}

// NewExternalSigner returns a note.Signer whose Ed25519 signatures come from
// sign, e.g. Vault Transit's sign endpoint (key type ed25519), so the private
// key never leaves the key store. pub is that key's public key; the verifier
// key to publish is returned with it. sign MUST return a plain 64-byte
// Ed25519 signature of msg.
func NewExternalSigner(name string, pub ed25519.PublicKey, sign func(msg []byte) ([]byte, error)) (signer note.Signer, vkey string, err error) {
	vkey, err = note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: external signer %q: %w", name, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: external signer %q: %w", name, err)
	}
	return &externalSigner{name: name, hash: v.KeyHash(), pub: pub, sign: sign}, vkey, nil
}

type externalSigner struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	sign func([]byte) ([]byte, error)
}

func (s *externalSigner) Name() string    { return s.name }
func (s *externalSigner) KeyHash() uint32 { return s.hash }

// Sign calls the external signer and checks the signature before use, so a
// misconfigured key store fails here rather than in every auditor's hands.
func (s *externalSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.sign(msg)
	if err != nil {
		return nil, fmt.Errorf("ledger: external signer %q: %w", s.name, err)
	}
	if !ed25519.Verify(s.pub, msg, sig) {
		return nil, fmt.Errorf("ledger: external signer %q returned a signature that does not verify with its public key", s.name)
	}
	return sig, nil
}
