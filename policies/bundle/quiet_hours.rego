# Quiet hours: no messages at night in the recipient's local time (the
# contact's time zone, else the organisation's; channel and group posts use
# the organisation's). A message inside the window is deferred to its end,
# never denied: it is still wanted, only later.
package herald.quiet_hours

import data.herald.lib

end_sec := lib.hhmm_sec(lib.params.quiet_hours.end)

applies if {
	lib.params.quiet_hours.enabled == true
	not input.action.purpose in lib.params.quiet_hours.exempt_purposes
}

# local is the send time as "HH:MM" in tz. Zero-padded clock strings order
# like the times they name, so the window test needs no arithmetic.
local := time.format([lib.send_ns, lib.recipient_tz, "15:04"])

# The window wraps midnight when it starts after it ends (21:00–09:00).
in_window if {
	lib.params.quiet_hours.start > lib.params.quiet_hours.end
	local >= lib.params.quiet_hours.start
}

in_window if {
	lib.params.quiet_hours.start > lib.params.quiet_hours.end
	local < lib.params.quiet_hours.end
}

in_window if {
	lib.params.quiet_hours.start < lib.params.quiet_hours.end
	local >= lib.params.quiet_hours.start
	local < lib.params.quiet_hours.end
}

until_ns := lib.next_local(lib.send_ns, lib.recipient_tz, end_sec)

# day_start_sec is when a recipient's day may begin: the end of quiet hours
# when they apply to this purpose, else midnight. Frequency rules defer to it.
day_start_sec := end_sec if {
	applies
} else := 0

whose := "organisation" if {
	lib.is_chat
} else := "recipient"

verdicts contains {
	"rule": "quiet_hours.defer",
	"outcome": "defer",
	"overridable": true,
	"defer_until_ns": until_ns,
	"message": sprintf("%s local time is inside quiet hours %s–%s", [whose, lib.params.quiet_hours.start, lib.params.quiet_hours.end]),
} if {
	applies
	in_window
}

suggestions contains {
	"rule": "quiet_hours.defer",
	"message": sprintf("move to %s %s time", [lib.params.quiet_hours.end, whose]),
	"patch": {"schedule_at": lib.format_utc(until_ns)},
} if {
	applies
	in_window
}
