package console

import (
	"net/http"
	"strconv"
	"time"
)

// signal is one line of the Today page: what is wrong (or fine), how much,
// and where it is fixed.
type signal struct {
	Key   string // catalogue key of the label
	Value string
	Level string // "ok", "warn" or "bad"
	Href  string
	Fix   string // catalogue key of the link's text
}

// listCap bounds the lists Today counts: beyond it the page says "100+"
// (a count the API does not offer would cost a page of actions per signal).
const listCap = 100

// today is the home page: operational signals from the public API, each
// linking to where it is fixed. A signal the person may not read is left
// out (the API would refuse it anyway).
func (c *Console) today(r *Request) {
	var sigs []signal
	count := func(n int) string {
		if n >= listCap {
			return strconv.Itoa(listCap) + "+"
		}
		return strconv.Itoa(n)
	}
	level := func(n int, bad string) string {
		if n == 0 {
			return "ok"
		}
		return bad
	}
	if r.Can("actions", "read") {
		for _, st := range []struct{ status, key, lvl string }{
			{"unknown", "today.unknown", "bad"}, {"failed", "today.failed", "bad"}, {"pending_approval", "today.waiting", "warn"},
		} {
			var out struct {
				Actions []struct {
					ID string `json:"id"`
				} `json:"actions"`
			}
			if err := r.API(http.MethodGet, "/v1/actions?limit="+strconv.Itoa(listCap)+"&status="+st.status, nil, &out); err != nil {
				r.Fail(err)
				return
			}
			n := len(out.Actions)
			sigs = append(sigs, signal{Key: st.key, Value: count(n), Level: level(n, st.lvl), Href: "/actions?status=" + st.status, Fix: "today.fix.review"})
		}
	}
	if r.Can("approvals", "read") {
		var out struct {
			Approvals []any `json:"approvals"`
		}
		if err := r.API(http.MethodGet, "/v1/approvals", nil, &out); err != nil {
			r.Fail(err)
			return
		}
		n := len(out.Approvals)
		sigs = append(sigs, signal{Key: "today.assigned", Value: count(n), Level: level(n, "warn"), Href: "/approvals", Fix: "today.fix.decide"})
	}
	if r.Can("accounts", "read") {
		var out struct {
			Accounts []struct {
				Status      string     `json:"status"`
				FrozenUntil *time.Time `json:"frozen_until"`
			} `json:"accounts"`
		}
		if err := r.API(http.MethodGet, "/v1/accounts", nil, &out); err != nil {
			r.Fail(err)
			return
		}
		frozen, paused := 0, 0
		for _, a := range out.Accounts {
			switch {
			case a.FrozenUntil != nil && a.FrozenUntil.After(time.Now()):
				frozen++
			case a.Status != "" && a.Status != "active":
				paused++
			}
		}
		sigs = append(sigs, signal{Key: "today.frozen", Value: count(frozen), Level: level(frozen, "bad"), Href: "/admin#accounts", Fix: "today.fix.accounts"},
			signal{Key: "today.paused", Value: count(paused), Level: level(paused, "warn"), Href: "/admin#accounts", Fix: "today.fix.accounts"})
	}
	if r.Can("reports", "read") {
		var rep struct {
			Overall struct {
				Delivered  int     `json:"delivered"`
				Failed     int     `json:"failed"`
				Unknown    int     `json:"unknown"`
				ErrorRatio float64 `json:"error_ratio"`
				LatencyMet bool    `json:"latency_met"`
				ErrorsMet  bool    `json:"errors_met"`
				BudgetLeft float64 `json:"error_budget_left"`
			} `json:"overall"`
		}
		if err := r.API(http.MethodGet, "/v1/slo", nil, &rep); err != nil {
			r.Fail(err)
			return
		}
		lvl := "ok"
		if !rep.Overall.ErrorsMet || !rep.Overall.LatencyMet {
			lvl = "bad"
		}
		sigs = append(sigs, signal{Key: "today.slo", Value: strconv.FormatFloat(rep.Overall.BudgetLeft*100, 'f', 1, 64) + "%",
			Level: lvl, Href: "/actions?status=failed", Fix: "today.fix.review"})
		if r.Can("contacts", "read") {
			var out struct {
				Requests []struct {
					DueAt   time.Time `json:"due_at"`
					Overdue bool      `json:"overdue"`
				} `json:"requests"`
			}
			if err := r.API(http.MethodGet, "/v1/subject-requests?status=open", nil, &out); err != nil {
				r.Fail(err)
				return
			}
			due := 0
			soon := time.Now().Add(7 * 24 * time.Hour)
			for _, q := range out.Requests {
				if q.Overdue || q.DueAt.Before(soon) {
					due++
				}
			}
			sigs = append(sigs, signal{Key: "today.subjects", Value: count(due), Level: level(due, "warn"), Href: "/audit#subjects", Fix: "today.fix.subjects"})
		}
	}
	r.Render(http.StatusOK, "today", "today.title", "/", sigs)
}
