package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/secrets/vaulttest"
	"github.com/heraldhq/herald/store/storetest"
)

// TestVaultEndToEnd runs herald on PostgreSQL with a real Vault server:
// bot tokens live in Vault KV, checkpoints are signed by a Transit key that
// never leaves Vault, a rotated token is used on the next send without a
// restart, a paused Vault makes sends wait (and /readyz say so) until it
// comes back, and no secret value appears anywhere Herald writes.
func TestVaultEndToEnd(t *testing.T) {
	v := vaulttest.Start(t)
	fake := telegramtest.New(telegramtest.Options{})
	defer fake.Close()
	const (
		token1 = "424242:VAULT-held-token-number-one-abcdefgh"
		token2 = "424242:VAULT-held-token-number-two-ijklmnop"
	)
	fake.AddToken(token1)
	dataDir, dbURL := t.TempDir(), storetest.NewDatabase(t)
	args := []string{"--botapi-url", fake.URL(), "--vault-addr", v.Addr, "--log-level", "debug", "--job-lease", "20s", "--send-timeout", "10s"}
	p := startEnv(t, dataDir, dbURL, []string{"HERALD_VAULT_TOKEN=" + v.Token}, args...)
	key := keyPattern.FindString(p.stdout.String())
	acc := p.call(t, "POST", "/v1/accounts", key, map[string]any{"name": "vaulted", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": token1}})
	accID, _ := acc["id"].(string)
	if accID == "" || strings.Contains(fmt.Sprint(acc), "VAULT-held") {
		t.Fatalf("create account: %v", acc)
	}
	send := func(chat string) string {
		res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": accID,
			"target": chat, "purpose": "transactional", "text": "vault text " + chat})
		return res["action"].(map[string]any)["id"].(string)
	}
	waitStatus := func(id, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			st := p.call(t, "GET", "/v1/actions/"+id, key, nil)["action"].(map[string]any)["status"]
			if st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("action %s is %v, want %s", id, st, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStatus(send("-1001"), "delivered", 20*time.Second)

	// BotFather revoked the token; the operator writes the new one to
	// Herald (a new Vault KV version). The next send uses it: no restart.
	fake.RevokeToken(token1)
	fake.AddToken(token2)
	p.call(t, "PATCH", "/v1/accounts/"+accID, key, map[string]any{"secret": map[string]string{"token": token2}})
	waitStatus(send("-1002"), "delivered", 30*time.Second)
	msgs := fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("Telegram got %d messages, want 2", len(msgs))
	}

	// Vault unreachable: not ready, and sends wait instead of failing.
	v.Pause()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz stayed ready with Vault paused")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Past the secret cache's TTL, a send needs Vault to read the token.
	time.Sleep(11 * time.Second)
	waiting := send("-1003")
	time.Sleep(4 * time.Second)
	if st := p.call(t, "GET", "/v1/actions/"+waiting, key, nil)["action"].(map[string]any)["status"]; st != "scheduled" && st != "sending" {
		t.Fatalf("with Vault paused the action is %v, want it waiting", st)
	}
	v.Resume()
	waitStatus(waiting, "delivered", 90*time.Second)

	// Checkpoints verify with the Transit key's public key.
	keys := p.call(t, "GET", "/v1/ledger/keys", "", nil)
	vkey := keys["keys"].([]any)[0].(map[string]any)["vkey"].(string)
	p.call(t, "POST", "/v1/ledger/checkpoint", keyFor(t, p, dataDir, dbURL, "auditor"), nil)
	export := filepath.Join(t.TempDir(), "export.jsonl")
	out, err := exec.Command(binary, "ledger", "export", "--database-url", dbURL, "-o", export).CombinedOutput()
	if err != nil {
		t.Fatalf("ledger export: %v %s", err, out)
	}
	out, err = exec.Command(binary, "ledger", "verify", export, "--key", vkey).CombinedOutput()
	if err != nil {
		t.Fatalf("offline verify with the Vault key: %v %s", err, out)
	}

	// Never leak: logs (debug level), the whole database and the export.
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()
	dump, err := exec.Command("pg_dump", "--data-only", dbURL).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v %s", err, dump)
	}
	exp, _ := os.ReadFile(export)
	for name, blob := range map[string][]byte{"logs": []byte(p.stderr.String() + p.stdout.String()), "database": dump, "export": exp} {
		for _, secret := range []string{token1, token2, "VAULT-held", v.Token} {
			if bytes.Contains(blob, []byte(secret)) {
				t.Errorf("%s contain secret %q", name, secret[:8]+"…")
			}
		}
	}
}

// startEnv is start with extra environment variables.
func startEnv(t *testing.T, dataDir, dbURL string, env []string, extra ...string) *proc {
	t.Helper()
	for _, kv := range env {
		k, val, _ := strings.Cut(kv, "=")
		t.Setenv(k, val) // inherited by the child process
	}
	return start(t, dataDir, dbURL, extra...)
}

// keyFor creates an API key with role through the CLI.
func keyFor(t *testing.T, _ *proc, dataDir, dbURL, role string) string {
	t.Helper()
	out, err := exec.Command(binary, "keys", "create", "--data-dir", dataDir, "--database-url", dbURL, "--principal", role+"-x", "--role", role).CombinedOutput()
	if err != nil {
		t.Fatalf("keys create: %v %s", err, out)
	}
	k := keyPattern.FindString(string(out))
	if k == "" {
		t.Fatalf("no key printed: %s", out)
	}
	return k
}
