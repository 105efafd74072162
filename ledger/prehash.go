package ledger

import (
	"encoding/hex"
	"runtime"
)

// Verify splits its work in two: the stateless, expensive part of each line
// (parsing, validating and hashing an entry or a payload) runs on worker
// goroutines, batch by batch; the stateful checks (seq, links, Merkle
// append, checkpoints) run in order on the calling goroutine, which also
// reads the input, so no goroutine ever blocks on the caller's reader.
// Memory stays bounded: at most verifyDepth batches are in flight.

// verifyBatchLines is the number of lines per batch: large enough that
// channel hand-offs are noise, small enough that in-flight memory stays
// around a megabyte for typical entries. A variable so tests can exercise
// batch boundaries.
var verifyBatchLines = 512

// verifyBatchBytes caps a batch's buffered bytes (a payload line can be
// large).
const verifyBatchBytes = 1 << 20

// prelineKind says what a worker established about a line.
type prelineKind uint8

const (
	preNone    prelineKind = iota // use the reference path
	preEntry                      // entry parsed, validated, stored hash == recomputed hash
	prePayload                    // retained payload parsed and hashing to its own "hash"
)

type preline struct {
	start, end int // line bytes in batch.buf
	n          int // 1-based line number
	kind       prelineKind

	// preEntry
	seq                                        uint64
	org, kindName, prevHash, hash, payloadHash []byte // alias batch.buf or fresh memory
	leaf                                       [HashSize]byte

	// prePayload
	payloadOf []byte // the payload line's "hash"
}

type batch struct {
	buf   []byte
	lines []preline
	done  chan struct{}
}

type prehasher struct {
	jobs     chan *batch
	inflight []*batch
	free     []*batch
	depth    int
	finished chan struct{}
	workers  int
}

func newPrehasher() *prehasher {
	w := max(runtime.GOMAXPROCS(0), 1)
	p := &prehasher{jobs: make(chan *batch, w+1), depth: w + 1, finished: make(chan struct{}), workers: w}
	for range w {
		go p.work()
	}
	return p
}

// close stops the workers after they finish the batches already submitted.
func (p *prehasher) close() {
	close(p.jobs)
	for range p.workers {
		<-p.finished
	}
}

func (p *prehasher) work() {
	defer func() { p.finished <- struct{}{} }()
	var fp fastParser
	for b := range p.jobs {
		for i := range b.lines {
			prehashLine(&fp, b, &b.lines[i])
		}
		close(b.done)
	}
}

// fill reads up to verifyBatchLines lines into a batch. It returns the batch
// (possibly empty) and the reader's error (io.EOF at the end); lines read
// before an error are in the batch.
func (p *prehasher) fill(xr *ExportReader) (*batch, error) {
	var b *batch
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
		b.buf, b.lines = b.buf[:0], b.lines[:0]
	} else {
		b = &batch{}
	}
	b.done = make(chan struct{})
	for len(b.lines) < verifyBatchLines && len(b.buf) < verifyBatchBytes {
		line, n, err := xr.nextLine()
		if err != nil {
			return b, err
		}
		start := len(b.buf)
		b.buf = append(b.buf, line...)
		b.lines = append(b.lines, preline{start: start, end: len(b.buf), n: n})
	}
	return b, nil
}

func (p *prehasher) submit(b *batch) {
	p.inflight = append(p.inflight, b)
	p.jobs <- b
}

// next waits for the oldest in-flight batch.
func (p *prehasher) next() *batch {
	b := p.inflight[0]
	p.inflight = p.inflight[1:]
	<-b.done
	return b
}

func (p *prehasher) release(b *batch) { p.free = append(p.free, b) }

// prehashLine does the stateless checks of one line. Anything unusual
// leaves kind = preNone and the reference path decides.
func prehashLine(fp *fastParser, b *batch, l *preline) {
	line := b.buf[l.start:l.end]
	switch {
	case hasPrefix(line, entryLinePrefix):
		if !fp.parseEntry(line) {
			return
		}
		sum, _, ok := fp.hash()
		if !ok {
			return
		}
		var stored [HashSize]byte
		if _, err := hex.Decode(stored[:], fp.fe.hash); err != nil || stored != sum {
			return
		}
		fe := &fp.fe
		l.seq, l.org, l.kindName, l.prevHash, l.hash, l.payloadHash = fe.seq, fe.org, fe.kind, fe.prevHash, fe.hash, fe.payloadHash
		hashLeaf(&l.leaf, sum[:])
		l.kind = preEntry
	case hasPrefix(line, payloadLinePrefix):
		h, ok := fp.parsePayload(line)
		if !ok || len(fp.salt) == 0 || !isHexHash(h) {
			return
		}
		var want [HashSize]byte
		if _, err := hex.Decode(want[:], h); err != nil || hashPayload(fp.salt, fp.data) != want {
			return
		}
		l.payloadOf = h
		l.kind = prePayload
	}
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}
