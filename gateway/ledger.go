package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// Ledger serves the audit ledger API (docs/audit.md): entries, signed
// checkpoints, the public verifier keys, inclusion and consistency proofs,
// and exports. Every route but GET /v1/ledger/keys needs an authenticated
// principal; data is always the caller's organisation's.
//
// Access: reading (entries, checkpoint, proofs) needs "ledger":"read";
// exports and on-demand checkpoints need "ledger":"export" (compliance
// officers and auditors: a checkpoint appends a ledger.checkpoint entry, so
// it is not open to every reader). The verifier keys are public: anyone
// may check a signature.
//
// A nil *Ledger registers the same routes, which answer 503 unavailable.
type Ledger struct {
	Logs *store.LedgerLogs
	// VerifierKeys are the note verifier keys ("name+hash+key") of every
	// key that ever signed checkpoints, current first: old checkpoints stay
	// verifiable after a rotation.
	VerifierKeys []string
	// Keys, when set, supplies VerifierKeys at request time (so a key
	// rotation is published without a restart).
	Keys func() []string
}

// Routes registers the ledger routes: GET /v1/ledger/keys on public (no
// authentication), the others on v1 (the authenticated /v1 group).
func (l *Ledger) Routes(public gin.IRoutes, v1 gin.IRoutes, authorize func(c *gin.Context, resource, verb string) bool) {
	public.GET("/v1/ledger/keys", l.keys)
	v1.GET("/ledger/entries", l.guard(authorize, "read", l.entries))
	v1.GET("/ledger/checkpoint", l.guard(authorize, "read", l.latestCheckpoint))
	v1.POST("/ledger/checkpoint", l.guard(authorize, "export", l.newCheckpoint))
	v1.GET("/ledger/proof/inclusion", l.guard(authorize, "read", l.inclusion))
	v1.GET("/ledger/proof/consistency", l.guard(authorize, "read", l.consistency))
	v1.GET("/ledger/export", l.guard(authorize, "export", l.export))
}

// guard authorizes verb on "ledger" before h.
func (l *Ledger) guard(authorize func(*gin.Context, string, string) bool, verb string, h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !authorize(c, "ledger", verb) {
			return
		}
		h(c)
	}
}

// ready answers 503 when the ledger API is not configured.
func (l *Ledger) ready(c *gin.Context) bool {
	if l == nil || l.Logs == nil {
		writeProblem(c, herald.Errorf(herald.CodeUnavailable, "the ledger API is not configured on this server"))
		return false
	}
	return true
}

// seqParams parses unsigned integer query parameters (seqs and sizes,
// ≤ 2^53-1); absent ones stay 0.
func seqParams(c *gin.Context, names ...string) (map[string]uint64, []herald.FieldError) {
	out := map[string]uint64{}
	var fe []herald.FieldError
	for _, name := range names {
		v := c.Query(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 53)
		if err != nil {
			fe = append(fe, herald.FieldError{Field: name, Message: "must be a sequence number (0 – 2^53-1)"})
			continue
		}
		out[name] = n
	}
	return out, fe
}

// entries answers GET /v1/ledger/entries?from=&to=&kind=&action=&limit=&cursor=:
// entries in seq order, from and to inclusive, at most limit (default 100,
// max 1000); next_cursor (also next_from) continues the listing.
func (l *Ledger) entries(c *gin.Context) {
	p, fe := seqParams(c, "from", "to", "cursor")
	f := store.LedgerFilter{FromSeq: p["from"], ToSeq: p["to"], Kind: c.Query("kind"), Action: c.Query("action"), Limit: 100}
	if cur, ok := p["cursor"]; ok && cur > f.FromSeq {
		f.FromSeq = cur
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			fe = append(fe, herald.FieldError{Field: "limit", Message: "must be 1–1000"})
		}
		f.Limit = n
	}
	if len(f.Kind) > 100 {
		fe = append(fe, herald.FieldError{Field: "kind", Message: "must be at most 100 characters"})
	}
	if len(f.Action) > 200 {
		fe = append(fe, herald.FieldError{Field: "action", Message: "must be at most 200 characters"})
	}
	if _, ok := p["to"]; ok && f.ToSeq < f.FromSeq {
		fe = append(fe, herald.FieldError{Field: "to", Message: "must not be below from"})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	if !l.ready(c) {
		return
	}
	if _, ok := p["to"]; ok && f.ToSeq == 0 {
		f.Limit = 1 // to=0 means "only the genesis entry", not "no bound"
	}
	entries, err := l.Logs.Store.LedgerEntries(c.Request.Context(), principal(c).Org, f)
	if err != nil {
		writeProblem(c, err)
		return
	}
	next := ""
	if len(entries) == f.Limit {
		next = strconv.FormatUint(entries[len(entries)-1].Seq+1, 10)
	}
	writeJSON(c, http.StatusOK, gin.H{"entries": entries, "next_cursor": next, "next_from": next})
}

// checkpointBody is a checkpoint as the API returns it.
func checkpointBody(cp store.LedgerCheckpoint, origin string) gin.H {
	return gin.H{"origin": origin, "size": cp.Size, "root": cp.Root, "key_id": cp.KeyID, "created_at": cp.CreatedAt, "note": cp.Note}
}

// latestCheckpoint answers GET /v1/ledger/checkpoint: the latest signed
// checkpoint; ?format=note returns the signed note alone as text/plain.
func (l *Ledger) latestCheckpoint(c *gin.Context) {
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "note" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "format", Message: "must be json or note"}))
		return
	}
	if !l.ready(c) {
		return
	}
	org := principal(c).Org
	cp, err := l.Logs.Store.LatestLedgerCheckpoint(c.Request.Context(), org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	if format == "note" {
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(cp.Note))
		return
	}
	writeJSON(c, http.StatusOK, checkpointBody(cp, l.Logs.Origin(org)))
}

// newCheckpoint answers POST /v1/ledger/checkpoint: signs a checkpoint now
// (201) or, when nothing was appended since the latest, returns it (200).
func (l *Ledger) newCheckpoint(c *gin.Context) {
	if c.Request.ContentLength > 0 {
		var empty struct{}
		if err := decodeJSON(c, &empty); err != nil {
			writeProblem(c, err)
			return
		}
	}
	if !l.ready(c) {
		return
	}
	org := principal(c).Org
	cp, created, err := l.Logs.Checkpoint(c.Request.Context(), org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(c, status, checkpointBody(cp, l.Logs.Origin(org)))
}

// keys answers GET /v1/ledger/keys (public): the verifier keys to pass to
// `herald ledger verify --key`, current first.
func (l *Ledger) keys(c *gin.Context) {
	if !l.ready(c) {
		return
	}
	type key struct {
		Name    string `json:"name"`
		KeyHash string `json:"key_hash"`
		VKey    string `json:"vkey"`
		Current bool   `json:"current"`
	}
	out := []key{}
	vkeys := l.VerifierKeys
	if l.Keys != nil {
		vkeys = l.Keys()
	}
	for i, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			writeProblem(c, fmt.Errorf("ledger verifier key %d: %w", i, err))
			return
		}
		out = append(out, key{Name: v.Name(), KeyHash: fmt.Sprintf("%08x", v.KeyHash()), VKey: strings.TrimSpace(k), Current: i == 0})
	}
	writeJSON(c, http.StatusOK, gin.H{"keys": out, "origin_prefix": l.Logs.Origin("")})
}

// inclusion answers GET /v1/ledger/proof/inclusion?seq=&size=: the
// self-contained bundle (ledger.InclusionBundle) proving entry seq is in the
// signed checkpoint at size (default: the latest checkpoint).
func (l *Ledger) inclusion(c *gin.Context) {
	p, fe := seqParams(c, "seq", "size")
	if _, ok := p["seq"]; !ok && len(fe) == 0 {
		fe = append(fe, herald.FieldError{Field: "seq", Message: "is required"})
	}
	if s, ok := p["size"]; ok && s <= p["seq"] {
		fe = append(fe, herald.FieldError{Field: "size", Message: "must be above seq"})
	}
	l.prove(c, fe, func(ctx context.Context, org string) (any, error) {
		return l.Logs.ProveInclusion(ctx, org, p["seq"], p["size"])
	})
}

// consistency answers GET /v1/ledger/proof/consistency?from=&to=: the
// bundle (ledger.ConsistencyBundle) proving the signed checkpoint at to
// (default: the latest) extends the one at from.
func (l *Ledger) consistency(c *gin.Context) {
	p, fe := seqParams(c, "from", "to")
	if _, ok := p["from"]; !ok && len(fe) == 0 {
		fe = append(fe, herald.FieldError{Field: "from", Message: "is required"})
	}
	if to, ok := p["to"]; ok && to < p["from"] {
		fe = append(fe, herald.FieldError{Field: "to", Message: "must not be below from"})
	}
	l.prove(c, fe, func(ctx context.Context, org string) (any, error) {
		return l.Logs.ProveConsistency(ctx, org, p["from"], p["to"])
	})
}

// prove answers a proof request: the parameter errors, else the bundle
// proof builds for the caller's organisation.
func (l *Ledger) prove(c *gin.Context, fe []herald.FieldError, proof func(ctx context.Context, org string) (any, error)) {
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	if !l.ready(c) {
		return
	}
	b, err := proof(c.Request.Context(), principal(c).Org)
	respond(c, http.StatusOK, b, err)
}

// export answers GET /v1/ledger/export?from=&to=&format=jsonl|csv: the
// verifiable JSONL export (entries [from, to), to exclusive as in the
// export header, default the whole log) streamed in constant memory, or a
// CSV view of the same entries. A failure after the first byte aborts the
// connection, so a cut export never looks complete (and does not verify).
func (l *Ledger) export(c *gin.Context) {
	p, fe := seqParams(c, "from", "to")
	format := c.DefaultQuery("format", "jsonl")
	if format != "jsonl" && format != "csv" {
		fe = append(fe, herald.FieldError{Field: "format", Message: "must be jsonl or csv"})
	}
	if to, ok := p["to"]; ok && to <= p["from"] {
		fe = append(fe, herald.FieldError{Field: "to", Message: "must be above from (to is exclusive)"})
	}
	if len(fe) > 0 {
		writeProblem(c, herald.Invalid(fe...))
		return
	}
	if !l.ready(c) {
		return
	}
	ctx, org := c.Request.Context(), principal(c).Org
	opts := store.LedgerExportOptions{From: p["from"], To: p["to"]}
	h, err := l.Logs.LedgerExportHeader(ctx, org, opts)
	if err != nil {
		writeProblem(c, err)
		return
	}
	from := h.From
	if format == "csv" {
		from = max(h.From, opts.From)
	}
	name := fmt.Sprintf("herald-ledger-%s-%d-%d.%s", org, from, h.To, format)
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	if format == "csv" {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Status(http.StatusOK)
		// A view for people: exactly [from, to), no anchor needed.
		if err := ledger.WriteCSV(c.Writer, l.Logs.Store.LedgerEntriesRange(ctx, org, from, h.To)); err != nil {
			logger(c).Error("ledger csv export", "err", err)
			panic(http.ErrAbortHandler)
		}
		return
	}
	c.Header("Content-Type", "application/jsonl; charset=utf-8")
	c.Status(http.StatusOK)
	if _, err := l.Logs.ExportLedger(ctx, org, opts, c.Writer); err != nil {
		logger(c).Error("ledger export", "err", err)
		panic(http.ErrAbortHandler)
	}
}
