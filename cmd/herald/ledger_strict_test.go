package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestLedgerCLIVerifyIsStrict: `herald ledger verify` on an export from the
// live database rejects each line a lenient JSON reader would accept with
// the stored hash (an unknown member, a case-variant duplicate, a duplicate
// placed before the real member), exit status 1, naming the seq.
func TestLedgerCLIVerifyIsStrict(t *testing.T) {
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
		err = s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.AppendLedgerBatch(ctx, org.ID, []store.LedgerRecord{
				{Kind: ledger.KindActionReceived, Actor: "alice", Refs: map[string]string{"action": "a"}},
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
		db := []string{"--database-url", url, "--data-dir", t.TempDir(), "--log-level", "error"}
		file := filepath.Join(t.TempDir(), "export.jsonl")
		if out, err := runLedger(t, append([]string{"export", "-o", file}, db...)...); err != nil {
			t.Fatalf("export: %v %s", err, out)
		}
		if out, err := runLedger(t, "verify", file, "--key", vkey); err != nil || !strings.HasPrefix(out, "OK:") {
			t.Fatalf("clean export: %v\n%s", err, out)
		}
		raw, _ := os.ReadFile(file)
		for _, c := range []struct{ name, old, new, want string }{
			{"unknown member", `"actor":"policy"`, `"actor":"policy","approved_by":"board"`, `unknown member "approved_by"`},
			{"case-variant duplicate", `"actor":"policy"`, `"ACTOR":"mallory","actor":"policy"`, `unknown member "ACTOR"`},
			{"duplicate before the real one", `"actor":"policy"`, `"actor":"mallory","actor":"policy"`, `duplicate member "actor"`},
		} {
			bad := strings.Replace(string(raw), c.old, c.new, 1)
			if bad == string(raw) {
				t.Fatalf("%s: edit did not apply", c.name)
			}
			f := filepath.Join(t.TempDir(), "bad.jsonl")
			if err := os.WriteFile(f, []byte(bad), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runLedger(t, "verify", f, "--key", vkey)
			if !errors.Is(err, errNotVerified) || !strings.Contains(out, "first bad seq:       2") ||
				!strings.Contains(out, "entry seq 2: "+c.want) {
				t.Fatalf("%s: %v\n%s", c.name, err, out)
			}
		}
	})
}
