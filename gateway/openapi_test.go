package gateway_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/store/storetest"
	"github.com/heraldhq/herald/telemetry"
)

// TestOpenAPIMatchesRoutes fails when a route is registered that the
// OpenAPI document does not describe, or the other way round.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(gateway.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi version %q, want 3.1", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	registered := (&gateway.Server{Metrics: telemetry.New(nil)}).Routes()
	sort.Strings(documented)
	sort.Strings(registered)
	if strings.Join(documented, "\n") != strings.Join(registered, "\n") {
		t.Fatalf("routes and OpenAPI differ.\nregistered:\n%s\n\ndocumented:\n%s", strings.Join(registered, "\n"), strings.Join(documented, "\n"))
	}
	e := newEnv(t, storetest.SQLite)
	r := e.do("GET", "/v1/openapi.json", "", nil)
	if r.status != http.StatusOK || r.str("openapi") != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json = %d", r.status)
	}
}
