package gateway_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestErasureScrubsEveryChatID: a person is messaged by contact id and by
// their bare chat id, some sends delivered (receipts carry the chat id), one
// still queued. After DELETE /v1/contacts/{id}, their chat id is in no API
// answer, in no row of the database (pg_dump / every SQLite table, plain and
// hex-encoded) and not in the ledger export, which still verifies offline.
// Another person of the same organisation and the same chat id in another
// organisation are untouched.
func TestErasureScrubsEveryChatID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		e.s.SetPseudonymizer(secrets.Pseudonymizer{Store: e.secrets})
		co, op, aud := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]
		const chat, other = "918273645", "555000111"
		imp := e.do("POST", "/v1/contacts:import", co, []map[string]any{
			{"chat_id": chat, "purpose": "support", "legal_basis": "contract", "source": "ticket"},
			{"chat_id": other, "purpose": "support", "legal_basis": "contract", "source": "ticket"},
		})
		if imp.status != 200 && imp.status != 201 {
			t.Fatalf("import = %d %s", imp.status, imp.raw)
		}
		cid := imp.body["contacts"].([]any)[0].(string)

		// A second organisation knows a person with the same chat id.
		org2, err := e.s.CreateOrg(ctx, "Globex", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		acc2, err := e.s.CreateAccount(ctx, herald.Account{Org: org2.ID, Name: "bot2", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		co2, op2 := e.newKey(org2.ID, "co2", herald.RoleComplianceOfficer), e.newKey(org2.ID, "op2", herald.RoleOperator)
		if r := e.do("POST", "/v1/contacts:import", co2, []map[string]any{{"chat_id": chat, "purpose": "support", "legal_basis": "contract", "source": "ticket"}}); r.status >= 300 {
			t.Fatalf("org2 import = %d %s", r.status, r.raw)
		}
		req2 := e.sendReq(chat, "support", "Globex note")
		req2["account"] = acc2.ID

		var ids []string
		submit := func(tok string, req map[string]any) {
			t.Helper()
			r := e.do("POST", "/v1/actions", tok, req)
			if r.status != http.StatusCreated {
				t.Fatalf("submit = %d %s", r.status, r.raw)
			}
			if tok == op {
				ids = append(ids, r.str("action", "id"))
			}
		}
		submit(op, e.sendReq(cid, "support", "By contact id"))
		submit(op, e.sendReq(chat, "support", "By chat id"))
		submit(op, e.sendReq(other, "support", "Someone else"))
		submit(op2, req2)
		e.deliverAll()
		later := e.sendReq(chat, "support", "Queued by chat id")
		later["schedule_at"] = daytime.Add(48 * time.Hour).Format(time.RFC3339)
		submit(op, later)

		hexChat := hex.EncodeToString([]byte(chat))
		dump := storetest.Dump(t, e.s)
		if !strings.Contains(dump, chat) || !strings.Contains(dump, other) {
			t.Fatal("the dump does not show the chat ids before erasure: the check below could not fail")
		}
		if g := e.do("GET", "/v1/actions/"+ids[1], op, nil); !strings.Contains(string(g.raw), chat) {
			t.Fatalf("before erasure the receipt should carry the chat id: %s", g.raw)
		}

		if r := e.do("DELETE", "/v1/contacts/"+cid, co, nil); r.status != 200 {
			t.Fatalf("erase = %d %s", r.status, r.raw)
		}

		// 1. The API.
		answers := []response{e.do("GET", "/v1/actions?limit=100", op, nil), e.do("GET", "/v1/approvals", co, nil),
			e.do("GET", "/v1/ledger/entries?limit=1000", aud, nil), e.do("GET", "/v1/contacts/"+cid, co, nil)}
		for _, id := range ids {
			answers = append(answers, e.do("GET", "/v1/actions/"+id, op, nil))
		}
		for _, a := range answers {
			if a.status >= 500 || strings.Contains(string(a.raw), chat) {
				t.Fatalf("an API answer still holds the erased chat id: %d %s", a.status, a.raw)
			}
		}
		if g := e.do("GET", "/v1/actions/"+ids[2], op, nil); !strings.Contains(string(g.raw), other) {
			t.Fatalf("another person's action lost its chat id: %s", g.raw)
		}
		if g := e.do("GET", "/v1/actions/"+ids[3], op, nil); g.str("action", "status") == string(herald.StatusScheduled) {
			t.Fatalf("the erased person's queued send is still scheduled: %s", g.raw)
		}

		// 2. The database: only org2's rows may name the chat id.
		dump = storetest.Dump(t, e.s)
		for _, line := range strings.Split(dump, "\n") {
			if (strings.Contains(line, chat) || strings.Contains(line, hexChat)) && !strings.Contains(line, org2.ID) {
				t.Fatalf("a database row still holds the erased chat id:\n%s", line)
			}
		}
		if !strings.Contains(dump, other) {
			t.Fatal("erasure removed another person's chat id")
		}
		if r := e.do("GET", "/v1/actions?limit=100", op2, nil); !strings.Contains(string(r.raw), chat) {
			t.Fatalf("erasure in one organisation touched another's: %s", r.raw)
		}

		// 3. The ledger export, which still verifies.
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
		if bytes.Contains(out.Bytes(), []byte(chat)) || bytes.Contains(out.Bytes(), []byte(hexChat)) {
			t.Fatal("the ledger export still holds the erased chat id")
		}
		verifiers, _ := ledger.NewVerifiers(vkey)
		rep, err := ledger.Verify(ctx, bytes.NewReader(out.Bytes()), verifiers)
		if err != nil || !rep.OK {
			t.Fatalf("after erasure the ledger does not verify: %v %s", err, rep.String())
		}
	})
}
