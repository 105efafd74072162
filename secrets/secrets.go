// Package secrets is the one door through which Herald reads and writes the
// keys to the Telegram identities it holds: bot tokens, MTProto sessions and
// api hashes, the ledger checkpoint signing key and the pseudonymisation
// pepper.
//
// Connectors, the ledger and the pseudonymiser consume the [Store] interface;
// two implementations satisfy it and pass the same conformance suite
// (secrets/storetest):
//
//   - secrets/vault: HashiCorp Vault (KV v2, Transit, AppRole or token auth
//     with renewal) for production;
//   - secrets/local: an age-encrypted file in the data directory, the
//     embedded default.
//
// The contract every implementation and every caller keeps:
//
//   - A secret value MUST NOT appear in an error string, a log record, a
//     panic, a metric label or the ledger. Errors name the path and version,
//     never the data. [Secret] redacts its Data in every fmt verb, in
//     log/slog and in encoding/json.
//   - Secrets are versioned. Every Put creates a new version; old versions
//     stay readable with GetVersion so that references made with an old
//     version (pepper refs, signatures) stay resolvable after rotation.
//   - Writes may be conditional (check-and-set) so that two writers never
//     silently overwrite each other.
//   - A store that cannot be reached (Vault sealed, down, or paused) returns
//     an error wrapping [ErrUnavailable]: the caller waits and retries, it
//     MUST NOT fall back to a stale value (a revoked bot token must never be
//     used again).
//   - Values are fetched per use. [Cached] bounds how long a value stays in
//     memory; nothing holds a secret for the process lifetime.
package secrets

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap them with the operation and path
// (never the value) so callers test with errors.Is.
var (
	// ErrNotFound: the path, or the requested version of it, does not exist
	// (or that version was deleted).
	ErrNotFound = errors.New("secret not found")

	// ErrCASMismatch: a conditional Put found a different current version
	// than the caller expected. Re-read and decide again.
	ErrCASMismatch = errors.New("secret check-and-set mismatch")

	// ErrUnavailable: the store is sealed, unreachable or timed out. Retry
	// later. For a read nothing happened. For a Put the outcome is unknown
	// (the request may have reached the store and been applied after the
	// timeout): retry with the same cas — ErrCASMismatch then means the
	// first attempt was applied; re-read.
	ErrUnavailable = errors.New("secret store unavailable")

	// ErrPermissionDenied: the store refused the credentials (expired token,
	// missing policy). Retrying helps only after re-authentication.
	ErrPermissionDenied = errors.New("secret store permission denied")
)

// CAS values for [Store.Put].
const (
	// NoCAS writes unconditionally.
	NoCAS = -1
	// MustNotExist writes only if the path has no version yet.
	MustNotExist = 0
)

// Secret is one version of the key/value data stored at a path.
//
// Data holds the values; the methods in format.go make sure they never reach
// a log line or an error string through fmt, log/slog or encoding/json.
type Secret struct {
	Path      string
	Version   int
	Data      map[string]string
	UpdatedAt time.Time
}

// Store is a versioned key/value secret store.
//
// Paths are slash-separated, without leading or trailing slash, e.g.
// "herald/orgs/acme/accounts/42/bot_token". Versions start at 1.
type Store interface {
	// Get returns the latest version of path.
	Get(ctx context.Context, path string) (Secret, error)

	// GetVersion returns one version of path.
	GetVersion(ctx context.Context, path string, version int) (Secret, error)

	// Put writes data as a new version of path. cas is NoCAS (-1) for no
	// check, MustNotExist (0) to create only, or n to require that the
	// current version is n; otherwise it fails with ErrCASMismatch. The
	// returned Secret carries Path, Version and UpdatedAt, not Data: a
	// write never echoes the value back.
	Put(ctx context.Context, path string, data map[string]string, cas int) (Secret, error)

	// Versions returns the current (latest) version of path.
	Versions(ctx context.Context, path string) (current int, err error)
}

// Clone returns a copy of s whose Data map the caller may modify freely.
func (s Secret) Clone() Secret {
	c := s
	if s.Data != nil {
		c.Data = make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			c.Data[k] = v
		}
	}
	return c
}
