package slo_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/slo"
)

// TestEmptyWindowMeetsTheSLOs: no outcomes means nothing was spent; the
// percentiles are absent (null), not zero.
func TestEmptyWindowMeetsTheSLOs(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	r := slo.Compute("", now.Add(-time.Hour), now, nil, slo.DefaultObjectives)
	f := r.Overall
	if f.P95 != nil || f.LatencyBudgetLeft != 1 || f.ErrorBudgetLeft != 1 || !f.LatencyMet || !f.ErrorsMet {
		t.Fatalf("empty window: %+v", f)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"p95_seconds":null`) || !strings.Contains(string(b), `"latency_threshold_seconds":5`) {
		t.Fatalf("JSON: %s", b)
	}
}

// TestTableShowsEveryScope: the human table has the overall row, one per
// connector and one per account, with the hand-checked p95.
func TestTableShowsEveryScope(t *testing.T) {
	due := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var os []slo.Outcome
	for i := 1; i <= 20; i++ { // 1 s … 20 s on one account
		os = append(os, slo.Outcome{Account: "acc-a", Connector: "botapi", Status: "delivered", Due: due, At: due.Add(time.Duration(i) * time.Second)})
	}
	os = append(os, slo.Outcome{Account: "acc-b", Connector: "mtproto", Status: "failed", Due: due, At: due})
	r := slo.Compute("org-1", due, due.Add(time.Hour), os, slo.DefaultObjectives)
	if *r.Overall.P95 != 19 { // ⌈0.95·20⌉ = 19th of 1…20
		t.Fatalf("p95 = %v, want 19", *r.Overall.P95)
	}
	var buf bytes.Buffer
	if err := slo.WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"all", "connector botapi", "connector mtproto", "account acc-a (botapi)", "account acc-b (mtproto)",
		"19.000s", "no (latency, errors)", "4.762%"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}
