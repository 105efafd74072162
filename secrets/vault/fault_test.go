package vault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/vault"
	"github.com/heraldhq/herald/secrets/vaulttest"
)

// eventually retries f until it succeeds or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not recover within %v: %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestVaultPausedIsUnavailableAndRecovers(t *testing.T) {
	srv := vaulttest.Start(t)
	const timeout = time.Second
	c := open(t, srv, vault.Config{Timeout: timeout})
	ctx := testCtx(t)
	if _, err := c.Put(ctx, "herald/bot", map[string]string{"token": "t"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	start := time.Now()
	_, err := c.Get(ctx, "herald/bot")
	if !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Get from a paused Vault = %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > timeout+2*time.Second {
		t.Fatalf("Get took %v, want about the %v client timeout", el, timeout)
	}
	// A caller deadline shorter than the client timeout wins.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start = time.Now()
	_, err = c.Put(short, "herald/bot", map[string]string{"token": "t2"}, 1)
	cancel()
	if !errors.Is(err, secrets.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Fatalf("Put with a short deadline = %v after %v", err, time.Since(start))
	}

	srv.Resume()
	// The timed-out Put reached the paused server's socket and may be
	// applied after the resume: ErrUnavailable on a write means "outcome
	// unknown". Retrying with the same cas is safe: exactly one of the two
	// attempts applies, the other gets ErrCASMismatch.
	eventually(t, 15*time.Second, func() error {
		_, err := c.Put(ctx, "herald/bot", map[string]string{"token": "t2"}, 1)
		if errors.Is(err, secrets.ErrCASMismatch) {
			return nil // the first attempt was applied
		}
		return err
	})
	time.Sleep(500 * time.Millisecond) // let a queued request land, if any
	got, err := c.Get(ctx, "herald/bot")
	if err != nil || got.Version != 2 || got.Data["token"] != "t2" {
		t.Fatalf("after recovery: %v, %v; want exactly one applied write (version 2)", got, err)
	}
}

func TestVaultSealedIsUnavailableAndRecovers(t *testing.T) {
	srv := vaulttest.Start(t)
	c := open(t, srv, vault.Config{Timeout: 2 * time.Second})
	ctx := testCtx(t)
	if _, err := c.Put(ctx, "herald/bot", map[string]string{"token": "t"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	srv.Seal()
	_, err := c.Get(ctx, "herald/bot")
	if !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Get from a sealed Vault = %v, want ErrUnavailable", err)
	}
	if _, err := c.Encrypt(ctx, "k", []byte("x")); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Encrypt with a sealed Vault = %v, want ErrUnavailable", err)
	}
	srv.Unseal()
	eventually(t, 15*time.Second, func() error {
		s, err := c.Get(ctx, "herald/bot")
		if err == nil && s.Data["token"] != "t" {
			return errors.New("wrong value after unseal")
		}
		return err
	})
}
