package gateway

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Contact imports are streamed, so memory stays bounded whatever the size:
//   - The body (JSON array, CSV, or the "file" part of a multipart form) is
//     read row by row, each row validated as it arrives; valid rows are
//     spooled to a temporary file, never held in memory together.
//   - Only when every row is valid is anything written: one transaction
//     reads the spool back in batches. An import is all or nothing.
//   - The answer (the contact id of every row, in row order) is spooled too
//     and streamed out after the commit.
//   - At most importsPerOrg imports of one organisation run at once; the
//     next answers 429 with Retry-After rather than queueing in memory.
//
// Memory is then O(batch + reported errors) per import, and the number of
// imports is bounded per organisation.
const (
	// maxImportRows bounds one import: a million rows is a large CRM
	// export; beyond that one transaction holds too many locks too long.
	maxImportRows = 1_000_000
	// importBatch rows are written per store call.
	importBatch = 1000
	// maxImportErrors field errors are reported; the count covers all.
	maxImportErrors = 100
	// importsPerOrg imports of one organisation may run at once.
	importsPerOrg = 2
)

// csvColumns are the columns a CSV import may carry; chat_id, purpose,
// legal_basis and source are required.
var csvColumns = []string{"chat_id", "username", "timezone", "language", "purpose", "legal_basis", "source", "consented_at", "tags"}

// csvAttributePrefix names attribute columns ("attr.first_name").
const csvAttributePrefix = "attr."

// importGate counts the imports running per organisation.
type importGate struct {
	mu      sync.Mutex
	running map[string]int
}

func (g *importGate) enter(org string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running == nil {
		g.running = map[string]int{}
	}
	if g.running[org] >= importsPerOrg {
		return false
	}
	g.running[org]++
	return true
}

func (g *importGate) leave(org string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running[org]--; g.running[org] <= 0 {
		delete(g.running, org)
	}
}

var imports importGate

func (s *Server) importContacts(c *gin.Context) {
	if !s.authorize(c, "contacts", "write") {
		return
	}
	p := principal(c)
	if !imports.enter(p.Org) {
		c.Header("Retry-After", "5")
		writeProblem(c, herald.Errorf(CodeRateLimited, "%d imports of this organisation are running; retry after the seconds in Retry-After", importsPerOrg))
		return
	}
	defer imports.leave(p.Org)

	spool, err := newRowSpool()
	if err != nil {
		writeProblem(c, err)
		return
	}
	defer spool.remove()
	if err := readImport(c, spool); err != nil {
		writeProblem(c, err)
		return
	}
	ctx := c.Request.Context()
	ids, err := newIDSpool()
	if err != nil {
		writeProblem(c, err)
		return
	}
	defer ids.remove()
	var res store.ImportResult
	err = s.Store.InTx(ctx, func(tx *store.Tx) error {
		res, ids.n = store.ImportResult{}, 0
		if err := ids.reset(); err != nil {
			return err
		}
		err := spool.batches(func(rows []herald.ContactImportRow) error {
			r, err := tx.ImportContacts(ctx, p.Org, rows)
			if err != nil {
				return err
			}
			res.Rows += r.Rows
			res.Created += r.Created
			res.Updated += r.Updated
			return ids.add(r.Contacts)
		})
		if err != nil {
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
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(http.StatusOK)
	if err := ids.writeResult(c.Writer, res); err != nil {
		logger(c).Warn("write import answer", "err", err) // committed; the client went away
	}
}

// readImport streams a JSON array of rows, a CSV body, or a CSV file in a
// multipart form field named "file" into spool, validating every row. Any
// invalid row rejects the whole import.
func readImport(c *gin.Context, spool *rowSpool) error {
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxImportBytes)
	c.Request.Body = body
	v := &importValidator{spool: spool}
	var err error
	switch mt {
	case "application/json", "":
		err = readJSONRows(&textReader{r: body}, v.add)
	case "text/csv":
		err = readCSV(&textReader{r: body}, v.add)
	case "multipart/form-data":
		mr, merr := c.Request.MultipartReader()
		if merr != nil {
			return herald.Errorf(herald.CodeInvalidJSON, "malformed multipart form: %v", merr)
		}
		err = herald.Invalid(herald.FieldError{Field: "file", Message: "upload the CSV as form field \"file\""})
		for {
			part, perr := mr.NextPart()
			if errors.Is(perr, io.EOF) {
				break
			}
			if perr != nil {
				err = uploadError(perr)
				break
			}
			if part.FormName() == "file" {
				err = readCSV(&textReader{r: part}, v.add)
				break
			}
		}
	default:
		return herald.Errorf(herald.CodeUnsupportedMedia, "send application/json, text/csv or multipart/form-data (got %s)", mt)
	}
	if err != nil {
		return err
	}
	if err := spool.flush(); err != nil {
		return err
	}
	return v.result()
}

// uploadError maps a body read error to the problem to answer.
func uploadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return herald.Errorf(herald.CodePayloadTooLarge, "the upload exceeds %d bytes", tooLarge.Limit)
	}
	var typed *herald.Error
	if errors.As(err, &typed) {
		return typed
	}
	return fmt.Errorf("read import: %w", err)
}

// importValidator validates rows as they stream in, keeps the first
// maxImportErrors field errors, and spools valid rows.
type importValidator struct {
	spool    *rowSpool
	rows     int
	rejected int
	errs     []herald.FieldError
}

func (v *importValidator) add(r herald.ContactImportRow) error {
	v.rows++
	if v.rows > maxImportRows {
		return herald.Errorf(herald.CodePayloadTooLarge, "at most %d rows per import", maxImportRows)
	}
	fe := r.Validate(v.rows)
	if field, bad := findBadString(reflect.ValueOf(r), ""); bad {
		n := v.rows
		fe = append(fe, herald.FieldError{Field: field, Message: "must be UTF-8 text without NUL bytes", Row: &n})
	}
	if len(fe) > 0 {
		v.rejected++
		if room := maxImportErrors - len(v.errs); room > 0 {
			v.errs = append(v.errs, fe[:min(room, len(fe))]...)
		}
		return nil
	}
	if v.rejected > 0 {
		return nil // nothing will be imported: stop spooling, keep validating
	}
	return v.spool.put(r)
}

func (v *importValidator) result() error {
	if v.rows == 0 {
		return herald.Invalid(herald.FieldError{Field: "rows", Message: "the import holds no rows"})
	}
	if v.rejected > 0 {
		return &herald.Error{Code: herald.CodeImportRejected,
			Message: fmt.Sprintf("%d of %d rows are invalid; nothing was imported", v.rejected, v.rows),
			Fields:  v.errs, Extra: map[string]any{"rows": v.rows, "rejected_rows": v.rejected}}
	}
	return nil
}

// readJSONRows streams the elements of one JSON array.
func readJSONRows(r io.Reader, add func(herald.ContactImportRow) error) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return herald.Errorf(herald.CodeInvalidJSON, "the body must be a JSON array of rows")
	}
	for dec.More() {
		var row herald.ContactImportRow
		if err := dec.Decode(&row); err != nil {
			return jsonError(err)
		}
		if err := add(row); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jsonError(orMoreThanOne(err))
	}
	return nil
}

// readCSV streams CSV rows; the header names the columns.
func readCSV(r io.Reader, add func(herald.ContactImportRow) error) error {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		var typed *herald.Error
		var tooLarge *http.MaxBytesError
		if errors.As(err, &typed) || errors.As(err, &tooLarge) {
			return uploadError(err)
		}
		return herald.Errorf(herald.CodeInvalidJSON, "the CSV has no header row (%s)", strings.Join(csvColumns, ","))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := strings.HasPrefix(h, csvAttributePrefix)
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return herald.Invalid(herald.FieldError{Field: h, Message: "unknown CSV column; known: " + strings.Join(csvColumns, ", ")})
		}
		col[h] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return herald.Errorf(herald.CodeInvalidJSON, "CSV line %d: %v", pe.Line, pe.Err)
			}
			return uploadError(err)
		}
		// ReuseRecord: the strings are fresh per Read, the slice is not.
		r := herald.ContactImportRow{ChatID: get(rec, "chat_id"), Timezone: get(rec, "timezone"), Language: get(rec, "language"),
			Purpose: get(rec, "purpose"), LegalBasis: get(rec, "legal_basis"), Source: get(rec, "source"),
			Username: get(rec, "username")}
		r.Tags, r.Attributes = csvLabels(rec, col, get(rec, "tags"))
		if v := get(rec, "consented_at"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return &herald.Error{Code: herald.CodeImportRejected, Message: "nothing was imported",
					Fields: []herald.FieldError{{Field: "consented_at", Message: "must be an RFC 3339 time", Row: &n}}}
			}
			r.ConsentedAt = &t
		}
		if err := add(r); err != nil {
			return err
		}
	}
}

// rowSpool is a temporary file of valid rows (JSON lines).
type rowSpool struct {
	f   *os.File
	w   *bufio.Writer
	enc *json.Encoder
}

func newRowSpool() (*rowSpool, error) {
	f, err := os.CreateTemp("", "herald-import-*.jsonl")
	if err != nil {
		return nil, fmt.Errorf("import spool: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &rowSpool{f: f, w: w, enc: json.NewEncoder(w)}, nil
}

func (s *rowSpool) put(r herald.ContactImportRow) error {
	if err := s.enc.Encode(r); err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	return nil
}

func (s *rowSpool) flush() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	return nil
}

// batches reads the spool back from the start, importBatch rows at a time.
func (s *rowSpool) batches(fn func([]herald.ContactImportRow) error) error {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
	batch := make([]herald.ContactImportRow, 0, importBatch)
	for {
		var r herald.ContactImportRow
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("import spool: %w", err)
		}
		if batch = append(batch, r); len(batch) == importBatch {
			if err := fn(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		return fn(batch)
	}
	return nil
}

func (s *rowSpool) remove() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}

// idSpool is a temporary file of the imported contacts' ids, in row order.
type idSpool struct {
	f *os.File
	w *bufio.Writer
	n int
}

func newIDSpool() (*idSpool, error) {
	f, err := os.CreateTemp("", "herald-import-ids-*")
	if err != nil {
		return nil, fmt.Errorf("import spool: %w", err)
	}
	return &idSpool{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// reset empties the spool (a retried transaction starts over).
func (s *idSpool) reset() error {
	s.w.Reset(s.f)
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("import spool: %w", err)
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

func (s *idSpool) add(ids []string) error {
	for _, id := range ids {
		s.w.WriteString(id)
		if err := s.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("import spool: %w", err)
		}
	}
	s.n += len(ids)
	return nil
}

// writeResult writes the store.ImportResult document with the spooled ids.
func (s *idSpool) writeResult(w io.Writer, res store.ImportResult) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, `{"rows":%d,"created":%d,"updated":%d,"contacts":[`, res.Rows, res.Created, res.Updated)
	sc := bufio.NewScanner(s.f)
	for i := 0; sc.Scan(); i++ {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(strconv.Quote(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return err
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

func (s *idSpool) remove() {
	_ = s.f.Close()
	_ = os.Remove(s.f.Name())
}
