package policies

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// RulePolicyError is the reason id of a fail-closed decision.
const RulePolicyError = "policy.error"

var (
	// ErrTimeout: the evaluation missed its deadline (EvalTimeout).
	ErrTimeout = errors.New("policy evaluation exceeded its deadline")
	// ErrUndefined: the bundle produced no decision for this input.
	ErrUndefined = errors.New("policy decision is undefined")
)

// Decide evaluates data.herald.decision for in.
//
// It MUST NOT return an allow it cannot stand behind: on any failure —
// evaluation error, deadline, undefined or off-schema document — it returns
// a deny with the non-overridable reason "policy.error" together with a
// non-nil error wrapping the cause. Callers act on the Decision and log the
// error; they never need to special-case the error to stay safe.
func (e *Engine) Decide(ctx context.Context, in Input) (Decision, error) {
	return e.decide(ctx, in, nil, e.timeout)
}

func (e *Engine) decide(ctx context.Context, in Input, tracer topdown.QueryTracer, timeout time.Duration) (Decision, error) {
	value, err := inputValue(in)
	if err != nil {
		return e.failClosed("", fmt.Errorf("build policy input: %w", err))
	}
	inputHash, err := valueHash(value)
	if err != nil {
		return e.failClosed("", err)
	}
	if in.Now.IsZero() {
		return e.failClosed(inputHash, errors.New("policy input has no now"))
	}

	// The deadline cancels evaluation through a timer rather than a context
	// deadline: with an external Cancel the evaluator does not start a
	// watcher goroutine per decision.
	cancel := topdown.NewCancel()
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		cancel.Cancel()
	})
	defer timer.Stop()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	vc := getFlatCache()
	defer vc.release()
	opts := []rego.EvalOption{
		rego.EvalParsedInput(value),
		rego.EvalVirtualCache(vc),
		// Metrics are not reported; the default allocates a set per decision.
		rego.EvalMetrics(metrics.NoOp()),
		rego.EvalExternalCancel(cancel),
		// Hand back the raw term: decodeDecision reads it directly instead
		// of going through map[string]any.
		rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	}
	if tracer != nil {
		opts = append(opts, rego.EvalQueryTracer(tracer))
	}
	rs, err := e.query.Eval(ctx, opts...)
	if err != nil {
		switch {
		case timedOut.Load():
			return e.failClosed(inputHash, fmt.Errorf("%w (%s): %v", ErrTimeout, timeout, err))
		case ctx.Err() != nil:
			return e.failClosed(inputHash, fmt.Errorf("evaluate %s: %w", DecisionQuery, context.Cause(ctx)))
		}
		return e.failClosed(inputHash, fmt.Errorf("evaluate %s: %w", DecisionQuery, err))
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return e.failClosed(inputHash, ErrUndefined)
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return e.failClosed(inputHash, fmt.Errorf("%w: unexpected result type %T", ErrOffSchema, rs[0].Expressions[0].Value))
	}
	d, err := decodeDecision(t.Value)
	if err != nil {
		return e.failClosed(inputHash, err)
	}
	d.BundleHash, d.InputHash = e.hash, inputHash
	return d, nil
}

// failClosed is the decision taken when policy could not decide.
func (e *Engine) failClosed(inputHash string, cause error) (Decision, error) {
	e.failures.Add(1)
	return Decision{
		Outcome: OutcomeDeny,
		Reasons: []Reason{{
			Rule:        RulePolicyError,
			Severity:    "deny",
			Message:     "the policy could not decide; the action is denied until it can",
			Overridable: false,
		}},
		Suggestions: []Suggestion{},
		Risk:        Risk{Factors: []RiskFactor{}},
		BundleHash:  e.hash,
		InputHash:   inputHash,
	}, fmt.Errorf("policy decision failed closed: %w", cause)
}
