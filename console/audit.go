package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/heraldhq/herald/ledger"
)

type checkpointView struct {
	Origin    string    `json:"origin"`
	Size      uint64    `json:"size"`
	Root      string    `json:"root"`
	KeyID     string    `json:"key_id"`
	CreatedAt time.Time `json:"created_at"`
	Note      string    `json:"note"`
}

type consistencyResult struct {
	From, To uint64
	OK       bool
	Error    string
}

// subjectRequest is a data-subject request as the API answers it (Audit
// lists the open ones; a contact's page lists theirs).
type subjectRequest struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	Contact     string     `json:"contact"`
	Status      string     `json:"status"`
	ReceivedAt  time.Time  `json:"received_at"`
	DueAt       time.Time  `json:"due_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Overdue     bool       `json:"overdue"`
}

type fullEntry struct {
	Seq         uint64            `json:"seq"`
	Time        time.Time         `json:"time"`
	Kind        string            `json:"kind"`
	Actor       string            `json:"actor"`
	Refs        map[string]string `json:"refs"`
	Attrs       map[string]any    `json:"attrs"`
	PayloadHash string            `json:"payload_hash"`
	Hash        string            `json:"hash"`
}

type auditData struct {
	Entries     []fullEntry
	From        uint64
	Next        string
	Kind        string
	Checkpoint  *checkpointView
	Keys        []string
	Consistency *consistencyResult
	Subjects    []subjectRequest
	CanExport   bool
	CanDPIA     bool
}

// auditPage is the auditor's desk: ledger entries (paged by seq), the
// latest signed checkpoint (its history: the entries of kind
// ledger.checkpoint), a consistency check
// between two checkpoints, exports, the DPIA, and open subject requests.
func (c *Console) auditPage(r *Request) {
	d, ok := c.auditData(r)
	if !ok {
		return
	}
	r.Render(http.StatusOK, "audit", "audit.title", "/audit", d)
}

func (c *Console) auditData(r *Request) (auditData, bool) {
	q := r.URL.Query()
	d := auditData{Kind: q.Get("kind"), CanExport: r.Can("ledger", "export"), CanDPIA: r.Can("reports", "read")}
	if !r.Can("ledger", "read") {
		r.Fail(&Problem{Status: http.StatusForbidden, Code: "forbidden"})
		return d, false
	}
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			r.RenderProblem(http.StatusBadRequest, "audit", "audit.title", "/audit", d,
				&Problem{Status: http.StatusBadRequest, Code: "validation_failed", Title: "from", Detail: "from must be a sequence number"})
			return d, false
		}
		d.From = n
	}
	api := url.Values{"from": {strconv.FormatUint(d.From, 10)}, "limit": {"50"}}
	if d.Kind != "" {
		api.Set("kind", d.Kind)
	}
	var entries struct {
		Entries []fullEntry `json:"entries"`
		Next    string      `json:"next_cursor"`
	}
	if err := r.API(http.MethodGet, "/v1/ledger/entries?"+api.Encode(), nil, &entries); err != nil {
		r.Fail(err)
		return d, false
	}
	d.Entries, d.Next = entries.Entries, entries.Next
	var cp checkpointView
	if err := r.API(http.MethodGet, "/v1/ledger/checkpoint", nil, &cp); err == nil {
		d.Checkpoint = &cp
	} else if p, ok := err.(*Problem); !ok || p.Status != http.StatusNotFound {
		r.Fail(err)
		return d, false
	}
	if r.Can("reports", "read") && r.Can("contacts", "read") {
		var out struct {
			Requests []subjectRequest `json:"requests"`
		}
		if err := r.API(http.MethodGet, "/v1/subject-requests?status=open", nil, &out); err != nil {
			r.Fail(err)
			return d, false
		}
		d.Subjects = out.Requests
	}
	return d, true
}

// publishedKeys reads the verifier keys Herald publishes (the public
// GET /v1/ledger/keys), the keys any outside verifier is given.
func (r *Request) publishedKeys() ([]string, error) {
	var out struct {
		Keys []struct {
			VKey string `json:"vkey"`
		} `json:"keys"`
	}
	if err := r.API(http.MethodGet, "/v1/ledger/keys", nil, &out); err != nil {
		return nil, err
	}
	keys := make([]string, len(out.Keys))
	for i, k := range out.Keys {
		keys[i] = k.VKey
	}
	return keys, nil
}

// consistencyPage checks that the signed checkpoint at "to" extends the
// one at "from": the proof comes from the API, and is checked here against
// the published keys (ledger.VerifyConsistencyBundle), not taken on trust.
func (c *Console) consistencyPage(r *Request) {
	d, ok := c.auditData(r)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, err1 := strconv.ParseUint(q.Get("cfrom"), 10, 63)
	to, err2 := strconv.ParseUint(q.Get("cto"), 10, 63)
	if err1 != nil || err2 != nil {
		r.RenderProblem(http.StatusBadRequest, "audit", "audit.title", "/audit", d,
			&Problem{Status: http.StatusBadRequest, Code: "validation_failed", Title: "cfrom, cto", Detail: "give two checkpoint sizes"})
		return
	}
	res := &consistencyResult{From: from, To: to}
	d.Consistency = res
	raw, err := r.c.callAPI(r.Context(), r.Request, r.bearer, http.MethodGet,
		"/v1/ledger/proof/consistency?from="+strconv.FormatUint(from, 10)+"&to="+strconv.FormatUint(to, 10), nil)
	if err != nil {
		r.Fail(err)
		return
	}
	var b ledger.ConsistencyBundle
	if err := raw.decode(&b); err != nil {
		p, ok := err.(*Problem)
		if !ok || p.Status >= 500 || p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden {
			r.Fail(err)
			return
		}
		r.RenderProblem(p.Status, "audit", "audit.title", "/audit", d, p)
		return
	}
	keys, err := r.publishedKeys()
	if err != nil {
		r.Fail(err)
		return
	}
	vs, err := ledger.NewVerifiers(keys...)
	if err == nil {
		_, _, err = ledger.VerifyConsistencyBundle(b, vs)
	}
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	r.Render(http.StatusOK, "audit", "audit.title", "/audit", d)
}

// download streams an API answer to the browser as a file (exports, the
// DPIA): the API decides and formats; the console adds the file name. A
// 2xx answer is streamed as it is written (a whole-log export is never
// held in memory); a refusal is shown as a page.
func (r *Request) download(path, filename string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		r.Fail(err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.bearer)
	req.RemoteAddr = r.RemoteAddr
	sw := &streamWriter{w: r.W, filename: filename, h: http.Header{}}
	r.c.cfg.API.ServeHTTP(sw, req)
	if sw.status == 0 {
		sw.WriteHeader(http.StatusOK)
	}
	if sw.status >= 300 {
		r.Fail(apiResult{Status: sw.status, Header: sw.h, Body: sw.buf.Bytes()}.decode(nil))
	}
}

// streamWriter passes a 2xx answer through to the browser as an
// attachment and keeps an error answer for the console to render.
type streamWriter struct {
	w        http.ResponseWriter
	h        http.Header
	filename string
	status   int
	buf      bytes.Buffer
}

func (s *streamWriter) Header() http.Header { return s.h }

func (s *streamWriter) WriteHeader(status int) {
	if s.status != 0 {
		return
	}
	s.status = status
	if status < 300 {
		s.w.Header().Set("Content-Type", s.h.Get("Content-Type"))
		s.w.Header().Set("Content-Disposition", `attachment; filename="`+s.filename+`"`)
		s.w.WriteHeader(status)
	}
}

func (s *streamWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.WriteHeader(http.StatusOK)
	}
	if s.status >= 300 {
		return s.buf.Write(b)
	}
	return s.w.Write(b)
}

func (s *streamWriter) Flush() {
	if f, ok := s.w.(http.Flusher); ok && s.status < 300 && s.status != 0 {
		f.Flush()
	}
}

// auditExport downloads the ledger export (JSONL, verifiable offline with
// `herald ledger verify`, or CSV for people).
func (c *Console) auditExport(r *Request) {
	format := r.URL.Query().Get("format")
	if format != "csv" {
		format = "jsonl"
	}
	r.download("/v1/ledger/export?format="+format, "herald-ledger-"+r.Me.Org.ID+"."+format)
}

var dpiaExt = map[string]string{"json": "json", "markdown": "md", "html": "html", "pdf": "pdf"}

// dpiaDownload downloads the DPIA (or, with ropa=1, the record of
// processing) generated from the live system, in the format asked for.
func (c *Console) dpiaDownload(r *Request) {
	format := r.URL.Query().Get("format")
	ext, ok := dpiaExt[format]
	if !ok {
		format, ext = "pdf", "pdf"
	}
	path, name := "/v1/dpia", "herald-dpia-"
	if r.URL.Query().Get("ropa") == "1" {
		path, name = "/v1/dpia/ropa", "herald-ropa-"
	}
	r.download(path+"?format="+format, name+r.Me.Org.ID+"."+ext)
}

// attrsJSON shows an entry's attributes compactly.
func attrsJSON(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m)
	return string(b)
}
