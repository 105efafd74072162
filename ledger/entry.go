// Package ledger is Herald's write-ahead audit record: one append-only,
// hash-chained log per organisation, an RFC 6962 Merkle tree over the entry
// hashes, signed checkpoints in the C2SP signed-note format, a streaming
// JSONL export and an offline verifier that needs nothing but the export and
// the public key(s).
//
// The package is storage-agnostic: the store persists [Entry] values exactly
// as returned by [Genesis] and [Next] and hands them back in seq order. The
// durability contract (see [Next]) is what makes the log trustworthy:
//
//   - An entry MUST be written in the same database transaction as the state
//     change it records.
//   - Appends for one org MUST be serialised: the entry passed to [Next] MUST
//     be the latest committed entry of that org, read inside the appending
//     transaction (SELECT ... FOR UPDATE, or an equivalent per-org lock).
//   - Stored entries MUST NOT be updated or deleted (except by pruning behind a
//     signed anchor, see [Anchor]); every field MUST round-trip unchanged,
//     including Time at microsecond precision and Attrs as JSON.
//
// See docs/audit.md for the byte-exact formats.
package ledger

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// EntryDomainTag prefixes every entry-hash preimage so that an entry hash can
// never be confused with a hash of any other Herald (or foreign) structure.
const EntryDomainTag = "herald.ledger.entry.v1\x00"

// PayloadDomainTag prefixes every payload-hash preimage, for the same reason
// as [EntryDomainTag].
const PayloadDomainTag = "herald.ledger.payload.v1\x00"

// SaltSize is the length of a payload salt in bytes: 128 bits makes guessing a
// purged payload back from its hash as hard as guessing the salt.
const SaltSize = 16

// HashSize is the size of an entry hash, a payload hash and a Merkle node.
const HashSize = sha256.Size

// ZeroHash is the PrevHash of a genesis entry: 64 hex zeros.
var ZeroHash = strings.Repeat("0", 2*HashSize)

// TimeFormat is the textual form of Entry.Time inside the hash preimage and
// in exports: UTC with exactly six fractional digits, because PostgreSQL
// keeps microseconds and a fixed width is trivial to reproduce in any
// language.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// GenesisActor is the actor of entries written by Herald itself.
const GenesisActor = "system"

// Entry kinds. The list is open: Next accepts any non-empty kind, but Herald
// itself only writes these.
const (
	KindLedgerGenesis    = "ledger.genesis"
	KindLedgerCheckpoint = "ledger.checkpoint"

	KindActionReceived   = "action.received"
	KindActionDecided    = "action.decided"
	KindActionApproved   = "action.approved"
	KindActionRejected   = "action.rejected"
	KindActionOverridden = "action.overridden"
	KindActionScheduled  = "action.scheduled"
	KindActionSending    = "action.sending"
	KindActionDelivered  = "action.delivered"
	KindActionFailed     = "action.failed"
	KindActionUnknown    = "action.unknown"
	KindActionCancelled  = "action.cancelled"
	KindActionExpired    = "action.expired"
	KindActionDenied     = "action.denied"
	KindActionRetry      = "action.retry"

	KindPolicyUploaded  = "policy.uploaded"
	KindPolicyActivated = "policy.activated"

	KindAccessGranted = "access.granted"
	KindAccessRevoked = "access.revoked"

	KindContactImported = "contact.imported"
	KindContactOptedOut = "contact.opted_out"
	KindContactErased   = "contact.erased"

	KindSecretRotated = "secret.rotated"

	KindKeyCreated = "key.created"
	KindKeyRevoked = "key.revoked"

	KindAccountCreated = "account.created"
	KindAccountUpdated = "account.updated"
	KindAccountFrozen  = "account.frozen"
)

// Kinds lists every kind Herald writes, in a stable order.
func Kinds() []string {
	return []string{
		KindLedgerGenesis, KindLedgerCheckpoint,
		KindActionReceived, KindActionDecided, KindActionApproved, KindActionRejected,
		KindActionOverridden, KindActionScheduled, KindActionSending, KindActionDelivered,
		KindActionFailed, KindActionUnknown, KindActionCancelled, KindActionExpired,
		KindActionDenied, KindActionRetry,
		KindPolicyUploaded, KindPolicyActivated,
		KindAccessGranted, KindAccessRevoked,
		KindContactImported, KindContactOptedOut, KindContactErased,
		KindSecretRotated,
		KindKeyCreated, KindKeyRevoked,
		KindAccountCreated, KindAccountUpdated, KindAccountFrozen,
	}
}

// Entry is one record of an org's ledger.
//
// Refs carry pseudonymous ids only (keyed hashes of contacts, opaque action
// and policy ids) and Attrs small non-PII facts; message text and contact
// fields MUST NOT appear in an entry, they live in the payload table under
// PayloadHash so that retention and erasure can delete them while the chain
// still verifies.
//
// Attrs values MUST be JSON-compatible (string, bool, nil, numbers, []string,
// []any, map[string]any, or anything json.Marshal renders the same way). The
// hash is computed over the JSON form, so an entry read back from a JSON
// column (where integers become float64) hashes identically. Integers hash as
// JSON numbers per RFC 8785, i.e. through IEEE-754 doubles: integers beyond
// ±2^53 lose precision, store them as strings.
type Entry struct {
	Seq         uint64            `json:"seq"`                    // 0 = genesis
	Org         string            `json:"org"`                    //
	Time        time.Time         `json:"time"`                   // UTC, truncated to microseconds (PostgreSQL precision)
	Kind        string            `json:"kind"`                   // "ledger.genesis", "action.received", ...
	Actor       string            `json:"actor"`                  // principal id or "system"
	Refs        map[string]string `json:"refs,omitempty"`         // pseudonymous ids: action, account, contact_ref, policy, ...
	Attrs       map[string]any    `json:"attrs,omitempty"`        // small non-PII facts
	PayloadHash string            `json:"payload_hash,omitempty"` // hex, salted hash of a payload stored elsewhere
	PrevHash    string            `json:"prev_hash"`              // hex; 64 zeros for genesis
	Hash        string            `json:"hash"`                   // hex
}

// maxSafeSeq bounds Seq: RFC 8785 numbers are IEEE-754 doubles, so larger
// values would not round-trip through a verifier in another language.
const maxSafeSeq = 1<<53 - 1

// hashView is the hash preimage's JSON shape: Entry without Hash, with Time
// in TimeFormat.
type hashView struct {
	Seq         uint64            `json:"seq"`
	Org         string            `json:"org"`
	Time        string            `json:"time"`
	Kind        string            `json:"kind"`
	Actor       string            `json:"actor"`
	Refs        map[string]string `json:"refs,omitempty"`
	Attrs       map[string]any    `json:"attrs,omitempty"`
	PayloadHash string            `json:"payload_hash,omitempty"`
	PrevHash    string            `json:"prev_hash"`
}

// Validate checks the structural rules every stored entry obeys (everything
// but the hash itself). It does not check Hash.
func (e Entry) Validate() error {
	if e.Seq > maxSafeSeq {
		return fmt.Errorf("ledger: entry seq %d exceeds 2^53-1", e.Seq)
	}
	if e.Org == "" {
		return fmt.Errorf("ledger: entry %d: empty org", e.Seq)
	}
	if e.Kind == "" {
		return fmt.Errorf("ledger: entry %d: empty kind", e.Seq)
	}
	if e.Actor == "" {
		return fmt.Errorf("ledger: entry %d: empty actor", e.Seq)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("ledger: entry %d: zero time", e.Seq)
	}
	if e.Time.Nanosecond()%1000 != 0 {
		return fmt.Errorf("ledger: entry %d: time %s has sub-microsecond precision (use Time.Truncate(time.Microsecond))", e.Seq, e.Time.Format(time.RFC3339Nano))
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("ledger: entry %d: time year %d out of range", e.Seq, y)
	}
	for _, s := range []struct{ name, v string }{{"org", e.Org}, {"kind", e.Kind}, {"actor", e.Actor}} {
		if !utf8.ValidString(s.v) {
			return fmt.Errorf("ledger: entry %d: %s is not valid UTF-8", e.Seq, s.name)
		}
	}
	for k, v := range e.Refs {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("ledger: entry %d: ref %q is not valid UTF-8", e.Seq, k)
		}
	}
	if e.PayloadHash != "" && !isHexHash(e.PayloadHash) {
		return fmt.Errorf("ledger: entry %d: payload_hash %q is not 64 lowercase hex digits", e.Seq, e.PayloadHash)
	}
	if !isHexHash(e.PrevHash) {
		return fmt.Errorf("ledger: entry %d: prev_hash %q is not 64 lowercase hex digits", e.Seq, e.PrevHash)
	}
	if e.Seq == 0 && e.PrevHash != ZeroHash {
		return fmt.Errorf("ledger: genesis entry has prev_hash %s, want 64 zeros", e.PrevHash)
	}
	return nil
}

// CanonicalJSON returns the RFC 8785 form of the entry without its Hash
// field, with Time rendered in [TimeFormat]: the JSON part of the hash
// preimage.
func (e Entry) CanonicalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if b, ok := appendCanonicalFast(nil, &e); ok {
		return b, nil
	}
	return e.canonicalSlow()
}

// canonicalSlow is the reference canonicalisation: json.Marshal, then
// jcs.Transform. The fast path in canon.go MUST produce the same bytes.
func (e *Entry) canonicalSlow() ([]byte, error) {
	raw, err := json.Marshal(hashView{
		Seq: e.Seq, Org: e.Org, Time: e.Time.UTC().Format(TimeFormat), Kind: e.Kind, Actor: e.Actor,
		Refs: e.Refs, Attrs: e.Attrs, PayloadHash: e.PayloadHash, PrevHash: e.PrevHash,
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: entry %d: marshal: %w", e.Seq, err)
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("ledger: entry %d: canonicalise: %w", e.Seq, err)
	}
	return c, nil
}

// ComputeHash returns the hex entry hash:
//
//	SHA-256(EntryDomainTag ‖ prev_hash as 32 raw bytes ‖ JCS(entry without hash))
//
// It ignores the current value of e.Hash.
func (e Entry) ComputeHash() (string, error) {
	sum, err := e.computeHash()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

func (e *Entry) computeHash() ([HashSize]byte, error) {
	var sum [HashSize]byte
	if err := e.Validate(); err != nil {
		return sum, err
	}
	buf := make([]byte, 0, 512)
	buf = append(buf, EntryDomainTag...)
	buf, _ = hex.AppendDecode(buf, []byte(e.PrevHash)) // validated above
	if c, ok := appendCanonicalFast(buf, e); ok {
		buf = c
	} else {
		c, err := e.canonicalSlow()
		if err != nil {
			return sum, err
		}
		buf = append(buf, c...)
	}
	return sha256.Sum256(buf), nil
}

// Check recomputes the hash and reports whether it matches e.Hash.
func (e Entry) Check() error {
	h, err := e.ComputeHash()
	if err != nil {
		return err
	}
	if h != e.Hash {
		return fmt.Errorf("%w: entry %d: stored %s, recomputed %s", ErrHashMismatch, e.Seq, e.Hash, h)
	}
	return nil
}

// HashBytes returns the 32 raw bytes of e.Hash (the Merkle leaf data).
func (e Entry) HashBytes() ([]byte, error) {
	if !isHexHash(e.Hash) {
		return nil, fmt.Errorf("ledger: entry %d: hash %q is not 64 lowercase hex digits", e.Seq, e.Hash)
	}
	b, _ := hex.DecodeString(e.Hash)
	return b, nil
}

// Genesis returns the sealed seq-0 entry of org's ledger, written when the
// org is created. t is normalised to UTC and truncated to microseconds.
func Genesis(org string, t time.Time) (Entry, error) {
	e := Entry{
		Seq:      0,
		Org:      org,
		Time:     normTime(t),
		Kind:     KindLedgerGenesis,
		Actor:    GenesisActor,
		PrevHash: ZeroHash,
	}
	return seal(e)
}

// Next returns the sealed successor of prev: seq prev.Seq+1, same org,
// prev_hash = prev.Hash. t is normalised to UTC and truncated to
// microseconds; refs and attrs are shallow-copied (callers MUST NOT mutate
// nested attrs values afterwards).
//
// The caller MUST pass the latest committed entry of the org, read inside the
// same transaction that inserts the result, and MUST insert the result in the
// transaction of the change it records; two concurrent Next calls on the same
// prev produce a fork that the store's unique (org, seq) key MUST reject.
// Next does not require t to be after prev.Time: replicas' clocks may differ.
func Next(prev Entry, kind, actor string, t time.Time, refs map[string]string, attrs map[string]any, payloadHash string) (Entry, error) {
	if !isHexHash(prev.Hash) {
		return Entry{}, fmt.Errorf("ledger: next after entry %d of org %q: previous entry is not sealed (hash %q)", prev.Seq, prev.Org, prev.Hash)
	}
	if prev.Seq >= maxSafeSeq {
		return Entry{}, fmt.Errorf("ledger: next after entry %d of org %q: seq space exhausted", prev.Seq, prev.Org)
	}
	e := Entry{
		Seq:         prev.Seq + 1,
		Org:         prev.Org,
		Time:        normTime(t),
		Kind:        kind,
		Actor:       actor,
		PayloadHash: payloadHash,
		PrevHash:    prev.Hash,
	}
	if len(refs) > 0 {
		e.Refs = maps.Clone(refs)
	}
	if len(attrs) > 0 {
		e.Attrs = maps.Clone(attrs)
	}
	return seal(e)
}

func seal(e Entry) (Entry, error) {
	h, err := e.ComputeHash()
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: seal %s entry %d of org %q: %w", e.Kind, e.Seq, e.Org, err)
	}
	e.Hash = h
	return e, nil
}

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// HashPayload returns the hex payload hash:
//
//	SHA-256(PayloadDomainTag ‖ uint64 big-endian len(salt) ‖ salt ‖ payload)
//
// The length prefix makes the salt/payload boundary unambiguous.
func HashPayload(salt, payload []byte) string {
	sum := hashPayload(salt, payload)
	return hex.EncodeToString(sum[:])
}

func hashPayload(salt, payload []byte) (sum [HashSize]byte) {
	h := sha256.New()
	h.Write([]byte(PayloadDomainTag))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(salt)))
	h.Write(n[:])
	h.Write(salt)
	h.Write(payload)
	h.Sum(sum[:0])
	return sum
}

// NewSalt returns SaltSize fresh random bytes for HashPayload. Each payload
// MUST get its own salt, stored next to the payload and deleted with it.
func NewSalt() []byte {
	s := make([]byte, SaltSize)
	_, _ = rand.Read(s) // crypto/rand.Read never fails (it crashes the program instead).
	return s
}

// isHexHash reports whether s is exactly 64 lowercase hex digits.
func isHexHash[S ~string | ~[]byte](s S) bool {
	if len(s) != 2*HashSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !lowerHex[s[i]] {
			return false
		}
	}
	return true
}

// lowerHex marks the bytes allowed in a hex hash (a table: this runs three
// times per verified entry).
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

// ErrHashMismatch is wrapped by errors reporting a recomputed hash that
// differs from the stored one.
var ErrHashMismatch = errors.New("ledger: hash mismatch")
