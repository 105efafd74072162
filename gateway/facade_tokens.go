package gateway

import (
	"bytes"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/store"
)

// Facade tokens: POST, GET /v1/accounts/{id}/facade-tokens and DELETE
// /v1/accounts/{id}/facade-tokens/{token_id}. A facade token lets an
// unmodified bot call Herald's Bot API facade (/bot<token>/<method>, package
// facade) in place of api.telegram.org. Managing them is managing keys: the
// keys permission (admins) is required, because a token grants its principal
// a role.

type facadeTokenRequest struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Name      string `json:"name,omitempty"`
	Purpose   string `json:"purpose"`
	Deferral  string `json:"deferral,omitempty"`
}

// facadeTokenRoutes registers the facade-token routes on the authenticated group.
func (s *Server) facadeTokenRoutes(g *gin.RouterGroup) {
	g.POST("/accounts/:id/facade-tokens", s.createFacadeToken)
	g.GET("/accounts/:id/facade-tokens", s.listFacadeTokens)
	g.DELETE("/accounts/:id/facade-tokens/:token_id", s.revokeFacadeToken)
}

func (s *Server) createFacadeToken(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbWrite) {
		return
	}
	// A JSON decoder turns invalid UTF-8 into U+FFFD; a principal or name
	// must be what the caller sent, so invalid bytes are refused.
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		writeProblem(c, jsonError(err))
		return
	}
	if !utf8.Valid(raw) {
		writeProblem(c, herald.Errorf(herald.CodeInvalidJSON, "the body is not valid UTF-8"))
		return
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(raw))
	var req facadeTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	t, token, err := s.Store.CreateFacadeToken(ctx, store.FacadeToken{Org: p.Org, Account: c.Param("id"),
		Principal: req.Principal, Role: req.Role, Name: req.Name, Purpose: req.Purpose, Deferral: req.Deferral,
		CreatedBy: p.ID})
	if err != nil {
		writeProblem(c, err)
		return
	}
	// The token's principal was bound to its role: make that effective here
	// before the token is handed out.
	if err := s.reloadAccess(ctx); err != nil {
		writeProblem(c, herald.Errorf(herald.CodeUnavailable, "the token was created but access could not be reloaded; retry its first call"))
		return
	}
	c.Header("Location", "/v1/accounts/"+t.Account+"/facade-tokens/"+t.ID)
	writeJSON(c, http.StatusCreated, gin.H{"facade_token": t, "token": token})
}

func (s *Server) listFacadeTokens(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbRead) {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	if _, err := s.Store.GetAccount(ctx, p.Org, c.Param("id")); err != nil {
		writeProblem(c, err)
		return
	}
	list, err := s.Store.ListFacadeTokens(ctx, p.Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"facade_tokens": list})
}

func (s *Server) revokeFacadeToken(c *gin.Context) {
	if !s.authorize(c, access.ResKeys, access.VerbWrite) {
		return
	}
	p := principal(c)
	t, err := s.Store.RevokeFacadeToken(c.Request.Context(), p.Org, c.Param("id"), c.Param("token_id"), p.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"facade_token": t})
}
