# Approval: when a human must look before sending. Triggers are a risk score
# in the approval band, a post to a large channel, and a large broadcast.
# Each trigger names the roles that must sign off; stages follow role_order
# so an operator-level approver sees it before the compliance officer.
package herald.approval

import data.herald.lib
import data.herald.risk

triggers contains "approval.risk" if risk.in_approval_band

triggers contains "approval.channel_size" if {
	input.target.type == "channel"
	input.target.members > lib.params.approval.channel_members
}

triggers contains "approval.broadcast_size" if input.action.recipients > lib.params.approval.broadcast_recipients

messages := {
	"approval.risk": sprintf("risk score %v is in the review band %v–%v", [risk.score, lib.params.risk.approve_at, lib.params.risk.deny_at - 1]),
	"approval.channel_size": sprintf("posts to channels above %v members need approval", [lib.params.approval.channel_members]),
	"approval.broadcast_size": sprintf("broadcasts above %v recipients need approval", [lib.params.approval.broadcast_recipients]),
}

verdicts contains {
	"rule": t,
	"outcome": "approve",
	"overridable": false,
	"message": messages[t],
} if some t in triggers

# roles_for falls back to one role, so an approve outcome always has a stage
# even when data forgets a trigger.
roles_for(t) := r if {
	r := lib.params.approval.roles[t]
	count(r) > 0
} else := [lib.params.approval.fallback_role]

required contains role if {
	some t in triggers
	some role in roles_for(t)
}

ordered := array.concat(
	[r | some r in lib.params.approval.role_order; r in required],
	[r | some r in sort(required); not r in lib.params.approval.role_order],
)

stages := [{"stage": i + 1, "role": r, "mode": object.get(lib.params.approval.modes, r, "any")} | some i, r in ordered]
