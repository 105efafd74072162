package facade_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestFacadeSendMessageAnswersLikeTelegram: a transactional sendMessage to
// a contact, sent as a bot sends it, is delivered by Herald and answered
// with Telegram's own Message (the fake's record is the witness); an
// identical retry is answered from the same action without a second send;
// every step is in the ledger.
func TestFacadeSendMessageAnswersLikeTelegram(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		e.contact("1001", herald.PurposeTransactional)
		params := map[string]any{"chat_id": 1001, "text": "Your order #42 has shipped"}
		r := e.bot(tok, "sendMessage", params)
		if r.status != http.StatusOK || r.body["ok"] != true {
			t.Fatalf("sendMessage: %d %s", r.status, r.raw)
		}
		sent := e.fake.MessagesTo("1001")
		if len(sent) != 1 || sent[0].Text != "Your order #42 has shipped" {
			t.Fatalf("Telegram received %+v", sent)
		}
		if got := int64(r.num("result", "message_id")); got != sent[0].MessageID || got == 0 {
			t.Fatalf("message_id %d, Telegram assigned %d", got, sent[0].MessageID)
		}
		if r.str("result", "text") != "Your order #42 has shipped" || r.num("result", "chat", "id") != 1001 {
			t.Fatalf("result is not Telegram's Message: %s", r.raw)
		}
		again := e.bot(tok, "sendMessage", params)
		if again.status != http.StatusOK || again.num("result", "message_id") != r.num("result", "message_id") {
			t.Fatalf("retry: %d %s", again.status, again.raw)
		}
		if n := len(e.fake.MessagesTo("1001")); n != 1 {
			t.Fatalf("an identical retry sent again: %d messages", n)
		}
		k := e.ledgerKinds()
		if k["action.received"] != 1 || k["action.delivered"] != 1 || k["key.created"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
		e.assertLogsHide(tok, tok[3:15], e.botTok, "Your order #42", `"1001"`, `:1001`)
	})
}

// TestFacadeDeniedIsForbiddenWithRuleID: a marketing sendMessage to a
// contact who opted out is answered 403 "Forbidden: <rule>: <message>" with
// the rule ids in parameters, reaches nobody, and is ledgered as denied.
func TestFacadeDeniedIsForbiddenWithRuleID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("promo-bot", herald.RoleOperator, herald.PurposeMarketing, "")
		id := e.contact("2002", herald.PurposeMarketing)
		if r := e.do("POST", "/v1/contacts/"+id+"/opt-out", e.officer, map[string]any{}); r.status != http.StatusOK {
			t.Fatalf("opt out: %d %s", r.status, r.raw)
		}
		r := e.bot(tok, "sendMessage", map[string]any{"chat_id": "2002", "text": "50% off today"})
		if r.status != http.StatusForbidden || r.body["ok"] != false || r.num("error_code") != 403 {
			t.Fatalf("want 403, got %d %s", r.status, r.raw)
		}
		if !strings.HasPrefix(r.str("description"), "Forbidden: consent.opted_out: ") {
			t.Fatalf("description %q", r.str("description"))
		}
		rules, _ := r.body["parameters"].(map[string]any)["herald_rules"].([]any)
		if len(rules) == 0 || rules[0] != "consent.opted_out" {
			t.Fatalf("parameters: %s", r.raw)
		}
		if n := len(e.fake.Messages()); n != 0 {
			t.Fatalf("Telegram received %d messages", n)
		}
		if k := e.ledgerKinds(); k["action.denied"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}

// TestFacadeFormsAndPhotos: urlencoded, multipart and query-string calls
// are read as Telegram reads them; sendPhoto by URL is delivered and
// answered with the photo Message.
func TestFacadeFormsAndPhotos(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		e.contact("3003", herald.PurposeTransactional)
		form := url.Values{"chat_id": {"3003"}, "text": {"form-encoded"}}
		r := e.raw("POST", "/bot"+tok+"/sendMessage", "application/x-www-form-urlencoded", []byte(form.Encode()))
		if r.status != http.StatusOK || r.str("result", "text") != "form-encoded" {
			t.Fatalf("urlencoded: %d %s", r.status, r.raw)
		}
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		_ = mw.WriteField("chat_id", "3003")
		_ = mw.WriteField("photo", "https://example.com/p.jpg")
		_ = mw.WriteField("caption", "your parcel")
		_ = mw.Close()
		r = e.raw("POST", "/bot"+tok+"/sendPhoto", mw.FormDataContentType(), mp.Bytes())
		if r.status != http.StatusOK || r.str("result", "caption") != "your parcel" {
			t.Fatalf("multipart sendPhoto: %d %s", r.status, r.raw)
		}
		r = e.raw("GET", "/bot"+tok+"/sendMessage?chat_id=3003&text=query", "", nil)
		if r.status != http.StatusOK || r.str("result", "text") != "query" {
			t.Fatalf("GET: %d %s", r.status, r.raw)
		}
		msgs := e.fake.MessagesTo("3003")
		if len(msgs) != 3 || msgs[1].Method != "sendPhoto" || msgs[1].Photo != "https://example.com/p.jpg" {
			t.Fatalf("Telegram received %+v", msgs)
		}
		// Edit and delete the photo message through the facade.
		mid := strconv.FormatInt(msgs[0].MessageID, 10)
		r = e.bot(tok, "editMessageText", map[string]any{"chat_id": "3003", "message_id": mid, "text": "edited"})
		if r.status != http.StatusOK || r.str("result", "text") != "edited" {
			t.Fatalf("edit: %d %s", r.status, r.raw)
		}
		r = e.bot(tok, "deleteMessage", map[string]any{"chat_id": "3003", "message_id": mid})
		if r.status != http.StatusOK || r.body["result"] != true {
			t.Fatalf("delete: %d %s", r.status, r.raw)
		}
		// Telegram's own refusal passes through with its code and text.
		r = e.bot(tok, "deleteMessage", map[string]any{"chat_id": "3003", "message_id": 999})
		if r.status != http.StatusBadRequest || r.str("description") != "Bad Request: message to delete not found" {
			t.Fatalf("Telegram's error: %d %s", r.status, r.raw)
		}
	})
}

// TestFacadeDeferral: a marketing send inside quiet hours is answered per
// token: 429 with retry_after until the quiet hours end, or ok with the
// synthetic scheduled result. Nothing reaches Telegram before the end.
func TestFacadeDeferral(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		// 23:00 in Berlin: ten hours of quiet left.
		e := newEnv(t, b, envOpts{start: time.Date(2026, 3, 10, 22, 0, 0, 0, time.UTC)})
		e.contact("4004", herald.PurposeMarketing)
		retry := e.facadeToken("promo-retry", herald.RoleOperator, herald.PurposeMarketing, "retry_after")
		sched := e.facadeToken("promo-sched", herald.RoleOperator, herald.PurposeMarketing, "scheduled")
		r := e.bot(retry, "sendMessage", map[string]any{"chat_id": "4004", "text": "night deal"})
		after := r.num("parameters", "retry_after")
		if r.status != http.StatusTooManyRequests || after < 9*3600 || after > 10*3600 {
			t.Fatalf("retry_after mode: %d %s", r.status, r.raw)
		}
		r = e.bot(sched, "sendMessage", map[string]any{"chat_id": "4004", "text": "night deal 2"})
		if r.status != http.StatusOK || r.str("result", "herald", "status") != "scheduled" || r.num("result", "message_id") != 0 {
			t.Fatalf("scheduled mode: %d %s", r.status, r.raw)
		}
		if n := len(e.fake.Messages()); n != 0 {
			t.Fatalf("sent during quiet hours: %d", n)
		}
	})
}

func (e *env) raw(method, path, ct string, body []byte) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	r := reply{status: res.StatusCode, raw: buf.Bytes()}
	_ = json.Unmarshal(r.raw, &r.body)
	return r
}
