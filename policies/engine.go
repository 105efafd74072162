package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// DecisionQuery is the one entry point every bundle must define.
const DecisionQuery = "data.herald.decision"

// DefaultEvalTimeout bounds one evaluation. The default bundle decides in
// well under a millisecond; 50 ms leaves room for org modules while a
// runaway policy still cannot stall the send pipeline.
const DefaultEvalTimeout = 50 * time.Millisecond

var decisionRef = ast.MustParseRef(DecisionQuery)

// Engine evaluates one compiled bundle version. It holds a single prepared
// query, safe for concurrent use: compile once per version, never per request.
type Engine struct {
	query    rego.PreparedEvalQuery
	compiler *ast.Compiler
	store    storage.Store
	hash     string
	timeout  time.Duration
	failures atomic.Uint64
}

// Option configures Compile.
type Option func(*Engine)

// EvalTimeout sets the evaluation deadline (DefaultEvalTimeout when unset or
// not positive). A decision that misses it fails closed.
func EvalTimeout(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.timeout = d
		}
	}
}

// Compile parses and strictly compiles the bundle's policy modules (tests are
// left out), loads its data and prepares the decision query. Any problem is
// a *CompileError naming file and line.
func Compile(ctx context.Context, b Bundle, opts ...Option) (*Engine, error) {
	e := &Engine{hash: b.Hash(), timeout: DefaultEvalTimeout}
	for _, o := range opts {
		o(e)
	}
	modules, err := parseModules(b, false)
	if err != nil {
		return nil, err
	}
	store, err := dataStore(b)
	if err != nil {
		return nil, err
	}
	c := newCompiler()
	if c.Compile(modules); c.Failed() {
		return nil, compileErrorFrom(c.Errors)
	}
	if len(c.GetRulesExact(decisionRef)) == 0 {
		return nil, &CompileError{Problems: []Problem{{Message: "bundle does not define " + DecisionQuery}}}
	}
	q, err := rego.New(
		rego.Query(DecisionQuery),
		rego.Compiler(c),
		rego.Store(store),
		// A builtin error (an unknown time zone, a malformed timestamp)
		// must fail the decision closed, not silently skip a rule.
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, compileErrorFrom(err)
	}
	e.query, e.compiler, e.store = q, c, store
	return e, nil
}

// Hash identifies the bundle version this engine evaluates.
func (e *Engine) Hash() string { return e.hash }

// FailClosed counts decisions that failed closed since Compile, for metrics.
func (e *Engine) FailClosed() uint64 { return e.failures.Load() }

func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1)
}

// parseModules parses the bundle's Rego in v1 syntax; withTests includes the
// *_test.rego files, which never take part in decisions.
func parseModules(b Bundle, withTests bool) (map[string]*ast.Module, error) {
	modules := map[string]*ast.Module{}
	ce := &CompileError{}
	for p, content := range b.Files {
		if !strings.HasSuffix(p, ".rego") || (isTestFile(p) && !withTests) {
			continue
		}
		m, err := ast.ParseModuleWithOpts(p, string(content), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			ce.Problems = append(ce.Problems, compileErrorFrom(err).Problems...)
			continue
		}
		modules[p] = m
	}
	if len(ce.Problems) > 0 {
		return nil, ce
	}
	return modules, nil
}

// dataStore mounts every data.json at its directory's path.
func dataStore(b Bundle) (storage.Store, error) {
	root := map[string]any{}
	for p, content := range b.Files {
		if path.Base(p) != "data.json" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(content))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, &CompileError{Problems: []Problem{jsonProblem(p, content, err)}}
		}
		node := root
		if dir := path.Dir(p); dir != "." {
			for _, seg := range strings.Split(dir, "/") {
				child, ok := node[seg].(map[string]any)
				if !ok {
					child = map[string]any{}
					node[seg] = child
				}
				node = child
			}
		}
		if err := mergeData(node, doc); err != nil {
			return nil, &CompileError{Problems: []Problem{{File: p, Message: err.Error()}}}
		}
	}
	// AST values on read: the params are read on every decision, and
	// converting them from Go maps each time dominated small evaluations.
	return inmem.NewFromObjectWithOpts(root, inmem.OptReturnASTValuesOnRead(true)), nil
}

// mergeData deep-merges src into dst; two files setting the same leaf is an
// error rather than a silent last-wins.
func mergeData(dst, src map[string]any) error {
	for k, v := range src {
		old, exists := dst[k]
		if !exists {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("data key %q is defined twice", k)
		}
		if err := mergeData(om, nm); err != nil {
			return err
		}
	}
	return nil
}
