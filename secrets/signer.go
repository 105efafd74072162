package secrets

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"
)

// NoteSigner signs ledger checkpoints in the C2SP signed-note format.
//
// A NoteSigner is pinned to one key version: Name and KeyHash describe that
// version's public key, so a note signed with it verifies with that version's
// verifier key even after the key has been rotated. Create a new NoteSigner
// after a rotation to sign with the new version.
type NoteSigner interface {
	note.Signer
	// KeyVersion is the version of the key this signer signs with.
	KeyVersion() int
	// VerifierKey is the note verifier key ("name+hash+base64") of that
	// version.
	VerifierKey() string
}

// PublicKeySource lists every version of a rotating Ed25519 signing key.
type PublicKeySource interface {
	PublicKeys(ctx context.Context) (map[int]ed25519.PublicKey, error)
}

// VerifierKeys returns the note verifier key of every version in pubs, keyed
// by version. Publish them all: a checkpoint signed before a rotation
// verifies only with the key version it was signed with.
func VerifierKeys(name string, pubs map[int]ed25519.PublicKey) (map[int]string, error) {
	out := make(map[int]string, len(pubs))
	for v, pub := range pubs {
		vk, err := note.NewEd25519VerifierKey(name, pub)
		if err != nil {
			return nil, fmt.Errorf("secrets: verifier key %q version %d: %w", name, v, err)
		}
		out[v] = vk
	}
	return out, nil
}

// NoteVerifiers turns verifier keys into a note.Verifiers that accepts a
// signature by any listed version, for note.Open.
func NoteVerifiers(vkeys map[int]string) (note.Verifiers, error) {
	versions := make([]int, 0, len(vkeys))
	for v := range vkeys {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	list := make([]note.Verifier, 0, len(versions))
	for _, v := range versions {
		ver, err := note.NewVerifier(vkeys[v])
		if err != nil {
			return nil, fmt.Errorf("secrets: verifier key version %d: %w", v, err)
		}
		list = append(list, ver)
	}
	return note.VerifierList(list...), nil
}
