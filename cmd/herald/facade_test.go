package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/store/storetest"
)

// TestFacadeAcrossTwoProcesses: the composition root mounts the Bot API
// facade. Process A holds the bot's secret and runs the delivery worker;
// process B serves the facade without a worker. A bot calling B is governed:
// the action is delivered by A and B answers with Telegram's own Message.
// A token revoked through A is refused by B at once.
func TestFacadeAcrossTwoProcesses(t *testing.T) {
	const botToken = "777000:facade-two-process-token-aaaaaaaaaaaaa"
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{botToken}})
	defer fake.Close()
	dbURL := storetest.NewDatabase(t)
	a := start(t, t.TempDir(), dbURL, "--botapi-url", fake.URL())
	admin := keyPattern.FindString(a.stdout.String())
	b := start(t, t.TempDir(), dbURL, "--botapi-url", fake.URL(), "--worker=false")
	officer := keyFor(t, a, "", dbURL, "compliance_officer")

	acc := a.call(t, "POST", "/v1/accounts", admin, map[string]any{"name": "shop", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": botToken}})
	accID, _ := acc["id"].(string)
	if accID == "" {
		t.Fatalf("create account: %v", acc)
	}
	tok := a.call(t, "POST", "/v1/accounts/"+accID+"/facade-tokens", admin,
		map[string]any{"principal": "shop-bot", "role": "operator", "purpose": "transactional"})
	token, _ := tok["token"].(string)
	tokenID, _ := tok["facade_token"].(map[string]any)["id"].(string)
	if token == "" {
		t.Fatalf("create facade token: %v", tok)
	}
	imp := a.call(t, "POST", "/v1/contacts:import", officer, []map[string]any{{"chat_id": "4711", "purpose": "transactional",
		"legal_basis": "contract", "source": "orders"}})
	if imp["created"] != float64(1) {
		t.Fatalf("import: %v", imp)
	}

	bot := func(p *proc, method string, params any) (int, map[string]any) {
		raw, _ := json.Marshal(params)
		res, err := http.Post("http://"+p.addr+"/bot"+token+"/"+method, "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %d %s", method, res.StatusCode, body)
		}
		return res.StatusCode, out
	}
	// Casbin in B learns of the token's binding by notification or poll.
	var status int
	var out map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, out = bot(b, "sendMessage", map[string]any{"chat_id": 4711, "text": "shipped"})
		if status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sent := fake.MessagesTo("4711")
	if status != http.StatusOK || len(sent) != 1 {
		t.Fatalf("sendMessage through B: %d %v (Telegram has %+v)", status, out, sent)
	}
	if res, _ := out["result"].(map[string]any); res["message_id"] != float64(sent[0].MessageID) || res["text"] != "shipped" {
		t.Fatalf("result is not Telegram's Message: %v", out)
	}
	// A's facade forwards getMe with the real token.
	if st, me := bot(a, "getMe", map[string]any{}); st != http.StatusOK || me["result"].(map[string]any)["username"] != "fake_777000_bot" {
		t.Fatalf("getMe: %d %v", st, me)
	}
	del := a.call(t, "DELETE", "/v1/accounts/"+accID+"/facade-tokens/"+tokenID, admin, nil)
	if del["facade_token"] == nil {
		t.Fatalf("revoke: %v", del)
	}
	if st, body := bot(b, "sendMessage", map[string]any{"chat_id": 4711, "text": "again"}); st != http.StatusUnauthorized || body["ok"] != false {
		t.Fatalf("B after revocation through A: %d %v", st, body)
	}
	if n := len(fake.MessagesTo("4711")); n != 1 {
		t.Fatalf("Telegram has %d messages", n)
	}
}
