package secrets_test

import (
	"testing"

	"github.com/heraldhq/herald/secrets"
)

func TestParseRef(t *testing.T) {
	good := "v12:" + "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"[:64]
	v, d, err := secrets.ParseRef(good)
	if err != nil || v != 12 || len(d) != 64 {
		t.Fatalf("ParseRef(%q) = %d, %q, %v", good, v, d, err)
	}
	for _, bad := range []string{"", "v1", "1:ab", "v0:" + d, "vx:" + d, "v1:zz"} {
		if _, _, err := secrets.ParseRef(bad); err == nil {
			t.Errorf("ParseRef(%q) accepted", bad)
		}
	}
}

func TestPepperPath(t *testing.T) {
	if got := secrets.PepperPath("acme"); got != "herald/orgs/acme/pepper" {
		t.Fatal(got)
	}
}
