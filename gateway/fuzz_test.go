package gateway_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// Fuzz targets for what hostile clients control: the submit body, contact
// imports (JSON and CSV), the bearer key and Telegram's webhook updates.
// Each drives the whole HTTP handler on PostgreSQL (the store that refuses
// the most: NUL bytes, invalid UTF-8) and fails on any 5xx or panic.
// Seeds are in testdata/fuzz/<target>; scripts/test runs each target for a
// bounded time.

// fuzzEnv is an env for fuzzing: one organisation, keys, a contact and an
// account with a webhook secret, served in-process (no sockets per input).
type fuzzEnv struct {
	*env
	h             http.Handler
	webhookSecret string
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	e := newEnv(f, storetest.Postgres)
	r := e.do("POST", "/v1/accounts/"+e.account.ID+"/webhook-secret", e.keys[herald.RoleAdmin], nil)
	if r.status != 200 {
		f.Fatalf("webhook secret = %d %s", r.status, r.raw)
	}
	imp := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{
		{"chat_id": "555000111", "purpose": "marketing", "legal_basis": "consent", "source": "form"}})
	if imp.status != 200 {
		f.Fatalf("import = %d %s", imp.status, imp.raw)
	}
	return &fuzzEnv{env: e, h: e.server.Handler(), webhookSecret: r.str("secret_token")}
}

// serve runs one request through the handler and fails on a 5xx (a 503
// would be a database fault, which fuzzing does not inject either).
func (fe *fuzzEnv) serve(t *testing.T, method, path, contentType, auth string, body []byte, headers ...string) {
	t.Helper()
	req := httptest.NewRequestWithContext(context.Background(), method, "http://herald"+path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	fe.h.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s with %q = %d %s", method, path, body, w.Code, w.Body.Bytes())
	}
	if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s with %q = %d without problem+json: %s", method, path, body, w.Code, w.Body.Bytes())
	}
}

func FuzzSubmitBody(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(`{"kind":"send_message","account":"` + fe.account.ID + `","target":"555000111","purpose":"marketing","text":"hi"}`))
	f.Add([]byte(`{"kind":"send_photo","account":"` + fe.account.ID + `","target":"@channel","purpose":"service","photo_url":"https://x/a.png","caption":"*b*","parse_mode":"MarkdownV2"}`))
	f.Add([]byte(`{"kind":"send_message","account":"` + fe.account.ID + `","target":"-1001","purpose":"transactional","text":"a\u0000b","schedule_at":"2026-03-10T12:00:00Z"}`))
	op := "Bearer " + fe.keys[herald.RoleOperator]
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.serve(t, "POST", "/v1/actions?dry_run=true", "application/json", op, body)
		fe.serve(t, "POST", "/v1/actions", "application/json", op, body)
	})
}

func FuzzContactImportJSON(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(`[{"chat_id":"42","purpose":"support","legal_basis":"contract","source":"crm"}]`))
	f.Add([]byte(`[{"chat_id":"@someone","timezone":"Europe/Berlin","language":"pt-BR","purpose":"marketing","legal_basis":"consent","source":"form","consented_at":"2026-01-02T15:04:05Z"}]`))
	co := "Bearer " + fe.keys[herald.RoleComplianceOfficer]
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.serve(t, "POST", "/v1/contacts:import", "application/json", co, body)
	})
}

func FuzzContactImportCSV(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte("chat_id,purpose,legal_basis,source\n42,support,contract,crm\n"))
	f.Add([]byte("chat_id,timezone,language,purpose,legal_basis,source,consented_at\n\"@a\",UTC,en,marketing,consent,\"web, form\",2026-01-02T15:04:05Z\n"))
	co := "Bearer " + fe.keys[herald.RoleComplianceOfficer]
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.serve(t, "POST", "/v1/contacts:import", "text/csv", co, body)
	})
}

func FuzzBearerKey(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add("Bearer " + fe.keys[herald.RoleOperator])
	f.Add("Bearer hk_abc_def")
	f.Add("Bearer a.b.c")
	f.Add("Basic dXNlcjpwYXNz")
	f.Fuzz(func(t *testing.T, auth string) {
		if !validHeaderValue(auth) {
			return // net/http refuses such a header before Herald sees it
		}
		fe.serve(t, "GET", "/v1/me", "", auth, nil)
	})
}

func FuzzWebhookUpdate(f *testing.F) {
	fe := newFuzzEnv(f)
	f.Add([]byte(`{"update_id":1,"message":{"message_id":1,"chat":{"id":555000111,"type":"private"},"text":"STOP"}}`))
	f.Add([]byte(`{"update_id":2,"my_chat_member":{"chat":{"id":555000111,"type":"private"},"new_chat_member":{"status":"kicked"}}}`))
	f.Add([]byte(`{"update_id":3,"message":{"chat":{"id":-1001,"type":"group"},"text":"/start"}}`))
	path := "/v1/telegram/webhook/" + fe.account.ID
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.serve(t, "POST", path, "application/json", "", body, "X-Telegram-Bot-Api-Secret-Token", fe.webhookSecret)
	})
}

// validHeaderValue mirrors what net/http's server accepts in a header
// value: no control characters other than tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
