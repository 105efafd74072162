package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/store"
)

// Lease timing. A holder renews every DefaultLeaseRenew; a holder that dies
// loses the account after at most DefaultLeaseTTL, and reports the lease
// lost (so it stops sending) before another process can take it.
const (
	DefaultLeaseTTL   = 15 * time.Second
	DefaultLeaseRenew = 5 * time.Second
)

// StoreLease is the database-backed ratelimit.Lease: a row per account with
// an owner and an expiry, renewed in the background. It holds across
// processes sharing one database (PostgreSQL) and within the single
// process that owns an embedded SQLite file.
type StoreLease struct {
	Store *store.Store
	Owner string
	TTL   time.Duration
	Renew time.Duration
}

var _ ratelimit.Lease = (*StoreLease)(nil)

// TryAcquire implements ratelimit.Lease.
func (l *StoreLease) TryAcquire(ctx context.Context, account string) (ratelimit.Hold, bool, error) {
	ttl, renew := l.TTL, l.Renew
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if renew <= 0 || renew >= ttl {
		renew = ttl / 3
	}
	ok, err := l.Store.AcquireLease(ctx, account, l.Owner, ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	h := &storeHold{l: l, account: account, lost: make(chan struct{}), stop: make(chan struct{}), deadline: time.Now().Add(ttl)}
	go h.renew(ttl, renew)
	return h, true, nil
}

type storeHold struct {
	l        *StoreLease
	account  string
	lost     chan struct{}
	stop     chan struct{}
	lostOnce sync.Once
	stopOnce sync.Once
	deadline time.Time
}

func (h *storeHold) Lost() <-chan struct{} { return h.lost }

// renew extends the lease until Release, and declares it lost when a
// renewal fails and the last good expiry is near: the holder must stop
// sending before another process can legitimately take the account.
func (h *storeHold) renew(ttl, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			ok, err := h.l.Store.AcquireLease(ctx, h.account, h.l.Owner, ttl)
			cancel()
			switch {
			case err == nil && ok:
				h.deadline = time.Now().Add(ttl)
			case err == nil && !ok, time.Until(h.deadline) < every:
				h.markLost()
				return
			}
		}
	}
}

func (h *storeHold) markLost() { h.lostOnce.Do(func() { close(h.lost) }) }

// Release implements ratelimit.Hold.
func (h *storeHold) Release(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stop) })
	h.markLost()
	return h.l.Store.ReleaseLease(ctx, h.account, h.l.Owner)
}
