package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/render"
)

// Compose: one message, decided as you type. The page's form posts its
// fields to /compose/preview (htmx, debounced) which calls
// POST /v1/actions?dry_run=true as the person and renders the preview, the
// decision with rule ids, messages, suggested fixes and risk factors; the
// submit button posts the same fields to /compose, which calls
// POST /v1/actions for real. Both go through the API: the console decides
// nothing itself.

// composeForm is the form's fields, kept to re-render the form.
type composeForm struct {
	Account, Contact, Chat, Purpose, Text, ParseMode, ScheduleAt string
}

// composeAccount and composeContact are what the form's selects list.
type composeAccount struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type composeContact struct {
	ID       string `json:"id"`
	ChatID   string `json:"chat_id"`
	Username string `json:"username"`
	Timezone string `json:"timezone"`
}

// Label is how a contact is named in the select: its @username, else its chat.
func (c composeContact) Label() string {
	n := c.ChatID
	if c.Username != "" {
		n = "@" + c.Username
	}
	if c.Timezone != "" {
		n += " (" + c.Timezone + ")"
	}
	return n
}

type composeData struct {
	Form     composeForm
	Accounts []composeAccount
	Contacts []composeContact
	Purposes []string
	Modes    []string
	Created  *composeCreated
	CanSend  bool
}

// composeCreated is the action a submission made, shown after the redirect.
type composeCreated struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	ScheduleAt *time.Time `json:"schedule_at"`
}

var composePurposes = []string{"marketing", "transactional", "support", "service"}

// composeModes are the parse modes Telegram accepts ("" is plain text).
var composeModes = []string{"", "MarkdownV2", "HTML"}

// composeContactLimit bounds the contacts the select lists; a larger
// organisation types a chat id or contact id instead.
const composeContactLimit = 200

// scheduleLayout is the value format of <input type="datetime-local">; the
// console reads and writes it in UTC (the label says so).
const scheduleLayout = "2006-01-02T15:04"

func formOf(r *Request) composeForm {
	return composeForm{
		Account: strings.TrimSpace(r.PostFormValue("account")), Contact: strings.TrimSpace(r.PostFormValue("contact")),
		Chat: strings.TrimSpace(r.PostFormValue("chat")), Purpose: r.PostFormValue("purpose"), Text: r.PostFormValue("text"),
		ParseMode: r.PostFormValue("parse_mode"), ScheduleAt: strings.TrimSpace(r.PostFormValue("schedule_at")),
	}
}

// request turns the form into the API's action body. A malformed field the
// API cannot see as sent (a time in the browser's format, bytes that JSON
// would silently replace) is refused here as the API would refuse it.
func (f composeForm) request() (map[string]any, *Problem) {
	for _, v := range []string{f.Account, f.Contact, f.Chat, f.Purpose, f.Text, f.ParseMode, f.ScheduleAt} {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, &Problem{Status: http.StatusBadRequest, Code: "invalid_encoding", Title: "Invalid encoding",
				Detail: "a field holds invalid UTF-8 or a NUL byte"}
		}
	}
	target := f.Chat
	if target == "" {
		target = f.Contact
	}
	body := map[string]any{"kind": "send_message", "account": f.Account, "target": target, "purpose": f.Purpose, "text": f.Text}
	if f.ParseMode != "" {
		body["parse_mode"] = f.ParseMode
	}
	if f.ScheduleAt != "" {
		at, err := time.Parse(scheduleLayout, f.ScheduleAt)
		if err != nil {
			if at, err = time.Parse(time.RFC3339, f.ScheduleAt); err != nil {
				return nil, &Problem{Status: http.StatusUnprocessableEntity, Code: "validation_failed", Title: "Unprocessable Entity",
					Detail: "schedule_at: must be a date and time (YYYY-MM-DDTHH:MM, UTC)"}
			}
		}
		body["schedule_at"] = at.UTC()
	}
	return body, nil
}

func (c *Console) composeData(r *Request, f composeForm) (composeData, error) {
	d := composeData{Form: f, Purposes: composePurposes, Modes: composeModes, CanSend: r.Can("actions", "submit")}
	if !d.CanSend {
		return d, nil
	}
	var accts struct {
		Accounts []composeAccount `json:"accounts"`
	}
	if err := r.API(http.MethodGet, "/v1/accounts", nil, &accts); err != nil {
		return d, err
	}
	d.Accounts = accts.Accounts
	if r.Can("contacts", "read") {
		var cs struct {
			Contacts []composeContact `json:"contacts"`
		}
		if err := r.API(http.MethodGet, "/v1/contacts?limit=200", nil, &cs); err != nil {
			return d, err
		}
		d.Contacts = cs.Contacts
	}
	if d.Form.Purpose == "" {
		d.Form.Purpose = "support"
	}
	return d, nil
}

// composePage shows the form (and, after a submission, the action it made).
func (c *Console) composePage(r *Request) {
	f := composeForm{Account: r.URL.Query().Get("account"), Contact: r.URL.Query().Get("contact")}
	d, err := c.composeData(r, f)
	if err != nil {
		r.Fail(err)
		return
	}
	if id := r.URL.Query().Get("created"); id != "" && d.CanSend {
		var out struct {
			Action composeCreated `json:"action"`
		}
		if err := r.API(http.MethodGet, "/v1/actions/"+url.PathEscape(id), nil, &out); err == nil {
			d.Created = &out.Action
		}
	}
	r.Render(http.StatusOK, "compose", "compose.title", "/compose", d)
}

// dryRunView is the live dry run's fragment.
type dryRunView struct {
	Empty     bool
	Problem   *Problem
	Errors    []fieldProblem
	Decision  *policies.Decision `json:"decision"`
	Preview   *render.Rendered   `json:"preview"`
	Formatted any                // template.HTML of the text as Telegram shows it
}

// fieldProblem is one field error of a refused dry run.
type fieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// composePreview answers the form's debounced htmx post with the dry run.
func (c *Console) composePreview(r *Request) {
	f := formOf(r)
	var v dryRunView
	if f.Account == "" || (f.Contact == "" && f.Chat == "") || strings.TrimSpace(f.Text) == "" {
		v.Empty = true
		c.fragment(r, http.StatusOK, "compose", "dryrun", v)
		return
	}
	body, p := f.request()
	if p != nil {
		v.Problem = p
		c.fragment(r, http.StatusOK, "compose", "dryrun", v)
		return
	}
	if err := r.API(http.MethodPost, "/v1/actions?dry_run=true", body, &v); err != nil {
		if !asProblem(err, &v.Problem) || v.Problem.Status == http.StatusUnauthorized || v.Problem.Status == http.StatusForbidden ||
			v.Problem.Status == http.StatusServiceUnavailable {
			r.Fail(err)
			return
		}
		v.Errors = fieldProblems(v.Problem)
		c.fragment(r, http.StatusOK, "compose", "dryrun", v)
		return
	}
	v.Formatted = telegramHTML(f.ParseMode, f.Text)
	c.fragment(r, http.StatusOK, "compose", "dryrun", v)
}

// composeSubmit submits the action for real; the API decides it again
// (the dry run shown is advice, not a promise).
func (c *Console) composeSubmit(r *Request) {
	f := formOf(r)
	body, p := f.request()
	if p == nil {
		var out struct {
			Action composeCreated `json:"action"`
		}
		err := r.API(http.MethodPost, "/v1/actions", body, &out)
		if err == nil {
			r.Redirect("/compose?done=compose.submitted&created=" + url.QueryEscape(out.Action.ID))
			return
		}
		if !asProblem(err, &p) || p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden || p.Status == http.StatusServiceUnavailable {
			r.Fail(err)
			return
		}
	}
	d, err := c.composeData(r, f)
	if err != nil {
		r.Fail(err)
		return
	}
	r.RenderProblem(p.Status, "compose", "compose.title", "/compose", d, p)
}
