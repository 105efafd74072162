package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/heraldhq/herald/connectors/sandbox"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/store/storetest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "herald-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "herald")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build herald: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	storetest.Main(m)
}

// proc is a running "herald serve".
type proc struct {
	cmd    *exec.Cmd
	addr   string
	stdout *lockedBuffer
	stderr *lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for the child process's writer
// goroutine and the test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs herald serve and waits until it answers /readyz.
func start(t *testing.T, dataDir, dbURL string, extra ...string) *proc {
	t.Helper()
	p := &proc{addr: freeAddr(t), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	// A race-built server on a shared box misses the production 50 ms
	// decision deadline often; a miss is a 503, not what these tests study.
	p.cmd = exec.Command(binary, append([]string{"serve", "--listen", p.addr, "--data-dir", dataDir, "--database-url", dbURL,
		"--policy-timeout", "10s"}, extra...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _, _ = p.cmd.Process.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + p.addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("herald serve did not become ready: %s", p.stderr.String())
	return nil
}

func (p *proc) call(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	// A well-behaved client: Herald's rate limits (on by default) answer a
	// burst with 429 and Retry-After, so the call waits and tries again.
	for deadline := time.Now().Add(time.Minute); ; {
		req, _ := http.NewRequest(method, "http://"+p.addr+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusTooManyRequests && time.Now().Before(deadline) {
			wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			continue
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return out
	}
}

var (
	keyPattern     = regexp.MustCompile(`hk_[A-Za-z0-9]+_[A-Za-z0-9]+`)
	accountPattern = regexp.MustCompile(`Sandbox account: (\S+)`)
)

// TestRestartDeliversQueuedWorkExactlyOnce kills a server (SIGKILL, no
// shutdown) with an action queued, starts it again, and checks the action
// is delivered exactly once — on both databases.
func TestRestartDeliversQueuedWorkExactlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		dataDir := t.TempDir()
		dbURL := ""
		if b == storetest.Postgres {
			dbURL = storetest.NewDatabase(t)
		}
		p := start(t, dataDir, dbURL)
		key := keyPattern.FindString(p.stdout.String())
		m := accountPattern.FindStringSubmatch(p.stdout.String())
		if key == "" || m == nil {
			t.Fatalf("no bootstrap key or account printed: %q", p.stdout.String())
		}
		if strings.Contains(p.stderr.String(), key) {
			t.Fatal("the bootstrap key was written to the logs")
		}
		res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": m[1], "target": "-1001234567890",
			"purpose": "transactional", "text": "survives a crash", "schedule_at": time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)})
		action, _ := res["action"].(map[string]any)
		if action["status"] != "scheduled" {
			t.Fatalf("submit: %v", res)
		}
		id := action["id"].(string)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, _ = p.cmd.Process.Wait()

		p2 := start(t, dataDir, dbURL)
		if keyPattern.MatchString(p2.stdout.String()) {
			t.Fatal("a restart printed a new bootstrap key")
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := p2.call(t, "GET", "/v1/actions/"+id, key, nil)
			if st := got["action"].(map[string]any)["status"]; st == "delivered" {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("not delivered after restart: %v", st)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Graceful stop, then count what the sandbox recorded.
		_ = p2.cmd.Process.Signal(os.Interrupt)
		_, _ = p2.cmd.Process.Wait()
		msgs, err := sandbox.ReadJournal(filepath.Join(dataDir, "sandbox.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, msg := range msgs {
			if msg.ActionID == id {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("action delivered %d times, want exactly once", n)
		}
		if !strings.Contains(p2.stderr.String(), `"msg":"stopped"`) {
			t.Fatalf("no clean shutdown: %s", p2.stderr.String())
		}
	})
}

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestKeysAndMigrateCommands(t *testing.T) {
	dir := t.TempDir()
	out, err := run(t, nil, "migrate", "--data-dir", dir)
	if err != nil || !regexp.MustCompile(`sqlite schema at version [1-9][0-9]*`).MatchString(out) {
		t.Fatalf("migrate: %v %s", err, out)
	}
	// keys need an organisation: a first serve bootstraps one.
	p := start(t, dir, "")
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()
	tok, err := run(t, nil, "keys", "create", "--data-dir", dir, "--principal", "auditor-ann", "--role", "auditor")
	tok = strings.TrimSpace(lastLine(tok))
	if err != nil || !keyPattern.MatchString(tok) {
		t.Fatalf("keys create: %v %s", err, tok)
	}
	list, err := run(t, nil, "keys", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(list, "auditor-ann") || strings.Contains(list, tok) {
		t.Fatalf("keys list: %v %s", err, list)
	}
	prefix := strings.Split(tok, "_")[1]
	if out, err := run(t, nil, "keys", "revoke", prefix, "--data-dir", dir); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("keys revoke: %v %s", err, out)
	}
	list, _ = run(t, nil, "keys", "list", "--data-dir", dir)
	if !strings.Contains(list, "revoked") {
		t.Fatalf("revoked key not shown as revoked: %s", list)
	}
	if out, err := run(t, nil, "keys", "create", "--data-dir", dir, "--principal", "x", "--role", "root"); err == nil || !strings.Contains(out, "unknown role") {
		t.Fatalf("bad role accepted: %s", out)
	}
}

func lastLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	last := ""
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" && !strings.HasPrefix(sc.Text(), "{") {
			last = sc.Text()
		}
	}
	return last
}

// TestConfigPrecedence: flag > HERALD_* environment > YAML file.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "herald.yaml")
	os.WriteFile(file, []byte("data-dir: "+filepath.Join(dir, "from-file")+"\nlog-level: debug\n"), 0o600)
	if _, err := run(t, []string{"HERALD_CONFIG=" + file}, "migrate"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-file", "herald.db")); err != nil {
		t.Fatalf("YAML data-dir not used: %v", err)
	}
	if _, err := run(t, []string{"HERALD_CONFIG=" + file, "HERALD_DATA_DIR=" + filepath.Join(dir, "from-env")}, "migrate"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-env", "herald.db")); err != nil {
		t.Fatalf("env did not win over the file: %v", err)
	}
	if _, err := run(t, []string{"HERALD_DATA_DIR=" + filepath.Join(dir, "from-env")}, "migrate", "--config", file, "--data-dir", filepath.Join(dir, "from-flag")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-flag", "herald.db")); err != nil {
		t.Fatalf("flag did not win: %v", err)
	}
	os.WriteFile(file, []byte("data-dirr: x\n"), 0o600)
	if out, err := run(t, nil, "migrate", "--config", file); err == nil || !strings.Contains(out, `unknown key "data-dirr"`) {
		t.Fatalf("unknown YAML key accepted: %s", out)
	}
	if out, err := run(t, []string{"HERALD_LOG_LEVEL=loud"}, "migrate", "--data-dir", dir); err == nil || !strings.Contains(out, "log-level") {
		t.Fatalf("bad env value accepted: %s", out)
	}
	help, _ := run(t, nil, "serve", "--help")
	for _, want := range []string{"--database-url", "HERALD_", "--listen"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}

// TestKillMidSendLeavesUnknown kills a real worker process after Telegram
// executed its send but before the answer arrived. The restarted process
// must mark the action unknown and never send it again.
func TestKillMidSendLeavesUnknown(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{AcceptAnyToken: true, ResponseDelay: time.Minute})
	defer fake.Close()
	dataDir, dbURL := t.TempDir(), storetest.NewDatabase(t)
	args := []string{"--botapi-url", fake.URL(), "--job-lease", "8s", "--send-timeout", "6s", "--account-lease", "3s"}
	p := start(t, dataDir, dbURL, args...)
	key := keyPattern.FindString(p.stdout.String())
	acc := p.call(t, "POST", "/v1/accounts", key, map[string]any{"name": "shop", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}})
	accID, _ := acc["id"].(string)
	res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": accID, "target": "-100999",
		"purpose": "transactional", "text": "exactly once"})
	id := res["action"].(map[string]any)["id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for len(fake.Messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the worker never reached Telegram: %s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := p.call(t, "GET", "/v1/actions/"+id, key, nil)["action"].(map[string]any)["status"]; st != "sending" {
		t.Fatalf("while Telegram holds the answer the action is %v, want sending", st)
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = p.cmd.Process.Wait()

	p2 := start(t, dataDir, dbURL, args...)
	deadline = time.Now().Add(60 * time.Second)
	for {
		got := p2.call(t, "GET", "/v1/actions/"+id, key, nil)["action"].(map[string]any)
		if got["status"] == "unknown" {
			if got["error_code"] != "worker_lost" {
				t.Fatalf("unknown with error_code %v", got["error_code"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart the action is %v, want unknown", got["status"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if n := len(fake.Messages()); n != 1 {
		t.Fatalf("Telegram received %d messages, want exactly 1", n)
	}
	_ = p2.cmd.Process.Signal(os.Interrupt)
	_, _ = p2.cmd.Process.Wait()
}

// TestLimitsHoldAcrossTwoWorkerProcesses runs two herald processes on one
// PostgreSQL database against the limit-enforcing fake. Each process has
// its own rate limiter; the account lease makes one of them the bot's only
// sender, so Telegram never answers 429.
func TestLimitsHoldAcrossTwoWorkerProcesses(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{AcceptAnyToken: true})
	defer fake.Close()
	dbURL := storetest.NewDatabase(t)
	args := []string{"--botapi-url", fake.URL()}
	p1 := start(t, t.TempDir(), dbURL, args...)
	key := keyPattern.FindString(p1.stdout.String())
	p2 := start(t, t.TempDir(), dbURL, args...)
	acc := p1.call(t, "POST", "/v1/accounts", key, map[string]any{"name": "news", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": "777777:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}})
	accID, _ := acc["id"].(string)
	// Secrets live in each process's data dir (the local store); give p2 the
	// same token through its own API.
	p2.call(t, "PATCH", "/v1/accounts/"+accID, key, map[string]any{"secret": map[string]string{"token": "777777:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}})
	const n = 90
	for i := 0; i < n; i++ {
		p := p1
		if i%2 == 1 {
			p = p2
		}
		res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": accID,
			"target": fmt.Sprintf("-100%d", 500000+i), "purpose": "transactional", "text": "hi"})
		if _, ok := res["action"]; !ok {
			t.Fatalf("submit %d: %v", i, res)
		}

	}
	// Wait until nothing is queued: everything is delivered, or held for
	// approval by the default policy (a new bot bursting is risky).
	deadline := time.Now().Add(60 * time.Second)
	delivered := 0
	for {
		list := p1.call(t, "GET", "/v1/actions?limit=500", key, nil)["actions"].([]any)
		busy := 0
		delivered = 0
		for _, a := range list {
			switch a.(map[string]any)["status"] {
			case "scheduled", "sending":
				busy++
			case "delivered":
				delivered++
			}
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d actions still queued after 60 s", busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if delivered < 40 {
		t.Fatalf("only %d delivered: too few to load the bot's limit", delivered)
	}
	if st := fake.Stats(); st.TooManyRequests != 0 || st.Accepted != delivered {
		t.Fatalf("fake stats %+v: want %d accepted and no 429", st, delivered)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestConfigDocListsEveryServeFlag fails when a serve flag is missing from
// docs/configuration.md.
func TestConfigDocListsEveryServeFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(string(doc), "`--"+f.Name+"`") {
			t.Errorf("docs/configuration.md does not document --%s", f.Name)
		}
	})
}

// TestRevocationAcrossTwoGatewayProcesses: two herald processes share one
// PostgreSQL; a role revoked through one stops working on the other at
// once (LISTEN/NOTIFY), without a restart.
func TestRevocationAcrossTwoGatewayProcesses(t *testing.T) {
	dbURL := storetest.NewDatabase(t)
	p1 := start(t, t.TempDir(), dbURL)
	admin := keyPattern.FindString(p1.stdout.String())
	p2 := start(t, t.TempDir(), dbURL)
	op := keyFor(t, p1, "", dbURL, "operator")
	status := func(p *proc) int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/v1/actions", nil)
		req.Header.Set("Authorization", "Bearer "+op)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for status(p2) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the second process never saw the operator's binding")
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("DELETE", "http://"+p1.addr+"/v1/roles/bindings?principal=operator-x&role=operator", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("revoke = %d", res.StatusCode)
	}
	if st := status(p1); st != http.StatusForbidden {
		t.Fatalf("the revoking process still allows the role: %d", st)
	}
	// LISTEN/NOTIFY makes this immediate; the bound covers the 5 s version
	// poll too, in case the listener was still connecting.
	deadline = time.Now().Add(8 * time.Second)
	for status(p2) != http.StatusForbidden {
		if time.Now().After(deadline) {
			t.Fatal("the other process still allows a revoked role")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runInProcess runs a subcommand in this process and returns what it printed.
func runInProcess(cmd *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}
