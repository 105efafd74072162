package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func update(chat int64, text string) map[string]any {
	return map[string]any{"update_id": 1, "message": map[string]any{"date": daytime.Unix(), "text": text,
		"chat": map[string]any{"id": chat, "type": "private"}, "from": map[string]any{"id": chat, "language_code": "de"}}}
}

func TestInboundOptOutEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		admin, op := e.keys[herald.RoleAdmin], e.keys[herald.RoleOperator]
		sec := e.do("POST", "/v1/accounts/"+e.account.ID+"/webhook-secret", admin, nil)
		secret := sec.str("secret_token")
		if sec.status != 200 || len(secret) < 32 {
			t.Fatalf("webhook secret = %d %s", sec.status, sec.raw)
		}
		hook := "/v1/telegram/webhook/" + e.account.ID
		if r := e.do("POST", hook, "", update(1, "hi"), "X-Telegram-Bot-Api-Secret-Token", "wrong"); r.status != http.StatusNotFound {
			t.Fatalf("wrong secret = %d", r.status)
		}
		// A person writes: a contact is created with last_inbound_at, so
		// support replies within 24 h are allowed without other basis.
		if r := e.do("POST", hook, "", update(4242, "Where is my order?"), "X-Telegram-Bot-Api-Secret-Token", secret); r.status != 200 {
			t.Fatalf("inbound = %d %s", r.status, r.raw)
		}
		res := e.do("POST", "/v1/actions", op, e.sendReq("4242", "support", "It ships today"))
		if res.str("action", "status") != "scheduled" {
			t.Fatalf("support reply after inbound message: %s", res.raw)
		}
		// Marketing consent, then "Стоп" opts out (all purposes) with a confirmation.
		e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{
			{"chat_id": "4242", "purpose": "marketing", "legal_basis": "consent", "source": "form"},
			{"chat_id": "4242", "purpose": "transactional", "legal_basis": "contract", "source": "order"}})
		r := e.do("POST", hook, "", update(4242, "  Стоп "), "X-Telegram-Bot-Api-Secret-Token", secret)
		if r.status != 200 || r.str("method") != "sendMessage" || r.body["chat_id"].(float64) != 4242 {
			t.Fatalf("opt-out reply = %d %s", r.status, r.raw)
		}
		c, err := e.s.ContactByChat(context.Background(), e.org.ID, "4242")
		if err != nil || c.OptedOutAt == nil || c.OptOutSource != "telegram.keyword" {
			t.Fatalf("contact after Стоп: %+v %v", c, err)
		}
		if res := e.do("POST", "/v1/actions", op, e.sendReq("4242", "transactional", "receipt")); res.str("action", "status") != "denied" {
			t.Fatalf("send after opt-out: %s", res.raw)
		}
		// /start re-opts in only purposes whose basis allows it.
		e.do("POST", hook, "", update(4242, "/start"), "X-Telegram-Bot-Api-Secret-Token", secret)
		c, _ = e.s.ContactByChat(context.Background(), e.org.ID, "4242")
		if c.OptedOutAt != nil || len(c.Consents) != 1 || c.Consents[0].Purpose != "transactional" {
			t.Fatalf("after /start: %+v", c)
		}
		// Blocking the bot (my_chat_member kicked) suppresses.
		e.do("POST", hook, "", map[string]any{"update_id": 9, "my_chat_member": map[string]any{"date": daytime.Unix(),
			"chat": map[string]any{"id": 4242, "type": "private"}, "new_chat_member": map[string]any{"status": "kicked"}}},
			"X-Telegram-Bot-Api-Secret-Token", secret)
		c, _ = e.s.ContactByChat(context.Background(), e.org.ID, "4242")
		if c.OptedOutAt == nil || c.OptOutSource != "telegram.blocked" {
			t.Fatalf("after block: %+v", c)
		}
		entries, _ := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{})
		kinds := map[string]int{}
		for _, en := range entries {
			if en.Refs["contact"] == c.ID {
				kinds[en.Kind]++
			}
		}
		if kinds["contact.opted_out"] != 2 || kinds["contact.opted_in"] != 1 {
			t.Fatalf("ledger of the contact: %v", kinds)
		}
	})
}
