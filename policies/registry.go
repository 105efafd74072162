package policies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald"
)

// Error codes of the policy lifecycle (stable, as every herald.Code).
const (
	// CodeInvalid: an uploaded bundle does not compile (parse or strict
	// compile error, broken data.json, no data.herald.decision). The
	// problem lists each finding as file:line. HTTP 422.
	CodeInvalid herald.Code = "policy_invalid"
	// CodeTestsFailed: the bundle's own tests failed (or it has none), so it
	// cannot be activated. HTTP 409.
	CodeTestsFailed herald.Code = "policy_tests_failed"
)

// DefaultRefreshInterval is how often Registry.Run re-reads the active
// versions: one indexed query per replica every two seconds is negligible
// load, and an activation reaches every replica within that time.
const DefaultRefreshInterval = 2 * time.Second

// BundleRef names one stored bundle version of an organisation.
type BundleRef struct {
	Version int    `json:"version"`
	Hash    string `json:"hash"`
}

// ActiveSource is where a Registry learns which bundle each organisation
// has activated (the store implements it).
type ActiveSource interface {
	// ActiveBundles returns the active version of every organisation that
	// has one; organisations without one use the default engine.
	ActiveBundles(ctx context.Context) (map[string]BundleRef, error)
	// LoadBundle reads one stored version's files.
	LoadBundle(ctx context.Context, org string, version int) (Bundle, error)
}

// Registry decides each input with its organisation's active bundle.
//
// It MUST NOT compile on the request path: Decide only looks up an engine
// in an immutable map swapped atomically by Refresh. Engines are compiled
// once per bundle hash and shared by every organisation that activated the
// same bundle. An organisation without an active version is decided by the
// default engine. An organisation whose active bundle cannot be loaded or
// compiled keeps its previous engine; if it never had one its decisions
// fail closed (deny, policy.error) rather than fall back to a more
// permissive default.
//
// The zero Registry is not usable; build one with NewRegistry.
type Registry struct {
	def  *Engine
	src  ActiveSource
	opts []Option
	log  *slog.Logger

	state atomic.Pointer[registryState]
	// mu serialises Refresh and guards compiled.
	mu       sync.Mutex
	compiled map[string]*Engine // bundle hash → engine
}

type registryState struct {
	byOrg map[string]orgEngine
}

type orgEngine struct {
	ref    BundleRef
	engine *Engine
	err    error // set when the active bundle could not be compiled and there is no previous engine
}

// NewRegistry returns a Registry deciding with def until Refresh reads the
// organisations' active versions from src (src may be nil: def decides all).
// opts apply to every engine it compiles.
func NewRegistry(def *Engine, src ActiveSource, opts ...Option) *Registry {
	r := &Registry{def: def, src: src, opts: opts, compiled: map[string]*Engine{}}
	if def != nil {
		r.compiled[def.Hash()] = def
	}
	r.state.Store(&registryState{byOrg: map[string]orgEngine{}})
	return r
}

// SetLogger sets where Refresh problems are logged (default: discarded).
func (r *Registry) SetLogger(l *slog.Logger) { r.log = l }

func (r *Registry) logger() *slog.Logger {
	if r.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.log
}

// Default is the engine of organisations without an active version.
func (r *Registry) Default() *Engine { return r.def }

// Active reports org's active version (the zero BundleRef when org uses the
// default) as last refreshed.
func (r *Registry) Active(org string) BundleRef {
	return r.state.Load().byOrg[org].ref
}

// EngineFor returns the engine that decides org's inputs; nil with an error
// when org's active bundle failed to compile and there is no earlier one.
func (r *Registry) EngineFor(org string) (*Engine, error) {
	oe, ok := r.state.Load().byOrg[org]
	switch {
	case !ok:
		return r.def, nil
	case oe.err != nil:
		return nil, oe.err
	}
	return oe.engine, nil
}

// Decide evaluates in with the engine of in.Org.ID (see Engine.Decide for
// the fail-closed contract, which holds here too).
func (r *Registry) Decide(ctx context.Context, in Input) (Decision, error) {
	e, err := r.EngineFor(in.Org.ID)
	if err != nil {
		return r.failClosed(in.Org.ID, err)
	}
	return e.Decide(ctx, in)
}

// Explain is Engine.Explain with the engine of in.Org.ID.
func (r *Registry) Explain(ctx context.Context, in Input) (Decision, []string, error) {
	e, err := r.EngineFor(in.Org.ID)
	if err != nil {
		d, err := r.failClosed(in.Org.ID, err)
		return d, nil, err
	}
	return e.Explain(ctx, in)
}

func (r *Registry) failClosed(org string, cause error) (Decision, error) {
	ref := r.Active(org)
	return (&Engine{hash: ref.Hash}).failClosed("", cause)
}

// Compiled returns the engine for b, compiling it unless an engine of the
// same hash already exists. Engines compiled here for bundles that are not
// active (an impact preview's candidate) are not kept.
func (r *Registry) Compiled(ctx context.Context, b Bundle) (*Engine, error) {
	h := b.Hash()
	r.mu.Lock()
	e := r.compiled[h]
	r.mu.Unlock()
	if e != nil {
		return e, nil
	}
	return Compile(ctx, b, r.opts...)
}

// Refresh reads every organisation's active version and swaps in the
// engines to decide with, compiling each bundle hash not seen before. It
// returns the first load or compile problem (after applying everything
// else); the affected organisation keeps its previous engine.
func (r *Registry) Refresh(ctx context.Context) error {
	if r.src == nil {
		return nil
	}
	active, err := r.src.ActiveBundles(ctx)
	if err != nil {
		return fmt.Errorf("refresh policies: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state.Load().byOrg
	next := make(map[string]orgEngine, len(active))
	keep := map[string]bool{}
	if r.def != nil {
		keep[r.def.Hash()] = true
	}
	var errs []error
	for org, ref := range active {
		if prev, ok := old[org]; ok && prev.ref == ref && prev.err == nil {
			next[org] = prev
			keep[ref.Hash] = true
			continue
		}
		e, err := r.engineFor(ctx, org, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("org %s policy v%d: %w", org, ref.Version, err))
			r.logger().Error("policy bundle could not be loaded; keeping the previous engine", "org", org, "version", ref.Version, "err", err)
			if prev, ok := old[org]; ok && prev.err == nil {
				next[org] = prev
				keep[prev.ref.Hash] = true
			} else {
				next[org] = orgEngine{ref: ref, err: fmt.Errorf("active policy v%d does not load: %w", ref.Version, err)}
			}
			continue
		}
		next[org] = orgEngine{ref: ref, engine: e}
		keep[ref.Hash] = true
	}
	for h := range r.compiled {
		if !keep[h] {
			delete(r.compiled, h)
		}
	}
	r.state.Store(&registryState{byOrg: next})
	return errors.Join(errs...)
}

// engineFor returns the cached engine of ref.Hash or loads and compiles it.
// r.mu is held.
func (r *Registry) engineFor(ctx context.Context, org string, ref BundleRef) (*Engine, error) {
	if e := r.compiled[ref.Hash]; e != nil {
		return e, nil
	}
	b, err := r.src.LoadBundle(ctx, org, ref.Version)
	if err != nil {
		return nil, err
	}
	if h := b.Hash(); h != ref.Hash {
		return nil, fmt.Errorf("bundle hashes to %s, active hash is %s", h, ref.Hash)
	}
	e, err := Compile(ctx, b, r.opts...)
	if err != nil {
		return nil, err
	}
	r.compiled[ref.Hash] = e
	return e, nil
}

// Run refreshes every interval (DefaultRefreshInterval when not positive)
// until ctx ends, so a replica picks up an activation made through another
// one without restart. Refresh errors are logged, never fatal.
func (r *Registry) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = DefaultRefreshInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				r.logger().Error("policy refresh", "err", err)
			}
		}
	}
}
