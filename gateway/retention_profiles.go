package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/store"
)

// retentionProfileRoutes registers the retention profiles: GET lists them
// with their settings and the one in force (auditors, compliance officers,
// admins); PUT applies one (compliance officers, admins), replacing the
// whole retention configuration (docs/audit.md §7.3).
func (s *Server) retentionProfileRoutes(v1 *gin.RouterGroup) {
	v1.GET("/retention/profiles", s.getRetentionProfiles)
	v1.PUT("/retention/profile", s.putRetentionProfile)
}

func (s *Server) getRetentionProfiles(c *gin.Context) {
	if !s.authorize(c, access.ResRetention, access.VerbRead) {
		return
	}
	set, err := s.Store.Retention(c.Request.Context(), principal(c).Org)
	respond(c, http.StatusOK, gin.H{"profiles": store.RetentionProfiles, "current": set.Profile, "retention": set}, err)
}

func (s *Server) putRetentionProfile(c *gin.Context) {
	if !s.authorize(c, access.ResRetention, access.VerbWrite) {
		return
	}
	var req struct {
		Profile *string `json:"profile"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if req.Profile == nil || *req.Profile == "" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "profile", Message: "is required"}))
		return
	}
	if _, ok := store.RetentionProfileByName(*req.Profile); !ok {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "profile", Message: "must be one of the profiles listed by GET /v1/retention/profiles"}))
		return
	}
	ctx, p := c.Request.Context(), principal(c)
	var set store.RetentionSetting
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		set, err = tx.ApplyRetentionProfile(ctx, p.Org, *req.Profile, p.ID)
		return err
	})
	respond(c, http.StatusOK, retentionAnswer(set), err)
}
