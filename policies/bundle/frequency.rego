# Frequency caps: per recipient per purpose (calendar days and weeks in the
# recipient's time zone), per sending account, and per group or channel.
# Over a cap the action is deferred to the next allowed time or denied, as
# params.frequency.actions says for each rule id. Counts come from Go and
# include only committed sends: denied, deferred and cancelled actions do not
# consume a cap.
package herald.frequency

import data.herald.lib
import data.herald.quiet_hours

freq := f if {
	f := input.frequency
	is_object(f)
} else := {}

records := r if {
	r := freq.recipient
	is_array(r)
} else := []

# Calendar days and weeks (Monday first) are the recipient's: a send counts
# for today when it falls between this and the next local midnight (sends
# already scheduled for a later day count for that day, not this one).
# Comparing instants keeps the per-record work to one timestamp parse.
day_start_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 0, 0)

day_end_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 1, 0)

week_start_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 0 - lib.weekday_index(lib.now_ns, lib.recipient_tz), 0)

week_end_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 7 - lib.weekday_index(lib.now_ns, lib.recipient_tz), 0)

# sent_ns lists earlier sends for the same purpose.
sent_ns := [time.parse_rfc3339_ns(r.at) |
	some r in records
	r.purpose == input.action.purpose
]

# recent are the sends of the last 25 hours, the only ones that can fall on
# the recipient's current calendar day (25 h covers a DST day); most checks
# end here without any calendar arithmetic.
recent := [t | some t in sent_ns; lib.now_ns - t < 90000000000000]

sent_today := count([t | some t in recent; t >= day_start_ns; t < day_end_ns])

sent_this_week := count([t | some t in sent_ns; t >= week_start_ns; t < week_end_ns])

limits := lib.params.frequency.recipient[input.action.purpose]

# outcome_for is the configured action of a cap rule; anything other than
# "defer" denies, so a typo in data fails closed.
outcome_for(rule) := "defer" if {
	lib.params.frequency.actions[rule] == "defer"
} else := "deny"

verdict(rule, until_ns, message) := {
	"rule": rule,
	"outcome": outcome_for(rule),
	"overridable": true,
	"defer_until_ns": until_ns,
	"message": message,
}

next_day_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 1, quiet_hours.day_start_sec)

next_week_ns := lib.local_at(lib.now_ns, lib.recipient_tz, 7 - lib.weekday_index(lib.now_ns, lib.recipient_tz), quiet_hours.day_start_sec)

second_ns := 1000000000

verdicts contains verdict(
	"frequency.recipient_daily",
	next_day_ns,
	sprintf("the recipient already got %v %s message(s) today (cap %v per day)", [sent_today, input.action.purpose, limits.per_day]),
) if {
	not lib.is_chat
	cap := limits.per_day
	count(recent) >= cap
	sent_today >= cap
}

verdicts contains verdict(
	"frequency.recipient_weekly",
	next_week_ns,
	sprintf("the recipient already got %v %s message(s) this week (cap %v per week)", [sent_this_week, input.action.purpose, limits.per_week]),
) if {
	not lib.is_chat
	cap := limits.per_week
	count(sent_ns) >= cap
	sent_this_week >= cap
}

verdicts contains verdict(
	"frequency.account_rate",
	lib.now_ns + second_ns,
	sprintf("the bot already sent %v messages this second (cap %v)", [freq.account_last_second, lib.params.frequency.bot_per_second]),
) if {
	input.account.kind == "bot"
	freq.account_last_second >= lib.params.frequency.bot_per_second
}

verdicts contains verdict(
	"frequency.cold_daily",
	lib.local_at(lib.now_ns, lib.org_tz, 1, 0),
	sprintf("the account already wrote to %v people today who never wrote to it (cap %v)", [freq.account_cold_today, lib.params.frequency.user_cold_per_day]),
) if {
	input.account.kind == "user" # implied by is_cold; lets rule indexing skip this rule for bots
	lib.is_cold
	freq.account_cold_today >= lib.params.frequency.user_cold_per_day
}

verdicts contains verdict(
	"frequency.cold_spacing",
	next_ns,
	sprintf("messages to people who never wrote need %v s between them", [lib.params.frequency.user_cold_spacing_seconds]),
) if {
	input.account.kind == "user" # implied by is_cold; lets rule indexing skip this rule for bots
	lib.is_cold
	lib.is_time(freq.account_last_cold_at)
	next_ns := time.parse_rfc3339_ns(freq.account_last_cold_at) + (lib.params.frequency.user_cold_spacing_seconds * second_ns)
	next_ns > lib.now_ns
}

verdicts contains verdict(
	"frequency.chat_rate",
	lib.now_ns + (60 * second_ns),
	sprintf("the chat already got %v posts this minute (cap %v)", [freq.chat_last_minute, lib.params.frequency.chat_per_minute]),
) if {
	lib.is_chat
	freq.chat_last_minute >= lib.params.frequency.chat_per_minute
}

verdicts contains verdict(
	"frequency.channel_spacing",
	next_ns,
	sprintf("channel posts need %v s between them", [lib.params.frequency.channel_spacing_seconds]),
) if {
	input.target.type == "channel"
	lib.is_time(freq.chat_last_post_at)
	next_ns := time.parse_rfc3339_ns(freq.chat_last_post_at) + (lib.params.frequency.channel_spacing_seconds * second_ns)
	next_ns > lib.now_ns
}

suggestions contains {
	"rule": v.rule,
	"message": "send at the next allowed time",
	"patch": {"schedule_at": lib.format_utc(v.defer_until_ns)},
} if {
	some v in verdicts
	v.outcome == "defer"
}
