package mtproto

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
)

// The FloodWait middleware against a scripted tg.Invoker and a fake clock:
// no network, no real sleeping.

type scriptedInvoker struct {
	mu      sync.Mutex
	answers []error // one per call; past the end: success
	calls   int
}

func (s *scriptedInvoker) Invoke(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= len(s.answers) {
		return s.answers[s.calls-1]
	}
	return nil
}

type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	refuse error // returned by sleep when set (a cancelled context)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil {
		return c.refuse
	}
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return nil
}

func newTestFloodWait(threshold time.Duration, perMethod map[string]time.Duration) (*FloodWait, *fakeClock) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	f := NewFloodWait(threshold, perMethod)
	f.now = clk.Now
	f.sleep = clk.sleep
	return f, clk
}

var sendReq = &tg.MessagesSendMessageRequest{Peer: &tg.InputPeerSelf{}, Message: "x", RandomID: 1}

func invoke(f *FloodWait, next tg.Invoker, input bin.Encoder) error {
	return f.Handle(next)(context.Background(), input, &tg.UpdatesBox{})
}

func TestFloodWaitBelowThresholdWaitsAndRetriesOnce(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_3")}}
	if err := invoke(f, next, sendReq); err != nil {
		t.Fatal(err)
	}
	if next.calls != 2 || len(clk.slept) != 1 || clk.slept[0] != 3*time.Second {
		t.Fatalf("calls %d slept %v", next.calls, clk.slept)
	}
}

func TestFloodWaitPremiumIsTheSameLimit(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_PREMIUM_WAIT_2")}}
	if err := invoke(f, next, sendReq); err != nil {
		t.Fatal(err)
	}
	if next.calls != 2 || clk.slept[0] != 2*time.Second {
		t.Fatalf("calls %d slept %v", next.calls, clk.slept)
	}
}

func TestFloodWaitRetriesOnlyOnce(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_2"), tgerr.New(420, "FLOOD_WAIT_4")}}
	err := invoke(f, next, sendReq)
	var r *connectors.RetryableError
	if !errors.As(err, &r) || r.After != 4*time.Second || r.Scope != "method:messages.sendMessage" {
		t.Fatalf("got %v", err)
	}
	if next.calls != 2 || len(clk.slept) != 1 {
		t.Fatalf("calls %d slept %v", next.calls, clk.slept)
	}
	if !tgerr.Is(err, "FLOOD_WAIT") {
		t.Fatal("the RPC error must stay reachable through Unwrap")
	}
}

func TestFloodWaitAboveThresholdIsRetryableAndHoldsTheMethod(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_60")}}
	err := invoke(f, next, sendReq)
	var r *connectors.RetryableError
	if !errors.As(err, &r) || r.After != time.Minute || r.Scope != "method:messages.sendMessage" {
		t.Fatalf("got %v", err)
	}
	if len(clk.slept) != 0 {
		t.Fatalf("slept %v", clk.slept)
	}
	// Held: refused locally, the invoker is not called.
	clk.now = clk.now.Add(20 * time.Second)
	err = invoke(f, next, sendReq)
	if !errors.As(err, &r) || !errors.Is(err, ErrMethodHeld) || r.After != 40*time.Second {
		t.Fatalf("held: %v", err)
	}
	if next.calls != 1 {
		t.Fatalf("calls %d", next.calls)
	}
	// Other methods are not held.
	if err := invoke(f, next, &tg.MessagesEditMessageRequest{Peer: &tg.InputPeerSelf{}, ID: 1}); err != nil {
		t.Fatal(err)
	}
	// Near the end of the hold, below the threshold: waited out, then sent.
	clk.now = clk.now.Add(37 * time.Second)
	if err := invoke(f, next, sendReq); err != nil {
		t.Fatal(err)
	}
	if len(clk.slept) != 1 || clk.slept[0] != 3*time.Second {
		t.Fatalf("slept %v", clk.slept)
	}
	if f.Held("messages.sendMessage") != 0 {
		t.Fatal("hold not released")
	}
}

func TestFloodWaitPerMethodThreshold(t *testing.T) {
	f, clk := newTestFloodWait(0, map[string]time.Duration{"messages.sendMessage": 30 * time.Second})
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_20")}}
	if err := invoke(f, next, sendReq); err != nil {
		t.Fatal(err)
	}
	if len(clk.slept) != 1 {
		t.Fatalf("slept %v", clk.slept)
	}
	g, _ := newTestFloodWait(-1, nil) // never wait
	next = &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_1")}}
	if err := invoke(g, next, sendReq); connectors.RetryAfter(err) != time.Second {
		t.Fatalf("got %v", err)
	}
}

func TestFloodWaitRespectsDeadline(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_4")}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := f.Handle(next)(ctx, sendReq, &tg.UpdatesBox{})
	if connectors.RetryAfter(err) != 4*time.Second || len(clk.slept) != 0 {
		t.Fatalf("got %v, slept %v", err, clk.slept)
	}
}

func TestFloodWaitCancelledWhileWaiting(t *testing.T) {
	f, clk := newTestFloodWait(0, nil)
	clk.refuse = context.Canceled
	next := &scriptedInvoker{answers: []error{tgerr.New(420, "FLOOD_WAIT_2")}}
	err := invoke(f, next, sendReq)
	if connectors.Classify(err) != connectors.ClassRetryable || next.calls != 1 {
		t.Fatalf("got %v after %d calls", err, next.calls)
	}
}

func TestFloodWaitPassesOtherErrors(t *testing.T) {
	f, _ := newTestFloodWait(0, nil)
	want := tgerr.New(400, "PEER_FLOOD")
	next := &scriptedInvoker{answers: []error{want}}
	if err := invoke(f, next, sendReq); !errors.Is(err, want) || next.calls != 1 {
		t.Fatalf("got %v", err)
	}
}
