package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDPIAServedAndCLI: the real binary serves GET /v1/dpia to an auditor
// key created with the CLI, with the ledger verified by the server's own
// checkpoint keys and the deployment's pepper; then `herald dpia` writes a
// PDF and a RoPA CSV from the same database, each recorded in the ledger.
func TestDPIAServedAndCLI(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required (Debian poppler-utils; scripts/test installs it)")
	}
	dir := t.TempDir()
	p := start(t, dir, "")
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()
	out, err := run(t, nil, "keys", "create", "--data-dir", dir, "--principal", "auditor-ann", "--role", "auditor")
	tok := strings.TrimSpace(lastLine(out))
	if err != nil || !keyPattern.MatchString(tok) {
		t.Fatalf("keys create: %v %s", err, out)
	}
	p = start(t, dir, "")
	rep := p.call(t, "POST", "/v1/dpia", tok, nil)
	if rep["schema"] != "herald.dpia/v1" {
		t.Fatalf("GET /v1/dpia = %v", rep)
	}
	risks, _ := rep["risks"].([]any)
	var modification, access map[string]any
	for _, r := range risks {
		m := r.(map[string]any)
		switch m["id"] {
		case "unwanted_modification":
			modification = m
		case "illegitimate_access":
			access = m
		}
	}
	ledgerControl := modification["controls"].([]any)[0].(map[string]any)
	if ledgerControl["ok"] != true || !strings.Contains(ledgerControl["evidence"].(string), "verified up to seq") {
		t.Errorf("served report's ledger control = %v", ledgerControl)
	}
	var pepper map[string]any
	for _, c := range access["controls"].([]any) {
		if m := c.(map[string]any); m["measure"] == "pseudonymous ledger refs" {
			pepper = m
		}
	}
	if pepper == nil || pepper["ok"] != true {
		t.Errorf("served report's pseudonymisation control = %v", pepper)
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	_, _ = p.cmd.Process.Wait()

	pdf := filepath.Join(dir, "dpia.pdf")
	if out, err := run(t, nil, "dpia", "--data-dir", dir, "--format", "pdf", "--out", pdf); err != nil || !strings.Contains(out, "recorded at ledger seq") {
		t.Fatalf("herald dpia --format pdf: %v %s", err, out)
	}
	text, err := exec.Command("pdftotext", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(text)), " ")
	for _, want := range []string{"1. Context and data map", "5. Validation", "not verified: no ledger verifier configured"} {
		if !strings.Contains(flat, want) {
			t.Errorf("CLI PDF lacks %q", want)
		}
	}
	csv, err := run(t, nil, "dpia", "--data-dir", dir, "--format", "ropa-csv")
	if err != nil || !strings.Contains(csv, "controller,activity,purpose,legal_bases") || strings.Count(csv, "\n") < 5 {
		t.Fatalf("herald dpia --format ropa-csv: %v %s", err, csv)
	}
	if out, err := run(t, nil, "dpia", "--data-dir", dir, "--format", "docx"); err == nil || !strings.Contains(out, "--format must be") {
		t.Errorf("bad format: %v %s", err, out)
	}
	// Each generation is in the ledger: the served one, the PDF and the CSV.
	exp, err := run(t, nil, "ledger", "export", "--data-dir", dir)
	if err != nil {
		t.Fatalf("ledger export: %v %s", err, exp)
	}
	if n := bytes.Count([]byte(exp), []byte(`"kind":"dpia.generated"`)); n != 3 {
		t.Errorf("dpia.generated entries = %d, want 3", n)
	}
}
