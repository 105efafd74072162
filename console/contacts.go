package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// Contacts: search the organisation's contacts (GET /v1/contacts), and for
// one contact its consent history per purpose with source and time, the
// opt-out control, and its data-subject requests (list and record a new
// one). Everything goes through the API; the page only draws it.

type contactsData struct {
	Q        contactsQuery
	Contacts []herald.Contact
	Next     string
	Purposes []string
}

// contactsQuery is the search form; its fields are the API's filters.
type contactsQuery struct {
	ChatID, Tag, Consent, OptedOut, Cursor string
}

func (q contactsQuery) values() url.Values {
	v := url.Values{"limit": {"50"}}
	for k, s := range map[string]string{"chat_id": q.ChatID, "tag": q.Tag, "consent": q.Consent, "opted_out": q.OptedOut, "cursor": q.Cursor} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// Query is the query string of this search from cursor on (the next page).
func (q contactsQuery) Query(cursor string) string {
	q.Cursor = cursor
	v := q.values()
	v.Del("limit")
	return v.Encode()
}

// contactsPage searches contacts.
func (c *Console) contactsPage(r *Request) {
	qs := r.URL.Query()
	d := contactsData{Purposes: composePurposes, Q: contactsQuery{ChatID: strings.TrimSpace(qs.Get("chat_id")), Tag: strings.TrimSpace(qs.Get("tag")),
		Consent: qs.Get("consent"), OptedOut: qs.Get("opted_out"), Cursor: qs.Get("cursor")}}
	var out struct {
		Contacts []herald.Contact `json:"contacts"`
		Next     string           `json:"next_cursor"`
	}
	if err := r.API(http.MethodGet, "/v1/contacts?"+d.Q.values().Encode(), nil, &out); err != nil {
		var p *Problem
		if asProblem(err, &p) && p.Status == http.StatusUnprocessableEntity {
			r.RenderProblem(p.Status, "contacts", "contacts.title", "/contacts", d, p)
			return
		}
		r.Fail(err)
		return
	}
	d.Contacts, d.Next = out.Contacts, out.Next
	r.Render(http.StatusOK, "contacts", "contacts.title", "/contacts", d)
}

type consentEvent struct {
	Purpose string    `json:"purpose"`
	Event   string    `json:"event"`
	Basis   string    `json:"basis"`
	Source  string    `json:"source"`
	At      time.Time `json:"at"`
}

type contactData struct {
	Contact     herald.Contact
	History     []consentEvent
	Requests    []subjectRequest
	Kinds       []string
	CanSubjects bool
}

// subjectKinds are the kinds of data-subject request the API records.
var subjectKinds = []string{"access", "rectification", "erasure", "portability", "restriction", "objection", "human_review"}

// contactPage shows one contact.
func (c *Console) contactPage(r *Request) {
	d, err := c.contactData(r)
	if err != nil {
		r.Fail(err)
		return
	}
	r.Render(http.StatusOK, "contact", "contacts.contact", "/contacts", d)
}

func (c *Console) contactData(r *Request) (contactData, error) {
	id := url.PathEscape(r.PathValue("id"))
	d := contactData{Kinds: subjectKinds, CanSubjects: r.Can("reports", "read") && r.Can("contacts", "read")}
	if err := r.API(http.MethodGet, "/v1/contacts/"+id, nil, &d.Contact); err != nil {
		return d, err
	}
	var h struct {
		History []consentEvent `json:"history"`
	}
	if err := r.API(http.MethodGet, "/v1/contacts/"+id+"/consents", nil, &h); err != nil {
		return d, err
	}
	// newest first: what changed last is what a person asks about
	for i := len(h.History) - 1; i >= 0; i-- {
		d.History = append(d.History, h.History[i])
	}
	if d.CanSubjects {
		var sr struct {
			Requests []subjectRequest `json:"requests"`
		}
		if err := r.API(http.MethodGet, "/v1/subject-requests", nil, &sr); err != nil {
			return d, err
		}
		for _, q := range sr.Requests {
			if q.Contact == d.Contact.ID {
				d.Requests = append(d.Requests, q)
			}
		}
	}
	return d, nil
}

func cleanField(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// contactOptOut records an opt-out the person asked for, with its source.
func (c *Console) contactOptOut(r *Request) {
	source := strings.TrimSpace(r.PostFormValue("source"))
	if source == "" {
		source = "console"
	}
	if !cleanField(source) {
		c.contactProblem(r, &Problem{Status: http.StatusBadRequest, Code: "invalid_encoding", Title: "Invalid encoding", Detail: "source: invalid UTF-8 or a NUL byte"})
		return
	}
	id := r.PathValue("id")
	if err := r.API(http.MethodPost, "/v1/contacts/"+url.PathEscape(id)+"/opt-out", map[string]string{"source": source}, nil); err != nil {
		c.contactRefused(r, err)
		return
	}
	r.Redirect("/contacts/" + url.PathEscape(id) + "?done=contacts.opted_out_flash")
}

// contactSubjectRequest records a data-subject request about the contact.
func (c *Console) contactSubjectRequest(r *Request) {
	id := r.PathValue("id")
	kind := r.PostFormValue("kind")
	if err := r.API(http.MethodPost, "/v1/subject-requests", map[string]any{"kind": kind, "subject": map[string]string{"contact": id}}, nil); err != nil {
		c.contactRefused(r, err)
		return
	}
	r.Redirect("/contacts/" + url.PathEscape(id) + "?done=contacts.request_recorded")
}

// contactRefused shows a validation refusal on the contact's page, and
// anything else (403, 404, 503) as the foundation's error page.
func (c *Console) contactRefused(r *Request, err error) {
	var p *Problem
	if asProblem(err, &p) && (p.Status == http.StatusUnprocessableEntity || p.Status == http.StatusBadRequest || p.Status == http.StatusConflict) {
		c.contactProblem(r, p)
		return
	}
	r.Fail(err)
}

func (c *Console) contactProblem(r *Request, p *Problem) {
	d, err := c.contactData(r)
	if err != nil {
		r.Fail(err)
		return
	}
	r.RenderProblem(p.Status, "contact", "contacts.contact", "/contacts", d, p)
}
