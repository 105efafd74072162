package facade_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// snapshot is everything a facade call could change.
type snapshot struct {
	actions, ledger, sent, calls, hooks int
	stats                               string
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	if s.actions, err = store.CountForTest(ctx, e.s, "SELECT count(*) FROM actions"); err != nil {
		e.t.Fatal(err)
	}
	if s.ledger, err = store.CountForTest(ctx, e.s, "SELECT count(*) FROM ledger_entries"); err != nil {
		e.t.Fatal(err)
	}
	if s.calls, err = store.CountForTest(ctx, e.s, "SELECT count(*) FROM facade_calls"); err != nil {
		e.t.Fatal(err)
	}
	if s.hooks, err = store.CountForTest(ctx, e.s, "SELECT count(*) FROM facade_webhooks"); err != nil {
		e.t.Fatal(err)
	}
	s.sent = len(e.fake.Messages())
	st, _ := json.Marshal(e.fake.Stats())
	s.stats = string(st)
	return s
}

// direct calls the fake Telegram with the real token: the reference answer.
func (e *env) direct(method, ct string, body []byte) reply {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.fake.URL()+"/bot"+e.botTok+"/"+method, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := reply{status: res.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// TestFacadePassThroughMatchesTelegram: for every method the facade
// forwards, its answer (status and body) is the fake Telegram's own answer
// to the same call made directly with the real token.
func TestFacadePassThroughMatchesTelegram(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tok := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		calls := []struct{ method, body string }{
			{"getMe", `{}`}, {"getChat", `{"chat_id":1}`}, {"getChatMember", `{"chat_id":1,"user_id":2}`},
			{"getFile", `{"file_id":"x"}`}, {"answerCallbackQuery", `{"callback_query_id":"1"}`},
			{"sendChatAction", `{"chat_id":1,"action":"typing"}`}, {"noSuchMethod", `{}`},
			{"getChatAdministrators", `{"chat_id":-1001}`}, {"getChatMemberCount", `{"chat_id":-1001}`},
			{"getMyCommands", `{}`}, {"setMyCommands", `{"commands":[{"command":"start","description":"Start"}]}`},
			{"getMe", ``}, {"getChat", `{}`}, {"getChat", `{"chat_id":`},
		}
		for _, c := range calls {
			before := e.snapshot()
			want := e.direct(c.method, "application/json", []byte(c.body))
			got := e.raw("POST", "/bot"+tok+"/"+c.method, "application/json", []byte(c.body))
			if got.status != want.status || !jsonEqual(got.raw, want.raw) {
				t.Errorf("%s: facade %d %s, Telegram %d %s", c.method, got.status, got.raw, want.status, want.raw)
			}
			after := e.snapshot()
			if after.actions != before.actions || after.ledger != before.ledger {
				t.Errorf("%s: a forwarded call created actions or ledger entries", c.method)
			}
		}
		// The same with the other encodings the Bot API accepts: a query
		// string (GET) and a form body.
		for _, c := range []struct{ method, ct, query, body string }{
			{"getChat", "", "chat_id=1", ""}, {"getMe", "", "", ""},
			{"getChat", "application/x-www-form-urlencoded", "", "chat_id=1"},
			{"sendChatAction", "application/x-www-form-urlencoded", "", "chat_id=1&action=typing"},
		} {
			method := "POST"
			if c.body == "" {
				method = "GET"
			}
			path := "/" + c.method
			if c.query != "" {
				path += "?" + c.query
			}
			wantReq, _ := http.NewRequest(method, e.fake.URL()+"/bot"+e.botTok+path, strings.NewReader(c.body))
			gotReq, _ := http.NewRequest(method, e.srv.URL+"/bot"+tok+path, strings.NewReader(c.body))
			var answers [2]reply
			for i, req := range []*http.Request{wantReq, gotReq} {
				if c.ct != "" {
					req.Header.Set("Content-Type", c.ct)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				answers[i] = reply{status: res.StatusCode, raw: raw}
			}
			if answers[0].status != answers[1].status || !jsonEqual(answers[0].raw, answers[1].raw) {
				t.Errorf("%s %s?%s %s: facade %d %s, Telegram %d %s", method, c.method, c.query, c.body,
					answers[1].status, answers[1].raw, answers[0].status, answers[0].raw)
			}
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// TestFacadeBadInputChangesNothing: every bad call is answered in the Bot
// API's error format ({"ok":false,"error_code","description"}) with the
// status Telegram would use, and changes nothing — no action, no ledger
// entry, nothing at Telegram.
func TestFacadeBadInputChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		op := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		revoked := e.facadeToken("old-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		list := e.do("GET", "/v1/accounts/"+e.account.ID+"/facade-tokens", e.admin, nil)
		var oldID string
		for _, x := range list.body["facade_tokens"].([]any) {
			if m := x.(map[string]any); m["principal"] == "old-bot" {
				oldID = m["id"].(string)
			}
		}
		if r := e.do("DELETE", "/v1/accounts/"+e.account.ID+"/facade-tokens/"+oldID, e.admin, nil); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		e.contact("7007", herald.PurposeTransactional)
		big := strings.Repeat("x", 2<<20)
		var upload bytes.Buffer
		mw := multipart.NewWriter(&upload)
		_ = mw.WriteField("chat_id", "7007")
		fw, _ := mw.CreateFormFile("photo", "cat.jpg")
		_, _ = fw.Write([]byte("\xff\xd8\xff not really a jpeg"))
		_ = mw.Close()
		var oversize bytes.Buffer
		mw2 := multipart.NewWriter(&oversize)
		_ = mw2.WriteField("chat_id", "7007")
		_ = mw2.WriteField("text", big)
		_ = mw2.Close()
		cases := []struct {
			name, method, path, ct string
			body                   []byte
			status                 int
			desc                   string
		}{
			{"unknown token", "POST", "/bothf_nope_nope/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"hi"}`), 401, "Unauthorized"},
			{"telegram-style token", "POST", "/bot4242:facade-test-token-aaaaaaaaaaaaaaaaaaaaaa/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"hi"}`), 401, "Unauthorized"},
			{"revoked token", "POST", "/bot" + revoked + "/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"hi"}`), 401, "Unauthorized"},
			{"no method", "POST", "/bot" + op + "/", "", nil, 404, "Not Found"},
			{"bad method name", "POST", "/bot" + op + "/send-Message", "", nil, 404, "Not Found"},
			{"PUT", "PUT", "/bot" + op + "/sendMessage", "", nil, 404, "Not Found"},
			{"malformed JSON", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"chat_id":`), 400, "Bad Request: can't parse JSON object"},
			{"empty text", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":""}`), 400, "Bad Request: message text is empty"},
			{"no chat", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"text":"hi"}`), 400, "Bad Request: chat_id is empty"},
			{"invalid UTF-8", "POST", "/bot" + op + "/sendMessage", "application/x-www-form-urlencoded", []byte("chat_id=7007&text=%ff%fe"), 400, "Bad Request: strings must be encoded in UTF-8"},
			{"NUL byte", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"a\u0000b"}`), 400, "Bad Request: strings must be encoded in UTF-8"},
			{"reply_markup", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"hi","reply_markup":{"inline_keyboard":[]}}`), 400, "Bad Request: parameter reply_markup is not supported through Herald"},
			{"oversize body", "POST", "/bot" + op + "/sendMessage", mw2.FormDataContentType(), oversize.Bytes(), 413, "Request Entity Too Large"},
			{"file upload", "POST", "/bot" + op + "/sendPhoto", mw.FormDataContentType(), upload.Bytes(), 400, "Bad Request: file uploads are not accepted through Herald; send a file_id or an HTTP URL"},
			{"governed without a kind", "POST", "/bot" + op + "/sendDocument", "application/json", []byte(`{"chat_id":7007,"document":"abc"}`), 400, "Bad Request: sendDocument is governed by Herald and has no Herald action kind yet; it was not sent"},
			{"logOut", "POST", "/bot" + op + "/logOut", "application/json", []byte(`{}`), 403, ""},
			{"webhook over http", "POST", "/bot" + op + "/setWebhook", "application/json", []byte(`{"url":"ftp://bot.example/hook"}`), 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"},
			{"bad webhook secret", "POST", "/bot" + op + "/setWebhook", "application/json", []byte(`{"url":"https://bot.example/hook","secret_token":"a b"}`), 400, "Bad Request: secret token contains unallowed characters"},
			{"bad getUpdates offset", "POST", "/bot" + op + "/getUpdates", "application/json", []byte(`{"offset":"x"}`), 400, "Bad Request: offset must be a Number"},
			{"role-gated method", "POST", "/bot" + op + "/leaveChat", "application/json", []byte(`{"chat_id":-100123}`), 403, "Forbidden: herald.facade.method_role: leaveChat needs a token of role admin"},
			{"unknown purpose header", "POST", "/bot" + op + "/sendMessage", "application/json", []byte(`{"chat_id":7007,"text":"hi"}`), 400, ""},
			{"bad content type", "POST", "/bot" + op + "/sendMessage", "text/plain", []byte(`chat_id=1`), 400, "Bad Request: unsupported Content-Type"},
		}
		for _, c := range cases {
			before := e.snapshot()
			req, _ := http.NewRequest(c.method, e.srv.URL+c.path, bytes.NewReader(c.body))
			if c.ct != "" {
				req.Header.Set("Content-Type", c.ct)
			}
			if c.name == "unknown purpose header" {
				req.Header.Set("X-Herald-Purpose", "gossip")
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var a struct {
				OK          *bool  `json:"ok"`
				ErrorCode   int    `json:"error_code"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(raw, &a); err != nil || a.OK == nil || *a.OK {
				t.Errorf("%s: not a Bot API error: %d %s", c.name, res.StatusCode, raw)
				continue
			}
			if res.StatusCode != c.status || a.ErrorCode != c.status || (c.desc != "" && a.Description != c.desc) {
				t.Errorf("%s: got %d %s, want %d %q", c.name, res.StatusCode, raw, c.status, c.desc)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("%s changed something: %+v → %+v", c.name, before, after)
			}
		}
		e.assertLogsHide(op, revoked, e.botTok, `"7007"`, `:7007`, "not really a jpeg")
	})
}

// TestFacadeTokensAPI: only admins manage facade tokens; the secret is
// shown once and never listed; bad input is problem+json and changes
// nothing; another organisation sees none of them.
func TestFacadeTokensAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		ctx := context.Background()
		path := "/v1/accounts/" + e.account.ID + "/facade-tokens"
		good := map[string]any{"principal": "shop-bot", "role": "operator", "purpose": "transactional"}
		if r := e.do("POST", path, e.officer, good); r.status != http.StatusForbidden || r.str("code") != "forbidden" {
			t.Fatalf("compliance officer created a token: %d %s", r.status, r.raw)
		}
		keysBefore, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM facade_tokens")
		for name, body := range map[string]any{
			"unknown role":     map[string]any{"principal": "x", "role": "root", "purpose": "transactional"},
			"no principal":     map[string]any{"role": "operator", "purpose": "transactional"},
			"bad purpose":      map[string]any{"principal": "x", "role": "operator", "purpose": "gossip"},
			"bad deferral":     map[string]any{"principal": "x", "role": "operator", "purpose": "transactional", "deferral": "later"},
			"unknown field":    map[string]any{"principal": "x", "role": "operator", "purpose": "transactional", "token": "mine"},
			"invalid UTF-8":    []byte("{\"principal\":\"\xff\",\"role\":\"operator\",\"purpose\":\"transactional\"}"),
			"not JSON":         []byte("principal=x"),
			"principal is NUL": map[string]any{"principal": "a\x00b", "role": "operator", "purpose": "transactional"},
		} {
			r := e.do("POST", path, e.admin, body)
			if (r.status != http.StatusBadRequest && r.status != http.StatusUnprocessableEntity) || r.str("code") == "" {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		if r := e.do("POST", "/v1/accounts/"+store.NewID()+"/facade-tokens", e.admin, good); r.status != http.StatusNotFound {
			t.Errorf("unknown account: %d %s", r.status, r.raw)
		}
		if n, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM facade_tokens"); n != keysBefore {
			t.Fatalf("bad input created tokens: %d → %d", keysBefore, n)
		}
		r := e.do("POST", path, e.admin, good)
		tok := r.str("token")
		if r.status != http.StatusCreated || !strings.HasPrefix(tok, "hf_") || r.str("facade_token", "deferral") != "retry_after" {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		id := r.str("facade_token", "id")
		list := e.do("GET", path, e.admin, nil)
		secret := tok[strings.LastIndex(tok, "_")+1:]
		if list.status != http.StatusOK || strings.Contains(string(list.raw), secret) || !strings.Contains(string(list.raw), id) {
			t.Fatalf("list: %d %s", list.status, list.raw)
		}
		// Another organisation's admin sees and revokes nothing.
		other, _ := e.s.CreateOrg(ctx, "Globex", "UTC")
		_, otherKey, _ := e.s.CreateAPIKey(ctx, other.ID, "gina", herald.RoleAdmin, "", nil)
		_, _ = e.s.EnsureRole(ctx, other.ID, "gina", herald.RoleAdmin, "test")
		if r := e.do("GET", path, otherKey, nil); r.status != http.StatusNotFound && r.status != http.StatusForbidden {
			t.Errorf("other org listed: %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", path+"/"+id, otherKey, nil); r.status != http.StatusNotFound && r.status != http.StatusForbidden {
			t.Errorf("other org revoked: %d %s", r.status, r.raw)
		}
		if r := e.bot(tok, "getMe", nil); r.status != http.StatusOK {
			t.Fatalf("token does not work: %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", path+"/"+id, e.admin, nil); r.status != http.StatusOK || r.str("facade_token", "revoked_at") == "" {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", path+"/"+id, e.admin, nil); r.status != http.StatusOK {
			t.Fatalf("revoke twice: %d %s", r.status, r.raw)
		}
		if r := e.bot(tok, "getMe", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("revoked token works: %d %s", r.status, r.raw)
		}
		if k := e.ledgerKinds(); k["key.created"] != 1 || k["key.revoked"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}
