package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// activeParams returns the parameters of org's active policy bundle (the
// built-in bundle when none was activated) and which bundle that is. Overrides
// are merged over these by the engine, so they are what GET reports and what
// PUT validates against.
func (s *Server) activeParams(ctx context.Context, org string) (map[string]any, policies.BundleRef, error) {
	ref, err := s.Store.ActiveBundleVersion(ctx, org)
	if err != nil {
		return nil, ref, err
	}
	b := policies.DefaultBundle()
	if ref.Version == 0 {
		ref.Hash = b.Hash()
	} else if b, err = s.Store.LoadBundle(ctx, org, ref.Version); err != nil {
		return nil, ref, err
	}
	params, err := policies.BundleParams(b)
	if err != nil {
		return nil, ref, fmt.Errorf("params of policy v%d: %w", ref.Version, err)
	}
	return params, ref, nil
}

// paramProblems turns policies.ValidateParams' findings into field errors.
func paramProblems(probs []policies.ParamProblem) []herald.FieldError {
	fe := make([]herald.FieldError, len(probs))
	for i, p := range probs {
		fe[i] = herald.FieldError{Field: "overrides." + p.Path, Message: p.Message}
	}
	return fe
}

// getPolicyParams answers GET /v1/policies/params: the organisation's
// overrides, the active bundle's parameters they are merged over, which
// bundle that is, and any override the active bundle no longer accepts
// (after activating a bundle with another parameter set).
func (s *Server) getPolicyParams(c *gin.Context) {
	if !s.authorize(c, "policies", "read") {
		return
	}
	ctx, org := c.Request.Context(), principal(c).Org
	p, err := s.Store.PolicyParams(ctx, org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	defaults, ref, err := s.activeParams(ctx, org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if p == nil {
		p = map[string]any{}
	}
	invalid := paramProblems(policies.ValidateParams(defaults, p))
	writeJSON(c, http.StatusOK, gin.H{"overrides": p, "defaults": defaults,
		"bundle": gin.H{"version": ref.Version, "hash": ref.Hash}, "invalid_overrides": invalid})
}

// putPolicyParams answers PUT /v1/policies/params: replace the
// organisation's overrides (caps, windows, thresholds). Every key must be a
// parameter of the organisation's active bundle with a value of the same
// type; the change is a ledger entry, and the next decision uses it.
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
	ctx := c.Request.Context()
	p := principal(c)
	defaults, _, err := s.activeParams(ctx, p.Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if probs := policies.ValidateParams(defaults, req.Overrides); len(probs) > 0 {
		writeProblem(c, herald.Invalid(paramProblems(probs)...))
		return
	}
	if err := s.Store.InTx(ctx, func(tx *store.Tx) error { return tx.SetPolicyParams(ctx, p.Org, req.Overrides, p.ID) }); err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"overrides": req.Overrides})
}
