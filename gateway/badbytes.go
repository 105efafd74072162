package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/heraldhq/herald"
)

// CodeInvalidEncoding answers a request whose path, query, headers or body
// hold bytes that are not valid UTF-8. Such bytes are bad input: PostgreSQL
// refuses them in text columns, SQLite would store them, and neither may
// turn into a 500 or into a row that differs by store.
const CodeInvalidEncoding herald.Code = "invalid_encoding"

// cleanText reports whether s is valid UTF-8 without NUL bytes: the only
// text Herald accepts anywhere (path, query, header, body field).
func cleanText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// rejectBadBytes answers 400 invalid_encoding when the request's path, query
// keys and values, or header values are not clean text, so no handler, store
// query or log line ever sees them.
func rejectBadBytes(c *gin.Context) {
	r := c.Request
	if where := badRequestPart(r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Header); where != "" {
		writeProblem(c, herald.Errorf(CodeInvalidEncoding, "the %s holds bytes that are not UTF-8 text, or a NUL byte", where))
		return
	}
	c.Next()
}

// badRequestPart names the first part of a request that is not clean text,
// or returns "" when all are clean. It never names the offending value.
func badRequestPart(path, rawPath, rawQuery string, header map[string][]string) string {
	if !cleanText(path) {
		return "path"
	}
	// %00 and %FF decode into URL.Path, but a path with escaped slashes
	// keeps its raw form in RawPath: check that too.
	if rawPath != "" {
		if p, err := url.PathUnescape(rawPath); err != nil || !cleanText(p) {
			return "path"
		}
	}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return "query"
		}
		for k, vs := range q {
			if !cleanText(k) {
				return "query"
			}
			for _, v := range vs {
				if !cleanText(v) {
					return "query"
				}
			}
		}
	}
	for k, vs := range header {
		for _, v := range vs {
			if !cleanText(v) {
				// Header names are ASCII tokens once net/http has parsed
				// them; naming one leaks nothing.
				return "header " + k
			}
		}
	}
	return ""
}

// checkStrings walks a decoded request value and returns a validation error
// naming the first string field (by its JSON name) that holds a NUL byte or
// invalid UTF-8. JSON may carry NUL as the escape \u0000, which no store
// keeps alike (PostgreSQL refuses it in text).
func checkStrings(v any) error {
	if path, bad := findBadString(reflect.ValueOf(v), ""); bad {
		if path == "" {
			path = "body"
		}
		return herald.Invalid(herald.FieldError{Field: path, Message: "must be UTF-8 text without NUL bytes"})
	}
	return nil
}

func findBadString(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return findBadString(v.Elem(), path)
	case reflect.String:
		return path, !cleanText(v.String())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // raw bytes (json.RawMessage) are checked where they are parsed
		}
		for i := 0; i < v.Len(); i++ {
			if p, bad := findBadString(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, true
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			k := fmt.Sprint(it.Key().Interface())
			if !cleanText(k) {
				return joinField(path, "(key)"), true
			}
			if p, bad := findBadString(it.Value(), joinField(path, k)); bad {
				return p, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "-" {
				continue
			}
			p := path
			if !f.Anonymous || name != "" { // embedded structs' fields are top-level in JSON
				if name == "" {
					name = f.Name
				}
				p = joinField(path, name)
			}
			if p, bad := findBadString(v.Field(i), p); bad {
				return p, true
			}
		}
	}
	return "", false
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// errInvalidUTF8 is returned by a textReader that met invalid UTF-8.
var errInvalidUTF8 = herald.Errorf(CodeInvalidEncoding, "the body is not valid UTF-8 text")

// textReader passes a body through while checking that it is valid UTF-8,
// in constant memory: a rune split across two reads is carried over. Bodies
// are streamed (imports may be large), so the check cannot buffer them.
// encoding/json would otherwise replace invalid bytes with U+FFFD silently,
// storing something the client never sent.
type textReader struct {
	r     io.Reader
	carry []byte // the incomplete rune at the end of the last read
}

func (t *textReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	chunk := p[:n]
	if len(t.carry) > 0 {
		chunk = append(append([]byte(nil), t.carry...), chunk...)
		t.carry = t.carry[:0]
	}
	// Hold back a trailing incomplete rune until the next read completes it;
	// at the end of the body (err != nil) it is simply invalid.
	if err == nil {
		for i := 1; i <= 3 && i <= len(chunk); i++ {
			b := chunk[len(chunk)-i]
			if b < utf8.RuneSelf {
				break
			}
			if utf8.RuneStart(b) {
				if !utf8.FullRune(chunk[len(chunk)-i:]) {
					t.carry = append(t.carry, chunk[len(chunk)-i:]...)
					chunk = chunk[:len(chunk)-i]
				}
				break
			}
		}
	}
	if !utf8.Valid(chunk) {
		return 0, errInvalidUTF8
	}
	return n, err
}

// orMoreThanOne turns what follows a request's one JSON value into the
// error to answer: a read error (bad bytes, size) as itself, else "exactly one".
func orMoreThanOne(err error) error {
	var he *herald.Error
	var tooLarge *http.MaxBytesError
	if errors.As(err, &he) || errors.As(err, &tooLarge) {
		return err
	}
	return herald.Errorf(herald.CodeInvalidJSON, "the body must hold exactly one JSON value")
}
