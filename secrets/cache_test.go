package secrets_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/local"
)

// countingStore counts reads that reach the real store.
type countingStore struct {
	secrets.Store
	gets atomic.Int64
	fail atomic.Bool
}

func (c *countingStore) Get(ctx context.Context, path string) (secrets.Secret, error) {
	if c.fail.Load() {
		return secrets.Secret{}, secrets.ErrUnavailable
	}
	c.gets.Add(1)
	return c.Store.Get(ctx, path)
}

func newLocal(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCachedServesWithinTTL(t *testing.T) {
	ctx := context.Background()
	inner := &countingStore{Store: newLocal(t)}
	c := secrets.Cached(inner, time.Minute)
	if _, err := c.Put(ctx, "p", map[string]string{"k": "v1"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s, err := c.Get(ctx, "p")
		if err != nil || s.Data["k"] != "v1" {
			t.Fatalf("Get = %v, %v", s, err)
		}
		s.Data["k"] = "caller mutation"
	}
	if n := inner.gets.Load(); n != 1 {
		t.Fatalf("%d reads reached the store, want 1", n)
	}
}

func TestCachedInvalidatesOnVersionChange(t *testing.T) {
	ctx := context.Background()
	shared := newLocal(t)
	c := secrets.Cached(shared, time.Minute)
	if _, err := shared.Put(ctx, "p", map[string]string{"k": "v1"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(ctx, "p"); s.Data["k"] != "v1" {
		t.Fatal("first read")
	}

	// Written through the cache: the next Get sees it at once.
	if _, err := c.Put(ctx, "p", map[string]string{"k": "v2"}, 1); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(ctx, "p"); s.Version != 2 || s.Data["k"] != "v2" {
		t.Fatalf("after Put through the cache: %v", s)
	}

	// Written by someone else (the operator's `herald secrets put`): a
	// Versions check notices the change and drops the entry.
	if _, err := shared.Put(ctx, "p", map[string]string{"k": "v3"}, 2); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Get(ctx, "p"); s.Version != 2 {
		t.Fatalf("within TTL the cached version should be served, got %v", s)
	}
	if v, err := c.Versions(ctx, "p"); err != nil || v != 3 {
		t.Fatalf("Versions = %d, %v", v, err)
	}
	if s, _ := c.Get(ctx, "p"); s.Version != 3 || s.Data["k"] != "v3" {
		t.Fatalf("after version change: %v", s)
	}

	// A rejected credential forces a re-read.
	if _, err := shared.Put(ctx, "p", map[string]string{"k": "v4"}, 3); err != nil {
		t.Fatal(err)
	}
	c.Invalidate("p")
	if s, _ := c.Get(ctx, "p"); s.Version != 4 {
		t.Fatalf("after Invalidate: %v", s)
	}
}

func TestCachedExpiresAndNeverServesStale(t *testing.T) {
	ctx := context.Background()
	inner := &countingStore{Store: newLocal(t)}
	c := secrets.Cached(inner, 50*time.Millisecond)
	if _, err := c.Put(ctx, "p", map[string]string{"k": "v"}, secrets.NoCAS); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
	// The entry goes away by itself: no value lingers until the next use.
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("cache entry outlived its TTL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	inner.fail.Store(true)
	if _, err := c.Get(ctx, "p"); !errors.Is(err, secrets.ErrUnavailable) {
		t.Fatalf("Get with store down after expiry = %v, want ErrUnavailable (no stale value)", err)
	}
}

func TestCachedClampsTTL(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, secrets.DefaultCacheTTL},
		{-time.Second, secrets.DefaultCacheTTL},
		{time.Second, time.Second},
		{100 * time.Hour, secrets.MaxCacheTTL},
	} {
		if got := secrets.Cached(newLocal(t), tc.in).TTL(); got != tc.want {
			t.Errorf("Cached(ttl=%v).TTL() = %v, want %v", tc.in, got, tc.want)
		}
	}
}
