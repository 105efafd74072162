package policies

import (
	"context"
	"strings"
	"testing"
)

func TestDefaultBundleRegoTests(t *testing.T) {
	rep, err := RunTests(context.Background(), DefaultBundle())
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	for _, f := range rep.Failures {
		t.Errorf("%s (%s:%d): %s", f.Name, f.File, f.Line, f.Message)
	}
	if rep.Passed < 50 || !rep.OK() {
		t.Errorf("passed %d, failed %d: want many tests, all passing", rep.Passed, rep.Failed)
	}
	t.Logf("rego tests: %d passed, %d failed; coverage %.1f%% of policy lines (%.1f%% with test files); not covered: %s",
		rep.Passed, rep.Failed, rep.Coverage, rep.CoverageWithTests, strings.Join(rep.NotCovered, ", "))
	for file, c := range rep.FileCoverage {
		t.Logf("  %-20s %5.1f%%", file, c)
	}
	if rep.Coverage < 90 {
		t.Errorf("coverage %.1f%% < 90%%", rep.Coverage)
	}
}
