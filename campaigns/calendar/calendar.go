// Package calendar is the activity calendar: per account and per day, the
// actions queued and the campaigns planned, with the conflicts an operator
// should see before they happen. It reads; it never changes anything.
package calendar

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/store"
)

// MaxDays bounds one calendar request.
const MaxDays = 62

// Safe daily volumes per account kind: above them an account risks
// Telegram's spam limits. Bots: a conservative share of the ~30 msg/s Bot
// API limit over a working day; user accounts: the default bundle's
// user_cold_per_day.
const (
	SafeDailyBot  = 100_000
	SafeDailyUser = 30
)

// Conflict kinds.
const (
	ConflictAccountVolume = "account_volume" // an account's day exceeds its safe volume
	ConflictOverlapCap    = "overlap_cap"    // two campaigns reach the same people on one day, over a cap of 1
	ConflictQuietHours    = "quiet_hours"    // most of a campaign's audience would get it inside quiet hours
)

// Conflict is one flagged problem.
type Conflict struct {
	Kind      string   `json:"kind"`
	Date      string   `json:"date"`
	Account   string   `json:"account,omitempty"`
	Campaigns []string `json:"campaigns,omitempty"`
	// People is how many recipients the conflict touches (overlap, quiet hours).
	People  int    `json:"people,omitempty"`
	Volume  int    `json:"volume,omitempty"`
	Limit   int    `json:"limit,omitempty"`
	Message string `json:"message"`
}

// Day is one day of the calendar.
type Day struct {
	Date      string         `json:"date"`
	Accounts  []AccountDay   `json:"accounts"`
	Campaigns []CampaignView `json:"campaigns"`
	Conflicts []Conflict     `json:"conflicts"`
}

// AccountDay is one account's day.
type AccountDay struct {
	Account string `json:"account"`
	// Scheduled counts actions queued for the day; Pending counts campaign
	// recipients not yet submitted whose turn falls on the day; Planned
	// estimates not-yet-started campaigns' recipients on their first day.
	Scheduled int `json:"scheduled_actions"`
	Pending   int `json:"pending_recipients"`
	Planned   int `json:"planned_recipients"`
	Volume    int `json:"volume"`
}

// CampaignView is a campaign on its start day.
type CampaignView struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Status     campaigns.Status `json:"status"`
	Purpose    string           `json:"purpose"`
	Start      time.Time        `json:"start"`
	Accounts   []string         `json:"accounts"`
	Recipients int              `json:"recipients"`
}

// Options are the policy facts the conflict checks use.
type Options struct {
	// DailyCap is the per-recipient daily cap per purpose (0: none).
	DailyCap map[string]int
	// QuietFrom and QuietTo bound quiet hours ("21:00", "09:00"); empty: none.
	QuietFrom, QuietTo string
	// QuietExempt purposes ignore quiet hours.
	QuietExempt []string
}

// Build assembles the calendar of org for the UTC days [from, to).
func Build(ctx context.Context, s *store.Store, org string, from, to time.Time, o Options) ([]Day, error) {
	o0, err := s.GetOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	orgZone := campaigns.LoadZone(o0.Timezone, time.UTC)
	accts, err := s.ListAccounts(ctx, org)
	if err != nil {
		return nil, err
	}
	kind := map[string]string{}
	for _, a := range accts {
		kind[a.ID] = a.Kind
	}
	// Campaigns that may send in the range.
	var active []campaigns.Campaign
	for _, st := range []campaigns.Status{campaigns.StatusScheduled, campaigns.StatusRunning, campaigns.StatusPaused} {
		cs, err := s.ListCampaigns(ctx, org, st, 500)
		if err != nil {
			return nil, err
		}
		active = append(active, cs...)
	}
	sort.Slice(active, func(i, j int) bool { return active[i].ID < active[j].ID })
	audience := map[string][]store.Member{}
	for _, c := range active {
		var ms []store.Member
		switch {
		case c.Materialized:
			ms, err = s.RecipientMembers(ctx, org, c.ID)
		case c.Spec.Segment != "":
			var seg campaigns.Segment
			if seg, err = s.GetSegment(ctx, org, c.Spec.Segment); err == nil {
				ms, err = s.SegmentMembers(ctx, org, seg.Filter)
			}
		default:
			ms, err = s.ContactMembers(ctx, org, c.Spec.Contacts)
		}
		if err != nil {
			return nil, fmt.Errorf("campaign %s audience: %w", c.ID, err)
		}
		audience[c.ID] = ms
	}
	now := s.Now()
	startOf := func(c campaigns.Campaign) time.Time {
		if c.Spec.StartAt != nil && c.Spec.StartAt.After(now) {
			return c.Spec.StartAt.UTC()
		}
		if c.Status == campaigns.StatusScheduled {
			return now
		}
		return c.UpdatedAt
	}
	var days []Day
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		end := d.AddDate(0, 0, 1)
		day := Day{Date: d.Format(time.DateOnly), Accounts: []AccountDay{}, Campaigns: []CampaignView{}, Conflicts: []Conflict{}}
		sched, err := s.AccountDayCounts(ctx, org, d, end)
		if err != nil {
			return nil, err
		}
		pend, err := s.PendingRecipientDayCounts(ctx, org, d, end)
		if err != nil {
			return nil, err
		}
		planned := map[string]int{}
		var today []campaigns.Campaign
		for _, c := range active {
			st := startOf(c)
			if st.Before(d) || !st.Before(end) {
				continue
			}
			today = append(today, c)
			ms := audience[c.ID]
			day.Campaigns = append(day.Campaigns, CampaignView{ID: c.ID, Name: c.Name, Status: c.Status, Purpose: c.Spec.Purpose,
				Start: st, Accounts: c.Spec.Accounts, Recipients: len(ms)})
			if !c.Materialized {
				for _, m := range ms {
					if a, err := campaigns.Assign(m.ID, c.Spec.Accounts, nil); err == nil {
						planned[a]++
					}
				}
			}
			if n := quietShare(ms, st, c, orgZone, o); n*2 > len(ms) && len(ms) > 0 {
				day.Conflicts = append(day.Conflicts, Conflict{Kind: ConflictQuietHours, Date: day.Date, Campaigns: []string{c.ID}, People: n,
					Message: fmt.Sprintf("%d of %d recipients would get it inside quiet hours; the policy will defer them", n, len(ms))})
			}
		}
		ids := map[string]bool{}
		for _, m := range []map[string]int{sched, pend, planned} {
			for a := range m {
				ids[a] = true
			}
		}
		for a := range ids {
			ad := AccountDay{Account: a, Scheduled: sched[a], Pending: pend[a], Planned: planned[a]}
			ad.Volume = ad.Scheduled + ad.Pending + ad.Planned
			day.Accounts = append(day.Accounts, ad)
			limit := SafeDailyBot
			if kind[a] == herald.AccountUser {
				limit = SafeDailyUser
			}
			if ad.Volume > limit {
				day.Conflicts = append(day.Conflicts, Conflict{Kind: ConflictAccountVolume, Date: day.Date, Account: a, Volume: ad.Volume, Limit: limit,
					Message: fmt.Sprintf("the account would send %d messages; its safe daily volume is %d", ad.Volume, limit)})
			}
		}
		sort.Slice(day.Accounts, func(i, j int) bool { return day.Accounts[i].Account < day.Accounts[j].Account })
		for i := 0; i < len(today); i++ {
			for j := i + 1; j < len(today); j++ {
				a, b := today[i], today[j]
				if a.Spec.Purpose != b.Spec.Purpose || o.DailyCap[a.Spec.Purpose] != 1 {
					continue
				}
				if n := overlap(audience[a.ID], audience[b.ID]); n > 0 {
					day.Conflicts = append(day.Conflicts, Conflict{Kind: ConflictOverlapCap, Date: day.Date, Campaigns: []string{a.ID, b.ID}, People: n,
						Message: fmt.Sprintf("%d people are in both campaigns and may receive one %s message a day: the second is deferred for them", n, a.Spec.Purpose)})
				}
			}
		}
		days = append(days, day)
	}
	return days, nil
}

// overlap counts members in both id-sorted lists.
func overlap(a, b []store.Member) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].ID == b[j].ID:
			n++
			i++
			j++
		case a[i].ID < b[j].ID:
			i++
		default:
			j++
		}
	}
	return n
}

// quietShare counts the members whose staggered send time falls inside
// quiet hours in their zone.
func quietShare(ms []store.Member, start time.Time, c campaigns.Campaign, orgZone *time.Location, o Options) int {
	if o.QuietFrom == "" || o.QuietTo == "" {
		return 0
	}
	for _, p := range o.QuietExempt {
		if p == c.Spec.Purpose {
			return 0
		}
	}
	quiet := campaigns.Window{From: o.QuietFrom, To: o.QuietTo}
	n := 0
	zones := map[string]*time.Location{}
	for _, m := range ms {
		loc, ok := zones[m.Timezone]
		if !ok {
			loc = campaigns.LoadZone(m.Timezone, orgZone)
			zones[m.Timezone] = loc
		}
		if quiet.Contains(campaigns.SendTime(start, loc, c.Spec.Window), loc) {
			n++
		}
	}
	return n
}
