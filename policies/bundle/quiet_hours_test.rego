package herald.quiet_hours_test

import data.herald.quiet_hours
import data.herald.test_fixtures as fx

defer_until(inp) := time.format([v.defer_until_ns, "UTC", "RFC3339"]) if {
	some v in quiet_hours.verdicts with input as inp
	v.rule == "quiet_hours.defer"
}

test_daytime_is_quiet_free if {
	count(quiet_hours.verdicts) == 0 with input as fx.base
}

test_evening_defers_to_next_morning if {
	# 21:30 UTC is 22:30 in Berlin; 09:00 CET is 08:00 UTC.
	defer_until(fx.patched({"now": "2026-03-10T21:30:00Z"})) == "2026-03-11T08:00:00Z"
}

test_early_morning_defers_to_same_morning if {
	defer_until(fx.patched({"now": "2026-03-10T02:00:00Z"})) == "2026-03-10T08:00:00Z"
}

test_window_edges if {
	# 20:59:59 Berlin is outside, 21:00 inside, 09:00 outside again.
	count(quiet_hours.verdicts) == 0 with input as fx.patched({"now": "2026-03-10T19:59:59Z"})
	count(quiet_hours.verdicts) == 1 with input as fx.patched({"now": "2026-03-10T20:00:00Z"})
	count(quiet_hours.verdicts) == 0 with input as fx.patched({"now": "2026-03-10T08:00:00Z"})
}

test_berlin_spring_forward if {
	# 23:00 CET on 2026-03-28; clocks jump to CEST that night: 09:00 CEST = 07:00 UTC.
	defer_until(fx.patched({"now": "2026-03-28T22:00:00Z"})) == "2026-03-29T07:00:00Z"
}

test_new_york_fall_back if {
	# 22:00 EDT on 2026-10-31; 09:00 EST on 2026-11-01 is 14:00 UTC.
	inp := fx.patched({"now": "2026-11-01T02:00:00Z", "target": {"contact": {"timezone": "America/New_York"}}})
	defer_until(inp) == "2026-11-01T14:00:00Z"
}

test_contact_without_timezone_uses_org_timezone if {
	# 08:00 EDT (US DST began 2026-03-08): inside the window until 09:00 EDT = 13:00 UTC.
	inp := fx.patched({"target": {"contact": {"timezone": ""}}, "org": {"timezone": "America/New_York"}})
	defer_until(inp) == "2026-03-10T13:00:00Z"
}

test_channel_uses_org_timezone if {
	# 12:00 UTC is 21:00 in Tokyo.
	inp := object.union(fx.channel, {"org": {"timezone": "Asia/Tokyo"}})
	defer_until(inp) == "2026-03-11T00:00:00Z"
	some s in quiet_hours.suggestions with input as inp
	s.message == "move to 09:00 organisation time"
}

test_transactional_is_exempt if {
	count(quiet_hours.verdicts) == 0 with input as fx.patched({"now": "2026-03-10T21:30:00Z", "action": {"purpose": "transactional"}})
}

test_org_window_override if {
	inp := fx.patched({"now": "2026-03-10T20:30:00Z", "org": {"params": {"quiet_hours": {"start": "22:00", "end": "07:00"}}}})
	count(quiet_hours.verdicts) == 0 with input as inp
}

test_org_daytime_window if {
	# A window that does not wrap midnight: 12:00-14:00 local.
	inp := fx.patched({"org": {"params": {"quiet_hours": {"start": "12:00", "end": "14:00"}}}})
	defer_until(inp) == "2026-03-10T13:00:00Z"
}

test_org_can_disable if {
	count(quiet_hours.verdicts) == 0 with input as fx.patched({"now": "2026-03-10T21:30:00Z", "org": {"params": {"quiet_hours": {"enabled": false}}}})
}

test_scheduled_send_is_judged_at_send_time if {
	inp := fx.patched({"stage": "submit", "action": {"schedule_at": "2026-03-10T21:30:00Z"}})
	defer_until(inp) == "2026-03-11T08:00:00Z"
}

test_suggestion_moves_to_window_end if {
	inp := fx.patched({"now": "2026-03-10T21:30:00Z"})
	some s in quiet_hours.suggestions with input as inp
	s.message == "move to 09:00 recipient time"
	s.patch.schedule_at == "2026-03-11T08:00:00Z"
}
