package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
)

// account is what pages show of an account.
type account struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	Connector   string     `json:"connector"`
	Status      string     `json:"status"`
	FrozenUntil *time.Time `json:"frozen_until"`
}

// accountNames lists the organisation's accounts for filters and labels;
// a person who may not read accounts gets none (and sees ids).
func (r *Request) accounts() ([]account, map[string]string, error) {
	names := map[string]string{}
	if !r.Can("accounts", "read") {
		return nil, names, nil
	}
	var out struct {
		Accounts []account `json:"accounts"`
	}
	if err := r.API(http.MethodGet, "/v1/accounts", nil, &out); err != nil {
		return nil, names, err
	}
	for _, a := range out.Accounts {
		names[a.ID] = a.Name
	}
	return out.Accounts, names, nil
}

type actionsData struct {
	Actions  []herald.Action
	Accounts []account
	Names    map[string]string
	Filter   map[string]string
	Next     string
	Statuses []string
	Purposes []string
	Kinds    []string
}

// actionsPage lists actions with filters (status, account, purpose: the
// API's; kind: applied to the page the API returned), newest first, with
// a cursor to older ones.
func (c *Console) actionsPage(r *Request) {
	q := r.URL.Query()
	f := map[string]string{}
	api := url.Values{"limit": {"100"}}
	for _, k := range []string{"status", "account", "purpose", "cursor"} {
		// Every key is present: templates index the map for each filter.
		f[k] = strings.TrimSpace(q.Get(k))
		if f[k] != "" {
			api.Set(k, f[k])
		}
	}
	f["kind"] = q.Get("kind")
	d := actionsData{Filter: f, Purposes: herald.Purposes, Kinds: herald.Kinds}
	for _, s := range herald.Statuses {
		d.Statuses = append(d.Statuses, string(s))
	}
	var err error
	if d.Accounts, d.Names, err = r.accounts(); err != nil {
		r.Fail(err)
		return
	}
	var out struct {
		Actions []herald.Action `json:"actions"`
		Next    string          `json:"next_cursor"`
	}
	if err := r.API(http.MethodGet, "/v1/actions?"+api.Encode(), nil, &out); err != nil {
		var p *Problem
		if asProblem(err, &p) && p.Status == http.StatusBadRequest {
			r.RenderProblem(http.StatusBadRequest, "actions", "actions.title", "/actions", d, p)
			return
		}
		r.Fail(err)
		return
	}
	for _, a := range out.Actions {
		if f["kind"] == "" || a.Kind == f["kind"] {
			d.Actions = append(d.Actions, a)
		}
	}
	d.Next = out.Next
	r.Render(http.StatusOK, "actions", "actions.title", "/actions", d)
}

// ledgerEntry is what the timeline shows of a ledger entry.
type ledgerEntry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Hash string    `json:"hash"`
}

type approvalState struct {
	Stages []struct {
		Stage     int      `json:"stage"`
		Role      string   `json:"role"`
		Mode      string   `json:"mode"`
		Approvers []string `json:"approvers"`
	} `json:"stages"`
	Votes []struct {
		Stage     int       `json:"stage"`
		Principal string    `json:"principal"`
		Vote      string    `json:"vote"`
		At        time.Time `json:"at"`
	} `json:"votes"`
	Current  *int `json:"current_stage"`
	Override *struct {
		Principal string    `json:"principal"`
		Rules     []string  `json:"rules"`
		At        time.Time `json:"at"`
	} `json:"override"`
}

type actionDetail struct {
	Action   herald.Action        `json:"action"`
	Events   []herald.ActionEvent `json:"events"`
	Approval *approvalState       `json:"approval"`
	Decision *policies.Decision   `json:"-"`
	Ledger   []ledgerEntry        `json:"-"`
	Account  string               `json:"-"`
	// Controls the person may use on this action.
	CanCancel, CanVote, CanOverride, Own bool
}

// getAction reads one action with its decision and approval state.
func (r *Request) getAction(id string) (actionDetail, error) {
	var d actionDetail
	if err := r.API(http.MethodGet, "/v1/actions/"+url.PathEscape(id), nil, &d); err != nil {
		return d, err
	}
	return r.detail(d.Action, d.Events, d.Approval), nil
}

// detail decides what the person may do with an action they have read.
func (r *Request) detail(a herald.Action, events []herald.ActionEvent, ap *approvalState) actionDetail {
	d := actionDetail{Action: a, Events: events, Approval: ap}
	if len(d.Action.Decision) > 0 {
		var dec policies.Decision
		if json.Unmarshal(d.Action.Decision, &dec) == nil {
			d.Decision = &dec
		}
	}
	d.Own = a.SubmittedBy == r.Me.Principal
	cancellable := a.Status == herald.StatusScheduled || a.Status == herald.StatusPendingApproval
	d.CanCancel = cancellable && (r.Can("actions", "cancel") || (d.Own && r.Can("actions/own", "cancel")))
	// Never your own: the approve/reject controls are absent for the
	// submitter (the API refuses a forged vote anyway).
	d.CanVote = a.Status == herald.StatusPendingApproval && !d.Own && r.Can("approvals", "approve")
	if a.Status == herald.StatusDenied && d.Decision != nil && r.Can("approvals", "approve") && !d.Own {
		d.CanOverride = len(d.Decision.Reasons) > 0
		for _, rs := range d.Decision.Reasons {
			if rs.Severity == "deny" && !rs.Overridable {
				d.CanOverride = false
			}
		}
	}
	return d
}

// actionPage is one action's timeline: transitions, the decision with its
// reasons and fixes, attempts, approvals, and its ledger entries, each
// with a "verify" button (static/verify.js checks the inclusion proof in
// the browser).
func (c *Console) actionPage(r *Request) {
	d, err := r.getAction(r.PathValue("id"))
	if err != nil {
		r.Fail(err)
		return
	}
	if r.Can("ledger", "read") {
		var out struct {
			Entries []ledgerEntry `json:"entries"`
		}
		if err := r.API(http.MethodGet, "/v1/ledger/entries?limit=200&action="+url.QueryEscape(d.Action.ID), nil, &out); err != nil {
			r.Fail(err)
			return
		}
		d.Ledger = out.Entries
	}
	_, names, err := r.accounts()
	if err != nil {
		r.Fail(err)
		return
	}
	d.Account = names[d.Action.Account]
	r.Render(http.StatusOK, "action", "action.title", "/actions", d)
}

// cancelAction posts the cancel to the API as the person.
func (c *Console) cancelAction(r *Request) {
	id := r.PathValue("id")
	if err := r.API(http.MethodPost, "/v1/actions/"+url.PathEscape(id)+"/cancel", nil, nil); err != nil {
		r.Fail(err)
		return
	}
	r.Redirect("/actions/" + url.PathEscape(id) + "?done=action.cancelled")
}

// ledgerProof answers the verify button: the inclusion bundle of entry
// seq (GET /v1/ledger/proof/inclusion as the person), passed through as
// JSON for static/verify.js, which checks it against the published key.
func (c *Console) ledgerProof(r *Request) {
	res, err := r.c.callAPI(r.Context(), r.Request, r.bearer, http.MethodGet,
		"/v1/ledger/proof/inclusion?seq="+url.QueryEscape(r.URL.Query().Get("seq")), nil)
	if err != nil {
		r.Fail(err)
		return
	}
	r.W.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	r.W.WriteHeader(res.Status)
	_, _ = r.W.Write(res.Body)
}
