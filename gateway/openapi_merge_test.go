package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMergeOpenAPIFragments(t *testing.T) {
	base := `{"openapi":"3.1.0","paths":{"/a":{"get":{}}},"components":{"schemas":{"A":{}}}}`
	files := fstest.MapFS{
		"openapi/base.json":  {Data: []byte(base)},
		"openapi/extra.json": {Data: []byte(`{"paths":{"/b":{"post":{}}},"components":{"schemas":{"B":{}},"responses":{"R":{}}}}`)},
	}
	raw, err := mergeOpenAPI(files)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]any            `json:"paths"`
		Components map[string]map[string]any `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) != 2 || doc.Components["schemas"]["B"] == nil || doc.Components["responses"]["R"] == nil {
		t.Fatalf("merged document lacks a fragment's members: %s", raw)
	}

	files["openapi/dup.json"] = &fstest.MapFile{Data: []byte(`{"components":{"schemas":{"A":{}}}}`)}
	if _, err := mergeOpenAPI(files); err == nil || !strings.Contains(err.Error(), `"A" is already defined`) {
		t.Fatalf("duplicate schema: err = %v, want a duplicate error", err)
	}
}
