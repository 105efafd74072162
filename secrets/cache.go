package secrets

import (
	"context"
	"sync"
	"time"
)

// Cache bounds. A cached secret is a copy of a value in memory; the bounds
// keep that copy short-lived so that a rotated or revoked secret stops being
// used quickly and no value sits in the heap for the process lifetime.
const (
	// DefaultCacheTTL is used when Cached is given ttl <= 0: long enough to
	// spare the store one read per message in a burst, short enough that an
	// operator's new bot token is picked up within seconds.
	DefaultCacheTTL = 10 * time.Second
	// MaxCacheTTL caps any configured ttl.
	MaxCacheTTL = 5 * time.Minute
)

// CachedStore is a Store that keeps the latest version of each path for a
// bounded time. See Cached.
type CachedStore struct {
	inner Store
	ttl   time.Duration

	mu      sync.Mutex
	entries map[string]*cacheEntry
	// gen counts invalidations per path, so that a Get that raced with a
	// Put does not cache the version the Put just replaced.
	gen map[string]uint64
}

type cacheEntry struct {
	secret Secret
	timer  *time.Timer
}

// Cached wraps store with a short per-use cache of Get results.
//
// An entry is dropped when its ttl (clamped to (0, MaxCacheTTL]) elapses —
// by a timer, so it does not linger until the next access —, when a Put
// through this wrapper writes the path, when Versions reports a version other
// than the cached one, and on Invalidate (call it when a credential is
// rejected, e.g. a 401 from Telegram, to force an immediate re-read).
//
// Errors are never cached and a cached value is never served after the store
// failed to confirm it: an unavailable store yields ErrUnavailable once the
// entry expired, not a stale value. GetVersion is not cached: versions are
// immutable, but a read of an old version is rare.
func Cached(store Store, ttl time.Duration) *CachedStore {
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if ttl > MaxCacheTTL {
		ttl = MaxCacheTTL
	}
	return &CachedStore{inner: store, ttl: ttl, entries: map[string]*cacheEntry{}, gen: map[string]uint64{}}
}

// Get returns the cached latest version of path or reads it from the store.
func (c *CachedStore) Get(ctx context.Context, path string) (Secret, error) {
	c.mu.Lock()
	if e, ok := c.entries[path]; ok {
		s := e.secret.Clone()
		c.mu.Unlock()
		return s, nil
	}
	gen := c.gen[path]
	c.mu.Unlock()

	s, err := c.inner.Get(ctx, path)
	if err != nil {
		return Secret{}, err
	}
	c.store(path, gen, s)
	return s.Clone(), nil
}

// GetVersion reads through to the store.
func (c *CachedStore) GetVersion(ctx context.Context, path string, version int) (Secret, error) {
	return c.inner.GetVersion(ctx, path, version)
}

// Put writes through and drops the cached entry for path.
func (c *CachedStore) Put(ctx context.Context, path string, data map[string]string, cas int) (Secret, error) {
	c.Invalidate(path)
	s, err := c.inner.Put(ctx, path, data, cas)
	// Invalidate again: a concurrent Get may have cached the old version
	// between the first Invalidate and the write.
	c.Invalidate(path)
	return s, err
}

// Versions reads through and drops the cached entry if the version moved.
func (c *CachedStore) Versions(ctx context.Context, path string) (int, error) {
	v, err := c.inner.Versions(ctx, path)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if e, ok := c.entries[path]; ok && e.secret.Version != v {
		c.gen[path]++
		c.dropLocked(path, e)
	}
	c.mu.Unlock()
	return v, nil
}

// Invalidate drops the cached entry for path, if any.
func (c *CachedStore) Invalidate(path string) {
	c.mu.Lock()
	c.gen[path]++
	if e, ok := c.entries[path]; ok {
		c.dropLocked(path, e)
	}
	c.mu.Unlock()
}

// TTL is the effective entry lifetime after clamping.
func (c *CachedStore) TTL() time.Duration { return c.ttl }

// Len reports how many entries are cached; for tests and metrics.
func (c *CachedStore) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *CachedStore) store(path string, gen uint64, s Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[path] != gen {
		return // invalidated while we were reading
	}
	if old, ok := c.entries[path]; ok {
		if old.secret.Version >= s.Version {
			return // same or newer version cached meanwhile
		}
		c.dropLocked(path, old)
	}
	e := &cacheEntry{secret: s.Clone()}
	e.timer = time.AfterFunc(c.ttl, func() {
		c.mu.Lock()
		if cur, ok := c.entries[path]; ok && cur == e {
			c.dropLocked(path, e)
		}
		c.mu.Unlock()
	})
	c.entries[path] = e
}

func (c *CachedStore) dropLocked(path string, e *cacheEntry) {
	e.timer.Stop()
	clear(e.secret.Data)
	delete(c.entries, path)
}

var _ Store = (*CachedStore)(nil)
