# The one entry point: data.herald.decision. It gathers every rule family's
# verdicts and resolves conflicts deny > approve > defer > allow. Its shape is
# fixed (docs/policy-authoring.md); the Go engine rejects anything else.
package herald

import data.herald.approval
import data.herald.consent
import data.herald.frequency
import data.herald.lib
import data.herald.quiet_hours
import data.herald.risk

# verdicts gathers each family's verdicts. One rule of set unions: a rule
# per family cost an evaluation each, and the sets are small.
verdicts := (((consent.verdicts | quiet_hours.verdicts) | frequency.verdicts) | risk.verdicts) | approval.verdicts

precedence := ["deny", "approve", "defer"]

severity := {"deny": "deny", "approve": "warning", "defer": "warning"}

outcomes := {v.outcome | some v in verdicts}

# Most actions raise no verdict at all: that case is decided, and the
# reasons listed, without looking further.
no_verdicts if count(verdicts) == 0

outcome := "allow" if {
	no_verdicts
} else := "deny" if {
	"deny" in outcomes
} else := "approve" if {
	"approve" in outcomes
} else := "defer" if {
	"defer" in outcomes
} else := "allow"

# reasons list every verdict, most severe first and then by rule id, so an
# officer sees all that stands in the way, not only the winning one.
reasons := [] if {
	no_verdicts
} else := [r |
	some o in precedence
	some rule in sort({v.rule | some v in verdicts; v.outcome == o})
	some v in verdicts
	v.outcome == o
	v.rule == rule
	r := {"rule": rule, "severity": severity[o], "message": v.message, "overridable": v.overridable}
]

all_suggestions := ((consent.suggestions | quiet_hours.suggestions) | frequency.suggestions) | risk.suggestions

# Every suggestion answers a verdict (risk suggests fixes only at or above
# the approval band, which raises one), so a decision without verdicts
# skips the four suggestion sets.
suggestions := [] if {
	no_verdicts
} else := [s | some s in all_suggestions]

# defer_until is the latest of the defer times: the earliest moment at which
# every deferring rule is satisfied.
defer_until := lib.format_utc(max([v.defer_until_ns | some v in verdicts; v.outcome == "defer"]))

default extra := {}

extra := {"defer_until": defer_until} if outcome == "defer"

extra := {"approvals": approval.stages} if outcome == "approve"

decision := object.union(
	{"outcome": outcome, "reasons": reasons, "suggestions": suggestions, "risk": risk.result},
	extra,
)
