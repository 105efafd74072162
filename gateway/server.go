// Package gateway is Herald's HTTP API and the action pipeline behind it.
// Every route under /v1 authenticates with an API key (Authorization:
// Bearer hk_…), is scoped to the key's organisation, and answers errors as
// RFC 9457 problem+json with a stable code.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/render"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// Server is the HTTP API.
type Server struct {
	Pipeline *Pipeline
	Store    *store.Store
	// Policies serves /v1/policies (the policy lifecycle); nil answers 503.
	Policies *Policies
	Metrics  *telemetry.Metrics
	Log      *slog.Logger
	// Ready reports extra readiness conditions (the secret store answers);
	// nil means ready whenever the database answers.
	Ready func(ctx context.Context) error
	// Inbound configures opt-out keywords and the confirmation reply.
	Inbound Inbound
	// Secrets holds account secrets (bot tokens, MTProto credentials);
	// values go in through the API and never come out.
	Secrets secrets.Store
	// Ledger serves /v1/ledger/*; nil answers 503 on those routes.
	Ledger *Ledger
	// Sessions enables Telegram login and session tokens; nil disables them.
	Sessions *Sessions
	// RateLimits limits requests per key, per address and failed
	// authentications (see ratelimit.go); nil serves without limits.
	RateLimits *RateLimits
	// DPIA generates /v1/dpia reports; nil builds one from Store and Ledger.
	DPIA *dpia.Generator

	limiterOnce sync.Once
	limiter     *limiter
}

const (
	ctxRequestID = "herald.request_id"
	ctxPrincipal = "herald.principal"
	ctxLogger    = "herald.logger"

	// maxBodyBytes bounds a JSON request: the largest action (4096
	// characters of text, 4 bytes each in UTF-8) fits with room to spare.
	maxBodyBytes = 1 << 20
	// maxImportBytes bounds a contact import upload (streamed: see import.go).
	maxImportBytes = 256 << 20
)

func init() { gin.SetMode(gin.ReleaseMode) }

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler { return rewriteCustomMethods(s.engine()) }

// Routes lists every route as "METHOD /path" in OpenAPI path syntax
// ("/v1/actions/{id}"), for the OpenAPI drift test.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.engine().Routes() {
		path := r.Path
		if path == "/v1"+contactsImportRoute {
			path = "/v1/contacts:import"
		}
		parts := strings.Split(path, "/")
		for i, p := range parts {
			if strings.HasPrefix(p, ":") {
				parts[i] = "{" + p[1:] + "}"
			}
		}
		out = append(out, r.Method+" "+strings.Join(parts, "/"))
	}
	return out
}

func (s *Server) engine() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(s.requestContext, s.recover)
	r.Use(s.trafficGuards()...)
	r.NoRoute(func(c *gin.Context) {
		writeProblem(c, herald.Errorf(herald.CodeRouteNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, herald.Errorf(herald.CodeMethodNotAllowed, "method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{})))
	r.GET("/v1/openapi.json", serveOpenAPI)
	// Telegram calls the webhook; it authenticates with the secret token, not an API key.
	r.POST("/v1/telegram/webhook/:account", s.telegramWebhook)
	r.POST("/v1/auth/telegram", s.telegramLogin)

	v1 := r.Group("/v1", s.authenticate)
	v1.Use(s.keyRateLimit)
	s.Policies.Routes(v1, s.authorize)
	s.sloRoutes(v1)
	v1.GET("/me", s.me)
	v1.POST("/actions", s.submitAction)
	v1.GET("/actions", s.listActions)
	v1.GET("/actions/:id", s.getAction)
	v1.POST("/actions/:id/cancel", s.cancelAction)
	v1.POST("/actions/:id/approve", s.voteHandler("approve"))
	v1.POST("/actions/:id/reject", s.voteHandler("reject"))
	v1.POST("/actions/:id/override", s.overrideAction)
	v1.GET("/approvals", s.listApprovals)
	v1.GET("/accounts", s.listAccounts)
	v1.POST("/accounts", s.createAccount)
	v1.GET("/accounts/:id", s.getAccount)
	v1.PATCH("/accounts/:id", s.patchAccount)
	v1.POST("/accounts/:id/webhook-secret", s.setWebhookSecret)
	v1.POST(contactsImportRoute, s.importContacts)
	v1.GET("/contacts/:id", s.getContact)
	v1.PATCH("/contacts/:id", s.patchContact)
	v1.POST("/contacts/:id/opt-out", s.optOutContact)
	v1.DELETE("/contacts/:id", s.eraseContact)
	s.Ledger.Routes(r, v1, s.authorize)
	s.roleRoutes(v1)
	s.campaignRoutes(v1)
	s.dpiaRoutes(v1)
	s.facadeTokenRoutes(v1)
	s.platformRoutes(v1)
	v1.GET("/policies/params", s.getPolicyParams)
	v1.PUT("/policies/params", s.putPolicyParams)
	s.retentionRoutes(v1)
	s.retentionProfileRoutes(v1)
	s.consoleRoutes(v1)
	return r
}

// contactsImportRoute is where POST /v1/contacts:import is routed: gin's
// router cannot hold a literal colon inside a segment, so the custom method
// is rewritten to this path before routing (see rewriteCustomMethods).
const contactsImportRoute = "/contacts/import"

// restoreCustomMethod puts the path the client sent back on the request
// once it is routed, so problem documents' "instance" names
// /v1/contacts:import as it was called, not the internal route.
func restoreCustomMethod(c *gin.Context) {
	if orig, ok := c.Request.Context().Value(customMethodPath{}).(string); ok {
		c.Request.URL.Path = orig
	}
}

// customMethodPath keys the path a custom method was called with.
type customMethodPath struct{}

func rewriteCustomMethods(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/contacts:import" {
			r = r.WithContext(context.WithValue(r.Context(), customMethodPath{}, r.URL.Path))
			r.URL.Path = "/v1" + contactsImportRoute
			r.URL.RawPath = ""
		}
		next.ServeHTTP(w, r)
	})
}

// requestContext assigns a request id, a request-scoped logger and metrics.
// Logs carry method, route, status and timing: never bodies, query values
// or headers, which may hold message text, contact ids or keys.
func (s *Server) requestContext(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 128 || !cleanText(id) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	log := s.logger().With("request_id", id)
	c.Set(ctxLogger, log)
	restoreCustomMethod(c)
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	} else if route == "/v1"+contactsImportRoute {
		route = "/v1/contacts:import" // the route as clients call it
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	if s.Metrics != nil {
		s.Metrics.HTTPRequests.WithLabelValues(route, c.Request.Method, strconv.Itoa(status)).Inc()
		s.Metrics.HTTPDuration.WithLabelValues(route, c.Request.Method).Observe(elapsed.Seconds())
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", c.Request.Method, "route", route, "status", status, "duration_ms", float64(elapsed.Microseconds()) / 1000}
	if p, ok := c.Get(ctxPrincipal); ok {
		pr := p.(herald.Principal)
		attrs = append(attrs, "org", pr.Org, "principal", pr.ID)
	}
	log.Log(c.Request.Context(), level, "request", attrs...)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger(c).Error("panic in handler", "panic", fmt.Sprint(v))
			writeProblem(c, herald.Errorf(herald.CodeInternal, "internal error"))
		}
	}()
	c.Next()
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*slog.Logger)
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) authenticate(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="herald"`)
		writeProblem(c, herald.Errorf(herald.CodeUnauthenticated, "send an API key as Authorization: Bearer hk_…"))
		return
	}
	token = strings.TrimSpace(token)
	var (
		p   herald.Principal
		err error
	)
	if strings.Count(token, ".") == 2 && s.Sessions != nil {
		p, err = s.sessionPrincipal(c.Request.Context(), token) // a person's session (JWT)
	} else {
		p, err = s.Store.Authenticate(c.Request.Context(), token)
	}
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="herald", error="invalid_token"`)
		writeProblem(c, err)
		return
	}
	c.Set(ctxPrincipal, p)
	c.Next()
}

func principal(c *gin.Context) herald.Principal {
	return c.MustGet(ctxPrincipal).(herald.Principal)
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ready := true
	if err := s.Store.Ping(ctx); err != nil {
		checks["database"], ready = "unreachable", false
	} else {
		checks["database"] = "ok"
	}
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			checks["dependencies"], ready = err.Error(), false
		} else {
			checks["dependencies"] = "ok"
		}
	}
	if !ready {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}

func (s *Server) me(c *gin.Context) {
	p := principal(c)
	org, err := s.Store.GetOrg(c.Request.Context(), p.Org)
	if err != nil {
		writeProblem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"principal": p.ID, "org": org, "roles": s.principalRoles(p), "key_id": p.KeyID})
}

// decodeJSON reads a JSON body strictly: one object, known fields only,
// within the size limit. Every failure is a typed error naming the problem.
func decodeJSON(c *gin.Context, dst any) error {
	if ct := c.ContentType(); ct != "" && ct != "application/json" {
		return herald.Errorf(herald.CodeUnsupportedMedia, "send application/json (got %s)", ct)
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)
	dec := json.NewDecoder(&textReader{r: body})
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jsonError(orMoreThanOne(err))
	}
	return checkStrings(dst)
}

func jsonError(err error) error {
	var (
		syntax   *json.SyntaxError
		typeErr  *json.UnmarshalTypeError
		tooLarge *http.MaxBytesError
		timeErr  *time.ParseError
		typed    *herald.Error
	)
	switch {
	case errors.As(err, &typed):
		return typed
	case errors.As(err, &tooLarge):
		return herald.Errorf(herald.CodePayloadTooLarge, "the body exceeds %d bytes", tooLarge.Limit)
	case errors.As(err, &syntax):
		return herald.Errorf(herald.CodeInvalidJSON, "malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		field := strings.TrimPrefix(typeErr.Field, "Content.") // the embedded content's fields are top-level in JSON
		want := jsonTypeName(typeErr.Type.Kind())
		return &herald.Error{Code: herald.CodeInvalidJSON, Message: fmt.Sprintf("field %q must be %s", field, want),
			Fields: []herald.FieldError{{Field: field, Message: "must be " + want}}}
	case errors.As(err, &timeErr):
		return herald.Errorf(herald.CodeInvalidJSON, "a time must be RFC 3339, e.g. 2026-01-02T15:04:05Z")
	case errors.Is(err, io.EOF):
		return herald.Errorf(herald.CodeInvalidJSON, "the body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return herald.Errorf(herald.CodeInvalidJSON, "the body ends inside a JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &herald.Error{Code: herald.CodeInvalidJSON, Message: fmt.Sprintf("unknown field %q", f),
			Fields: []herald.FieldError{{Field: f, Message: "is not a field of this request"}}}
	}
	return herald.Errorf(herald.CodeInvalidJSON, "invalid JSON: %v", err)
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// jsonRenderT writes v as JSON without escaping HTML characters (message
// texts are returned verbatim).
type jsonRenderT struct{ v any }

func (r jsonRenderT) Render(w http.ResponseWriter) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r.v)
}

func (r jsonRenderT) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

var _ render.Render = jsonRenderT{}

func writeJSON(c *gin.Context, status int, v any) {
	c.Render(status, jsonRenderT{v})
}
