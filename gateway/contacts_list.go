package gateway

import (
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/store"
)

// contactListRoutes registers GET /v1/contacts (a filtered, cursor-paged
// listing) and GET /v1/contacts/{id}/consents (a contact's consent history).
func (s *Server) contactListRoutes(g *gin.RouterGroup) {
	g.GET("/contacts", s.listContacts)
	g.GET("/contacts/:id/consents", s.contactConsents)
}

// contactFilter reads the listing's query. Every value is checked: a bad
// one is a 422 naming the parameter, never an empty page.
func contactFilter(c *gin.Context) (store.ContactFilter, error) {
	var (
		f  store.ContactFilter
		fe []herald.FieldError
	)
	for _, name := range []string{"chat_id", "language", "source", "cursor", "limit", "opted_out", "imported_from", "imported_to"} {
		if v := c.Query(name); !utf8.ValidString(v) || len(v) > 200 || slices.Contains([]byte(v), 0) {
			fe = append(fe, herald.FieldError{Field: name, Message: "must be at most 200 bytes of valid UTF-8"})
		}
	}
	if len(fe) > 0 {
		return f, herald.Invalid(fe...)
	}
	f.ChatID, f.Language, f.Source, f.After = c.Query("chat_id"), c.Query("language"), c.Query("source"), c.Query("cursor")
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxContactPage {
			fe = append(fe, herald.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(store.MaxContactPage)})
		}
		f.Limit = n
	}
	if v := c.Query("opted_out"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fe = append(fe, herald.FieldError{Field: "opted_out", Message: "must be true or false"})
		}
		f.OptedOut = &b
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"imported_from", &f.ImportedFrom}, {"imported_to", &f.ImportedTo}} {
		if v := c.Query(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fe = append(fe, herald.FieldError{Field: p.name, Message: "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z"})
			}
			*p.dst = &t
		}
	}
	for _, v := range c.QueryArray("tag") {
		if !herald.ValidTag(v) {
			fe = append(fe, herald.FieldError{Field: "tag", Message: "must be a tag: 1–64 bytes of visible text without commas or semicolons"})
			continue
		}
		f.Tags = append(f.Tags, v)
	}
	for _, p := range []struct {
		name string
		dst  *[]string
	}{{"consent", &f.WithConsent}, {"no_consent", &f.WithoutConsent}} {
		for _, v := range c.QueryArray(p.name) {
			if !herald.ValidPurpose(v) {
				fe = append(fe, herald.FieldError{Field: p.name, Message: "must be a purpose: marketing, transactional, support or service"})
				continue
			}
			*p.dst = append(*p.dst, v)
		}
	}
	if len(fe) > 0 {
		return f, herald.Invalid(fe...)
	}
	return f, nil
}

// listContacts answers GET /v1/contacts: the caller's organisation's
// contacts with their consents, oldest first, a page at a time; pass
// next_cursor back as cursor for the next page.
func (s *Server) listContacts(c *gin.Context) {
	if !s.authorize(c, access.ResContacts, access.VerbRead) {
		return
	}
	f, err := contactFilter(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	list, next, err := s.Store.ListContacts(c.Request.Context(), principal(c).Org, f)
	if err != nil {
		writeProblem(c, err)
		return
	}
	body := gin.H{"contacts": list}
	if next != "" {
		body["next_cursor"] = next
	}
	writeJSON(c, http.StatusOK, body)
}

// contactConsents answers GET /v1/contacts/{id}/consents: the current
// consents and the full history (grants, changes, withdrawals, opt-out).
func (s *Server) contactConsents(c *gin.Context) {
	if !s.authorize(c, access.ResContacts, access.VerbRead) {
		return
	}
	ctx := c.Request.Context()
	org := principal(c).Org
	id, ok := pathID(c, "contact")
	if !ok {
		return
	}
	ct, err := s.Store.GetContact(ctx, org, id)
	if err != nil {
		writeProblem(c, err)
		return
	}
	hist, err := s.Store.ConsentHistory(ctx, org, ct.ID)
	respond(c, http.StatusOK, gin.H{"contact": ct.ID, "consents": ct.Consents, "opted_out_at": ct.OptedOutAt, "history": hist}, err)
}
