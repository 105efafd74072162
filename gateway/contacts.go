package gateway

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// maxImportRows bounds one import: larger lists are split by the caller,
// so one transaction never holds a huge lock footprint.
const maxImportRows = 100_000

// csvColumns are the columns a CSV import may carry; chat_id, purpose,
// legal_basis and source are required.
var csvColumns = []string{"chat_id", "timezone", "language", "purpose", "legal_basis", "source", "consented_at"}

func (s *Server) importContacts(c *gin.Context) {
	if !s.authorize(c, "contacts", "write") {
		return
	}
	rows, err := readImport(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	var fe []herald.FieldError
	for i, r := range rows {
		fe = append(fe, r.Validate(i+1)...)
	}
	if len(fe) > 0 {
		rejected := map[int]bool{}
		for _, f := range fe {
			rejected[*f.Row] = true
		}
		writeProblem(c, &herald.Error{Code: herald.CodeImportRejected,
			Message: fmt.Sprintf("%d of %d rows are invalid; nothing was imported", len(rejected), len(rows)),
			Fields:  fe, Extra: map[string]any{"rows": len(rows), "rejected_rows": len(rejected)}})
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	var res store.ImportResult
	err = s.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if res, err = tx.ImportContacts(ctx, p.Org, rows); err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, p.Org, store.LedgerRecord{Kind: ledger.KindContactImported, Actor: p.ID,
			Attrs: map[string]any{"rows": res.Rows, "created": res.Created, "updated": res.Updated}})
		return err
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, res)
}

// readImport reads a JSON array of rows, a CSV body, or a CSV file in a
// multipart form field named "file".
func readImport(c *gin.Context) ([]herald.ContactImportRow, error) {
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxImportBytes)
	c.Request.Body = body
	text := &textReader{r: body}
	var (
		rows []herald.ContactImportRow
		err  error
	)
	switch mt {
	case "application/json", "":
		dec := json.NewDecoder(text)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rows); err != nil {
			return nil, jsonError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, jsonError(orMoreThanOne(err))
		}
	case "text/csv":
		rows, err = readCSV(text)
	case "multipart/form-data":
		fh, ferr := c.FormFile("file")
		if ferr != nil {
			return nil, herald.Invalid(herald.FieldError{Field: "file", Message: "upload the CSV as form field \"file\""})
		}
		f, ferr := fh.Open()
		if ferr != nil {
			return nil, fmt.Errorf("open upload: %w", ferr)
		}
		defer f.Close()
		rows, err = readCSV(&textReader{r: f})
	default:
		return nil, herald.Errorf(herald.CodeUnsupportedMedia, "send application/json, text/csv or multipart/form-data (got %s)", mt)
	}
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		if field, bad := findBadString(reflect.ValueOf(r), ""); bad {
			n := i + 1
			return nil, herald.Invalid(herald.FieldError{Field: field, Message: "must be UTF-8 text without NUL bytes", Row: &n})
		}
	}
	if len(rows) == 0 {
		return nil, herald.Invalid(herald.FieldError{Field: "rows", Message: "the import holds no rows"})
	}
	if len(rows) > maxImportRows {
		return nil, herald.Errorf(herald.CodePayloadTooLarge, "at most %d rows per import", maxImportRows)
	}
	return rows, nil
}

func readCSV(r io.Reader) ([]herald.ContactImportRow, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	var typed *herald.Error
	if errors.As(err, &typed) {
		return nil, typed
	}
	if err != nil {
		return nil, herald.Errorf(herald.CodeInvalidJSON, "the CSV has no header row (%s)", strings.Join(csvColumns, ","))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return nil, herald.Invalid(herald.FieldError{Field: h, Message: "unknown CSV column; known: " + strings.Join(csvColumns, ", ")})
		}
		col[h] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []herald.ContactImportRow
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, herald.Errorf(herald.CodeInvalidJSON, "CSV line %d: %v", pe.Line, pe.Err)
			}
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, herald.Errorf(herald.CodePayloadTooLarge, "the upload exceeds %d bytes", tooLarge.Limit)
			}
			var typed *herald.Error
			if errors.As(err, &typed) {
				return nil, typed
			}
			return nil, fmt.Errorf("read CSV: %w", err)
		}
		r := herald.ContactImportRow{ChatID: get(rec, "chat_id"), Timezone: get(rec, "timezone"), Language: get(rec, "language"),
			Purpose: get(rec, "purpose"), LegalBasis: get(rec, "legal_basis"), Source: get(rec, "source")}
		if v := get(rec, "consented_at"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				n := len(rows) + 1
				return nil, &herald.Error{Code: herald.CodeImportRejected, Message: "nothing was imported",
					Fields: []herald.FieldError{{Field: "consented_at", Message: "must be an RFC 3339 time", Row: &n}}}
			}
			r.ConsentedAt = &t
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func (s *Server) getContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "read") {
		return
	}
	ct, err := s.Store.GetContact(c.Request.Context(), principal(c).Org, c.Param("id"))
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, ct)
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
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, ct)
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
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, ct)
}

// eraseContact answers DELETE /v1/contacts/{id}: erasure of a person. Their
// ledger payloads and pseudonym mapping go; the chain, its Merkle tree and
// every checkpoint still verify (the export marks the payloads purged).
// Queued sends to them are dropped; past actions keep their audit facts
// without content or chat id.
func (s *Server) eraseContact(c *gin.Context) {
	if !s.authorize(c, "contacts", "erase") {
		return
	}
	ctx := c.Request.Context()
	p := principal(c)
	id := c.Param("id")
	var n int
	err := s.Store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetContact(ctx, p.Org, id); err != nil {
			return err
		}
		var err error
		if n, err = tx.EraseContact(ctx, p.Org, id); err != nil {
			return err
		}
		return tx.DeleteContact(ctx, p.Org, id)
	})
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, gin.H{"erased": id, "payloads_deleted": n})
}
