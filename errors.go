package herald

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients switch on it; it
// appears as the "code" member of every problem+json response. Codes never
// change meaning once released.
type Code string

const (
	CodeInvalidJSON        Code = "invalid_json"
	CodeValidation         Code = "validation_failed"
	CodeUnauthenticated    Code = "unauthenticated"
	CodeForbidden          Code = "forbidden"
	CodeNotFound           Code = "not_found"
	CodeConflict           Code = "conflict"
	CodeIdempotencyReuse   Code = "idempotency_key_reused"
	CodeIllegalTransition  Code = "illegal_transition"
	CodeUnsupportedMedia   Code = "unsupported_media_type"
	CodePayloadTooLarge    Code = "payload_too_large"
	CodeImportRejected     Code = "import_rejected"
	CodeUnavailable        Code = "unavailable"
	CodeInternal           Code = "internal"
	CodeMethodNotAllowed   Code = "method_not_allowed"
	CodeRouteNotFound      Code = "route_not_found"
	CodeAccountUnavailable Code = "account_unavailable"
)

// FieldError names one invalid input field and why.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Row     *int   `json:"row,omitempty"` // for bulk imports: the 1-based input row
}

// Error is the typed error every layer returns for a condition the caller
// can act on. Anything else is an internal error and is never shown verbatim.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	// Extra members added to the problem document (e.g. an import report).
	Extra map[string]any
	Err   error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a typed error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a validation error from field errors.
func Invalid(fields ...FieldError) *Error {
	return &Error{Code: CodeValidation, Message: "the request has invalid fields", Fields: fields}
}

// ErrorCode returns err's code, or CodeInternal for untyped errors.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrNotFound is returned by stores for a missing row (or a row of another org:
// callers cannot tell the difference, by design).
var ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}

// NotFound returns a not-found error naming what was looked up.
func NotFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

// IsNotFound reports whether err is a not-found error.
func IsNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }
