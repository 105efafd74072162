package gateway

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

func (s *Server) ledgerEntries(c *gin.Context) {
	if !s.authorize(c, "ledger", "read") {
		return
	}
	var (
		f  store.LedgerFilter
		fe []herald.FieldError
	)
	for _, q := range []struct {
		name string
		dst  *uint64
	}{{"from", &f.FromSeq}, {"to", &f.ToSeq}} {
		if v := c.Query(q.name); v != "" {
			n, err := strconv.ParseUint(v, 10, 53)
			if err != nil {
				fe = append(fe, herald.FieldError{Field: q.name, Message: "must be a sequence number"})
			}
			*q.dst = n
		}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fe = append(fe, herald.FieldError{Field: "limit", Message: "must be 1–1000"})
		}
		f.Limit = n
	}
	f.Kind = c.Query("kind")
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	entries, err := s.Store.LedgerEntries(c.Request.Context(), principal(c).Org, f)
	if err != nil {
		writeProblem(c, err)
		return
	}
	next := ""
	if len(entries) == f.Limit {
		next = strconv.FormatUint(entries[len(entries)-1].Seq+1, 10)
	}
	writeJSON(c, http.StatusOK, gin.H{"entries": entries, "next_from": next})
}
