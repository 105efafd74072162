package ledger

import (
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// appendCanonicalFast appends the RFC 8785 form of e (without Hash) to dst
// without the json.Marshal + jcs.Transform round trip, which dominates
// sealing and verification cost. It covers the value types Herald writes;
// for anything else (non-ASCII map keys, float32, json.Number, structs,
// invalid UTF-8, ...) it reports ok=false and the caller falls back to
// canonicalSlow. TestCanonicalFastMatchesSlow holds the two paths to the
// same bytes. e MUST already be validated.
func appendCanonicalFast(dst []byte, e *Entry) (_ []byte, ok bool) {
	// Keys in RFC 8785 order (UTF-16 code units; all ASCII here).
	dst = append(dst, `{"actor":`...)
	if dst, ok = appendString(dst, e.Actor); !ok {
		return nil, false
	}
	if len(e.Attrs) > 0 {
		dst = append(dst, `,"attrs":`...)
		if dst, ok = appendAnyMap(dst, e.Attrs, 0); !ok {
			return nil, false
		}
	}
	dst = append(dst, `,"kind":`...)
	if dst, ok = appendString(dst, e.Kind); !ok {
		return nil, false
	}
	dst = append(dst, `,"org":`...)
	if dst, ok = appendString(dst, e.Org); !ok {
		return nil, false
	}
	if e.PayloadHash != "" {
		dst = append(dst, `,"payload_hash":"`...)
		dst = append(dst, e.PayloadHash...) // validated hex
		dst = append(dst, '"')
	}
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, e.PrevHash...) // validated hex
	dst = append(dst, '"')
	if len(e.Refs) > 0 {
		dst = append(dst, `,"refs":`...)
		if dst, ok = appendStringMap(dst, e.Refs); !ok {
			return nil, false
		}
	}
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10) // ≤ 2^53-1: ES6 prints integers plainly
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, TimeFormat)
	dst = append(dst, `"}`...)
	return dst, true
}

// maxFastDepth bounds recursion in the fast path; deeper attrs go through the
// slow path, whose parser enforces its own limit.
const maxFastDepth = 32

const hexDigits = "0123456789abcdef"

// appendString writes s as RFC 8785 (ECMAScript JSON.stringify) does, or
// reports ok=false for invalid UTF-8.
func appendString(dst []byte, s string) ([]byte, bool) {
	if !utf8.ValidString(s) {
		return nil, false // json.Marshal would substitute U+FFFD; let the slow path do exactly that.
	}
	return appendEscaped(dst, s), true
}

// appendEscaped quotes valid UTF-8 s the RFC 8785 way: only '"', '\\' and
// C0 controls are escaped (with the short forms where JSON has them, else
// \u00xx in lowercase hex); everything else is literal UTF-8.
func appendEscaped[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func asciiKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 {
			return false
		}
	}
	return true
}

// sortedKeys returns the keys in RFC 8785 order, or ok=false if a key is not
// ASCII (UTF-16 order then differs from byte order for some code points).
func sortedKeys[V any](m map[string]V) ([]string, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !asciiKey(k) {
			return nil, false
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, true
}

func appendStringMap(dst []byte, m map[string]string) ([]byte, bool) {
	keys, ok := sortedKeys(m)
	if !ok {
		return nil, false
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, ok = appendString(dst, k); !ok {
			return nil, false
		}
		dst = append(dst, ':')
		if dst, ok = appendString(dst, m[k]); !ok {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

func appendAnyMap(dst []byte, m map[string]any, depth int) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	keys, ok := sortedKeys(m)
	if !ok {
		return nil, false
	}
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, ok = appendString(dst, k); !ok {
			return nil, false
		}
		dst = append(dst, ':')
		if dst, ok = appendValue(dst, m[k], depth+1); !ok {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

func appendNumber(dst []byte, f float64) ([]byte, bool) {
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return nil, false // NaN/Inf: the slow path reports the error.
	}
	return append(dst, s...), true
}

func appendValue(dst []byte, v any, depth int) ([]byte, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	var ok bool
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, v)
	case bool:
		return strconv.AppendBool(dst, v), true
	case float64:
		return appendNumber(dst, v)
	case int:
		return appendNumber(dst, float64(v))
	case int8:
		return appendNumber(dst, float64(v))
	case int16:
		return appendNumber(dst, float64(v))
	case int32:
		return appendNumber(dst, float64(v))
	case int64:
		return appendNumber(dst, float64(v))
	case uint:
		return appendNumber(dst, float64(v))
	case uint8:
		return appendNumber(dst, float64(v))
	case uint16:
		return appendNumber(dst, float64(v))
	case uint32:
		return appendNumber(dst, float64(v))
	case uint64:
		return appendNumber(dst, float64(v))
	case []string:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = appendString(dst, s); !ok {
				return nil, false
			}
		}
		return append(dst, ']'), true
	case []any:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = appendValue(dst, x, depth+1); !ok {
				return nil, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		return appendAnyMap(dst, v, depth)
	case map[string]string:
		if v == nil {
			return append(dst, "null"...), true
		}
		return appendStringMap(dst, v)
	default:
		return nil, false
	}
}
