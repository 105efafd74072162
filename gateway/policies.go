package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// Policies is the policy lifecycle for compliance officers: upload a bundle
// (strict compile + its own tests), list and read versions, preview the
// impact of a version on recent decisions, activate (and roll back), and
// replay the decisions of an action. Its methods are the library the API
// routes and the CLI (herald policy …) share.
//
// A nil *Policies still registers its routes, which then answer 503, so the
// route table (and the OpenAPI document) does not depend on configuration.
type Policies struct {
	Store *store.Store
	// Registry decides with each organisation's active bundle; activation
	// refreshes it at once (other replicas follow at their next poll).
	Registry *policies.Registry
}

// Limits of the policy API.
const (
	// maxPolicyUploadBytes bounds an upload: policies.ReadBundleTarGz caps
	// the unpacked bundle at 16 MiB; JSON escaping can add a little.
	maxPolicyUploadBytes = 20 << 20
	// DefaultImpactLimit is how many recent decisions an impact preview
	// replays unless ?limit= says otherwise; MaxImpactLimit caps it.
	DefaultImpactLimit = 1000
	MaxImpactLimit     = 100000
	// UploadTestTimeout bounds running an uploaded bundle's own tests
	// (each test is also bounded by policies.TestTimeout): the default
	// bundle's tests take well under a second.
	UploadTestTimeout = time.Minute
)

// Routes registers the policy routes on g (the authenticated /v1 group);
// authorize is the server's authorization check, which answers the request
// itself when it refuses.
func (p *Policies) Routes(g gin.IRoutes, authorize func(c *gin.Context, resource, verb string) bool) {
	h := func(verb string, fn func(*gin.Context)) gin.HandlerFunc {
		return func(c *gin.Context) {
			if !authorize(c, "policies", verb) {
				return
			}
			if p == nil || p.Store == nil || p.Registry == nil {
				writeProblem(c, herald.Errorf(herald.CodeUnavailable, "the policy lifecycle is not configured on this server"))
				return
			}
			fn(c)
		}
	}
	g.GET("/policies", h("read", p.list))
	g.POST("/policies", h("write", p.upload))
	g.POST("/policies/replay", h("read", p.replay))
	g.GET("/policies/:version", h("read", p.get))
	g.POST("/policies/:version/activate", h("write", p.activate))
	g.POST("/policies/:version/impact", h("read", p.impact))
}

// Handler serves only the policy routes, authenticated and logged like
// s's /v1 routes: for a separate administrative listener, or for tests of
// the lifecycle against a Server whose route table does not include it.
func (p *Policies) Handler(s *Server) http.Handler {
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(s.requestContext, s.recover)
	p.Routes(r.Group("/v1", s.authenticate), s.authorize)
	return r
}

// policyCodeStatus maps the lifecycle's codes to HTTP statuses.
var policyCodeStatus = map[herald.Code]int{
	policies.CodeInvalid:     http.StatusUnprocessableEntity,
	policies.CodeTestsFailed: http.StatusConflict,
}

// writePolicyProblem is writeProblem for errors that may carry the policy
// lifecycle's own codes.
func writePolicyProblem(c *gin.Context, err error) {
	var he *herald.Error
	if !errors.As(err, &he) {
		writeProblem(c, err)
		return
	}
	status, ok := policyCodeStatus[he.Code]
	if !ok {
		writeProblem(c, err)
		return
	}
	body := gin.H{}
	for k, v := range he.Extra {
		body[k] = v
	}
	body["type"], body["title"], body["status"], body["code"] = problemType+string(he.Code), http.StatusText(status), status, he.Code
	body["detail"], body["instance"], body["request_id"] = he.Message, c.Request.URL.Path, c.GetString(ctxRequestID)
	if len(he.Fields) > 0 {
		body["errors"] = he.Fields
	}
	c.Abort()
	c.Render(status, problemRender{body})
}

// TestSummary is the short form of a bundle's test report in listings.
type TestSummary struct {
	Passed   int     `json:"passed"`
	Failed   int     `json:"failed"`
	Skipped  int     `json:"skipped"`
	Coverage float64 `json:"coverage"`
}

// PolicyVersion is one version in GET /v1/policies.
type PolicyVersion struct {
	Version     int         `json:"version"`
	Hash        string      `json:"hash"`
	Status      string      `json:"status"`
	Author      string      `json:"author"`
	CreatedAt   time.Time   `json:"created_at"`
	ActivatedAt *time.Time  `json:"activated_at,omitempty"`
	ActivatedBy string      `json:"activated_by,omitempty"`
	Tests       TestSummary `json:"tests"`
}

// PolicyList is the body of GET /v1/policies.
type PolicyList struct {
	// Active is the active version; nil when the organisation is decided
	// by the built-in default bundle, whose hash is DefaultHash.
	Active      *PolicyVersion  `json:"active"`
	DefaultHash string          `json:"default_hash"`
	Versions    []PolicyVersion `json:"versions"`
}

func versionOf(b store.PolicyBundle) PolicyVersion {
	return PolicyVersion{Version: b.Version, Hash: b.Hash, Status: b.Status, Author: b.Author, CreatedAt: b.CreatedAt,
		ActivatedAt: b.ActivatedAt, ActivatedBy: b.ActivatedBy,
		Tests: TestSummary{Passed: b.Report.Passed, Failed: b.Report.Failed, Skipped: b.Report.Skipped, Coverage: b.Report.Coverage}}
}

// List returns org's versions, newest first, and the active one.
func (p *Policies) List(ctx context.Context, org string) (PolicyList, error) {
	bs, err := p.Store.ListPolicyBundles(ctx, org)
	if err != nil {
		return PolicyList{}, err
	}
	out := PolicyList{Versions: make([]PolicyVersion, 0, len(bs))}
	if d := p.Registry.Default(); d != nil {
		out.DefaultHash = d.Hash()
	}
	for _, b := range bs {
		v := versionOf(b)
		out.Versions = append(out.Versions, v)
		if b.Status == store.PolicyActive {
			out.Active = &v
		}
	}
	return out, nil
}

// Upload compiles b strictly, runs its own tests and stores it as org's
// next version: a candidate when the tests pass, failed (never
// activatable) when they do not. A bundle that does not compile is not
// stored: the error has code policies.CodeInvalid and lists file:line
// problems.
func (p *Policies) Upload(ctx context.Context, org, author string, b policies.Bundle) (store.PolicyBundle, error) {
	if _, err := policies.Compile(ctx, b); err != nil {
		return store.PolicyBundle{}, invalidBundle(err)
	}
	tctx, cancel := context.WithTimeout(ctx, UploadTestTimeout)
	defer cancel()
	rep, err := policies.RunTests(tctx, b)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return store.PolicyBundle{}, herald.Invalid(herald.FieldError{Field: "files",
				Message: fmt.Sprintf("the bundle's tests did not finish within %s", UploadTestTimeout)})
		}
		return store.PolicyBundle{}, invalidBundle(err)
	}
	return p.Store.CreatePolicyBundle(ctx, org, author, b, rep)
}

// invalidBundle turns a compile error into the policy_invalid problem.
func invalidBundle(err error) error {
	var ce *policies.CompileError
	if !errors.As(err, &ce) {
		return err
	}
	he := &herald.Error{Code: policies.CodeInvalid, Message: "the policy bundle does not compile: " + problemsText(ce.Problems),
		Extra: map[string]any{"problems": ce.Problems}}
	for _, pr := range ce.Problems {
		field := pr.File
		if pr.Line > 0 {
			field += ":" + strconv.Itoa(pr.Line)
		}
		if field == "" {
			field = "bundle"
		}
		he.Fields = append(he.Fields, herald.FieldError{Field: field, Message: pr.Message})
	}
	return he
}

func problemsText(ps []policies.Problem) string {
	var parts []string
	for i, p := range ps {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-3))
			break
		}
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "; ")
}

// Activate makes version org's active bundle (rollback: an older version)
// and switches this replica's registry at once.
func (p *Policies) Activate(ctx context.Context, org string, version int, actor string) (store.PolicyBundle, error) {
	b, err := p.Store.ActivatePolicyBundle(ctx, org, version, actor)
	if err != nil {
		return b, err
	}
	// The activation is committed whatever happens next. If this replica
	// cannot load it now, Refresh logs why, keeps the previous engine and
	// tries again at its next poll.
	_ = p.Registry.Refresh(ctx)
	return b, nil
}

// ImpactReport is the body of POST /v1/policies/{version}/impact.
type ImpactReport struct {
	Version int `json:"version"`
	policies.Impact
	// DurationMS is the evaluation time in milliseconds; TotalMS includes
	// reading the decisions and compiling the bundle.
	DurationMS float64 `json:"duration_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// Impact replays the inputs of org's last limit decisions against version
// and counts the outcome transitions. The bundle is compiled once (or taken
// from the registry when it is already loaded).
func (p *Policies) Impact(ctx context.Context, org string, version, limit int) (ImpactReport, error) {
	start := time.Now()
	if limit <= 0 {
		limit = DefaultImpactLimit
	}
	pb, err := p.Store.GetPolicyBundle(ctx, org, version)
	if err != nil {
		return ImpactReport{}, err
	}
	e, err := p.Registry.Compiled(ctx, pb.Bundle())
	if err != nil {
		return ImpactReport{}, invalidBundle(err)
	}
	recs, err := p.Store.RecentDecisions(ctx, org, limit)
	if err != nil {
		return ImpactReport{}, err
	}
	past := make([]policies.PastDecision, len(recs))
	for i, r := range recs {
		past[i] = policies.PastDecision{ActionID: r.ActionID, Input: r.Input, Outcome: r.Decision.Outcome}
	}
	im := policies.Preview(ctx, e, past)
	if err := ctx.Err(); err != nil {
		return ImpactReport{}, err
	}
	return ImpactReport{Version: version, Impact: im, DurationMS: ms(im.Duration), TotalMS: ms(time.Since(start))}, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ReplayedDecision is one decision of an action, decided again.
type ReplayedDecision struct {
	Stage      string    `json:"stage"`
	At         time.Time `json:"at"`
	BundleHash string    `json:"bundle_hash"`
	policies.Replayed
}

// ReplayReport is the body of POST /v1/policies/replay.
type ReplayReport struct {
	ActionID   string             `json:"action_id"`
	Reproduced bool               `json:"reproduced"`
	Decisions  []ReplayedDecision `json:"decisions"`
}

// Replay re-evaluates every recorded decision of an action with the bundle
// whose hash it recorded (the registry's engines, else the stored version
// of that hash) and reports whether each reproduces exactly.
func (p *Policies) Replay(ctx context.Context, org, actionID string) (ReplayReport, error) {
	recs, err := p.Store.DecisionsOf(ctx, org, actionID)
	if err != nil {
		return ReplayReport{}, err
	}
	if len(recs) == 0 {
		return ReplayReport{}, herald.NotFound("recorded decisions of action " + actionID)
	}
	out := ReplayReport{ActionID: actionID, Reproduced: true}
	engines := map[string]*policies.Engine{}
	for _, r := range recs {
		rd := ReplayedDecision{Stage: r.Stage, At: r.At, BundleHash: r.BundleHash}
		e, ok := engines[r.BundleHash]
		if !ok {
			e, err = p.engineByHash(ctx, org, r.BundleHash)
			if err != nil {
				return out, err
			}
			engines[r.BundleHash] = e
		}
		if e == nil {
			rd.Recorded = r.Decision
			rd.Error = "the bundle " + r.BundleHash + " that made this decision is not stored in this database"
		} else {
			rd.Replayed = policies.Replay(ctx, e, r.Input, r.Decision, r.Minimised())
		}
		out.Reproduced = out.Reproduced && rd.Reproduced
		out.Decisions = append(out.Decisions, rd)
	}
	return out, nil
}

// engineByHash finds the engine of a bundle hash: the registry's default or
// an active one, else the stored version with that hash (compiled now).
// It returns nil, nil when no bundle with that hash is known.
func (p *Policies) engineByHash(ctx context.Context, org, hash string) (*policies.Engine, error) {
	if d := p.Registry.Default(); d != nil && d.Hash() == hash {
		return d, nil
	}
	if e, err := p.Registry.EngineFor(org); err == nil && e != nil && e.Hash() == hash {
		return e, nil
	}
	pb, err := p.Store.PolicyBundleByHash(ctx, org, hash)
	if herald.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return p.Registry.Compiled(ctx, pb.Bundle())
}

// --- HTTP handlers ---

func (p *Policies) list(c *gin.Context) {
	l, err := p.List(c.Request.Context(), principal(c).Org)
	respond(c, http.StatusOK, l, err)
}

// uploadRequest is the JSON form of POST /v1/policies.
type uploadRequest struct {
	Files map[string]string `json:"files"`
}

func (p *Policies) upload(c *gin.Context) {
	b, err := readUpload(c)
	if err != nil {
		writePolicyProblem(c, err)
		return
	}
	pr := principal(c)
	pb, err := p.Upload(c.Request.Context(), pr.Org, pr.ID, b)
	if err != nil {
		writePolicyProblem(c, err)
		return
	}
	c.Header("Location", "/v1/policies/"+strconv.Itoa(pb.Version))
	writeJSON(c, http.StatusCreated, pb)
}

// readUpload reads a bundle as JSON {"files": {"path": "content"}} or as a
// tar.gz (application/gzip).
func readUpload(c *gin.Context) (policies.Bundle, error) {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxPolicyUploadBytes)
	switch ct := c.ContentType(); ct {
	case "application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/octet-stream":
		b, err := policies.ReadBundleTarGz(body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return b, herald.Errorf(herald.CodePayloadTooLarge, "the upload exceeds %d bytes", tooLarge.Limit)
			}
			return b, herald.Invalid(herald.FieldError{Field: "body", Message: err.Error()})
		}
		return b, nil
	case "", "application/json":
		var req uploadRequest
		dec := json.NewDecoder(body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return policies.Bundle{}, jsonError(err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return policies.Bundle{}, herald.Errorf(herald.CodeInvalidJSON, "the body must hold exactly one JSON value")
		}
		if err := checkStrings(req); err != nil {
			return policies.Bundle{}, err
		}
		return bundleFromFiles(req.Files)
	default:
		return policies.Bundle{}, herald.Errorf(herald.CodeUnsupportedMedia, "send application/json ({\"files\": {…}}) or application/gzip (a tar.gz bundle), not %s", ct)
	}
}

// bundleFromFiles checks the paths of a JSON upload as ReadBundleTarGz
// checks archive paths: relative, slash-separated, no "..", and only .rego
// and data.json files.
func bundleFromFiles(files map[string]string) (policies.Bundle, error) {
	if len(files) == 0 {
		return policies.Bundle{}, herald.Invalid(herald.FieldError{Field: "files", Message: "is required: a map of path to file content"})
	}
	var fe []herald.FieldError
	b := policies.Bundle{Files: make(map[string][]byte, len(files))}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		clean := path.Clean(name)
		switch {
		case name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || clean != name || slices.Contains(strings.Split(name, "/"), ".."):
			fe = append(fe, herald.FieldError{Field: "files/" + name, Message: "must be a relative slash-separated path without . or .. segments"})
		case !strings.HasSuffix(name, ".rego") && path.Base(name) != "data.json":
			fe = append(fe, herald.FieldError{Field: "files/" + name, Message: "only .rego files and data.json belong in a bundle"})
		default:
			b.Files[name] = []byte(files[name])
		}
	}
	if len(fe) > 0 {
		return policies.Bundle{}, herald.Invalid(fe...)
	}
	return b, nil
}

func versionParam(c *gin.Context) (int, error) {
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil || v < 1 {
		return 0, herald.NotFound("policy version " + strconv.Quote(c.Param("version")))
	}
	return v, nil
}

func (p *Policies) get(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	b, err := p.Store.GetPolicyBundle(c.Request.Context(), principal(c).Org, v)
	respond(c, http.StatusOK, b, err)
}

func (p *Policies) activate(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	pr := principal(c)
	b, err := p.Activate(c.Request.Context(), pr.Org, v, pr.ID)
	if err != nil {
		writePolicyProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, b)
}

func (p *Policies) impact(c *gin.Context) {
	v, err := versionParam(c)
	if err != nil {
		writeProblem(c, err)
		return
	}
	limit := DefaultImpactLimit
	if q := c.Query("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > MaxImpactLimit {
			writeProblem(c, herald.Invalid(herald.FieldError{Field: "limit", Message: fmt.Sprintf("must be 1–%d", MaxImpactLimit)}))
			return
		}
		limit = n
	}
	rep, err := p.Impact(c.Request.Context(), principal(c).Org, v, limit)
	if err != nil {
		writePolicyProblem(c, err)
		return
	}
	writeJSON(c, http.StatusOK, rep)
}

type replayRequest struct {
	ActionID string `json:"action_id"`
}

func (p *Policies) replay(c *gin.Context) {
	var req replayRequest
	if err := decodeJSON(c, &req); err != nil {
		writeProblem(c, err)
		return
	}
	if req.ActionID == "" {
		writeProblem(c, herald.Invalid(herald.FieldError{Field: "action_id", Message: "is required"}))
		return
	}
	rep, err := p.Replay(c.Request.Context(), principal(c).Org, req.ActionID)
	respond(c, http.StatusOK, rep, err)
}
