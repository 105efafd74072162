package dpia

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/heraldhq/herald"
)

func TestParsePlanValidates(t *testing.T) {
	plan, hash, err := ParsePlan([]byte(`{"plan":[{"risk":"disappearance","action":"quarterly drill","owner":"ops","due":"2026-06-30","status":"open"}]}`))
	if err != nil || len(hash) != 64 || !bytes.Contains(plan, []byte(`"quarterly drill"`)) {
		t.Fatalf("valid plan: %s %s %v", plan, hash, err)
	}
	for name, body := range map[string]string{
		"not utf-8":     "{\"plan\":[{\"action\":\"\xff\",\"status\":\"open\"}]}",
		"two values":    `{"plan":[]} {}`,
		"unknown field": `{"plan":[],"x":1}`,
		"not an array":  `{"plan":{}}`,
	} {
		if _, _, err := ParsePlan([]byte(body)); herald.ErrorCode(err) != herald.CodeInvalidJSON {
			t.Errorf("%s: %v, want invalid_json", name, err)
		}
	}
	for name, body := range map[string]string{
		"missing":   `{}`,
		"no action": `{"plan":[{"status":"open"}]}`,
		"bad date":  `{"plan":[{"action":"a","status":"open","due":"30/06/2026"}]}`,
		"bad state": `{"plan":[{"action":"a","status":"later"}]}`,
		"NUL":       `{"plan":[{"action":"a\u0000","status":"open"}]}`,
	} {
		if _, _, err := ParsePlan([]byte(body)); herald.ErrorCode(err) != herald.CodeValidation {
			t.Errorf("%s: %v, want validation_failed", name, err)
		}
	}
}

func TestLikelihoodFollowsControls(t *testing.T) {
	ok, bad := Control{OK: true}, Control{}
	for want, cs := range map[string][]Control{
		Negligible: {ok, ok}, Limited: {ok, bad, ok}, Significant: {bad, bad, ok}, Maximum: {bad, bad},
	} {
		if got := likelihood(cs); got != want {
			t.Errorf("likelihood(%v) = %s, want %s", cs, got, want)
		}
	}
}

// TestRoPACSVNeutralisesFormulas: an organisation named like a formula
// stays text in a spreadsheet.
func TestRoPACSVNeutralisesFormulas(t *testing.T) {
	r := &Report{Org: OrgInfo{Name: "=HYPERLINK(\"x\")"}, Context: Context{Categories: []Category{{ID: "contacts", Name: "Contact identifiers"}}}}
	var b bytes.Buffer
	if err := r.RoPA().WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != `'=HYPERLINK("x")` {
		t.Fatalf("rows = %q, %v", rows, err)
	}
}
