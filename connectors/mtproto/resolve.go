package mtproto

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/gotd/td/tg"

	"github.com/heraldhq/herald/connectors"
)

// methodResolveUsername is the TL name used for scopes and errors.
const methodResolveUsername = "contacts.resolveUsername"

// resolver turns @usernames into input peers for one account: access hashes
// are per account, so is the cache. Resolutions are cached (LRU with TTL),
// rate limited, and concurrent resolutions of one name share one call.
type resolver struct {
	cache   *expirable.LRU[string, tg.InputPeerClass]
	limit   *rate.Limiter
	maxWait time.Duration
	group   singleflight.Group
}

func newResolver(cfg Config) *resolver {
	return &resolver{
		cache:   expirable.NewLRU[string, tg.InputPeerClass](cfg.ResolveCacheSize, nil, cfg.ResolveTTL),
		limit:   rate.NewLimiter(rate.Limit(cfg.ResolvePerMinute/60), cfg.ResolveBurst),
		maxWait: cfg.ResolveMaxWait,
	}
}

// resolve returns the peer of name (lower case, without "@"). Its errors are
// unclassified RPC or transport errors, or a RetryableError when the local
// rate limit would make the caller wait longer than maxWait. Resolving is
// read-only, so a failure never needs the unknown class.
func (r *resolver) resolve(ctx context.Context, api *tg.Client, name string) (tg.InputPeerClass, error) {
	if p, ok := r.cache.Get(name); ok {
		return p, nil
	}
	v, err, _ := r.group.Do(name, func() (any, error) {
		if p, ok := r.cache.Get(name); ok {
			return p, nil
		}
		if err := r.wait(ctx); err != nil {
			return nil, err
		}
		res, err := api.ContactsResolveUsername(ctx, name)
		if err != nil {
			return nil, err
		}
		p, ok := inputPeerOf(res.Peer, res.Users, res.Chats)
		if !ok {
			return nil, fmt.Errorf("%s: answer for @%s has no access hash", methodResolveUsername, name)
		}
		r.cache.Add(name, p)
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(tg.InputPeerClass), nil
}

// wait takes a resolve token, waiting at most maxWait.
func (r *resolver) wait(ctx context.Context) error {
	res := r.limit.Reserve()
	delay := res.Delay()
	if delay > r.maxWait || !fitsDeadline(ctx, delay) {
		res.Cancel()
		return &connectors.RetryableError{
			After: delay, Scope: MethodScope(methodResolveUsername),
			Err: fmt.Errorf("%s: local rate limit for username resolution", methodResolveUsername),
		}
	}
	if err := sleepCtx(ctx, delay); err != nil {
		res.Cancel()
		return err
	}
	return nil
}
