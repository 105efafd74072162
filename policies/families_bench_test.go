package policies

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// BenchmarkRuleFamilies evaluates each family of the default bundle on its
// own, to show where a decision's time goes.
func BenchmarkRuleFamilies(b *testing.B) {
	e := mustBenchEngine(b)
	v, err := inputValue(realisticInput())
	if err != nil {
		b.Fatal(err)
	}
	raw := rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })
	for _, family := range []string{"consent", "quiet_hours", "frequency", "risk", "approval"} {
		pq, err := rego.New(rego.Query("data.herald."+family+".verdicts"), rego.Compiler(e.compiler), rego.Store(e.store)).PrepareForEval(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(family, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(v), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
