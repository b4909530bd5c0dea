// Package docs holds the documents govlogd serves: the OpenAPI 3.1
// description of the REST API (openapi.json, served at GET /openapi.json),
// the one copy there is, embedded.
package docs

import _ "embed"

// OpenAPI is openapi.json: the OpenAPI 3.1 description of the REST API.
//
//go:embed openapi.json
var OpenAPI []byte
