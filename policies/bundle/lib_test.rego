package herald.lib_test

import data.herald.lib
import data.herald.test_fixtures as fx

test_weekday_index_is_local if {
	# 23:30 UTC on Sunday 2026-03-15 is already Monday in Berlin.
	ns := time.parse_rfc3339_ns("2026-03-15T23:30:00Z")
	lib.weekday_index(ns, "UTC") == 6
	lib.weekday_index(ns, "Europe/Berlin") == 0
}

test_local_at_backwards if {
	# Monday 00:00 Berlin of the week of Thursday 2026-03-12.
	now := time.parse_rfc3339_ns("2026-03-12T12:00:00Z")
	lib.format_utc(lib.local_at(now, "Europe/Berlin", -3, 0)) == "2026-03-08T23:00:00Z"
}

test_hhmm_sec if {
	lib.hhmm_sec("21:00") == 75600
	lib.hhmm_sec("09:30") == 34200
}

test_wrap_day if {
	lib.wrap_day(-82800) == 3600
	lib.wrap_day(82800) == -3600
	lib.wrap_day(-3600) == -3600
}

test_local_at_across_spring_forward if {
	# Berlin skips 02:00-03:00 on 2026-03-29: 23:00 CET to 09:00 CEST is 9 h, not 10.
	now := time.parse_rfc3339_ns("2026-03-28T22:00:00Z")
	lib.format_utc(lib.next_local(now, "Europe/Berlin", 32400)) == "2026-03-29T07:00:00Z"
}

test_local_at_midnight_fall_back if {
	# New York's 2026-11-01 has 25 hours; the next midnight is still right.
	now := time.parse_rfc3339_ns("2026-11-01T12:00:00Z")
	lib.format_utc(lib.local_at(now, "America/New_York", 1, 0)) == "2026-11-02T05:00:00Z"
}

test_params_merge_org_overrides_deeply if {
	p := lib.params with input as fx.patched({"org": {"params": {"frequency": {"recipient": {"marketing": {"per_day": 2}}}}}})
	p.frequency.recipient.marketing.per_day == 2
	p.frequency.recipient.marketing.per_week == 3
	p.quiet_hours.start == "21:00"
}

test_params_ignore_non_object_org_params if {
	p := lib.params with input as fx.patched({"org": {"params": null}})
	p.quiet_hours.start == "21:00"
	q := lib.params with input as fx.patched({"org": {"params": {}}})
	q == data.herald.params
}

test_send_time_is_schedule_at_on_submit if {
	lib.send_ns == time.parse_rfc3339_ns("2026-03-10T20:00:00Z") with input as fx.patched({"stage": "submit", "action": {"schedule_at": "2026-03-10T20:00:00Z"}})
	lib.send_ns == time.parse_rfc3339_ns("2026-03-10T12:00:00Z") with input as fx.patched({"stage": "send", "action": {"schedule_at": "2026-03-10T20:00:00Z"}})
}

test_zero_time_is_no_time if {
	not lib.is_time("0001-01-01T00:00:00Z")
	not lib.is_time("")
	lib.is_time("2026-03-10T12:00:00Z")
}

test_timezones if {
	lib.recipient_tz == "Europe/Berlin" with input as fx.base
	lib.recipient_tz == "Asia/Tokyo" with input as fx.patched({"target": {"contact": {"timezone": ""}}, "org": {"timezone": "Asia/Tokyo"}})
	lib.recipient_tz == "UTC" with input as fx.patched({"target": {"contact": {"timezone": ""}}, "org": {"timezone": ""}})
	lib.recipient_tz == "Asia/Tokyo" with input as object.union(fx.channel, {"org": {"timezone": "Asia/Tokyo"}})
}
