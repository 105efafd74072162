package gateway

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"

	"github.com/gin-gonic/gin"
)

// openapiFiles holds the API's OpenAPI 3.1 document, kept by hand next to the
// code: base.json carries the info, servers, shared components and the core
// routes; every other file is a fragment for one capability (paths plus the
// component schemas they use), so features land without editing one large
// shared file. TestOpenAPIMatchesRoutes fails when a route and the document
// differ.
//
//go:embed openapi/*.json
var openapiFiles embed.FS

// OpenAPI is the merged document served at /v1/openapi.json.
var OpenAPI = mustMergeOpenAPI(openapiFiles)

// mustMergeOpenAPI merges base.json with every fragment. A path or component
// defined twice is a programming error, caught at start-up and by the tests.
func mustMergeOpenAPI(files fs.FS) []byte {
	doc, err := mergeOpenAPI(files)
	if err != nil {
		panic(err)
	}
	return doc
}

func mergeOpenAPI(files fs.FS) ([]byte, error) {
	read := func(name string) (map[string]any, error) {
		raw, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("openapi: %s: %w", name, err)
		}
		return m, nil
	}
	doc, err := read("openapi/base.json")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		if path.Base(name) == "base.json" {
			continue
		}
		frag, err := read(name)
		if err != nil {
			return nil, err
		}
		if err := mergeSection(doc, frag, name, "paths"); err != nil {
			return nil, err
		}
		comps, _ := frag["components"].(map[string]any)
		base, _ := doc["components"].(map[string]any)
		for kind := range comps {
			if base == nil {
				base = map[string]any{}
				doc["components"] = base
			}
			if err := mergeSection(base, comps, name, kind); err != nil {
				return nil, err
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

// mergeSection copies frag[key]'s members into doc[key], refusing duplicates.
func mergeSection(doc, frag map[string]any, name, key string) error {
	src, _ := frag[key].(map[string]any)
	if len(src) == 0 {
		return nil
	}
	dst, _ := doc[key].(map[string]any)
	if dst == nil {
		dst = map[string]any{}
		doc[key] = dst
	}
	for k, v := range src {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("openapi: %s: %s %q is already defined", name, key, k)
		}
		dst[k] = v
	}
	return nil
}

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", OpenAPI)
}
