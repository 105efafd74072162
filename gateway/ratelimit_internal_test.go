package gateway

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkLimiterTake is the per-request cost of the limiter's bucket
// lookup and token arithmetic (two per authenticated request: address and
// key), with 10,000 distinct keys live, from parallel goroutines.
func BenchmarkLimiterTake(b *testing.B) {
	lm := newLimiter(RateLimits{})
	l := Limit{Rate: 1e9, Burst: 1 << 30}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "k|read|" + strconv.Itoa(i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			lm.mu.Lock()
			now := time.Now()
			lm.sweepLocked(now)
			bk := lm.buckets[keys[i%len(keys)]]
			if bk == nil {
				bk = &bucket{}
				lm.buckets[keys[i%len(keys)]] = bk
			}
			bk.take(l, now)
			lm.mu.Unlock()
			i++
		}
	})
}
