package console

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCataloguesHaveTheSameKeys: every language has exactly English's keys.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	en := slices.Sorted(maps.Keys(cat["en"]))
	if len(en) < 20 {
		t.Fatalf("English catalogue has %d keys; it did not load", len(en))
	}
	for _, l := range Languages[1:] {
		other := slices.Sorted(maps.Keys(cat[l]))
		for _, k := range en {
			if _, ok := cat[l][k]; !ok {
				t.Errorf("%s.json lacks %q", l, k)
			}
		}
		for _, k := range other {
			if _, ok := cat["en"][k]; !ok {
				t.Errorf("%s.json has %q, which en.json lacks", l, k)
			}
			if cat[l][k] == "" {
				t.Errorf("%s.json: %q is empty", l, k)
			}
		}
	}
}

// Catalogue keys used in templates ({{.T "k"}}, {{$.T "k"}}) and in Go
// (any string literal "prefix.rest" whose prefix is a catalogue section).
var (
	templateKey = regexp.MustCompile(`\.T "([^"]+)"`)
	goKey       = regexp.MustCompile(`"([a-z]+)\.([a-z_.]+)"`)
)

// TestEveryUsedKeyExists: every key a template or page uses is in the
// English catalogue (and, by the test above, in every other).
func TestEveryUsedKeyExists(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for k := range cat["en"] {
		sec, _, _ := strings.Cut(k, ".")
		sections[sec] = true
	}
	found := 0
	check := func(f, key string) {
		found++
		if _, ok := cat["en"][key]; !ok {
			t.Errorf("%s uses %q, which en.json lacks", f, key)
		}
	}
	tmpls, _ := filepath.Glob("templates/*.html")
	for _, f := range tmpls {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range templateKey.FindAllStringSubmatch(string(b), -1) {
			check(f, m[1])
		}
	}
	gos, _ := filepath.Glob("*.go")
	for _, f := range gos {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			if sections[m[1]] {
				check(f, m[1]+"."+m[2])
			}
		}
	}
	if found < 30 {
		t.Fatalf("found %d key uses; the scan missed the templates", found)
	}
}
