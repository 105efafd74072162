// Package dpia generates an organisation's data protection impact
// assessment (GDPR Art. 35(7), in the CNIL's structure) and its record of
// processing activities (Art. 30) from the live system: the data map comes
// from the code's declarations checked against the live schema, legal bases
// are counted from real consent records, readers come from the live Casbin
// model and role bindings, and every risk's controls carry evidence
// measured when the report is generated (ledger verified up to seq N, last
// signed checkpoint, last recovery drill, keys without expiry, admins).
//
// Invariants:
//   - A report MUST be generated, never written by hand: every figure in it
//     comes from a query or a verification run at generation time, so the
//     report cannot drift from the system it describes. The only
//     hand-edited part is the action plan, which is stored and ledgered.
//   - A report MUST NOT contain message text, contact fields, chat ids,
//     keys or tokens: it counts people, it never lists them.
//   - Every format (JSON, Markdown, HTML, PDF) MUST render from the same
//     Report value, and carry its hash; generating a report records
//     dpia.generated with that hash in the ledger, and approving it records
//     dpia.approved, so an auditor can prove which DPIA was in force on a date.
package dpia

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhq/herald/store"
)

// SchemaVersion names the JSON schema of Report (docs/dpia.md). A change
// that removes or renames a field MUST bump it.
const SchemaVersion = "herald.dpia/v1"

// Report is one organisation's DPIA. Its JSON form is the versioned schema.
type Report struct {
	Schema      string    `json:"schema"`
	Org         OrgInfo   `json:"org"`
	GeneratedAt time.Time `json:"generated_at"`
	// Period is the window the activity figures count (the last 30 days).
	Period     Period     `json:"period"`
	Context    Context    `json:"context"`
	Principles Principles `json:"principles"`
	Risks      []Risk     `json:"risks"`
	// Incidents is the breach register's state (Art. 33).
	Incidents  Incidents  `json:"incidents"`
	ActionPlan []Action   `json:"action_plan"`
	Validation Validation `json:"validation"`
	// Hash is the SHA-256 of the report's JSON with Hash empty (see Seal).
	Hash string `json:"hash"`
}

// OrgInfo names the organisation (the controller).
type OrgInfo struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Timezone string `json:"timezone"`
}

// Period is a half-open time window [From, To).
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Context is the description of the processing: what is held, where, why,
// under which basis, who reads it, where it flows and how long it is kept.
type Context struct {
	Purpose    string     `json:"purpose"`
	Controller string     `json:"controller"`
	Categories []Category `json:"data_categories"`
	Flows      []Flow     `json:"flows"`
	Schema     SchemaMap  `json:"schema"`
}

// Category is one category of personal data Herald holds.
type Category struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Fields       []Field      `json:"fields"`
	Storage      []string     `json:"storage"`
	Purpose      string       `json:"purpose"`
	LegalBases   []LegalBasis `json:"legal_bases"`
	ReadBy       []Reader     `json:"read_by"`
	FlowsTo      []string     `json:"flows_to"`
	Retention    Retention    `json:"retention"`
	Subjects     int          `json:"subjects"`
	Pseudonymous bool         `json:"pseudonymous"`
}

// Field is one field of a category; optional fields are minimisation levers.
type Field struct {
	Name     string `json:"name"`
	Optional bool   `json:"optional"`
	// Filled counts the records where an optional field is set (nil when
	// not counted).
	Filled *int `json:"filled,omitempty"`
}

// LegalBasis is a basis and how many records rely on it (-1: not counted
// per record, the basis is the processing's own).
type LegalBasis struct {
	Basis   string `json:"basis"`
	Purpose string `json:"purpose,omitempty"`
	Records int    `json:"records"`
}

// Reader is a role that may read a category, and how many principals of
// the organisation hold it (from the live model and bindings).
type Reader struct {
	Role       string `json:"role"`
	Principals int    `json:"principals"`
}

// Retention is how long a category is kept and the evidence that retention ran.
type Retention struct {
	Period string `json:"period"`
	Rule   string `json:"rule"`
	// LastRun is the last retention run recorded in the ledger, if any.
	LastRun *RetentionRun `json:"last_run,omitempty"`
}

// RetentionRun is one retention run as the ledger records it.
type RetentionRun struct {
	At      time.Time `json:"at"`
	Seq     uint64    `json:"seq"`
	Removed int       `json:"removed"`
}

// Flow is where data leaves Herald's database.
type Flow struct {
	To         string   `json:"to"`
	Data       []string `json:"data"`
	Protection string   `json:"protection"`
	Configured bool     `json:"configured"`
}

// SchemaMap compares the declared data map with the live schema.
type SchemaMap struct {
	Tables int `json:"tables"`
	// Undeclared are live tables the data map does not classify: each is a
	// finding (a table added without its DPIA entry).
	Undeclared []string `json:"undeclared"`
	// Missing are declared tables the live schema lacks.
	Missing []string `json:"missing"`
}

// Principles covers necessity, proportionality and the rights of people.
type Principles struct {
	Minimisation    []string        `json:"minimisation"`
	Consent         ConsentFacts    `json:"consent"`
	SubjectRequests SubjectRequests `json:"subject_requests"`
	Rights          []Right         `json:"rights"`
}

// ConsentFacts are the consent and opt-out mechanics with their counts.
type ConsentFacts struct {
	Contacts        int            `json:"contacts"`
	OptedOut        int            `json:"opted_out"`
	OptOutBy        map[string]int `json:"opt_out_by"`
	OptOutKeywords  []string       `json:"opt_out_keywords"`
	DeniedInPeriod  int            `json:"denied_in_period"`
	ActionsInPeriod int            `json:"actions_in_period"`
}

// SubjectRequests are the data-subject requests received in the period
// (and every request open now), with their response times.
type SubjectRequests struct {
	store.SubjectStats
	// Erasures counts contacts erased in the period, by request or directly.
	Erasures int `json:"erasures"`
}

// Incidents summarises the breach register.
type Incidents struct {
	InPeriod       int `json:"in_period"`
	Open           int `json:"open"`
	Overdue        int `json:"overdue"`
	NotifiedOnTime int `json:"notified_on_time"`
	NotifiedLate   int `json:"notified_late"`
	// Last is the most recent incident, if any.
	Last *IncidentRef `json:"last,omitempty"`
}

// IncidentRef identifies an incident without its text (which may name people).
type IncidentRef struct {
	ID               string    `json:"id"`
	DetectedAt       time.Time `json:"detected_at"`
	Status           string    `json:"status"`
	AffectedSubjects int       `json:"affected_subjects"`
}

// Right is one data-subject right and how Herald serves it.
type Right struct {
	Right string `json:"right"`
	How   string `json:"how"`
}

// Risk is one risk scenario, rated on the CNIL scale (negligible, limited,
// significant, maximum), with its controls and their live evidence.
type Risk struct {
	ID         string    `json:"id"`
	Scenario   string    `json:"scenario"`
	Impact     string    `json:"impact"`
	Severity   string    `json:"severity"`
	Likelihood string    `json:"likelihood"`
	Controls   []Control `json:"controls"`
}

// Control is one measure against a risk and what shows it works today.
type Control struct {
	Measure  string `json:"measure"`
	Evidence string `json:"evidence"`
	OK       bool   `json:"ok"`
}

// Action is one item of the action plan (edited by the organisation).
type Action struct {
	Risk   string `json:"risk"`
	Action string `json:"action"`
	Owner  string `json:"owner"`
	Due    string `json:"due"`
	Status string `json:"status"`
}

// Validation is the report's approval state, from the ledger.
type Validation struct {
	// Approved is the last dpia.approved entry, if any.
	Approved *Approval `json:"approved,omitempty"`
	// PreviousGenerated is the last dpia.generated entry before this report.
	PreviousGenerated *LedgerRef `json:"previous_generated,omitempty"`
}

// Approval is a recorded approval of a report.
type Approval struct {
	ReportHash   string    `json:"report_hash"`
	By           string    `json:"by"`
	At           time.Time `json:"at"`
	ResidualRisk string    `json:"residual_risk"`
	Seq          uint64    `json:"seq"`
}

// LedgerRef points at a ledger entry.
type LedgerRef struct {
	Seq        uint64    `json:"seq"`
	At         time.Time `json:"at"`
	ReportHash string    `json:"report_hash"`
}

// Seal sets r.Hash to the SHA-256 of r's JSON with Hash empty.
func (r *Report) Seal() error {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("dpia: hash report: %w", err)
	}
	sum := sha256.Sum256(b)
	r.Hash = hex.EncodeToString(sum[:])
	return nil
}

// Levels of the CNIL scale, for severity and likelihood alike.
const (
	Negligible  = "negligible"
	Limited     = "limited"
	Significant = "significant"
	Maximum     = "maximum"
)
