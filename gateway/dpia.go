package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
)

// The auditor's desk (docs/dpia.md): the organisation's DPIA and record of
// processing, generated from the live system on each request.
//
// Access: reading needs "reports":"read" (auditors, compliance officers);
// editing the action plan "reports":"write" and approving a report
// "reports":"approve" (compliance officers). Generating a report is itself
// recorded only when it is issued: GET previews a report (its hash in a
// header, nothing written), POST issues it — the same report, plus a
// dpia.generated ledger entry with its hash, which is what lets an auditor
// prove which report was in force and what an approval must name.
func (s *Server) dpiaRoutes(v1 gin.IRoutes) {
	v1.GET("/dpia", s.dpiaHandler(false))
	v1.POST("/dpia", s.dpiaHandler(true))
	v1.GET("/dpia/ropa", s.ropaHandler(false))
	v1.POST("/dpia/ropa", s.ropaHandler(true))
	v1.PUT("/dpia/plan", s.putDPIAPlan)
	v1.POST("/dpia/approvals", s.approveDPIA)
	s.subjectRoutes(v1)
	s.incidentRoutes(v1)
}

// dpiaGenerator is the configured generator, or one built from the server's
// own store and ledger.
func (s *Server) dpiaGenerator() *dpia.Generator {
	if s.DPIA != nil {
		return s.DPIA
	}
	g := &dpia.Generator{Store: s.Store, Deployment: dpia.Deployment{SecretStore: "local",
		Pseudonymised: s.Store.Pseudonymised(), OptOutKeywords: s.Inbound.Keywords}}
	if g.Deployment.OptOutKeywords == nil {
		g.Deployment.OptOutKeywords = DefaultOptOutKeywords
	}
	if s.Ledger != nil && s.Ledger.Logs != nil {
		g.Ledger = s.Ledger.Logs
		l := s.Ledger
		g.Keys = func() []string {
			if l.Keys != nil {
				return l.Keys()
			}
			return l.VerifierKeys
		}
	}
	return g
}

// generateDPIA builds the caller's organisation's report and, when record
// is set, records it.
func (s *Server) generateDPIA(c *gin.Context, format string, record bool) (*dpia.Report, bool) {
	p := principal(c)
	ctx := c.Request.Context()
	r, err := s.dpiaGenerator().Generate(ctx, p.Org)
	if err != nil {
		writeProblem(c, err)
		return nil, false
	}
	c.Header("X-Herald-Report-Hash", r.Hash)
	if record {
		e, err := dpia.Record(ctx, s.Store, r, p.ID, format)
		if err != nil {
			writeProblem(c, err)
			return nil, false
		}
		c.Header("X-Herald-Ledger-Seq", strconv.FormatUint(e.Seq, 10))
	}
	return r, true
}

var dpiaFormats = map[string]string{
	"json":     "application/json",
	"markdown": "text/markdown; charset=utf-8",
	"html":     "text/html; charset=utf-8",
	"pdf":      "application/pdf",
}

// dpiaHandler answers GET (preview) and POST (issue) /v1/dpia?format=json|markdown|html|pdf.
func (s *Server) dpiaHandler(record bool) gin.HandlerFunc {
	return func(c *gin.Context) { s.dpia(c, record) }
}

func (s *Server) dpia(c *gin.Context, record bool) {
	if !s.authorize(c, "reports", "read") {
		return
	}
	format := c.DefaultQuery("format", "json")
	ct, ok := dpiaFormats[format]
	if !ok {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "format", Message: "must be json, markdown, html or pdf"}))
		return
	}
	r, ok := s.generateDPIA(c, format, record)
	if !ok {
		return
	}
	var b bytes.Buffer
	var err error
	switch format {
	case "json":
		writeJSON(c, http.StatusOK, r)
		return
	case "markdown":
		err = r.Markdown(&b)
	case "html":
		err = r.HTML(&b)
	case "pdf":
		err = r.PDF(&b)
	}
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.Data(http.StatusOK, ct, b.Bytes())
}

// ropaHandler answers GET (preview) and POST (issue) /v1/dpia/ropa?format=json|csv.
func (s *Server) ropaHandler(record bool) gin.HandlerFunc {
	return func(c *gin.Context) { s.ropa(c, record) }
}

func (s *Server) ropa(c *gin.Context, record bool) {
	if !s.authorize(c, "reports", "read") {
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "format", Message: "must be json or csv"}))
		return
	}
	r, ok := s.generateDPIA(c, "ropa-"+format, record)
	if !ok {
		return
	}
	ropa := r.RoPA()
	if format == "json" {
		writeJSON(c, http.StatusOK, ropa)
		return
	}
	var b bytes.Buffer
	if err := ropa.WriteCSV(&b); err != nil {
		writeProblem(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="ropa.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", b.Bytes())
}

// putDPIAPlan answers PUT /v1/dpia/plan: replace the action plan.
func (s *Server) putDPIAPlan(c *gin.Context) {
	if !s.authorize(c, "reports", "write") {
		return
	}
	if ct := c.ContentType(); ct != "" && ct != "application/json" {
		writeProblem(c, herald.Errorf(herald.CodeUnsupportedMedia, "send application/json (got %s)", ct))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		writeProblem(c, jsonError(err))
		return
	}
	plan, hash, err := dpia.ParsePlan(raw)
	if err != nil {
		writeProblem(c, err)
		return
	}
	p := principal(c)
	if err := s.Store.SetDPIAPlan(c.Request.Context(), p.Org, plan, hash, p.ID); err != nil {
		writeProblem(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", append([]byte(`{"plan":`), append(plan, '}')...))
}

// approveDPIA answers POST /v1/dpia/approvals: approve a generated report.
func (s *Server) approveDPIA(c *gin.Context) {
	if !s.authorize(c, "reports", "approve") {
		return
	}
	var req struct {
		ReportHash   string `json:"report_hash"`
		ResidualRisk string `json:"residual_risk"`
	}
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	p := principal(c)
	e, err := dpia.Approve(c.Request.Context(), s.Store, p.Org, req.ReportHash, req.ResidualRisk, p.ID)
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusCreated, gin.H{"report_hash": req.ReportHash, "residual_risk": req.ResidualRisk,
		"approved_by": p.ID, "approved_at": e.Time, "seq": e.Seq})
}
