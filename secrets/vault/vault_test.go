package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/storetest"
	"github.com/heraldhq/herald/secrets/vault"
	"github.com/heraldhq/herald/secrets/vaulttest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// open returns a Client for srv with the root token, logging to log if set.
func open(t *testing.T, srv *vaulttest.Server, cfg vault.Config) *vault.Client {
	t.Helper()
	cfg.Address = srv.Addr
	if cfg.Auth == nil {
		cfg.Auth = vault.TokenAuth{Token: srv.Token}
	}
	c, err := vault.Open(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("vault.Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestVault runs everything that can share one server.
func TestVault(t *testing.T) {
	srv := vaulttest.Start(t)
	c := open(t, srv, vault.Config{})

	t.Run("Contract", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) secrets.Store { return c })
	})
	t.Run("Transit", func(t *testing.T) { testTransit(t, c) })
	t.Run("Signer", func(t *testing.T) { testSigner(t, srv, c) })
	t.Run("Cached", func(t *testing.T) { testCached(t, c) })
	t.Run("Rotator", func(t *testing.T) { testRotator(t, c) })
	t.Run("NoLeak", func(t *testing.T) { testNoLeak(t, srv) })
}

func testTransit(t *testing.T, c *vault.Client) {
	ctx := testCtx(t)
	const key = "herald-encryption"
	if err := c.CreateKey(ctx, key, vault.KeyAES256); err != nil {
		t.Fatal(err)
	}
	plain := []byte("mtproto session snapshot")
	ct1, err := c.Encrypt(ctx, key, plain)
	if err != nil || !strings.HasPrefix(ct1, "vault:v1:") || strings.Contains(ct1, string(plain)) {
		t.Fatalf("Encrypt = %q, %v", ct1, err)
	}
	got, err := c.Decrypt(ctx, key, ct1)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}

	oldV, newV, err := c.RotateKey(ctx, key)
	if err != nil || oldV != 1 || newV != 2 {
		t.Fatalf("RotateKey = %d, %d, %v; want 1, 2", oldV, newV, err)
	}
	ct2, err := c.Encrypt(ctx, key, plain)
	if err != nil || !strings.HasPrefix(ct2, "vault:v2:") {
		t.Fatalf("Encrypt after rotation = %q, %v", ct2, err)
	}
	if got, err := c.Decrypt(ctx, key, ct1); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("old ciphertext no longer decrypts before rewrap: %v", err)
	}

	// A failing save must leave the floor where it was.
	if _, err := c.RewrapAll(ctx, key, []string{ct1}, func(context.Context, []string) error {
		return errors.New("disk full")
	}); err == nil {
		t.Fatal("RewrapAll ignored the save error")
	}
	if info, _ := c.KeyInfo(ctx, key); info.MinDecryptionVersion != 1 {
		t.Fatalf("min_decryption_version raised although save failed: %+v", info)
	}

	var saved []string
	minV, err := c.RewrapAll(ctx, key, []string{ct1, ct2}, func(_ context.Context, rw []string) error {
		saved = rw
		return nil
	})
	if err != nil || minV != 2 {
		t.Fatalf("RewrapAll = %d, %v", minV, err)
	}
	if len(saved) != 2 || !strings.HasPrefix(saved[0], "vault:v2:") || !strings.HasPrefix(saved[1], "vault:v2:") {
		t.Fatalf("rewrapped = %q", saved)
	}
	info, err := c.KeyInfo(ctx, key)
	if err != nil || info.MinDecryptionVersion != 2 || info.LatestVersion != 2 || info.Type != vault.KeyAES256 {
		t.Fatalf("KeyInfo = %+v, %v", info, err)
	}
	if _, err := c.Decrypt(ctx, key, ct1); err == nil {
		t.Fatal("v1 ciphertext decrypts after min_decryption_version was raised")
	} else if errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("policy refusal classified as unavailable: %v", err)
	}
	for _, ct := range saved {
		if got, err := c.Decrypt(ctx, key, ct); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("rewrapped ciphertext: %q, %v", got, err)
		}
	}
}

func testSigner(t *testing.T, srv *vaulttest.Server, c *vault.Client) {
	ctx := testCtx(t)
	key := vault.TransitSigningKey{Client: c, Key: "herald-checkpoints", Name: "herald.test/ledger"}
	if err := key.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	s1, err := key.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyVersion() != 1 || s1.Name() != key.Name {
		t.Fatalf("signer version %d name %q", s1.KeyVersion(), s1.Name())
	}
	n1, err := note.Sign(&note.Note{Text: "herald.test/ledger/acme\n10\nq1uHD9zmXsRkKTrYWXDavp96CxNOY5Ab3blSlmtTP+A=\n"}, s1)
	if err != nil {
		t.Fatal(err)
	}
	vk1, err := key.VerifierKeys(ctx)
	if err != nil || vk1[1] != s1.VerifierKey() {
		t.Fatalf("VerifierKeys = %v, %v; want the signer's %q", vk1, err, s1.VerifierKey())
	}
	v1, err := note.NewVerifier(vk1[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(n1, note.VerifierList(v1)); err != nil {
		t.Fatalf("Transit-signed note does not verify with the vkey from Transit's public key: %v\n%s", err, n1)
	}

	// The private key stays in Vault: Transit refuses to export it.
	if _, err := srv.Client.Logical().Read("transit/export/signing-key/herald-checkpoints"); err == nil {
		t.Fatal("Transit exported the signing key")
	}

	oldV, newV, err := key.Rotate(ctx)
	if err != nil || oldV != 1 || newV != 2 {
		t.Fatalf("Rotate = %d, %d, %v", oldV, newV, err)
	}
	s2, err := key.Signer(ctx)
	if err != nil || s2.KeyVersion() != 2 || s2.KeyHash() == s1.KeyHash() {
		t.Fatalf("signer after rotation: %v, version %d", err, s2.KeyVersion())
	}
	n2, err := note.Sign(&note.Note{Text: "herald.test/ledger/acme\n11\nq1uHD9zmXsRkKTrYWXDavp96CxNOY5Ab3blSlmtTP+A=\n"}, s2)
	if err != nil {
		t.Fatal(err)
	}
	// The stale signer keeps signing with its pinned version.
	if _, err := note.Sign(&note.Note{Text: "late\n"}, s1); err != nil {
		t.Fatalf("pinned signer after rotation: %v", err)
	}

	vks, err := key.VerifierKeys(ctx)
	if err != nil || len(vks) != 2 || vks[1] != vk1[1] {
		t.Fatalf("VerifierKeys after rotation = %v, %v", vks, err)
	}
	all, err := secrets.NoteVerifiers(vks)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range [][]byte{n1, n2} {
		if _, err := note.Open(n, all); err != nil {
			t.Errorf("note %d does not verify with the published keys: %v", i+1, err)
		}
	}
	if _, err := note.Open(n1, note.VerifierList(v1)); err != nil {
		t.Errorf("old checkpoint no longer verifies with the old key after rotation: %v", err)
	}
	if _, err := note.Open(n2, note.VerifierList(v1)); err == nil {
		t.Error("new checkpoint verifies with the old key")
	}
}

func testCached(t *testing.T, c *vault.Client) {
	ctx := testCtx(t)
	cached := secrets.Cached(c, time.Minute)
	const path = "herald/orgs/acme/accounts/7/bot_token"
	if _, err := c.Put(ctx, path, map[string]string{"token": "t1"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	if s, err := cached.Get(ctx, path); err != nil || s.Data["token"] != "t1" {
		t.Fatalf("Get = %v, %v", s, err)
	}
	// The operator writes a new token directly into Vault.
	if _, err := c.Put(ctx, path, map[string]string{"token": "t2"}, 1); err != nil {
		t.Fatal(err)
	}
	if v, err := cached.Versions(ctx, path); err != nil || v != 2 {
		t.Fatalf("Versions = %d, %v", v, err)
	}
	if s, err := cached.Get(ctx, path); err != nil || s.Data["token"] != "t2" || s.Version != 2 {
		t.Fatalf("Get after version change = %v, %v", s, err)
	}
}

// testNoLeak drives a Client through successes and failures and checks that
// neither errors nor debug logs carry the values it handled.
func testNoLeak(t *testing.T, srv *vaulttest.Server) {
	ctx := testCtx(t)
	var logs bytes.Buffer
	c := open(t, srv, vault.Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	const canary = "123456:AAF-vault-leak-canary"
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	var errs []error
	s, err := c.Put(ctx, "leak/bot", map[string]string{"token": canary}, secrets.NoCAS)
	errs = append(errs, err)
	_, err = c.Put(ctx, "leak/bot", map[string]string{"token": canary}, 7)
	errs = append(errs, err)
	_, err = c.Put(ctx, "leak/bot", map[string]string{"token": canary}, secrets.MustNotExist)
	errs = append(errs, err)
	got, err := c.Get(ctx, "leak/bot")
	errs = append(errs, err)
	_, err = c.Encrypt(ctx, "leak-key", []byte(canary))
	errs = append(errs, err)
	_, err = c.Decrypt(ctx, "leak-key", "vault:v1:"+canary)
	errs = append(errs, err)
	_, err = c.GetVersion(ctx, "leak/bot", 99)
	errs = append(errs, err)

	log.Debug("after put", "secret", s, "got", got)
	var text strings.Builder
	for _, e := range errs {
		if e != nil {
			text.WriteString(e.Error())
		}
	}
	text.WriteString(logs.String())
	if strings.Contains(text.String(), canary) {
		t.Fatalf("secret value leaked:\n%s", text.String())
	}
	if got.Data["token"] != canary {
		t.Fatal("the canary was not actually read back")
	}
}

func TestCredentialsPrintRedacted(t *testing.T) {
	const tok, sid = "hvs.token-canary", "secret-id-canary"
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	for _, a := range []vault.Auth{vault.TokenAuth{Token: tok}, &vault.AppRoleAuth{RoleID: "r", SecretID: sid, WrappedSecretID: sid}} {
		cfg := vault.Config{Address: "http://x", Auth: a}
		s := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, a, a)
		l.Info("config", "auth", a, "cfg", cfg)
		if strings.Contains(s+buf.String(), tok) || strings.Contains(s+buf.String(), sid) {
			t.Fatalf("credential leaked: %s %s", s, buf.String())
		}
	}
}

// testRotator rotates each Vault-held secret class through the Rotator and
// checks the events carry versions and nothing else.
func testRotator(t *testing.T, c *vault.Client) {
	ctx := testCtx(t)
	sig := vault.TransitSigningKey{Client: c, Key: "rotator-checkpoints", Name: "herald.test/rot"}
	if err := sig.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateKey(ctx, "rotator-encryption", vault.KeyAES256); err != nil {
		t.Fatal(err)
	}
	pseudo := secrets.Pseudonymizer{Store: c}
	if _, err := pseudo.Ref(ctx, "rot-org", "phone", "+1"); err != nil {
		t.Fatal(err)
	}
	var events []secrets.RotationEvent
	r := &secrets.Rotator{OnRotate: func(_ context.Context, ev secrets.RotationEvent) { events = append(events, ev) }}
	rotations := []secrets.Rotation{
		{Secret: "transit/rotator-checkpoints", Every: time.Hour, Rotate: sig.Rotate},
		{Secret: "transit/rotator-encryption", Every: time.Hour, Rotate: func(ctx context.Context) (int, int, error) {
			return c.RotateKey(ctx, "rotator-encryption")
		}},
		{Secret: "pepper/rot-org", Every: time.Hour, Rotate: func(ctx context.Context) (int, int, error) {
			return pseudo.Rotate(ctx, "rot-org")
		}},
	}
	for _, rot := range rotations {
		if _, err := r.RotateNow(ctx, rot); err != nil {
			t.Fatal(err)
		}
	}
	if len(events) != 3 {
		t.Fatalf("events = %+v", events)
	}
	for i, ev := range events {
		if ev.Secret != rotations[i].Secret || ev.OldVersion != 1 || ev.NewVersion != 2 {
			t.Errorf("event %d = %+v, want %s 1 -> 2", i, ev, rotations[i].Secret)
		}
	}
}
