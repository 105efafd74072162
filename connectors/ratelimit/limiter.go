package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/heraldhq/herald/connectors"
)

// ErrBusy is wrapped in the RetryableError Wait returns when the wait would
// exceed Config.MaxWait.
var ErrBusy = errors.New("ratelimit: scope busy")

// Limiter holds the token buckets of the accounts this process sends for.
// It is safe for concurrent use. The zero value is not usable; call New.
type Limiter struct {
	cfg Config
	now func() time.Time

	mu        sync.Mutex
	accounts  map[string]*rate.Limiter // by AccountScope
	overrides map[string]accountLimit  // by account ID
	chats     map[chatKey]*chatBuckets
	penalties map[string]time.Time // scope → not before
	waits     int
}

type accountLimit struct {
	perSecond float64
	burst     int
}

// chatKey is per account and chat: Telegram's per-chat limits are per bot.
type chatKey struct{ account, chat string }

type chatBuckets struct {
	chat  *rate.Limiter
	group *rate.Limiter // nil for private chats
}

// New returns a Limiter with cfg's limits (zero fields take the defaults).
func New(cfg Config) *Limiter {
	return &Limiter{
		cfg:       cfg.withDefaults(),
		now:       time.Now,
		accounts:  make(map[string]*rate.Limiter),
		overrides: make(map[string]accountLimit),
		chats:     make(map[chatKey]*chatBuckets),
		penalties: make(map[string]time.Time),
	}
}

// SetAccountLimit overrides the account-wide rate of one account (from
// policy data, for example a user account's daily budget spread over the
// day). It takes effect on the next Wait.
func (l *Limiter) SetAccountLimit(accountID string, perSecond float64, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.overrides[accountID] = accountLimit{perSecond: perSecond, burst: max(burst, 1)}
	delete(l.accounts, "bot:"+accountID)
	delete(l.accounts, "user:"+accountID)
}

// Drain empties an account's bucket. A worker calls it right after it
// acquires an account's lease: the previous holder may have spent the last
// second's budget, so the new holder starts paced instead of with a burst.
func (l *Limiter) Drain(a connectors.Account) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.accountBucket(a)
	b.ReserveN(l.now(), b.Burst())
}

// Penalize makes every delivery in scope wait until the given time. The
// worker (or [Wrap]) calls it with a RetryableError's Scope and After, so a
// retry_after affects only the scope Telegram limited. An empty scope is
// ignored.
func (l *Limiter) Penalize(scope string, until time.Time) {
	if scope == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.penalties[scope]) {
		l.penalties[scope] = until
	}
}

// Wait blocks until d may be sent under every scope that applies to it: any
// penalty on its account or chat, the chat bucket, the group bucket for
// groups and channels, then the account bucket. It returns ctx's error if
// ctx ends first (or its deadline is too close to wait that long), and a
// *connectors.RetryableError wrapping ErrBusy when the wait would exceed
// Config.MaxWait, so the caller can reschedule instead of blocking.
//
// The per-target buckets are waited on before the shared account bucket so
// a delivery that must wait seconds for a group does not hold one of the
// account's tokens meanwhile.
func (l *Limiter) Wait(ctx context.Context, d connectors.Delivery) error {
	acctScope := AccountScope(d.Account)
	chatScope := ChatScope(d.ChatID)

	// Penalties first; they may be extended while we sleep, so loop.
	for {
		l.mu.Lock()
		now := l.now()
		until, scope := l.penalties[acctScope], acctScope
		if p := l.penalties[chatScope]; p.After(until) {
			until, scope = p, chatScope
		}
		l.mu.Unlock()
		if !until.After(now) {
			break
		}
		if err := l.sleep(ctx, until.Sub(now), scope, nil); err != nil {
			return err
		}
	}

	// Per-target buckets, reserved together.
	l.mu.Lock()
	now := l.now()
	l.maybeSweep(now)
	cb := l.chatBuckets(d.Account.ID, d.ChatID)
	res := []*rate.Reservation{cb.chat.ReserveN(now, 1)}
	if cb.group != nil {
		res = append(res, cb.group.ReserveN(now, 1))
	}
	l.mu.Unlock()
	if err := l.sleep(ctx, maxDelay(res, now), chatScope, res); err != nil {
		return err
	}

	// The account bucket last.
	l.mu.Lock()
	now = l.now()
	r := l.accountBucket(d.Account).ReserveN(now, 1)
	l.mu.Unlock()
	return l.sleep(ctx, r.DelayFrom(now), acctScope, []*rate.Reservation{r})
}

// sleep waits for delay unless it exceeds MaxWait or ctx's deadline, in
// which case the reservations are given back.
func (l *Limiter) sleep(ctx context.Context, delay time.Duration, scope string, res []*rate.Reservation) error {
	cancel := func() {
		for _, r := range res {
			r.Cancel()
		}
	}
	if delay <= 0 {
		return nil
	}
	if delay > l.cfg.MaxWait {
		cancel()
		return &connectors.RetryableError{After: delay, Scope: scope,
			Err: fmt.Errorf("%w: %s needs %s, more than the %s a worker waits", ErrBusy, scope, delay.Round(time.Millisecond), l.cfg.MaxWait)}
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(l.now().Add(delay)) {
		cancel()
		return fmt.Errorf("ratelimit: %s needs %s, beyond the context deadline: %w", scope, delay.Round(time.Millisecond), context.DeadlineExceeded)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		cancel()
		return fmt.Errorf("ratelimit: waiting on %s: %w", scope, ctx.Err())
	}
}

func maxDelay(res []*rate.Reservation, now time.Time) time.Duration {
	var d time.Duration
	for _, r := range res {
		d = max(d, r.DelayFrom(now))
	}
	return d
}

// accountBucket returns (creating) the account's bucket. l.mu must be held.
func (l *Limiter) accountBucket(a connectors.Account) *rate.Limiter {
	scope := AccountScope(a)
	b := l.accounts[scope]
	perSecond, burst := l.accountLimit(a)
	if b == nil || b.Limit() != rate.Limit(perSecond) {
		// A changed setting (paid broadcast switched on) takes effect now.
		b = rate.NewLimiter(rate.Limit(perSecond), burst)
		l.accounts[scope] = b
	}
	return b
}

func (l *Limiter) accountLimit(a connectors.Account) (float64, int) {
	if o, ok := l.overrides[a.ID]; ok {
		return o.perSecond, o.burst
	}
	switch {
	case a.Kind == "user":
		return l.cfg.UserPerMinute / 60, l.cfg.UserBurst
	case a.PaidBroadcast:
		return l.cfg.PaidBroadcastPerSecond, l.cfg.PaidBroadcastBurst
	}
	return l.cfg.BotPerSecond, l.cfg.BotBurst
}

// chatBuckets returns (creating) the buckets of one chat. l.mu must be held.
func (l *Limiter) chatBuckets(account, chat string) *chatBuckets {
	k := chatKey{account, chat}
	cb := l.chats[k]
	if cb == nil {
		cb = &chatBuckets{chat: rate.NewLimiter(rate.Limit(l.cfg.ChatPerSecond), l.cfg.ChatBurst)}
		if IsGroupChat(chat) {
			cb.group = rate.NewLimiter(rate.Limit(l.cfg.GroupPerMinute/60), l.cfg.GroupBurst)
		}
		l.chats[k] = cb
	}
	return cb
}

// maybeSweep bounds memory: every sweepEvery waits it drops chat buckets
// that are full again and expired penalties. Dropping a full bucket loses
// nothing (a new one starts full), so memory is bounded by the chats used
// within one refill time (ChatBurst/ChatPerSecond, GroupBurst/GroupPerMinute:
// seconds), never by all chats ever seen. l.mu must be held.
func (l *Limiter) maybeSweep(now time.Time) {
	l.waits++
	if l.waits%sweepEvery != 0 {
		return
	}
	l.sweep(now)
}

func (l *Limiter) sweep(now time.Time) {
	for k, cb := range l.chats {
		if full(cb.chat, now) && (cb.group == nil || full(cb.group, now)) {
			delete(l.chats, k)
		}
	}
	for s, until := range l.penalties {
		if !until.After(now) {
			delete(l.penalties, s)
		}
	}
}

func full(b *rate.Limiter, now time.Time) bool { return b.TokensAt(now) >= float64(b.Burst()) }

// Stats is a snapshot for metrics and tests.
type Stats struct {
	Accounts  int
	Chats     int
	Penalties int
}

// Stats returns how many buckets and penalties the limiter holds.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Accounts: len(l.accounts), Chats: len(l.chats), Penalties: len(l.penalties)}
}

// Sweep drops idle buckets and expired penalties now (Wait does it
// periodically on its own).
func (l *Limiter) Sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(l.now())
}
