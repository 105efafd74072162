package campaigns

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/heraldhq/herald"
)

// Window is a daily local-time sending window, "HH:MM" to "HH:MM" (end
// exclusive). An end before the start crosses midnight.
type Window struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func parseHHMM(s string) (time.Duration, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, true
}

// Validate returns the window's field errors.
func (w Window) Validate() []herald.FieldError {
	var fe []herald.FieldError
	from, ok1 := parseHHMM(w.From)
	to, ok2 := parseHHMM(w.To)
	if !ok1 {
		fe = append(fe, herald.FieldError{Field: "window.from", Message: "must be HH:MM"})
	}
	if !ok2 {
		fe = append(fe, herald.FieldError{Field: "window.to", Message: "must be HH:MM"})
	}
	if ok1 && ok2 && from == to {
		fe = append(fe, herald.FieldError{Field: "window.to", Message: "must differ from window.from"})
	}
	return fe
}

// SendTime is when a recipient in loc gets a campaign that starts at start:
// the first instant at or after start whose local clock in loc is inside w.
// With no window it is start. Each person thus gets the campaign in their own
// window: a 10:00–18:00 campaign started at 08:00 UTC reaches Berlin at once
// and New York five hours later. The result depends only on its arguments,
// so a resumed fan-out computes the same time.
func SendTime(start time.Time, loc *time.Location, w *Window) time.Time {
	if w == nil {
		return start
	}
	from, ok1 := parseHHMM(w.From)
	to, ok2 := parseHHMM(w.To)
	if !ok1 || !ok2 || from == to {
		return start
	}
	if loc == nil {
		loc = time.UTC
	}
	local := start.In(loc)
	best := time.Time{}
	// The window that contains start may have opened yesterday (when it
	// crosses midnight); the next one opens today or tomorrow. Two days
	// further covers a window skipped by a daylight-saving jump.
	for d := -1; d <= 2; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, 0, 0, 0, 0, loc)
		open := atClock(day, from, loc)
		closeDay := day
		if to < from {
			closeDay = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
		}
		closing := atClock(closeDay, to, loc)
		if !closing.After(open) {
			continue
		}
		var t time.Time
		switch {
		case !start.Before(open) && start.Before(closing):
			t = start
		case open.After(start):
			t = open
		default:
			continue
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	if best.IsZero() {
		return start
	}
	return best.UTC().Truncate(time.Microsecond)
}

// atClock is the instant the wall clock in loc shows offset past midnight of day.
func atClock(day time.Time, offset time.Duration, loc *time.Location) time.Time {
	h, m := int(offset/time.Hour), int(offset%time.Hour/time.Minute)
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, loc)
}

// LoadZone returns the location of an IANA zone name, or fallback when tz is
// empty or unknown.
func LoadZone(tz string, fallback *time.Location) *time.Location {
	if tz == "" {
		return fallback
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return fallback
	}
	return loc
}

// Assign picks a recipient's sending account among the usable ones by
// rendezvous hashing: a contact always lands on the same account while the
// set is unchanged, load spreads evenly, and when one account becomes
// unusable only its own recipients move. usable may be nil (all usable).
func Assign(contact string, accounts []string, usable func(string) bool) (string, error) {
	var (
		best  string
		score uint64
	)
	for _, a := range accounts {
		if usable != nil && !usable(a) {
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte(a))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(contact))
		if s := h.Sum64(); best == "" || s > score {
			best, score = a, s
		}
	}
	if best == "" {
		return "", fmt.Errorf("no usable account among %d", len(accounts))
	}
	return best, nil
}

// Contains reports whether t's wall clock in loc is inside w.
func (w Window) Contains(t time.Time, loc *time.Location) bool {
	from, ok1 := parseHHMM(w.From)
	to, ok2 := parseHHMM(w.To)
	if !ok1 || !ok2 || from == to {
		return false
	}
	l := t.In(loc)
	clock := time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute
	if from < to {
		return clock >= from && clock < to
	}
	return clock >= from || clock < to
}
