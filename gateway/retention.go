package gateway

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/store"
)

// retentionRoutes registers the organisation's retention configuration:
// GET (auditors, compliance officers, admins) and PUT (compliance officers,
// admins). The retention job applies it on its next run.
func (s *Server) retentionRoutes(v1 *gin.RouterGroup) {
	v1.GET("/retention", s.getRetention)
	v1.PUT("/retention", s.putRetention)
}

// retentionAnswer is the configuration with its documented limits, so a
// client can show what may be set.
func retentionAnswer(set store.RetentionSetting) gin.H {
	limits := gin.H{}
	for _, l := range store.RetentionLimits {
		limits[l.Field] = gin.H{"min": l.Min, "max": l.Max, "default": l.Default}
	}
	return gin.H{"retention": set, "limits": limits}
}

func (s *Server) getRetention(c *gin.Context) {
	if !s.authorize(c, access.ResRetention, access.VerbRead) {
		return
	}
	set, err := s.Store.Retention(c.Request.Context(), principal(c).Org)
	respond(c, http.StatusOK, retentionAnswer(set), err)
}

// putRetention replaces the configuration. Every field is required: a
// retention promise is stated whole, never half-inherited from defaults.
func (s *Server) putRetention(c *gin.Context) {
	if !s.authorize(c, access.ResRetention, access.VerbWrite) {
		return
	}
	var req struct {
		LedgerEntriesDays        *int  `json:"ledger_entries_days"`
		DecisionInputsDays       *int  `json:"decision_inputs_days"`
		PayloadsDays             *int  `json:"payloads_days"`
		ReceiptsDays             *int  `json:"receipts_days"`
		DropContentAfterDelivery *bool `json:"drop_content_after_delivery"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	var fe []herald.FieldError
	need := func(field string, missing bool) {
		if missing {
			fe = append(fe, herald.FieldError{Field: field, Message: "is required"})
		}
	}
	need("ledger_entries_days", req.LedgerEntriesDays == nil)
	need("decision_inputs_days", req.DecisionInputsDays == nil)
	need("payloads_days", req.PayloadsDays == nil)
	need("receipts_days", req.ReceiptsDays == nil)
	need("drop_content_after_delivery", req.DropContentAfterDelivery == nil)
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	cfg := store.RetentionConfig{LedgerEntriesDays: *req.LedgerEntriesDays, DecisionInputsDays: *req.DecisionInputsDays,
		PayloadsDays: *req.PayloadsDays, ReceiptsDays: *req.ReceiptsDays, DropContentAfterDelivery: *req.DropContentAfterDelivery}
	if err := cfg.Validate(); err != nil {
		writeProblem(c, err)
		return
	}
	ctx, p := c.Request.Context(), principal(c)
	var set store.RetentionSetting
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		set, err = tx.SetRetention(ctx, p.Org, cfg, p.ID)
		return err
	})
	respond(c, http.StatusOK, retentionAnswer(set), err)
}
