package herald.frequency_test

import data.herald.frequency
import data.herald.test_fixtures as fx

verdict(inp, rule) := v if {
	some v in frequency.verdicts with input as inp
	v.rule == rule
}

until(v) := time.format([v.defer_until_ns, "UTC", "RFC3339"])

sends(ats) := {"frequency": {"recipient": [{"at": at, "purpose": "marketing"} | some at in ats]}}

test_no_history_no_cap if {
	count(frequency.verdicts) == 0 with input as fx.base
}

test_marketing_yesterday_is_fine if {
	count(frequency.verdicts) == 0 with input as fx.patched(sends(["2026-03-09T15:00:00Z"]))
}

test_second_marketing_today_defers_to_next_morning if {
	v := verdict(fx.patched(sends(["2026-03-10T08:30:00Z"])), "frequency.recipient_daily")
	v.outcome == "defer"
	until(v) == "2026-03-11T08:00:00Z"
}

test_a_send_scheduled_for_tomorrow_counts_for_tomorrow if {
	# A send deferred to tomorrow morning is not one of today's.
	count(frequency.verdicts) == 0 with input as fx.patched(sends(["2026-03-11T08:00:00Z"]))
	# Nor of this week once the week ends (Monday starts the next one).
	count(frequency.verdicts) == 0 with input as fx.patched(sends(["2026-03-16T08:00:00Z", "2026-03-16T09:00:00Z", "2026-03-16T10:00:00Z"]))
}

test_calendar_day_is_the_recipients if {
	# 16:00 UTC on the 9th is 01:00 on the 10th in Tokyo: the same local day as now.
	inp := fx.patched(object.union(sends(["2026-03-09T16:00:00Z"]), {"now": "2026-03-10T05:00:00Z", "target": {"contact": {"timezone": "Asia/Tokyo"}}}))
	verdict(inp, "frequency.recipient_daily").outcome == "defer"
	# In Berlin the same send was on the 9th.
	count(frequency.verdicts) == 0 with input as fx.patched(object.union(sends(["2026-03-09T16:00:00Z"]), {"now": "2026-03-10T05:00:00Z"}))
}

test_other_purposes_do_not_count if {
	inp := fx.patched({"frequency": {"recipient": [{"at": "2026-03-10T08:30:00Z", "purpose": "support"}]}})
	count(frequency.verdicts) == 0 with input as inp
}

test_weekly_cap_defers_to_monday if {
	# Thursday 12 March; sends Mon, Tue, Wed of this week, one on the Sunday before.
	inp := fx.patched(object.union(sends(["2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z", "2026-03-10T12:00:00Z", "2026-03-11T12:00:00Z"]), {"now": "2026-03-12T12:00:00Z"}))
	v := verdict(inp, "frequency.recipient_weekly")
	until(v) == "2026-03-16T08:00:00Z"
	not verdict(inp, "frequency.recipient_daily")
}

test_two_this_week_is_under_weekly_cap if {
	inp := fx.patched(object.union(sends(["2026-03-08T12:00:00Z", "2026-03-09T12:00:00Z", "2026-03-10T12:00:00Z"]), {"now": "2026-03-12T12:00:00Z"}))
	count(frequency.verdicts) == 0 with input as inp
}

test_org_raises_daily_cap if {
	inp := fx.patched(object.union(sends(["2026-03-10T08:30:00Z"]), {"org": {"params": {"frequency": {"recipient": {"marketing": {"per_day": 2}}}}}}))
	count(frequency.verdicts) == 0 with input as inp
}

test_org_chooses_deny_over_defer if {
	inp := fx.patched(object.union(sends(["2026-03-10T08:30:00Z"]), {"org": {"params": {"frequency": {"actions": {"frequency.recipient_daily": "deny"}}}}}))
	verdict(inp, "frequency.recipient_daily").outcome == "deny"
}

test_unknown_action_fails_closed_to_deny if {
	inp := fx.patched(object.union(sends(["2026-03-10T08:30:00Z"]), {"org": {"params": {"frequency": {"actions": {"frequency.recipient_daily": "allow"}}}}}))
	verdict(inp, "frequency.recipient_daily").outcome == "deny"
}

test_exempt_purpose_defers_to_midnight if {
	# Transactional is exempt from quiet hours, so its day starts at 00:00 local.
	inp := fx.patched({
		"action": {"purpose": "transactional"},
		"frequency": {"recipient": [{"at": "2026-03-10T08:30:00Z", "purpose": "transactional"}]},
		"org": {"params": {"frequency": {"recipient": {"transactional": {"per_day": 1, "per_week": 10}}}}},
	})
	until(verdict(inp, "frequency.recipient_daily")) == "2026-03-10T23:00:00Z"
}

test_bot_rate_defers_one_second if {
	inp := fx.patched({"frequency": {"account_last_second": 25}})
	v := verdict(inp, "frequency.account_rate")
	until(v) == "2026-03-10T12:00:01Z"
	count(frequency.verdicts) == 0 with input as fx.patched({"frequency": {"account_last_second": 24}})
}

cold := fx.patched({"account": {"kind": "user", "connector": "mtproto"}})

test_cold_daily_cap_denies if {
	inp := object.union(cold, {"frequency": {"account_cold_today": 30}})
	verdict(inp, "frequency.cold_daily").outcome == "deny"
	count(frequency.verdicts) == 0 with input as object.union(cold, {"frequency": {"account_cold_today": 29}})
}

test_warm_contact_is_not_cold if {
	inp := object.union(cold, {"frequency": {"account_cold_today": 30, "account_last_cold_at": "2026-03-10T11:59:50Z"}, "target": {"contact": {"last_inbound_at": "2026-03-01T10:00:00Z"}}})
	count(frequency.verdicts) == 0 with input as inp
}

test_cold_spacing_defers if {
	inp := object.union(cold, {"frequency": {"account_last_cold_at": "2026-03-10T11:59:50Z"}})
	until(verdict(inp, "frequency.cold_spacing")) == "2026-03-10T12:00:20Z"
	count(frequency.verdicts) == 0 with input as object.union(cold, {"frequency": {"account_last_cold_at": "2026-03-10T11:59:30Z"}})
}

test_chat_rate_defers_a_minute if {
	inp := object.union(fx.channel, {"target": {"type": "group"}, "frequency": {"chat_last_minute": 20}})
	until(verdict(inp, "frequency.chat_rate")) == "2026-03-10T12:01:00Z"
}

test_channel_spacing if {
	inp := object.union(fx.channel, {"frequency": {"chat_last_post_at": "2026-03-10T11:59:20Z"}})
	until(verdict(inp, "frequency.channel_spacing")) == "2026-03-10T12:00:20Z"
	some s in frequency.suggestions with input as inp
	s.patch.schedule_at == "2026-03-10T12:00:20Z"
}

test_chats_have_no_recipient_caps if {
	inp := object.union(fx.channel, sends(["2026-03-10T08:30:00Z"]))
	count(frequency.verdicts) == 0 with input as inp
}

test_missing_counters_count_nothing if {
	count(frequency.verdicts) == 0 with input as object.remove(fx.base, ["frequency"])
	count(frequency.verdicts) == 0 with input as fx.patched({"frequency": {"recipient": null}})
}
