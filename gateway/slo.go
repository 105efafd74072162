package gateway

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/slo"
)

// maxSLOWindow bounds one report: the report reads every final outcome of
// the window, so a year of traffic in one request would hold a connection
// for long; the SLO's own window is 30 days, reports go up to a quarter.
const maxSLOWindow = 92 * 24 * time.Hour

// sloRoutes registers GET /v1/slo: the SLIs of the caller's organisation
// computed from the database (package slo), for reporters and auditors.
func (s *Server) sloRoutes(v1 gin.IRoutes) {
	v1.GET("/slo", s.sloReport)
}

func (s *Server) sloReport(c *gin.Context) {
	if !s.authorize(c, "reports", "read") {
		return
	}
	from, to, err := sloWindow(c.Query("from"), c.Query("to"), s.Store.Now())
	if err != nil {
		writeProblem(c, err)
		return
	}
	org := principal(c).Org
	outcomes, err := s.Store.SLOOutcomes(c.Request.Context(), org, from, to)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.JSON(http.StatusOK, slo.Compute(org, from, to, outcomes, slo.DefaultObjectives))
}

// sloWindow parses an RFC 3339 window; to defaults to now and from to 7
// days before to.
func sloWindow(fromQ, toQ string, now time.Time) (time.Time, time.Time, error) {
	var fe []herald.FieldError
	to := now
	if toQ != "" {
		t, err := time.Parse(time.RFC3339, toQ)
		if err != nil {
			fe = append(fe, herald.FieldError{Field: "to", Message: "must be an RFC 3339 time"})
		}
		to = t
	}
	from := to.Add(-7 * 24 * time.Hour)
	if fromQ != "" {
		t, err := time.Parse(time.RFC3339, fromQ)
		if err != nil {
			fe = append(fe, herald.FieldError{Field: "from", Message: "must be an RFC 3339 time"})
		}
		from = t
	}
	if len(fe) == 0 {
		switch {
		case !from.Before(to):
			fe = append(fe, herald.FieldError{Field: "from", Message: "must be before to"})
		case to.Sub(from) > maxSLOWindow:
			fe = append(fe, herald.FieldError{Field: "from", Message: "the window may span at most 92 days"})
		}
	}
	if len(fe) > 0 {
		return time.Time{}, time.Time{}, herald.Invalid(fe...)
	}
	return from.UTC(), to.UTC(), nil
}
