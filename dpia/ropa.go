package dpia

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// RoPASchemaVersion names the JSON schema of RoPA.
const RoPASchemaVersion = "herald.ropa/v1"

// RoPA is the record of processing activities (GDPR Art. 30(1)), derived
// from the same generated report, so the two never disagree.
type RoPA struct {
	Schema      string       `json:"schema"`
	Controller  OrgInfo      `json:"controller"`
	GeneratedAt time.Time    `json:"generated_at"`
	ReportHash  string       `json:"dpia_report_hash"`
	Activities  []Processing `json:"activities"`
}

// Processing is one activity: Art. 30(1)(b)–(g).
type Processing struct {
	Activity         string   `json:"activity"`
	Purpose          string   `json:"purpose"`
	LegalBases       []string `json:"legal_bases"`
	DataSubjects     string   `json:"data_subjects"`
	DataCategories   []string `json:"data_categories"`
	Recipients       []string `json:"recipients"`
	Transfers        string   `json:"third_country_transfers"`
	Retention        string   `json:"retention"`
	SecurityMeasures []string `json:"security_measures"`
}

// RoPA derives the record of processing activities from the report.
func (r *Report) RoPA() RoPA {
	out := RoPA{Schema: RoPASchemaVersion, Controller: r.Org, GeneratedAt: r.GeneratedAt, ReportHash: r.Hash}
	var measures []string
	for _, rk := range r.Risks {
		for _, c := range rk.Controls {
			if c.OK {
				measures = append(measures, c.Measure)
			}
		}
	}
	measures = dedupe(measures)
	for _, c := range r.Context.Categories {
		p := Processing{Activity: c.Name, Purpose: c.Purpose, Retention: c.Retention.Period + " (" + c.Retention.Rule + ")",
			SecurityMeasures: measures, Transfers: "none"}
		for _, b := range c.LegalBases {
			p.LegalBases = append(p.LegalBases, b.Basis)
		}
		p.LegalBases = dedupe(p.LegalBases)
		sort.Strings(p.LegalBases)
		if p.LegalBases == nil {
			p.LegalBases = []string{}
		}
		for _, d := range categories {
			if d.id == c.ID && d.subjects == "staff" {
				p.DataSubjects = "the organisation's staff and API clients"
			}
		}
		if p.DataSubjects == "" {
			p.DataSubjects = "Telegram users the organisation messages (contacts)"
		}
		for _, f := range c.Fields {
			p.DataCategories = append(p.DataCategories, f.Name)
		}
		for _, rd := range c.ReadBy {
			p.Recipients = append(p.Recipients, "role "+rd.Role)
		}
		for _, f := range c.FlowsTo {
			p.Recipients = append(p.Recipients, f)
			if f == flowTelegram {
				p.Transfers = "Telegram (messages are delivered through Telegram's infrastructure outside the EEA; the organisation's transfer basis applies)"
			}
		}
		if p.Recipients == nil {
			p.Recipients = []string{}
		}
		out.Activities = append(out.Activities, p)
	}
	return out
}

// WriteCSV writes the record as CSV, one activity per row; list fields are
// joined with "; ".
func (p RoPA) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"controller", "activity", "purpose", "legal_bases", "data_subjects", "data_categories", "recipients",
		"third_country_transfers", "retention", "security_measures", "dpia_report_hash"}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("dpia: write RoPA CSV: %w", err)
	}
	for _, a := range p.Activities {
		row := []string{p.Controller.Name, a.Activity, a.Purpose, strings.Join(a.LegalBases, "; "), a.DataSubjects,
			strings.Join(a.DataCategories, "; "), strings.Join(a.Recipients, "; "), a.Transfers, a.Retention,
			strings.Join(a.SecurityMeasures, "; "), p.ReportHash}
		for i, c := range row {
			row[i] = csvSafe(c)
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("dpia: write RoPA CSV: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe neutralises spreadsheet formula injection: a cell that starts
// with =, +, - or @ (an organisation name, say) is prefixed with a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
