package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// runLedger runs "herald ledger ARGS…" in process.
func runLedger(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runInProcess(newLedgerCmd(), args...)
}

func TestLedgerCLIVerifyProveExport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		url := storetest.URL(t, b)
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		org, err := s.CreateOrg(ctx, "Acme", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		skey, vkey, _ := ledger.GenerateKey("herald.test/k1")
		signer, _ := ledger.NewSigner(skey)
		logs := store.NewLedgerLogs(s, "herald.test", signer)
		for i := 0; i < 3; i++ {
			err := s.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.AppendLedgerBatch(ctx, org.ID, []store.LedgerRecord{
					{Kind: ledger.KindActionReceived, Actor: "alice", Refs: map[string]string{"action": "a"}, Payload: []byte("hello")},
					{Kind: ledger.KindActionDecided, Actor: "policy", Refs: map[string]string{"action": "a"}, Attrs: map[string]any{"outcome": "allow"}},
				})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := logs.Checkpoint(ctx, org.ID); err != nil {
				t.Fatal(err)
			}
		}
		db := []string{"--database-url", url, "--data-dir", t.TempDir(), "--log-level", "error"}

		file := filepath.Join(t.TempDir(), "export.jsonl")
		if out, err := runLedger(t, append([]string{"export", "-o", file}, db...)...); err != nil {
			t.Fatalf("export: %v %s", err, out)
		}
		out, err := runLedger(t, "verify", file, "--key", vkey)
		if err != nil || !strings.HasPrefix(out, "OK:") || !strings.Contains(out, "signed checkpoints:  3") {
			t.Fatalf("offline verify: %v\n%s", err, out)
		}
		out, err = runLedger(t, append([]string{"verify", "--online", "--org", org.ID, "--key", vkey}, db...)...)
		if err != nil || !strings.HasPrefix(out, "OK:") {
			t.Fatalf("online verify: %v\n%s", err, out)
		}
		// A tampered export fails with the first bad seq, exit status 1.
		raw, _ := os.ReadFile(file)
		bad := strings.Replace(string(raw), `"actor":"policy"`, `"actor":"mallory"`, 1)
		_ = os.WriteFile(file, []byte(bad), 0o600)
		out, err = runLedger(t, "verify", file, "--key", vkey)
		if !errors.Is(err, errNotVerified) || !strings.Contains(out, "first bad seq:       2") {
			t.Fatalf("tampered export: %v\n%s", err, out)
		}
		// Another key: no checkpoint verifies.
		_, otherKey, _ := ledger.GenerateKey("herald.test/k1")
		out, err = runLedger(t, append([]string{"verify", "--online", "--key", otherKey}, db...)...)
		if !errors.Is(err, errNotVerified) || !strings.Contains(out, "not signed by a trusted key") {
			t.Fatalf("wrong key: %v\n%s", err, out)
		}

		out, err = runLedger(t, append([]string{"prove", "3"}, db...)...)
		if err != nil {
			t.Fatalf("prove: %v %s", err, out)
		}
		var bnd ledger.InclusionBundle
		vs, _ := ledger.NewVerifiers(vkey)
		if err := json.Unmarshal([]byte(out), &bnd); err != nil {
			t.Fatal(err)
		}
		if _, err := ledger.VerifyInclusionBundle(bnd, vs); err != nil || bnd.Seq != 3 {
			t.Fatalf("bundle: %v", err)
		}

		out, err = runLedger(t, append([]string{"export", "--format", "csv", "--from", "1", "--to", "3"}, db...)...)
		if err != nil || strings.Count(out, "\n") != 3 || !strings.HasPrefix(out, "seq,time") {
			t.Fatalf("csv: %v\n%s", err, out)
		}
		if _, err := runLedger(t, "verify", file); err == nil {
			t.Fatal("verify without --key succeeded")
		}
	})
}
