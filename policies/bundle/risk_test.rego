package herald.risk_test

import data.herald.risk
import data.herald.test_fixtures as fx

factor_names(inp) := {f.name | some f in risk.factors with input as inp}

test_clean_action_scores_zero if {
	risk.result == {"score": 0, "factors": []} with input as fx.base
	count(risk.verdicts) == 0 with input as fx.base
}

test_factor_new_account if {
	factor_names(fx.patched({"account": {"age_days": 3}})) == {"new_account"}
}

test_factor_blocked_rate if {
	factor_names(fx.patched({"account": {"blocked_24h": 5}})) == {"blocked_rate"}
}

test_factor_blocked_rate_low if {
	factor_names(fx.patched({"account": {"blocked_24h": 1, "sends_24h": 1000, "baseline_daily_7d": 900}})) == set()
}

test_factor_rate_limited if {
	factor_names(fx.patched({"account": {"errors_429_24h": 1, "flood_wait_24h": 2}})) == {"rate_limited"}
}

test_factor_links if {
	factor_names(fx.patched({"action": {"content": {"links": 1}}})) == {"links"}
}

test_factor_shortened_links if {
	factor_names(fx.patched({"action": {"content": {"links": 1, "shortened_links": 1}}})) == {"links", "shortened_links"}
}

test_factor_shouting if {
	factor_names(fx.patched({"action": {"content": {"caps_ratio": 0.8}}})) == {"shouting"}
}

test_factor_shouting_short if {
	factor_names(fx.patched({"action": {"content": {"caps_ratio": 0.8, "length": 10}}})) == set()
}

test_factor_long_message if {
	factor_names(fx.patched({"action": {"content": {"length": 3000}}})) == {"long_message"}
}

test_factor_burst if {
	factor_names(fx.patched({"account": {"sends_24h": 400}})) == {"burst"}
}

test_factor_burst_floor if {
	factor_names(fx.patched({"account": {"sends_24h": 40, "baseline_daily_7d": 0}})) == set()
}

test_factor_cold_outreach if {
	factor_names(fx.patched({"account": {"kind": "user"}})) == {"cold_outreach"}
}

test_frozen_by_peer_flood_denies_unconditionally if {
	inp := fx.patched({"account": {"peer_flood_24h": 1}})
	vs := risk.verdicts with input as inp
	{v.rule | some v in vs} == {"risk.frozen"}
	some v in vs
	v.overridable == false
	risk.score == 100 with input as inp
}

test_frozen_until if {
	{v.rule | some v in risk.verdicts} == {"risk.frozen"} with input as fx.patched({"account": {"frozen_until": "2026-03-11T00:00:00Z"}})
	count(risk.verdicts) == 0 with input as fx.patched({"account": {"frozen_until": "2026-03-09T00:00:00Z"}})
}

test_approval_band if {
	# new account 25 + cold outreach 20 = 45.
	inp := fx.patched({"account": {"kind": "user", "age_days": 3}})
	risk.score == 45 with input as inp
	risk.in_approval_band with input as inp
	count(risk.verdicts) == 0 with input as inp
}

test_high_risk_denies_overridably if {
	# new 25 + cold 20 + links 5 + shortened 20 = 70.
	inp := fx.patched({"account": {"kind": "user", "age_days": 3}, "action": {"content": {"links": 1, "shortened_links": 1}}})
	risk.score == 70 with input as inp
	vs := risk.verdicts with input as inp
	{v.rule | some v in vs} == {"risk.high"}
	some v in vs
	v.overridable == true
	msgs := {s.message | some s in risk.suggestions with input as inp}
	msgs == {"remove shortened links", "remove links that are not needed"}
}

test_org_thresholds if {
	inp := fx.patched({"account": {"age_days": 3}, "org": {"params": {"risk": {"approve_at": 20, "deny_at": 25}}}})
	{v.rule | some v in risk.verdicts} == {"risk.high"} with input as inp
}

test_score_is_capped_at_100 if {
	inp := fx.patched({
		"account": {"kind": "user", "age_days": 1, "blocked_24h": 50, "errors_429_24h": 9, "sends_24h": 900},
		"action": {"content": {"links": 3, "shortened_links": 2, "caps_ratio": 0.9, "length": 3000}},
	})
	risk.score == 100 with input as inp
}
