package facade_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// userSays delivers a person's private message to Herald's inbound webhook
// as Telegram would (with the account's webhook secret).
func (e *env) userSays(t *testing.T, updateID, chat int64, text string) {
	t.Helper()
	if e.hookPath == "" {
		r := e.do("POST", "/v1/accounts/"+e.account.ID+"/webhook-secret", e.admin, nil)
		if r.status != http.StatusOK {
			t.Fatalf("webhook secret: %d %s", r.status, r.raw)
		}
		e.hookPath, e.hookSecret = r.str("url_path"), r.str("secret_token")
	}
	update := map[string]any{"update_id": updateID, "message": map[string]any{"message_id": updateID, "date": e.s.Now().Unix(),
		"chat": map[string]any{"id": chat, "type": "private"}, "from": map[string]any{"id": chat, "is_bot": false, "first_name": "P"},
		"text": text}}
	w := e.do("POST", e.hookPath, "", update, "X-Telegram-Bot-Api-Secret-Token", e.hookSecret)
	if w.status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.status, w.raw)
	}
}

func updateTexts(t *testing.T, r reply) ([]int64, []string) {
	t.Helper()
	if r.status != http.StatusOK || r.body["ok"] != true {
		t.Fatalf("getUpdates: %d %s", r.status, r.raw)
	}
	var ids []int64
	var texts []string
	for _, u := range r.body["result"].([]any) {
		m := u.(map[string]any)
		ids = append(ids, int64(m["update_id"].(float64)))
		texts = append(texts, m["message"].(map[string]any)["text"].(string))
	}
	return ids, texts
}

// TestGetUpdatesServesProcessedUpdates: getUpdates through the facade has
// Telegram's semantics (offset confirms, limit, long poll, 409 while a
// webhook is set) and serves the updates Herald processed: a /stop is
// recorded before the bot sees it.
func TestGetUpdatesServesProcessedUpdates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		// Before the account has a facade token nothing is kept.
		e.userSays(t, 100, 7001, "before any bot")
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		e.contact("7001", herald.PurposeTransactional, herald.PurposeMarketing)
		if _, texts := updateTexts(t, e.bot(tok, "getUpdates", nil)); len(texts) != 0 {
			t.Fatalf("updates from before the token: %v", texts)
		}
		e.userSays(t, 101, 7001, "hello")
		e.userSays(t, 102, 7001, "/stop")
		e.userSays(t, 102, 7001, "/stop") // Telegram resends: queued once
		e.userSays(t, 103, 7001, "third")

		ids, texts := updateTexts(t, e.bot(tok, "getUpdates", map[string]any{"limit": 2}))
		if len(ids) != 2 || ids[0] != 101 || texts[1] != "/stop" {
			t.Fatalf("limit 2: %v %v", ids, texts)
		}
		// The /stop the bot reads was already recorded.
		c, err := e.s.ContactByChat(context.Background(), e.org.ID, "7001")
		if err != nil || c.OptedOutAt == nil {
			t.Fatalf("contact not opted out when the bot reads /stop: %+v %v", c, err)
		}
		// Unconfirmed updates come again; offset confirms.
		if ids, _ = updateTexts(t, e.bot(tok, "getUpdates", nil)); len(ids) != 3 {
			t.Fatalf("unconfirmed: %v", ids)
		}
		if ids, _ = updateTexts(t, e.bot(tok, "getUpdates", map[string]any{"offset": 103})); len(ids) != 1 || ids[0] != 103 {
			t.Fatalf("offset 103: %v", ids)
		}
		// getWebhookInfo counts what is pending, with no webhook.
		r := e.bot(tok, "getWebhookInfo", nil)
		if r.str("result", "url") != "" || r.num("result", "pending_update_count") != 1 || r.body["result"].(map[string]any)["has_custom_certificate"] != false {
			t.Fatalf("getWebhookInfo: %s", r.raw)
		}
		// Long poll: a waiting getUpdates returns as soon as an update lands.
		got := make(chan reply, 1)
		go func() { got <- e.bot(tok, "getUpdates", map[string]any{"offset": 104, "timeout": 30}) }()
		time.Sleep(300 * time.Millisecond) // let it wait; correctness does not depend on it
		e.userSays(t, 104, 7001, "long polled")
		select {
		case r := <-got:
			if ids, texts := updateTexts(t, r); len(ids) != 1 || texts[0] != "long polled" {
				t.Fatalf("long poll: %v %v", ids, texts)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the long poll did not return with the update")
		}
		// A timeout with nothing queued answers an empty list.
		if ids, _ = updateTexts(t, e.bot(tok, "getUpdates", map[string]any{"offset": 105, "timeout": 1})); len(ids) != 0 {
			t.Fatalf("empty poll: %v", ids)
		}
		// Negative offset: the last update only, the rest forgotten.
		e.userSays(t, 105, 7001, "a")
		e.userSays(t, 106, 7001, "b")
		if ids, _ = updateTexts(t, e.bot(tok, "getUpdates", map[string]any{"offset": -1})); len(ids) != 1 || ids[0] != 106 {
			t.Fatalf("offset -1: %v", ids)
		}
		if r := e.bot(tok, "getWebhookInfo", nil); r.num("result", "pending_update_count") != 1 {
			t.Fatalf("after offset -1: %s", r.raw)
		}
		// While a webhook is set, getUpdates is a 409 Conflict, as Telegram's.
		r = e.bot(tok, "setWebhook", map[string]any{"url": "https://bot.example/hook"})
		if r.status != 200 || r.body["result"] != true || r.str("description") != "Webhook was set" {
			t.Fatalf("setWebhook: %d %s", r.status, r.raw)
		}
		r = e.bot(tok, "getUpdates", nil)
		if r.status != http.StatusConflict || r.num("error_code") != 409 ||
			r.str("description") != "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" {
			t.Fatalf("getUpdates with a webhook: %d %s", r.status, r.raw)
		}
		if r = e.bot(tok, "deleteWebhook", map[string]any{"drop_pending_updates": true}); r.str("description") != "Webhook was deleted" {
			t.Fatalf("deleteWebhook: %s", r.raw)
		}
		if r = e.bot(tok, "deleteWebhook", nil); r.str("description") != "Webhook is already deleted" || r.body["result"] != true {
			t.Fatalf("deleteWebhook again: %s", r.raw)
		}
		if ids, _ = updateTexts(t, e.bot(tok, "getUpdates", nil)); len(ids) != 0 {
			t.Fatalf("drop_pending_updates kept %v", ids)
		}
		// Nothing of this reached Telegram, and nothing was ledgered as sent.
		if n := len(e.fake.Messages()); n != 0 {
			t.Fatalf("Telegram got %d messages", n)
		}
	})
}

// hookRecorder is a bot's own webhook: it records what Herald forwards and
// whether the person was opted out at that moment.
type hookRecorder struct {
	mu      sync.Mutex
	fail    bool
	bodies  []map[string]any
	secrets []string
	optOut  []bool
	got     chan struct{}
}

// TestWebhookModeForwardsAfterOptOut: a bot that set its webhook through
// the facade gets each update at its own URL, with its secret_token, after
// Herald processed the opt-out; a failing webhook is retried and shown in
// getWebhookInfo; the next marketing send is denied.
func TestWebhookModeForwardsAfterOptOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		promo := e.facadeToken("promo-bot", herald.RoleOperator, herald.PurposeMarketing, "")
		e.contact("7002", herald.PurposeMarketing)
		rec := &hookRecorder{got: make(chan struct{}, 16)}
		bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if rec.fail {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			var v map[string]any
			_ = json.Unmarshal(raw, &v)
			c, _ := e.s.ContactByChat(context.Background(), e.org.ID, "7002")
			rec.bodies = append(rec.bodies, v)
			rec.secrets = append(rec.secrets, r.Header.Get("X-Telegram-Bot-Api-Secret-Token"))
			rec.optOut = append(rec.optOut, c.OptedOutAt != nil)
			rec.got <- struct{}{}
		}))
		t.Cleanup(bot.Close)
		r := e.bot(promo, "setWebhook", map[string]any{"url": bot.URL + "/hook/abc", "secret_token": "bot-own_secret-1"})
		if r.status != 200 || r.str("description") != "Webhook was set" {
			t.Fatalf("setWebhook: %d %s", r.status, r.raw)
		}
		if r = e.bot(promo, "setWebhook", map[string]any{"url": bot.URL + "/hook/abc", "secret_token": "bot-own_secret-1"}); r.str("description") != "Webhook is already set" {
			t.Fatalf("setWebhook again: %s", r.raw)
		}
		wait := func() {
			t.Helper()
			select {
			case <-rec.got:
			case <-time.After(20 * time.Second):
				t.Fatal("the bot's webhook got nothing")
			}
		}
		e.userSays(t, 201, 7002, "hi")
		wait()
		e.userSays(t, 202, 7002, "/stop")
		wait()
		rec.mu.Lock()
		if len(rec.bodies) != 2 || rec.bodies[1]["update_id"] != float64(202) || rec.secrets[1] != "bot-own_secret-1" ||
			rec.optOut[0] || !rec.optOut[1] {
			t.Fatalf("forwarded %v secrets %v opted out %v", rec.bodies, rec.secrets, rec.optOut)
		}
		rec.mu.Unlock()
		// The next marketing send is denied, Telegram-style.
		r = e.bot(promo, "sendMessage", map[string]any{"chat_id": 7002, "text": "Sale!"})
		if r.status != 403 || !strings.HasPrefix(r.str("description"), "Forbidden: consent.opted_out: ") {
			t.Fatalf("after /stop: %d %s", r.status, r.raw)
		}
		// A failing webhook: shown in getWebhookInfo, retried until it answers.
		rec.mu.Lock()
		rec.fail = true
		rec.mu.Unlock()
		e.userSays(t, 203, 7002, "/start")
		deadline := time.Now().Add(20 * time.Second)
		for {
			r = e.bot(promo, "getWebhookInfo", nil)
			if strings.HasPrefix(r.str("result", "last_error_message"), "Wrong response from the webhook: 500") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("getWebhookInfo shows no error: %s", r.raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if r.str("result", "url") != bot.URL+"/hook/abc" || r.num("result", "pending_update_count") != 1 || r.num("result", "max_connections") != 40 {
			t.Fatalf("getWebhookInfo: %s", r.raw)
		}
		if strings.Contains(string(r.raw), "bot-own_secret-1") {
			t.Fatal("getWebhookInfo shows the secret token")
		}
		rec.mu.Lock()
		rec.fail = false
		rec.mu.Unlock()
		wait()
		rec.mu.Lock()
		if last := rec.bodies[len(rec.bodies)-1]; last["update_id"] != float64(203) {
			t.Fatalf("redelivered %v", last)
		}
		rec.mu.Unlock()
		e.assertLogsHide("bot-own_secret-1", "/hook/abc", e.botTok)
	})
}

// TestGrammYLongPollingThroughTheFacade: an unmodified grammY bot using
// bot.start() (long polling) through Herald receives a person's messages;
// the person's /stop reaches the bot after Herald opted them out, and the
// bot's marketing send that follows makes grammY throw GrammyError 403.
func TestGrammYLongPollingThroughTheFacade(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		promo := e.facadeToken("promo-bot", herald.RoleOperator, herald.PurposeMarketing, "")
		e.contact("7003", herald.PurposeMarketing)
		script := botScript(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", script, "grammy-poll", promo, "7003", "Flash sale")
		cmd.Env = append(os.Environ(), "HERALD_API_ROOT="+e.srv.URL)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan map[string]any, 16)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var v map[string]any
				if json.Unmarshal(sc.Bytes(), &v) == nil {
					lines <- v
				}
			}
		}()
		next := func() map[string]any {
			t.Helper()
			select {
			case v, ok := <-lines:
				if !ok {
					t.Fatalf("the bot exited early: %s", stderr.String())
				}
				return v
			case <-time.After(60 * time.Second):
				t.Fatalf("the bot printed nothing: %s", stderr.String())
			}
			return nil
		}
		if v := next(); v["started"] != true || v["username"] != "fake_4242_bot" {
			t.Fatalf("start: %v", v)
		}
		e.userSays(t, 301, 7003, "hello bot")
		if v := next(); v["text"] != "hello bot" || v["update_id"] != float64(301) || v["chat"] != float64(7003) {
			t.Fatalf("first update: %v", v)
		}
		e.userSays(t, 302, 7003, "/stop")
		if v := next(); v["text"] != "/stop" {
			t.Fatalf("second update: %v", v)
		}
		v := next()
		if v["grammy_error"] != true || v["error_code"] != float64(403) || !strings.HasPrefix(v["description"].(string), "Forbidden: consent.opted_out: ") {
			t.Fatalf("send after /stop: %v", v)
		}
		if v := next(); v["stopped"] != true {
			t.Fatalf("stop: %v", v)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("bot: %v %s", err, stderr.String())
		}
		if n := len(e.fake.MessagesTo("7003")); n != 0 {
			t.Fatalf("Telegram got %d messages for an opted-out person", n)
		}
		// bot.stop() confirmed what it read: nothing is pending.
		if r := e.bot(promo, "getWebhookInfo", nil); r.num("result", "pending_update_count") != 0 {
			t.Fatalf("pending after stop: %s", r.raw)
		}
		k := e.ledgerKinds()
		if k["contact.opted_out"] != 1 || k["action.denied"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}

// TestErasureDeletesQueuedUpdates: a person's messages waiting for the bot
// are deleted when the person is erased; other people's stay.
func TestErasureDeletesQueuedUpdates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		gone := e.contact("7101", herald.PurposeTransactional)
		e.contact("7102", herald.PurposeTransactional)
		e.userSays(t, 401, 7101, "my address is 1 Main St")
		e.userSays(t, 402, 7102, "hello")
		if r := e.do("DELETE", "/v1/contacts/"+gone, e.officer, nil); r.status >= 300 {
			t.Fatalf("erase: %d %s", r.status, r.raw)
		}
		ids, texts := updateTexts(t, e.bot(tok, "getUpdates", nil))
		if len(ids) != 1 || ids[0] != 402 || texts[0] != "hello" {
			t.Fatalf("after erasure: %v %v", ids, texts)
		}
	})
}
