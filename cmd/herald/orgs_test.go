package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/store/storetest"
)

// TestOrgsCommands: the CLI mirrors /v1/orgs offline: create, list,
// rename, suspend (the organisation's keys get 403 from a running server),
// resume, delete (erasure, confirmed with --yes). Successful database
// commands print their result and no JSON log line.
func TestOrgsCommands(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, "")
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()

	out, err := run(t, nil, "orgs", "create", "--name", "Beta", "--timezone", "Europe/Paris", "--data-dir", dir)
	beta := strings.TrimSpace(out)
	if err != nil || !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(beta) {
		t.Fatalf("orgs create: %v %q", err, out)
	}
	if out, err := run(t, nil, "orgs", "create", "--name", "", "--data-dir", dir); err == nil {
		t.Fatalf("an empty name was accepted: %s", out)
	}
	tok, err := run(t, nil, "keys", "create", "--org", beta, "--principal", "beta-admin", "--role", "admin", "--data-dir", dir)
	if err != nil || strings.TrimSpace(tok) != keyPattern.FindString(tok) {
		t.Fatalf("keys create in the new org: %v %q", err, tok)
	}
	tok = strings.TrimSpace(tok)
	for _, args := range [][]string{
		{"orgs", "rename", beta, "--name", "Beta GmbH"},
		{"orgs", "suspend", beta},
	} {
		if out, err := run(t, nil, append(args, "--data-dir", dir)...); err != nil || strings.Contains(out, "{") {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	list, err := run(t, nil, "orgs", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(list, "Beta GmbH") || !strings.Contains(list, "suspended") || !strings.Contains(list, "default") {
		t.Fatalf("orgs list: %v %s", err, list)
	}
	p = start(t, dir, "")
	status := func() int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := status(); st != 403 {
		t.Fatalf("a suspended org's key = %d", st)
	}
	if out, err := run(t, nil, "orgs", "resume", beta, "--data-dir", dir); err != nil || !strings.Contains(out, "resumed") {
		t.Fatalf("resume: %v %s", err, out)
	}
	if st := status(); st != 200 {
		t.Fatalf("a resumed org's key = %d", st)
	}
	keys := p.call(t, "GET", "/v1/ledger/keys", "", nil)["keys"].([]any)
	vkey := keys[0].(map[string]any)["vkey"].(string)
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()
	if out, err := run(t, nil, "orgs", "delete", beta, "--data-dir", dir); err == nil || !strings.Contains(out, "--yes") {
		t.Fatalf("delete without --yes: %v %s", err, out)
	}
	out, err = run(t, nil, "orgs", "delete", beta, "--yes", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "deleted") || !strings.Contains(out, "final checkpoint") || strings.Contains(out, "{") {
		t.Fatalf("delete: %v %s", err, out)
	}
	// The platform's own chain verifies too (the CLI's changes are in it).
	out, err = run(t, nil, "ledger", "verify", "--online", "--org", "platform", "--key", vkey, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("the platform chain: %v %s", err, out)
	}
	if list, _ := run(t, nil, "orgs", "list", "--data-dir", dir); !strings.Contains(list, "deleted") {
		t.Fatalf("a deleted org is not listed as deleted: %s", list)
	}
	out, err = run(t, nil, "ledger", "verify", "--online", "--org", beta, "--key", vkey, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "OK") || !strings.Contains(out, "purged") {
		t.Fatalf("ledger of the deleted org: %v %s", err, out)
	}
}

// TestVersionReportsBuild: "herald version" names the module version
// ("(devel)" for a local build) and the Go version; the commit comes from
// the toolchain's VCS stamp or, where stamping is off, from -X main.commit.
func TestVersionReportsBuild(t *testing.T) {
	out, err := run(t, nil, "version")
	if err != nil || !regexp.MustCompile(`^herald (\(devel\)|v[0-9]\S*|dev)( commit [0-9a-f]{7,12}(\+dirty)?)?( \S+)? go[0-9.]+`).MatchString(out) ||
		!strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: %v %q", err, out)
	}
	for _, c := range []struct {
		version, commit string
		info            *debug.BuildInfo
		want            string
	}{
		{"dev", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"v1.4.0 commit 0123456789ab+dirty 2026-12-01T10:00:00Z go1.26.8"},
		{"dev", "abc1234", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "(devel) commit abc1234 go1.26.8"},
		{"v2.0.0", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "v2.0.0 go1.26.8"},
		{"dev", "", nil, "dev"},
	} {
		if got := describeBuild(c.version, c.commit, c.info); got != c.want {
			t.Errorf("describeBuild(%q, %q) = %q, want %q", c.version, c.commit, got, c.want)
		}
	}
}

// TestPortInUseFailsBeforeTheKey: a port already in use fails before the
// one-time key is printed, says how to pick another, and leaves the first
// start to the next run, which prints the key.
func TestPortInUseFailsBeforeTheKey(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	out, err := run(t, nil, "serve", "--listen", busy.Addr().String(), "--data-dir", dir)
	if err == nil || keyPattern.MatchString(out) || !strings.Contains(out, "--listen") {
		t.Fatalf("serve on a busy port: %v\n%s", err, out)
	}
	p := start(t, dir, "")
	if !keyPattern.MatchString(p.stdout.String()) {
		t.Fatalf("the next start printed no key: %s", p.stdout.String())
	}
}

// loginWidget signs Telegram Login Widget data as Telegram does.
func loginWidget(fields map[string]string, botToken string) map[string]any {
	out := map[string]any{"hash": telegramtest.LoginWidgetHash(fields, botToken)}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// TestPersonRevokedAcrossTwoGatewayProcesses: two herald processes share
// one PostgreSQL (and one secret store, as replicas share Vault). The
// bootstrap key invites a person through one process; the person logs in
// with Telegram (no API key) and uses the session on the other; revoking
// the person through the first refuses the session on the second on the
// very next request, and their next login.
func TestPersonRevokedAcrossTwoGatewayProcesses(t *testing.T) {
	dbURL := storetest.NewDatabase(t)
	dir := t.TempDir()
	const botToken = "5555:login-bot-token-for-the-widget-abcdefg"
	if out, err := exec.Command(binary, "secrets", "put", "herald/login-bot", "token="+botToken, "--data-dir", dir, "--database-url", dbURL).CombinedOutput(); err != nil {
		t.Fatalf("secrets put: %v %s", err, out)
	}
	p1 := start(t, dir, dbURL)
	admin := keyPattern.FindString(p1.stdout.String())
	p2 := start(t, dir, dbURL)
	me := p1.call(t, "GET", "/v1/me", admin, nil)
	org := me["org"].(map[string]any)["id"].(string)
	inv := p1.call(t, "POST", "/v1/people", admin, map[string]any{"telegram_id": "8080", "roles": []any{map[string]any{"role": "operator"}}})
	person, _ := inv["id"].(string)
	if person == "" {
		t.Fatalf("invite: %v", inv)
	}
	login := func(p *proc) map[string]any {
		return p.call(t, "POST", "/v1/auth/telegram?org="+org, "", loginWidget(map[string]string{"id": "8080", "auth_date": fmt.Sprint(time.Now().Unix())}, botToken))
	}
	var session string
	deadline := time.Now().Add(10 * time.Second)
	for session == "" {
		session, _ = login(p2)["token"].(string)
		if time.Now().After(deadline) {
			t.Fatal("the person never logged in on the second process")
		}
		if session == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	status := func(p *proc) int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/v1/actions", nil)
		req.Header.Set("Authorization", "Bearer "+session)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := status(p2); st != 200 {
		t.Fatalf("the person's session on the second process = %d", st)
	}
	if r := p1.call(t, "DELETE", "/v1/people/"+person, admin, nil); r["revoked"] == nil {
		t.Fatalf("revoke: %v", r)
	}
	// The next request, not eventually: no poll, no notification to wait for.
	if st := status(p2); st != 401 {
		t.Fatalf("the second process accepts a revoked person's session: %d", st)
	}
	if st := status(p1); st != 401 {
		t.Fatalf("the first process accepts a revoked person's session: %d", st)
	}
	if tok, _ := login(p2)["token"].(string); tok != "" {
		t.Fatal("a revoked person logs in")
	}
}

// TestQuickStartWithTheBootstrapKey: the one-time key of the first start
// does every step of the README's quick start (import contacts, find them,
// create an account, submit, read the ledger) and creates an organisation
// with its first admin — no 403 on step two.
func TestQuickStartWithTheBootstrapKey(t *testing.T) {
	p := start(t, t.TempDir(), "")
	key := keyPattern.FindString(p.stdout.String())
	account := accountPattern.FindStringSubmatch(p.stdout.String())
	if key == "" || account == nil {
		t.Fatalf("first start printed: %s", p.stdout.String())
	}
	do := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		var rd *strings.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		} else {
			rd = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, "http://"+p.addr+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	steps := []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/contacts:import", []map[string]any{{"chat_id": "-1001234567890", "purpose": "marketing", "legal_basis": "consent", "source": "quick start"}}},
		{"GET", "/v1/contacts?consent=marketing", nil},
		{"POST", "/v1/accounts", map[string]any{"name": "second bot", "kind": "bot", "connector": "sandbox"}},
		{"POST", "/v1/actions", map[string]any{"kind": "send_message", "account": account[1], "target": "-1001234567890", "purpose": "transactional", "text": "Hello from Herald"}},
		{"GET", "/v1/ledger/entries?from=0&limit=20", nil},
		{"POST", "/v1/keys", map[string]any{"role": "operator", "description": "CI"}},
		{"POST", "/v1/people", map[string]any{"telegram_id": "987654321", "roles": []any{map[string]any{"role": "operator"}}}},
		{"POST", "/v1/orgs", map[string]any{"name": "Client B", "admin_key": true}},
	}
	for _, s := range steps {
		if st, out := do(s.method, s.path, s.body); st/100 != 2 {
			t.Errorf("%s %s with the bootstrap key = %d %v", s.method, s.path, st, out)
		}
	}
	if st, out := do("GET", "/v1/contacts?consent=marketing", nil); st != 200 || len(out["contacts"].([]any)) != 1 {
		t.Fatalf("the imported contact is not found: %d %v", st, out)
	}
	// A problem about the custom method names it as it was called.
	if st, out := do("POST", "/v1/contacts:import", []map[string]any{{"chat_id": "1"}}); st != 422 || out["instance"] != "/v1/contacts:import" {
		t.Fatalf("a bad import's problem = %d %v", st, out)
	}
	if strings.Contains(p.stderr.String(), `"route":"/v1/contacts/import"`) || !strings.Contains(p.stderr.String(), `"route":"/v1/contacts:import"`) {
		t.Fatalf("the log names the import route as %s", regexp.MustCompile(`"route":"[^"]*contacts[^"]*import"`).FindAllString(p.stderr.String(), -1))
	}
}

// TestOneShotCommandsListOnlyTheirFlags: secrets put|rotate and orgs delete
// list where secrets are, not the server's rotation schedules.
func TestOneShotCommandsListOnlyTheirFlags(t *testing.T) {
	for _, args := range [][]string{{"secrets", "put", "--help"}, {"secrets", "rotate", "--help"}, {"orgs", "delete", "--help"}} {
		out, err := run(t, nil, args...)
		if err != nil || !strings.Contains(out, "--vault-addr") || !strings.Contains(out, "--data-dir") {
			t.Fatalf("%v: %v %s", args, err, out)
		}
		for _, serverOnly := range []string{"--rotate-signing-key", "--rotate-pepper", "--key-refresh", "--rotator", "--listen", "--worker"} {
			if strings.Contains(out, serverOnly+" ") {
				t.Errorf("%v lists the server's %s", args, serverOnly)
			}
		}
	}
}
