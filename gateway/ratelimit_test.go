package gateway_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/store/storetest"
)

// withLimits serves e's Herald again, with rate limits.
func withLimits(e *env, rl gateway.RateLimits) {
	e.t.Helper()
	s := e.server
	limited := &gateway.Server{Pipeline: s.Pipeline, Store: s.Store, Metrics: s.Metrics, Log: s.Log, Secrets: s.Secrets,
		Ledger: s.Ledger, Sessions: s.Sessions, RateLimits: &rl}
	e.srv.Close()
	e.server, e.srv = limited, httptest.NewServer(limited.Handler())
	e.t.Cleanup(e.srv.Close)
}

var (
	rateLimitRe       = regexp.MustCompile(`^"([a-z-]+)";r=(\d+);t=(\d+)$`)
	rateLimitPolicyRe = regexp.MustCompile(`^"([a-z-]+)";q=(\d+);w=(\d+)$`)
)

// checkLimited asserts a 429 is a complete rate-limit answer.
func checkLimited(t *testing.T, r response, policy string) {
	t.Helper()
	checkProblem(t, r, http.StatusTooManyRequests, "rate_limited", "")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("429 Retry-After = %q", r.header.Get("Retry-After"))
	}
	if policy == "" {
		return
	}
	found := false
	for _, v := range r.header.Values("RateLimit") {
		if m := rateLimitRe.FindStringSubmatch(v); m != nil && m[1] == policy {
			found = m[2] == "0"
		}
	}
	if !found {
		t.Fatalf("429 RateLimit = %q; want %q with r=0", r.header.Values("RateLimit"), policy)
	}
}

// TestRateLimitPerKeyUnder200Connections: 200 connections read at once with
// one key; the key's bucket admits its burst (plus what refills meanwhile)
// and refuses the rest with 429, Retry-After and the RateLimit headers,
// while another organisation's key keeps its own budget. On both stores.
func TestRateLimitPerKeyUnder200Connections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherKey := e.newKey(other.ID, "other-op", herald.RoleOperator)
		const burst, rate = 40, 5.0
		withLimits(e, gateway.RateLimits{Key: map[gateway.Class]gateway.Limit{gateway.ClassRead: {Rate: rate, Burst: burst}}})
		op := e.keys[herald.RoleOperator]

		tr := &http.Transport{MaxIdleConnsPerHost: 200}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		var (
			mu       sync.Mutex
			statuses = map[int]int{}
			wg       sync.WaitGroup
			start    = make(chan struct{})
		)
		began := time.Now()
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, _ := http.NewRequest("GET", e.srv.URL+"/v1/actions", nil)
				req.Header.Set("Authorization", "Bearer "+op)
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if res.StatusCode == 200 {
					m := rateLimitPolicyRe.FindStringSubmatch(res.Header.Get("RateLimit-Policy"))
					if m == nil || m[1] != "key-read" || m[2] != strconv.Itoa(burst) || m[3] != "8" {
						t.Errorf("RateLimit-Policy = %q", res.Header.Get("RateLimit-Policy"))
					}
				}
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		elapsed := time.Since(began)
		most := burst + int(math.Ceil(rate*elapsed.Seconds())) + 1
		if statuses[200] < burst || statuses[200] > most || statuses[200]+statuses[429] != 200 {
			t.Fatalf("200 connections in %s: %v; want %d to %d answered 200 and the rest 429", elapsed, statuses, burst, most)
		}
		// The bucket is empty: a token refills every 1/rate s, so on a slow
		// machine one may have come back since the burst; of a few requests
		// back to back, one is refused, and it carries the full answer.
		limited := e.do("GET", "/v1/actions", op, nil)
		for i := 0; i < 3 && limited.status == 200; i++ {
			limited = e.do("GET", "/v1/actions", op, nil)
		}
		checkLimited(t, limited, "key-read")
		if r := e.do("GET", "/v1/actions", otherKey, nil); r.status != 200 {
			t.Fatalf("another organisation's key = %d %s; want its own budget", r.status, r.raw)
		}
		// The bucket refills: one token after 1/rate seconds.
		time.Sleep(time.Duration(float64(time.Second)/rate) + 50*time.Millisecond)
		if r := e.do("GET", "/v1/actions", op, nil); r.status != 200 {
			t.Fatalf("after a refill = %d %s", r.status, r.raw)
		}
	})
}

// TestRateLimitPerAddressAndClassChangesNothing: submits of two keys from
// one address share the address's submit budget; refused submits store
// nothing, and other classes (reads) have their own budget.
func TestRateLimitPerAddressAndClassChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		op1 := e.keys[herald.RoleOperator]
		op2 := e.newKey(e.org.ID, "op-2", herald.RoleOperator)
		withLimits(e, gateway.RateLimits{Address: map[gateway.Class]gateway.Limit{gateway.ClassSubmit: {Rate: 0.01, Burst: 6}}})
		before := e.counts()
		accepted := 0
		for i := 0; i < 10; i++ {
			key := op1
			if i%2 == 1 {
				key = op2
			}
			r := e.do("POST", "/v1/actions", key, e.sendReq(fmt.Sprint(-1000-i), "transactional", "hi"))
			switch r.status {
			case http.StatusCreated:
				accepted++
			case http.StatusTooManyRequests:
				checkLimited(t, r, "addr-submit")
			default:
				t.Fatalf("submit %d = %d %s", i, r.status, r.raw)
			}
		}
		if accepted != 6 {
			t.Fatalf("%d submits accepted from one address; want the address budget, 6", accepted)
		}
		if after := e.counts(); after.actions != before.actions+6 || after.jobs != before.jobs+6 {
			t.Fatalf("refused submits changed the database: %+v → %+v", before, after)
		}
		if r := e.do("GET", "/v1/actions", op1, nil); r.status != 200 {
			t.Fatalf("a read after the submit budget is spent = %d", r.status)
		}
	})
}

// TestRateLimitPerOrganisation: an organisation's own limit replaces the
// default for its keys only.
func TestRateLimitPerOrganisation(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	small, err := e.s.CreateOrg(context.Background(), "Small", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	smallKey := e.newKey(small.ID, "small-admin", herald.RoleAdmin)
	rl, err := gateway.ParseRateLimits(gateway.RateLimits{}, []string{"key.read=100/m:20", small.ID + "/key.read=3/h:3"})
	if err != nil {
		t.Fatal(err)
	}
	withLimits(e, rl)
	for i := 0; i < 3; i++ {
		if r := e.do("GET", "/v1/me", smallKey, nil); r.status != 200 {
			t.Fatalf("read %d of the small organisation = %d", i, r.status)
		}
	}
	checkLimited(t, e.do("GET", "/v1/me", smallKey, nil), "key-read")
	for i := 0; i < 10; i++ {
		if r := e.do("GET", "/v1/me", e.keys[herald.RoleAdmin], nil); r.status != 200 {
			t.Fatalf("read %d of the default organisation = %d", i, r.status)
		}
	}
}

// TestFailedAuthenticationBackoff: an address that keeps presenting bad keys
// is refused (429) after its failure budget, with a backoff that doubles;
// while refused, even a good key from that address waits; another address
// (behind a trusted proxy) is not affected; after the backoff the good key
// works again.
func TestFailedAuthenticationBackoff(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	withLimits(e, gateway.RateLimits{AuthFailures: gateway.Limit{Rate: 0.001, Burst: 5},
		AuthBackoff: 3 * time.Second, AuthBackoffMax: 30 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	attacker, neighbour := []string{"X-Forwarded-For", "203.0.113.7"}, []string{"X-Forwarded-For", "198.51.100.9"}
	op := e.keys[herald.RoleOperator]
	for i := 0; i < 5; i++ {
		if r := e.do("GET", "/v1/actions", "hk_bad_"+strconv.Itoa(i), nil, attacker...); r.status != 401 {
			t.Fatalf("bad key %d = %d; want 401 within the failure budget", i, r.status)
		}
	}
	// The sixth failure finds the budget spent: the address is blocked 3 s.
	if r := e.do("GET", "/v1/actions", "hk_bad_6", nil, attacker...); r.status != 401 {
		t.Fatalf("sixth bad key = %d; want 401 (it starts the backoff)", r.status)
	}
	r := e.do("GET", "/v1/actions", op, nil, attacker...)
	checkLimited(t, r, "")
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 1 || s > 3 {
		t.Fatalf("first backoff Retry-After = %q; want at most 3", r.header.Get("Retry-After"))
	}
	if r := e.do("GET", "/v1/actions", op, nil, neighbour...); r.status != 200 {
		t.Fatalf("another address = %d; want unaffected", r.status)
	}
	if r := e.do("GET", "/v1/actions", "hk_bad_x", nil, neighbour...); r.status != 401 {
		t.Fatalf("another address's first failure = %d; want 401", r.status)
	}
	time.Sleep(3100 * time.Millisecond)
	// A further failure doubles the block.
	if r := e.do("GET", "/v1/actions", "hk_bad_7", nil, attacker...); r.status != 401 {
		t.Fatalf("bad key after the first block = %d", r.status)
	}
	r = e.do("GET", "/v1/actions", "hk_bad_8", nil, attacker...)
	checkLimited(t, r, "")
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 4 || s > 6 {
		t.Fatalf("second backoff Retry-After = %q; want the block doubled to 6 s", r.header.Get("Retry-After"))
	}
	time.Sleep(6100 * time.Millisecond)
	if r := e.do("GET", "/v1/actions", op, nil, attacker...); r.status != 200 {
		t.Fatalf("good key after the backoff = %d %s", r.status, r.raw)
	}
}

func TestParseRateLimits(t *testing.T) {
	rl, err := gateway.ParseRateLimits(gateway.DefaultRateLimits(), []string{"key.submit=20/s:40, addr.read=600/m", "auth.failures=5/m:10,key.import=0/s"})
	if err != nil {
		t.Fatal(err)
	}
	if l := rl.Key[gateway.ClassSubmit]; l.Rate != 20 || l.Burst != 40 {
		t.Errorf("key.submit = %+v", l)
	}
	if l := rl.Address[gateway.ClassRead]; l.Rate != 10 || l.Burst != 600 {
		t.Errorf("addr.read = %+v", l)
	}
	if l := rl.AuthFailures; math.Abs(l.Rate-5.0/60) > 1e-9 || l.Burst != 10 {
		t.Errorf("auth.failures = %+v", l)
	}
	if l := rl.Key[gateway.ClassImport]; l.Rate != 0 {
		t.Errorf("key.import=0/s should turn the limit off: %+v", l)
	}
	for _, bad := range []string{"key.submit", "key.spam=1/s", "user.read=1/s", "key.read=1/d", "key.read=x/s", "key.read=1/s:-1", "auth.logins=1/s", "o/addr.read=1/s"} {
		if _, err := gateway.ParseRateLimits(gateway.RateLimits{}, []string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
