package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors"
)

var (
	botA = connectors.Account{ID: "a", Kind: "bot"}
	botB = connectors.Account{ID: "b", Kind: "bot"}
)

func to(a connectors.Account, chat string) connectors.Delivery {
	return connectors.Delivery{Account: a, ChatID: chat, Kind: connectors.KindSendMessage, Text: "x"}
}

// within returns a context whose deadline is far shorter than any wait the
// tests expect to be refused, and far longer than an immediate grant.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func refused(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a refusal for the deadline", err)
	}
}

func TestPenaltyAffectsOnlyItsScope(t *testing.T) {
	l := New(Config{})
	l.Penalize(ChatScope("-100slow"), time.Now().Add(20*time.Second))
	refused(t, l.Wait(within(t, time.Second), to(botA, "-100slow")))
	refused(t, l.Wait(within(t, time.Second), to(botB, "-100slow"))) // the chat's, for every bot here
	if err := l.Wait(within(t, time.Second), to(botA, "1")); err != nil {
		t.Fatalf("another chat of the same bot: %v", err)
	}

	l.Penalize(AccountScope(botA), time.Now().Add(20*time.Second))
	refused(t, l.Wait(within(t, time.Second), to(botA, "2")))
	if err := l.Wait(within(t, time.Second), to(botB, "2")); err != nil {
		t.Fatalf("another bot: %v", err)
	}
	l.Penalize("", time.Now().Add(time.Hour)) // ignored
	if st := l.Stats(); st.Penalties != 2 {
		t.Errorf("penalties %d, want 2", st.Penalties)
	}
}

func TestLongWaitIsReturnedAsRetryable(t *testing.T) {
	l := New(Config{MaxWait: 50 * time.Millisecond})
	l.Penalize(ChatScope("9"), time.Now().Add(10*time.Second))
	err := l.Wait(context.Background(), to(botA, "9"))
	var re *connectors.RetryableError
	if !errors.As(err, &re) || re.Scope != "chat:9" || re.After <= 50*time.Millisecond || !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want retryable for chat:9", err)
	}
}

func TestChatAndGroupBuckets(t *testing.T) {
	l := New(Config{})
	ctx := within(t, 500*time.Millisecond)
	for i := range DefaultChatBurst {
		if err := l.Wait(ctx, to(botA, "77")); err != nil {
			t.Fatalf("private message %d within the burst: %v", i, err)
		}
	}
	refused(t, l.Wait(ctx, to(botA, "77"))) // next token in 1 s
	// Another bot's chat bucket is its own.
	if err := l.Wait(ctx, to(botB, "77")); err != nil {
		t.Fatal(err)
	}
	for i := range DefaultGroupBurst {
		if err := l.Wait(ctx, to(botA, "@channel")); err != nil {
			t.Fatalf("channel message %d within the burst: %v", i, err)
		}
	}
	refused(t, l.Wait(ctx, to(botA, "@channel"))) // next token in 3 s
}

func TestBotAndPaidBroadcast(t *testing.T) {
	l := New(Config{})
	ctx := within(t, 100*time.Millisecond)
	paid := connectors.Account{ID: "p", Kind: "bot", PaidBroadcast: true}
	for i := range 40 {
		if err := l.Wait(ctx, to(paid, fmt.Sprint(i))); err != nil {
			t.Fatalf("paid broadcast message %d: %v", i, err)
		}
	}
	var err error
	for i := range 40 {
		if err = l.Wait(ctx, to(botA, fmt.Sprint(i))); err != nil {
			break
		}
	}
	refused(t, err) // 40 in 100 ms is over 30 msg/s
}

func TestUserAccountsAndOverrides(t *testing.T) {
	l := New(Config{})
	user := connectors.Account{ID: "u", Kind: "user"}
	if err := l.Wait(within(t, time.Second), to(user, "1")); err != nil {
		t.Fatal(err)
	}
	refused(t, l.Wait(within(t, time.Second), to(user, "2"))) // 20/min
	l.SetAccountLimit("u", 100, 10)
	for i := range 5 {
		if err := l.Wait(within(t, time.Second), to(user, fmt.Sprint(10+i))); err != nil {
			t.Fatalf("after override: %v", err)
		}
	}
}

func TestDrainPacesTheNewHolder(t *testing.T) {
	l := New(Config{})
	l.Drain(botA)
	refused(t, l.Wait(within(t, 5*time.Millisecond), to(botA, "1")))
}

func TestSweepBoundsMemory(t *testing.T) {
	l := New(Config{})
	now := time.Now()
	l.now = func() time.Time { return now }
	for i := range 5000 {
		if err := l.Wait(context.Background(), to(connectors.Account{ID: fmt.Sprint(i), Kind: "bot"}, fmt.Sprint(-i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := l.Stats(); st.Chats != 5000 {
		t.Fatalf("chats %d right after use, want 5000 (buckets not yet refilled)", st.Chats)
	}
	now = now.Add(time.Minute)
	l.Sweep()
	if st := l.Stats(); st.Chats != 0 {
		t.Fatalf("chats %d after every bucket refilled, want 0", st.Chats)
	}
}

func TestConcurrentWaits(t *testing.T) {
	l := New(Config{BotPerSecond: 10000, BotBurst: 1000, ChatPerSecond: 10000, ChatBurst: 1000, GroupPerMinute: 600000, GroupBurst: 1000})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				d := to(connectors.Account{ID: fmt.Sprint(g % 3), Kind: "bot"}, fmt.Sprint(i%7-3))
				if err := l.Wait(context.Background(), d); err != nil {
					t.Error(err)
					return
				}
				if i%10 == 0 {
					l.Penalize(ChatScope("nobody"), time.Now().Add(time.Second))
					l.Stats()
				}
			}
		})
	}
	wg.Wait()
}

type stub struct{ err error }

func (s stub) Send(context.Context, connectors.Delivery) (connectors.Receipt, error) {
	return connectors.Receipt{}, s.err
}

func TestWrapFeedsRetryAfterBack(t *testing.T) {
	l := New(Config{})
	c := Wrap(stub{&connectors.RetryableError{After: 20 * time.Second, Scope: "chat:-1005", Err: errors.New("429")}}, l)
	if _, err := c.Send(context.Background(), to(botA, "-1005")); connectors.RetryAfter(err) != 20*time.Second {
		t.Fatalf("got %v", err)
	}
	_, err := c.Send(within(t, time.Second), to(botA, "-1005"))
	if connectors.Classify(err) != connectors.ClassRetryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want retryable: not sent for the penalty", err)
	}
	ok := Wrap(stub{}, l)
	if _, err := ok.Send(within(t, time.Second), to(botA, "6")); err != nil {
		t.Fatalf("other chat: %v", err)
	}
}

func TestLocalLease(t *testing.T) {
	var lease LocalLease
	ctx := context.Background()
	h, ok, err := lease.TryAcquire(ctx, "acc")
	if err != nil || !ok {
		t.Fatalf("first acquire: %v %v", ok, err)
	}
	if _, ok, _ := lease.TryAcquire(ctx, "acc"); ok {
		t.Fatal("second holder for the same account")
	}
	if _, ok, _ := lease.TryAcquire(ctx, "other"); !ok {
		t.Fatal("other account refused")
	}
	h.Release(ctx)
	h.Release(ctx) // idempotent
	select {
	case <-h.Lost():
	default:
		t.Fatal("Lost not closed after Release")
	}
	if _, ok, _ := lease.TryAcquire(ctx, "acc"); !ok {
		t.Fatal("released lease not free")
	}
	var _ Lease = &lease
}

// BenchmarkWait measures the limiter's bookkeeping when no wait is needed.
func BenchmarkWait(b *testing.B) {
	l := New(Config{BotPerSecond: 1e9, BotBurst: 1e6, ChatPerSecond: 1e9, ChatBurst: 1e6})
	d := to(botA, "1")
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
