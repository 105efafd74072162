package secrets

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pepperField is the data field holding the hex-encoded pepper.
const pepperField = "key"

// pepperBytes is the pepper length: the HMAC-SHA-256 block-size-safe 256
// bits, the same strength as the hash.
const pepperBytes = 32

// PepperPath is where an organisation's pseudonymisation pepper lives. One
// pepper per organisation keeps tenants' pseudonyms unlinkable.
func PepperPath(org string) string { return "herald/orgs/" + org + "/pepper" }

// Pseudonymizer turns personal identifiers (phone numbers, Telegram user
// ids, names) into keyed hashes for the ledger and logs.
//
// A ref is "v<version>:<hex HMAC-SHA-256>" where version is the KV version
// of the org's pepper: the version is the key id, so a ref made before a
// rotation is still checked and reproduced with the pepper it was made with
// (old versions stay readable in the store for the retention period).
//
// The pepper is read per use through Store (wrap it with Cached) and created
// on first use.
type Pseudonymizer struct {
	Store Store
}

// Ref returns the pseudonymous reference of value of the given kind (e.g.
// "phone", "tg_user") under the org's current pepper.
func (p Pseudonymizer) Ref(ctx context.Context, org, kind, value string) (string, error) {
	s, err := p.current(ctx, org)
	if err != nil {
		return "", err
	}
	return refWith(s, kind, value)
}

// RefVersion recomputes the ref of value under a specific pepper version,
// e.g. to find ledger entries written before a rotation.
func (p Pseudonymizer) RefVersion(ctx context.Context, org, kind, value string, version int) (string, error) {
	s, err := p.Store.GetVersion(ctx, PepperPath(org), version)
	if err != nil {
		return "", fmt.Errorf("pseudonymizer: read pepper of org %q version %d: %w", org, version, err)
	}
	return refWith(s, kind, value)
}

// Match reports whether ref is the reference of value, whatever pepper
// version ref was made with.
func (p Pseudonymizer) Match(ctx context.Context, org, kind, value, ref string) (bool, error) {
	v, _, err := ParseRef(ref)
	if err != nil {
		return false, err
	}
	want, err := p.RefVersion(ctx, org, kind, value, v)
	if err != nil {
		return false, err
	}
	return hmac.Equal([]byte(want), []byte(ref)), nil
}

// Rotate writes a new pepper version for org (creating the first one if
// none exists) and returns the old and new versions. New refs use the new
// version at once; old refs stay resolvable.
func (p Pseudonymizer) Rotate(ctx context.Context, org string) (oldVersion, newVersion int, err error) {
	path := PepperPath(org)
	cur, err := p.Store.Versions(ctx, path)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, 0, fmt.Errorf("pseudonymizer: rotate pepper of org %q: %w", org, err)
	}
	key, err := newPepper()
	if err != nil {
		return 0, 0, err
	}
	s, err := p.Store.Put(ctx, path, map[string]string{pepperField: key}, cur)
	if err != nil {
		return 0, 0, fmt.Errorf("pseudonymizer: rotate pepper of org %q from version %d: %w", org, cur, err)
	}
	return cur, s.Version, nil
}

// ParseRef splits a ref into its pepper version and hex digest.
func ParseRef(ref string) (version int, digest string, err error) {
	vs, digest, ok := strings.Cut(ref, ":")
	if !ok || !strings.HasPrefix(vs, "v") {
		return 0, "", fmt.Errorf("pseudonymizer: malformed ref %q", ref)
	}
	version, err = strconv.Atoi(vs[1:])
	if err != nil || version < 1 || len(digest) != 2*sha256.Size {
		return 0, "", fmt.Errorf("pseudonymizer: malformed ref %q", ref)
	}
	return version, digest, nil
}

// current returns the latest pepper, creating version 1 on first use. Two
// replicas racing to create it both end up with the winner's pepper thanks to
// the MustNotExist check-and-set.
func (p Pseudonymizer) current(ctx context.Context, org string) (Secret, error) {
	path := PepperPath(org)
	s, err := p.Store.Get(ctx, path)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Secret{}, fmt.Errorf("pseudonymizer: read pepper of org %q: %w", org, err)
	}
	key, err := newPepper()
	if err != nil {
		return Secret{}, err
	}
	if _, err := p.Store.Put(ctx, path, map[string]string{pepperField: key}, MustNotExist); err != nil && !errors.Is(err, ErrCASMismatch) {
		return Secret{}, fmt.Errorf("pseudonymizer: create pepper of org %q: %w", org, err)
	}
	s, err = p.Store.Get(ctx, path)
	if err != nil {
		return Secret{}, fmt.Errorf("pseudonymizer: read pepper of org %q: %w", org, err)
	}
	return s, nil
}

func newPepper() (string, error) {
	b := make([]byte, pepperBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pseudonymizer: generate pepper: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// refWith computes the ref with the pepper in s. kind and value are
// separated by a NUL so ("ab","c") and ("a","bc") never collide.
func refWith(s Secret, kind, value string) (string, error) {
	key, err := hex.DecodeString(s.Data[pepperField])
	if err != nil || len(key) < pepperBytes {
		// Do not echo the malformed pepper.
		return "", fmt.Errorf("pseudonymizer: pepper at %q version %d is malformed", s.Path, s.Version)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return "v" + strconv.Itoa(s.Version) + ":" + hex.EncodeToString(m.Sum(nil)), nil
}

// AllRefs returns value's reference under every pepper version of org,
// oldest first: erasure must find entries written before a rotation too.
func (p Pseudonymizer) AllRefs(ctx context.Context, org, kind, value string) ([]string, error) {
	cur, err := p.Store.Versions(ctx, PepperPath(org))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pseudonymizer: pepper versions of org %q: %w", org, err)
	}
	out := make([]string, 0, cur)
	for v := 1; v <= cur; v++ {
		r, err := p.RefVersion(ctx, org, kind, value, v)
		if errors.Is(err, ErrNotFound) {
			continue // a destroyed old version: nothing was kept under it
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
