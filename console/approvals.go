package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/heraldhq/herald"
)

// Approval queues (Hootsuite's tabs).
const (
	tabAssigned = "assigned"
	tabMine     = "mine"
	tabRejected = "rejected"
	tabExpired  = "expired"
)

type approvalTab struct{ ID, Key string }

type approvalsData struct {
	Tab   string
	Tabs  []approvalTab
	Items []actionDetail
}

// itemCap bounds a queue's page; the rejected tab reads each item's
// details (one API call each).
const itemCap = 50

// approvalsPage shows one queue: assigned to me (the API's own queue,
// which never holds my own actions), created by me, rejected (and denied:
// where overridable, with the override form) and expired.
func (c *Console) approvalsPage(r *Request) {
	d := approvalsData{Tab: r.URL.Query().Get("tab")}
	if r.Can("approvals", "read") {
		d.Tabs = append(d.Tabs, approvalTab{tabAssigned, "approvals.tab.assigned"})
	}
	if r.Can("actions", "read") {
		d.Tabs = append(d.Tabs, approvalTab{tabMine, "approvals.tab.mine"}, approvalTab{tabRejected, "approvals.tab.rejected"},
			approvalTab{tabExpired, "approvals.tab.expired"})
	}
	if len(d.Tabs) == 0 {
		r.Fail(&Problem{Status: http.StatusForbidden, Code: "forbidden"})
		return
	}
	known := false
	for _, t := range d.Tabs {
		known = known || t.ID == d.Tab
	}
	if !known {
		d.Tab = d.Tabs[0].ID
	}
	var ids []string
	switch d.Tab {
	case tabAssigned:
		// The API's queue carries each action's stages and votes: no
		// further call per item.
		var out struct {
			Approvals []struct {
				Action herald.Action `json:"action"`
				approvalState
			} `json:"approvals"`
		}
		if err := r.API(http.MethodGet, "/v1/approvals", nil, &out); err != nil {
			r.Fail(err)
			return
		}
		for _, a := range out.Approvals {
			if len(d.Items) == itemCap {
				break
			}
			ap := a.approvalState
			d.Items = append(d.Items, r.detail(a.Action, nil, &ap))
		}
	default:
		status := map[string]string{tabMine: "pending_approval", tabRejected: "denied", tabExpired: "expired"}[d.Tab]
		var out struct {
			Actions []herald.Action `json:"actions"`
		}
		if err := r.API(http.MethodGet, "/v1/actions?limit=100&status="+status, nil, &out); err != nil {
			r.Fail(err)
			return
		}
		for _, a := range out.Actions {
			if d.Tab == tabMine && a.SubmittedBy != r.Me.Principal {
				continue
			}
			if d.Tab != tabRejected {
				if len(d.Items) < itemCap {
					d.Items = append(d.Items, r.detail(a, nil, nil))
				}
				continue
			}
			ids = append(ids, a.ID)
		}
	}
	// Rejected and denied actions: their votes tell a rejection from a
	// policy denial, so each is read (at most itemCap).
	if len(ids) > itemCap {
		ids = ids[:itemCap]
	}
	for _, id := range ids {
		a, err := r.getAction(id)
		if err != nil {
			r.Fail(err)
			return
		}
		if d.Tab == tabRejected && a.Approval == nil && !a.CanOverride {
			continue // denied by policy, not overridable: nothing to decide here
		}
		d.Items = append(d.Items, a)
	}
	r.Render(http.StatusOK, "approvals", "approvals.title", "/approvals", d)
}

// vote posts approve, reject or override to the API as the person. The
// API decides: a vote on one's own action, by a role that may not approve,
// or on a stage not one's own is refused there and shown as such.
func (c *Console) vote(r *Request) {
	id, verb := r.PathValue("id"), r.PathValue("verb")
	var body map[string]string
	switch verb {
	case "approve", "reject":
		body = map[string]string{"comment": strings.TrimSpace(r.PostFormValue("comment"))}
	case "override":
		body = map[string]string{"justification": strings.TrimSpace(r.PostFormValue("justification"))}
	default:
		r.Fail(&Problem{Status: http.StatusNotFound, Code: "route_not_found"})
		return
	}
	if err := r.API(http.MethodPost, "/v1/actions/"+url.PathEscape(id)+"/"+verb, body, nil); err != nil {
		r.Fail(err)
		return
	}
	tab := r.PostFormValue("tab")
	if tab != tabAssigned && tab != tabRejected {
		tab = tabAssigned
	}
	r.Redirect("/approvals?tab=" + tab + "&done=approvals.done_" + verb)
}
