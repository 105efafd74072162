package dpia

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Ledger is where reports are anchored (*store.Store).
type Ledger interface {
	RecordLedger(ctx context.Context, org string, r store.LedgerRecord) (ledger.Entry, error)
	FindLedgerEntry(ctx context.Context, org, kind, key, value string) (*ledger.Entry, error)
}

// Record anchors a generated report: a dpia.generated entry with its hash,
// schema and the format it was rendered in.
func Record(ctx context.Context, l Ledger, r *Report, actor, format string) (ledger.Entry, error) {
	return l.RecordLedger(ctx, r.Org.ID, store.LedgerRecord{Kind: KindGenerated, Actor: actor,
		Attrs: map[string]any{"report_hash": r.Hash, "schema": r.Schema, "format": format}})
}

// Residual risk levels an approval may state.
var residualRisks = []string{"low", "medium", "high"}

var hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Approve records that actor approved the report with hash reportHash,
// which MUST have been generated (a dpia.generated entry) in org: an
// approval always names a report an auditor can find.
func Approve(ctx context.Context, l Ledger, org, reportHash, residualRisk, actor string) (ledger.Entry, error) {
	var fe []herald.FieldError
	if !hashPattern.MatchString(reportHash) {
		fe = append(fe, herald.FieldError{Field: "report_hash", Message: "must be the report's hash: 64 lowercase hex digits"})
	}
	ok := false
	for _, r := range residualRisks {
		ok = ok || r == residualRisk
	}
	if !ok {
		fe = append(fe, herald.FieldError{Field: "residual_risk", Message: "must be low, medium or high"})
	}
	if len(fe) > 0 {
		return ledger.Entry{}, herald.Invalid(fe...)
	}
	gen, err := l.FindLedgerEntry(ctx, org, KindGenerated, "report_hash", reportHash)
	if err != nil {
		return ledger.Entry{}, err
	}
	if gen == nil {
		return ledger.Entry{}, herald.NotFound("generated DPIA report")
	}
	return l.RecordLedger(ctx, org, store.LedgerRecord{Kind: KindApproved, Actor: actor,
		Attrs: map[string]any{"report_hash": reportHash, "residual_risk": residualRisk, "generated_seq": gen.Seq}})
}

// Plan limits.
const (
	maxPlanItems = 200
	maxPlanText  = 2000
)

var dueDate = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// ParsePlan validates an edited action plan, a body {"plan": [Action…]},
// and returns the plan re-encoded (a JSON array) with its hash. Invalid
// UTF-8 and NUL bytes are bad input, like any other malformed field.
func ParsePlan(raw []byte) (json.RawMessage, string, error) {
	if !utf8.Valid(raw) {
		return nil, "", herald.Errorf(herald.CodeInvalidJSON, "the body is not valid UTF-8")
	}
	var body struct {
		Plan *[]Action `json:"plan"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, "", herald.Errorf(herald.CodeInvalidJSON, "the body must be {\"plan\": [items]}: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", herald.Errorf(herald.CodeInvalidJSON, "the body must hold exactly one JSON value")
	}
	if body.Plan == nil {
		return nil, "", herald.Invalid(herald.FieldError{Field: "plan", Message: "is required (an array; [] clears the plan)"})
	}
	plan := *body.Plan
	if len(plan) > maxPlanItems {
		return nil, "", herald.Invalid(herald.FieldError{Field: "plan", Message: fmt.Sprintf("at most %d items", maxPlanItems)})
	}
	var fe []herald.FieldError
	for i, a := range plan {
		at := func(f, msg string) {
			fe = append(fe, herald.FieldError{Field: fmt.Sprintf("plan[%d].%s", i, f), Message: msg})
		}
		for _, fv := range [][2]string{{"risk", a.Risk}, {"action", a.Action}, {"owner", a.Owner}, {"due", a.Due}, {"status", a.Status}} {
			f, v := fv[0], fv[1]
			if len(v) > maxPlanText {
				at(f, fmt.Sprintf("at most %d bytes", maxPlanText))
			}
			if strings.ContainsRune(v, 0) {
				at(f, "must not contain NUL bytes")
			}
		}
		if strings.TrimSpace(a.Action) == "" {
			at("action", "is required")
		}
		if a.Due != "" && !dueDate.MatchString(a.Due) {
			at("due", "must be a date YYYY-MM-DD")
		}
		switch a.Status {
		case "open", "in_progress", "done":
		default:
			at("status", "must be open, in_progress or done")
		}
	}
	if len(fe) > 0 {
		return nil, "", herald.Invalid(fe...)
	}
	if plan == nil {
		plan = []Action{}
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, "", fmt.Errorf("dpia: encode plan: %w", err)
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}
