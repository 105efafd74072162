package facade_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// The real frameworks are installed from npm with the committed lock file
// into the user cache (keyed by the lock's hash), once per machine; a
// changed lock file installs afresh. scripts/test installs Node and npm.

var (
	npmOnce sync.Once
	npmDir  string
	npmErr  error
)

func frameworks(t *testing.T) string {
	t.Helper()
	npmOnce.Do(func() { npmDir, npmErr = installFrameworks() })
	if npmErr != nil {
		t.Fatalf("install grammY and Telegraf (scripts/test installs Node and npm): %v", npmErr)
	}
	return npmDir
}

func installFrameworks() (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", err
	}
	pkg, err := os.ReadFile("testdata/npm/package.json")
	if err != nil {
		return "", err
	}
	lock, err := os.ReadFile("testdata/npm/package-lock.json")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append([]byte{}, pkg...), lock...))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "herald-facade-npm", hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "grammy", "package.json")); err == nil {
		return dir, nil
	}
	// Install beside, then rename: concurrent test binaries never see a
	// half-installed tree.
	tmp, err := os.MkdirTemp(filepath.Dir(dir)+"", "install-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), "install-"); err != nil {
			return "", err
		}
	}
	for name, b := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("npm ci: %v: %s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, "node_modules")); serr == nil {
			return dir, nil // another process won the race
		}
		return "", err
	}
	return dir, nil
}

// runBot runs one step of testdata/npm/bot.mjs against Herald and decodes
// its JSON line.
func (e *env) runBot(t *testing.T, step, token string, args ...string) map[string]any {
	t.Helper()
	dst := botScript(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{dst, step, token}, args...)...)
	cmd.Env = append(os.Environ(), "HERALD_API_ROOT="+e.srv.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s", step, err, stderr.String())
	}
	var v map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
		t.Fatalf("node %s printed %q: %v", step, stdout.String(), err)
	}
	return v
}

// botScript installs the frameworks and returns the path of bot.mjs beside
// them (it must resolve the packages from the cache directory).
func botScript(t *testing.T) string {
	t.Helper()
	dir := frameworks(t)
	script, err := filepath.Abs("testdata/npm/bot.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// The script must resolve the packages from the cache directory.
	dst := filepath.Join(dir, "bot.mjs")
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := os.ReadFile(dst); err != nil || !bytes.Equal(cur, src) {
		tmp := dst + fmt.Sprintf(".%d", os.Getpid())
		if err := os.WriteFile(tmp, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, dst); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func field(v map[string]any, path ...string) any {
	var x any = v
	for _, p := range path {
		m, _ := x.(map[string]any)
		x = m[p]
	}
	return x
}

// stop delivers a person's /stop to Herald's inbound webhook as Telegram
// would (with the account's secret token).
func (e *env) stop(t *testing.T, chat int64) {
	t.Helper()
	r := e.do("POST", "/v1/accounts/"+e.account.ID+"/webhook-secret", e.admin, nil)
	if r.status != http.StatusOK {
		t.Fatalf("webhook secret: %d %s", r.status, r.raw)
	}
	update := map[string]any{"update_id": 1, "message": map[string]any{"message_id": 7, "date": e.s.Now().Unix(),
		"chat": map[string]any{"id": chat, "type": "private"}, "text": "/stop"}}
	w := e.do("POST", r.str("url_path"), "", update, "X-Telegram-Bot-Api-Secret-Token", r.str("secret_token"))
	if w.status != http.StatusOK {
		t.Fatalf("webhook: %d %s", w.status, w.raw)
	}
}

// TestGrammYBotIsGovernedEndToEnd runs an unmodified grammY bot (and a
// Telegraf one) with only its API root and token changed, against Herald
// backed by the limit-enforcing fake Telegram.
func TestGrammYBotIsGovernedEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tx := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		promo := e.facadeToken("promo-bot", herald.RoleOperator, herald.PurposeMarketing, "")
		e.contact("5005", herald.PurposeTransactional, herald.PurposeMarketing)

		// A transactional message is delivered; the bot gets a real Message.
		v := e.runBot(t, "grammy-send", tx, "5005", "Your order #7 has shipped")
		sent := e.fake.MessagesTo("5005")
		if v["ok"] != true || len(sent) != 1 || field(v, "message", "message_id") != float64(sent[0].MessageID) ||
			field(v, "message", "text") != "Your order #7 has shipped" || field(v, "message", "chat", "id") != float64(5005) {
			t.Fatalf("transactional: %v (Telegram has %+v)", v, sent)
		}
		// Telegraf too.
		v = e.runBot(t, "telegraf-send", tx, "5005", "Telegraf says hi")
		if v["ok"] != true || field(v, "message", "text") != "Telegraf says hi" {
			t.Fatalf("telegraf: %v", v)
		}
		// A marketing message is allowed before the opt-out…
		if v = e.runBot(t, "grammy-send", promo, "5005", "Spring sale"); v["ok"] != true {
			t.Fatalf("marketing before opt-out: %v", v)
		}
		// …then the person sends /stop, and the next one makes grammY throw
		// a GrammyError 403 naming Herald's rule.
		e.stop(t, 5005)
		before := len(e.fake.MessagesTo("5005"))
		v = e.runBot(t, "grammy-send", promo, "5005", "Summer sale")
		if v["grammy_error"] != true || v["error_code"] != float64(403) ||
			!strings.HasPrefix(v["description"].(string), "Forbidden: consent.opted_out: ") {
			t.Fatalf("after /stop: %v", v)
		}
		if rules, _ := field(v, "parameters", "herald_rules").([]any); len(rules) == 0 || rules[0] != "consent.opted_out" {
			t.Fatalf("parameters: %v", v)
		}
		v = e.runBot(t, "telegraf-send", promo, "5005", "Autumn sale")
		if v["telegraf_error"] != true || v["error_code"] != float64(403) {
			t.Fatalf("telegraf after /stop: %v", v)
		}
		if n := len(e.fake.MessagesTo("5005")); n != before {
			t.Fatalf("a denied send reached Telegram: %d → %d", before, n)
		}
		// getMe is forwarded with the real token: the fake's own answer.
		v = e.runBot(t, "grammy-getme", tx)
		if field(v, "me", "username") != "fake_4242_bot" {
			t.Fatalf("getMe: %v", v)
		}
		// Every governed call is in the ledger: 5 received, 3 delivered, 2 denied.
		k := e.ledgerKinds()
		if k["action.received"] != 5 || k["action.delivered"] != 3 || k["action.denied"] != 2 || k["contact.opted_out"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
		assertLedgerVerifies(t, e)
	})
}

// TestGrammYAutoRetryDeliversAfterQuietHours: a marketing send just before 09:00
// in Berlin is deferred to 09:00; grammY's stock auto-retry plugin honours
// retry_after, retries, and receives the Message once it is delivered —
// one message, never two.
func TestGrammYAutoRetryDeliversAfterQuietHours(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		frameworks(t) // install before the clock starts
		// 08:59:50 in Berlin when the env starts: the setup takes a few
		// seconds, the rest of the quiet hours is the retry_after.
		e := newEnv(t, b, envOpts{start: time.Date(2026, 3, 10, 7, 59, 50, 0, time.UTC)})
		promo := e.facadeToken("promo-bot", herald.RoleOperator, herald.PurposeMarketing, "retry_after")
		e.contact("6006", herald.PurposeMarketing)
		v := e.runBot(t, "grammy-autoretry", promo, "6006", "Good morning deal")
		sent := e.fake.MessagesTo("6006")
		if v["ok"] != true || len(sent) != 1 || field(v, "message", "message_id") != float64(sent[0].MessageID) {
			t.Fatalf("auto-retry: %v (Telegram has %+v)", v, sent)
		}
		if sent[0].At.IsZero() {
			t.Fatal("no send time recorded")
		}
		if ms, _ := v["elapsed_ms"].(float64); ms < 1000 {
			t.Fatalf("delivered after %.0f ms: the quiet hours were not waited for", ms)
		}
		k := e.ledgerKinds()
		if k["action.received"] != 1 || k["action.delivered"] != 1 {
			t.Fatalf("ledger: %v", k)
		}
	})
}

// assertLedgerVerifies checks the org's chain end to end.
func assertLedgerVerifies(t *testing.T, e *env) {
	t.Helper()
	es, err := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatal("empty ledger")
	}
	for i, x := range es {
		if h, err := x.ComputeHash(); err != nil || h != x.Hash {
			t.Fatalf("ledger entry %d does not hash to its hash (%v)", x.Seq, err)
		}
		if i > 0 && (x.Seq != es[i-1].Seq+1 || x.PrevHash != es[i-1].Hash) {
			t.Fatalf("ledger chain breaks at seq %d", x.Seq)
		}
	}
}
