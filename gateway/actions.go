package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/render"
	"github.com/heraldhq/herald/store"
)

// actionResponse is the body of every action endpoint.
type actionResponse struct {
	Action   herald.Action        `json:"action"`
	Decision *policies.Decision   `json:"decision,omitempty"`
	Preview  *render.Rendered     `json:"preview,omitempty"`
	Events   []herald.ActionEvent `json:"events,omitempty"`
	// Approval shows stages, votes and any override (GET only).
	Approval *approvalView `json:"approval,omitempty"`
	DryRun   bool          `json:"dry_run,omitempty"`
	Replayed bool          `json:"replayed,omitempty"`
	Explain  []string      `json:"explain,omitempty"`
}

func (s *Server) authorize(c *gin.Context, resource, verb string) bool {
	if err := s.Pipeline.Authz.Authorize(c.Request.Context(), principal(c), resource, verb); err != nil {
		writeProblem(c, err)
		return false
	}
	return true
}

func boolQuery(c *gin.Context, name string) (bool, error) {
	v := c.Query(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, herald.Invalid(herald.FieldError{Field: name, Message: "must be true or false"})
	}
	return b, nil
}

func (s *Server) submitAction(c *gin.Context) {
	dry, err := boolQuery(c, "dry_run")
	if err != nil {
		writeProblem(c, err)
		return
	}
	explain := c.Query("explain")
	if explain != "" && (explain != "full" || !dry) {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "explain", Message: `only "full", and only with dry_run=true`}))
		return
	}
	var req ActionRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	res, err := s.Pipeline.Submit(c.Request.Context(), principal(c), req, SubmitOptions{
		IdempotencyKey: c.GetHeader("Idempotency-Key"), DryRun: dry, Explain: explain == "full"})
	if err != nil {
		if herald.ErrorCode(err) == CodePolicyUnavailable {
			c.Header("Retry-After", strconv.Itoa(policyRetryAfter))
		}
		writeProblem(c, err)
		return
	}
	body := actionResponse{Action: res.Action, Decision: &res.Decision, DryRun: dry, Replayed: res.Replayed, Explain: res.Explanation}
	status := http.StatusCreated
	if dry {
		// A preview is personal data: it is returned to the caller and
		// stored nowhere.
		body.Preview, status = &res.Preview, http.StatusOK
	} else if res.Replayed {
		status = http.StatusOK
	} else {
		c.Header("Location", "/v1/actions/"+res.Action.ID)
	}
	writeJSON(c, status, body)
}

func (s *Server) getAction(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	a, err := s.Store.GetAction(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	ev, err := s.Store.ActionEvents(ctx, p.Org, a.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	res := actionResponse{Action: a, Events: ev}
	ap, err := s.approvalState(ctx, a)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if len(ap.Stages) > 0 || ap.Override != nil {
		ap.Action = herald.Action{} // already in the response
		res.Approval = &ap
	}
	writeJSON(c, http.StatusOK, res)
}

func (s *Server) listActions(c *gin.Context) {
	if !s.authorize(c, "actions", "read") {
		return
	}
	f := store.ActionFilter{Account: c.Query("account"), Purpose: c.Query("purpose"), Cursor: c.Query("cursor")}
	var fe []herald.FieldError
	if v := c.Query("status"); v != "" {
		f.Status = herald.Status(v)
		if !f.Status.Valid() {
			fe = append(fe, herald.FieldError{Field: "status", Message: "unknown status"})
		}
	}
	if f.Purpose != "" && !herald.ValidPurpose(f.Purpose) {
		fe = append(fe, herald.FieldError{Field: "purpose", Message: "unknown purpose"})
	}
	for _, q := range []struct {
		name string
		dst  **time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := c.Query(q.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fe = append(fe, herald.FieldError{Field: q.name, Message: "must be an RFC 3339 time"})
				continue
			}
			*q.dst = &t
		}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			fe = append(fe, herald.FieldError{Field: "limit", Message: "must be 1–500"})
		}
		f.Limit = n
	}
	if f.Cursor != "" && !looksLikeID(f.Cursor) {
		fe = append(fe, herald.FieldError{Field: "cursor", Message: "is not a cursor this API returned"})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	list, next, err := s.Store.ListActions(c.Request.Context(), principal(c).Org, f)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"actions": list, "next_cursor": next})
}

func (s *Server) cancelAction(c *gin.Context) {
	a, err := s.Pipeline.Cancel(c.Request.Context(), principal(c), c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, actionResponse{Action: a})
}
