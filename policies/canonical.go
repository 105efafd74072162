package policies

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"github.com/open-policy-agent/opa/v1/ast"
)

// appendCanonical writes v as RFC 8785 canonical JSON: object keys sorted by
// UTF-16 code units, numbers in ECMAScript form, strings minimally escaped.
// It encodes the input document Decide already built, which costs a fraction
// of json.Marshal followed by jcs.Transform; TestCanonicalMatchesJCS holds
// the two to the same bytes.
func appendCanonical(buf *bytes.Buffer, v ast.Value) error {
	switch x := v.(type) {
	case ast.Null:
		buf.WriteString("null")
	case ast.Boolean:
		buf.WriteString(strconv.FormatBool(bool(x)))
	case ast.Number:
		if i, ok := x.Int64(); ok && i > -1<<53 && i < 1<<53 {
			var scratch [24]byte
			buf.Write(strconv.AppendInt(scratch[:0], i, 10))
			return nil
		}
		f, ok := x.Float64()
		if !ok {
			return fmt.Errorf("number %s is not a float64", x)
		}
		s, err := jcs.NumberToJSON(f)
		if err != nil {
			return err
		}
		buf.WriteString(s)
	case ast.String:
		appendCanonicalString(buf, string(x))
	case *ast.Array:
		buf.WriteByte('[')
		for i := range x.Len() {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := appendCanonical(buf, x.Elem(i).Value); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case ast.Object:
		// OPA keeps object keys sorted by byte order, which is RFC 8785's
		// UTF-16 order whenever every key is a string in the BMP (all of
		// Herald's own keys); only other objects pay for a sort. One slice
		// of keys per object: Foreach's closures cost several allocations.
		keys := x.Keys()
		if plainKeys(keys) {
			buf.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					buf.WriteByte(',')
				}
				appendCanonicalString(buf, string(k.Value.(ast.String)))
				buf.WriteByte(':')
				if err := appendCanonical(buf, x.Get(k).Value); err != nil {
					return err
				}
			}
			buf.WriteByte('}')
			return nil
		}
		names := make([]string, 0, len(keys))
		for _, k := range keys {
			s, ok := k.Value.(ast.String)
			if !ok {
				return fmt.Errorf("object key %v is not a string", k)
			}
			names = append(names, string(s))
		}
		slices.SortFunc(names, compareUTF16)
		buf.WriteByte('{')
		for i, k := range names {
			if i > 0 {
				buf.WriteByte(',')
			}
			appendCanonicalString(buf, k)
			buf.WriteByte(':')
			if err := appendCanonical(buf, x.Get(ast.StringTerm(k)).Value); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("%s has no JSON form", ast.ValueName(v))
	}
	return nil
}

func plainKeys(keys []*ast.Term) bool {
	for _, k := range keys {
		if s, ok := k.Value.(ast.String); !ok || !isBMP(string(s)) {
			return false
		}
	}
	return true
}

// compareUTF16 orders strings by UTF-16 code units, as RFC 8785 requires.
// It equals byte order except around supplementary-plane characters.
func compareUTF16(a, b string) int {
	if isBMP(a) && isBMP(b) {
		return strings.Compare(a, b)
	}
	ua, ub := utf16Units(a), utf16Units(b)
	return slices.Compare(ua, ub)
}

func isBMP(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xEE { // lead bytes of U+E000 and above
			return false
		}
	}
	return true
}

func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

func appendCanonicalString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf.WriteByte(c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			buf.WriteRune(r) // invalid UTF-8 becomes U+FFFD, as encoding/json does
			i += size
			continue
		}
		switch c {
		case '"':
			buf.WriteString(`\"`)
		case '\\':
			buf.WriteString(`\\`)
		case '\b':
			buf.WriteString(`\b`)
		case '\f':
			buf.WriteString(`\f`)
		case '\n':
			buf.WriteString(`\n`)
		case '\r':
			buf.WriteString(`\r`)
		case '\t':
			buf.WriteString(`\t`)
		default:
			fmt.Fprintf(buf, `\u%04x`, c)
		}
		i++
	}
	buf.WriteByte('"')
}
