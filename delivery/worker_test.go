package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// scripted is a connector whose answers the test sets, one per call.
type scripted struct {
	mu      sync.Mutex
	answers []error
	calls   []connectors.Delivery
}

func (s *scripted) Send(_ context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, d)
	var err error
	if len(s.answers) > 0 {
		err, s.answers = s.answers[0], s.answers[1:]
	}
	if err != nil {
		return connectors.Receipt{}, err
	}
	return connectors.Receipt{MessageID: int64(len(s.calls)), ChatID: d.ChatID, Connector: "scripted"}, nil
}

func (s *scripted) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// allow is a decider that allows everything (the worker's own logic is
// under test here; the policy engine has its own suite and the gateway
// tests run the real one).
type decider struct{ outcome string }

func (d decider) Decide(context.Context, policies.Input) (policies.Decision, error) {
	return policies.Decision{Outcome: d.outcome}, nil
}

type fixture struct {
	s       *store.Store
	conn    *scripted
	w       *delivery.Worker
	org     herald.Org
	account herald.Account
	contact herald.Contact
	now     time.Time
	mu      sync.Mutex
}

func newFixture(t *testing.T, b storetest.Backend, outcome string) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{s: storetest.Open(t, b), conn: &scripted{}, now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	f.s.SetClock(func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now })
	f.org, _ = f.s.CreateOrg(ctx, "Acme", "UTC")
	f.account, _ = f.s.CreateAccount(ctx, herald.Account{Org: f.org.ID, Name: "b", Kind: herald.AccountBot, Connector: "sandbox"})
	err := f.s.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ImportContacts(ctx, f.org.ID, []herald.ContactImportRow{{ChatID: "77", Purpose: "support", LegalBasis: "contract", Source: "t"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.contact, _ = f.s.ContactByChat(ctx, f.org.ID, "77")
	f.w = delivery.New(f.s, map[string]connectors.Connector{"sandbox": f.conn}, decider{outcome},
		delivery.Config{ID: "w1", BaseBackoff: time.Second, MaxBackoff: time.Second, MaxAttempts: 3}, nil, nil)
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func (f *fixture) schedule(t *testing.T) herald.Action {
	t.Helper()
	ctx := context.Background()
	a := herald.Action{Org: f.org.ID, Account: f.account.ID, Kind: herald.KindSendMessage, Purpose: "support",
		Target: "77", ContactID: f.contact.ID, Content: herald.Content{Text: "hi"}, SendAt: f.now, SubmittedBy: "op"}
	err := f.s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertAction(ctx, &a); err != nil {
			return err
		}
		if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusDecided, Actor: "policy"}); err != nil {
			return err
		}
		var err error
		if a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: "system"}); err != nil {
			return err
		}
		return tx.Enqueue(ctx, a, a.SendAt)
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) status(t *testing.T, id string) herald.Action {
	t.Helper()
	a, err := f.s.GetAction(context.Background(), f.org.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) runOnce(t *testing.T) int {
	t.Helper()
	n, err := f.w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetryHonoursRetryAfterThenDelivers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		f.conn.answers = []error{&connectors.RetryableError{After: 30 * time.Second, Scope: "chat:77", Err: errors.New("429")}}
		a := f.schedule(t)
		f.runOnce(t)
		got := f.status(t, a.ID)
		if got.Status != herald.StatusScheduled || !got.SendAt.Equal(f.now.Add(30*time.Second)) || got.Attempts != 1 {
			t.Fatalf("after a 429: %+v", got)
		}
		f.advance(29 * time.Second)
		if n := f.runOnce(t); n != 0 {
			t.Fatal("the job ran before retry_after elapsed")
		}
		f.advance(time.Second)
		f.runOnce(t)
		if got := f.status(t, a.ID); got.Status != herald.StatusDelivered || got.Attempts != 2 {
			t.Fatalf("after retry: %+v", got)
		}
		if f.conn.count() != 2 {
			t.Fatalf("connector called %d times", f.conn.count())
		}
		// Each attempt's classification is in the ledger.
		entries, _ := f.s.LedgerEntries(context.Background(), f.org.ID, store.LedgerFilter{})
		var classes []string
		for _, e := range entries {
			if c, ok := e.Attrs["class"].(string); ok && e.Refs["action"] == a.ID {
				classes = append(classes, c+"@"+e.Kind)
				if c == "retryable" && (e.Attrs["scope"] != "chat:77" || e.Attrs["retry_after_ms"].(float64) != 30000) {
					t.Fatalf("retry entry attrs = %v", e.Attrs)
				}
			}
		}
		if fmt.Sprint(classes) != "[retryable@action.scheduled none@action.delivered]" {
			t.Fatalf("classified attempts in the ledger = %v", classes)
		}
	})
}

func TestRetriesAreBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		boom := &connectors.RetryableError{Err: errors.New("502")}
		f.conn.answers = []error{boom, boom, boom, boom}
		a := f.schedule(t)
		for i := 0; i < 5; i++ {
			f.runOnce(t)
			f.advance(2 * time.Second)
		}
		got := f.status(t, a.ID)
		if got.Status != herald.StatusFailed || got.ErrorCode != "retries_exhausted" || f.conn.count() != 3 {
			t.Fatalf("after 3 failures: %+v, %d calls", got, f.conn.count())
		}
	})
}

func TestBlockedRecipientIsSuppressed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		f.conn.answers = []error{&connectors.PermanentError{Code: "blocked", Suppress: true, Err: errors.New("Forbidden: bot was blocked by the user")}}
		a := f.schedule(t)
		f.runOnce(t)
		if got := f.status(t, a.ID); got.Status != herald.StatusFailed || got.ErrorCode != "blocked" {
			t.Fatalf("blocked: %+v", got)
		}
		c, _ := f.s.GetContact(context.Background(), f.org.ID, f.contact.ID)
		if c.OptedOutAt == nil || c.OptOutSource != "telegram.blocked" {
			t.Fatalf("contact not suppressed: %+v", c)
		}
	})
}

func TestAccountStopFreezesAndHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		f.conn.answers = []error{&connectors.AccountStopError{Code: "peer_flood", Freeze: time.Hour, Err: errors.New("PEER_FLOOD")}}
		a := f.schedule(t)
		f.runOnce(t)
		acc, _ := f.s.GetAccount(context.Background(), f.org.ID, f.account.ID)
		if acc.Status != herald.AccountFrozen || acc.FrozenUntil == nil || !acc.FrozenUntil.Equal(f.now.Add(time.Hour)) {
			t.Fatalf("account after PEER_FLOOD: %+v", acc)
		}
		if got := f.status(t, a.ID); got.Status != herald.StatusScheduled {
			t.Fatalf("held action: %+v", got)
		}
		f.advance(30 * time.Minute)
		if n := f.runOnce(t); n != 0 || f.conn.count() != 1 {
			t.Fatal("a frozen account's queue was not held")
		}
		f.advance(31 * time.Minute)
		f.runOnce(t)
		if got := f.status(t, a.ID); got.Status != herald.StatusDelivered {
			t.Fatalf("after the freeze: %+v", got)
		}
	})
}

func TestUnknownOutcomeIsNeverResent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		f.conn.answers = []error{&connectors.UnknownError{Err: errors.New("connection reset after write")}}
		a := f.schedule(t)
		f.runOnce(t)
		f.advance(time.Hour)
		f.runOnce(t)
		if got := f.status(t, a.ID); got.Status != herald.StatusUnknown || f.conn.count() != 1 {
			t.Fatalf("unknown outcome: %+v after %d calls", got, f.conn.count())
		}
	})
}

// A worker that committed "sending" and died leaves its job leased; when
// the lease expires, the next worker marks the action unknown instead of
// sending it again.
func TestLostWorkerLeavesUnknown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		ctx := context.Background()
		a := f.schedule(t)
		jobs, err := f.s.ClaimJobs(ctx, "dead-worker", time.Minute, 10)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim = %v %v", jobs, err)
		}
		if err := f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusSending, Actor: "system", CountAttempt: true})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n := f.runOnce(t); n != 0 {
			t.Fatal("a live lease was taken over")
		}
		f.advance(2 * time.Minute)
		f.runOnce(t)
		got := f.status(t, a.ID)
		if got.Status != herald.StatusUnknown || got.ErrorCode != "worker_lost" || f.conn.count() != 0 {
			t.Fatalf("after the lease expired: %+v, %d sends", got, f.conn.count())
		}
	})
}

func TestSendTimeDenyAndDefer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeDeny)
		a := f.schedule(t)
		f.runOnce(t)
		if got := f.status(t, a.ID); got.Status != herald.StatusDenied || f.conn.count() != 0 {
			t.Fatalf("send-time deny: %+v", got)
		}
	})
}

func TestShutdownHandsJobsBack(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		ctx := context.Background()
		f.schedule(t)
		if jobs, _ := f.s.ClaimJobs(ctx, "w1", time.Hour, 10); len(jobs) != 1 {
			t.Fatal("claim failed")
		}
		runCtx, cancel := context.WithCancel(ctx)
		cancel()
		if err := f.w.Run(runCtx); err != nil {
			t.Fatal(err)
		}
		jobs, _ := f.s.ClaimJobs(ctx, "w2", time.Minute, 10)
		if len(jobs) != 1 {
			t.Fatalf("after shutdown another worker claims %d jobs, want 1", len(jobs))
		}
	})
}

// TestAccountLeaseKeepsOneSender: two workers share one database; only the
// holder of an account's lease sends for it, so one process's rate-limit
// buckets are the account's buckets. When the holder dies, the lease
// expires and the other worker takes over.
func TestAccountLeaseKeepsOneSender(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		f := newFixture(t, b, policies.OutcomeAllow)
		conn1, conn2 := &scripted{}, &scripted{}
		mk := func(id string, c *scripted) *delivery.Worker {
			return delivery.New(f.s, map[string]connectors.Connector{"sandbox": c}, decider{policies.OutcomeAllow},
				delivery.Config{ID: id, AccountLease: &delivery.StoreLease{Store: f.s, Owner: id, TTL: time.Minute, Renew: 20 * time.Second}}, nil, nil)
		}
		w1, w2 := mk("w1", conn1), mk("w2", conn2)
		f.schedule(t)
		if _, err := w1.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.schedule(t)
		f.schedule(t)
		if n, _ := w2.RunOnce(context.Background()); n != 0 {
			t.Fatalf("w2 claimed %d jobs of an account w1 holds", n)
		}
		if _, err := w1.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if conn1.count() != 3 || conn2.count() != 0 {
			t.Fatalf("sends: w1 %d, w2 %d; want 3 and 0", conn1.count(), conn2.count())
		}
		// w1 dies without releasing; after the TTL w2 takes the account.
		f.schedule(t)
		f.advance(2 * time.Minute)
		if _, err := w2.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if conn2.count() != 1 {
			t.Fatalf("after w1's lease expired, w2 sent %d", conn2.count())
		}
	})
}
