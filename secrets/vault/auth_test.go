package vault_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/vault"
	"github.com/heraldhq/herald/secrets/vaulttest"
)

// heraldPolicy is what Herald's own token may do: KV data and metadata,
// Transit. No sys/ access.
const heraldPolicy = `
path "secret/data/*"     { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
path "transit/*"         { capabilities = ["create", "read", "update"] }
`

func setupPolicy(t *testing.T, srv *vaulttest.Server) {
	t.Helper()
	if err := srv.Client.Sys().PutPolicy("herald", heraldPolicy); err != nil {
		t.Fatal(err)
	}
}

// setupAppRole enables AppRole with a role whose tokens live ttl and at
// most maxTTL, and returns the role id and a response-wrapped secret id.
func setupAppRole(t *testing.T, srv *vaulttest.Server, ttl, maxTTL string) (roleID, wrapped string) {
	t.Helper()
	root := srv.Client
	if err := root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/herald", map[string]any{
		"token_policies":     "herald",
		"token_ttl":          ttl,
		"token_max_ttl":      maxTTL,
		"secret_id_num_uses": 0,
	}); err != nil {
		t.Fatal(err)
	}
	r, err := root.Logical().Read("auth/approle/role/herald/role-id")
	if err != nil {
		t.Fatal(err)
	}
	roleID = r.Data["role_id"].(string)

	wrapper, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	wrapper.SetToken(srv.Token)
	wrapper.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	w, err := wrapper.Logical().Write("auth/approle/role/herald/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if w == nil || w.WrapInfo == nil || w.WrapInfo.Token == "" {
		t.Fatalf("secret-id response not wrapped: %+v", w)
	}
	return roleID, w.WrapInfo.Token
}

func TestAuth(t *testing.T) {
	srv := vaulttest.Start(t)
	setupPolicy(t, srv)

	t.Run("AppRoleWrappedSecretIDAndRelogin", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		// Max TTL of 6s forces re-logins during the test.
		roleID, wrapped := setupAppRole(t, srv, "2s", "6s")
		c := open(t, srv, vault.Config{Auth: &vault.AppRoleAuth{RoleID: roleID, WrappedSecretID: wrapped}, Logger: testLogger(t)})
		first := c.API().Token()
		if first == "" || first == srv.Token {
			t.Fatal("no AppRole token installed")
		}
		if _, err := c.Put(ctx, "herald/approle", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
			t.Fatalf("Put with the AppRole token: %v", err)
		}

		// The wrapping token is single-use.
		if _, err := vault.Open(ctx, vault.Config{Address: srv.Addr, Auth: &vault.AppRoleAuth{RoleID: roleID, WrappedSecretID: wrapped}}); err == nil {
			t.Fatal("a used wrapping token unwrapped again")
		}

		// Past each max TTL the watcher ends and the client logs in again;
		// a request that meets an expired token logs in and retries. No
		// request may fail across two re-logins.
		tokens := map[string]bool{first: true}
		for end := time.Now().Add(14 * time.Second); time.Now().Before(end); {
			if s, err := c.Get(ctx, "herald/approle"); err != nil || s.Data["k"] != "v" {
				t.Fatalf("Get across token expiry: %v, %v", s, err)
			}
			tokens[c.API().Token()] = true
			time.Sleep(100 * time.Millisecond)
		}
		if len(tokens) < 3 {
			t.Fatalf("%d tokens seen in 14s with a 6s max TTL, want at least 3", len(tokens))
		}
		if _, err := srv.Client.Auth().Token().Lookup(first); err == nil {
			t.Fatal("first token still valid; the test did not outlive it")
		}

		// A token revoked behind Herald's back: the next request is denied,
		// logs in again and succeeds.
		time.Sleep(2100 * time.Millisecond) // older than a "fresh" token
		revoked := c.API().Token()
		if err := srv.Client.Auth().Token().RevokeOrphan(revoked); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Get(ctx, "herald/approle"); err != nil {
			t.Fatalf("Get after the token was revoked: %v", err)
		}
		if c.API().Token() == revoked {
			t.Fatal("still using the revoked token")
		}
	})

	t.Run("TokenRenewal", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		renewable := true
		tok, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{
			Policies:       []string{"herald"},
			TTL:            "3s",
			ExplicitMaxTTL: "5m",
			Renewable:      &renewable,
			NoParent:       true,
		})
		if err != nil {
			t.Fatal(err)
		}
		c := open(t, srv, vault.Config{Auth: vault.TokenAuth{Token: tok.Auth.ClientToken}})
		// Three TTLs later the token is alive only if it was renewed.
		time.Sleep(9 * time.Second)
		if _, err := c.Put(ctx, "herald/renewed", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
			t.Fatalf("token not renewed: %v", err)
		}
		s, err := srv.Client.Auth().Token().Lookup(tok.Auth.ClientToken)
		if err != nil {
			t.Fatalf("token gone: %v", err)
		}
		if ttl, _ := s.TokenTTL(); ttl <= 0 {
			t.Fatalf("token TTL %v", ttl)
		}
	})

	t.Run("BadCredentials", func(t *testing.T) {
		t.Parallel()
		_, err := vault.Open(testCtx(t), vault.Config{Address: srv.Addr, Auth: vault.TokenAuth{Token: "not-a-token"}})
		if !errors.Is(err, secrets.ErrPermissionDenied) {
			t.Fatalf("Open with a bad token = %v, want ErrPermissionDenied", err)
		}
	})
}

// testLogger sends the client's log to t.Log, so a failure shows the
// renewal and login history.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
