# Risk: a 0–100 score from named factors about the account's health, the
# kind of outreach and the content. At or above deny_at the action is denied
# (an approver may override); the approval band is handled by approval.rego.
# A frozen account (PEER_FLOOD in the last 24 h, or frozen_until ahead) is
# denied outright and not overridable: Telegram already stopped it.
package herald.risk

import data.herald.lib

rp := lib.params.risk

points := rp.points

account := input.account

content := input.action.content

frozen if account.peer_flood_24h > 0

frozen if {
	lib.is_time(account.frozen_until)
	time.parse_rfc3339_ns(account.frozen_until) > lib.now_ns
}

factors contains {"name": "account_frozen", "points": points.account_frozen} if frozen

factors contains {"name": "new_account", "points": points.new_account} if account.age_days < rp.new_account_days

# blocked_rate: share of the last day's sends that ended with the recipient
# blocking the account.
factors contains {"name": "blocked_rate", "points": points.blocked_rate} if {
	account.blocked_24h > 0
	account.blocked_24h / max([account.sends_24h, 1]) >= rp.blocked_rate
}

factors contains {"name": "rate_limited", "points": points.rate_limited} if {
	account.errors_429_24h + account.flood_wait_24h >= rp.rate_limited_min
}

factors contains {"name": "cold_outreach", "points": points.cold_outreach} if lib.is_cold

factors contains {"name": "links", "points": points.links} if content.links > 0

factors contains {"name": "shortened_links", "points": points.shortened_links} if content.shortened_links > 0

factors contains {"name": "shouting", "points": points.shouting} if {
	content.length >= rp.caps_min_length
	content.caps_ratio >= rp.caps_ratio
}

factors contains {"name": "long_message", "points": points.long_message} if content.length > rp.long_length

# burst: the last day's volume is well above the account's 7-day daily
# baseline (and above a floor, so a quiet account may still send a little).
factors contains {"name": "burst", "points": points.burst} if {
	account.sends_24h > max([account.baseline_daily_7d * rp.burst_factor, rp.burst_min])
}

score := min([100, sum([f.points | some f in factors])])

# result is the decision's risk document; factors are sorted by name.
result := {"score": score, "factors": [f | some f in factors]}

in_approval_band if {
	score >= rp.approve_at
	score < rp.deny_at
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
	"message": sprintf("risk score %v is at or above the deny threshold %v", [score, rp.deny_at]),
} if {
	not frozen
	score >= rp.deny_at
}

# fixes are the factors the sender can remove by editing the message.
fixes := {
	"shortened_links": "remove shortened links",
	"shouting": "use fewer capital letters",
	"long_message": "shorten the message",
	"links": "remove links that are not needed",
}

suggestions contains {"rule": concat(".", ["risk", f.name]), "message": fixes[f.name]} if {
	score >= rp.approve_at
	some f in factors
}
