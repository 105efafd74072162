package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Fast path of Verify for entry lines. encoding/json decoding into maps costs
// most of the verification time, so Verify first tries this strict,
// allocation-light parser, which builds the hash preimage straight from the
// line. It accepts only the plain shape ExportWriter produces (exact key
// names, no duplicates, ASCII object keys, valid UTF-8, attrs an object); on
// anything else, and on any verification failure, Verify falls back to the
// reference path (decodeLine + Entry.computeHash) so that results and
// problem reports never depend on which path ran.
// TestFastEntryMatchesSlow holds the two paths to the same hash.

type kvPair struct{ k, v []byte }

type member struct {
	key        []byte
	start, end int
}

type fastEntry struct {
	seq                                               uint64
	org, tm, kind, actor, payloadHash, prevHash, hash []byte
	refs                                              []kvPair
	attrs                                             []byte // canonical attrs object; nil if absent or empty
}

type fastParser struct {
	b   []byte
	i   int
	fe  fastEntry
	tmp [][]byte   // per-depth value buffers for object canonicalisation
	mem [][]member // per-depth member lists
	buf []byte     // attrs output
	pre []byte     // hash preimage
	// payload line scratch
	salt, data []byte
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *fastParser) expect(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func hexVal(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

func (p *fastParser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		v, ok := hexVal(p.b[p.i+k])
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	p.i += 4
	return r, true
}

// str parses a JSON string at the cursor and returns its decoded bytes
// (aliasing the line when it has no escapes). It fails on invalid UTF-8 and
// lone surrogates, which encoding/json would silently replace.
func (p *fastParser) str() ([]byte, bool) {
	p.ws()
	if p.peek() != '"' {
		return nil, false
	}
	p.i++
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		if strPlain[c] {
			p.i++
			continue
		}
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return nil, false
		}
		ascii = false // c >= 0x80
		p.i++
	}
	return nil, false
}

// strPlain marks the bytes str copies without a second look: printable
// ASCII other than '"' and '\\'.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (p *fastParser) strSlow(start int) ([]byte, bool) {
	out := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return nil, false
			}
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			return nil, false
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, false
			}
			if utf16.IsSurrogate(r) {
				if p.i+2 > len(p.b) || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' {
					return nil, false
				}
				p.i += 2
				r2, ok := p.hex4()
				if !ok {
					return nil, false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return nil, false
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
	return nil, false
}

// number scans a JSON number token (RFC 8259 grammar).
func (p *fastParser) number() ([]byte, bool) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	switch {
	case p.peek() == '0':
		p.i++
	case '1' <= p.peek() && p.peek() <= '9':
		digits()
	default:
		return nil, false
	}
	if p.peek() == '.' {
		p.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

// appendCanonNumber writes a JSON number the RFC 8785 way.
func appendCanonNumber(dst, raw []byte) ([]byte, bool) {
	// Integers of up to 15 digits are exact doubles and print as themselves.
	if n := len(raw); n <= 16 && bytes.IndexAny(raw, ".eE") < 0 {
		if string(raw) == "-0" {
			return append(dst, '0'), true
		}
		if d := n - bytes.Count(raw[:1], []byte("-")); d <= 15 {
			return append(dst, raw...), true
		}
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, false
	}
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return nil, false
	}
	return append(dst, s...), true
}

func (p *fastParser) literal(dst []byte, lit string) ([]byte, bool) {
	if !bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
		return nil, false
	}
	p.i += len(lit)
	return append(dst, lit...), true
}

// value writes the canonical form of the JSON value at the cursor.
func (p *fastParser) value(dst []byte, depth int) ([]byte, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	p.ws()
	switch c := p.peek(); {
	case c == '"':
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		return appendEscaped(dst, s), true
	case c == '{':
		p.i++
		return p.object(dst, depth)
	case c == '[':
		p.i++
		dst = append(dst, '[')
		p.ws()
		if p.peek() == ']' {
			p.i++
			return append(dst, ']'), true
		}
		for n := 0; ; n++ {
			if n > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = p.value(dst, depth+1); !ok {
				return nil, false
			}
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return append(dst, ']'), true
			default:
				return nil, false
			}
		}
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	case c == '-' || '0' <= c && c <= '9':
		raw, ok := p.number()
		if !ok {
			return nil, false
		}
		return appendCanonNumber(dst, raw)
	}
	return nil, false
}

// object writes the canonical form of the object whose '{' was consumed:
// members sorted by key (byte order equals UTF-16 order for ASCII keys).
func (p *fastParser) object(dst []byte, depth int) ([]byte, bool) {
	for len(p.tmp) <= depth {
		p.tmp = append(p.tmp, nil)
		p.mem = append(p.mem, nil)
	}
	tmp, mem := p.tmp[depth][:0], p.mem[depth][:0]
	p.ws()
	if p.peek() == '}' {
		p.i++
		return append(dst, '{', '}'), true
	}
	for {
		key, ok := p.str()
		if !ok || !asciiKey(string(key)) || !p.expect(':') {
			return nil, false
		}
		start := len(tmp)
		if tmp, ok = p.value(tmp, depth+1); !ok {
			return nil, false
		}
		mem = append(mem, member{key: key, start: start, end: len(tmp)})
		p.ws()
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() != '}' {
			return nil, false
		}
		p.i++
		break
	}
	slices.SortFunc(mem, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for k, m := range mem {
		if k > 0 {
			if bytes.Equal(mem[k-1].key, m.key) {
				return nil, false // duplicate key: the reference path rejects it (strict.go)
			}
			dst = append(dst, ',')
		}
		dst = appendEscaped(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, tmp[m.start:m.end]...)
	}
	p.tmp[depth], p.mem[depth] = tmp, mem
	return append(dst, '}'), true
}

// Bits of fastEntry fields seen, to reject duplicates and require the
// mandatory ones.
const (
	seenType = 1 << iota
	seenSeq
	seenOrg
	seenTime
	seenKind
	seenActor
	seenRefs
	seenAttrs
	seenPayload
	seenPrev
	seenHash
)

// parseEntry parses an entry line; ok=false means "use the slow path".
func (p *fastParser) parseEntry(b []byte) bool {
	p.b, p.i = b, 0
	fe := &p.fe
	*fe = fastEntry{refs: fe.refs[:0]}
	p.buf = p.buf[:0]
	if !p.expect('{') {
		return false
	}
	seen := 0
	for {
		key, ok := p.str()
		if !ok || !p.expect(':') {
			return false
		}
		var bit int
		var dst *[]byte
		switch string(key) {
		case "type":
			bit = seenType
			s, ok := p.str()
			if !ok || string(s) != RecordEntry {
				return false
			}
		case "seq":
			bit = seenSeq
			p.ws()
			raw, ok := p.number()
			if !ok {
				return false
			}
			n, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return false
			}
			fe.seq = n
		case "org":
			bit, dst = seenOrg, &fe.org
		case "time":
			bit, dst = seenTime, &fe.tm
		case "kind":
			bit, dst = seenKind, &fe.kind
		case "actor":
			bit, dst = seenActor, &fe.actor
		case "payload_hash":
			bit, dst = seenPayload, &fe.payloadHash
		case "prev_hash":
			bit, dst = seenPrev, &fe.prevHash
		case "hash":
			bit, dst = seenHash, &fe.hash
		case "refs":
			bit = seenRefs
			if !p.refs() {
				return false
			}
		case "attrs":
			bit = seenAttrs
			if !p.expect('{') {
				return false
			}
			out, ok := p.object(p.buf[:0], 0)
			if !ok {
				return false
			}
			p.buf = out
			if len(out) > 2 {
				fe.attrs = out
			}
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if dst != nil {
			s, ok := p.str()
			if !ok {
				return false
			}
			*dst = s
		}
		p.ws()
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() != '}' {
			return false
		}
		p.i++
		break
	}
	p.ws()
	const required = seenType | seenSeq | seenOrg | seenTime | seenKind | seenActor | seenPrev | seenHash
	return p.i == len(p.b) && seen&required == required
}

func (p *fastParser) refs() bool {
	fe := &p.fe
	if !p.expect('{') {
		return false
	}
	p.ws()
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !asciiKey(string(k)) || !p.expect(':') {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		fe.refs = append(fe.refs, kvPair{k, v})
		p.ws()
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() != '}' {
			return false
		}
		p.i++
		break
	}
	slices.SortFunc(fe.refs, func(a, b kvPair) int { return bytes.Compare(a.k, b.k) })
	for k := 1; k < len(fe.refs); k++ {
		if bytes.Equal(fe.refs[k-1].k, fe.refs[k].k) {
			return false
		}
	}
	return true
}

// hash validates the parsed entry like Entry.Validate and returns its hash,
// or ok=false if anything is off (the slow path then reports it).
func (p *fastParser) hash() (sum [HashSize]byte, t time.Time, ok bool) {
	fe := &p.fe
	if fe.seq > maxSafeSeq || len(fe.org) == 0 || len(fe.kind) == 0 || len(fe.actor) == 0 ||
		!isHexHash(fe.prevHash) || !isHexHash(fe.hash) ||
		(len(fe.payloadHash) > 0 && !isHexHash(fe.payloadHash)) ||
		(fe.seq == 0 && string(fe.prevHash) != ZeroHash) {
		return sum, t, false
	}
	canonTime := canonicalTime(fe.tm)
	if !canonTime {
		var err error
		t, err = time.Parse(time.RFC3339Nano, string(fe.tm))
		if err != nil || t.IsZero() || t.Nanosecond()%1000 != 0 {
			return sum, t, false
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return sum, t, false
		}
	}
	b := append(p.pre[:0], EntryDomainTag...)
	b, _ = hex.AppendDecode(b, fe.prevHash)
	b = append(b, `{"actor":`...)
	b = appendEscaped(b, fe.actor)
	if fe.attrs != nil {
		b = append(b, `,"attrs":`...)
		b = append(b, fe.attrs...)
	}
	b = append(b, `,"kind":`...)
	b = appendEscaped(b, fe.kind)
	b = append(b, `,"org":`...)
	b = appendEscaped(b, fe.org)
	if len(fe.payloadHash) > 0 {
		b = append(b, `,"payload_hash":"`...)
		b = append(b, fe.payloadHash...)
		b = append(b, '"')
	}
	b = append(b, `,"prev_hash":"`...)
	b = append(b, fe.prevHash...)
	b = append(b, '"')
	if len(fe.refs) > 0 {
		b = append(b, `,"refs":{`...)
		for k, kv := range fe.refs {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendEscaped(b, kv.k)
			b = append(b, ':')
			b = appendEscaped(b, kv.v)
		}
		b = append(b, '}')
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, fe.seq, 10)
	b = append(b, `,"time":"`...)
	if canonTime {
		b = append(b, fe.tm...)
	} else {
		b = t.UTC().AppendFormat(b, TimeFormat)
	}
	b = append(b, `"}`...)
	p.pre = b
	return sha256.Sum256(b), t, true
}

// canonicalTime reports whether s is already a valid, non-zero time in
// TimeFormat, so that parsing and re-formatting it (which would give back
// s) can be skipped. Anything else takes the time.Parse path.
func canonicalTime(s []byte) bool {
	const layout = "dddd-dd-ddTdd:dd:dd.ddddddZ"
	if len(s) != len(layout) {
		return false
	}
	for i := 0; i < len(layout); i++ {
		if layout[i] == 'd' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != layout[i] {
			return false
		}
	}
	num := func(a, b int) int {
		n := 0
		for _, c := range s[a:b] {
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	if year < 1 || month < 1 || month > 12 || day < 1 || num(11, 13) > 23 || num(14, 16) > 59 || num(17, 19) > 59 {
		return false
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return false
	}
	return string(s) != "0001-01-01T00:00:00.000000Z" // the zero time is invalid
}

// entryLinePrefix starts every entry line ExportWriter writes.
var entryLinePrefix = []byte(`{"type":"entry",`)

// payloadLinePrefix starts every retained-payload line ExportWriter writes.
var payloadLinePrefix = []byte(`{"type":"payload",`)

// parsePayload parses a retained-payload line (type, hash, salt, data; no
// purged flag) into p.salt and p.data; ok=false means "use the slow path".
func (p *fastParser) parsePayload(b []byte) (hash []byte, ok bool) {
	p.b, p.i = b, 0
	if !p.expect('{') {
		return nil, false
	}
	seen := 0
	for {
		key, ok := p.str()
		if !ok || !p.expect(':') {
			return nil, false
		}
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		var bit int
		switch string(key) {
		case "type":
			bit = 1
			ok = string(s) == RecordPayload
		case "hash":
			bit = 2
			hash = s
		case "salt":
			bit = 4
			p.salt, ok = decodeB64(p.salt, s)
		case "data":
			bit = 8
			p.data, ok = decodeB64(p.data, s)
		default:
			ok = false
		}
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		p.ws()
		if p.peek() == ',' {
			p.i++
			continue
		}
		if p.peek() != '}' {
			return nil, false
		}
		p.i++
		break
	}
	p.ws()
	return hash, p.i == len(p.b) && seen == 15
}

// decodeB64 decodes like encoding/json does for []byte fields.
func decodeB64(dst, s []byte) ([]byte, bool) {
	n := base64.StdEncoding.DecodedLen(len(s))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(dst[:n], s)
	return dst[:n], err == nil
}
