package mtproto

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gotd/td/bin"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"

	"github.com/heraldhq/herald/connectors"
)

// errFloodPremiumWait is FLOOD_PREMIUM_WAIT_X: the same limit as FLOOD_WAIT,
// announced to non-premium accounts with an upsell. tgerr.AsFloodWait only
// knows FLOOD_WAIT, so both types are checked here.
const errFloodPremiumWait = "FLOOD_PREMIUM_WAIT"

// ErrMethodHeld is wrapped by the RetryableError returned, without calling
// Telegram, for a method still inside an earlier FLOOD_WAIT.
var ErrMethodHeld = errors.New("method held by an earlier FLOOD_WAIT")

// FloodWait is a telegram.Middleware that keeps Telegram's per-method flood
// limits for one account (one instance per account: the limits are per
// account). A FLOOD_WAIT_X or FLOOD_PREMIUM_WAIT_X up to the threshold is
// waited out and the call retried once; a longer one, or a second one, is
// returned as *connectors.RetryableError{After: X s, Scope: "method:<name>"}.
// Either way the wait is remembered, so other calls of that method during it
// are held or refused without reaching Telegram: a call made inside a flood
// wait only lengthens it.
//
// A call that got FLOOD_WAIT was refused by Telegram, so the retry cannot
// double-send.
type FloodWait struct {
	threshold time.Duration
	perMethod map[string]time.Duration
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	until map[string]time.Time // method → not before
}

// NewFloodWait returns a FloodWait middleware. threshold 0 means
// DefaultFloodWaitThreshold, negative means never wait; perMethod overrides
// it by TL method name.
func NewFloodWait(threshold time.Duration, perMethod map[string]time.Duration) *FloodWait {
	if threshold == 0 {
		threshold = DefaultFloodWaitThreshold
	}
	return &FloodWait{
		threshold: threshold,
		perMethod: perMethod,
		now:       time.Now,
		sleep:     sleepCtx,
		until:     make(map[string]time.Time),
	}
}

var _ telegram.Middleware = (*FloodWait)(nil)

// Handle implements telegram.Middleware.
func (f *FloodWait) Handle(next tg.Invoker) telegram.InvokeFunc {
	return func(ctx context.Context, input bin.Encoder, output bin.Decoder) error {
		method := methodName(input)
		limit := f.thresholdOf(method)
		waited := false
		if held := f.held(method); held > 0 {
			if held > limit || !fitsDeadline(ctx, held) {
				return methodRetry(method, held, ErrMethodHeld)
			}
			if err := f.sleep(ctx, held); err != nil {
				return methodRetry(method, held, err)
			}
			waited = true
		}
		for {
			err := next.Invoke(ctx, input, output)
			d, ok := asFloodWait(err)
			if !ok {
				return err
			}
			f.hold(method, d)
			if waited || d > limit || !fitsDeadline(ctx, d) {
				return methodRetry(method, d, err)
			}
			if serr := f.sleep(ctx, d); serr != nil {
				return methodRetry(method, d, err)
			}
			waited = true
		}
	}
}

// Held reports how long method is still held for this account (0 if not).
func (f *FloodWait) Held(method string) time.Duration { return f.held(method) }

func (f *FloodWait) thresholdOf(method string) time.Duration {
	if t, ok := f.perMethod[method]; ok {
		return t
	}
	return f.threshold
}

func (f *FloodWait) held(method string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	until, ok := f.until[method]
	if !ok {
		return 0
	}
	d := until.Sub(f.now())
	if d <= 0 {
		delete(f.until, method)
		return 0
	}
	return d
}

func (f *FloodWait) hold(method string, d time.Duration) {
	until := f.now().Add(d)
	f.mu.Lock()
	defer f.mu.Unlock()
	if until.After(f.until[method]) {
		f.until[method] = until
	}
}

// asFloodWait reports the wait of a FLOOD_WAIT_X or FLOOD_PREMIUM_WAIT_X.
func asFloodWait(err error) (time.Duration, bool) {
	if d, ok := tgerr.AsFloodWait(err); ok {
		return d, true
	}
	if e, ok := tgerr.AsType(err, errFloodPremiumWait); ok {
		return time.Duration(e.Argument) * time.Second, true
	}
	return 0, false
}

// fitsDeadline: waiting past the caller's deadline only to fail then wastes a
// worker goroutine; hand the wait back at once instead.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

func methodRetry(method string, d time.Duration, err error) error {
	return &connectors.RetryableError{After: d, Scope: MethodScope(method), Err: fmt.Errorf("%s: %w", method, err)}
}

// MethodScope names the scope of a per-method flood limit: "method:<name>".
func MethodScope(method string) string { return "method:" + method }

// methodName is the TL name of a request ("messages.sendMessage").
func methodName(input bin.Encoder) string {
	if n, ok := input.(interface{ TypeName() string }); ok {
		return n.TypeName()
	}
	return fmt.Sprintf("%T", input)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
