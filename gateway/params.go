package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// getPolicyParams answers GET /v1/policies/params: the organisation's
// overrides and the defaults they are merged over.
func (s *Server) getPolicyParams(c *gin.Context) {
	if !s.authorize(c, "policies", "read") {
		return
	}
	p, err := s.Store.PolicyParams(c.Request.Context(), principal(c).Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	defaults, err := policies.DefaultParams()
	if err != nil {
		writeProblem(c, err)
		return
	}
	if p == nil {
		p = map[string]any{}
	}
	writeJSON(c, http.StatusOK, gin.H{"overrides": p, "defaults": defaults})
}

// putPolicyParams answers PUT /v1/policies/params: replace the
// organisation's overrides (caps, windows, thresholds). Every key must be a
// parameter of the bundle with a value of the same type; the change is a
// ledger entry, and the next decision uses it.
func (s *Server) putPolicyParams(c *gin.Context) {
	if !s.authorize(c, "policies", "write") {
		return
	}
	var req struct {
		Overrides map[string]any `json:"overrides"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if req.Overrides == nil {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "overrides", Message: "is required (an object; {} clears every override)"}))
		return
	}
	defaults, err := policies.DefaultParams()
	if err != nil {
		writeProblem(c, err)
		return
	}
	if probs := policies.ValidateParams(defaults, req.Overrides); len(probs) > 0 {
		fe := make([]herald.FieldError, len(probs))
		for i, p := range probs {
			fe[i] = herald.FieldError{Field: "overrides." + p.Path, Message: p.Message}
		}
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	if err := s.Store.InTx(ctx, func(tx *store.Tx) error { return tx.SetPolicyParams(ctx, p.Org, req.Overrides, p.ID) }); err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"overrides": req.Overrides})
}
