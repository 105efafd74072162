package dpia

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"
)

// Every human-readable format renders the same document, built once from
// the Report, so Markdown, HTML and PDF cannot disagree with the JSON or
// with each other.

// Section titles, in order (tests check every format carries each one).
var SectionTitles = []string{
	"1. Context and data map",
	"2. Principles and rights",
	"3. Risks",
	"4. Action plan",
	"5. Validation",
}

type section struct {
	title  string
	blocks []block
}

type block struct {
	heading string // a sub-heading
	text    string
	bullets []string
	table   *table
}

type table struct {
	head []string
	rows [][]string
}

func ts(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func (r *Report) document() []section {
	var cats table
	cats.head = []string{"Category", "Stored in", "Purpose", "Legal bases", "Read by", "Flows to", "Retention", "Subjects"}
	for _, c := range r.Context.Categories {
		var bases []string
		for _, b := range c.LegalBases {
			switch {
			case b.Records < 0:
				bases = append(bases, b.Basis)
			case b.Purpose != "":
				bases = append(bases, fmt.Sprintf("%s (%s): %d", b.Basis, b.Purpose, b.Records))
			default:
				bases = append(bases, fmt.Sprintf("%s: %d", b.Basis, b.Records))
			}
		}
		if len(bases) == 0 {
			bases = []string{"no records yet"}
		}
		var readers []string
		for _, rd := range c.ReadBy {
			readers = append(readers, fmt.Sprintf("%s (%d)", rd.Role, rd.Principals))
		}
		if len(readers) == 0 {
			readers = []string{"operators of the deployment only"}
		}
		ret := c.Retention.Period + ": " + c.Retention.Rule
		if c.Retention.LastRun != nil {
			ret += fmt.Sprintf("; last run %s (seq %d), removed %d", ts(c.Retention.LastRun.At), c.Retention.LastRun.Seq, c.Retention.LastRun.Removed)
		}
		flows := strings.Join(c.FlowsTo, "; ")
		if flows == "" {
			flows = "none"
		}
		name := c.Name
		if c.Pseudonymous {
			name += " (pseudonymous)"
		}
		var fields []string
		for _, f := range c.Fields {
			s := f.Name
			if f.Optional {
				s += " (optional"
				if f.Filled != nil {
					s += fmt.Sprintf(", set for %d", *f.Filled)
				}
				s += ")"
			}
			fields = append(fields, s)
		}
		cats.rows = append(cats.rows, []string{name + ": " + strings.Join(fields, ", "), strings.Join(c.Storage, ", "), c.Purpose,
			strings.Join(bases, "; "), strings.Join(readers, ", "), flows, ret, fmt.Sprint(c.Subjects)})
	}
	var flows table
	flows.head = []string{"Flow", "Data", "Protection", "In use"}
	for _, f := range r.Context.Flows {
		flows.rows = append(flows.rows, []string{f.To, strings.Join(f.Data, ", "), f.Protection, yesNo(f.Configured)})
	}
	schema := fmt.Sprintf("The live schema has %d tables. Undeclared tables: %s. Declared tables missing: %s.",
		r.Context.Schema.Tables, listOrNone(r.Context.Schema.Undeclared), listOrNone(r.Context.Schema.Missing))

	c := r.Principles.Consent
	var optouts []string
	for _, k := range sortedKeys(c.OptOutBy) {
		optouts = append(optouts, fmt.Sprintf("%s: %d", k, c.OptOutBy[k]))
	}
	var rights table
	rights.head = []string{"Right", "How Herald serves it"}
	for _, rt := range r.Principles.Rights {
		rights.rows = append(rights.rows, []string{rt.Right, rt.How})
	}

	var risks []block
	for _, rk := range r.Risks {
		var ct table
		ct.head = []string{"Control", "Live evidence", "Holds"}
		for _, cl := range rk.Controls {
			ct.rows = append(ct.rows, []string{cl.Measure, cl.Evidence, yesNo(cl.OK)})
		}
		risks = append(risks, block{heading: rk.Scenario,
			text: fmt.Sprintf("Impact: %s. Severity: %s. Likelihood: %s.", rk.Impact, rk.Severity, rk.Likelihood)},
			block{table: &ct})
	}
	var plan table
	plan.head = []string{"Risk", "Action", "Owner", "Due", "Status"}
	for _, a := range r.ActionPlan {
		plan.rows = append(plan.rows, []string{a.Risk, a.Action, orDash(a.Owner), orDash(a.Due), a.Status})
	}
	planBlocks := []block{{table: &plan}}
	if len(plan.rows) == 0 {
		planBlocks = []block{{text: "No open actions."}}
	}
	v := r.Validation
	val := []block{}
	if v.Approved != nil {
		val = append(val, block{text: fmt.Sprintf("Last approval: report %s approved by %s at %s (ledger seq %d), residual risk %s.",
			v.Approved.ReportHash, v.Approved.By, ts(v.Approved.At), v.Approved.Seq, v.Approved.ResidualRisk)})
	} else {
		val = append(val, block{text: "No DPIA has been approved yet."})
	}
	if v.PreviousGenerated != nil {
		val = append(val, block{text: fmt.Sprintf("Previous report generated at %s (ledger seq %d), hash %s.",
			ts(v.PreviousGenerated.At), v.PreviousGenerated.Seq, v.PreviousGenerated.ReportHash)})
	}
	val = append(val, block{text: fmt.Sprintf("This report's hash is %s; generating it recorded a dpia.generated ledger entry with that hash.", r.Hash)})

	return []section{
		{title: SectionTitles[0], blocks: []block{
			{text: r.Context.Purpose},
			{text: "Controller: " + r.Context.Controller + "."},
			{heading: "Personal data held", table: &cats},
			{heading: "Flows", table: &flows},
			{heading: "Schema check", text: schema},
		}},
		{title: SectionTitles[1], blocks: []block{
			{heading: "Minimisation", bullets: r.Principles.Minimisation},
			{heading: "Consent and opt-out", bullets: []string{
				fmt.Sprintf("%d contacts, %d opted out (%s)", c.Contacts, c.OptedOut, listOrNone(optouts)),
				"opt-out keywords: " + strings.Join(c.OptOutKeywords, ", "),
				fmt.Sprintf("%d of %d actions in the period were denied by policy", c.DeniedInPeriod, c.ActionsInPeriod),
				fmt.Sprintf("%d contacts erased in the period", r.Principles.SubjectRequests.Erasures),
				fmt.Sprintf("data-subject requests in the period: %d received %v, %d completed (%d on time, longest %d h); %d open now, %d overdue",
					r.Principles.SubjectRequests.Received, r.Principles.SubjectRequests.ByKind, r.Principles.SubjectRequests.Completed,
					r.Principles.SubjectRequests.OnTime, r.Principles.SubjectRequests.MaxResponseHours, r.Principles.SubjectRequests.Open, r.Principles.SubjectRequests.Overdue),
			}},
			{heading: "Rights of the people concerned", table: &rights},
		}},
		{title: SectionTitles[2], blocks: append(risks, block{heading: "Incidents (Art. 33)", text: incidentText(r.Incidents)})},
		{title: SectionTitles[3], blocks: planBlocks},
		{title: SectionTitles[4], blocks: val},
	}
}

func (r *Report) title() string {
	return fmt.Sprintf("Data protection impact assessment: %s", r.Org.Name)
}

func (r *Report) subtitle() string {
	return fmt.Sprintf("Generated %s from the live system (schema %s); period %s to %s.",
		ts(r.GeneratedAt), r.Schema, ts(r.Period.From), ts(r.Period.To))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Markdown writes the report as CommonMark (GitHub tables).
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", r.title(), r.subtitle())
	for _, s := range r.document() {
		fmt.Fprintf(&b, "## %s\n\n", s.title)
		for _, bl := range s.blocks {
			if bl.heading != "" {
				fmt.Fprintf(&b, "### %s\n\n", bl.heading)
			}
			if bl.text != "" {
				fmt.Fprintf(&b, "%s\n\n", bl.text)
			}
			for _, x := range bl.bullets {
				fmt.Fprintf(&b, "- %s\n", x)
			}
			if len(bl.bullets) > 0 {
				b.WriteString("\n")
			}
			if t := bl.table; t != nil {
				b.WriteString("| " + strings.Join(t.head, " | ") + " |\n|")
				for range t.head {
					b.WriteString("---|")
				}
				b.WriteString("\n")
				for _, row := range t.rows {
					cells := make([]string, len(row))
					for i, c := range row {
						cells[i] = mdCell(c)
					}
					b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
				}
				b.WriteString("\n")
			}
		}
	}
	fmt.Fprintf(&b, "---\nReport hash: `%s`\n", r.Hash)
	_, err := io.WriteString(w, b.String())
	return err
}

var htmlTemplate = template.Must(template.New("dpia").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#111}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f3f3f3}footer{margin-top:2rem;font-family:monospace;font-size:.8rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Subtitle}}</p>
{{range .Sections}}<section><h2>{{.Title}}</h2>
{{range .Blocks}}{{if .Heading}}<h3>{{.Heading}}</h3>{{end}}{{if .Text}}<p>{{.Text}}</p>{{end}}
{{if .Bullets}}<ul>{{range .Bullets}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{with .Table}}<table><thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</tbody></table>{{end}}
{{end}}</section>
{{end}}<footer>Report hash: {{.Hash}}</footer></body></html>
`))

// HTML writes the report as one self-contained HTML page.
func (r *Report) HTML(w io.Writer) error {
	type tbl struct {
		Head []string
		Rows [][]string
	}
	type blk struct {
		Heading, Text string
		Bullets       []string
		Table         *tbl
	}
	type sec struct {
		Title  string
		Blocks []blk
	}
	var secs []sec
	for _, s := range r.document() {
		out := sec{Title: s.title}
		for _, b := range s.blocks {
			x := blk{Heading: b.heading, Text: b.text, Bullets: b.bullets}
			if b.table != nil {
				x.Table = &tbl{Head: b.table.head, Rows: b.table.rows}
			}
			out.Blocks = append(out.Blocks, x)
		}
		secs = append(secs, out)
	}
	return htmlTemplate.Execute(w, map[string]any{"Title": r.title(), "Subtitle": r.subtitle(), "Sections": secs, "Hash": r.Hash})
}

func incidentText(in Incidents) string {
	s := fmt.Sprintf("%d breaches recorded in the period; %d open, %d past the 72-hour deadline; %d notified on time, %d late.",
		in.InPeriod, in.Open, in.Overdue, in.NotifiedOnTime, in.NotifiedLate)
	if in.Last != nil {
		s += fmt.Sprintf(" Last: %s detected %s (%s), %d people concerned.", in.Last.ID, ts(in.Last.DetectedAt), in.Last.Status, in.Last.AffectedSubjects)
	}
	return s
}
