package policies

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// denyAll is a bundle that denies everything with rule custom.block, with a
// passing test.
func denyAll() Bundle {
	return Bundle{Files: map[string][]byte{
		"decision.rego": []byte(`package herald

decision := {
	"outcome": "deny",
	"reasons": [{"rule": "custom.block", "severity": "deny", "message": "blocked by org policy", "overridable": false}],
	"suggestions": [],
	"risk": {"score": 0, "factors": []},
}
`),
		"decision_test.rego": []byte(`package herald_test

import data.herald

test_blocks if herald.decision.outcome == "deny"
`),
	}}
}

// fakeSource is an in-memory ActiveSource.
type fakeSource struct {
	mu      sync.Mutex
	active  map[string]BundleRef
	bundles map[string]map[int]Bundle
	loads   atomic.Int32
	fail    error
}

func (f *fakeSource) ActiveBundles(context.Context) (map[string]BundleRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := map[string]BundleRef{}
	for k, v := range f.active {
		out[k] = v
	}
	return out, nil
}

func (f *fakeSource) LoadBundle(_ context.Context, org string, version int) (Bundle, error) {
	f.loads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bundles[org][version]
	if !ok {
		return Bundle{}, errors.New("no such bundle")
	}
	return b, nil
}

func (f *fakeSource) activate(org string, version int, b Bundle) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bundles[org] == nil {
		f.bundles[org] = map[int]Bundle{}
	}
	f.bundles[org][version] = b
	f.active[org] = BundleRef{Version: version, Hash: b.Hash()}
}

func inputOf(org string) Input {
	in := realisticInput()
	in.Org.ID = org
	return in
}

func TestPolicyRegistryRoutesByOrganisation(t *testing.T) {
	ctx := context.Background()
	def := mustEngine(t)
	src := &fakeSource{active: map[string]BundleRef{}, bundles: map[string]map[int]Bundle{}}
	r := NewRegistry(def, src)

	d, err := r.Decide(ctx, inputOf("org-a"))
	if err != nil || d.BundleHash != def.Hash() {
		t.Fatalf("before refresh: %+v, %v; want the default bundle", d, err)
	}
	src.activate("org-a", 1, denyAll())
	src.activate("org-b", 4, denyAll())
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	d, err = r.Decide(ctx, inputOf("org-a"))
	if err != nil || d.Outcome != OutcomeDeny || d.Reasons[0].Rule != "custom.block" || d.BundleHash != denyAll().Hash() {
		t.Fatalf("org-a after activation: %+v, %v", d, err)
	}
	if d, _ := r.Decide(ctx, inputOf("org-c")); d.BundleHash != def.Hash() {
		t.Fatalf("an org without an active version is decided by %s, want the default", d.BundleHash)
	}
	ea, _ := r.EngineFor("org-a")
	eb, _ := r.EngineFor("org-b")
	if ea != eb || src.loads.Load() != 1 {
		t.Fatalf("one bundle hash must compile once: engines %p %p, %d loads", ea, eb, src.loads.Load())
	}
	if got := r.Active("org-b"); got.Version != 4 {
		t.Fatalf("Active(org-b) = %+v", got)
	}
	// A refresh with nothing changed loads nothing.
	if err := r.Refresh(ctx); err != nil || src.loads.Load() != 1 {
		t.Fatalf("idle refresh: %v, %d loads", err, src.loads.Load())
	}
	// Explain goes to the org's engine too.
	if d, _, err := r.Explain(ctx, inputOf("org-a")); err != nil || d.Reasons[0].Rule != "custom.block" {
		t.Fatalf("Explain: %+v, %v", d, err)
	}

	// Deactivation (rollback to the default) and a failing source.
	src.mu.Lock()
	delete(src.active, "org-a")
	src.mu.Unlock()
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Decide(ctx, inputOf("org-a")); d.BundleHash != def.Hash() {
		t.Fatalf("org-a after deactivation decided by %s", d.BundleHash)
	}
	src.mu.Lock()
	src.fail = errors.New("database down")
	src.mu.Unlock()
	if err := r.Refresh(ctx); err == nil {
		t.Fatal("refresh with a failing source succeeded")
	}
	if d, _ := r.Decide(ctx, inputOf("org-b")); d.Reasons[0].Rule != "custom.block" {
		t.Fatal("a failed refresh dropped the engines in use")
	}
}

func TestPolicyRegistryKeepsPreviousEngineOnBadBundle(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{active: map[string]BundleRef{}, bundles: map[string]map[int]Bundle{}}
	r := NewRegistry(mustEngine(t), src)
	src.activate("org-a", 1, denyAll())
	if err := r.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	broken := bundleWith("decision := {")
	src.activate("org-a", 2, broken)
	src.activate("org-new", 1, broken)
	if err := r.Refresh(ctx); err == nil {
		t.Fatal("refresh with a broken bundle reported no error")
	}
	if d, _ := r.Decide(ctx, inputOf("org-a")); d.Reasons[0].Rule != "custom.block" {
		t.Fatalf("org-a lost its previous engine: %+v", d)
	}
	// An org whose first active bundle is broken fails closed rather than
	// falling back to the (possibly more permissive) default.
	d, err := r.Decide(ctx, inputOf("org-new"))
	if err == nil {
		t.Fatal("no error for an unloadable active bundle")
	}
	assertFailClosed(t, d)
}

func TestPolicyRegistryRunPicksUpActivation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &fakeSource{active: map[string]BundleRef{}, bundles: map[string]map[int]Bundle{}}
	r := NewRegistry(mustEngine(t), src)
	done := make(chan struct{})
	go func() { _ = r.Run(ctx, 10*time.Millisecond); close(done) }()
	src.activate("org-a", 1, denyAll())
	deadline := time.Now().Add(10 * time.Second)
	for r.Active("org-a").Version != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the activation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestPolicyRegistryConcurrentDecideAndRefresh(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{active: map[string]BundleRef{}, bundles: map[string]map[int]Bundle{}}
	def := mustEngine(t)
	r := NewRegistry(def, src)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := r.Decide(ctx, inputOf("org-a"))
				if err != nil || (d.BundleHash != def.Hash() && d.BundleHash != denyAll().Hash()) {
					t.Errorf("decision by %s: %v", d.BundleHash, err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		if i%2 == 0 {
			src.activate("org-a", 1, denyAll())
		} else {
			src.mu.Lock()
			delete(src.active, "org-a")
			src.mu.Unlock()
		}
		if err := r.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestPolicyUploadTestsGate(t *testing.T) {
	rep, err := RunTests(context.Background(), denyAll())
	if err != nil || !rep.OK() || rep.Passed != 1 {
		t.Fatalf("denyAll tests: %+v, %v", rep, err)
	}
}
