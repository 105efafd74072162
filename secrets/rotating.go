package secrets

import (
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// RotatingSigner is a note.Signer whose key is replaced at run time when
// the signing key rotates, so checkpoints are signed with the new version
// without a restart. One signature takes several calls (Name, KeyHash,
// Sign); a caller that must not see a swap in between pins a snapshot with
// Current.
type RotatingSigner struct {
	mu    sync.RWMutex
	cur   note.Signer
	vkeys []string
}

// NewRotatingSigner returns a signer starting with s; vkeys are the
// verifier keys of every key version, current first.
func NewRotatingSigner(s note.Signer, vkeys []string) *RotatingSigner {
	return &RotatingSigner{cur: s, vkeys: vkeys}
}

// Set installs a new current signer and the full list of verifier keys.
func (r *RotatingSigner) Set(s note.Signer, vkeys []string) {
	r.mu.Lock()
	r.cur, r.vkeys = s, append([]string(nil), vkeys...)
	r.mu.Unlock()
}

// Current returns the signer in force now.
func (r *RotatingSigner) Current() note.Signer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cur
}

// VerifierKeys returns the verifier keys of every version, current first.
func (r *RotatingSigner) VerifierKeys() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.vkeys...)
}

// Name implements note.Signer.
func (r *RotatingSigner) Name() string { return r.Current().Name() }

// KeyHash implements note.Signer.
func (r *RotatingSigner) KeyHash() uint32 { return r.Current().KeyHash() }

// Sign implements note.Signer.
func (r *RotatingSigner) Sign(msg []byte) ([]byte, error) { return r.Current().Sign(msg) }
