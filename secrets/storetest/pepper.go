package storetest

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/secrets"
)

// testPseudonymizer checks what the ledger relies on: refs are stable,
// per-org and per-kind, and a ref made before a pepper rotation is still
// reproduced and matched afterwards (the store keeps old versions).
func testPseudonymizer(t *testing.T, s secrets.Store, prefix string) {
	c := ctx(t)
	p := secrets.Pseudonymizer{Store: s}
	org := "storetest-" + randHex(t, 6)
	const phone = "+4915112345678"

	r1, err := p.Ref(c, org, "phone", phone)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r1, "v1:") || strings.Contains(r1, phone) {
		t.Fatalf("ref = %q, want v1:<hex>", r1)
	}
	if again, _ := p.Ref(c, org, "phone", phone); again != r1 {
		t.Fatal("Ref is not deterministic")
	}
	if other, _ := p.Ref(c, org+"-other", "phone", phone); other[3:] == r1[3:] {
		t.Fatal("two orgs share a pepper")
	}
	if kind, _ := p.Ref(c, org, "tg_user", phone); kind == r1 {
		t.Fatal("kind is not part of the ref")
	}

	oldV, newV, err := p.Rotate(c, org)
	if err != nil || oldV != 1 || newV != 2 {
		t.Fatalf("Rotate = %d, %d, %v; want 1, 2", oldV, newV, err)
	}
	r2, err := p.Ref(c, org, "phone", phone)
	if err != nil || !strings.HasPrefix(r2, "v2:") || r2[3:] == r1[3:] {
		t.Fatalf("ref after rotation = %q, %v", r2, err)
	}
	old, err := p.RefVersion(c, org, "phone", phone, 1)
	if err != nil || old != r1 {
		t.Fatalf("RefVersion 1 = %q, %v; want the pre-rotation ref %q", old, err, r1)
	}
	for _, ref := range []string{r1, r2} {
		ok, err := p.Match(c, org, "phone", phone, ref)
		if err != nil || !ok {
			t.Fatalf("Match(%q) = %v, %v", ref, ok, err)
		}
	}
	if ok, _ := p.Match(c, org, "phone", "+4900000", r1); ok {
		t.Fatal("Match accepted another value")
	}
}
