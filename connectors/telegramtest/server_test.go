package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const tok = "42:fake-secret"

type answer struct {
	status int
	env    struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  *parameters     `json:"parameters"`
	}
	raw string
}

func post(t *testing.T, base, token, method, body string) answer {
	t.Helper()
	resp, err := http.Post(base+"/bot"+token+"/"+method, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: strings.TrimSpace(string(b))}
	if err := json.Unmarshal(b, &a.env); err != nil {
		t.Fatalf("%s: %v: %s", method, err, b)
	}
	return a
}

func TestUnknownTokenIsUnauthorized(t *testing.T) {
	s := New(Options{Tokens: []string{tok}})
	defer s.Close()
	a := post(t, s.URL(), "42:wrong", "sendMessage", `{"chat_id":1,"text":"x"}`)
	if a.status != 401 || a.raw != `{"ok":false,"error_code":401,"description":"Unauthorized"}` {
		t.Fatalf("got %d %s", a.status, a.raw)
	}
	if a := post(t, s.URL(), tok, "getMe", `{}`); !a.env.OK {
		t.Fatalf("getMe: %s", a.raw)
	}
	if a := post(t, s.URL(), tok, "sendSticker", `{"chat_id":1}`); a.status != 404 || a.env.Description != "Not Found" {
		t.Fatalf("unknown method: %d %s", a.status, a.raw)
	}
}

func TestFloodControlAnswers(t *testing.T) {
	// Per-chat limit loosened so the group limit is what trips.
	s := New(Options{Tokens: []string{tok}, ChatBurst: 100, ChatPerSecond: 100})
	defer s.Close()
	for i := range GroupBurst {
		if a := post(t, s.URL(), tok, "sendMessage", fmt.Sprintf(`{"chat_id":-1001,"text":"m%d"}`, i)); !a.env.OK {
			t.Fatalf("message %d: %s", i, a.raw)
		}
	}
	a := post(t, s.URL(), tok, "sendMessage", `{"chat_id":-1001,"text":"one too many"}`)
	if a.status != 429 || a.env.Parameters == nil || a.env.Parameters.RetryAfter != 3 ||
		a.env.Description != "Too Many Requests: retry after 3" {
		t.Fatalf("got %d %s, want 429 retry after 3 (20 msg/min)", a.status, a.raw)
	}
	// Another bot's budget in the same group is its own.
	s.AddToken("43:other")
	if a := post(t, s.URL(), "43:other", "sendMessage", `{"chat_id":-1001,"text":"x"}`); !a.env.OK {
		t.Fatalf("other bot: %s", a.raw)
	}
	if n := s.TooManyRequests(); n != 1 {
		t.Errorf("429 count %d", n)
	}
}

func TestMessageIDsPerChatAndForms(t *testing.T) {
	s := NewUnstarted(Options{Tokens: []string{tok}})
	ts := httptest.NewServer(s.Handler()) // as `herald dev telegram-fake` serves it
	defer ts.Close()
	id := func(a answer) int64 {
		var m struct {
			MessageID int64 `json:"message_id"`
		}
		json.Unmarshal(a.env.Result, &m)
		return m.MessageID
	}
	a1 := post(t, ts.URL, tok, "sendMessage", `{"chat_id":"5","text":"a"}`)
	b1 := post(t, ts.URL, tok, "sendMessage", `{"chat_id":"6","text":"b"}`)
	resp, err := http.PostForm(ts.URL+"/bot"+tok+"/sendMessage", url.Values{"chat_id": {"5"}, "text": {"form"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a3 := post(t, ts.URL, tok, "sendPhoto", `{"chat_id":5,"photo":"https://x/y.jpg","caption":"c"}`)
	if id(a1) != 1 || id(b1) != 1 || id(a3) != 3 {
		t.Fatalf("ids %d %d %d, want 1 1 3", id(a1), id(b1), id(a3))
	}
	if got := s.MessagesTo("5"); len(got) != 3 || got[1].Text != "form" || got[2].Text != "c" {
		t.Fatalf("chat 5 records %+v", got)
	}
	if s.URL() != "" {
		t.Error("unstarted server has a URL")
	}
}

func TestValidationTexts(t *testing.T) {
	s := New(Options{Tokens: []string{tok}, NoLimits: true})
	defer s.Close()
	for body, want := range map[string]string{
		`{"text":"x"}`:            "Bad Request: chat_id is empty",
		`{"chat_id":1,"text":""}`: "Bad Request: message text is empty",
		`{"chat_id":1,"text":"` + strings.Repeat("я", MaxTextLength+1) + `"}`: "Bad Request: message is too long",
		`{"chat_id":1,"text":"x","parse_mode":"BBCode"}`:                      "Bad Request: unsupported parse_mode",
	} {
		if a := post(t, s.URL(), tok, "sendMessage", body); a.status != 400 || a.env.Description != want {
			t.Errorf("%.40s: got %d %q, want %q", body, a.status, a.env.Description, want)
		}
	}
	if a := post(t, s.URL(), tok, "deleteMessage", `{"chat_id":1,"message_id":99}`); a.env.Description != "Bad Request: message to delete not found" {
		t.Errorf("delete: %s", a.raw)
	}
	s.Script("-9", MigratedTo(-1009))
	if a := post(t, s.URL(), tok, "sendMessage", `{"chat_id":-9,"text":"x"}`); a.env.Parameters == nil || a.env.Parameters.MigrateToChatID != -1009 ||
		a.env.Description != "Bad Request: group chat was upgraded to a supergroup chat" {
		t.Errorf("migrated: %s", a.raw)
	}
	s.Script("-9", Normal)
	if a := post(t, s.URL(), tok, "sendMessage", `{"chat_id":-9,"text":"x"}`); !a.env.OK {
		t.Errorf("after Normal: %s", a.raw)
	}
}

func TestSlowMode(t *testing.T) {
	s := New(Options{Tokens: []string{tok}})
	defer s.Close()
	s.Script("-77", SlowMode(30*time.Second))
	post(t, s.URL(), tok, "sendMessage", `{"chat_id":-77,"text":"1"}`)
	a := post(t, s.URL(), tok, "sendMessage", `{"chat_id":-77,"text":"2"}`)
	if a.status != 429 || a.env.Parameters == nil || a.env.Parameters.RetryAfter < 29 {
		t.Fatalf("got %s", a.raw)
	}
}

// Same seed, same requests: same faults.
func TestSeededFaultsAreReproducible(t *testing.T) {
	run := func() Stats {
		s := New(Options{Tokens: []string{tok}, NoLimits: true, ServerErrorRate: 0.2, DropBeforeRate: 0.1, DropAfterRate: 0.1, Seed: 7})
		defer s.Close()
		c := &http.Client{}
		for i := range 60 {
			resp, err := c.Post(s.URL()+"/bot"+tok+"/sendMessage", "application/json", strings.NewReader(fmt.Sprintf(`{"chat_id":%d,"text":"x"}`, i)))
			if err == nil {
				resp.Body.Close()
			}
		}
		return s.Stats()
	}
	a, b := run(), run()
	if a != b {
		t.Fatalf("%+v != %+v", a, b)
	}
	if a.ServerErrors == 0 || a.DroppedBefore == 0 || a.DroppedAfter == 0 {
		t.Fatalf("no faults injected: %+v", a)
	}
	if a.Accepted != 60-a.ServerErrors-a.DroppedBefore {
		t.Fatalf("accepted %d: %+v", a.Accepted, a)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := New(Options{Tokens: []string{tok}, NoLimits: true})
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				resp, err := http.Post(s.URL()+"/bot"+tok+"/sendMessage", "application/json",
					strings.NewReader(fmt.Sprintf(`{"chat_id":%d,"text":"%d"}`, g%2, i)))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for _, chat := range []string{"0", "1"} {
		seen := map[int64]bool{}
		for _, m := range s.MessagesTo(chat) {
			if seen[m.MessageID] {
				t.Fatalf("duplicate message id %d in chat %s", m.MessageID, chat)
			}
			seen[m.MessageID] = true
		}
		if len(seen) != 100 {
			t.Fatalf("chat %s has %d messages, want 100", chat, len(seen))
		}
	}
}

func TestAcceptAnyToken(t *testing.T) {
	s := New(Options{AcceptAnyToken: true})
	defer s.Close()
	if a := post(t, s.URL(), "777:whatever", "sendMessage", `{"chat_id":1,"text":"x"}`); !a.env.OK {
		t.Fatalf("any token: %s", a.raw)
	}
	for _, bad := range []string{"nocolon", "abc:def", "12:"} {
		if a := post(t, s.URL(), bad, "getMe", `{}`); a.status != 401 {
			t.Errorf("%q accepted", bad)
		}
	}
	s.RevokeToken("777:whatever")
	if a := post(t, s.URL(), "777:whatever", "getMe", `{}`); a.status != 401 {
		t.Error("revoked token accepted")
	}
	if got := s.Messages(); len(got) != 1 || got[0].Bot != "777" {
		t.Errorf("records %+v", got)
	}
}
