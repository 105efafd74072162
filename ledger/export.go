package ledger

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"time"
)

// Export format (JSONL, one JSON object per line, UTF-8, "\n"-terminated):
//
//	{"type":"header","version":1,"org":..,"origin":..,"from":F,"to":T,"anchor":{..}}   first line, exactly once
//	{"type":"entry","seq":..,"org":..,"time":..,"kind":..,"actor":..,"refs":..,"attrs":..,"payload_hash":..,"prev_hash":..,"hash":..}
//	{"type":"payload","hash":..,"salt":"<base64>","data":"<base64>"}   retained payload
//	{"type":"payload","hash":..,"purged":true}                          purged/erased payload
//	{"type":"checkpoint","size":N,"note":"<signed note>","consistency":["<base64>",..]}
//
// Ordering rules, which ExportWriter enforces and Verify relies on to run in
// constant memory:
//   - entries MUST appear in seq order with no gaps, starting at From;
//   - a payload line MUST directly follow the entry whose payload_hash it
//     carries (after that entry's other payload lines, if any);
//   - a checkpoint line of size N MUST NOT appear after entry N (seq N); it
//     SHOULD directly follow entry N-1. A checkpoint whose size is beyond the
//     last entry means the export (or the log) lost its tail;
//   - consistency, when present, is the RFC 6962 consistency proof from the
//     previous checkpoint in the export (or the anchor) to this one.

// ExportVersion is the export format version in the header.
const ExportVersion = 1

// MaxExportLine bounds one JSONL line (a payload line carries the base64 of
// the payload): 32 MiB is far above any Telegram message or contact card but
// keeps a hostile export from exhausting memory.
const MaxExportLine = 32 << 20

// Record types.
const (
	RecordHeader     = "header"
	RecordEntry      = "entry"
	RecordCheckpoint = "checkpoint"
	RecordPayload    = "payload"
)

// Header is the first line of an export.
type Header struct {
	Version int    `json:"version"`
	Org     string `json:"org"`
	// Origin is the checkpoint origin of the org's log; when set, every
	// checkpoint in the export MUST carry it.
	Origin string `json:"origin,omitempty"`
	// From is the seq of the first entry (0, or Anchor.Size for an export
	// that starts after pruned entries or at a checkpoint boundary).
	From uint64 `json:"from"`
	// To is one past the seq of the last entry (so To-From entries follow).
	To uint64 `json:"to"`
	// Anchor is REQUIRED when From > 0.
	Anchor *Anchor `json:"anchor,omitempty"`
}

// Anchor is the trust anchor of a log (or export) that does not start at
// genesis: a signed checkpoint at size Size plus what a verifier needs to
// continue from it without the entries before it.
//
// When pruning entries [0, Size) the store MUST first persist, in the same
// transaction as the deletion, the Anchor for Size: the signed checkpoint
// note at exactly Size (pruning happens only at checkpoint boundaries),
// Hash (the hash of entry Size-1, i.e. the prev_hash of entry Size), Range
// (Tree.RangeState(Size): the ≤ 64 compact-range hashes covering [0, Size))
// and Inclusion (Tree.InclusionProof(Size-1, Size)). Anchors MUST NOT be
// deleted; a later pruning writes a new one.
type Anchor struct {
	Size      uint64   `json:"size"`      // entries before the anchor; first exported seq
	Hash      string   `json:"hash"`      // hex hash of entry Size-1
	Note      string   `json:"note"`      // signed checkpoint at Size
	Range     [][]byte `json:"range"`     // compact range [0, Size), base64 each
	Inclusion [][]byte `json:"inclusion"` // proof of leaf Size-1 in tree Size, base64 each
}

// CheckpointRecord is a checkpoint line.
type CheckpointRecord struct {
	Size        uint64   `json:"size"`
	Note        string   `json:"note"`                  // signed note text (OpenCheckpoint input)
	Consistency [][]byte `json:"consistency,omitempty"` // optional proof from the previous checkpoint
}

// PayloadRecord is a payload line: either Salt and Data, or Purged.
type PayloadRecord struct {
	Hash   string `json:"hash"`
	Salt   []byte `json:"salt,omitempty"`
	Data   []byte `json:"data,omitempty"`
	Purged bool   `json:"purged,omitempty"`
}

// line is the union of all record types, as one JSON object.
type line struct {
	Type string `json:"type"`

	// header
	Version int     `json:"version,omitempty"`
	From    *uint64 `json:"from,omitempty"`
	To      *uint64 `json:"to,omitempty"`
	Origin  string  `json:"origin,omitempty"`
	Anchor  *Anchor `json:"anchor,omitempty"`

	// entry (Org shared with header, Hash with payload)
	Seq         *uint64           `json:"seq,omitempty"`
	Org         string            `json:"org,omitempty"`
	Time        string            `json:"time,omitempty"`
	Kind        string            `json:"kind,omitempty"`
	Actor       string            `json:"actor,omitempty"`
	Refs        map[string]string `json:"refs,omitempty"`
	Attrs       map[string]any    `json:"attrs,omitempty"`
	PayloadHash string            `json:"payload_hash,omitempty"`
	PrevHash    string            `json:"prev_hash,omitempty"`
	Hash        string            `json:"hash,omitempty"`

	// checkpoint
	Size        *uint64  `json:"size,omitempty"`
	Note        string   `json:"note,omitempty"`
	Consistency [][]byte `json:"consistency,omitempty"`

	// payload
	Salt   []byte `json:"salt,omitempty"`
	Data   []byte `json:"data,omitempty"`
	Purged bool   `json:"purged,omitempty"`
}

// entryLine is the wire form of an entry line: field order follows Entry,
// Time is in TimeFormat.
type entryLine struct {
	Type        string            `json:"type"`
	Seq         uint64            `json:"seq"`
	Org         string            `json:"org"`
	Time        string            `json:"time"`
	Kind        string            `json:"kind"`
	Actor       string            `json:"actor"`
	Refs        map[string]string `json:"refs,omitempty"`
	Attrs       map[string]any    `json:"attrs,omitempty"`
	PayloadHash string            `json:"payload_hash,omitempty"`
	PrevHash    string            `json:"prev_hash"`
	Hash        string            `json:"hash"`
}

// ExportWriter writes an export stream. It buffers; call Flush (or Close) at
// the end. It checks the ordering rules above so that a buggy exporter fails
// loudly instead of producing an export that does not verify. Not safe for
// concurrent use.
type ExportWriter struct {
	w         *bufio.Writer
	header    bool
	next      uint64 // seq the next entry must have
	last      string // payload_hash of the last entry
	lastEntry bool   // the previous line was an entry or a payload for it
	err       error
}

// NewExportWriter returns a writer on w.
func NewExportWriter(w io.Writer) *ExportWriter {
	return &ExportWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (x *ExportWriter) writeJSON(v any) error {
	if x.err != nil {
		return x.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ledger: export: encode line: %w", err)
	}
	b = append(b, '\n')
	if _, err := x.w.Write(b); err != nil {
		x.err = fmt.Errorf("ledger: export: write: %w", err)
	}
	return x.err
}

// WriteHeader writes the header; it MUST be called first, exactly once.
func (x *ExportWriter) WriteHeader(h Header) error {
	if x.header {
		return errors.New("ledger: export: header written twice")
	}
	if h.Version == 0 {
		h.Version = ExportVersion
	}
	if h.From > 0 && h.Anchor == nil {
		return fmt.Errorf("ledger: export: from=%d needs an anchor", h.From)
	}
	if h.Anchor != nil && h.Anchor.Size != h.From {
		return fmt.Errorf("ledger: export: anchor size %d != from %d", h.Anchor.Size, h.From)
	}
	x.header, x.next = true, h.From
	return x.writeJSON(struct {
		Type string `json:"type"`
		Header
	}{RecordHeader, h})
}

// WriteEntry writes the next entry; seqs MUST be contiguous from Header.From.
func (x *ExportWriter) WriteEntry(e Entry) error {
	if !x.header {
		return errors.New("ledger: export: entry before header")
	}
	if e.Seq != x.next {
		return fmt.Errorf("ledger: export: entry seq %d, want %d", e.Seq, x.next)
	}
	x.next++
	x.last, x.lastEntry = e.PayloadHash, true
	return x.writeJSON(lineOf(e))
}

func lineOf(e Entry) entryLine {
	return entryLine{
		Type: RecordEntry, Seq: e.Seq, Org: e.Org, Time: e.Time.UTC().Format(TimeFormat), Kind: e.Kind, Actor: e.Actor,
		Refs: e.Refs, Attrs: e.Attrs, PayloadHash: e.PayloadHash, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// MarshalEntryLine returns e's export line (without the newline) with no
// ordering checks: for tools that must show a damaged log as it is.
func MarshalEntryLine(e Entry) ([]byte, error) { return json.Marshal(lineOf(e)) }

// WritePayload writes a payload line for the entry just written, whose
// PayloadHash MUST equal p.Hash. Set Purged (and no data) for a payload the
// retention job or an erasure deleted.
func (x *ExportWriter) WritePayload(p PayloadRecord) error {
	if !x.lastEntry || x.last == "" || p.Hash != x.last {
		return fmt.Errorf("ledger: export: payload %s does not follow its entry", p.Hash)
	}
	if p.Purged && (p.Data != nil || p.Salt != nil) {
		return fmt.Errorf("ledger: export: purged payload %s carries data", p.Hash)
	}
	return x.writeJSON(struct {
		Type string `json:"type"`
		PayloadRecord
	}{RecordPayload, p})
}

// WriteCheckpoint writes a checkpoint line. c.Size MUST NOT be below the
// number of entries written so far (write it right after entry Size-1).
func (x *ExportWriter) WriteCheckpoint(c CheckpointRecord) error {
	if !x.header {
		return errors.New("ledger: export: checkpoint before header")
	}
	if c.Size < x.next {
		return fmt.Errorf("ledger: export: checkpoint size %d written after entry %d", c.Size, x.next-1)
	}
	x.lastEntry = false
	return x.writeJSON(struct {
		Type string `json:"type"`
		CheckpointRecord
	}{RecordCheckpoint, c})
}

// Flush writes buffered data to the underlying writer.
func (x *ExportWriter) Flush() error {
	if x.err != nil {
		return x.err
	}
	if err := x.w.Flush(); err != nil {
		x.err = fmt.Errorf("ledger: export: flush: %w", err)
	}
	return x.err
}

// Record is one decoded export line; exactly one of the pointers is set,
// according to Type.
type Record struct {
	Line       int // 1-based line number
	Type       string
	Header     *Header
	Entry      *Entry
	Checkpoint *CheckpointRecord
	Payload    *PayloadRecord
}

// ExportReader decodes an export stream line by line in constant memory.
type ExportReader struct {
	s    *bufio.Scanner
	line int
}

// NewExportReader returns a reader on r.
func NewExportReader(r io.Reader) *ExportReader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	return &ExportReader{s: s}
}

// ErrMalformed is wrapped by ExportReader errors about the content (as
// opposed to I/O errors of the underlying reader).
var ErrMalformed = errors.New("ledger: malformed export")

// Next returns the next record, or io.EOF after the last one.
func (x *ExportReader) Next() (Record, error) {
	b, n, err := x.nextLine()
	if err != nil {
		return Record{}, err
	}
	return decodeLine(b, n)
}

// nextLine returns the next non-blank line (valid until the next call) and
// its 1-based number, or io.EOF.
func (x *ExportReader) nextLine() ([]byte, int, error) {
	for x.s.Scan() {
		x.line++
		b := x.s.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		return b, x.line, nil
	}
	if err := x.s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, 0, fmt.Errorf("%w: line %d longer than %d bytes", ErrMalformed, x.line+1, MaxExportLine)
		}
		return nil, 0, fmt.Errorf("ledger: read export line %d: %w", x.line+1, err)
	}
	return nil, 0, io.EOF
}

// All iterates over the records; iteration stops after the first error.
func (x *ExportReader) All() iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for {
			r, err := x.Next()
			if err == io.EOF {
				return
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

func decodeLine(b []byte, n int) (Record, error) {
	if err := checkStrict(b); err != nil {
		return Record{}, fmt.Errorf("%w: line %d: %v", ErrMalformed, n, err)
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Record{}, fmt.Errorf("%w: line %d: %v", ErrMalformed, n, err)
	}
	rec := Record{Line: n, Type: l.Type}
	switch l.Type {
	case RecordEntry:
		if l.Seq == nil {
			return Record{}, fmt.Errorf("%w: line %d: entry without seq", ErrMalformed, n)
		}
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil {
			return Record{}, fmt.Errorf("%w: line %d: entry %d: time: %v", ErrMalformed, n, *l.Seq, err)
		}
		rec.Entry = &Entry{Seq: *l.Seq, Org: l.Org, Time: t.UTC(), Kind: l.Kind, Actor: l.Actor, Refs: l.Refs,
			Attrs: l.Attrs, PayloadHash: l.PayloadHash, PrevHash: l.PrevHash, Hash: l.Hash}
	case RecordHeader:
		h := &Header{Version: l.Version, Org: l.Org, Origin: l.Origin, Anchor: l.Anchor}
		if l.From != nil {
			h.From = *l.From
		}
		if l.To != nil {
			h.To = *l.To
		}
		rec.Header = h
	case RecordCheckpoint:
		if l.Size == nil {
			return Record{}, fmt.Errorf("%w: line %d: checkpoint without size", ErrMalformed, n)
		}
		rec.Checkpoint = &CheckpointRecord{Size: *l.Size, Note: l.Note, Consistency: l.Consistency}
	case RecordPayload:
		rec.Payload = &PayloadRecord{Hash: l.Hash, Salt: l.Salt, Data: l.Data, Purged: l.Purged}
	default:
		return Record{}, fmt.Errorf("%w: line %d: unknown record type %q", ErrMalformed, n, l.Type)
	}
	return rec, nil
}

// CSVColumns is the header row WriteCSV writes.
var CSVColumns = []string{"seq", "time", "org", "kind", "actor", "refs", "attrs", "payload_hash", "prev_hash", "hash"}

// WriteCSV writes entries as CSV for people (spreadsheets): one row per
// entry, refs and attrs as canonical JSON. Cells starting with = + - @ are
// prefixed with ' so a spreadsheet does not run them as formulas. CSV is a
// view, not a verifiable export: verify the JSONL export instead.
func WriteCSV(w io.Writer, entries iter.Seq2[Entry, error]) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return fmt.Errorf("ledger: csv: %w", err)
	}
	for e, err := range entries {
		if err != nil {
			return fmt.Errorf("ledger: csv: %w", err)
		}
		refs, attrs := "", ""
		if len(e.Refs) > 0 {
			b, _ := appendStringMap(nil, e.Refs)
			if b == nil {
				b, _ = json.Marshal(e.Refs)
			}
			refs = string(b)
		}
		if len(e.Attrs) > 0 {
			b, err := json.Marshal(e.Attrs)
			if err != nil {
				return fmt.Errorf("ledger: csv: entry %d attrs: %w", e.Seq, err)
			}
			attrs = string(b)
		}
		row := []string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(TimeFormat), e.Org, e.Kind, e.Actor,
			refs, attrs, e.PayloadHash, e.PrevHash, e.Hash}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("ledger: csv: entry %d: %w", e.Seq, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("ledger: csv: %w", err)
	}
	return nil
}

func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
