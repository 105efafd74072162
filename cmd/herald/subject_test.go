package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestSubjectVerifyCommand: an access export written to a file verifies
// with `herald subject verify` and the public key alone; a wrong key and
// an altered entry are refused with a non-zero exit.
func TestSubjectVerifyCommand(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, storetest.SQLite)
	org, err := s.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	var contact string
	err = s.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ImportContacts(ctx, org.ID, []herald.ContactImportRow{{ChatID: "8181001", Purpose: "marketing", LegalBasis: "consent", Source: "form"}})
		if err == nil {
			contact = res.Contacts[0]
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.CreateSubjectRequest(ctx, org.ID, store.SubjectAccess, contact, "auditor-1")
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := ledger.GenerateKey("herald-test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	x, err := dpia.BuildSubjectExport(ctx, s, store.NewLedgerLogs(s, "", signer), []string{vkey}, req)
	if err != nil || len(x.Ledger) == 0 {
		t.Fatalf("export: %d entries, %v", len(x.Ledger), err)
	}
	write := func(name string, x *dpia.SubjectExport) string {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("export.json", x)
	out, err := runInProcess(newSubjectCmd(), "verify", good, "--key", vkey)
	if err != nil || !strings.Contains(out, "OK: 1 ledger entries") {
		t.Fatalf("verify: %v %s", err, out)
	}
	_, other, _ := ledger.GenerateKey("herald-test/ledger")
	if out, err := runInProcess(newSubjectCmd(), "verify", good, "--key", other); err == nil {
		t.Fatalf("verified with another key: %s", out)
	}
	x.Ledger[0].Entry.Attrs["kind"] = "erasure"
	if out, err := runInProcess(newSubjectCmd(), "verify", write("altered.json", x), "--key", vkey); err == nil {
		t.Fatalf("an altered entry verified: %s", out)
	}
}
