// Package deploy_test checks what deploy/ ships: the Prometheus rules pass
// their promtool tests, every alert has a runbook section in
// docs/operations.md, and every query of the rules and the Grafana dashboard
// names a metric Herald exports or a rule that records it.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/heraldhq/herald/telemetry"
)

const (
	rulesFile     = "prometheus/herald.rules.yml"
	rulesTest     = "prometheus/herald.rules.test.yml"
	dashboardFile = "grafana/herald.json"
	runbook       = "../docs/operations.md"
	runbookURL    = "https://github.com/heraldhq/herald/blob/main/docs/operations.md#"
)

// promtool comes from Debian's prometheus package, which scripts/test installs.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run scripts/test (it installs Debian's prometheus package) or apt-get install prometheus")
	}
	return p
}

func TestPrometheusRulesPassPromtool(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTest}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if !strings.Contains(string(out), "SUCCESS") {
			t.Fatalf("promtool %s did not report SUCCESS:\n%s", strings.Join(args, " "), out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("parse %s: %v", rulesFile, err)
	}
	return rf
}

// slug is GitHub's heading anchor: lower case, spaces to hyphens,
// punctuation other than hyphens and underscores dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestEveryAlertHasARunbookSection(t *testing.T) {
	doc, err := os.ReadFile(runbook)
	if err != nil {
		t.Fatal(err)
	}
	// Each alert's section: its heading, and the text up to the next heading.
	sections := map[string]string{}
	var cur string
	for line := range strings.SplitSeq(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			cur = slug(strings.TrimLeft(line, "# "))
			sections[cur] = ""
			continue
		}
		if cur != "" {
			sections[cur] += line + "\n"
		}
	}
	alerts := 0
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if r.Labels["severity"] != "page" && r.Labels["severity"] != "ticket" {
				t.Errorf("alert %s: severity %q, want page or ticket", r.Alert, r.Labels["severity"])
			}
			u := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(u, runbookURL)
			if !ok {
				t.Errorf("alert %s: runbook_url %q does not point into docs/operations.md", r.Alert, u)
				continue
			}
			if anchor != strings.ToLower(r.Alert) {
				t.Errorf("alert %s: runbook anchor %q, want %q", r.Alert, anchor, strings.ToLower(r.Alert))
			}
			body, ok := sections[anchor]
			if !ok {
				t.Errorf("alert %s: docs/operations.md has no section %q", r.Alert, anchor)
				continue
			}
			// A runbook section says what the alert means and what to do.
			for _, want := range []string{"**Means:**", "**Do:**"} {
				if !strings.Contains(body, want) {
					t.Errorf("alert %s: runbook section lacks %s", r.Alert, want)
				}
			}
		}
	}
	if alerts < 10 {
		t.Fatalf("found %d alerts in %s; the rules file was not read as expected", alerts, rulesFile)
	}
}

// exportedMetrics are the metric families a serving Herald registers: the
// Metrics struct's collectors (described, so label vectors count before
// their first observation) and whatever the registry gathers (Go runtime,
// process, scrape-time probes).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := telemetry.New(func() float64 { return 0 })
	m.RegisterProbes(telemetry.Probes{
		Queue:        func(context.Context) (telemetry.QueueHealth, error) { return telemetry.QueueHealth{}, nil },
		Dependencies: map[string]func(context.Context) error{"database": func(context.Context) error { return nil }},
	})
	names := map[string]bool{}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue // internal state (label bounds), not a collector
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Field(i).IsNil() {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if mm := fqName.FindStringSubmatch(d.String()); mm != nil {
				names[mm[1]] = true
			}
		}
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricRef = regexp.MustCompile(`\bherald[_:][a-zA-Z0-9_:]*`)

// checkRefs reports every herald_* or herald:* name in expr that is neither
// exported nor recorded by a rule.
func checkRefs(t *testing.T, where, expr string, exported, recorded map[string]bool) int {
	t.Helper()
	n := 0
	for _, ref := range metricRef.FindAllString(expr, -1) {
		n++
		if strings.Contains(ref, ":") {
			if !recorded[ref] {
				t.Errorf("%s: %q is not recorded by any rule in %s", where, ref, rulesFile)
			}
			continue
		}
		base := ref
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(ref, suf); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			t.Errorf("%s: metric %q is not exported by Herald (telemetry)", where, ref)
		}
	}
	return n
}

func TestRulesNameExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	recorded := map[string]bool{}
	rf := loadRules(t)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	refs := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			refs += checkRefs(t, "rule "+r.Record+r.Alert, r.Expr, exported, recorded)
		}
	}
	if refs == 0 {
		t.Fatal("no metric references found in the rules")
	}
}

type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse %s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Fatalf("dashboard has no title or uid: %+v", d)
	}
	exported := exportedMetrics(t)
	recorded := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	var (
		walk    func([]panel)
		queries int
		titles  []string
	)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			titles = append(titles, p.Title)
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				queries++
				if checkRefs(t, fmt.Sprintf("panel %q query %d", p.Title, i), tg.Expr, exported, recorded) == 0 {
					t.Errorf("panel %q query %d names no Herald metric: %q", p.Title, i, tg.Expr)
				}
			}
		}
	}
	walk(d.Panels)
	if queries < 10 {
		t.Fatalf("dashboard has %d queries; expected the SLO, pipeline, delivery and queue panels", queries)
	}
	// The SLO panels come first: that is what an on-call engineer opens it for.
	if !slices.ContainsFunc(titles[:3], func(s string) bool { return strings.Contains(s, "Publish latency") }) {
		t.Errorf("the first panels should show the publish-latency SLO; got %q", titles[:3])
	}
}
