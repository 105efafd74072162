package gateway_test

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// TestBadInputChangesNothing sends every endpoint malformed or invalid
// input and checks the answer is problem+json with the stable code, and
// that nothing in the database changed.
func TestBadInputChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op, admin, co := e.keys[herald.RoleOperator], e.keys[herald.RoleAdmin], e.keys[herald.RoleComplianceOfficer]
		ok := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "42", "purpose": "support", "legal_basis": "contract", "source": "t"}})
		contact := ok.body["contacts"].([]any)[0].(string)
		action := e.do("POST", "/v1/actions", op, e.sendReq("-1001", "transactional", "x")).str("action", "id")
		valid := func(mut func(m map[string]any)) map[string]any {
			m := e.sendReq("-1001", "transactional", "hello")
			mut(m)
			return m
		}
		cases := []struct {
			name, method, path, token string
			body                      any
			headers                   []string
			status                    int
			code                      string
			field                     string
		}{
			{"no key", "POST", "/v1/actions", "", e.sendReq("-1", "service", "x"), nil, 401, "unauthenticated", ""},
			{"bad key", "GET", "/v1/actions", "hk_nope_nope", nil, nil, 401, "unauthenticated", ""},
			{"malformed json", "POST", "/v1/actions", op, []byte(`{"kind":`), nil, 400, "invalid_json", ""},
			{"not an object", "POST", "/v1/actions", op, []byte(`[1,2]`), nil, 400, "invalid_json", ""},
			{"two values", "POST", "/v1/actions", op, []byte(`{} {}`), nil, 400, "invalid_json", ""},
			{"empty body", "POST", "/v1/actions", op, []byte(``), nil, 400, "invalid_json", ""},
			{"unknown field", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["txt"] = "x" }), nil, 400, "invalid_json", "txt"},
			{"wrong type", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["message_id"] = "seven" }), nil, 400, "invalid_json", "message_id"},
			{"bad time", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["schedule_at"] = "tomorrow" }), nil, 400, "invalid_json", ""},
			{"oversize text", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["text"] = strings.Repeat("a", 4097) }), nil, 422, "validation_failed", "text"},
			{"huge body", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["text"] = strings.Repeat("a", 2<<20) }), nil, 413, "payload_too_large", ""},
			{"unknown account", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["account"] = "01a1fcf0-0000-7000-8000-000000000000" }), nil, 422, "validation_failed", "account"},
			{"unknown contact", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["target"] = "01a1fcf0-0000-7000-8000-000000000000" }), nil, 422, "validation_failed", "target"},
			{"bad target", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["target"] = "not a chat" }), nil, 422, "validation_failed", "target"},
			{"bad purpose", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["purpose"] = "spam" }), nil, 422, "validation_failed", "purpose"},
			{"bad kind", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["kind"] = "send_sticker" }), nil, 422, "validation_failed", "kind"},
			{"bad markdown", "POST", "/v1/actions", op, valid(func(m map[string]any) { m["parse_mode"] = "MarkdownV2"; m["text"] = "1.5" }), nil, 422, "validation_failed", "text"},
			{"bad idempotency key", "POST", "/v1/actions", op, valid(func(map[string]any) {}), []string{"Idempotency-Key", "has space"}, 422, "validation_failed", "Idempotency-Key"},
			{"bad dry_run", "POST", "/v1/actions?dry_run=maybe", op, valid(func(map[string]any) {}), nil, 422, "validation_failed", "dry_run"},
			{"wrong media type", "POST", "/v1/actions", op, []byte(`kind=send_message`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
			{"forbidden role", "POST", "/v1/actions", e.keys[herald.RoleAuditor], valid(func(map[string]any) {}), nil, 403, "forbidden", ""},
			{"list bad status", "GET", "/v1/actions?status=lost", op, nil, nil, 422, "validation_failed", "status"},
			{"list bad time", "GET", "/v1/actions?from=yesterday", op, nil, nil, 422, "validation_failed", "from"},
			{"list bad limit", "GET", "/v1/actions?limit=0", op, nil, nil, 422, "validation_failed", "limit"},
			{"list bad cursor", "GET", "/v1/actions?cursor=abc", op, nil, nil, 422, "validation_failed", "cursor"},
			{"missing action", "GET", "/v1/actions/01a1fcf0-0000-7000-8000-000000000000", op, nil, nil, 404, "not_found", ""},
			{"cancel missing", "POST", "/v1/actions/nope/cancel", op, nil, nil, 404, "not_found", ""},
			{"account bad kind", "POST", "/v1/accounts", admin, map[string]any{"name": "x", "kind": "robot", "connector": "sandbox"}, nil, 422, "validation_failed", "kind"},
			{"account unknown field", "POST", "/v1/accounts", admin, map[string]any{"name": "x", "kind": "bot", "connector": "sandbox", "token": "123:abc"}, nil, 400, "invalid_json", "token"},
			{"account by operator", "POST", "/v1/accounts", op, map[string]any{"name": "x", "kind": "bot", "connector": "sandbox"}, nil, 403, "forbidden", ""},
			{"patch account bad status", "PATCH", "/v1/accounts/" + e.account.ID, admin, map[string]any{"status": "asleep"}, nil, 422, "validation_failed", "status"},
			{"patch account malformed", "PATCH", "/v1/accounts/" + e.account.ID, admin, []byte(`{"name":`), nil, 400, "invalid_json", ""},
			{"patch missing account", "PATCH", "/v1/accounts/nope", admin, map[string]any{"name": "y"}, nil, 404, "not_found", ""},
			{"import malformed", "POST", "/v1/contacts:import", co, []byte(`[{"chat_id":`), nil, 400, "invalid_json", ""},
			{"import unknown field", "POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "1", "purpose": "support", "legal_basis": "contract", "source": "s", "name": "Ann"}}, nil, 400, "invalid_json", "name"},
			{"import empty", "POST", "/v1/contacts:import", co, []map[string]any{}, nil, 422, "validation_failed", "rows"},
			{"import csv bad column", "POST", "/v1/contacts:import", co, []byte("chat_id,phone\n1,+4912345\n"), []string{"Content-Type", "text/csv"}, 422, "validation_failed", "phone"},
			{"import csv no basis", "POST", "/v1/contacts:import", co, []byte("chat_id,purpose,source\n1,support,crm\n"), []string{"Content-Type", "text/csv"}, 422, "import_rejected", "legal_basis"},
			{"import by operator", "POST", "/v1/contacts:import", op, []map[string]any{{"chat_id": "1", "purpose": "support", "legal_basis": "contract", "source": "s"}}, nil, 403, "forbidden", ""},
			{"patch contact bad tz", "PATCH", "/v1/contacts/" + contact, co, map[string]any{"timezone": "Mars/Olympus"}, nil, 422, "validation_failed", "timezone"},
			{"patch contact bad consent", "PATCH", "/v1/contacts/" + contact, co, map[string]any{"consents": []map[string]any{{"purpose": "marketing", "source": "x"}}}, nil, 422, "validation_failed", "consents[0].legal_basis"},
			{"patch contact missing", "PATCH", "/v1/contacts/nope", co, map[string]any{"language": "en"}, nil, 404, "not_found", ""},
			{"opt-out bad body", "POST", "/v1/contacts/" + contact + "/opt-out", op, map[string]any{"source": ""}, nil, 422, "validation_failed", "source"},
			{"opt-out missing", "POST", "/v1/contacts/nope/opt-out", op, nil, nil, 404, "not_found", ""},
			{"get contact missing", "GET", "/v1/contacts/nope", op, nil, nil, 404, "not_found", ""},
			{"ledger bad range", "GET", "/v1/ledger/entries?from=-1", e.keys[herald.RoleAuditor], nil, nil, 422, "validation_failed", "from"},
			{"approve a scheduled action", "POST", "/v1/actions/" + action + "/approve", e.keys[herald.RoleApprover], nil, nil, 409, "illegal_transition", ""},
			{"override a scheduled action", "POST", "/v1/actions/" + action + "/override", e.keys[herald.RoleApprover], map[string]any{"justification": "a long enough justification text"}, nil, 409, "illegal_transition", ""},
			{"unknown route", "GET", "/v1/nothing", op, nil, nil, 404, "route_not_found", ""},
			{"wrong method", "DELETE", "/v1/actions", op, nil, nil, 405, "method_not_allowed", ""},
		}
		before := e.counts()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.method, c.path, c.token, c.body, c.headers...)
				if r.status != c.status || r.str("code") != c.code {
					t.Fatalf("= %d %s; want %d %s", r.status, r.raw, c.status, c.code)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type = %q", ct)
				}
				if r.str("type") != "https://herald.dev/problems/"+c.code || r.str("request_id") == "" || r.body["status"].(float64) != float64(c.status) {
					t.Fatalf("problem document incomplete: %s", r.raw)
				}
				if c.field != "" && !strings.Contains(string(r.raw), `"field":"`+c.field+`"`) {
					t.Fatalf("no error names field %q: %s", c.field, r.raw)
				}
			})
		}
		if after := e.counts(); after != before {
			t.Fatalf("bad input changed the database: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/accounts/"+e.account.ID, admin, nil); r.str("name") != "bot" || r.str("status") != "active" {
			t.Fatalf("account changed: %s", r.raw)
		}
		if r := e.do("GET", "/v1/contacts/"+contact, op, nil); r.body["opted_out_at"] != nil || r.str("timezone") != "" {
			t.Fatalf("contact changed: %s", r.raw)
		}
	})
}
