package gateway

import "github.com/gin-gonic/gin"

// trafficGuards are the middleware every request passes before its handler:
// bad bytes are refused first (nothing else may read them).
func (s *Server) trafficGuards() []gin.HandlerFunc {
	return []gin.HandlerFunc{rejectBadBytes}
}
