package gateway

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
)

// Role bindings: GET, POST and DELETE /v1/roles/bindings. A binding gives a
// principal (the principal of one or more API keys) a role in the caller's
// organisation, optionally scoped to one resource ("accounts/<id>"). Every
// change is a ledger entry (the store writes it in the same transaction).

// accessControl is what the role routes need from the authorizer beyond
// Authorize: access.Enforcer implements it. With another authorizer (the
// static access.RoleMatrix) changes are stored but nothing is reloaded.
type accessControl interface {
	Reload(ctx context.Context) error
	RolesOf(org, principal string) []string
}

var _ accessControl = (*access.Enforcer)(nil)

// roleBindingRequest is the body of POST and DELETE /v1/roles/bindings.
type roleBindingRequest struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Scope     string `json:"scope,omitempty"`
}

// roleRoutes registers the role-binding routes on the authenticated group.
func (s *Server) roleRoutes(g *gin.RouterGroup) {
	g.GET("/roles/bindings", s.listRoleBindings)
	g.POST("/roles/bindings", s.grantRoleBinding)
	g.DELETE("/roles/bindings", s.revokeRoleBinding)
}

// principalRoles lists p's roles for GET /v1/me: from the bindings when the
// authorizer knows them, else the API key's role.
func (s *Server) principalRoles(p herald.Principal) []string {
	if s.Pipeline != nil {
		if ac, ok := s.Pipeline.Authz.(accessControl); ok {
			roles := ac.RolesOf(p.Org, p.ID)
			if roles == nil {
				roles = []string{}
			}
			return roles
		}
	}
	return []string{p.Role}
}

// reloadAccess makes a committed change effective in this process before it
// is reported: a revoked role must stop working at once. Other replicas
// follow by notification or poll (access.Enforcer.Watch).
func (s *Server) reloadAccess(ctx context.Context) error {
	ac, ok := s.Pipeline.Authz.(accessControl)
	if !ok {
		return nil
	}
	err := ac.Reload(ctx)
	if err != nil {
		err = ac.Reload(ctx) // one retry: the change is committed, only this replica's view lags
	}
	return err
}

func (s *Server) listRoleBindings(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbRead) {
		return
	}
	list, err := s.Store.ListBindings(c.Request.Context(), principal(c).Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if want := c.Query("principal"); want != "" {
		kept := list[:0]
		for _, b := range list {
			if b.Principal == want {
				kept = append(kept, b)
			}
		}
		list = kept
	}
	writeJSON(c, http.StatusOK, gin.H{"bindings": list})
}

func (s *Server) grantRoleBinding(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbWrite) {
		return
	}
	var req roleBindingRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	b, err := s.Store.GrantRole(ctx, p.Org, req.Principal, req.Role, req.Scope, p.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		writeProblem(c, accessReloadFailed(err, "binding", b))
		return
	}
	writeJSON(c, http.StatusCreated, b)
}

// revokeRoleBinding takes the binding from the query (?principal=&role=&scope=)
// or, when the query names no principal, from a JSON body.
func (s *Server) revokeRoleBinding(c *gin.Context) {
	if !s.authorize(c, access.ResRoles, access.VerbWrite) {
		return
	}
	req := roleBindingRequest{Principal: c.Query("principal"), Role: c.Query("role"), Scope: c.Query("scope")}
	if req.Principal == "" && c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			writeProblem(c, err)
			return
		}
	}
	ctx := c.Request.Context()
	p := principal(c)
	b, err := s.Store.RevokeRole(ctx, p.Org, req.Principal, req.Role, req.Scope, p.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if err := s.reloadAccess(ctx); err != nil {
		writeProblem(c, accessReloadFailed(err, "revoked", b))
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"revoked": b})
}

// accessReloadFailed reports a change that is committed (and in the ledger)
// but not yet effective on this replica; its watcher applies it within the
// poll interval. The body carries the binding so the client need not retry.
func accessReloadFailed(err error, member string, b access.Binding) error {
	return &herald.Error{Code: herald.CodeUnavailable, Err: err,
		Message: "the change is committed but this gateway could not reload its access policy; it takes effect within " +
			access.DefaultPollInterval.String(),
		Extra: map[string]any{member: b, "committed": true}}
}
