package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestBadBytesAreBadInput sends NUL bytes and invalid UTF-8 in every place a
// client controls (path segment, query value, header, the bearer key, JSON
// and CSV fields, the raw body) and checks each answer is a 400 or 422
// problem with a stable code, never a 500, and that nothing changed.
func TestBadBytesAreBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op, admin, co := e.keys[herald.RoleOperator], e.keys[herald.RoleAdmin], e.keys[herald.RoleComplianceOfficer]
		imp := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "42", "purpose": "support", "legal_basis": "contract", "source": "t"}})
		contact := imp.body["contacts"].([]any)[0].(string)
		withText := func(text string) []byte {
			return []byte(`{"kind":"send_message","account":"` + e.account.ID + `","target":"-1001","purpose":"transactional","text":"` + text + `"}`)
		}
		csv := []string{"Content-Type", "text/csv"}
		cases := []struct {
			name, method, path, token string
			body                      any
			headers                   []string
			status                    int
			code, field               string
		}{
			{"bearer key invalid utf-8", "GET", "/v1/actions", "hk_\xff\xfe_secret", nil, nil, 400, "invalid_encoding", ""},
			{"action id invalid utf-8", "GET", "/v1/actions/%FF", op, nil, nil, 400, "invalid_encoding", ""},
			{"action id NUL", "GET", "/v1/actions/a%00b", op, nil, nil, 400, "invalid_encoding", ""},
			{"cancel invalid utf-8", "POST", "/v1/actions/%C3%28/cancel", op, nil, nil, 400, "invalid_encoding", ""},
			{"webhook account invalid utf-8", "POST", "/v1/telegram/webhook/%FF", "", []byte(`{"update_id":1}`), []string{"X-Telegram-Bot-Api-Secret-Token", "x"}, 400, "invalid_encoding", ""},
			{"webhook secret invalid utf-8", "POST", "/v1/telegram/webhook/" + e.account.ID, "", []byte(`{"update_id":1}`), []string{"X-Telegram-Bot-Api-Secret-Token", "s\xff"}, 400, "invalid_encoding", ""},
			{"query value invalid utf-8", "GET", "/v1/actions?status=%FF", op, nil, nil, 400, "invalid_encoding", ""},
			{"query value NUL", "GET", "/v1/actions?cursor=%00", op, nil, nil, 400, "invalid_encoding", ""},
			{"idempotency key invalid utf-8", "POST", "/v1/actions", op, e.sendReq("-1001", "transactional", "x"), []string{"Idempotency-Key", "k\xc3"}, 400, "invalid_encoding", ""},
			{"text NUL", "POST", "/v1/actions", op, e.sendReq("-1001", "transactional", "a\u0000b"), nil, 422, "validation_failed", "text"},
			{"text raw invalid utf-8", "POST", "/v1/actions", op, withText("a\xffb"), nil, 400, "invalid_encoding", ""},
			{"text truncated rune", "POST", "/v1/actions", op, withText("a\xe2\x82"), nil, 400, "invalid_encoding", ""},
			{"target NUL", "POST", "/v1/actions", op, e.sendReq("-1\u00001", "transactional", "x"), nil, 422, "validation_failed", "target"},
			{"account name NUL", "POST", "/v1/accounts", admin, map[string]any{"name": "bot\u0000", "kind": "bot", "connector": "sandbox"}, nil, 422, "validation_failed", "name"},
			{"account rename NUL", "PATCH", "/v1/accounts/" + e.account.ID, admin, map[string]any{"name": "\u0000"}, nil, 422, "validation_failed", "name"},
			{"import source NUL", "POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "1", "purpose": "support", "legal_basis": "contract", "source": "crm\u0000"}}, nil, 422, "import_rejected", "source"},
			{"import json raw invalid utf-8", "POST", "/v1/contacts:import", co, []byte("[{\"chat_id\":\"1\",\"purpose\":\"support\",\"legal_basis\":\"contract\",\"source\":\"\xff\"}]"), nil, 400, "invalid_encoding", ""},
			{"import csv NUL", "POST", "/v1/contacts:import", co, []byte("chat_id,purpose,legal_basis,source\n1,support,contract,cr\x00m\n"), csv, 422, "import_rejected", "source"},
			{"import csv invalid utf-8", "POST", "/v1/contacts:import", co, []byte("chat_id,purpose,legal_basis,source\n1,support,contract,cr\xffm\n"), csv, 400, "invalid_encoding", ""},
			{"contact language NUL", "PATCH", "/v1/contacts/" + contact, co, map[string]any{"language": "en\u0000"}, nil, 422, "validation_failed", "language"},
			{"opt-out source NUL", "POST", "/v1/contacts/" + contact + "/opt-out", op, map[string]any{"source": "\u0000"}, nil, 422, "validation_failed", "source"},
			{"contact id invalid utf-8", "DELETE", "/v1/contacts/%FF", co, nil, nil, 400, "invalid_encoding", ""},
			{"ledger query NUL", "GET", "/v1/ledger/entries?from=%00", e.keys[herald.RoleAuditor], nil, nil, 400, "invalid_encoding", ""},
		}
		before := e.counts()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.method, c.path, c.token, c.body, c.headers...)
				checkProblem(t, r, c.status, c.code, c.field)
			})
		}
		if after := e.counts(); after != before {
			t.Fatalf("bad bytes changed the database: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/contacts/"+contact, op, nil); r.str("language") != "" || r.body["opted_out_at"] != nil {
			t.Fatalf("contact changed: %s", r.raw)
		}
		if logs := e.logs.String(); strings.Contains(logs, `"status":500`) || strings.Contains(logs, "internal error") {
			t.Fatalf("a bad-bytes request was logged as an internal error:\n%s", logs)
		}
	})
}

// TestBadBytesInPolicyReplay: the replay endpoint names an action id, which
// must not reach a text column with a NUL byte in it.
func TestBadBytesInPolicyReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		pe := newPolicyEnv(t, b)
		before := pe.counts()
		r := pe.do("POST", "/v1/policies/replay", pe.keys[herald.RoleComplianceOfficer], []byte(`{"action_id":"\u0000"}`))
		checkProblem(t, r, 422, "validation_failed", "action_id")
		r = pe.do("POST", "/v1/policies/replay", pe.keys[herald.RoleComplianceOfficer], []byte("{\"action_id\":\"\xff\"}"))
		checkProblem(t, r, 400, "invalid_encoding", "")
		if after := pe.counts(); after != before {
			t.Fatalf("replay with bad bytes changed the database: %+v → %+v", before, after)
		}
	})
}

// TestBadBytesOnTheWire sends what Go's HTTP client will not: a raw request
// line and headers with bytes >= 0x80, over a plain TCP connection.
func TestBadBytesOnTheWire(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	for _, req := range []string{
		"GET /v1/actions/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + e.keys[herald.RoleOperator] + "\r\nConnection: close\r\n\r\n",
		"GET /v1/actions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hk_\xc3\x28\r\nConnection: close\r\n\r\n",
		"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xff\r\nAuthorization: Bearer \xe2\x82\r\nConnection: close\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprint(conn, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		conn.Close()
		if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%q = %d %s; want 400 problem+json", req[:24], res.StatusCode, res.Header.Get("Content-Type"))
		}
		if id := res.Header.Get("X-Request-Id"); id == "" || !utf8.ValidString(id) {
			t.Fatalf("request id %q: want a fresh one, never the client's bad bytes", id)
		}
	}
}

func checkProblem(t *testing.T, r response, status int, code, field string) {
	t.Helper()
	if r.status != status || r.str("code") != code {
		t.Fatalf("= %d %s; want %d %s", r.status, r.raw, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if r.str("type") != "https://herald.dev/problems/"+code || r.str("request_id") == "" {
		t.Fatalf("problem document incomplete: %s", r.raw)
	}
	if field != "" && !strings.Contains(string(r.raw), `"field":"`+field+`"`) {
		t.Fatalf("no error names field %q: %s", field, r.raw)
	}
}
