package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// Report is the outcome of Verify.
type Report struct {
	Org              string
	From             uint64 // first seq verified (anchor size for pruned logs)
	Entries          uint64 // entries whose hash, link and seq were verified
	Checkpoints      uint64 // checkpoints whose signature and root matched
	PayloadsVerified uint64 // retained payloads matching their payload_hash
	PayloadsPurged   uint64 // payloads marked purged (retention, erasure)
	PayloadsMissing  uint64 // entries with a payload_hash but no payload line
	// Uncovered counts entries after the last verified checkpoint: their
	// chain verifies but no signature vouches for them yet.
	Uncovered uint64
	// FirstBadSeq is the first seq that cannot be trusted, when known.
	FirstBadSeq *uint64
	// Problem says what is wrong at which seq ("" when OK).
	Problem string
	// Line is the export line of the problem (0 if none or at the end).
	Line int
	OK   bool
}

// String renders the report for the CLI.
func (r Report) String() string {
	var b strings.Builder
	if r.OK {
		fmt.Fprintf(&b, "OK: ledger of org %q verified\n", r.Org)
	} else {
		fmt.Fprintf(&b, "FAILED: ledger of org %q does not verify\n", r.Org)
		if r.FirstBadSeq != nil {
			fmt.Fprintf(&b, "  first bad seq:       %d\n", *r.FirstBadSeq)
		}
		if r.Line > 0 {
			fmt.Fprintf(&b, "  export line:         %d\n", r.Line)
		}
		fmt.Fprintf(&b, "  problem:             %s\n", r.Problem)
	}
	if r.Entries > 0 {
		fmt.Fprintf(&b, "  entries:             %d (seq %d..%d)\n", r.Entries, r.From, r.From+r.Entries-1)
	} else {
		fmt.Fprintf(&b, "  entries:             0\n")
	}
	fmt.Fprintf(&b, "  signed checkpoints:  %d\n", r.Checkpoints)
	fmt.Fprintf(&b, "  payloads:            %d verified, %d purged, %d not exported\n", r.PayloadsVerified, r.PayloadsPurged, r.PayloadsMissing)
	if r.OK && r.Uncovered > 0 {
		fmt.Fprintf(&b, "  note: the last %d entries follow the last signed checkpoint; their hash chain verifies but no signature covers them yet\n", r.Uncovered)
	}
	return b.String()
}

// verifier is the streaming state of Verify.
type verifier struct {
	vs     note.Verifiers
	rep    Report
	header *Header
	next   uint64 // seq expected next
	prev   string // hash the next entry must link to
	rc     *RootComputer

	// last verified checkpoint (or anchor): the consistency base.
	cpSize uint64
	cpRoot []byte
	haveCP bool
	// pending checkpoints (size > entries seen so far), in stream order.
	pending []pendingCP

	// payload state for the most recent entry
	lastSeq     uint64
	lastPayload string
	lastHasLine bool
	inEntry     bool
	line        int
}

type pendingCP struct {
	cp          Checkpoint
	consistency [][]byte
	line        int
}

// errBad carries a verification failure (as opposed to an I/O error).
type errBad struct {
	seq *uint64
	msg string
}

func (e *errBad) Error() string { return e.msg }

func bad(seq uint64, format string, args ...any) error {
	return &errBad{seq: &seq, msg: fmt.Sprintf(format, args...)}
}

func badNoSeq(format string, args ...any) error {
	return &errBad{msg: fmt.Sprintf(format, args...)}
}

// Verify checks an export offline, in one streaming pass and constant memory
// (plus the current line): every entry hash is recomputed, prev links and
// seqs are checked, the Merkle tree is rebuilt in a compact range, every
// checkpoint's signature is checked against verifiers and its root against
// the rebuilt tree at its size (which implies consistency between successive
// checkpoints; consistency proofs carried by the export are verified too),
// retained payloads are checked against their payload_hash, purged ones are
// counted.
//
// The result is in the Report: OK, or the first problem with its seq. Verify
// returns an error only when it could not finish (ctx cancelled, read
// error); malformed content is a Problem, since it may be tampering. An
// export with no valid checkpoint does not verify: nothing would tie it to
// the key.
func Verify(ctx context.Context, r io.Reader, verifiers note.Verifiers) (Report, error) {
	v := &verifier{vs: verifiers}
	xr := NewExportReader(r)
	ph := newPrehasher()
	defer ph.close()
	for {
		if err := ctx.Err(); err != nil {
			return v.rep, fmt.Errorf("ledger: verify interrupted after %d entries: %w", v.rep.Entries, err)
		}
		b, rerr := ph.fill(xr)
		ph.submit(b)
		// Process finished batches in order; drain everything before
		// acting on a read error, so earlier problems are reported first.
		for len(ph.inflight) > 0 && (len(ph.inflight) >= ph.depth || rerr != nil) {
			b := ph.next()
			err := v.batch(b)
			ph.release(b)
			if err != nil {
				return v.fail(err), nil
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(rerr, ErrMalformed) {
				v.line = 0
				return v.fail(v.malformed(rerr)), nil
			}
			return v.rep, rerr
		}
	}
	v.line = 0
	if err := v.finish(); err != nil {
		return v.fail(err), nil
	}
	v.rep.OK = true
	return v.rep, nil
}

// batch runs the in-order checks over one prehashed batch.
func (v *verifier) batch(b *batch) error {
	for i := range b.lines {
		l := &b.lines[i]
		v.line = l.n
		switch l.kind {
		case preEntry:
			if v.header != nil && l.seq == v.next && string(l.org) == v.header.Org && string(l.prevHash) == v.prev &&
				(l.seq != 0 || string(l.kindName) == KindLedgerGenesis) {
				v.closeEntry()
				if err := v.acceptLeaf(l.seq, l.leaf, string(l.hash), string(l.payloadHash)); err != nil {
					return err
				}
				continue
			}
		case prePayload:
			if v.inEntry && v.lastPayload != "" && string(l.payloadOf) == v.lastPayload {
				v.lastHasLine = true
				v.rep.PayloadsVerified++
				continue
			}
		}
		// Reference path: anything unusual, and every failure.
		rec, err := decodeLine(b.buf[l.start:l.end], l.n)
		if err != nil {
			return v.malformed(err)
		}
		if err := v.record(rec); err != nil {
			return err
		}
	}
	return nil
}

// malformed reports an undecodable line; it stands where entry v.next was
// expected, so that is the first seq that cannot be trusted.
func (v *verifier) malformed(err error) error {
	if v.header == nil {
		return badNoSeq("%v", err)
	}
	return bad(v.next, "%v", err)
}

func (v *verifier) fail(err error) Report {
	var b *errBad
	if !errors.As(err, &b) {
		b = &errBad{msg: err.Error()}
	}
	v.rep.OK = false
	v.rep.Problem = b.msg
	v.rep.FirstBadSeq = b.seq
	if v.rep.FirstBadSeq == nil && v.header != nil {
		// The first entry not vouched for by a verified checkpoint.
		s := v.cpSize
		if !v.haveCP {
			s = v.header.From
		}
		v.rep.FirstBadSeq = &s
	}
	v.rep.Line = v.line
	return v.rep
}

func (v *verifier) record(rec Record) error {
	if v.header == nil && rec.Type != RecordHeader {
		return badNoSeq("export does not start with a header line")
	}
	switch rec.Type {
	case RecordHeader:
		if v.header != nil {
			return badNoSeq("second header line")
		}
		return v.onHeader(rec.Header)
	case RecordEntry:
		return v.onEntry(rec.Entry)
	case RecordPayload:
		return v.onPayload(rec.Payload)
	case RecordCheckpoint:
		return v.onCheckpoint(rec.Checkpoint)
	}
	return badNoSeq("unknown record type %q", rec.Type)
}

func (v *verifier) onHeader(h *Header) error {
	v.header = h
	v.rep.Org, v.rep.From = h.Org, h.From
	if h.Version != ExportVersion {
		return badNoSeq("unsupported export version %d (this verifier reads version %d)", h.Version, ExportVersion)
	}
	if h.Org == "" {
		return badNoSeq("header names no org")
	}
	if h.Anchor == nil {
		if h.From != 0 {
			return bad(h.From, "export starts at seq %d without an anchor; it must start at genesis (seq 0) or carry a signed anchor", h.From)
		}
		v.rc, v.prev = NewRootComputer(), ZeroHash
		return nil
	}
	a := h.Anchor
	if a.Size == 0 || a.Size != h.From {
		return bad(h.From, "anchor size %d does not match the export start seq %d", a.Size, h.From)
	}
	cp, err := v.openCheckpoint(a.Note, a.Size)
	if err != nil {
		return bad(a.Size, "anchor: %v", err)
	}
	rc, err := NewRootComputerAt(a.Size, a.Range)
	if err != nil {
		return bad(a.Size, "anchor compact range: %v", err)
	}
	root, err := rc.Root()
	if err != nil {
		return bad(a.Size, "anchor compact range: %v", err)
	}
	if !bytes.Equal(root, cp.Root) {
		return bad(a.Size, "anchor compact range does not hash to the signed root at size %d", a.Size)
	}
	hb, err := hex.DecodeString(a.Hash)
	if err != nil || !isHexHash(a.Hash) {
		return bad(a.Size, "anchor hash %q is not 64 lowercase hex digits", a.Hash)
	}
	if err := proof.VerifyInclusion(Hasher, a.Size-1, a.Size, LeafHash(hb), a.Inclusion, cp.Root); err != nil {
		return bad(a.Size, "anchor hash of entry %d is not in the signed tree at size %d: %v", a.Size-1, a.Size, err)
	}
	v.rc, v.prev, v.next = rc, a.Hash, a.Size
	v.cpSize, v.cpRoot, v.haveCP = a.Size, cp.Root, true
	v.rep.Checkpoints++
	return nil
}

func (v *verifier) openCheckpoint(msg string, size uint64) (Checkpoint, error) {
	cp, err := OpenCheckpoint([]byte(msg), v.vs)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint at size %d: %w", size, err)
	}
	if cp.Size != size {
		return Checkpoint{}, fmt.Errorf("checkpoint line says size %d but its signed note says %d", size, cp.Size)
	}
	if o := v.header.Origin; o != "" && cp.Origin != o {
		return Checkpoint{}, fmt.Errorf("checkpoint at size %d is for log %q, export is for %q", size, cp.Origin, o)
	}
	if !strings.HasSuffix(cp.Origin, "/"+v.header.Org) {
		return Checkpoint{}, fmt.Errorf("checkpoint at size %d is for log %q, not org %q", size, cp.Origin, v.header.Org)
	}
	return cp, nil
}

func (v *verifier) onEntry(e *Entry) error {
	v.closeEntry()
	if e.Seq != v.next {
		if e.Seq > v.next {
			return bad(v.next, "entry seq %d is missing: the next entry in the export has seq %d (deleted or reordered)", v.next, e.Seq)
		}
		return bad(v.next, "expected entry seq %d, found seq %d (entries reordered or duplicated)", v.next, e.Seq)
	}
	if e.Org != v.header.Org {
		return bad(e.Seq, "entry %d belongs to org %q, export is for %q", e.Seq, e.Org, v.header.Org)
	}
	if e.Seq == 0 && e.Kind != KindLedgerGenesis {
		return bad(0, "entry 0 has kind %q, want %q", e.Kind, KindLedgerGenesis)
	}
	sum, err := e.computeHash()
	if err != nil {
		return bad(e.Seq, "entry %d is invalid: %v", e.Seq, err)
	}
	if hex.EncodeToString(sum[:]) != e.Hash {
		return bad(e.Seq, "entry %d was altered: its recomputed hash %x differs from the stored hash %s", e.Seq, sum, e.Hash)
	}
	if e.PrevHash != v.prev {
		if e.Seq == v.header.From {
			// The predecessor is genesis' zero hash or the signed anchor:
			// the fault is this entry.
			return bad(e.Seq, "entry %d does not link to its trusted predecessor: prev_hash %s, want %s", e.Seq, e.PrevHash, v.prev)
		}
		// Either the predecessor was altered and re-hashed (its own hash
		// then verified) or this entry was forged; report the earlier seq.
		return bad(e.Seq-1, "entries %d and %d do not link: entry %d has prev_hash %s but entry %d hashes to %s (entry %d altered and re-hashed, or entry %d inserted or replaced)",
			e.Seq-1, e.Seq, e.Seq, e.PrevHash, e.Seq-1, v.prev, e.Seq-1, e.Seq)
	}
	return v.accept(e.Seq, sum, e.Hash, e.PayloadHash)
}

// accept records a verified entry and checks the checkpoints waiting for it.
func (v *verifier) accept(seq uint64, sum [HashSize]byte, hash, payloadHash string) error {
	var leaf [HashSize]byte
	hashLeaf(&leaf, sum[:])
	return v.acceptLeaf(seq, leaf, hash, payloadHash)
}

func (v *verifier) acceptLeaf(seq uint64, leaf [HashSize]byte, hash, payloadHash string) error {
	if err := v.rc.appendLeafHash(leaf[:]); err != nil {
		return bad(seq, "merkle append at entry %d: %v", seq, err)
	}
	v.prev = hash
	v.next++
	v.rep.Entries++
	v.lastSeq, v.lastPayload, v.lastHasLine, v.inEntry = seq, payloadHash, false, true
	// Checkpoints that arrived early are checked as soon as the tree
	// reaches their size.
	for len(v.pending) > 0 && v.pending[0].cp.Size == v.next {
		p := v.pending[0]
		v.pending = v.pending[1:]
		if err := v.checkRoot(p.cp, p.consistency); err != nil {
			return err
		}
	}
	return nil
}

// closeEntry does the bookkeeping when the lines of the previous entry end.
func (v *verifier) closeEntry() {
	if v.inEntry && v.lastPayload != "" && !v.lastHasLine {
		v.rep.PayloadsMissing++
	}
	v.inEntry = false
}

func (v *verifier) onPayload(p *PayloadRecord) error {
	if !v.inEntry || v.lastPayload == "" {
		return badNoSeq("payload %s does not follow an entry that references it", p.Hash)
	}
	if p.Hash != v.lastPayload {
		return bad(v.lastSeq, "payload line %s does not belong to entry %d (payload_hash %s)", p.Hash, v.lastSeq, v.lastPayload)
	}
	v.lastHasLine = true
	if p.Purged {
		if p.Data != nil || p.Salt != nil {
			return bad(v.lastSeq, "payload of entry %d is marked purged but carries data", v.lastSeq)
		}
		v.rep.PayloadsPurged++
		return nil
	}
	if len(p.Salt) == 0 {
		return bad(v.lastSeq, "payload of entry %d has no salt", v.lastSeq)
	}
	if got := HashPayload(p.Salt, p.Data); got != p.Hash {
		return bad(v.lastSeq, "payload of entry %d was replaced: it hashes to %s, the entry commits to %s", v.lastSeq, got, p.Hash)
	}
	v.rep.PayloadsVerified++
	return nil
}

func (v *verifier) onCheckpoint(c *CheckpointRecord) error {
	v.closeEntry()
	cp, err := v.openCheckpoint(c.Note, c.Size)
	if err != nil {
		return err // FirstBadSeq: first entry after the last good checkpoint
	}
	switch {
	case cp.Size < v.next:
		return bad(cp.Size, "checkpoint at size %d appears after entry %d; it must directly follow entry %d", cp.Size, v.next-1, int64(cp.Size)-1)
	case cp.Size == v.next:
		return v.checkRoot(cp, c.Consistency)
	default:
		if n := len(v.pending); n > 0 && v.pending[n-1].cp.Size > cp.Size {
			return badNoSeq("checkpoints out of order: size %d after size %d", cp.Size, v.pending[n-1].cp.Size)
		}
		v.pending = append(v.pending, pendingCP{cp: cp, consistency: c.Consistency, line: v.line})
		return nil
	}
}

// checkRoot compares a verified checkpoint with the tree rebuilt from the
// entries; the tree is at exactly cp.Size leaves.
func (v *verifier) checkRoot(cp Checkpoint, consistency [][]byte) error {
	root, err := v.rc.Root()
	if err != nil {
		return bad(cp.Size, "merkle root at size %d: %v", cp.Size, err)
	}
	if v.haveCP && cp.Size < v.cpSize {
		return badNoSeq("checkpoint at size %d is older than the previous one at size %d", cp.Size, v.cpSize)
	}
	from := v.header.From
	if v.haveCP {
		from = v.cpSize
	}
	if consistency != nil && v.haveCP {
		if err := proof.VerifyConsistency(Hasher, v.cpSize, cp.Size, consistency, v.cpRoot, cp.Root); err != nil {
			return bad(from, "signed checkpoints at sizes %d and %d are not consistent (the log was rewritten between them): %v", v.cpSize, cp.Size, err)
		}
	}
	if !bytes.Equal(root, cp.Root) {
		return bad(from, "the entries do not match the signed checkpoint at size %d: the Merkle root of entries 0..%d is %s, the checkpoint signs %s; since the previous checkpoint matched, an entry in seq %d..%d was inserted, removed or altered and the hash chain recomputed",
			cp.Size, cp.Size-1, base64.StdEncoding.EncodeToString(root), base64.StdEncoding.EncodeToString(cp.Root), from, cp.Size-1)
	}
	v.cpSize, v.cpRoot, v.haveCP = cp.Size, cp.Root, true
	v.rep.Checkpoints++
	return nil
}

func (v *verifier) finish() error {
	if v.header == nil {
		return badNoSeq("empty export: no header line")
	}
	v.closeEntry()
	if len(v.pending) > 0 {
		p := v.pending[len(v.pending)-1]
		v.line = p.line
		return bad(v.next, "the export ends after seq %d but a signed checkpoint covers %d entries (up to seq %d): entries %d..%d are missing (tail truncated)",
			int64(v.next)-1, p.cp.Size, p.cp.Size-1, v.next, p.cp.Size-1)
	}
	if v.header.To != 0 && v.next != v.header.To {
		return bad(v.next, "the header announces entries up to seq %d but the export ends after seq %d", v.header.To-1, int64(v.next)-1)
	}
	if !v.haveCP {
		return bad(v.header.From, "no signed checkpoint in the export: nothing ties these entries to the log's key")
	}
	v.rep.Uncovered = v.next - v.cpSize
	return nil
}
