package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store/storetest"
)

// Issue 10: every promise holds on every way a user can address a person.

type witnessToken string

func (t witnessToken) BotToken(context.Context, connectors.Account) (string, error) {
	return string(t), nil
}

// witness is a Bot API account of e's organisation delivering through the
// real Bot API connector to the fake Telegram, whose record is the witness
// of what reached people (never Herald's own tables).
type witness struct {
	fake    *telegramtest.Server
	account herald.Account
	worker  *delivery.Worker
}

func newWitness(e *env, d delivery.Decider) *witness {
	e.t.Helper()
	const token = "424242:exactness-test-token-aaaaaaaaaaaaaaaa"
	fake := telegramtest.New(telegramtest.Options{Tokens: []string{token}})
	e.t.Cleanup(fake.Close)
	bot, err := botapi.New(botapi.Config{BaseURL: fake.URL(), Tokens: witnessToken(token)})
	if err != nil {
		e.t.Fatal(err)
	}
	acc, err := e.s.CreateAccount(context.Background(), herald.Account{Org: e.org.ID, Name: "witnessed bot",
		Kind: herald.AccountBot, Connector: herald.ConnectorBotAPI, SecretRef: "herald/bots/witness"})
	if err != nil {
		e.t.Fatal(err)
	}
	w := delivery.New(e.s, map[string]connectors.Connector{herald.ConnectorBotAPI: bot}, d,
		delivery.Config{ID: "witness-worker", PolicyRetry: 5 * time.Second}, nil, nil)
	return &witness{fake: fake, account: acc, worker: w}
}

// drain runs the worker until no due job is left.
func (w *witness) drain(t testing.TB) {
	t.Helper()
	for i := 0; i < 50; i++ {
		n, err := w.worker.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the queue does not drain")
}

func (w *witness) req(target, purpose, text string) map[string]any {
	return map[string]any{"kind": "send_message", "account": w.account.ID, "target": target, "purpose": purpose, "text": text}
}

// importPerson imports one consenting contact with a chat id and a user
// name and returns its id.
func importPerson(e *env, chat, username string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{{"chat_id": chat, "username": username,
		"timezone": "Europe/Berlin", "purpose": "marketing", "legal_basis": "consent", "source": "form",
		"consented_at": daytime.Add(-48 * time.Hour).Format(time.RFC3339)}})
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		e.t.Fatalf("import: %d %s", r.status, r.raw)
	}
	ids, _ := r.body["contacts"].([]any)
	if len(ids) != 1 {
		e.t.Fatalf("import answered %s", r.raw)
	}
	return ids[0].(string)
}

// freeze stops e's clock at t (every request of a phase at one instant).
func freeze(e *env, at time.Time) func(time.Time) {
	var mu sync.Mutex
	now := at
	e.s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	return func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
}

// TestOnePersonIsOneRecipient: a contact reached by contact id, chat id,
// @username (any case) and MTProto peer is one recipient: the marketing cap
// of 1 a day lets exactly one through, the action records both the contact
// and the resolved chat, and the fake Telegram received one message.
// Opt-out reached through the user name holds too.
func TestOnePersonIsOneRecipient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		freeze(e, daytime.Add(3*time.Hour))
		w := newWitness(e, defaultEngine(t))
		op := e.keys[herald.RoleOperator]
		id := importPerson(e, "4711", "Alice_S")

		var actions []string
		for i, target := range []string{id, id, "4711", "@alice_s", "@ALICE_S", "user:4711:99"} {
			r := e.do("POST", "/v1/actions", op, w.req(target, "marketing", "Spring sale"))
			if r.status != http.StatusCreated {
				t.Fatalf("submit %d (%s): %d %s", i, target, r.status, r.raw)
			}
			want := "defer"
			if i == 0 {
				want = "allow"
			}
			if got := r.str("decision", "outcome"); got != want && !(want == "defer" && got == "deny") {
				t.Fatalf("submit %d to %s: outcome %q, want %s (one person, one cap): %s", i, target, got, want, r.raw)
			}
			if got := r.str("action", "contact"); got != id {
				t.Fatalf("submit %d to %s: action.contact = %q, want the contact %s", i, target, got, id)
			}
			actions = append(actions, r.str("action", "id"))
		}
		got := e.do("GET", "/v1/actions/"+actions[3], op, nil)
		if got.str("action", "target") != "4711" || got.str("action", "contact") != id {
			t.Fatalf("an action to @alice_s stores target %q contact %q; want the resolved chat 4711 and the contact",
				got.str("action", "target"), got.str("action", "contact"))
		}
		w.drain(t)
		if n := len(w.fake.Messages()); n != 1 {
			t.Fatalf("Telegram received %d messages, want 1 (cap 1 a day for one person): %+v", n, w.fake.Messages())
		}
		if n := len(w.fake.MessagesTo("4711")); n != 1 {
			t.Fatalf("Telegram received %d messages in chat 4711, want 1", n)
		}

		// Opt-out is the person's, whichever address is used.
		if r := e.do("POST", "/v1/contacts/"+id+"/opt-out", e.keys[herald.RoleComplianceOfficer], map[string]any{"source": "phone call"}); r.status != http.StatusOK {
			t.Fatalf("opt out: %d %s", r.status, r.raw)
		}
		for _, target := range []string{"@Alice_S", "4711", "user:4711:1"} {
			r := e.do("POST", "/v1/actions", op, w.req(target, "transactional", "Your order shipped"))
			if r.status != http.StatusCreated || r.str("decision", "outcome") != "deny" {
				t.Fatalf("transactional send to opted-out person via %s: %d %s", target, r.status, r.raw)
			}
		}
	})
}

// TestCancelReleasesTheReservation: cancelling a scheduled send gives its
// place back at once (the counter is decremented in the cancel's
// transaction), so the next send to the person is allowed.
func TestCancelReleasesTheReservation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		freeze(e, daytime.Add(3*time.Hour))
		op := e.keys[herald.RoleOperator]
		id := importPerson(e, "5150", "")
		first := e.do("POST", "/v1/actions", op, e.sendReq(id, "marketing", "Spring sale"))
		if first.str("decision", "outcome") != "allow" {
			t.Fatalf("first send: %s", first.raw)
		}
		if r := e.do("POST", "/v1/actions", op, e.sendReq("5150", "marketing", "Spring sale")); r.str("decision", "outcome") == "allow" {
			t.Fatalf("second send to the same person allowed before the first was cancelled: %s", r.raw)
		}
		if r := e.do("POST", "/v1/actions/"+first.str("action", "id")+"/cancel", op, nil); r.status != http.StatusOK {
			t.Fatalf("cancel: %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v1/actions", op, e.sendReq(id, "marketing", "Spring sale")); r.str("decision", "outcome") != "allow" {
			t.Fatalf("send after cancelling the only reservation: %s", r.raw)
		}
	})
}

// TestFiftyConcurrentSendsCapOne: 50 concurrent marketing sends to one
// consenting contact (through its contact id, chat id and user name) with a
// cap of 1 a day deliver exactly one a day — not zero (starvation at send
// time) and not more — and every other action shows in the API why it did
// not go: denied, or deferred with a send_at in the future and an event.
func TestFiftyConcurrentSendsCapOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		day1 := daytime.Add(3 * time.Hour) // 16:00 in Berlin
		setClock := freeze(e, day1)
		w := newWitness(e, defaultEngine(t))
		op := e.keys[herald.RoleOperator]
		id := importPerson(e, "6060", "bob_the_person")
		addresses := []string{id, "6060", "@bob_the_person"}
		// 1 a day, and no weekly cap in the way: the 49 deferred at submit
		// all fall due together the next morning.
		if r := e.do("PUT", "/v1/policies/params", e.keys[herald.RoleComplianceOfficer], map[string]any{"overrides": map[string]any{
			"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": 1, "per_week": 100}}}}}); r.status != http.StatusOK {
			t.Fatalf("set caps: %d %s", r.status, r.raw)
		}

		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			ids []string
			out = map[string]int{}
		)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := e.do("POST", "/v1/actions", op, w.req(addresses[i%len(addresses)], "marketing", "Spring sale"))
				mu.Lock()
				defer mu.Unlock()
				if r.status != http.StatusCreated {
					out[fmt.Sprintf("http %d", r.status)]++
					return
				}
				out[r.str("decision", "outcome")]++
				ids = append(ids, r.str("action", "id"))
			}(i)
		}
		wg.Wait()
		if out["allow"] != 1 || out["allow"]+out["defer"]+out["deny"] != 50 {
			t.Fatalf("50 concurrent submits, cap 1: %v, want exactly 1 allow", out)
		}
		w.drain(t)
		if n := len(w.fake.MessagesTo("6060")); n != 1 {
			t.Fatalf("day 1: Telegram received %d messages, want 1", n)
		}
		// Day 2, after the deferred ones fell due (09:00 in Berlin): exactly
		// one more goes, the others are deferred again, visibly.
		day2 := day1.Add(21 * time.Hour) // 13:00 Berlin next day
		setClock(day2)
		// Every deferral due today is decided again at send time.
		dueToday := 0
		for _, aid := range ids {
			r := e.do("GET", "/v1/actions/"+aid, op, nil)
			sendAt, _ := time.Parse(time.RFC3339Nano, r.str("action", "send_at"))
			if r.str("action", "status") == "scheduled" && !sendAt.After(day2) {
				dueToday++
			}
		}
		if dueToday != 49 {
			t.Fatalf("%d deferred actions due on day 2; the test needs a batch falling due together", dueToday)
		}
		w.drain(t)
		if n := len(w.fake.MessagesTo("6060")); n != 2 {
			t.Fatalf("day 2: Telegram received %d messages in all, want 2 (one a day; 1 would be starvation)", n)
		}
		delivered, sendTimeDeferrals := 0, 0
		for _, aid := range ids {
			r := e.do("GET", "/v1/actions/"+aid, op, nil)
			status, outcome := r.str("action", "status"), r.str("action", "decision", "outcome")
			switch status {
			case "delivered":
				delivered++
				continue
			case "denied":
				if outcome != "deny" {
					t.Fatalf("action %s denied with decision %q", aid, outcome)
				}
				continue
			case "scheduled":
			default:
				t.Fatalf("action %s is %s", aid, status)
			}
			if outcome != "defer" {
				t.Fatalf("scheduled action %s shows decision %q, want defer: %s", aid, outcome, r.raw)
			}
			sendAt, err := time.Parse(time.RFC3339Nano, r.str("action", "send_at"))
			if err != nil || !sendAt.After(day2) {
				t.Fatalf("deferred action %s shows send_at %q, want after %s", aid, r.str("action", "send_at"), day2)
			}
			events, _ := r.body["events"].([]any)
			last, _ := events[len(events)-1].(map[string]any)
			if last["detail"] != nil && strings.HasPrefix(last["detail"].(string), "deferred until ") {
				sendTimeDeferrals++
				if !strings.Contains(last["detail"].(string), sendAt.UTC().Format(time.RFC3339Nano)) ||
					!strings.Contains(last["detail"].(string), "frequency.recipient_daily") {
					t.Fatalf("deferral event %v does not name the new send_at %s and the rule", last, sendAt)
				}
			}
		}
		if delivered != 2 {
			t.Fatalf("the API shows %d delivered, Telegram 2", delivered)
		}
		if sendTimeDeferrals != dueToday-1 {
			t.Fatalf("%d actions show a send-time deferral event, want the %d due on day 2 that did not go", sendTimeDeferrals, dueToday-1)
		}
	})
}

// switchable is a Decider that is the real engine, or the real engine with
// a slow module added, whose evaluation always misses its deadline.
type switchable struct {
	fast, slow *policies.Engine
	isSlow     atomic.Bool
}

func (s *switchable) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	if s.isSlow.Load() {
		return s.slow.Decide(ctx, in)
	}
	return s.fast.Decide(ctx, in)
}

// slowEngine is the default bundle with a family whose verdicts take
// seconds to compute (depending on the input, so no compile-time folding
// can remove the work), under a 20 ms deadline.
func slowEngine(t testing.TB) *policies.Engine {
	b := policies.DefaultBundle()
	files := map[string][]byte{}
	for k, v := range b.Files {
		files[k] = v
	}
	dec := string(files["decision.rego"])
	dec = strings.Replace(dec, "import data.herald.approval\n", "import data.herald.approval\nimport data.herald.slow\n", 1)
	dec = strings.Replace(dec, "verdicts := (((consent.verdicts", "verdicts := ((((slow.verdicts | consent.verdicts", 1)
	dec = strings.Replace(dec, "| approval.verdicts\n", "| approval.verdicts)\n", 1)
	files["decision.rego"] = []byte(dec)
	files["slow.rego"] = []byte(`package herald.slow

n := 2000 + count(input.action.purpose)

work := count([1 | some _ in numbers.range(1, n); some _ in numbers.range(1, n)])

verdicts := set() if work >= 0
`)
	eng, err := policies.Compile(context.Background(), policies.Bundle{Files: files}, policies.EvalTimeout(20*time.Millisecond))
	if err != nil {
		t.Fatalf("compile slow bundle: %v", err)
	}
	return eng
}

// TestPolicyDeadlineIsRetryable: an evaluation that misses its deadline is
// Herald's load, not a verdict: the submit answers 503 policy_unavailable
// with Retry-After and stores nothing; at send time the worker retries in
// seconds and the action is never denied.
func TestPolicyDeadlineIsRetryable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		d := &switchable{fast: defaultEngine(t), slow: slowEngine(t)}
		e := newEnvWith(t, b, d)
		setClock := freeze(e, daytime.Add(3*time.Hour))
		w := newWitness(e, d)
		op := e.keys[herald.RoleOperator]
		id := importPerson(e, "7070", "")

		d.isSlow.Store(true)
		before := e.counts()
		for _, dry := range []string{"", "?dry_run=true"} {
			r := e.do("POST", "/v1/actions"+dry, op, w.req(id, "marketing", "Spring sale"))
			if r.status != http.StatusServiceUnavailable || r.str("code") != string(gateway.CodePolicyUnavailable) {
				t.Fatalf("submit%s under a missed deadline: %d %s, want 503 policy_unavailable", dry, r.status, r.raw)
			}
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %v", r.header)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("a 503 changed the store: %+v → %+v", before, after)
		}

		d.isSlow.Store(false)
		r := e.do("POST", "/v1/actions", op, w.req(id, "marketing", "Spring sale"))
		if r.status != http.StatusCreated || r.str("decision", "outcome") != "allow" {
			t.Fatalf("submit: %d %s", r.status, r.raw)
		}
		aid := r.str("action", "id")
		d.isSlow.Store(true)
		w.drain(t)
		got := e.do("GET", "/v1/actions/"+aid, op, nil)
		if got.str("action", "status") != "scheduled" || got.str("action", "decision", "outcome") != "allow" {
			t.Fatalf("after a missed deadline at send time the action is %s/%s, want still scheduled and allowed: %s",
				got.str("action", "status"), got.str("action", "decision", "outcome"), got.raw)
		}
		if n := len(w.fake.Messages()); n != 0 {
			t.Fatalf("sent without a decision: %d messages", n)
		}
		d.isSlow.Store(false)
		setClock(daytime.Add(3*time.Hour + 6*time.Second)) // past the retry delay
		w.drain(t)
		got = e.do("GET", "/v1/actions/"+aid, op, nil)
		if got.str("action", "status") != "delivered" || len(w.fake.MessagesTo("7070")) != 1 {
			t.Fatalf("the retried send: %s, Telegram %d messages", got.str("action", "status"), len(w.fake.MessagesTo("7070")))
		}
		for _, ev := range got.body["events"].([]any) {
			if ev.(map[string]any)["to"] == "denied" {
				t.Fatalf("the action was denied on the way: %s", got.raw)
			}
		}
	})
}

// TestRandomInterleavingsHoldTheCap: random mixes of addresses of one
// person and random caps, submitted concurrently: Telegram never receives
// more than the cap in the day, and exactly the cap when at least that many
// were sent.
func TestRandomInterleavingsHoldTheCap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 10))
		for round := 0; round < 3; round++ {
			e := newEnv(t, b)
			freeze(e, daytime.Add(3*time.Hour))
			w := newWitness(e, defaultEngine(t))
			capN, sends := 1+rng.IntN(3), 1+rng.IntN(8)
			if r := e.do("PUT", "/v1/policies/params", e.keys[herald.RoleComplianceOfficer],
				map[string]any{"overrides": map[string]any{"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": capN, "per_week": 10}}}}}); r.status != http.StatusOK {
				t.Fatalf("set cap: %d %s", r.status, r.raw)
			}
			id := importPerson(e, "8080", "carol_person")
			addresses := []string{id, "8080", "@carol_person", "@Carol_Person"}
			var wg sync.WaitGroup
			for i := 0; i < sends; i++ {
				wg.Add(1)
				target := addresses[rng.IntN(len(addresses))]
				go func() {
					defer wg.Done()
					e.do("POST", "/v1/actions", e.keys[herald.RoleOperator], w.req(target, "marketing", "Spring sale"))
				}()
			}
			wg.Wait()
			w.drain(t)
			got, want := len(w.fake.MessagesTo("8080")), min(capN, sends)
			if got != want {
				t.Fatalf("seed %d round %d: cap %d, %d sends: Telegram received %d, want %d", seed, round, capN, sends, got, want)
			}
		}
	})
}
