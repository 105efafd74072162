package access

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
)

// ModelConf is the Casbin model (model.conf): RBAC with domains, one domain
// per organisation.
//
//go:embed model.conf
var ModelConf string

// Names in the Casbin policy. Subjects and roles live in separate
// namespaces: Casbin's g() holds for any name linked to itself, so a
// principal called "admin" must never be confused with the role.
const (
	subjectPrefix = "principal:"
	rolePrefix    = "role:"
	// AllOrgs is the domain of the default policy: its permissions apply in
	// every organisation, but only through a binding made in that
	// organisation (g is always checked in the caller's own domain).
	AllOrgs = "*"
	// ScopeAll is the scope of an unrestricted binding.
	ScopeAll = "*"
	// NotifyChannel is the PostgreSQL channel the store notifies (payload:
	// the org id) in the transaction that changes a binding.
	NotifyChannel = "herald_access"
	// DefaultPollInterval is how often Watch compares the bindings version
	// with the loaded one. Notifications make changes visible within
	// milliseconds; the poll bounds staleness when a notification is lost
	// (the listener reconnecting, SQLite, a proxy dropping LISTEN) to a few
	// seconds at the cost of one tiny query per replica per interval.
	DefaultPollInterval = 5 * time.Second
)

// Binding grants a principal a role in one organisation. Scope restricts it:
// "*" (every resource the role reaches) or one item, "accounts/<id>", which
// replaces the role's permissions on that resource type with the same
// permissions on that item only, and leaves its other permissions as they are.
type Binding struct {
	Org       string    `json:"org"`
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// RoleName is the binding's role as the policy names it: "operator", or
// "operator@accounts/<id>" for a scoped binding.
func (b Binding) RoleName() string { return ScopedRole(b.Role, b.Scope) }

// ScopedRole names role restricted to scope.
func ScopedRole(role, scope string) string {
	if scope == "" || scope == ScopeAll {
		return role
	}
	return role + "@" + scope
}

// NormalizeScope returns scope with the empty string meaning ScopeAll.
func NormalizeScope(scope string) string {
	if scope == "" {
		return ScopeAll
	}
	return scope
}

// maxPrincipalLen bounds a principal id (API keys, later Telegram identities).
const maxPrincipalLen = 200

// ValidateBinding checks a binding's principal, role and scope (after
// NormalizeScope) and names every invalid field. It does not check that the
// principal exists: that needs the store.
func ValidateBinding(principal, role, scope string) []herald.FieldError {
	var fe []herald.FieldError
	switch {
	case principal == "":
		fe = append(fe, herald.FieldError{Field: "principal", Message: "is required"})
	case len(principal) > maxPrincipalLen || strings.ContainsFunc(principal, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		fe = append(fe, herald.FieldError{Field: "principal", Message: fmt.Sprintf("must be at most %d printable characters", maxPrincipalLen)})
	}
	if !herald.ValidRole(role) {
		fe = append(fe, herald.FieldError{Field: "role", Message: fmt.Sprintf("unknown role %q; roles are %s", role, strings.Join(herald.Roles, ", "))})
		return fe
	}
	if scope == ScopeAll {
		return fe
	}
	typ, id, ok := strings.Cut(scope, "/")
	switch {
	case !ok || !slices.Contains(Resources, typ) || id == "" || strings.ContainsAny(id, "/*@") || len(scope) > 200 ||
		!utf8.ValidString(id) || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }):
		fe = append(fe, herald.FieldError{Field: "scope", Message: `must be "*" or one resource, e.g. "accounts/<id>"`})
	case !slices.ContainsFunc(roleMatrix[role], func(p Permission) bool { return p.Resource == typ }):
		fe = append(fe, herald.FieldError{Field: "scope", Message: fmt.Sprintf("role %q has no permission on %s: the scope would grant nothing", role, typ)})
	}
	return fe
}

// ScopedPermissions returns what role grants under scope: the built-in
// permissions, with those on the scope's resource type narrowed to the scope.
func ScopedPermissions(role, scope string) []Permission {
	perms := RolePermissions(role)
	if scope == "" || scope == ScopeAll {
		return perms
	}
	typ, _, _ := strings.Cut(scope, "/")
	for i, p := range perms {
		if p.Resource == typ {
			perms[i].Resource = scope
		}
	}
	return perms
}

// ResourceMatch reports whether a request's resource falls under a
// permission's pattern: "*" matches everything, a type ("accounts") matches
// the type and each of its items ("accounts/<id>"), "accounts/*" likewise,
// and an item ("accounts/<id>") matches only itself, not the collection.
func ResourceMatch(resource, pattern string) bool {
	if pattern == "*" || resource == pattern {
		return true
	}
	pattern = strings.TrimSuffix(pattern, "/*")
	if resource == pattern {
		return true
	}
	return len(resource) > len(pattern) && resource[len(pattern)] == '/' && strings.HasPrefix(resource, pattern)
}

func resourceMatchFunc(args ...any) (any, error) {
	if len(args) != 2 {
		return false, fmt.Errorf("resourceMatch: want 2 arguments, got %d", len(args))
	}
	r, ok1 := args[0].(string)
	p, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return false, errors.New("resourceMatch: arguments must be strings")
	}
	return ResourceMatch(r, p), nil
}

// Policy returns the Casbin rules for bindings: the default policy (every
// role's built-in permissions, in domain "*"), the permissions of each
// scoped role that some binding uses (also domain-independent: a scoped
// role is defined by its role and scope alone), and one g rule per binding
// in its organisation's domain. Each rule starts with its type, "p" or "g".
func Policy(bindings []Binding) [][]string {
	var rules [][]string
	addRole := func(role, scope string) {
		for _, p := range ScopedPermissions(role, scope) {
			rules = append(rules, []string{"p", rolePrefix + ScopedRole(role, scope), AllOrgs, p.Resource, p.Verb})
		}
	}
	for _, role := range herald.Roles {
		addRole(role, ScopeAll)
	}
	scoped := map[string]bool{}
	for _, b := range bindings {
		if name := b.RoleName(); b.Scope != "" && b.Scope != ScopeAll && !scoped[name] {
			scoped[name] = true
			addRole(b.Role, b.Scope)
		}
	}
	for _, b := range bindings {
		rules = append(rules, []string{"g", subjectPrefix + b.Principal, rolePrefix + b.RoleName(), b.Org})
	}
	return rules
}

// BindingLister lists every organisation's role bindings.
type BindingLister interface {
	AllBindings(ctx context.Context) ([]Binding, error)
}

// Source is what the Enforcer reads: the bindings, and a counter that
// changes whenever they do (store.Store implements both).
type Source interface {
	BindingLister
	// BindingsVersion is cheap: the Enforcer polls it.
	BindingsVersion(ctx context.Context) (int64, error)
}

// ErrReadOnly is returned by the Adapter's write methods: bindings change
// through the store (store.GrantRole, store.RevokeRole), which records each
// change in the ledger, never through Casbin's auto-save.
var ErrReadOnly = errors.New("access: the Casbin adapter is read-only; grant and revoke through the store")

// Adapter is a Casbin persist.Adapter over a BindingLister: LoadPolicy
// loads the default policy and the stored bindings (see Policy).
type Adapter struct {
	Source BindingLister
}

var (
	_ persist.Adapter        = (*Adapter)(nil)
	_ persist.ContextAdapter = (*Adapter)(nil)
)

// LoadPolicy loads every rule into m.
func (a *Adapter) LoadPolicy(m model.Model) error {
	return a.LoadPolicyCtx(context.Background(), m)
}

// LoadPolicyCtx loads every rule into m.
func (a *Adapter) LoadPolicyCtx(ctx context.Context, m model.Model) error {
	bs, err := a.Source.AllBindings(ctx)
	if err != nil {
		return fmt.Errorf("access: load bindings: %w", err)
	}
	for _, r := range Policy(bs) {
		if err := persist.LoadPolicyArray(r, m); err != nil {
			return fmt.Errorf("access: load rule %v: %w", r, err)
		}
	}
	return nil
}

// SavePolicy refuses: see ErrReadOnly.
func (a *Adapter) SavePolicy(model.Model) error { return ErrReadOnly }

// AddPolicy refuses: see ErrReadOnly.
func (a *Adapter) AddPolicy(string, string, []string) error { return ErrReadOnly }

// RemovePolicy refuses: see ErrReadOnly.
func (a *Adapter) RemovePolicy(string, string, []string) error { return ErrReadOnly }

// RemoveFilteredPolicy refuses: see ErrReadOnly.
func (a *Adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return ErrReadOnly }

// SavePolicyCtx refuses: see ErrReadOnly.
func (a *Adapter) SavePolicyCtx(context.Context, model.Model) error { return ErrReadOnly }

// AddPolicyCtx refuses: see ErrReadOnly.
func (a *Adapter) AddPolicyCtx(context.Context, string, string, []string) error { return ErrReadOnly }

// RemovePolicyCtx refuses: see ErrReadOnly.
func (a *Adapter) RemovePolicyCtx(context.Context, string, string, []string) error {
	return ErrReadOnly
}

// RemoveFilteredPolicyCtx refuses: see ErrReadOnly.
func (a *Adapter) RemoveFilteredPolicyCtx(context.Context, string, string, int, ...string) error {
	return ErrReadOnly
}

type staticBindings []Binding

func (s staticBindings) AllBindings(context.Context) ([]Binding, error) { return s, nil }

// NewCasbin builds a Casbin enforcer over the model and the rules of bindings.
func NewCasbin(bindings []Binding) (*casbin.Enforcer, error) {
	m, err := model.NewModelFromString(ModelConf)
	if err != nil {
		return nil, fmt.Errorf("access: parse model: %w", err)
	}
	ce, err := casbin.NewEnforcer(m, &Adapter{Source: staticBindings(bindings)})
	if err != nil {
		return nil, fmt.Errorf("access: build enforcer: %w", err)
	}
	ce.EnableAutoSave(false)
	ce.AddFunction("resourceMatch", resourceMatchFunc)
	return ce, nil
}

// Enforcer authorizes requests by the Casbin model, the default policy and
// the stored role bindings. It implements the gateway's Authorizer.
//
// Concurrency and freshness contract:
//   - Authorize MUST NOT touch the database. It reads an immutable snapshot
//     through an atomic pointer, so requests never wait for a reload.
//   - A snapshot holds one Casbin enforcer per organisation, built from that
//     organisation's bindings only: a request can reach no other tenant's
//     rules, and its cost does not grow with the number of tenants.
//   - Each organisation's enforcer has a bounded decision cache. A reload
//     never edits a live enforcer: an organisation whose bindings changed
//     gets a new enforcer (and an empty cache); unchanged ones are carried
//     over with their caches warm. So neither a decision cache (Casbin's
//     SyncedCachedEnforcer keeps "allow" after a role is removed) nor the
//     memoised g() closure inside Casbin's compiled matcher can serve a
//     revoked role: both die with the replaced enforcer.
//   - A change made through this process MUST be followed by Reload before
//     the change is reported to the caller; it then holds at once here.
//   - Other processes see it when Watch's notification arrives, and at the
//     latest after one PollInterval.
type Enforcer struct {
	src Source
	// PollInterval is Watch's version-check period; zero means DefaultPollInterval.
	PollInterval time.Duration
	// Log receives watcher errors and reloads (nil: discarded).
	Log *slog.Logger

	reloadMu sync.Mutex // serialises reloads, so an older snapshot never replaces a newer one
	cur      atomic.Pointer[snapshot]
}

type snapshot struct {
	version int64
	orgs    map[string]*orgPolicy
}

// maxCachedDecisions bounds each organisation's decision cache. Callers
// may present arbitrary resource ids (submit authorizes the account before
// validating it), so the cache stops growing here instead of letting a
// client fill memory; decisions beyond it are computed (tens of µs) and not kept.
const maxCachedDecisions = 1 << 14

// orgPolicy is one organisation's part of a snapshot. It is never modified
// after it is built, except for its decision cache.
type orgPolicy struct {
	bindings []Binding // as loaded (ordered by principal, role, scope), to detect change
	ce       *casbin.Enforcer
	roles    map[string][]string // principal → role names, sorted
	cache    sync.Map            // principal \x00 resource \x00 verb → bool
	cached   atomic.Int64
}

func newOrgPolicy(bs []Binding) (*orgPolicy, error) {
	ce, err := NewCasbin(bs)
	if err != nil {
		return nil, err
	}
	op := &orgPolicy{bindings: bs, ce: ce, roles: map[string][]string{}}
	for _, b := range bs {
		op.roles[b.Principal] = append(op.roles[b.Principal], b.RoleName())
	}
	for _, r := range op.roles {
		slices.Sort(r)
	}
	return op, nil
}

func (op *orgPolicy) allowed(org, principal, resource, verb string) (bool, error) {
	key := principal + "\x00" + resource + "\x00" + verb
	if v, ok := op.cache.Load(key); ok {
		return v.(bool), nil
	}
	ok, err := op.ce.Enforce(subjectPrefix+principal, org, resource, verb)
	if err != nil {
		return false, err
	}
	if op.cached.Load() < maxCachedDecisions {
		if _, loaded := op.cache.LoadOrStore(key, ok); !loaded {
			op.cached.Add(1)
		}
	}
	return ok, nil
}

// NewEnforcer loads the bindings from src and returns a ready Enforcer.
func NewEnforcer(ctx context.Context, src Source) (*Enforcer, error) {
	e := &Enforcer{src: src}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Authorize returns nil if p may do verb on resource in p's organisation,
// else a forbidden error. It never queries the database.
func (e *Enforcer) Authorize(ctx context.Context, p herald.Principal, resource, verb string) error {
	ok, err := e.allowed(p, resource, verb)
	if err != nil {
		return err
	}
	if !ok && len(e.RolesOf(p.Org, p.ID)) == 0 && e.src != nil {
		// An authenticated principal with no roles here is most likely one
		// bound a moment ago by another process (herald keys create): check
		// the bindings version once (a single-row read, only on this miss
		// path) instead of making it wait for the watcher.
		if changed, rerr := e.ReloadIfChanged(ctx); rerr == nil && changed {
			ok, err = e.allowed(p, resource, verb)
			if err != nil {
				return err
			}
		}
	}
	if ok {
		return nil
	}
	return herald.Errorf(herald.CodeForbidden, "%q may not %s %s", p.ID, verb, resource)
}

func (e *Enforcer) allowed(p herald.Principal, resource, verb string) (bool, error) {
	op := e.org(p.Org)
	if op == nil || p.ID == "" {
		return false, nil
	}
	ok, err := op.allowed(p.Org, p.ID, resource, verb)
	if err != nil {
		return false, fmt.Errorf("access: enforce %s %s: %w", verb, resource, err)
	}
	return ok, nil
}

// RolesOf returns the role names bound to principal in org, sorted
// ("operator", "operator@accounts/<id>").
func (e *Enforcer) RolesOf(org, principal string) []string {
	if op := e.org(org); op != nil {
		return slices.Clone(op.roles[principal])
	}
	return nil
}

// org returns org's policy, nil when it has no bindings (or nothing is
// loaded: a zero Enforcer denies everything).
func (e *Enforcer) org(org string) *orgPolicy {
	if s := e.cur.Load(); s != nil {
		return s.orgs[org]
	}
	return nil
}

// Version is the bindings version the loaded snapshot was built from.
func (e *Enforcer) Version() int64 {
	if s := e.cur.Load(); s != nil {
		return s.version
	}
	return -1
}

// Reload reads the bindings and swaps in a new snapshot, rebuilding only
// the organisations whose bindings changed. The version is read first: a
// change committed between the two reads is then loaded now and merely
// reloaded once more later, never missed.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	v, err := e.src.BindingsVersion(ctx)
	if err != nil {
		return fmt.Errorf("access: read bindings version: %w", err)
	}
	bs, err := e.src.AllBindings(ctx)
	if err != nil {
		return fmt.Errorf("access: load bindings: %w", err)
	}
	byOrg := map[string][]Binding{}
	for _, b := range bs {
		b.CreatedAt, b.CreatedBy = time.Time{}, "" // not policy: keep the change check to what matters
		byOrg[b.Org] = append(byOrg[b.Org], b)
	}
	var prev map[string]*orgPolicy
	if old := e.cur.Load(); old != nil {
		prev = old.orgs
	}
	s := &snapshot{version: v, orgs: make(map[string]*orgPolicy, len(byOrg))}
	for org, obs := range byOrg {
		if op := prev[org]; op != nil && slices.Equal(op.bindings, obs) {
			s.orgs[org] = op
			continue
		}
		if s.orgs[org], err = newOrgPolicy(obs); err != nil {
			return fmt.Errorf("access: build policy of org %s: %w", org, err)
		}
	}
	e.cur.Store(s)
	return nil
}

// ReloadIfChanged reloads when the stored bindings version differs from the
// loaded one, and reports whether it did.
func (e *Enforcer) ReloadIfChanged(ctx context.Context) (bool, error) {
	v, err := e.src.BindingsVersion(ctx)
	if err != nil {
		return false, fmt.Errorf("access: read bindings version: %w", err)
	}
	if e.cur.Load() != nil && v == e.Version() {
		return false, nil
	}
	return true, e.Reload(ctx)
}

func (e *Enforcer) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Watch keeps the snapshot current until ctx ends: it LISTENs on
// NotifyChannel at databaseURL when that is a PostgreSQL URL (reconnecting
// with backoff; SQLite URLs and "" skip it) and, as a fallback, compares the
// bindings version every PollInterval. Each notification or tick reloads
// only if the version moved. It returns when ctx is done.
func (e *Enforcer) Watch(ctx context.Context, databaseURL string) {
	pgURL := ""
	if strings.HasPrefix(databaseURL, "postgres://") || strings.HasPrefix(databaseURL, "postgresql://") {
		pgURL = databaseURL
	}
	interval := e.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	if pgURL != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.listen(ctx, pgURL, wake)
		}()
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
		if changed, err := e.ReloadIfChanged(ctx); err != nil && ctx.Err() == nil {
			e.log().Warn("access: reload bindings", "err", err)
		} else if changed {
			e.log().Info("access: bindings reloaded", "version", e.Version())
		}
	}
}

// listen holds a LISTEN connection open, signalling wake on every
// notification and after every (re)connect (a change may have been missed
// while disconnected).
func (e *Enforcer) listen(ctx context.Context, url string, wake chan<- struct{}) {
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for ctx.Err() == nil {
		err := listenOnce(ctx, url, func() { backoff = 100 * time.Millisecond; signal() })
		if ctx.Err() != nil {
			return
		}
		e.log().Warn("access: listener disconnected; polling until it reconnects", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func listenOnce(ctx context.Context, url string, signal func()) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal()
	}
}

// MatrixMarkdown renders the built-in role matrix as a Markdown table, by
// asking Casbin (the model and the default policy, one unrestricted binding
// per role) about every resource type and verb. docs/access.md embeds it;
// TestAccessDocMatchesModel fails when the page and the model disagree.
func MatrixMarkdown() (string, error) {
	const org = "matrix"
	var bs []Binding
	for _, r := range herald.Roles {
		bs = append(bs, Binding{Org: org, Principal: r, Role: r, Scope: ScopeAll})
	}
	ce, err := NewCasbin(bs)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("| Resource |")
	for _, r := range herald.Roles {
		sb.WriteString(" `" + r + "` |")
	}
	sb.WriteString("\n|---|")
	for range herald.Roles {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	for _, res := range MatrixRows {
		sb.WriteString("| `" + res + "` |")
		obj := res + "/x" // an item of the type
		if strings.Contains(res, "/") {
			obj = res // a fixed item: exactly it
		}
		for _, r := range herald.Roles {
			var verbs []string
			for _, v := range Verbs {
				ok, err := ce.Enforce(subjectPrefix+r, org, obj, v)
				if err != nil {
					return "", err
				}
				if ok {
					verbs = append(verbs, v)
				}
			}
			switch len(verbs) {
			case 0:
				sb.WriteString(" — |")
			case len(Verbs):
				sb.WriteString(" all |")
			default:
				sb.WriteString(" " + strings.Join(verbs, ", ") + " |")
			}
		}
		sb.WriteString("\n")
	}
	return sb.String(), nil
}
