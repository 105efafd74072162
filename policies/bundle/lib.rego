# Shared helpers of the default bundle: parameters, clock and time zones.
# Policies never read the evaluator's clock; every instant derives from
# input.now so a stored input replays to the same decision.
package herald.lib

# params are the bundle defaults with the organisation's overrides merged
# over them; object.union merges nested objects key by key, so an org can
# change one cap without restating the others. Without overrides the
# defaults are used as they are, sparing a deep merge on every decision.
params := object.union(data.herald.params, input.org.params) if {
	is_object(input.org.params)
	count(input.org.params) > 0
} else := data.herald.params

# now_ns is the decision instant in nanoseconds since the epoch.
now_ns := time.parse_rfc3339_ns(input.now)

# send_ns is when the message would actually leave: the scheduled time when a
# submit schedules it later, else now. Quiet hours are judged at send time.
send_ns := t if {
	input.stage == "submit"
	is_time(input.action.schedule_at)
	t := time.parse_rfc3339_ns(input.action.schedule_at)
	t > now_ns
} else := now_ns

# is_time holds for a set timestamp; Go's zero time marks "never".
is_time(s) if {
	is_string(s)
	s != ""
	not startswith(s, "0001-01-01")
}

# is_chat holds for group and channel targets, which have no contact.
is_chat if input.target.type in {"group", "channel"}

# contact is the recipient's consent record, or {} when Herald knows none.
contact := c if {
	not is_chat
	c := input.target.contact
	is_object(c)
} else := {}

# has_written holds when the contact has ever written to the account.
has_written if is_time(contact.last_inbound_at)

# is_cold holds for a user account writing to a person who never wrote to it.
is_cold if {
	input.account.kind == "user"
	not is_chat
	not has_written
}

org_tz := tz if {
	tz := input.org.timezone
	is_string(tz)
	tz != ""
} else := params.default_timezone

# recipient_tz is the contact's time zone, else the organisation's; channel
# and group posts always use the organisation's.
recipient_tz := tz if {
	not is_chat
	tz := contact.timezone
	is_string(tz)
	tz != ""
} else := org_tz

# local_sec is the wall-clock second of the day at ns in tz.
local_sec(ns, tz) := ((c[0] * 3600) + (c[1] * 60)) + c[2] if c := time.clock([ns, tz])

# hhmm_sec turns "21:00" into seconds after midnight.
hhmm_sec(s) := (to_number(p[0]) * 3600) + (to_number(p[1]) * 60) if p := split(s, ":")

# weekday_index is 0 for Monday … 6 for Sunday, in tz at ns.
weekday_index(ns, tz) := weekdays[time.weekday([ns, tz])]

weekdays := {"Monday": 0, "Tuesday": 1, "Wednesday": 2, "Thursday": 3, "Friday": 4, "Saturday": 5, "Sunday": 6}

# local_at is the instant at wall time target_sec, days calendar days after
# (or before, when negative) the local date of ns, in tz. A day is not always 86400 s long (DST), so the
# first estimate is corrected by the wall-clock difference it lands on.
local_at(ns, tz, days, target_sec) := estimate + (wrap_day(target_sec - local_sec(estimate, tz)) * 1000000000) if {
	estimate := (ns - (ns % 1000000000)) + ((((days * 86400) + target_sec) - local_sec(ns, tz)) * 1000000000)
}

# next_local is the next instant (strictly after ns) at wall time target_sec.
next_local(ns, tz, target_sec) := local_at(ns, tz, 0, target_sec) if {
	local_sec(ns, tz) < target_sec
} else := local_at(ns, tz, 1, target_sec)

# wrap_day folds a difference of seconds of the day into [-43200, 43200).
wrap_day(x) := x + 86400 if {
	x < -43200
} else := x - 86400 if {
	x >= 43200
} else := x

# format_utc renders ns as RFC 3339 in UTC, the form defer_until takes.
format_utc(ns) := time.format([ns, "UTC", "RFC3339"])
