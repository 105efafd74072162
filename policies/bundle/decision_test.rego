package herald.decision_test

import data.herald
import data.herald.test_fixtures as fx

test_clean_action_is_allowed if {
	d := herald.decision with input as fx.base
	d == {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}
}

test_defer_carries_defer_until if {
	d := herald.decision with input as fx.patched({"now": "2026-03-10T21:30:00Z"})
	d.outcome == "defer"
	d.defer_until == "2026-03-11T08:00:00Z"
	d.reasons == [{"rule": "quiet_hours.defer", "severity": "warning", "message": "recipient local time is inside quiet hours 21:00–09:00", "overridable": true}]
	not d.approvals
}

test_defer_until_is_the_latest if {
	# 00:30 in Berlin on the 11th, after a send at 00:15: quiet hours end at
	# 09:00 that morning, the daily cap reopens only on the 12th.
	d := herald.decision with input as fx.patched({
		"now": "2026-03-10T23:30:00Z",
		"frequency": {"recipient": [{"at": "2026-03-10T23:15:00Z", "purpose": "marketing"}]},
	})
	d.outcome == "defer"
	d.defer_until == "2026-03-12T08:00:00Z"
	count(d.reasons) == 2
}

test_deny_beats_defer if {
	d := herald.decision with input as fx.patched({"now": "2026-03-10T21:30:00Z", "target": {"contact": {"opted_out": true}}})
	d.outcome == "deny"
	not d.defer_until
	[r.rule | some r in d.reasons] == ["consent.opted_out", "quiet_hours.defer"]
	d.reasons[0].severity == "deny"
}

test_approve_beats_defer if {
	d := herald.decision with input as fx.patched({"now": "2026-03-10T21:30:00Z", "action": {"recipients": 5000}})
	d.outcome == "approve"
	not d.defer_until
	count(d.approvals) == 2
	[r.rule | some r in d.reasons] == ["approval.broadcast_size", "quiet_hours.defer"]
}

test_deny_beats_approve if {
	d := herald.decision with input as fx.patched({"action": {"recipients": 5000}, "target": {"contact": {"consents": null}}})
	d.outcome == "deny"
	not d.approvals
	[r.rule | some r in d.reasons] == ["consent.missing", "approval.broadcast_size"]
}

test_risk_is_reported if {
	d := herald.decision with input as fx.patched({"account": {"kind": "user", "age_days": 3}})
	d.outcome == "approve"
	d.risk.score == 45
	d.risk.factors == [{"name": "cold_outreach", "points": 20}, {"name": "new_account", "points": 25}]
}

test_high_risk_denies_with_fixes if {
	d := herald.decision with input as fx.patched({
		"account": {"kind": "user", "age_days": 3},
		"action": {"content": {"links": 1, "shortened_links": 1}},
		"target": {"contact": {"last_inbound_at": "2026-03-01T10:00:00Z"}},
		"org": {"params": {"risk": {"deny_at": 50}}},
	})
	d.outcome == "deny"
	[r.rule | some r in d.reasons] == ["risk.high"]
	{s.message | some s in d.suggestions} == {"remove shortened links", "remove links that are not needed"}
}
