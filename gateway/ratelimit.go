package gateway

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
)

// Rate limiting of the HTTP API (per API key or session, per client
// address, and failed authentications per address).
//
// Invariants:
//   - A refused request MUST change nothing: limits are checked before the
//     handler runs, and a 429 carries Retry-After.
//   - Limit keys are API key ids, principal ids and client addresses; the
//     secret part of a key MUST NOT be a map key, a log attribute or a label.
//   - Buckets live in the memory of each replica: N replicas admit N times
//     the configured rate. A shared bucket in PostgreSQL would cost a write
//     on every request, including the failed authentications and floods
//     the limiter exists to shed, and would fail along with the database;
//     configure per-replica rates as the total divided by the replicas.

// CodeRateLimited answers a request over its rate limit (429).
const CodeRateLimited herald.Code = "rate_limited"

// Class groups routes that share a budget.
type Class string

const (
	// ClassSubmit is POST /v1/actions: every submit is a policy decision
	// and a transaction.
	ClassSubmit Class = "submit"
	// ClassImport is POST /v1/contacts:import, the heaviest request.
	ClassImport Class = "import"
	// ClassRead is every GET.
	ClassRead Class = "read"
	// ClassWrite is every other change (cancel, approve, patch, …).
	ClassWrite Class = "write"
)

// Classes lists every class.
var Classes = []Class{ClassSubmit, ClassImport, ClassRead, ClassWrite}

// Limit is a token bucket: Burst requests at once, refilled at Rate per second.
type Limit struct {
	Rate  float64
	Burst int
}

func (l Limit) enabled() bool { return l.Rate > 0 && l.Burst > 0 }

// RateLimits configures the limiter. A class with no (or a zero) limit is
// not limited.
type RateLimits struct {
	// Key limits each API key (or each person's session) per class.
	Key map[Class]Limit
	// Orgs override Key for the keys of one organisation (by org id).
	Orgs map[string]map[Class]Limit
	// Address limits each client address per class, whatever the key, so
	// many keys (or none) from one address cannot multiply the budget.
	Address map[Class]Limit
	// AuthFailures is how many failed authentications an address may make
	// (burst, refilled at rate) before it is refused with exponential
	// backoff, from AuthBackoff doubling up to AuthBackoffMax.
	AuthFailures   Limit
	AuthBackoff    time.Duration
	AuthBackoffMax time.Duration
	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed: the client is the right-most address not in them. Without
	// them the client is the TCP peer (X-Forwarded-For can be forged).
	TrustedProxies []netip.Prefix
}

// DefaultRateLimits are the limits `herald serve` starts with, per replica.
// Per key: a submit is a transaction and a decision (Telegram itself takes
// about 30 messages per second per bot, so more only queues); an import may
// hold 100,000 rows; reads are cheap. Per address: four keys' worth, so an
// agency's integration with a few keys behind one NAT fits.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Key: map[Class]Limit{
			ClassSubmit: {Rate: 50, Burst: 100}, ClassImport: {Rate: 0.5, Burst: 4},
			ClassRead: {Rate: 100, Burst: 200}, ClassWrite: {Rate: 20, Burst: 40},
		},
		Address: map[Class]Limit{
			ClassSubmit: {Rate: 200, Burst: 400}, ClassImport: {Rate: 2, Burst: 8},
			ClassRead: {Rate: 400, Burst: 800}, ClassWrite: {Rate: 80, Burst: 160},
		},
		AuthFailures: Limit{Rate: 0.2, Burst: 10},
		AuthBackoff:  time.Second, AuthBackoffMax: 5 * time.Minute,
	}
}

// ParseRateLimits applies specs to base. A spec is a comma-separated list
// of "[<org id>/]<scope>.<class>=<n>/<unit>[:<burst>]" where scope is key,
// addr or auth (auth.failures), unit is s, m or h, and burst defaults to
// n. A rate of 0 turns the limit off. Examples: "key.submit=20/s:40",
// "addr.read=1000/s", "01a2…/key.import=10/m:10", "auth.failures=5/m:10".
func ParseRateLimits(base RateLimits, specs []string) (RateLimits, error) {
	for _, spec := range specs {
		for _, item := range strings.Split(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if err := base.set(item); err != nil {
				return base, fmt.Errorf("rate limit %q: %w", item, err)
			}
		}
	}
	return base, nil
}

func (rl *RateLimits) set(item string) error {
	name, value, ok := strings.Cut(item, "=")
	if !ok {
		return fmt.Errorf("want <scope>.<class>=<n>/<unit>[:<burst>]")
	}
	org, name, scoped := strings.Cut(name, "/")
	if !scoped {
		name, org = org, ""
	}
	scope, class, ok := strings.Cut(name, ".")
	if !ok {
		return fmt.Errorf("want <scope>.<class>, e.g. key.submit")
	}
	lim, err := parseLimit(value)
	if err != nil {
		return err
	}
	if scope == "auth" {
		if class != "failures" || org != "" {
			return fmt.Errorf("the auth scope has one setting, auth.failures")
		}
		rl.AuthFailures = lim
		return nil
	}
	known := false
	for _, c := range Classes {
		known = known || string(c) == class
	}
	if !known {
		return fmt.Errorf("unknown class %q (submit, import, read or write)", class)
	}
	var m *map[Class]Limit
	switch {
	case scope == "key" && org == "":
		m = &rl.Key
	case scope == "key":
		if rl.Orgs == nil {
			rl.Orgs = map[string]map[Class]Limit{}
		}
		o := rl.Orgs[org]
		m = &o
		defer func() { rl.Orgs[org] = o }()
	case scope == "addr" && org == "":
		m = &rl.Address
	default:
		return fmt.Errorf("unknown scope %q (key, <org>/key, addr or auth)", scope)
	}
	if *m == nil {
		*m = map[Class]Limit{}
	}
	(*m)[Class(class)] = lim
	return nil
}

func parseLimit(v string) (Limit, error) {
	rate, burst, hasBurst := strings.Cut(v, ":")
	n, unit, ok := strings.Cut(rate, "/")
	if !ok {
		return Limit{}, fmt.Errorf("want <n>/<s|m|h>")
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return Limit{}, fmt.Errorf("%q is not a rate", n)
	}
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
	if per == 0 {
		return Limit{}, fmt.Errorf("unit %q: want s, m or h", unit)
	}
	l := Limit{Rate: f / per, Burst: int(math.Ceil(f))}
	if hasBurst {
		b, err := strconv.Atoi(burst)
		if err != nil || b < 0 {
			return Limit{}, fmt.Errorf("burst %q is not a count", burst)
		}
		l.Burst = b
	}
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = 1
	}
	return l, nil
}

// bucket is one token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take spends one token if there is one; it reports the tokens left and,
// when refused, how long until one is available.
func (b *bucket) take(l Limit, now time.Time) (ok bool, left float64, wait time.Duration) {
	b.refill(l, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, b.tokens, 0
	}
	return false, b.tokens, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

func (b *bucket) refill(l Limit, now time.Time) {
	if b.last.IsZero() {
		b.tokens, b.last = float64(l.Burst), now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(float64(l.Burst), b.tokens+d.Seconds()*l.Rate)
		b.last = now
	}
}

// authState is an address's failed-authentication record.
type authState struct {
	bucket
	strikes      int
	blockedUntil time.Time
}

// limiter holds the buckets of one Handler.
type limiter struct {
	cfg RateLimits
	now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	auth      map[string]*authState
	lastSweep time.Time
}

// sweepEvery bounds how often idle buckets are dropped; a full bucket
// holds no information, so dropping it changes no answer.
const sweepEvery = 30 * time.Second

func newLimiter(cfg RateLimits) *limiter {
	if cfg.AuthBackoff <= 0 {
		cfg.AuthBackoff = time.Second
	}
	if cfg.AuthBackoffMax <= 0 {
		cfg.AuthBackoffMax = 5 * time.Minute
	}
	return &limiter{cfg: cfg, now: time.Now, buckets: map[string]*bucket{}, auth: map[string]*authState{}}
}

// check spends a token of key's bucket under l; it writes the RateLimit
// headers and, when refused, answers 429. It returns false if refused.
func (lm *limiter) check(c *gin.Context, policy, key string, l Limit) bool {
	if !l.enabled() {
		return true
	}
	lm.mu.Lock()
	now := lm.now()
	lm.sweepLocked(now)
	b := lm.buckets[key]
	if b == nil {
		b = &bucket{}
		lm.buckets[key] = b
	}
	ok, left, wait := b.take(l, now)
	lm.mu.Unlock()
	// IETF draft-ietf-httpapi-ratelimit-headers: q is the quota, w the
	// window in which it refills; r the requests left, t the seconds until
	// the quota is whole again.
	window := int(math.Ceil(float64(l.Burst) / l.Rate))
	full := int(math.Ceil((float64(l.Burst) - left) / l.Rate))
	h := c.Writer.Header()
	h.Add("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", policy, l.Burst, window))
	h.Add("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", policy, int(left), full))
	if !ok {
		refuse(c, wait, fmt.Sprintf("rate limit %s exceeded: at most %d requests at once, %s per second", policy, l.Burst, strconv.FormatFloat(l.Rate, 'f', -1, 64)))
	}
	return ok
}

func refuse(c *gin.Context, wait time.Duration, msg string) {
	c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	writeProblem(c, herald.Errorf(CodeRateLimited, "%s; retry after the seconds in Retry-After", msg))
}

func (lm *limiter) sweepLocked(now time.Time) {
	if now.Sub(lm.lastSweep) < sweepEvery {
		return
	}
	lm.lastSweep = now
	for k, b := range lm.buckets {
		// Idle for a sweep period: any bucket refills at least a token in
		// that time; the few that refill slower simply start full again.
		if now.Sub(b.last) > sweepEvery {
			delete(lm.buckets, k)
		}
	}
	for k, a := range lm.auth {
		if now.After(a.blockedUntil) && now.Sub(a.last) > sweepEvery && a.tokens >= float64(lm.cfg.AuthFailures.Burst)-1 {
			delete(lm.auth, k)
		}
	}
}

// authBlocked reports how long addr is still refused for failed
// authentications (0 = not refused).
func (lm *limiter) authBlocked(addr string) time.Duration {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	a := lm.auth[addr]
	if a == nil {
		return 0
	}
	return max(0, a.blockedUntil.Sub(lm.now()))
}

// authFailed records a failed authentication from addr: once the address
// has spent its failure budget, each further failure doubles its block.
func (lm *limiter) authFailed(addr string) {
	l := lm.cfg.AuthFailures
	if !l.enabled() {
		return
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	now := lm.now()
	a := lm.auth[addr]
	if a == nil {
		a = &authState{}
		lm.auth[addr] = a
	}
	if ok, left, _ := a.take(l, now); ok {
		if left >= float64(l.Burst)-1 {
			a.strikes = 0 // the budget had refilled: earlier strikes are forgiven
		}
		return
	}
	backoff := lm.cfg.AuthBackoff << min(a.strikes, 20)
	a.strikes++
	a.blockedUntil = now.Add(min(backoff, lm.cfg.AuthBackoffMax))
}

// clientAddr is the client's address: the TCP peer, or behind trusted
// proxies the right-most X-Forwarded-For address not among them.
func (lm *limiter) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !lm.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host // a forged or garbled hop: fall back to the proxy itself
		}
		if !lm.trusted(a) {
			return a.String()
		}
	}
	return host
}

func (lm *limiter) trusted(a netip.Addr) bool {
	for _, p := range lm.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// classOf is the budget a route spends.
func classOf(method, route string) Class {
	switch {
	case method == http.MethodPost && route == "/v1/actions":
		return ClassSubmit
	case method == http.MethodPost && route == "/v1"+contactsImportRoute:
		return ClassImport
	case method == http.MethodGet || method == http.MethodHead:
		return ClassRead
	}
	return ClassWrite
}

// unlimitedRoutes are not rate limited: probes and metrics scrapes come
// from the platform, and Telegram's webhook calls share Telegram's
// addresses and authenticate with the account's secret.
var unlimitedRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true, "/v1/telegram/webhook/:account": true,
}

// addressLimits refuses requests from an address blocked for failed
// authentications or over its class budget, and records failed
// authentications (401 answers) after the handler ran.
func (lm *limiter) addressLimits(c *gin.Context) {
	if unlimitedRoutes[c.FullPath()] {
		c.Next()
		return
	}
	addr := lm.clientAddr(c.Request)
	if wait := lm.authBlocked(addr); wait > 0 {
		refuse(c, wait, "too many failed authentications from this address")
		return
	}
	class := classOf(c.Request.Method, c.FullPath())
	if !lm.check(c, "addr-"+string(class), "a|"+string(class)+"|"+addr, lm.cfg.Address[class]) {
		return
	}
	c.Next()
	if c.Writer.Status() == http.StatusUnauthorized {
		lm.authFailed(addr)
	}
}

// keyLimits spends the authenticated principal's budget: per API key, or
// per person for a session; an organisation's own limits win.
func (lm *limiter) keyLimits(c *gin.Context) {
	p := principal(c)
	class := classOf(c.Request.Method, c.FullPath())
	l := lm.cfg.Key[class]
	if o, ok := lm.cfg.Orgs[p.Org][class]; ok {
		l = o
	}
	id := p.KeyID
	if id == "" {
		id = "p:" + p.Org + "/" + p.ID
	}
	if !lm.check(c, "key-"+string(class), "k|"+string(class)+"|"+id, l) {
		return
	}
	c.Next()
}
