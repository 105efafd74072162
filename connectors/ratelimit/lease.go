package ratelimit

import (
	"context"
	"fmt"
	"sync"
)

// Lease is how limits hold across several worker processes: at most one
// process at a time holds an account's lease, and only the holder sends for
// that account, so the holder's Limiter buckets are the account's buckets
// (per-process buckets would multiply the limit by the number of replicas).
//
// The production implementation lives with the PostgreSQL store (a lease row
// per account with an owner and an expiry, renewed well before it expires);
// [LocalLease] is the single-process fallback for the embedded store and
// tests.
//
// A worker MUST stop sending for an account as soon as Hold.Lost is closed,
// and SHOULD call [Limiter.Drain] for the account right after acquiring it.
type Lease interface {
	// TryAcquire takes account's lease if it is free (or expired) and
	// returns ok=false without waiting if another process holds it.
	TryAcquire(ctx context.Context, account string) (h Hold, ok bool, err error)
}

// Hold is one held lease.
type Hold interface {
	// Lost is closed when the lease can no longer be guaranteed (renewal
	// failed or the expiry passed); sending must stop before it closes.
	Lost() <-chan struct{}
	// Release gives the lease up so another process can take it at once.
	Release(ctx context.Context) error
}

// LocalLease is a Lease within one process. The zero value is ready to use.
type LocalLease struct {
	mu   sync.Mutex
	held map[string]*localHold
}

type localHold struct {
	l       *LocalLease
	account string
	lost    chan struct{}
	once    sync.Once
}

// TryAcquire implements Lease.
func (l *LocalLease) TryAcquire(ctx context.Context, account string) (Hold, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("lease %s: %w", account, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = make(map[string]*localHold)
	}
	if _, busy := l.held[account]; busy {
		return nil, false, nil
	}
	h := &localHold{l: l, account: account, lost: make(chan struct{})}
	l.held[account] = h
	return h, true, nil
}

func (h *localHold) Lost() <-chan struct{} { return h.lost }

func (h *localHold) Release(context.Context) error {
	h.once.Do(func() {
		h.l.mu.Lock()
		if h.l.held[h.account] == h {
			delete(h.l.held, h.account)
		}
		h.l.mu.Unlock()
		close(h.lost)
	})
	return nil
}
