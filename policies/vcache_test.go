package policies

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestFlatCache(t *testing.T) {
	c := getFlatCache()
	defer c.release()
	a, b := ast.MustParseRef("data.x.a"), ast.MustParseRef("data.x.b")
	if v, undef := c.Get(a); v != nil || undef {
		t.Fatal("empty cache hit")
	}
	c.Put(a, ast.StringTerm("A"))
	c.Put(b, nil)
	if v, undef := c.Get(a); v == nil || undef || !v.Equal(ast.StringTerm("A")) {
		t.Fatalf("Get(a) = %v %v", v, undef)
	}
	if v, undef := c.Get(b); v != nil || !undef {
		t.Fatalf("Get(b) = %v %v, want cached undefined", v, undef)
	}
	c.Push()
	if v, undef := c.Get(a); v != nil || undef {
		t.Fatal("a pushed frame must start empty")
	}
	c.Put(a, ast.StringTerm("inner"))
	c.Pop()
	if v, _ := c.Get(a); !v.Equal(ast.StringTerm("A")) {
		t.Fatalf("after Pop, Get(a) = %v", v)
	}
	if keys := c.Keys(); len(keys) != 1 || !keys[0].Equal(a) {
		t.Fatalf("Keys = %v", keys)
	}
}

// TestDecideWithKeyword: `with` pushes a cache frame; a value computed under
// it must not leak into the outer evaluation, nor the other way round.
func TestDecideWithKeyword(t *testing.T) {
	e, err := Compile(context.Background(), bundleWith(`stage := input.stage

other := s if {
	s := stage with input.stage as "other"
}

decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}} if {
	stage == "send"
	other == "other"
	stage == "send"
}`))
	if err != nil {
		t.Fatalf("%+v", err)
	}
	for range 3 { // pooled caches must come back empty
		d, err := e.Decide(context.Background(), realisticInput())
		if err != nil || d.Outcome != OutcomeAllow {
			t.Fatalf("decide: %s %v", d.Outcome, err)
		}
	}
}
