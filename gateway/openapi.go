package gateway

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the API's OpenAPI 3.1 document. It is kept by hand next to the
// code; TestOpenAPIMatchesRoutes fails when a route and the document differ.
//
//go:embed openapi.json
var OpenAPI []byte

func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json", OpenAPI)
}
