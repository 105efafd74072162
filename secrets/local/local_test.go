package local_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/local"
	"github.com/heraldhq/herald/secrets/storetest"
)

func open(t *testing.T, dir string) *local.Store {
	t.Helper()
	s, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) secrets.Store { return open(t, t.TempDir()) })
}

// Two Store values on one directory stand in for `herald serve` and the CLI
// in two processes: writes by one are seen by the other and CAS holds
// across them.
func TestContractSharedDir(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	n := 0
	storetest.Run(t, func(t *testing.T) secrets.Store {
		n++
		if n%2 == 0 {
			return a
		}
		return b
	})
	ctx := context.Background()
	if _, err := a.Put(ctx, "x", map[string]string{"k": "1"}, secrets.MustNotExist); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "x", map[string]string{"k": "2"}, secrets.MustNotExist); !errors.Is(err, secrets.ErrCASMismatch) {
		t.Fatalf("second store did not see the first's write: %v", err)
	}
}

func TestFilesArePrivateAndEncrypted(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	const value = "123456:AAF-very-secret-bot-token-value"
	if _, err := s.Put(context.Background(), "herald/orgs/acme/accounts/1/bot_token", map[string]string{"token": value}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{local.KeyFile, local.StoreFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(value)) || bytes.Contains(raw, []byte("bot_token")) {
			t.Errorf("%s contains plaintext", e.Name())
		}
	}
	if len(entries) != 3 { // key, store, lock: no temp file left behind
		t.Errorf("data dir holds %d files, want 3 (key, store, lock)", len(entries))
	}
}

func TestReopenKeepsSecrets(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := open(t, dir).Put(ctx, "p", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, dir).Get(ctx, "p")
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("after reopen: %v, %v", got, err)
	}
}

func TestWrongKeyFails(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := open(t, dir).Put(ctx, "p", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	open(t, other) // creates another key
	key, err := os.ReadFile(filepath.Join(other, local.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, local.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, dir).Get(ctx, "p"); err == nil {
		t.Fatal("store decrypted with a different key")
	}
}

func TestRefusesReadableKeyFile(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	if err := os.Chmod(filepath.Join(dir, local.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Open(dir); err == nil {
		t.Fatal("Open accepted a world-readable key file")
	}
}

func TestSigningKeyRotation(t *testing.T) {
	ctx := context.Background()
	key := local.SigningKey{Store: open(t, t.TempDir()), Path: "herald/ledger/checkpoint-key", Name: "herald.test/ledger"}

	s1, err := key.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n1, err := note.Sign(&note.Note{Text: "herald.test/ledger\n1\nAAAA\n"}, s1)
	if err != nil {
		t.Fatal(err)
	}
	oldV, newV, err := key.Rotate(ctx)
	if err != nil || oldV != 1 || newV != 2 {
		t.Fatalf("Rotate = %d, %d, %v; want 1, 2", oldV, newV, err)
	}
	s2, err := key.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2.KeyVersion() != 2 || s2.KeyHash() == s1.KeyHash() {
		t.Fatalf("signer after rotation: version %d, same hash %v", s2.KeyVersion(), s2.KeyHash() == s1.KeyHash())
	}
	n2, err := note.Sign(&note.Note{Text: "herald.test/ledger\n2\nBBBB\n"}, s2)
	if err != nil {
		t.Fatal(err)
	}

	pubs, err := key.PublicKeys(ctx)
	if err != nil || len(pubs) != 2 {
		t.Fatalf("PublicKeys = %d keys, %v", len(pubs), err)
	}
	vkeys, err := secrets.VerifierKeys(key.Name, pubs)
	if err != nil {
		t.Fatal(err)
	}
	if vkeys[1] != s1.VerifierKey() || vkeys[2] != s2.VerifierKey() {
		t.Fatal("published verifier keys differ from the signers'")
	}
	all, err := secrets.NoteVerifiers(vkeys)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range [][]byte{n1, n2} {
		if _, err := note.Open(msg, all); err != nil {
			t.Errorf("note %d does not verify with the published keys: %v", i+1, err)
		}
	}
	// The old note verifies with the old version's key alone.
	v1, err := note.NewVerifier(vkeys[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(n1, note.VerifierList(v1)); err != nil {
		t.Errorf("old note does not verify with the old key: %v", err)
	}
	if _, err := note.Open(n2, note.VerifierList(v1)); err == nil {
		t.Error("new note verifies with the old key")
	}
}
