package gateway_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestPseudonymousRefsAndErasure: with the pepper from the secret store, the
// ledger names people only by keyed references; after a pepper rotation new
// entries use the new version; erasing the person deletes their payloads
// under both versions and the contact itself, and the exported ledger still
// verifies offline with the checkpoint key.
func TestPseudonymousRefsAndErasure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		pepper := secrets.Pseudonymizer{Store: e.secrets}
		e.s.SetPseudonymizer(pepper)
		co, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator]
		imp := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "31337", "purpose": "support", "legal_basis": "contract", "source": "ticket"}})
		cid := imp.body["contacts"].([]any)[0].(string)
		a1 := e.do("POST", "/v1/actions", op, e.sendReq(cid, "support", "Private diagnosis Okapi")).str("action", "id")
		if _, _, err := pepper.Rotate(ctx, e.org.ID); err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/v1/actions", op, e.sendReq(cid, "support", "Second private note Okapi"))
		e.deliverAll()

		entries, _ := e.s.LedgerEntries(ctx, e.org.ID, store.LedgerFilter{})
		versions := map[string]bool{}
		for _, en := range entries {
			if strings.Contains(en.Refs["contact"], cid) {
				t.Fatalf("entry %d names the contact id", en.Seq)
			}
			if r := en.Refs["contact"]; r != "" {
				versions[r[:3]] = true
			}
		}
		if !versions["v1:"] || !versions["v2:"] {
			t.Fatalf("pseudonym versions seen: %v", versions)
		}
		r := e.do("DELETE", "/v1/contacts/"+cid, co, nil)
		if r.status != 200 || r.body["payloads_deleted"].(float64) < 2 {
			t.Fatalf("erase = %d %s", r.status, r.raw)
		}
		if g := e.do("GET", "/v1/contacts/"+cid, co, nil); g.status != 404 {
			t.Fatalf("erased contact still readable: %d", g.status)
		}
		if g := e.do("GET", "/v1/actions/"+a1, op, nil); g.str("action", "target") != "erased" || strings.Contains(string(g.raw), "Okapi") {
			t.Fatalf("erased person's action still holds personal data: %s", g.raw)
		}
		// Sign a checkpoint over the whole log, export, verify offline.
		skey, vkey, _ := ledger.GenerateKey("erasure-test")
		signer, _ := ledger.NewSigner(skey)
		logs := store.NewLedgerLogs(e.s, "", signer)
		if _, _, err := logs.Checkpoint(ctx, e.org.ID); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := logs.ExportLedger(ctx, e.org.ID, store.LedgerExportOptions{}, &out); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out.Bytes(), []byte("Okapi")) || bytes.Contains(out.Bytes(), []byte("31337")) {
			t.Fatal("the export still holds the erased person's data")
		}
		verifiers, _ := ledger.NewVerifiers(vkey)
		rep, err := ledger.Verify(ctx, bytes.NewReader(out.Bytes()), verifiers)
		if err != nil || !rep.OK || rep.PayloadsPurged < 2 {
			t.Fatalf("after erasure the ledger does not verify: %v %s", err, rep.String())
		}
	})
}
