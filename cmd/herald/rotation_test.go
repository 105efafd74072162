package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSigningKeyRotationWithoutRestart rotates the checkpoint key with the
// CLI while a server runs: the server picks it up, publishes both keys,
// signs new checkpoints with the new one, and the export verifies with both
// keys (old checkpoints with the old key).
func TestSigningKeyRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "", "--key-refresh", "500ms")
	admin := keyPattern.FindString(p.stdout.String())
	auditor := keyFor(t, p, dir, "", "auditor")
	keys := func() []any { return p.call(t, "GET", "/v1/ledger/keys", "", nil)["keys"].([]any) }
	if n := len(keys()); n != 1 {
		t.Fatalf("%d keys before rotation", n)
	}
	oldKey := keys()[0].(map[string]any)["vkey"].(string)
	p.call(t, "POST", "/v1/ledger/checkpoint", auditor, nil)

	out, err := exec.Command(binary, "secrets", "rotate", "signing-key", "--data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "version 1 → 2") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(keys()) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not pick up the rotated key")
		}
		time.Sleep(100 * time.Millisecond)
	}
	newKey := keys()[0].(map[string]any)["vkey"].(string)
	if newKey == oldKey {
		t.Fatal("the current key did not change")
	}
	p.call(t, "POST", "/v1/accounts", admin, map[string]any{"name": "after rotation", "kind": "bot", "connector": "sandbox"})
	cp := p.call(t, "POST", "/v1/ledger/checkpoint", auditor, nil)
	if !strings.Contains(fmtJSON(cp), strings.Split(newKey, "+")[1]) {
		t.Fatalf("the new checkpoint is not signed with the new key: %v", cp)
	}
	export := filepath.Join(t.TempDir(), "ledger.jsonl")
	if out, err := exec.Command(binary, "ledger", "export", "--data-dir", dir, "-o", export).CombinedOutput(); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	if out, err := exec.Command(binary, "ledger", "verify", export, "--key", newKey, "--key", oldKey).CombinedOutput(); err != nil {
		t.Fatalf("verify with both keys: %v %s", err, out)
	}
	if out, err := exec.Command(binary, "ledger", "verify", export, "--key", newKey).CombinedOutput(); err == nil {
		t.Fatalf("verify with only the new key passed although old checkpoints exist: %s", out)
	}
}
