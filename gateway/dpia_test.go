package gateway_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

var updateGolden = flag.Bool("update-dpia", false, "rewrite testdata/dpia_golden.json")

// seedDPIA gives the organisation a realistic history through the API:
// contacts under three legal bases, a delivered and a denied action, an
// opt-out, a signed checkpoint and a retention run.
func seedDPIA(t testing.TB, e *env) {
	t.Helper()
	co, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator]
	imp := e.do("POST", "/v1/contacts:import", co, []map[string]any{
		{"chat_id": "5550001", "timezone": "Europe/Berlin", "language": "de", "purpose": "marketing", "legal_basis": "consent", "source": "signup form"},
		{"chat_id": "5550002", "purpose": "transactional", "legal_basis": "contract", "source": "order 17"},
		{"chat_id": "5550002", "purpose": "marketing", "legal_basis": "consent", "source": "checkout box"},
		{"chat_id": "5550003", "timezone": "Europe/Paris", "purpose": "support", "legal_basis": "legitimate_interest", "source": "ticket 9"},
	})
	if imp.status != http.StatusOK {
		t.Fatalf("import = %d %s", imp.status, imp.raw)
	}
	ok := e.do("POST", "/v1/actions", op, e.sendReq("5550002", "transactional", "Your order shipped"))
	if ok.status != http.StatusAccepted && ok.status != http.StatusCreated {
		t.Fatalf("submit = %d %s", ok.status, ok.raw)
	}
	denied := e.do("POST", "/v1/actions", op, e.sendReq("5550003", "marketing", "Buy now"))
	if denied.str("action", "status") != "denied" {
		t.Fatalf("marketing without a basis = %d %s", denied.status, denied.raw)
	}
	e.deliverAll()
	contacts := imp.body["contacts"].([]any)
	if r := e.do("POST", "/v1/contacts/"+contacts[0].(string)+"/opt-out", op, nil); r.status != http.StatusOK {
		t.Fatalf("opt-out = %d %s", r.status, r.raw)
	}
	if r := e.do("POST", "/v1/ledger/checkpoint", co, nil); r.status/100 != 2 {
		t.Fatalf("checkpoint = %d %s", r.status, r.raw)
	}
	// The retention job's run, as it runs it, a day later.
	e.advance(24 * time.Hour)
	if n, err := e.s.PurgeLedgerPayloads(context.Background(), e.org.ID, e.s.Now().Add(-time.Hour)); err != nil || n == 0 {
		t.Fatalf("retention run = %d, %v", n, err)
	}
}

var (
	timePattern   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}| UTC)?`)
	hashPattern   = regexp.MustCompile(`[0-9a-f]{64}`)
	tablesPattern = regexp.MustCompile(`"tables": [0-9]+`)
)

// normalise replaces what differs between runs (ids, times, hashes).
func normalise(raw []byte, e *env) string {
	s := strings.ReplaceAll(string(raw), e.org.ID, "<org>")
	s = timePattern.ReplaceAllString(s, "<time>")
	// The table count grows with every migration; which tables are
	// classified is checked by TestDPIAEvidenceIsLive instead.
	s = tablesPattern.ReplaceAllString(s, `"tables": "<n>"`)
	return hashPattern.ReplaceAllString(s, "<hash>")
}

func getDPIA(t *testing.T, e *env, token string) (response, dpia.Report) {
	t.Helper()
	return dpiaVia(t, e, "GET", token)
}

// issueDPIA issues (and records) a report.
func issueDPIA(t *testing.T, e *env, token string) (response, dpia.Report) {
	t.Helper()
	return dpiaVia(t, e, "POST", token)
}

func dpiaVia(t *testing.T, e *env, method, token string) (response, dpia.Report) {
	t.Helper()
	r := e.do(method, "/v1/dpia", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("%s /v1/dpia = %d %s", method, r.status, r.raw)
	}
	var rep dpia.Report
	if err := json.Unmarshal(r.raw, &rep); err != nil {
		t.Fatal(err)
	}
	return r, rep
}

// TestDPIAGolden: the auditor's report of a seeded organisation, on both
// stores, equals the reviewed golden file (ids, times and hashes masked):
// the two stores must agree figure for figure.
func TestDPIAGolden(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		seedDPIA(t, e)
		r, rep := getDPIA(t, e, e.keys[herald.RoleAuditor])
		if rep.Hash == "" || r.header.Get("X-Herald-Report-Hash") != rep.Hash {
			t.Fatalf("report hash %q, header %q", rep.Hash, r.header.Get("X-Herald-Report-Hash"))
		}
		var indented bytes.Buffer
		if err := json.Indent(&indented, r.raw, "", "  "); err != nil {
			t.Fatal(err)
		}
		got := normalise(indented.Bytes(), e) + "\n"
		path := filepath.Join("testdata", "dpia_golden.json")
		if *updateGolden && b == storetest.SQLite {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read golden (run with -update-dpia to create it): %v", err)
		}
		if got != string(want) {
			t.Errorf("DPIA differs from %s (re-run with -update-dpia and review the diff):\n%s", path, lineDiff(string(want), got))
		}
	})
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			out = append(out, "line "+strconv.Itoa(i+1)+":\n  want "+w+"\n  got  "+g)
			if len(out) == 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestDPIAEvidenceIsLive checks the figures the golden file only shows:
// legal bases counted from the consent records, the ledger verified up to
// its head, the checkpoint, the retention run, and nothing of another
// organisation.
func TestDPIAEvidenceIsLive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		seedDPIA(t, e)
		// Another organisation with its own contact must not count.
		ctx := context.Background()
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otherCo := e.newKey(other.ID, "other-co", herald.RoleComplianceOfficer)
		if r := e.do("POST", "/v1/contacts:import", otherCo, []map[string]any{{"chat_id": "9876543210123", "purpose": "marketing", "legal_basis": "consent", "source": "x"}}); r.status != http.StatusOK {
			t.Fatalf("import other = %d %s", r.status, r.raw)
		}
		_, rep := getDPIA(t, e, e.keys[herald.RoleAuditor])
		cat := map[string]dpia.Category{}
		for _, c := range rep.Context.Categories {
			cat[c.ID] = c
		}
		bases := map[string]int{}
		for _, lb := range cat["contacts"].LegalBases {
			bases[lb.Basis+"/"+lb.Purpose] = lb.Records
		}
		want := map[string]int{"consent/marketing": 2, "contract/transactional": 1, "legitimate_interest/support": 1}
		for k, n := range want {
			if bases[k] != n {
				t.Errorf("legal basis %s = %d, want %d (all: %v)", k, bases[k], n, bases)
			}
		}
		if cat["contacts"].Subjects != 3 || rep.Principles.Consent.OptedOut != 1 {
			t.Errorf("contacts = %d, opted out = %d; want 3 and 1", cat["contacts"].Subjects, rep.Principles.Consent.OptedOut)
		}
		if rep.Principles.Consent.DeniedInPeriod != 1 || rep.Principles.Consent.ActionsInPeriod != 2 {
			t.Errorf("denied %d of %d actions, want 1 of 2", rep.Principles.Consent.DeniedInPeriod, rep.Principles.Consent.ActionsInPeriod)
		}
		if lr := cat["content_previews"].Retention.LastRun; lr == nil || lr.Removed == 0 {
			t.Errorf("content previews: retention run not shown: %+v", cat["content_previews"].Retention)
		}
		size, err := e.s.LedgerSize(ctx, e.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		risks := map[string]dpia.Risk{}
		for _, r := range rep.Risks {
			risks[r.ID] = r
		}
		mod := risks["unwanted_modification"]
		// A preview records nothing: the ledger was verified to its head.
		wantVerified := "verified up to seq " + strconv.Itoa(int(size-1))
		if len(mod.Controls) != 2 || !mod.Controls[0].OK || !strings.Contains(mod.Controls[0].Evidence, wantVerified) || !mod.Controls[1].OK {
			t.Errorf("unwanted modification controls = %+v, want %q and a signed checkpoint", mod.Controls, wantVerified)
		}
		if mod.Likelihood != dpia.Negligible {
			t.Errorf("likelihood of modification = %s with every control evidenced", mod.Likelihood)
		}
		if d := risks["disappearance"]; d.Controls[0].OK || !strings.Contains(d.Controls[0].Evidence, "no recovery drill") {
			t.Errorf("disappearance without a drill = %+v", d.Controls[0])
		}
		acc := risks["illegitimate_access"]
		if len(acc.Controls) != 4 || !strings.Contains(acc.Controls[0].Evidence, "people with admin: 1") || !strings.Contains(acc.Controls[1].Evidence, "without expiry") || acc.Controls[1].OK ||
			!strings.HasPrefix(acc.Controls[2].Measure, "breach register") || !acc.Controls[2].OK {
			t.Errorf("illegitimate access controls = %+v", acc.Controls)
		}
		if len(rep.Context.Schema.Missing) != 0 {
			t.Errorf("declared tables missing from the live schema: %v", rep.Context.Schema.Missing)
		}
		// A table added without its DPIA entry must fail here: classify it
		// in dpia/catalog.go (a category, or nonPersonal).
		if len(rep.Context.Schema.Undeclared) != 0 {
			t.Errorf("tables not classified in the DPIA data map: %v", rep.Context.Schema.Undeclared)
		}
		// Privacy: counts, never the people.
		for _, secret := range []string{"5550001", "5550002", "5550003", "9876543210123", "Your order shipped", "signup form"} {
			r := e.do("GET", "/v1/dpia?format=markdown", e.keys[herald.RoleAuditor], nil)
			if strings.Contains(string(r.raw), secret) {
				t.Errorf("the report contains %q", secret)
			}
		}
		// The other organisation sees its own single contact.
		_, orep := getDPIA(t, e, e.newKey(other.ID, "other-aud", herald.RoleAuditor))
		if orep.Principles.Consent.Contacts != 1 || orep.Org.ID != other.ID {
			t.Errorf("other org's report = %d contacts, org %s", orep.Principles.Consent.Contacts, orep.Org.ID)
		}
	})
}

// TestDPIARendersEverySection: Markdown, HTML and PDF (text extracted with
// pdftotext) carry every section, every category, every risk and the hash.
func TestDPIARendersEverySection(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext is required (Debian poppler-utils; scripts/test installs it)")
	}
	e := newEnv(t, storetest.SQLite)
	seedDPIA(t, e)
	aud := e.keys[herald.RoleAuditor]
	_, rep := getDPIA(t, e, aud)
	var must []string
	must = append(must, dpia.SectionTitles...)
	for _, c := range rep.Context.Categories {
		must = append(must, c.Name)
	}
	for _, r := range rep.Risks {
		must = append(must, r.Scenario)
	}
	for _, f := range []struct{ format, ctype string }{
		{"markdown", "text/markdown"}, {"html", "text/html"}, {"pdf", "application/pdf"},
	} {
		r := e.do("GET", "/v1/dpia?format="+f.format, aud, nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), f.ctype) {
			t.Fatalf("%s: %d %s", f.format, r.status, r.header.Get("Content-Type"))
		}
		text := string(r.raw)
		if f.format == "pdf" {
			if !bytes.HasPrefix(r.raw, []byte("%PDF-")) {
				t.Fatalf("not a PDF: %q", r.raw[:min(len(r.raw), 20)])
			}
			pdf := filepath.Join(t.TempDir(), "dpia.pdf")
			if err := os.WriteFile(pdf, r.raw, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
			if err != nil {
				t.Fatalf("pdftotext: %v", err)
			}
			text = strings.Join(strings.Fields(string(out)), " ")
		}
		if f.format == "html" {
			text = strings.ReplaceAll(text, "&#39;", "'")
		}
		for _, m := range must {
			if !strings.Contains(text, strings.Join(strings.Fields(m), " ")) {
				t.Errorf("%s lacks %q", f.format, m)
			}
		}
		// Each format is its own generation, with its own hash in it.
		if h := r.header.Get("X-Herald-Report-Hash"); h == "" || !strings.Contains(text, h) {
			t.Errorf("%s does not carry its hash %q", f.format, h)
		}
	}
}

// TestDPIAFollowsConfiguration: granting a role changes who can read what;
// a shorter retention changes the data map.
func TestDPIAFollowsConfiguration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud := e.keys[herald.RoleAuditor]
		readers := func(rep dpia.Report, cat string) map[string]int {
			out := map[string]int{}
			for _, c := range rep.Context.Categories {
				if c.ID == cat {
					for _, r := range c.ReadBy {
						out[r.Role] = r.Principals
					}
				}
			}
			return out
		}
		e.newKey(e.org.ID, "tg:4242", herald.RoleOperator)
		_, before := getDPIA(t, e, aud)
		if r := e.do("POST", "/v1/roles/bindings", e.keys[herald.RoleAdmin], map[string]any{"principal": "tg:4242", "role": "auditor"}); r.status/100 != 2 {
			t.Fatalf("grant = %d %s", r.status, r.raw)
		}
		_, after := getDPIA(t, e, aud)
		if readers(before, "ledger_refs")["auditor"] != 1 || readers(after, "ledger_refs")["auditor"] != 2 {
			t.Errorf("ledger readers before %v, after %v: want auditor 1 then 2", readers(before, "ledger_refs"), readers(after, "ledger_refs"))
		}
		if readers(after, "staff")["auditor"] != 0 || readers(after, "staff")["admin"] != 1 {
			t.Errorf("API keys are read by admins only, got %v", readers(after, "staff"))
		}
		if before.Hash == after.Hash {
			t.Error("the report hash did not change with the configuration")
		}
		// Retention comes from the live configuration (w10b's per-org
		// retention plugs in as a RetentionSource).
		g := &dpia.Generator{Store: e.s, Retention: fixedRetention{dpia.RetentionPolicy{Payloads: 7 * 24 * time.Hour, Decisions: 30 * 24 * time.Hour}}}
		rep, err := g.Generate(context.Background(), e.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Context.Categories {
			if c.ID == "content_previews" && c.Retention.Period != "7 days" {
				t.Errorf("content previews retention = %q, want 7 days", c.Retention.Period)
			}
		}
	})
}

type fixedRetention struct{ p dpia.RetentionPolicy }

func (f fixedRetention) Retention(context.Context, string) (dpia.RetentionPolicy, error) {
	return f.p, nil
}

// TestDPIAAccessAndValidation: only auditors and compliance officers read
// reports; compliance officers edit the plan and approve; every step is a
// ledger entry; bad input is typed and changes nothing.
func TestDPIAAccessAndValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		aud, co := e.keys[herald.RoleAuditor], e.keys[herald.RoleComplianceOfficer]
		for _, role := range []string{herald.RoleOperator, herald.RoleApprover, herald.RoleAdmin} {
			for _, path := range []string{"/v1/dpia", "/v1/dpia/ropa"} {
				for _, m := range []string{"GET", "POST"} {
					if r := e.do(m, path, e.keys[role], nil); r.status != http.StatusForbidden || r.str("code") != "forbidden" {
						t.Errorf("%s %s %s = %d %s", role, m, path, r.status, r.raw)
					}
				}
			}
		}
		// A preview records nothing; issuing records the hash.
		if _, preview := getDPIA(t, e, aud); preview.Hash == "" {
			t.Fatal("preview without a hash")
		}
		ctx := context.Background()
		if gen, _ := e.s.LastLedgerEntry(ctx, e.org.ID, dpia.KindGenerated); gen != nil {
			t.Fatalf("a preview was recorded: %+v", gen)
		}
		r, rep := issueDPIA(t, e, aud)
		gen, err := e.s.LastLedgerEntry(ctx, e.org.ID, dpia.KindGenerated)
		if err != nil || gen == nil || gen.Attrs["report_hash"] != rep.Hash || gen.Actor != herald.RoleAuditor+"-1" || r.header.Get("X-Herald-Ledger-Seq") != strconv.Itoa(int(gen.Seq)) {
			t.Fatalf("dpia.generated = %+v, %v; report %s", gen, err, rep.Hash)
		}
		plan := map[string]any{"plan": []map[string]any{{"risk": "disappearance", "action": "run a recovery drill every quarter", "owner": "ops lead", "due": "2026-06-30", "status": "open"}}}
		before := e.counts()
		for _, bad := range []struct {
			name   string
			token  string
			method string
			path   string
			body   any
			status int
			code   string
		}{
			{"auditor edits plan", aud, "PUT", "/v1/dpia/plan", plan, 403, "forbidden"},
			{"auditor approves", aud, "POST", "/v1/dpia/approvals", map[string]any{"report_hash": rep.Hash, "residual_risk": "low"}, 403, "forbidden"},
			{"unknown format", aud, "GET", "/v1/dpia?format=docx", nil, 422, "validation_failed"},
			{"unknown ropa format", aud, "GET", "/v1/dpia/ropa?format=xlsx", nil, 422, "validation_failed"},
			{"plan invalid utf-8", co, "PUT", "/v1/dpia/plan", []byte("{\"plan\":[{\"action\":\"a\xff\",\"status\":\"open\"}]}"), 400, "invalid_json"},
			{"plan NUL", co, "PUT", "/v1/dpia/plan", []byte(`{"plan":[{"action":"a\u0000b","status":"open"}]}`), 422, "validation_failed"},
			{"plan bad date", co, "PUT", "/v1/dpia/plan", map[string]any{"plan": []map[string]any{{"action": "x", "status": "open", "due": "soon"}}}, 422, "validation_failed"},
			{"plan bad status", co, "PUT", "/v1/dpia/plan", map[string]any{"plan": []map[string]any{{"action": "x", "status": "maybe"}}}, 422, "validation_failed"},
			{"plan missing", co, "PUT", "/v1/dpia/plan", map[string]any{}, 422, "validation_failed"},
			{"plan unknown field", co, "PUT", "/v1/dpia/plan", map[string]any{"plan": []any{}, "x": 1}, 400, "invalid_json"},
			{"approve unknown hash", co, "POST", "/v1/dpia/approvals", map[string]any{"report_hash": strings.Repeat("ab", 32), "residual_risk": "low"}, 404, "not_found"},
			{"approve bad hash", co, "POST", "/v1/dpia/approvals", map[string]any{"report_hash": "x", "residual_risk": "none"}, 422, "validation_failed"},
		} {
			r := e.do(bad.method, bad.path, bad.token, bad.body)
			if r.status != bad.status || r.str("code") != bad.code {
				t.Errorf("%s: %d %s, want %d %s", bad.name, r.status, r.raw, bad.status, bad.code)
			}
		}
		if after := e.counts(); after != before {
			t.Errorf("refused requests changed state: %+v → %+v", before, after)
		}
		if r := e.do("PUT", "/v1/dpia/plan", co, plan); r.status != http.StatusOK {
			t.Fatalf("edit plan = %d %s", r.status, r.raw)
		}
		ap := e.do("POST", "/v1/dpia/approvals", co, map[string]any{"report_hash": rep.Hash, "residual_risk": "low"})
		if ap.status != http.StatusCreated {
			t.Fatalf("approve = %d %s", ap.status, ap.raw)
		}
		_, next := getDPIA(t, e, aud)
		if len(next.ActionPlan) != 1 || next.ActionPlan[0].Owner != "ops lead" {
			t.Errorf("action plan = %+v", next.ActionPlan)
		}
		v := next.Validation
		if v.Approved == nil || v.Approved.ReportHash != rep.Hash || v.Approved.By != herald.RoleComplianceOfficer+"-1" || v.Approved.ResidualRisk != "low" {
			t.Errorf("validation = %+v", v.Approved)
		}
		if v.PreviousGenerated == nil || v.PreviousGenerated.ReportHash != rep.Hash {
			t.Errorf("previous generated = %+v, want %s", v.PreviousGenerated, rep.Hash)
		}
		for _, kind := range []string{store.KindDPIAPlanChanged, dpia.KindApproved} {
			if en, _ := e.s.LastLedgerEntry(ctx, e.org.ID, kind); en == nil {
				t.Errorf("no %s ledger entry", kind)
			}
		}
	})
}

// TestRoPAExports: the record of processing in JSON and CSV, one activity
// per data category, tied to the DPIA's hash.
func TestRoPAExports(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		seedDPIA(t, e)
		aud := e.keys[herald.RoleAuditor]
		r := e.do("POST", "/v1/dpia/ropa", aud, nil)
		if r.status != http.StatusOK {
			t.Fatalf("ropa = %d %s", r.status, r.raw)
		}
		var ropa dpia.RoPA
		if err := json.Unmarshal(r.raw, &ropa); err != nil {
			t.Fatal(err)
		}
		if ropa.Schema != dpia.RoPASchemaVersion || ropa.ReportHash != r.header.Get("X-Herald-Report-Hash") || ropa.Controller.Name != "Acme" {
			t.Errorf("ropa header = %s %s %+v", ropa.Schema, ropa.ReportHash, ropa.Controller)
		}
		var contacts *dpia.Processing
		for i, a := range ropa.Activities {
			if a.Activity == "Contact identifiers" {
				contacts = &ropa.Activities[i]
			}
		}
		if contacts == nil || strings.Join(contacts.LegalBases, ",") != "consent,contract,legitimate_interest" || len(contacts.SecurityMeasures) == 0 {
			t.Fatalf("contacts activity = %+v", contacts)
		}
		c := e.do("GET", "/v1/dpia/ropa?format=csv", aud, nil)
		rows, err := csv.NewReader(bytes.NewReader(c.raw)).ReadAll()
		if err != nil || c.status != http.StatusOK {
			t.Fatalf("csv = %d %v", c.status, err)
		}
		if len(rows) != len(ropa.Activities)+1 || rows[0][1] != "activity" || rows[1][0] != "Acme" || rows[1][10] != c.header.Get("X-Herald-Report-Hash") {
			t.Errorf("csv rows = %d (want %d), first %v", len(rows), len(ropa.Activities)+1, rows[:2])
		}
	})
}
