package campaigns

import (
	"math/rand/v2"
	"testing"
	"time"
)

// zones is a spread of IANA zones: half-hour and quarter-hour offsets,
// both hemispheres' daylight saving, the date line.
var zones = []string{"UTC", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Kolkata", "Asia/Kathmandu",
	"Australia/Adelaide", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns",
	"America/Sao_Paulo", "Africa/Casablanca", "Asia/Tehran", "Europe/London", "America/Santiago", "Asia/Tokyo"}

func inWindow(t time.Time, loc *time.Location, from, to time.Duration) bool {
	l := t.In(loc)
	clock := time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute + time.Duration(l.Second())*time.Second
	if from < to {
		return clock >= from && clock < to
	}
	return clock >= from || clock < to
}

// TestSendTimeStaggersByZone is a property test over random zones, start
// times and windows: each recipient's send time is never before the start,
// falls inside their own local window, and is the earliest such minute (no
// earlier minute since the start was inside the window).
func TestSendTimeStaggersByZone(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2026))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 400; i++ {
		loc, err := time.LoadLocation(zones[rng.IntN(len(zones))])
		if err != nil {
			t.Fatal(err)
		}
		start := base.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Minute)
		fromH, toH := rng.IntN(24), rng.IntN(24)
		if fromH == toH {
			toH = (toH + 1) % 24
		}
		w := &Window{From: time.Date(0, 1, 1, fromH, 0, 0, 0, time.UTC).Format("15:04"), To: time.Date(0, 1, 1, toH, 30, 0, 0, time.UTC).Format("15:04")}
		from, _ := parseHHMM(w.From)
		to, _ := parseHHMM(w.To)
		got := SendTime(start, loc, w)
		if got.Before(start) {
			t.Fatalf("%s %v %v: send time %v before start", loc, start, w, got)
		}
		if got.Sub(start) > 48*time.Hour {
			t.Fatalf("%s %v %v: send time %v more than two days after start", loc, start, w, got)
		}
		if !inWindow(got, loc, from, to) {
			t.Fatalf("%s start %v window %v: send time %v (local %v) is outside the window", loc, start, w, got, got.In(loc))
		}
		for m := start; m.Before(got); m = m.Add(time.Minute) {
			if inWindow(m, loc, from, to) {
				t.Fatalf("%s start %v window %v: %v (local %v) was already inside the window, but got %v", loc, start, w, m, m.In(loc), got)
			}
		}
	}
}

func TestSendTimeReachesEachZoneInItsMorning(t *testing.T) {
	start := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC) // 09:00 Berlin, 03:00 New York
	w := &Window{From: "10:00", To: "18:00"}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	ny, _ := time.LoadLocation("America/New_York")
	if got := SendTime(start, berlin, w); !got.Equal(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("Berlin: %v, want 10:00 local (09:00 UTC)", got)
	}
	if got := SendTime(start, ny, w); !got.Equal(time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("New York: %v, want 10:00 local (14:00 UTC)", got)
	}
	if got := SendTime(start, ny, nil); !got.Equal(start) {
		t.Errorf("no window: %v, want the start", got)
	}
}

// TestAssignIsStickyAndSpread: a contact always gets the same account, the
// load spreads, and removing an account moves only its own recipients.
func TestAssignIsStickyAndSpread(t *testing.T) {
	accounts := []string{"a1", "a2", "a3", "a4", "a5"}
	count := map[string]int{}
	first := map[string]string{}
	for i := 0; i < 10000; i++ {
		c := "contact-" + string(rune('a'+i%26)) + time.Duration(i).String()
		a, err := Assign(c, accounts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := Assign(c, accounts, nil); again != a {
			t.Fatalf("%s moved from %s to %s", c, a, again)
		}
		count[a]++
		first[c] = a
	}
	for _, a := range accounts {
		if count[a] < 1600 || count[a] > 2400 {
			t.Errorf("account %s got %d of 10000 recipients; want about 2000", a, count[a])
		}
	}
	for c, a := range first {
		got, err := Assign(c, accounts, func(id string) bool { return id != "a3" })
		if err != nil {
			t.Fatal(err)
		}
		if a != "a3" && got != a {
			t.Fatalf("%s moved from %s to %s though %s is still usable", c, a, got, a)
		}
		if got == "a3" {
			t.Fatalf("%s assigned to the unusable account", c)
		}
	}
	if _, err := Assign("x", accounts, func(string) bool { return false }); err == nil {
		t.Fatal("no usable account must be an error")
	}
}
