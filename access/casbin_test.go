package access_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// memSource is an in-memory access.Source.
type memSource struct {
	mu       sync.Mutex
	bindings []access.Binding
	version  int64
}

func (m *memSource) AllBindings(context.Context) ([]access.Binding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bindings), nil
}

func (m *memSource) BindingsVersion(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

func (m *memSource) set(bs ...access.Binding) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bindings = bs
	m.version++
}

func bind(org, principal, role, scope string) access.Binding {
	return access.Binding{Org: org, Principal: principal, Role: role, Scope: access.NormalizeScope(scope)}
}

func newEnforcer(t testing.TB, src access.Source) *access.Enforcer {
	t.Helper()
	e, err := access.NewEnforcer(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func allowed(e *access.Enforcer, org, principal, resource, verb string) bool {
	err := e.Authorize(context.Background(), herald.Principal{ID: principal, Org: org}, resource, verb)
	return err == nil
}

// TestEnforceAgreesWithRoleMatrix: with one unrestricted binding per role,
// Casbin decides exactly as the built-in matrix, for every resource (as a
// collection and as an item) and every verb.
func TestEnforceAgreesWithRoleMatrix(t *testing.T) {
	src := &memSource{}
	var bs []access.Binding
	for _, r := range herald.Roles {
		bs = append(bs, bind("org1", r+"-1", r, ""))
	}
	src.set(bs...)
	e := newEnforcer(t, src)
	ctx := context.Background()
	for _, r := range herald.Roles {
		for _, res := range access.Resources {
			for _, obj := range []string{res, res + "/x1"} {
				for _, verb := range access.Verbs {
					got := e.Authorize(ctx, herald.Principal{ID: r + "-1", Org: "org1"}, obj, verb)
					want := access.RoleMatrix{}.Authorize(ctx, herald.Principal{ID: r + "-1", Org: "org1", Role: r}, obj, verb)
					if (got == nil) != (want == nil) {
						t.Errorf("%s %s %s: casbin %v, matrix %v", r, verb, obj, got, want)
					}
					if got != nil && herald.ErrorCode(got) != herald.CodeForbidden {
						t.Errorf("denial must be forbidden, got %v", got)
					}
				}
			}
		}
	}
}

func TestEnforceDomainsAndNames(t *testing.T) {
	src := &memSource{}
	src.set(
		bind("org1", "alice", herald.RoleAdmin, ""),
		bind("org2", "bob", herald.RoleOperator, ""),
		// A principal whose id is a role name gains nothing by it.
		bind("org1", "admin", herald.RoleAuditor, ""),
		bind("org1", "combo", herald.RoleOperator, ""),
		bind("org1", "combo", herald.RoleAuditor, ""),
	)
	e := newEnforcer(t, src)
	cases := []struct {
		org, principal, resource, verb string
		want                           bool
	}{
		{"org1", "alice", "keys", "write", true},
		{"org2", "alice", "keys", "write", false},    // bound in org1 only
		{"org2", "alice", "accounts", "read", false}, // nothing at all in org2
		{"org2", "bob", "accounts/a", "submit", true},
		{"org1", "bob", "accounts/a", "submit", false},
		{"org1", "admin", "keys", "write", false}, // the principal "admin" is an auditor
		{"org1", "admin", "ledger", "export", true},
		{"org1", "role:admin", "keys", "write", false},
		{"org1", "combo", "accounts/a", "submit", true}, // roles combine
		{"org1", "combo", "ledger", "export", true},
		{"org1", "combo", "keys", "write", false},
		{"org1", "nobody", "actions", "read", false},
		{"", "alice", "keys", "write", false},
		{"*", "alice", "keys", "write", false}, // the wildcard domain is not an org
		{"org1", "", "keys", "write", false},
	}
	for _, c := range cases {
		if got := allowed(e, c.org, c.principal, c.resource, c.verb); got != c.want {
			t.Errorf("%s in %q: %s %s = %v, want %v", c.principal, c.org, c.verb, c.resource, got, c.want)
		}
	}
	if got := e.RolesOf("org1", "combo"); !slices.Equal(got, []string{"auditor", "operator"}) {
		t.Errorf("RolesOf(combo) = %v", got)
	}
	if got := e.RolesOf("org2", "combo"); len(got) != 0 {
		t.Errorf("RolesOf(combo in org2) = %v", got)
	}
}

// TestEnforceScopedOperator: an agency operator bound to one account may
// submit through it only, and keeps the role's other permissions.
func TestEnforceScopedOperator(t *testing.T) {
	src := &memSource{}
	src.set(
		bind("org1", "agency-op", herald.RoleOperator, "accounts/A"),
		bind("org1", "agency-op", herald.RoleOperator, "accounts/C"),
		bind("org1", "op", herald.RoleOperator, ""),
	)
	e := newEnforcer(t, src)
	cases := []struct {
		principal, resource, verb string
		want                      bool
	}{
		{"agency-op", "accounts/A", "submit", true},
		{"agency-op", "accounts/A", "read", true},
		{"agency-op", "accounts/C", "submit", true},
		{"agency-op", "accounts/B", "submit", false},
		{"agency-op", "accounts/AB", "submit", false}, // no prefix matching inside an id
		{"agency-op", "accounts/A/x", "submit", true}, // sub-resources of A are A's
		{"agency-op", "accounts", "read", false},      // the list shows other accounts
		{"agency-op", "actions", "read", true},        // other permissions unchanged
		{"agency-op", "actions", "submit", true},
		{"agency-op", "contacts", "read", true},
		{"agency-op", "keys", "write", false},
		{"op", "accounts/B", "submit", true},
		{"op", "accounts", "read", true},
	}
	for _, c := range cases {
		if got := allowed(e, "org1", c.principal, c.resource, c.verb); got != c.want {
			t.Errorf("%s: %s %s = %v, want %v", c.principal, c.verb, c.resource, got, c.want)
		}
	}
	if got := e.RolesOf("org1", "agency-op"); !slices.Equal(got, []string{"operator@accounts/A", "operator@accounts/C"}) {
		t.Errorf("RolesOf = %v", got)
	}
	// The scope is per binding and per org: the same scoped role elsewhere
	// grants nothing here.
	src.set(bind("org2", "agency-op", herald.RoleOperator, "accounts/A"))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if allowed(e, "org1", "agency-op", "accounts/A", "submit") {
		t.Fatal("a binding in org2 authorizes in org1")
	}
}

func TestEnforceResourceMatch(t *testing.T) {
	cases := []struct {
		resource, pattern string
		want              bool
	}{
		{"accounts", "accounts", true}, {"accounts/x", "accounts", true}, {"accounts/x", "accounts/*", true},
		{"accounts", "accounts/*", true}, {"accounts/x", "accounts/x", true}, {"accounts", "accounts/x", false},
		{"accounts/y", "accounts/x", false}, {"accountsx", "accounts", false}, {"ledger", "*", true},
		{"accounts/xy", "accounts/x", false}, {"actions", "accounts", false},
	}
	for _, c := range cases {
		if got := access.ResourceMatch(c.resource, c.pattern); got != c.want {
			t.Errorf("ResourceMatch(%q, %q) = %v", c.resource, c.pattern, got)
		}
	}
}

func TestAccessAdapterIsReadOnly(t *testing.T) {
	ce, err := access.NewCasbin([]access.Binding{bind("org1", "a", herald.RoleAdmin, "")})
	if err != nil {
		t.Fatal(err)
	}
	ce.EnableAutoSave(true)
	if _, err := ce.AddGroupingPolicy("principal:b", "role:admin", "org1"); err == nil {
		t.Fatal("a change through Casbin's auto-save was accepted")
	}
}

// TestEnforceRevokedRoleStopsAtOnce revokes through the store and checks
// the very next Authorize denies (no decision cache survives a reload).
func TestEnforceRevokedRoleStopsAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		org, err := s.CreateOrg(ctx, "Acme", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct{ id, role string }{{"root", herald.RoleAdmin}, {"op", herald.RoleOperator}} {
			if _, _, err := s.CreateAPIKey(ctx, org.ID, p.id, p.role, "", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.EnsureRole(ctx, org.ID, p.id, p.role, "test"); err != nil {
				t.Fatal(err)
			}
		}
		e := newEnforcer(t, s)
		op := herald.Principal{ID: "op", Org: org.ID, Role: herald.RoleOperator}
		// Warm every cache there is.
		for range 3 {
			if err := e.Authorize(ctx, op, "accounts/a", "submit"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.GrantRole(ctx, org.ID, "op", herald.RoleAuditor, "", "root"); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.Authorize(ctx, op, "ledger", "export"); err != nil {
			t.Fatalf("granted role not effective after reload: %v", err)
		}
		if _, err := s.RevokeRole(ctx, org.ID, "op", herald.RoleOperator, "", "root"); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.Authorize(ctx, op, "accounts/a", "submit"); herald.ErrorCode(err) != herald.CodeForbidden {
			t.Fatalf("revoked role still authorizes: %v", err)
		}
		if err := e.Authorize(ctx, op, "ledger", "export"); err != nil {
			t.Fatalf("the remaining role stopped working: %v", err)
		}
		if changed, err := e.ReloadIfChanged(ctx); err != nil || changed {
			t.Fatalf("ReloadIfChanged with nothing new = %v, %v", changed, err)
		}
	})
}

// TestEnforceConcurrentReload authorizes from many goroutines while
// bindings flip; run with -race.
func TestEnforceConcurrentReload(t *testing.T) {
	src := &memSource{}
	src.set(bind("org1", "a", herald.RoleOperator, ""))
	e := newEnforcer(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = e.Authorize(ctx, herald.Principal{ID: "a", Org: "org1"}, "accounts/x", "submit")
				_ = e.RolesOf("org1", "a")
			}
		}()
	}
	for i := range 50 {
		if i%2 == 0 {
			src.set()
		} else {
			src.set(bind("org1", "a", herald.RoleOperator, ""), bind("org1", "b", herald.RoleAdmin, ""))
		}
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		want := i%2 == 1
		if got := allowed(e, "org1", "a", "accounts/x", "submit"); got != want {
			t.Fatalf("round %d: allowed = %v, want %v", i, got, want)
		}
	}
	cancel()
	wg.Wait()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEnforceTwoProcessesRevocation: two gateways (two stores, two
// Enforcers) share one PostgreSQL database. A revocation through the first
// reaches the second by LISTEN/NOTIFY (its poll interval is an hour, so
// nothing else could deliver it), also after the listener's connection is
// killed and re-established; with no LISTEN the version poll delivers it.
func TestEnforceTwoProcessesRevocation(t *testing.T) {
	ctx := context.Background()
	url := storetest.NewDatabase(t)
	open := func() *store.Store {
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	s1, s2 := open(), open()
	if _, err := s1.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org, err := s1.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ id, role string }{{"root", herald.RoleAdmin}, {"op", herald.RoleOperator}} {
		if _, _, err := s1.CreateAPIKey(ctx, org.ID, p.id, p.role, "", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s1.EnsureRole(ctx, org.ID, p.id, p.role, "test"); err != nil {
			t.Fatal(err)
		}
	}
	e1, e2 := newEnforcer(t, s1), newEnforcer(t, s2)
	e2.PollInterval = time.Hour
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e2.Watch(wctx, url) }()
	t.Cleanup(func() { stop(); <-done })

	op := herald.Principal{ID: "op", Org: org.ID}
	submits := func(e *access.Enforcer) bool { return e.Authorize(ctx, op, "accounts/a", "submit") == nil }
	if !submits(e1) || !submits(e2) {
		t.Fatal("operator cannot submit before the revocation")
	}
	// Let the listener connect, so the notification is not the only signal
	// it ever had (it reloads on connect).
	eventually(t, "the listener is connected", func() bool { return listeners(t, url) == 1 })

	if _, err := s1.RevokeRole(ctx, org.ID, "op", herald.RoleOperator, "", "root"); err != nil {
		t.Fatal(err)
	}
	if err := e1.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if submits(e1) {
		t.Fatal("the revoking process still authorizes")
	}
	eventually(t, "the second process denies", func() bool { return !submits(e2) })

	// Kill the listener's connection: the watcher reconnects and the next
	// change still arrives by notification.
	if _, err := execPG(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN `+access.NotifyChannel+`'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener reconnects", func() bool { return listeners(t, url) == 1 })
	if _, err := s1.GrantRole(ctx, org.ID, "op", herald.RoleOperator, "", "root"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second process sees the new grant", func() bool { return submits(e2) })

	// Fallback: no LISTEN at all, the version poll finds the change.
	e3 := newEnforcer(t, s2)
	e3.PollInterval = 20 * time.Millisecond
	pctx, pstop := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); e3.Watch(pctx, "") }()
	t.Cleanup(func() { pstop(); <-pdone })
	if !submits(e3) {
		t.Fatal("third process: operator cannot submit")
	}
	if _, err := s1.RevokeRole(ctx, org.ID, "op", herald.RoleOperator, "", "root"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the polling process denies", func() bool { return !submits(e3) })
}

func execPG(url, sql string) (int64, error) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	tag, err := c.Exec(ctx, sql)
	return tag.RowsAffected(), err
}

// listeners counts connections whose last statement was the LISTEN.
func listeners(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1`, "LISTEN "+access.NotifyChannel).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
