package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func mustKey(t testing.TB, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

func TestCheckpointRoundTrip(t *testing.T) {
	skey, vkey := mustKey(t, "herald.example/org_demo/k1")
	signer, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	root := bytes.Repeat([]byte{7}, HashSize)
	cp := Checkpoint{Origin: Origin("herald.example", "org_demo"), Size: 42, Root: root}
	body, err := cp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := "herald.example/org_demo\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"; string(body) != want {
		t.Fatalf("body = %q, want %q", body, want)
	}
	msg, err := Sign(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(msg), string(body)+"\n— herald.example/org_demo/k1 ") {
		t.Fatalf("unexpected note:\n%s", msg)
	}
	vs, err := NewVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(msg, vs)
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != cp.Origin || got.Size != 42 || !bytes.Equal(got.Root, root) {
		t.Fatalf("got %+v", got)
	}
}

func TestCheckpointKeyRotationAndForgery(t *testing.T) {
	sk1, vk1 := mustKey(t, "herald.example/org/k1")
	sk2, vk2 := mustKey(t, "herald.example/org/k2")
	skEvil, _ := mustKey(t, "herald.example/org/k1") // same name, other key
	s1, _ := NewSigner(sk1)
	s2, _ := NewSigner(sk2)
	evil, _ := NewSigner(skEvil)
	cp := Checkpoint{Origin: "herald.example/org", Size: 1, Root: make([]byte, HashSize)}
	old, _ := Sign(cp, s1)
	cp.Size = 2
	cur, _ := Sign(cp, s2)
	forged, _ := Sign(cp, evil)

	both, _ := NewVerifiers(vk1, vk2)
	for _, m := range [][]byte{old, cur} {
		if _, err := OpenCheckpoint(m, both); err != nil {
			t.Fatalf("rotated keys: %v", err)
		}
	}
	onlyNew, _ := NewVerifiers(vk2)
	if _, err := OpenCheckpoint(old, onlyNew); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("old checkpoint with new key only: %v", err)
	}
	if _, err := OpenCheckpoint(forged, both); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("forged checkpoint: %v", err)
	}
	// Tampering with the body breaks the signature.
	bad := bytes.Replace(cur, []byte("\n2\n"), []byte("\n3\n"), 1)
	if _, err := OpenCheckpoint(bad, both); !errors.Is(err, ErrCheckpointSignature) {
		t.Fatalf("edited checkpoint: %v", err)
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"o\n1\n",
		"o\n1\nAAAA\n",
		"o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n",
		" o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	} {
		if _, err := ParseCheckpoint([]byte(s)); err == nil {
			t.Errorf("ParseCheckpoint(%q) succeeded", s)
		}
	}
	if _, err := ParseCheckpoint([]byte("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")); err != nil {
		t.Fatal(err)
	}
}

func TestExternalSigner(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := NewExternalSigner("herald.example/org/transit-1", pub, func(msg []byte) ([]byte, error) {
		return ed25519.Sign(priv, msg), nil // stands in for Vault Transit
	})
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Origin: "herald.example/org", Size: 9, Root: make([]byte, HashSize)}
	msg, err := Sign(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := NewVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpoint(msg, vs); err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	bad, _, _ := NewExternalSigner("herald.example/org/transit-1", pub, func(msg []byte) ([]byte, error) {
		return ed25519.Sign(other, msg), nil
	})
	if _, err := Sign(cp, bad); err == nil {
		t.Fatal("signature from the wrong key accepted")
	}
}
