package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

// Personal data breaches (docs/dpia.md#incidents): recording one needs
// "reports":"write" (compliance officers), reading "reports":"read"
// (auditors too).
func (s *Server) incidentRoutes(v1 gin.IRoutes) {
	v1.POST("/incidents", s.createIncident)
	v1.GET("/incidents", s.listIncidents)
	v1.GET("/incidents/:id", s.getIncident)
	v1.POST("/incidents/:id/notify", s.notifyIncident)
}

// Incident text limits.
const (
	maxIncidentTitle       = 200
	maxIncidentDescription = 10000
	maxIncidentAccounts    = 100
)

type incidentView struct {
	store.Incident
	// Notification is the Art. 33(3) notification, filled with what Herald
	// knows; the controller completes the bracketed parts.
	Notification string `json:"notification"`
}

func view(in store.Incident, org string) incidentView {
	return incidentView{Incident: in, Notification: notificationText(in, org)}
}

// notificationText drafts the notification to the supervisory authority
// with the items Art. 33(3) requires.
func notificationText(in store.Incident, org string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Notification of a personal data breach (GDPR Art. 33)\n\n")
	fmt.Fprintf(&b, "Controller: %s\nReference: %s\n", org, in.ID)
	fmt.Fprintf(&b, "Became aware: %s; notification due by %s (72 hours).\n\n", in.DetectedAt.UTC().Format(time.RFC3339), in.DeadlineAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "(a) Nature of the breach: %s. Window concerned: %s to %s, on %d Telegram account(s).\n",
		in.Title, in.WindowFrom.UTC().Format(time.RFC3339), in.WindowTo.UTC().Format(time.RFC3339), len(in.Accounts))
	fmt.Fprintf(&b, "    Categories and approximate number of people concerned: %d people (Telegram contacts) and %d messages or actions, counted from the audit ledger; data categories: chat identifiers, message content, consent records.\n",
		in.AffectedSubjects, in.AffectedActions)
	fmt.Fprintf(&b, "(b) Contact point (data protection officer): [name, e-mail, telephone].\n")
	fmt.Fprintf(&b, "(c) Likely consequences: [unsolicited or altered messages in the organisation's name; exposure of chat identifiers and message content].\n")
	fmt.Fprintf(&b, "(d) Measures taken or proposed: [e.g. account secrets rotated (herald secrets rotate), affected accounts paused, people informed under Art. 34 where the risk is high].\n")
	if in.NotifiedAt != nil {
		fmt.Fprintf(&b, "\nNotified: %s.\n", in.NotifiedAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func (s *Server) createIncident(c *gin.Context) {
	if !s.authorize(c, "reports", "write") {
		return
	}
	var req struct {
		Title       string     `json:"title"`
		Description string     `json:"description"`
		DetectedAt  *time.Time `json:"detected_at"`
		Window      struct {
			From *time.Time `json:"from"`
			To   *time.Time `json:"to"`
		} `json:"window"`
		Accounts []string `json:"accounts"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	now := s.Store.Now()
	var fe []herald.FieldError
	text := func(field, v string, max int, required bool) {
		switch {
		case required && strings.TrimSpace(v) == "":
			fe = append(fe, herald.FieldError{Field: field, Message: "is required"})
		case len(v) > max:
			fe = append(fe, herald.FieldError{Field: field, Message: fmt.Sprintf("at most %d bytes", max)})
		case !utf8.ValidString(v) || strings.ContainsRune(v, 0) || strings.ContainsRune(v, utf8.RuneError):
			fe = append(fe, herald.FieldError{Field: field, Message: "must be valid UTF-8 text without NUL bytes"})
		}
	}
	text("title", req.Title, maxIncidentTitle, true)
	text("description", req.Description, maxIncidentDescription, false)
	if req.DetectedAt == nil {
		fe = append(fe, herald.FieldError{Field: "detected_at", Message: "is required: when the organisation became aware of the breach"})
	} else if req.DetectedAt.After(now.Add(time.Minute)) {
		fe = append(fe, herald.FieldError{Field: "detected_at", Message: "must not be in the future"})
	}
	if req.Window.From == nil || req.Window.To == nil || !req.Window.To.After(*req.Window.From) {
		fe = append(fe, herald.FieldError{Field: "window", Message: "from and to are required, to after from"})
	}
	if len(req.Accounts) == 0 || len(req.Accounts) > maxIncidentAccounts {
		fe = append(fe, herald.FieldError{Field: "accounts", Message: fmt.Sprintf("name 1 to %d accounts concerned", maxIncidentAccounts)})
	}
	for i, a := range req.Accounts {
		if !plausibleID(a) {
			fe = append(fe, herald.FieldError{Field: fmt.Sprintf("accounts[%d]", i), Message: "is not an account id"})
		}
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	p := principal(c)
	in, err := s.Store.RecordIncident(c.Request.Context(), store.Incident{Org: p.Org, Title: req.Title, Description: req.Description,
		DetectedAt: req.DetectedAt.UTC(), WindowFrom: req.Window.From.UTC(), WindowTo: req.Window.To.UTC(), Accounts: req.Accounts, CreatedBy: p.ID})
	respond(c, http.StatusCreated, view(in, s.orgName(c, p.Org)), err)
}

func (s *Server) orgName(c *gin.Context, org string) string {
	if o, err := s.Store.GetOrg(c.Request.Context(), org); err == nil {
		return o.Name
	}
	return org
}

func (s *Server) listIncidents(c *gin.Context) {
	if !s.authorize(c, "reports", "read") {
		return
	}
	org := principal(c).Org
	ins, err := s.Store.ListIncidents(c.Request.Context(), org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	name := s.orgName(c, org)
	out := make([]incidentView, len(ins))
	for i, in := range ins {
		out[i] = view(in, name)
	}
	writeJSON(c, http.StatusOK, gin.H{"incidents": out})
}

func (s *Server) getIncident(c *gin.Context) {
	if !s.authorize(c, "reports", "read") {
		return
	}
	id := c.Param("id")
	if !plausibleID(id) {
		writeProblem(c, herald.NotFound("incident"))
		return
	}
	org := principal(c).Org
	in, err := s.Store.GetIncident(c.Request.Context(), org, id)
	respond(c, http.StatusOK, view(in, s.orgName(c, org)), err)
}

func (s *Server) notifyIncident(c *gin.Context) {
	if !s.authorize(c, "reports", "write") {
		return
	}
	id := c.Param("id")
	if !plausibleID(id) {
		writeProblem(c, herald.NotFound("incident"))
		return
	}
	p := principal(c)
	in, err := s.Store.MarkIncidentNotified(c.Request.Context(), p.Org, id, p.ID)
	respond(c, http.StatusOK, view(in, s.orgName(c, p.Org)), err)
}
