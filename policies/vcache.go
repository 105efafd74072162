package policies

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// flatCache is the evaluator's virtual-document cache (the values of rules
// already evaluated in this decision) as one hash index per frame over a
// flat slice of entries, instead of OPA's tree of per-segment maps, which
// allocated a node and a map for every ref segment of every rule a decision
// touched. Frames are pushed by `with`. A cache lives for one evaluation and
// is then cleared and pooled, so after warm-up it allocates nothing.
type flatCache struct {
	frames []*cacheFrame
	spare  []*cacheFrame
}

type cacheFrame struct {
	index   map[int]int32 // ref hash → 1 + index of the newest entry with it
	entries []cacheEntry
	terms   []*ast.Term // backing store of the entries' refs
}

type cacheEntry struct {
	ref       ast.Ref
	value     *ast.Term
	undefined bool
	next      int32 // 1 + index of the previous entry with the same hash, or 0
}

var _ topdown.VirtualCache = (*flatCache)(nil)

var flatCaches = sync.Pool{New: func() any {
	return &flatCache{frames: []*cacheFrame{newCacheFrame()}}
}}

func newCacheFrame() *cacheFrame {
	return &cacheFrame{
		index:   make(map[int]int32, 128),
		entries: make([]cacheEntry, 0, 128),
		terms:   make([]*ast.Term, 0, 512),
	}
}

func (f *cacheFrame) reset() {
	clear(f.index)
	clear(f.entries) // drop references to evaluated terms
	f.entries = f.entries[:0]
	clear(f.terms)
	f.terms = f.terms[:0]
}

func getFlatCache() *flatCache { return flatCaches.Get().(*flatCache) }

// release clears the cache and returns it to the pool.
func (c *flatCache) release() {
	for len(c.frames) > 1 {
		c.Pop()
	}
	c.frames[0].reset()
	flatCaches.Put(c)
}

func (c *flatCache) Push() {
	var f *cacheFrame
	if n := len(c.spare); n > 0 {
		f, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		f = newCacheFrame()
	}
	c.frames = append(c.frames, f)
}

func (c *flatCache) Pop() {
	if n := len(c.frames); n > 1 {
		f := c.frames[n-1]
		f.reset()
		c.frames[n-1] = nil
		c.frames = c.frames[:n-1]
		c.spare = append(c.spare, f)
	}
}

func (c *flatCache) top() *cacheFrame { return c.frames[len(c.frames)-1] }

func (f *cacheFrame) find(h int, ref ast.Ref) *cacheEntry {
	for i := f.index[h]; i != 0; {
		e := &f.entries[i-1]
		if e.ref.Equal(ref) {
			return e
		}
		i = e.next
	}
	return nil
}

// Get follows topdown.VirtualCache: (nil, true) is a cached undefined,
// (v, false) a cached value, (nil, false) a miss.
func (c *flatCache) Get(ref ast.Ref) (*ast.Term, bool) {
	e := c.top().find(ref.Hash(), ref)
	if e == nil {
		return nil, false
	}
	if e.undefined {
		return nil, true
	}
	return e.value, false
}

func (c *flatCache) Put(ref ast.Ref, value *ast.Term) {
	f := c.top()
	h := ref.Hash()
	if e := f.find(h, ref); e != nil {
		if value != nil {
			e.value = value
		} else {
			e.undefined = true
		}
		return
	}
	// Terms are immutable, but the evaluator may reuse the ref's backing
	// array: keep a copy of the slice, carved from the frame's arena.
	start := len(f.terms)
	f.terms = append(f.terms, ref...)
	key := ast.Ref(f.terms[start:len(f.terms):len(f.terms)])
	f.entries = append(f.entries, cacheEntry{ref: key, value: value, undefined: value == nil, next: f.index[h]})
	f.index[h] = int32(len(f.entries))
}

func (c *flatCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.top().entries {
		if e.value != nil {
			keys = append(keys, e.ref)
		}
	}
	return keys
}
