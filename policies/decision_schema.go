package policies

import (
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// ErrOffSchema marks a decision document that does not have the fixed shape
// of docs/policy-authoring.md. Such a document is never acted upon.
var ErrOffSchema = errors.New("decision is off-schema")

var (
	keyOutcome     = ast.StringTerm("outcome")
	keyDeferUntil  = ast.StringTerm("defer_until")
	keyApprovals   = ast.StringTerm("approvals")
	keyReasons     = ast.StringTerm("reasons")
	keySuggestions = ast.StringTerm("suggestions")
	keyRisk        = ast.StringTerm("risk")
)

var decisionKeys = map[string]bool{
	"outcome": true, "defer_until": true, "approvals": true,
	"reasons": true, "suggestions": true, "risk": true,
}

// decodeDecision reads the Rego document into a Decision, checking every
// field on the way: outcome is one of the four, defer_until exists exactly
// for defer, approvals exist exactly for approve, every non-allow outcome has
// a reason, and the risk score lies in 0..100.
func decodeDecision(v ast.Value) (Decision, error) {
	var d Decision
	obj, ok := v.(ast.Object)
	if !ok {
		return d, offSchema("decision is %s, not an object", ast.ValueName(v))
	}
	var bad error
	obj.Foreach(func(k, _ *ast.Term) {
		if s, ok := k.Value.(ast.String); !ok || !decisionKeys[string(s)] {
			bad = offSchema("unknown key %v", k)
		}
	})
	if bad != nil {
		return d, bad
	}

	d.Outcome, ok = stringAt(obj, keyOutcome)
	switch {
	case !ok:
		return d, offSchema("outcome is missing or not a string")
	case d.Outcome != OutcomeAllow && d.Outcome != OutcomeDeny && d.Outcome != OutcomeDefer && d.Outcome != OutcomeApprove:
		return d, offSchema("outcome %q is not allow, deny, defer or approve", d.Outcome)
	}

	var err error
	if d.Reasons, err = decodeReasons(obj.Get(keyReasons)); err != nil {
		return d, err
	}
	if d.Outcome != OutcomeAllow && len(d.Reasons) == 0 {
		return d, offSchema("outcome %s has no reason", d.Outcome)
	}
	if d.Suggestions, err = decodeSuggestions(obj.Get(keySuggestions)); err != nil {
		return d, err
	}
	if d.Risk, err = decodeRisk(obj.Get(keyRisk)); err != nil {
		return d, err
	}

	du := obj.Get(keyDeferUntil)
	switch {
	case d.Outcome == OutcomeDefer && du == nil:
		return d, offSchema("defer without defer_until")
	case d.Outcome != OutcomeDefer && du != nil:
		return d, offSchema("defer_until on outcome %s", d.Outcome)
	case du != nil:
		s, ok := du.Value.(ast.String)
		if !ok {
			return d, offSchema("defer_until is not a string")
		}
		t, err := time.Parse(time.RFC3339, string(s))
		if err != nil {
			return d, offSchema("defer_until %q is not RFC 3339", string(s))
		}
		t = t.UTC()
		d.DeferUntil = &t
	}

	ap := obj.Get(keyApprovals)
	switch {
	case d.Outcome == OutcomeApprove && ap == nil:
		return d, offSchema("approve without approvals")
	case d.Outcome != OutcomeApprove && ap != nil:
		return d, offSchema("approvals on outcome %s", d.Outcome)
	case ap != nil:
		if d.Approvals, err = decodeStages(ap); err != nil {
			return d, err
		}
		if len(d.Approvals) == 0 {
			return d, offSchema("approve with no approval stage")
		}
	}
	return d, nil
}

func offSchema(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrOffSchema, fmt.Sprintf(format, args...))
}

func arrayAt(t *ast.Term, what string) (*ast.Array, error) {
	if t == nil {
		return nil, offSchema("%s is missing", what)
	}
	a, ok := t.Value.(*ast.Array)
	if !ok {
		return nil, offSchema("%s is not an array", what)
	}
	return a, nil
}

func objectAt(t *ast.Term, what string) (ast.Object, error) {
	if t == nil {
		return nil, offSchema("%s is missing", what)
	}
	o, ok := t.Value.(ast.Object)
	if !ok {
		return nil, offSchema("%s is not an object", what)
	}
	return o, nil
}

var (
	keyRule        = ast.StringTerm("rule")
	keySeverity    = ast.StringTerm("severity")
	keyMessage     = ast.StringTerm("message")
	keyOverridable = ast.StringTerm("overridable")
	keyPatch       = ast.StringTerm("patch")
	keyScore       = ast.StringTerm("score")
	keyFactors     = ast.StringTerm("factors")
	keyName        = ast.StringTerm("name")
	keyPoints      = ast.StringTerm("points")
	keyStage       = ast.StringTerm("stage")
	keyRole        = ast.StringTerm("role")
	keyMode        = ast.StringTerm("mode")
	keyApprovers   = ast.StringTerm("approvers")
)

func decodeReasons(t *ast.Term) ([]Reason, error) {
	a, err := arrayAt(t, "reasons")
	if err != nil {
		return nil, err
	}
	out := make([]Reason, 0, a.Len())
	for i := range a.Len() {
		o, err := objectAt(a.Elem(i), "reason")
		if err != nil {
			return nil, err
		}
		var r Reason
		var ok1, ok2, ok3, ok4 bool
		r.Rule, ok1 = stringAt(o, keyRule)
		r.Severity, ok2 = stringAt(o, keySeverity)
		r.Message, ok3 = stringAt(o, keyMessage)
		r.Overridable, ok4 = boolAt(o, keyOverridable)
		if !ok1 || !ok2 || !ok3 || !ok4 || r.Rule == "" {
			return nil, offSchema("reason %d needs rule, severity, message and overridable", i)
		}
		if r.Severity != "info" && r.Severity != "warning" && r.Severity != "deny" {
			return nil, offSchema("reason %s has severity %q", r.Rule, r.Severity)
		}
		out = append(out, r)
	}
	return out, nil
}

func decodeSuggestions(t *ast.Term) ([]Suggestion, error) {
	a, err := arrayAt(t, "suggestions")
	if err != nil {
		return nil, err
	}
	out := make([]Suggestion, 0, a.Len())
	for i := range a.Len() {
		o, err := objectAt(a.Elem(i), "suggestion")
		if err != nil {
			return nil, err
		}
		var s Suggestion
		var ok1, ok2 bool
		s.Rule, ok1 = stringAt(o, keyRule)
		s.Message, ok2 = stringAt(o, keyMessage)
		if !ok1 || !ok2 {
			return nil, offSchema("suggestion %d needs rule and message", i)
		}
		if p := o.Get(keyPatch); p != nil {
			po, err := objectAt(p, "suggestion patch")
			if err != nil {
				return nil, err
			}
			raw, err := ast.JSON(po)
			if err != nil {
				return nil, offSchema("suggestion patch: %v", err)
			}
			s.Patch, _ = raw.(map[string]any)
		}
		out = append(out, s)
	}
	return out, nil
}

func decodeRisk(t *ast.Term) (Risk, error) {
	var r Risk
	o, err := objectAt(t, "risk")
	if err != nil {
		return r, err
	}
	score, ok := intAt(o, keyScore)
	if !ok || score < 0 || score > 100 {
		return r, offSchema("risk score must be an integer in 0..100")
	}
	r.Score = score
	a, err := arrayAt(o.Get(keyFactors), "risk factors")
	if err != nil {
		return r, err
	}
	r.Factors = make([]RiskFactor, 0, a.Len())
	for i := range a.Len() {
		fo, err := objectAt(a.Elem(i), "risk factor")
		if err != nil {
			return r, err
		}
		name, ok1 := stringAt(fo, keyName)
		points, ok2 := intAt(fo, keyPoints)
		if !ok1 || !ok2 || name == "" {
			return r, offSchema("risk factor %d needs name and integer points", i)
		}
		r.Factors = append(r.Factors, RiskFactor{Name: name, Points: points})
	}
	return r, nil
}

func decodeStages(t *ast.Term) ([]Stage, error) {
	a, err := arrayAt(t, "approvals")
	if err != nil {
		return nil, err
	}
	out := make([]Stage, 0, a.Len())
	for i := range a.Len() {
		o, err := objectAt(a.Elem(i), "approval stage")
		if err != nil {
			return nil, err
		}
		var s Stage
		var ok1, ok2, ok3 bool
		s.Stage, ok1 = intAt(o, keyStage)
		s.Role, ok2 = stringAt(o, keyRole)
		s.Mode, ok3 = stringAt(o, keyMode)
		if !ok1 || !ok2 || !ok3 || s.Stage < 1 || s.Role == "" || (s.Mode != "any" && s.Mode != "all") {
			return nil, offSchema("approval stage %d needs stage ≥ 1, role and mode any|all", i)
		}
		if ap := o.Get(keyApprovers); ap != nil {
			aa, err := arrayAt(ap, "approvers")
			if err != nil {
				return nil, err
			}
			for j := range aa.Len() {
				name, ok := aa.Elem(j).Value.(ast.String)
				if !ok {
					return nil, offSchema("approvers must be strings")
				}
				s.Approvers = append(s.Approvers, string(name))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func stringAt(o ast.Object, k *ast.Term) (string, bool) {
	t := o.Get(k)
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

func boolAt(o ast.Object, k *ast.Term) (bool, bool) {
	t := o.Get(k)
	if t == nil {
		return false, false
	}
	b, ok := t.Value.(ast.Boolean)
	return bool(b), ok
}

func intAt(o ast.Object, k *ast.Term) (int, bool) {
	t := o.Get(k)
	if t == nil {
		return 0, false
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int()
}
