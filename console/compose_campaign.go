package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/heraldhq/herald/campaigns/fanout"
)

// The campaign variant of Compose: a draft campaign (name, purpose, text,
// recipients, account, start) is created through POST /v1/campaigns, and
// its page shows POST /v1/campaigns/{id}/dry-run — the real policy decided
// for every recipient (up to the API's limit) without sending: predicted
// outcomes, the rules behind them, volume per account, sample messages and
// the predicted completion. Scheduling it is one more API call.

type campaignSummary struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type campaignComposeData struct {
	Form      composeForm
	Name      string
	Selected  []string
	Accounts  []composeAccount
	Contacts  []composeContact
	Purposes  []string
	Modes     []string
	Campaigns []campaignSummary
	CanSend   bool
}

// Picked reports whether a contact was chosen in the form.
func (d campaignComposeData) Picked(id string) bool {
	for _, s := range d.Selected {
		if s == id {
			return true
		}
	}
	return false
}

func (c *Console) campaignComposeData(r *Request, f composeForm, name string, selected []string) (campaignComposeData, error) {
	base, err := c.composeData(r, f)
	d := campaignComposeData{Form: base.Form, Name: name, Selected: selected, Accounts: base.Accounts, Contacts: base.Contacts,
		Purposes: composePurposes, Modes: composeModes, CanSend: base.CanSend}
	if err != nil || !d.CanSend {
		return d, err
	}
	var cs struct {
		Campaigns []campaignSummary `json:"campaigns"`
	}
	if err := r.API(http.MethodGet, "/v1/campaigns?status=draft", nil, &cs); err != nil {
		return d, err
	}
	d.Campaigns = cs.Campaigns
	return d, nil
}

// campaignComposePage shows the draft form and the drafts to dry-run.
func (c *Console) campaignComposePage(r *Request) {
	d, err := c.campaignComposeData(r, composeForm{}, "", nil)
	if err != nil {
		r.Fail(err)
		return
	}
	r.Render(http.StatusOK, "compose_campaign", "campaign.title", "/compose", d)
}

// campaignCreate creates the draft and opens its dry run.
func (c *Console) campaignCreate(r *Request) {
	f := formOf(r)
	name := strings.TrimSpace(r.PostFormValue("name"))
	_ = r.ParseForm()
	selected := r.PostForm["contacts"]
	body, p := f.request()
	if p == nil && !cleanField(name) {
		p = &Problem{Status: http.StatusBadRequest, Code: "invalid_encoding", Title: "Invalid encoding", Detail: "name: invalid UTF-8 or a NUL byte"}
	}
	if p == nil {
		tpl := map[string]any{"text": f.Text}
		if f.ParseMode != "" {
			tpl["parse_mode"] = f.ParseMode
		}
		req := map[string]any{"name": name, "kind": "send_message", "purpose": f.Purpose, "template": tpl,
			"contacts": selected, "accounts": []string{f.Account}}
		if at, ok := body["schedule_at"]; ok {
			req["start_at"] = at
		}
		var out campaignSummary
		err := r.API(http.MethodPost, "/v1/campaigns", req, &out)
		if err == nil {
			r.Redirect("/compose/campaigns/" + url.PathEscape(out.ID))
			return
		}
		if !asProblem(err, &p) || p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden || p.Status == http.StatusServiceUnavailable {
			r.Fail(err)
			return
		}
	}
	d, err := c.campaignComposeData(r, f, name, selected)
	if err != nil {
		r.Fail(err)
		return
	}
	r.RenderProblem(p.Status, "compose_campaign", "campaign.title", "/compose", d, p)
}

type countRow struct {
	Key   string
	Count int
}

func sortedCounts(m map[string]int) []countRow {
	out := make([]countRow, 0, len(m))
	for k, n := range m {
		out = append(out, countRow{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	return out
}

type campaignDryRunData struct {
	Campaign   campaignSummary
	Prediction fanout.Prediction
	Outcomes   []countRow
	ByRule     []countRow
	PerAccount []countRow
	Names      map[string]string
	CanSend    bool
}

// Name is an account's name (its id when unknown).
func (d campaignDryRunData) Name(id string) string {
	if n, ok := d.Names[id]; ok {
		return n
	}
	return id
}

// campaignDryRunPage shows a campaign's predicted outcome.
func (c *Console) campaignDryRunPage(r *Request) {
	id := url.PathEscape(r.PathValue("id"))
	d := campaignDryRunData{CanSend: r.Can("actions", "submit"), Names: map[string]string{}}
	var got struct {
		Campaign campaignSummary `json:"campaign"`
	}
	if err := r.API(http.MethodGet, "/v1/campaigns/"+id, nil, &got); err != nil {
		r.Fail(err)
		return
	}
	d.Campaign = got.Campaign
	var out struct {
		Prediction fanout.Prediction `json:"prediction"`
	}
	if err := r.API(http.MethodPost, "/v1/campaigns/"+id+"/dry-run?samples=5", nil, &out); err != nil {
		r.Fail(err)
		return
	}
	var accts struct {
		Accounts []composeAccount `json:"accounts"`
	}
	if err := r.API(http.MethodGet, "/v1/accounts", nil, &accts); err != nil {
		r.Fail(err)
		return
	}
	for _, a := range accts.Accounts {
		d.Names[a.ID] = a.Name
	}
	d.Prediction = out.Prediction
	d.Outcomes, d.ByRule, d.PerAccount = sortedCounts(out.Prediction.Outcomes), sortedCounts(out.Prediction.ByRule), sortedCounts(out.Prediction.PerAccount)
	r.Render(http.StatusOK, "campaign_dryrun", "campaign.dryrun", "/compose", d)
}

// campaignSchedule schedules a draft (the fan-out then submits each
// recipient's message, decided by the policy at that time).
func (c *Console) campaignSchedule(r *Request) {
	id := url.PathEscape(r.PathValue("id"))
	if err := r.API(http.MethodPost, "/v1/campaigns/"+id+"/schedule", nil, nil); err != nil {
		r.Fail(err)
		return
	}
	r.Redirect("/calendar?date=" + time.Now().UTC().Format(time.DateOnly) + "&done=campaign.scheduled")
}
