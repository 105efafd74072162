package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

func (s *Server) getContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	ct, err := s.Store.GetContact(c.Request.Context(), principal(c).Org, c.Param("id"))
	respond(c, http.StatusOK, ct, err)
}

type consentRequest struct {
	Purpose     string     `json:"purpose"`
	LegalBasis  string     `json:"legal_basis"`
	Source      string     `json:"source"`
	ConsentedAt *time.Time `json:"consented_at,omitempty"`
}

type contactPatch struct {
	Timezone       *string          `json:"timezone"`
	Language       *string          `json:"language"`
	Consents       []consentRequest `json:"consents"`
	RevokePurposes []string         `json:"revoke_purposes"`
}

func (s *Server) patchContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "write") {
		return
	}
	var req contactPatch
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	now := s.Store.Now()
	patch := store.ContactPatch{Timezone: req.Timezone, Language: req.Language, RevokePurposes: req.RevokePurposes}
	var fe []herald.FieldError
	if req.Timezone != nil && *req.Timezone != "" && !herald.ValidTimezone(*req.Timezone) {
		fe = append(fe, herald.FieldError{Field: "timezone", Message: "unknown time zone"})
	}
	if req.Language != nil && *req.Language != "" && !herald.ValidLanguage(*req.Language) {
		fe = append(fe, herald.FieldError{Field: "language", Message: "must be a language tag such as \"en\""})
	}
	for i, k := range req.Consents {
		row := herald.ContactImportRow{ChatID: "1", Purpose: k.Purpose, LegalBasis: k.LegalBasis, Source: k.Source}
		for _, f := range row.Validate(i + 1) {
			f.Field = fmt.Sprintf("consents[%d].%s", i, f.Field)
			f.Row = nil
			fe = append(fe, f)
		}
		at := now
		if k.ConsentedAt != nil {
			at = *k.ConsentedAt
		}
		patch.Consents = append(patch.Consents, herald.Consent{Purpose: k.Purpose, Basis: k.LegalBasis, Source: k.Source, At: at.UTC().Truncate(time.Microsecond)})
	}
	for i, pur := range req.RevokePurposes {
		if !herald.ValidPurpose(pur) {
			fe = append(fe, herald.FieldError{Field: fmt.Sprintf("revoke_purposes[%d]", i), Message: "unknown purpose"})
		}
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	var ct herald.Contact
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if ct, err = tx.UpdateContact(ctx, p.Org, c.Param("id"), patch); err != nil {
			return err
		}
		purposes := make([]any, 0, len(patch.Consents))
		for _, k := range patch.Consents {
			purposes = append(purposes, k.Purpose+":"+k.Basis)
		}
		revoked := make([]any, 0, len(req.RevokePurposes))
		for _, r := range req.RevokePurposes {
			revoked = append(revoked, r)
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: "contact.updated", Actor: p.ID,
			Refs: map[string]string{"contact": ct.ID}, Attrs: map[string]any{"consents": purposes, "revoked": revoked}})
		return err
	})
	respond(c, http.StatusOK, ct, err)
}

type optOutRequest struct {
	Source string `json:"source"`
}

func (s *Server) optOutContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") { // operators record opt-outs people tell them about
		return
	}
	req := optOutRequest{Source: "api"}
	if c.Request.ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			writeProblem(c, err)
			return
		}
		if strings.TrimSpace(req.Source) == "" || len(req.Source) > 200 {
			writeProblem(c, herald.Invalid(herald.FieldError{Field: "source", Message: "must be 1–200 characters"}))
			return
		}
	}
	ctx := c.Request.Context()
	p := principal(c)
	var ct herald.Contact
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if ct, err = tx.OptOut(ctx, p.Org, c.Param("id"), req.Source); err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindContactOptedOut, Actor: p.ID,
			Refs: map[string]string{"contact": ct.ID}, Attrs: map[string]any{"source": ct.OptOutSource}})
		return err
	})
	respond(c, http.StatusOK, ct, err)
}

// eraseContact answers DELETE /v1/contacts/{id}: erasure of a person. Their
// ledger payloads and pseudonym mapping go; the chain, its Merkle tree and
// every checkpoint still verify (the export marks the payloads purged).
// Their sends still waiting are cancelled (event detail contact_erased);
// every action addressed to them, by contact id or by chat id, keeps its
// audit facts without content, target or receipt chat id (store.ErasePerson).
func (s *Server) eraseContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "erase") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id := c.Param("id")
	var rep store.ErasureReport
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		rep, err = tx.ErasePerson(ctx, p.Org, id)
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"erased": id, "payloads_deleted": rep.PayloadsDeleted,
		"actions_scrubbed": rep.ActionsScrubbed, "actions_cancelled": rep.ActionsCancelled})
}

// csvLabels reads a row's ";"-separated tags and its attr.<name> columns
// (empty cells set nothing).
func csvLabels(rec []string, col map[string]int, tags string) ([]string, map[string]string) {
	var ts []string
	for _, t := range strings.Split(tags, ";") {
		if t = strings.TrimSpace(t); t != "" {
			ts = append(ts, t)
		}
	}
	var attrs map[string]string
	for name, i := range col {
		if a, ok := strings.CutPrefix(name, csvAttributePrefix); ok && i < len(rec) && strings.TrimSpace(rec[i]) != "" {
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs[a] = strings.TrimSpace(rec[i])
		}
	}
	return ts, attrs
}
