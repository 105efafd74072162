package gateway

import "github.com/gin-gonic/gin"

// trafficGuards are the middleware every request passes before its handler:
// bad bytes are refused first (nothing else may read them), then an
// address's failed authentications and its class budget are checked.
func (s *Server) trafficGuards() []gin.HandlerFunc {
	guards := []gin.HandlerFunc{rejectBadBytes}
	if lm := s.rateLimiter(); lm != nil {
		guards = append(guards, lm.addressLimits)
	}
	return guards
}

// keyRateLimit spends the authenticated key's (or person's) budget; it
// runs after authentication on every /v1 route.
func (s *Server) keyRateLimit(c *gin.Context) {
	if lm := s.rateLimiter(); lm != nil {
		lm.keyLimits(c)
		return
	}
	c.Next()
}

// rateLimiter is the server's one limiter (shared by every Handler it
// builds), or nil without RateLimits.
func (s *Server) rateLimiter() *limiter {
	s.limiterOnce.Do(func() {
		if s.RateLimits != nil {
			s.limiter = newLimiter(*s.RateLimits)
		}
	})
	return s.limiter
}
