package gateway

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/store"
)

// Data-subject requests (docs/dpia.md#data-subject-requests).
//
// Access: every route needs "reports":"read" and "contacts":"read"
// (auditors and compliance officers hold both). Completing a request that
// changes the person's data — erasure ("contacts":"erase"), rectification,
// restriction and objection ("contacts":"write") — and lifting a
// restriction or objection need the write permission too, so an auditor
// files, tracks, extends and answers access, portability and human-review
// requests, and a compliance officer carries out the rest.
func (s *Server) subjectRoutes(v1 gin.IRoutes) {
	v1.POST("/subject-requests", s.createSubjectRequest)
	v1.GET("/subject-requests", s.listSubjectRequests)
	v1.GET("/subject-requests/:id", s.getSubjectRequest)
	v1.POST("/subject-requests/:id/extend", s.extendSubjectRequest)
	v1.POST("/subject-requests/:id/complete", s.completeSubjectRequest)
	v1.POST("/subject-requests/:id/lift", s.liftSubjectRequest)
	v1.GET("/subject-requests/:id/export", s.exportSubjectRequest)
	s.registerOverdueGauge()
}

// registerOverdueGauge exports herald_subject_requests_overdue: a count
// over every organisation, with no labels (an organisation's id would say
// who is late to whom; the DPIA names it per organisation).
func (s *Server) registerOverdueGauge() {
	if s.Metrics == nil || s.Metrics.Registry == nil {
		return
	}
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_subject_requests_overdue",
		Help: "Data-subject requests still open past their due date (30 days, or 90 when extended)."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := s.Store.OverdueSubjectRequests(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	var are prometheus.AlreadyRegisteredError
	if err := s.Metrics.Registry.Register(g); err != nil && !errors.As(err, &are) {
		s.logger().Error("register subject request gauge", "err", err)
	}
}

func (s *Server) authorizeSubjects(c *gin.Context) bool {
	return s.authorize(c, "reports", "read") && s.authorize(c, "contacts", "read")
}

// plausibleID reports whether id could name a row: ids are UUIDs, so
// anything long, with NUL bytes or invalid UTF-8 names nothing (and must
// not reach PostgreSQL, which refuses such text with an error).
func plausibleID(id string) bool {
	return id != "" && len(id) <= 64 && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// requestID is the :id path parameter, or a 404 answered.
func requestID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if !plausibleID(id) {
		writeProblem(c, herald.NotFound("subject request"))
		return "", false
	}
	return id, true
}

var telegramIDPattern = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)

type subjectRef struct {
	Contact    string `json:"contact,omitempty"`
	ChatID     string `json:"chat_id,omitempty"`
	TelegramID string `json:"telegram_id,omitempty"`
}

// resolveSubject finds the contact a request names: by contact id, chat id,
// or Telegram user id (a person's private chat id is their user id). A
// chat id or Telegram id no contact has names a person Herald holds
// nothing about: it answers contact "" and the id (unknown), so the request
// is still recorded and answered. A contact id that does not exist names
// no record and stays not found.
func (s *Server) resolveSubject(ctx context.Context, org string, ref subjectRef) (contact, unknown string, err error) {
	n := 0
	for _, v := range []string{ref.Contact, ref.ChatID, ref.TelegramID} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return "", "", herald.Invalid(herald.FieldError{Field: "subject", Message: "name the person by exactly one of contact, chat_id or telegram_id"})
	}
	var chat string
	switch {
	case ref.Contact != "":
		if !plausibleID(ref.Contact) {
			return "", "", herald.NotFound("contact")
		}
		c, err := s.Store.GetContact(ctx, org, ref.Contact)
		return c.ID, "", err
	case ref.ChatID != "":
		if !herald.ValidChatID(ref.ChatID) {
			return "", "", herald.Invalid(herald.FieldError{Field: "subject.chat_id", Message: "must be a Telegram chat id or @username"})
		}
		chat = ref.ChatID
	default:
		if !telegramIDPattern.MatchString(ref.TelegramID) {
			return "", "", herald.Invalid(herald.FieldError{Field: "subject.telegram_id", Message: "must be a Telegram user id (digits)"})
		}
		chat = ref.TelegramID
	}
	c, err := s.Store.ContactByChat(ctx, org, chat)
	if herald.IsNotFound(err) {
		return "", chat, nil
	}
	return c.ID, "", err
}

func (s *Server) createSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	var req struct {
		Kind    string     `json:"kind"`
		Subject subjectRef `json:"subject"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if !slices.Contains(store.SubjectKinds, req.Kind) {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "kind",
			Message: "must be access, rectification, erasure, portability, restriction, objection or human_review"}))
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	contact, unknown, err := s.resolveSubject(ctx, p.Org, req.Subject)
	if err != nil {
		writeProblem(c, err)
		return
	}
	var r store.SubjectRequest
	if contact == "" {
		r, err = s.Store.CreateUnknownSubjectRequest(ctx, p.Org, req.Kind, unknown, p.ID)
	} else {
		r, err = s.Store.CreateSubjectRequest(ctx, p.Org, req.Kind, contact, p.ID)
	}
	respond(c, http.StatusCreated, r, err)
}

func (s *Server) listSubjectRequests(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	status := c.Query("status")
	if status != "" && status != store.SubjectOpen && status != store.SubjectCompleted && status != store.SubjectLifted {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "status", Message: "must be open, completed or lifted"}))
		return
	}
	rs, err := s.Store.ListSubjectRequests(c.Request.Context(), principal(c).Org, status)
	respond(c, http.StatusOK, gin.H{"requests": rs}, err)
}

func (s *Server) getSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	id, ok := requestID(c)
	if !ok {
		return
	}
	r, err := s.Store.GetSubjectRequest(c.Request.Context(), principal(c).Org, id)
	respond(c, http.StatusOK, r, err)
}

func (s *Server) extendSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	id, ok := requestID(c)
	if !ok {
		return
	}
	p := principal(c)
	r, err := s.Store.ExtendSubjectRequest(c.Request.Context(), p.Org, id, p.ID)
	respond(c, http.StatusOK, r, err)
}

// completeVerb is the contacts verb completing a kind needs beyond reading.
var completeVerb = map[string]string{
	store.SubjectErasure: "erase", store.SubjectRectification: "write",
	store.SubjectRestriction: "write", store.SubjectObjection: "write",
}

func (s *Server) completeSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	id, ok := requestID(c)
	if !ok {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	r, err := s.Store.GetSubjectRequest(ctx, p.Org, id)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if verb := completeVerb[r.Kind]; verb != "" && !s.authorize(c, "contacts", verb) {
		return
	}
	payloads := 0
	done, err := s.Store.CompleteSubjectRequest(ctx, p.Org, r.ID, p.ID, func(tx *store.Tx, r store.SubjectRequest) error {
		if r.Contact == "" {
			return nil // a person Herald holds nothing about: nothing to erase, mark or correct
		}
		switch r.Kind {
		case store.SubjectErasure:
			// Today's erasure path: payloads under every pepper version,
			// content and chat id scrubbed, the contact row deleted.
			if _, err := tx.GetContact(ctx, p.Org, r.Contact); err != nil {
				return err
			}
			n, err := tx.EraseContact(ctx, p.Org, r.Contact)
			if err != nil {
				return err
			}
			payloads = n
			return tx.DeleteContact(ctx, p.Org, r.Contact)
		case store.SubjectRestriction:
			return tx.SetContactMark(ctx, p.Org, r.Contact, "restricted_at", true)
		case store.SubjectObjection:
			return tx.SetContactMark(ctx, p.Org, r.Contact, "objected_at", true)
		}
		return nil
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	out := gin.H{"request": done}
	if r.Contact == "" {
		out["nothing_held"] = true
	}
	if r.Kind == store.SubjectErasure {
		out["payloads_deleted"] = payloads
	}
	writeJSON(c, http.StatusOK, out)
}

func (s *Server) liftSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) || !s.authorize(c, "contacts", "write") {
		return
	}
	id, ok := requestID(c)
	if !ok {
		return
	}
	p := principal(c)
	r, err := s.Store.LiftSubjectRequest(c.Request.Context(), p.Org, id, p.ID)
	respond(c, http.StatusOK, r, err)
}

func (s *Server) exportSubjectRequest(c *gin.Context) {
	if !s.authorizeSubjects(c) {
		return
	}
	id, ok := requestID(c)
	if !ok {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	r, err := s.Store.GetSubjectRequest(ctx, p.Org, id)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if r.Kind != store.SubjectAccess && r.Kind != store.SubjectPortability {
		writeProblem(c, herald.Errorf(herald.CodeConflict, "only access and portability requests have an export (this is %s)", r.Kind))
		return
	}
	if s.Ledger == nil || s.Ledger.Logs == nil {
		writeProblem(c, herald.Errorf(herald.CodeUnavailable, "the ledger is not configured on this server"))
		return
	}
	keys := s.Ledger.VerifierKeys
	if s.Ledger.Keys != nil {
		keys = s.Ledger.Keys()
	}
	x, err := dpia.BuildSubjectExport(ctx, s.Store, s.Ledger.Logs, keys, r)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="subject-export-`+r.ID+`.json"`)
	writeJSON(c, http.StatusOK, x)
}
