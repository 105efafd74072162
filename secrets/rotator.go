package secrets

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RotationEvent records one rotation: which secret and the versions before
// and after. It deliberately has no field for a value; the lead records it as
// a secret.rotated ledger entry.
type RotationEvent struct {
	Secret     string // e.g. "transit/herald-checkpoints", "pepper/acme"
	OldVersion int
	NewVersion int
	At         time.Time
}

// Rotation is one secret class on a schedule.
type Rotation struct {
	// Secret names what is rotated, as it will appear in the ledger.
	Secret string
	// Every is the rotation interval. Rotations happen at multiples of Every
	// since Go's zero time (Every=24h rotates at 00:00 UTC), like cron: a
	// restart does not shift the schedule, and replicas agree on it.
	Every time.Duration
	// Rotate performs the rotation and returns the old and new versions.
	Rotate func(ctx context.Context) (oldVersion, newVersion int, err error)
}

// Rotator runs Rotations on their schedules until its context ends.
//
// Run it on one replica (the leader): a Rotate func without check-and-set
// (Transit's rotate) would otherwise rotate once per replica. The pepper
// rotation uses check-and-set, so a second replica fails harmlessly with
// ErrCASMismatch.
type Rotator struct {
	Rotations []Rotation
	// OnRotate is called after each successful rotation.
	OnRotate func(ctx context.Context, ev RotationEvent)
	// OnError is called when a rotation fails; the rotation is retried at
	// its next scheduled time or, if the store was unavailable, after
	// RetryAfter.
	OnError func(ctx context.Context, secret string, err error)
	// RetryAfter is the delay before retrying a rotation that failed with
	// ErrUnavailable; zero means a minute.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Run blocks, rotating each secret when due, until ctx is cancelled. It
// returns ctx's error, or an error at once if a Rotation is invalid.
func (r *Rotator) Run(ctx context.Context) error {
	for _, rot := range r.Rotations {
		if rot.Every <= 0 || rot.Rotate == nil || rot.Secret == "" {
			return fmt.Errorf("rotator: rotation %q needs a positive interval and a Rotate func", rot.Secret)
		}
	}
	var wg sync.WaitGroup
	for _, rot := range r.Rotations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, rot)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// RotateNow rotates one secret immediately and reports it like a scheduled
// rotation; used by `herald secrets rotate` and tests.
func (r *Rotator) RotateNow(ctx context.Context, rot Rotation) (RotationEvent, error) {
	oldV, newV, err := rot.Rotate(ctx)
	if err != nil {
		err = fmt.Errorf("rotator: rotate %s: %w", rot.Secret, err)
		if r.OnError != nil {
			r.OnError(ctx, rot.Secret, err)
		}
		return RotationEvent{}, err
	}
	ev := RotationEvent{Secret: rot.Secret, OldVersion: oldV, NewVersion: newV, At: r.now()}
	if r.OnRotate != nil {
		r.OnRotate(ctx, ev)
	}
	return ev, nil
}

func (r *Rotator) loop(ctx context.Context, rot Rotation) {
	next := nextTick(r.now(), rot.Every)
	for {
		t := time.NewTimer(next.Sub(r.now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_, err := r.RotateNow(ctx, rot)
		switch {
		case err != nil && errors.Is(err, ErrUnavailable):
			retry := r.RetryAfter
			if retry <= 0 {
				retry = time.Minute
			}
			next = r.now().Add(min(retry, rot.Every))
		default:
			next = nextTick(r.now(), rot.Every)
		}
	}
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// nextTick is the first multiple of every strictly after now.
func nextTick(now time.Time, every time.Duration) time.Time {
	return now.Truncate(every).Add(every)
}
