package secrets_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/secrets"
)

func TestRotatorRunsEachClassAndReportsVersions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	versions := map[string]int{}
	rotate := func(name string) func(context.Context) (int, int, error) {
		return func(context.Context) (int, int, error) {
			mu.Lock()
			defer mu.Unlock()
			versions[name]++
			return versions[name] - 1, versions[name], nil
		}
	}
	events := make(chan secrets.RotationEvent, 64)
	r := &secrets.Rotator{
		Rotations: []secrets.Rotation{
			{Secret: "transit/herald-encryption", Every: 20 * time.Millisecond, Rotate: rotate("enc")},
			{Secret: "transit/herald-checkpoints", Every: 30 * time.Millisecond, Rotate: rotate("sig")},
			{Secret: "pepper/acme", Every: 40 * time.Millisecond, Rotate: rotate("pepper")},
		},
		OnRotate: func(_ context.Context, ev secrets.RotationEvent) { events <- ev },
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	seen := map[string]secrets.RotationEvent{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 3 || seen["transit/herald-encryption"].NewVersion < 2 {
		select {
		case ev := <-events:
			if ev.NewVersion != ev.OldVersion+1 || ev.At.IsZero() {
				t.Fatalf("event %+v", ev)
			}
			seen[ev.Secret] = ev
		case <-timeout:
			t.Fatalf("rotations seen: %+v", seen)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

func TestRotatorReportsErrorsAndRetries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu    sync.Mutex
		calls int
	)
	errs := make(chan error, 16)
	ok := make(chan secrets.RotationEvent, 1)
	r := &secrets.Rotator{
		Rotations: []secrets.Rotation{{
			Secret: "pepper/acme", Every: time.Hour, // far away: only the retry can fire
			Rotate: func(context.Context) (int, int, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 1 {
					return 0, 0, secrets.ErrUnavailable
				}
				return 1, 2, nil
			},
		}},
		RetryAfter: 20 * time.Millisecond,
		OnRotate:   func(_ context.Context, ev secrets.RotationEvent) { ok <- ev },
		OnError:    func(_ context.Context, _ string, err error) { errs <- err },
	}
	// Start 30ms before a tick of the hourly schedule.
	start := time.Now()
	base := start.Truncate(time.Hour).Add(time.Hour - 30*time.Millisecond)
	r.Now = func() time.Time { return base.Add(time.Since(start)) }
	go r.Run(ctx)
	select {
	case err := <-errs:
		if !errors.Is(err, secrets.ErrUnavailable) || !strings.Contains(err.Error(), "pepper/acme") {
			t.Fatalf("OnError got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
	select {
	case ev := <-ok:
		if ev.OldVersion != 1 || ev.NewVersion != 2 {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rotation was not retried after the store came back")
	}
}

func TestRotatorRejectsInvalidRotation(t *testing.T) {
	r := &secrets.Rotator{Rotations: []secrets.Rotation{{Secret: "x"}}}
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("Run accepted a rotation without interval")
	}
}
