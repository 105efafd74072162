package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

type tokenOf string

func (t tokenOf) BotToken(context.Context, connectors.Account) (string, error) { return string(t), nil }

// TestDatabaseRestartUnderLoad restarts PostgreSQL (pg_ctl restart -m fast,
// on a cluster of the test's own) while clients submit to contacts and the
// worker delivers through the Bot API connector to the fake Telegram. It
// proves: no submit is answered 500 (a fault is 503 with Retry-After), no
// action is lost or doubled (Telegram's own record is the witness: every
// accepted action arrived exactly once), every accepted action arrives
// within 10 s of the database returning, and the logs carry neither chat
// ids nor Idempotency-Keys although transactions failed mid-lock.
func TestDatabaseRestartUnderLoad(t *testing.T) {
	cluster := storetest.NewCluster(t)
	ctx := context.Background()
	s, err := store.Open(ctx, cluster.NewDatabase(t, "herald_restart"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// The default 50 ms evaluation deadline fails closed (deny) when the
	// shared test machine is overloaded; this test is about database
	// faults, so policy gets a deadline it cannot miss by accident.
	eng, err := policies.Compile(ctx, policies.DefaultBundle(), policies.EvalTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, s, eng)

	const token = "424242:restart-test-token-aaaaaaaaaaaaaaaaaa"
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	t.Cleanup(fake.Close)
	bot, err := botapi.New(botapi.Config{BaseURL: fake.URL(), Tokens: tokenOf(token)})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: "real bot", Kind: herald.AccountBot, Connector: "botapi", SecretRef: "x"})
	if err != nil {
		t.Fatal(err)
	}
	worker := delivery.New(s, map[string]connectors.Connector{"botapi": ratelimit.Wrap(bot, ratelimit.New(ratelimit.Config{}))},
		eng, delivery.Config{ID: "restart-worker", Poll: 100 * time.Millisecond},
		slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), telemetry.New(nil))
	wctx, stop := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); _ = worker.Run(wctx) }()
	t.Cleanup(func() { stop(); <-workerDone })

	// Contacts, one chat each, so Telegram's per-chat limit paces nothing.
	const clients, perClient = 6, 10
	rows := make([]map[string]any, clients*perClient)
	for i := range rows {
		rows[i] = map[string]any{"chat_id": strconv.Itoa(770000001 + i), "purpose": "support", "legal_basis": "contract", "source": "crm"}
	}
	imp := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], rows)
	if imp.status != 200 {
		t.Fatalf("import = %d %s", imp.status, imp.raw)
	}
	contacts := imp.body["contacts"].([]any)
	// A new account's 60 sends in a minute would be a "burst" that the
	// default bundle sends to approval; this test is about the database.
	if r := e.do("PUT", "/v1/policies/params", e.keys[herald.RoleComplianceOfficer], map[string]any{"overrides": map[string]any{
		"risk": map[string]any{"burst_min": 10000}}}); r.status != http.StatusOK {
		t.Fatalf("set params: %d %s", r.status, r.raw)
	}

	var (
		mu          sync.Mutex
		accepted    = map[string]string{} // idempotency key → action id
		lastAccept  time.Time             // when the last submit was accepted
		unavailable int
		restarted   = make(chan struct{})
	)
	op := e.keys[herald.RoleOperator]
	submit := func(key, contact string) {
		body := map[string]any{"kind": "send_message", "account": acc.ID, "target": contact, "purpose": "support", "text": "notice " + key}
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			r := e.do("POST", "/v1/actions", op, body, "Idempotency-Key", key)
			switch {
			case r.status == http.StatusCreated || r.status == http.StatusOK:
				if st := r.str("action", "status"); st != string(herald.StatusScheduled) && st != string(herald.StatusSending) && st != string(herald.StatusDelivered) {
					t.Errorf("%s: accepted as %s: %s", key, st, r.raw)
				}
				mu.Lock()
				accepted[key] = r.str("action", "id")
				lastAccept = time.Now()
				mu.Unlock()
				return
			case r.status == http.StatusServiceUnavailable:
				if r.header.Get("Retry-After") == "" || r.str("code") != "unavailable" {
					t.Errorf("503 without Retry-After or code: %v %s", r.header, r.raw)
				}
				mu.Lock()
				unavailable++
				mu.Unlock()
				time.Sleep(100 * time.Millisecond) // shorter than Retry-After: the test is in a hurry
			default:
				t.Errorf("%s: submit = %d %s", key, r.status, r.raw)
				return
			}
		}
		t.Errorf("%s: never accepted", key)
	}
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				if i == perClient/2 {
					<-restarted // half before the restart, half during and after
				}
				submit(fmt.Sprintf("c%d-a%d", c, i), contacts[c*perClient+i].(string))
			}
		}(c)
	}
	// Restart once the first half is in and (some of it) in flight.
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		if n >= clients*perClient/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d submits before the restart", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(restarted) // the second half is submitted while the server goes down
	cluster.Restart(t)
	back := time.Now()
	wg.Wait()

	// Every accepted action reaches Telegram exactly once, within 10 s of
	// the database's return — or of its own acceptance, for the submits
	// the clients were still retrying after it (a loaded machine can take
	// seconds to answer them).
	want := clients * perClient
	if len(accepted) != want {
		t.Fatalf("%d of %d actions accepted", len(accepted), want)
	}
	from := back
	if lastAccept.After(from) {
		from = lastAccept
	}
	var got map[string]int
	for {
		got = map[string]int{}
		for _, m := range fake.Messages() {
			got[strings.TrimPrefix(m.Text, "notice ")]++
		}
		if len(got) == want || time.Since(from) > 10*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for key := range accepted {
		if got[key] != 1 {
			t.Errorf("action %s reached Telegram %d times", key, got[key])
		}
	}
	if len(got) != want {
		t.Fatalf("%d of %d accepted actions delivered within 10 s of the database returning (%s ago) and of the last acceptance (%s ago)", len(got), want, time.Since(back), time.Since(from))
	}
	t.Logf("database back → all %d delivered in %s; %d submits answered 503 and retried", want, time.Since(back).Round(time.Millisecond), unavailable)
	for key, id := range accepted {
		a, err := s.GetAction(ctx, e.org.ID, id)
		if err != nil || a.Status != herald.StatusDelivered {
			t.Errorf("action %s (%s) is %s, %v", id, key, a.Status, err)
		}
	}

	logs := e.logs.String()
	if strings.Contains(logs, `"status":500`) || strings.Contains(logs, `"msg":"internal error"`) {
		t.Errorf("a database fault was logged as an internal error")
	}
	for i := range rows {
		if chat := rows[i]["chat_id"].(string); strings.Contains(logs, chat) {
			t.Fatalf("logs contain chat id %s", chat)
		}
	}
	for key := range accepted {
		if strings.Contains(logs, `"`+key+`"`) || strings.Contains(logs, "/"+key) || strings.Contains(logs, "notice "+key) {
			t.Fatalf("logs contain Idempotency-Key or text of %s", key)
		}
	}
}

// TestLogsCarryNoPersonalDataOnDatabaseFaults injects a database fault into
// the submit's locking step: another session holds the sending account's
// lock and the database's lock_timeout is short, so the lock statement
// fails (lock_not_available). The submit answers 503 with Retry-After and
// the error is logged, but without the lock keys' chat id or the client's
// Idempotency-Key, which the keys embed.
func TestLogsCarryNoPersonalDataOnDatabaseFaults(t *testing.T) {
	ctx := context.Background()
	dbURL := storetest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+" SET lock_timeout = '200ms'"); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, s, defaultEngine(t))
	const chat, key = "913572468", "client-key-Quagga-77"
	imp := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{
		{"chat_id": chat, "purpose": "support", "legal_basis": "contract", "source": "crm"}})
	contact := imp.body["contacts"].([]any)[0].(string)

	// Hold the account's lock (the key policyinput.LockKeys names) from
	// another session, so the submit's lock statement times out.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", "herald/account/"+e.account.ID); err != nil {
		t.Fatal(err)
	}
	before := e.counts()
	for _, target := range []string{contact, chat} {
		r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq(target, "support", "Secret diagnosis Okapi"), "Idempotency-Key", key+target)
		if r.status != http.StatusServiceUnavailable || r.str("code") != "unavailable" || r.header.Get("Retry-After") == "" {
			t.Fatalf("submit during a lock fault = %d %v %s; want 503 unavailable with Retry-After", r.status, r.header, r.raw)
		}
	}
	if after := e.counts(); after != before {
		t.Fatalf("a failed submit changed the database: %+v → %+v", before, after)
	}
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"database unavailable"`) || !strings.Contains(logs, "lock [h:") {
		t.Fatalf("the injected fault was not logged (as a digest of its lock keys):\n%s", logs)
	}
	for _, secret := range []string{chat, key, "Okapi", e.keys[herald.RoleOperator]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
	// The same request succeeds once the fault is gone: nothing was decided.
	if r := e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], e.sendReq(contact, "support", "Secret diagnosis Okapi"), "Idempotency-Key", key+contact); r.status != http.StatusCreated {
		t.Fatalf("retry after the fault = %d %s", r.status, r.raw)
	}
}
