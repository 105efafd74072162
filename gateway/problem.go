package gateway

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// unavailableRetryAfter is the Retry-After (seconds) of a 503: a
// PostgreSQL restart or fail-over takes about a second to a few seconds.
const unavailableRetryAfter = 2

// problemType is the base of every problem document's "type" URI; the code
// is appended, so each stable code has a stable type.
const problemType = "https://herald.dev/problems/"

// Problem is an RFC 9457 problem document with Herald's stable code.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Code      herald.Code         `json:"code"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []herald.FieldError `json:"errors,omitempty"`
}

var codeStatus = map[herald.Code]int{
	herald.CodeInvalidJSON:        http.StatusBadRequest,
	herald.CodeValidation:         http.StatusUnprocessableEntity,
	herald.CodeImportRejected:     http.StatusUnprocessableEntity,
	herald.CodeUnauthenticated:    http.StatusUnauthorized,
	herald.CodeForbidden:          http.StatusForbidden,
	herald.CodeNotFound:           http.StatusNotFound,
	herald.CodeRouteNotFound:      http.StatusNotFound,
	herald.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	herald.CodeConflict:           http.StatusConflict,
	herald.CodeIdempotencyReuse:   http.StatusConflict,
	herald.CodeIllegalTransition:  http.StatusConflict,
	herald.CodeAccountUnavailable: http.StatusConflict,
	herald.CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	herald.CodePayloadTooLarge:    http.StatusRequestEntityTooLarge,
	herald.CodeUnavailable:        http.StatusServiceUnavailable,
	CodePolicyUnavailable:         http.StatusServiceUnavailable,
	CodeRateLimited:               http.StatusTooManyRequests,
	CodeInvalidEncoding:           http.StatusBadRequest,
	herald.CodeInternal:           http.StatusInternalServerError,
	CodeSelfApproval:              http.StatusForbidden,
	CodeNotApprover:               http.StatusForbidden,
	CodeExpired:                   http.StatusConflict,
	CodeNotOverridable:            http.StatusConflict,
	policies.CodeInvalid:          http.StatusUnprocessableEntity,
	policies.CodeTestsFailed:      http.StatusConflict,
}

// writeProblem answers with err as problem+json. Untyped errors are logged
// and answered as a generic internal error: their text may carry details
// (SQL, paths) that are not the caller's business.
//
// Database faults (a restart, a lost connection, no free connection) are
// not the caller's fault nor a decision: they answer 503 unavailable with
// Retry-After, so clients retry the same request (with its
// Idempotency-Key) instead of giving up on a permanent-looking 500.
func writeProblem(c *gin.Context, err error) {
	var he *herald.Error
	switch {
	case errors.As(err, &he):
	case store.IsUnavailable(err):
		logger(c).Warn("database unavailable", "err", err)
		he = &herald.Error{Code: herald.CodeUnavailable, Message: "the database is unavailable; retry after the number of seconds in Retry-After"}
	default:
		logger(c).Error("internal error", "err", err)
		he = &herald.Error{Code: herald.CodeInternal, Message: "internal error; the request id identifies it in Herald's logs"}
	}
	if he.Code == herald.CodeUnavailable && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", strconv.Itoa(unavailableRetryAfter))
	}
	status := codeStatus[he.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	p := Problem{Type: problemType + string(he.Code), Title: http.StatusText(status), Status: status,
		Detail: he.Message, Code: he.Code, Instance: c.Request.URL.Path, RequestID: c.GetString(ctxRequestID), Errors: he.Fields}
	body := gin.H{}
	for k, v := range he.Extra {
		body[k] = v
	}
	body["type"], body["title"], body["status"], body["code"] = p.Type, p.Title, p.Status, p.Code
	body["detail"], body["instance"], body["request_id"] = p.Detail, p.Instance, p.RequestID
	if len(p.Errors) > 0 {
		body["errors"] = p.Errors
	}
	c.Header("Content-Type", "application/problem+json")
	c.Abort()
	c.Render(status, problemRender{body})
}

type problemRender struct{ body gin.H }

func (r problemRender) Render(w http.ResponseWriter) error {
	return jsonRenderT{r.body}.Render(w)
}

func (r problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}

// respond ends a handler: err as a problem document, otherwise v with
// status. It is the common tail of "call the store, answer the result".
func respond(c *gin.Context, status int, v any, err error) {
	if err != nil {
		writeProblem(c, err)
		return
	}
	writeJSON(c, status, v)
}
