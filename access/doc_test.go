package access_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/access"
)

// updateDocs regenerates docs/access.md's generated blocks:
//
//	go test ./access -run TestAccessDocMatchesModel -update
//
// (or HERALD_UPDATE_DOCS=1 go test ./access -run TestAccessDocMatchesModel).
var updateDocs = flag.Bool("update", false, "rewrite the generated blocks of docs/access.md")

const docPath = "../docs/access.md"

// generatedBlocks are the parts of docs/access.md that are output, not prose.
func generatedBlocks(t *testing.T) map[string]string {
	t.Helper()
	matrix, err := access.MatrixMarkdown()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"role matrix": matrix,
		"model":       "```ini\n" + access.ModelConf + "```\n",
	}
}

func blockMarkers(name string) (begin, end string) {
	return "<!-- BEGIN GENERATED " + name + " (go test ./access -run TestAccessDocMatchesModel -update) -->\n",
		"<!-- END GENERATED " + name + " -->"
}

// TestAccessDocMatchesModel fails when docs/access.md's role matrix or model
// listing differs from what the model and the default policy say.
func TestAccessDocMatchesModel(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	update := *updateDocs || os.Getenv("HERALD_UPDATE_DOCS") == "1"
	for name, want := range generatedBlocks(t) {
		begin, end := blockMarkers(name)
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no generated %q block; add the lines\n%s%s", docPath, name, begin, end)
		}
		got := doc[i+len(begin) : j]
		if got == want {
			continue
		}
		if update {
			doc = doc[:i+len(begin)] + want + doc[j:]
			continue
		}
		t.Errorf("%s: the generated %q block is stale; regenerate with\n  go test ./access -run TestAccessDocMatchesModel -update\nwant:\n%s", filepath.Base(docPath), name, want)
	}
	if update && doc != string(raw) {
		if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", docPath)
	}
}
