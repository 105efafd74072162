package facade

import (
	"sync"
	"testing"
)

// TestWaitersWakeEveryWaiterAndForgetThem: Done wakes every call waiting
// for the action (and no other), and released waits leave nothing behind.
func TestWaitersWakeEveryWaiterAndForgetThem(t *testing.T) {
	var ws Waiters
	a1, rel1 := ws.wait("a")
	a2, rel2 := ws.wait("a")
	b, relB := ws.wait("b")
	ws.Done("a")
	for _, ch := range []<-chan struct{}{a1, a2} {
		select {
		case <-ch:
		default:
			t.Fatal("a waiter of a was not woken")
		}
	}
	select {
	case <-b:
		t.Fatal("a waiter of b was woken by a")
	default:
	}
	rel1()
	rel2()
	relB()
	ws.Done("nobody") // no waiter: a no-op
	if len(ws.m) != 0 {
		t.Fatalf("waiters left behind: %v", ws.m)
	}
	// Concurrent waits and notifications (run with -race).
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ch, rel := ws.wait("c")
			defer rel()
			select {
			case <-ch:
			default:
			}
		}()
		go func() { defer wg.Done(); ws.Done("c") }()
	}
	wg.Wait()
	if len(ws.m) != 0 {
		t.Fatalf("waiters left behind: %v", ws.m)
	}
}
