package policies

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestTimeout bounds each Rego test case, as `opa test --timeout` does.
const TestTimeout = 5 * time.Second

// TestReport is the outcome of a bundle's own Rego tests. A bundle whose
// report has Failed > 0 (or no tests at all) must not be activated.
type TestReport struct {
	Passed   int           `json:"passed"`
	Failed   int           `json:"failed"`
	Skipped  int           `json:"skipped"`
	Failures []TestFailure `json:"failures,omitempty"`
	// Coverage is the percentage of the policy lines (test files excluded)
	// that the tests evaluated. `opa test --coverage` also counts the test
	// files themselves, which flatters the figure; CoverageWithTests is that
	// number for comparison.
	Coverage          float64 `json:"coverage"`
	CoverageWithTests float64 `json:"coverage_with_tests"`
	// FileCoverage is the percentage per policy file.
	FileCoverage map[string]float64 `json:"file_coverage"`
	// NotCovered lists policy line ranges no test reached ("risk.rego:40-42").
	NotCovered []string      `json:"not_covered,omitempty"`
	Duration   time.Duration `json:"duration"`
}

// TestFailure is one failing or erroring Rego test.
type TestFailure struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	File    string `json:"file"`
	Line    int    `json:"line"`
}

// OK reports whether the bundle may be activated: tests exist and all pass.
func (r TestReport) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// RunTests runs the bundle's *_test.rego files with the OPA tester, like
// `opa test --coverage`. Failing tests are reported in the TestReport, not
// as an error; an error means the tests could not run (a *CompileError when
// the bundle or its tests do not compile).
func RunTests(ctx context.Context, b Bundle) (TestReport, error) {
	start := time.Now()
	var rep TestReport
	modules, err := parseModules(b, true)
	if err != nil {
		return rep, err
	}
	store, err := dataStore(b)
	if err != nil {
		return rep, err
	}
	cov := cover.New()
	runner := tester.NewRunner().
		SetCompiler(newCompiler()).
		SetStore(store).
		SetModules(modules).
		SetCoverageQueryTracer(cov).
		// The supplementary passes only annotate why lines are uncovered;
		// they triple the run time.
		SetCoverageRuns([]cover.Kind{}).
		CapturePrintOutput(true).
		SetTimeout(TestTimeout)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("run policy tests: %w", compileErrorFrom(err))
	}
	for r := range ch {
		switch {
		case r.Skip:
			rep.Skipped++
		case r.Pass():
			rep.Passed++
		default:
			rep.Failed++
			rep.Failures = append(rep.Failures, failureOf(r))
		}
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("run policy tests: %w", err)
	}
	slices.SortFunc(rep.Failures, func(a, b TestFailure) int { return strings.Compare(a.Name, b.Name) })

	report := cov.Report(modules)
	rep.CoverageWithTests = report.Coverage
	rep.FileCoverage = map[string]float64{}
	var covered, notCovered int
	for file, fr := range report.Files {
		if isTestFile(file) {
			continue
		}
		rep.FileCoverage[file] = fr.Coverage
		covered += fr.CoveredLines
		notCovered += fr.NotCoveredLines
		for _, rng := range fr.NotCovered {
			rep.NotCovered = append(rep.NotCovered, fmt.Sprintf("%s:%d-%d", file, rng.Start.Row, rng.End.Row))
		}
	}
	if covered+notCovered > 0 {
		rep.Coverage = 100 * float64(covered) / float64(covered+notCovered)
	}
	slices.Sort(rep.NotCovered)
	rep.Duration = time.Since(start)
	return rep, nil
}

func failureOf(r *tester.Result) TestFailure {
	f := TestFailure{Name: r.Package + "." + r.Name, Message: "test failed"}
	if r.Location != nil {
		f.File, f.Line = r.Location.File, r.Location.Row
	}
	switch {
	case r.Error != nil:
		f.Message = r.Error.Error()
	case r.FailedAt != nil:
		f.Message = "failed at " + r.FailedAt.String()
		if r.FailedAt.Location != nil {
			f.Line = r.FailedAt.Location.Row
		}
	}
	if len(r.Output) > 0 {
		f.Message += "\n" + strings.TrimSpace(string(r.Output))
	}
	return f
}
