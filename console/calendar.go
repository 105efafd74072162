package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/policies"
)

// Calendar: day, week or month of GET /v1/calendar — per account the
// volume queued, campaigns on their start day, and the conflicts the API
// flags (account volume, overlapping campaigns over a cap, quiet hours).
// A scheduled action is rescheduled by form through the API (cancel and
// submit again at the new time), so the policy decides it again.

type calAccountDay struct {
	Account   string `json:"account"`
	Scheduled int    `json:"scheduled_actions"`
	Pending   int    `json:"pending_recipients"`
	Planned   int    `json:"planned_recipients"`
	Volume    int    `json:"volume"`
}

type calCampaign struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Status     string    `json:"status"`
	Purpose    string    `json:"purpose"`
	Start      time.Time `json:"start"`
	Accounts   []string  `json:"accounts"`
	Recipients int       `json:"recipients"`
}

type calConflict struct {
	Kind      string   `json:"kind"`
	Date      string   `json:"date"`
	Account   string   `json:"account"`
	Campaigns []string `json:"campaigns"`
	People    int      `json:"people"`
	Volume    int      `json:"volume"`
	Limit     int      `json:"limit"`
	Message   string   `json:"message"`
}

type calDay struct {
	Date      string          `json:"date"`
	Accounts  []calAccountDay `json:"accounts"`
	Campaigns []calCampaign   `json:"campaigns"`
	Conflicts []calConflict   `json:"conflicts"`
	// set by the page
	InPeriod bool
	Today    bool
	Actions  []calAction
}

type calendarData struct {
	View, Date, Account string
	Prev, Next          string
	From, To            string
	Weeks               [][]calDay // week and month: rows of seven days
	Days                []calDay   // the period's days, in order
	Names               map[string]string
	Accounts            []composeAccount
	Conflicts           int
	CanReschedule       bool
}

// Weekdays are the grid's column headings, Monday first.
func (calendarData) Weekdays() []string {
	return []string{"calendar.mon", "calendar.tue", "calendar.wed", "calendar.thu", "calendar.fri", "calendar.sat", "calendar.sun"}
}

// Name is an account's name (its id when unknown).
func (d calendarData) Name(id string) string {
	if n, ok := d.Names[id]; ok {
		return n
	}
	return id
}

// Shows reports whether an account's row is shown (the account filter).
func (d calendarData) Shows(id string) bool { return d.Account == "" || d.Account == id }

// period returns the UTC days [from, to) of view around date, and the
// dates of the previous and next periods.
func period(view string, date time.Time) (from, to, prev, next time.Time) {
	switch view {
	case "day":
		return date, date.AddDate(0, 0, 1), date.AddDate(0, 0, -1), date.AddDate(0, 0, 1)
	case "month":
		from = time.Date(date.Year(), date.Month(), 1, 0, 0, 0, 0, time.UTC)
		return from, from.AddDate(0, 1, 0), from.AddDate(0, -1, 0), from.AddDate(0, 1, 0)
	}
	from = date.AddDate(0, 0, -((int(date.Weekday()) + 6) % 7)) // Monday
	return from, from.AddDate(0, 0, 7), from.AddDate(0, 0, -7), from.AddDate(0, 0, 7)
}

func (c *Console) calendarPage(r *Request) {
	q := r.URL.Query()
	d := calendarData{View: q.Get("view"), Account: q.Get("account"), CanReschedule: r.Can("actions", "submit"), Names: map[string]string{}}
	if d.View != "day" && d.View != "month" {
		d.View = "week"
	}
	now := time.Now().UTC()
	date, err := time.Parse(time.DateOnly, q.Get("date"))
	if err != nil {
		date = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	}
	from, to, prev, next := period(d.View, date)
	d.Date, d.Prev, d.Next = date.Format(time.DateOnly), prev.Format(time.DateOnly), next.Format(time.DateOnly)
	d.From, d.To = from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly)
	// week and month views show whole weeks, Monday first
	gridFrom, gridTo := from, to
	if d.View != "day" {
		gridFrom = from.AddDate(0, 0, -((int(from.Weekday()) + 6) % 7))
		if wd := (int(to.Weekday()) + 6) % 7; wd != 0 {
			gridTo = to.AddDate(0, 0, 7-wd)
		}
	}
	var out struct {
		Days []calDay `json:"days"`
	}
	v := url.Values{"from": {gridFrom.Format(time.DateOnly)}, "to": {gridTo.Format(time.DateOnly)}}
	if err := r.API(http.MethodGet, "/v1/calendar?"+v.Encode(), nil, &out); err != nil {
		r.Fail(err)
		return
	}
	var accts struct {
		Accounts []composeAccount `json:"accounts"`
	}
	if r.Can("accounts", "read") {
		if err := r.API(http.MethodGet, "/v1/accounts", nil, &accts); err != nil {
			r.Fail(err)
			return
		}
	}
	d.Accounts = accts.Accounts
	for _, a := range accts.Accounts {
		d.Names[a.ID] = a.Name
	}
	byDay, err := scheduledActions(r, d.Account)
	if err != nil {
		r.Fail(err)
		return
	}
	today := now.Format(time.DateOnly)
	for i := range out.Days {
		day := &out.Days[i]
		day.InPeriod = day.Date >= d.From && day.Date <= d.To
		day.Today = day.Date == today
		day.Actions = byDay[day.Date]
		if d.Account != "" {
			day.Campaigns = filterCampaigns(day.Campaigns, d.Account)
			day.Conflicts = filterConflicts(day.Conflicts, d.Account, day.Campaigns)
		}
		if day.InPeriod {
			d.Conflicts += len(day.Conflicts)
			d.Days = append(d.Days, *day)
		}
	}
	if d.View != "day" {
		for i := 0; i+7 <= len(out.Days); i += 7 {
			d.Weeks = append(d.Weeks, out.Days[i:i+7])
		}
	}
	r.Render(http.StatusOK, "calendar", "calendar.title", "/calendar", d)
}

// filterConflicts keeps the conflicts of account: its own, and those of
// the campaigns it sends (shown is the day's campaigns for the account).
func filterConflicts(cs []calConflict, account string, shown []calCampaign) []calConflict {
	var out []calConflict
	for _, c := range cs {
		keep := c.Account == account || (c.Account == "" && len(c.Campaigns) == 0)
		for _, id := range c.Campaigns {
			for _, s := range shown {
				keep = keep || s.ID == id
			}
		}
		if keep {
			out = append(out, c)
		}
	}
	return out
}

func filterCampaigns(cs []calCampaign, account string) []calCampaign {
	var out []calCampaign
	for _, c := range cs {
		for _, a := range c.Accounts {
			if a == account {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// calAction is a scheduled action as the calendar lists it.
type calAction struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Purpose string    `json:"purpose"`
	Status  string    `json:"status"`
	SendAt  time.Time `json:"send_at"`
}

// scheduledActions returns the scheduled actions by UTC day (the API's
// listing is bounded; the calendar shows at most that many).
func scheduledActions(r *Request, account string) (map[string][]calAction, error) {
	v := url.Values{"status": {"scheduled"}, "limit": {"500"}}
	if account != "" {
		v.Set("account", account)
	}
	var out struct {
		Actions []calAction `json:"actions"`
	}
	if err := r.API(http.MethodGet, "/v1/actions?"+v.Encode(), nil, &out); err != nil {
		return nil, err
	}
	by := map[string][]calAction{}
	for _, a := range out.Actions {
		if !a.SendAt.IsZero() {
			d := a.SendAt.UTC().Format(time.DateOnly)
			by[d] = append(by[d], a)
		}
	}
	return by, nil
}

// calendarReschedule moves a scheduled action through the API: the same
// message at the new time is first decided as a dry run (a deny is shown
// and nothing changes), then the action is cancelled and submitted again,
// so the policy decides it again for its new time.
func (c *Console) calendarReschedule(r *Request) {
	id := url.PathEscape(r.PathValue("id"))
	back := localPath(r.PostFormValue("back"))
	if !strings.HasPrefix(back, "/calendar") {
		back = "/calendar"
	}
	at, err := time.Parse(scheduleLayout, strings.TrimSpace(r.PostFormValue("schedule_at")))
	if err != nil {
		r.Fail(&Problem{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Title: "Unprocessable Entity",
			Detail: "schedule_at: must be a date and time (YYYY-MM-DDTHH:MM, UTC)"})
		return
	}
	var cur struct {
		Action struct {
			Kind    string         `json:"kind"`
			Account string         `json:"account"`
			Target  string         `json:"target"`
			Contact string         `json:"contact"`
			Purpose string         `json:"purpose"`
			Status  string         `json:"status"`
			Content map[string]any `json:"content"`
		} `json:"action"`
	}
	if err := r.API(http.MethodGet, "/v1/actions/"+id, nil, &cur); err != nil {
		r.Fail(err)
		return
	}
	a := cur.Action
	if a.Status != "scheduled" {
		r.Fail(&Problem{Status: http.StatusConflict, Code: "illegal_transition", Title: "Conflict", Detail: "only a scheduled action can be rescheduled (this one is " + a.Status + ")"})
		return
	}
	target := a.Target
	if a.Contact != "" {
		target = a.Contact
	}
	body := map[string]any{"kind": a.Kind, "account": a.Account, "target": target, "purpose": a.Purpose, "schedule_at": at.UTC()}
	for k, v := range a.Content {
		body[k] = v
	}
	var dry struct {
		Decision policies.Decision `json:"decision"`
	}
	if err := r.API(http.MethodPost, "/v1/actions?dry_run=true", body, &dry); err != nil {
		r.Fail(err)
		return
	}
	if dry.Decision.Outcome == "deny" {
		var msgs []string
		for _, re := range dry.Decision.Reasons {
			msgs = append(msgs, re.Rule+": "+re.Message)
		}
		r.Fail(&Problem{Status: http.StatusUnprocessableEntity, Code: "policy_denied", Title: "Denied at the new time",
			Detail: strings.Join(msgs, "; ")})
		return
	}
	if err := r.API(http.MethodPost, "/v1/actions/"+id+"/cancel", nil, nil); err != nil {
		r.Fail(err)
		return
	}
	if err := r.API(http.MethodPost, "/v1/actions", body, nil); err != nil {
		r.Fail(err)
		return
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	r.Redirect(back + sep + "done=calendar.rescheduled")
}
