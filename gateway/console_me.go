package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald/access"
)

// consoleRoutes registers what the web console (package console) needs
// beyond the public API it is a client of.
func (s *Server) consoleRoutes(g *gin.RouterGroup) {
	g.GET("/me/permissions", s.mePermissions)
}

// mePermissions answers GET /v1/me/permissions: for every resource type
// (and the caller's own actions, and each role's approval stage) the verbs
// the caller may use, as the authorizer decides them now. The console shows
// a control only when its verb is listed; the route it calls decides again.
func (s *Server) mePermissions(c *gin.Context) {
	p := principal(c)
	ctx := c.Request.Context()
	out := make(map[string][]string, len(access.MatrixRows))
	for _, res := range access.MatrixRows {
		verbs := []string{}
		for _, v := range access.Verbs {
			if s.Pipeline.Authz.Authorize(ctx, p, res, v) == nil {
				verbs = append(verbs, v)
			}
		}
		out[res] = verbs
	}
	writeJSON(c, http.StatusOK, gin.H{"principal": p.ID, "permissions": out})
}
