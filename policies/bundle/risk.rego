# Risk: a 0–100 score from named factors about the account's health, the
# kind of outreach and the content. At or above deny_at the action is denied
# (an approver may override); the approval band is handled by approval.rego.
# A frozen account (PEER_FLOOD in the last 24 h, or frozen_until ahead) is
# denied outright and not overridable: Telegram already stopped it.
package herald.risk

import data.herald.lib

frozen if input.account.peer_flood_24h > 0

frozen if {
	lib.is_time(input.account.frozen_until)
	time.parse_rfc3339_ns(input.account.frozen_until) > lib.now_ns
}

factors contains {"name": "account_frozen", "points": lib.params.risk.points.account_frozen} if frozen

factors contains {"name": "new_account", "points": lib.params.risk.points.new_account} if input.account.age_days < lib.params.risk.new_account_days

# blocked_rate: share of the last day's sends that ended with the recipient
# blocking the account.
factors contains {"name": "blocked_rate", "points": lib.params.risk.points.blocked_rate} if {
	input.account.blocked_24h > 0
	input.account.blocked_24h / max([input.account.sends_24h, 1]) >= lib.params.risk.blocked_rate
}

factors contains {"name": "rate_limited", "points": lib.params.risk.points.rate_limited} if {
	input.account.errors_429_24h + input.account.flood_wait_24h >= lib.params.risk.rate_limited_min
}

# The kind test is implied by is_cold; as an equality on the input it lets
# rule indexing skip the rule for bots without evaluating it.
factors contains {"name": "cold_outreach", "points": lib.params.risk.points.cold_outreach} if {
	input.account.kind == "user"
	lib.is_cold
}

factors contains {"name": "links", "points": lib.params.risk.points.links} if input.action.content.links > 0

factors contains {"name": "shortened_links", "points": lib.params.risk.points.shortened_links} if input.action.content.shortened_links > 0

factors contains {"name": "shouting", "points": lib.params.risk.points.shouting} if {
	input.action.content.length >= lib.params.risk.caps_min_length
	input.action.content.caps_ratio >= lib.params.risk.caps_ratio
}

factors contains {"name": "long_message", "points": lib.params.risk.points.long_message} if input.action.content.length > lib.params.risk.long_length

# burst: the last day's volume is well above the account's 7-day daily
# baseline (and above a floor, so a quiet account may still send a little).
factors contains {"name": "burst", "points": lib.params.risk.points.burst} if {
	input.account.sends_24h > max([input.account.baseline_daily_7d * lib.params.risk.burst_factor, lib.params.risk.burst_min])
}

score := min([100, sum([f.points | some f in factors])])

# result is the decision's risk document; factors are sorted by name.
result := {"score": score, "factors": [f | some f in factors]}

in_approval_band if {
	score >= lib.params.risk.approve_at
	score < lib.params.risk.deny_at
}

verdicts contains {
	"rule": "risk.frozen",
	"outcome": "deny",
	"overridable": false,
	"message": "the account is frozen after PEER_FLOOD or an active freeze",
} if frozen

verdicts contains {
	"rule": "risk.high",
	"outcome": "deny",
	"overridable": true,
	"message": sprintf("risk score %v is at or above the deny threshold %v", [score, lib.params.risk.deny_at]),
} if {
	not frozen
	score >= lib.params.risk.deny_at
}

# fixes are the factors the sender can remove by editing the message.
fixes := {
	"shortened_links": "remove shortened links",
	"shouting": "use fewer capital letters",
	"long_message": "shorten the message",
	"links": "remove links that are not needed",
}

suggestions contains {"rule": concat(".", ["risk", f.name]), "message": fixes[f.name]} if {
	score >= lib.params.risk.approve_at
	some f in factors
}
