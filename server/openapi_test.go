package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/govlog/govlog/docs"
)

// openAPI is docs/openapi.json, parsed, with a schema compiler on it.
type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

const openAPIURL = "https://govlog.invalid/openapi.json"

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(docs.OpenAPI))
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(openAPIURL, doc); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(docs.OpenAPI, &m); err != nil {
		t.Fatal(err)
	}
	if m["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", m["openapi"])
	}
	return &openAPI{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// escapePointer escapes a JSON pointer token.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// response returns the documented response of an operation and status,
// or nil.
func (o *openAPI) response(path, method, status string) map[string]any {
	p, _ := o.doc["paths"].(map[string]any)[path].(map[string]any)
	op, _ := p[method].(map[string]any)
	r, _ := op["responses"].(map[string]any)[status].(map[string]any)
	return r
}

// schema compiles the schema of an operation's response for a media type.
func (o *openAPI) schema(t *testing.T, path, method, status, media string) *jsonschema.Schema {
	t.Helper()
	ptr := fmt.Sprintf("#/paths/%s/%s/responses/%s/content/%s/schema", escapePointer(path), method, status, escapePointer(media))
	if s, ok := o.schemas[ptr]; ok {
		return s
	}
	s, err := o.compiler.Compile(openAPIURL + ptr)
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	o.schemas[ptr] = s
	return s
}

// operations lists every documented (path, method, status) but default.
func (o *openAPI) operations() []string {
	var out []string
	for path, p := range o.doc["paths"].(map[string]any) {
		for method, op := range p.(map[string]any) {
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				if status != "default" {
					out = append(out, path+" "+method+" "+status)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPI checks docs/openapi.json against the real server: every
// documented path, method and status is answered so by a request here,
// every answer validates against its documented schema, every route the
// server has is documented, and GET /openapi.json serves the document.
func TestOpenAPI(t *testing.T) {
	o := loadOpenAPI(t)
	e := newEnv(t, envOptions{})
	allow := decision("oa-1", "allow", nil)
	created := e.post("/v1/decisions", allow)
	if created.status != http.StatusCreated {
		t.Fatalf("submit: %s", created)
	}
	if r := e.post("/v1/decisions", decision("oa-2", "deny", nil)); r.status != http.StatusCreated {
		t.Fatalf("submit: %s", r)
	}
	var rec struct {
		LeafHash string `json:"leaf_hash"`
		Artifact string `json:"artifact"`
	}
	_ = json.Unmarshal(created.body, &rec)
	exec := claim("oa-x", "oa-1", rec.Artifact)
	rev := revocation("oa-r", "oa-3", nil)
	opaBody, _ := json.Marshal([]any{opaEvent("7ca636c1-55e4-417a-b1d8-4aceb67960d4", true, nil)})

	type call struct {
		path, method, status string
		url                  string
		body                 []byte
		contentType          string
	}
	get := func(path, status, url string) call { return call{path, "get", status, url, nil, ""} }
	post := func(path, status, url string, body []byte, ct string) call {
		return call{path, "post", status, url, body, ct}
	}
	big := bytes.Repeat([]byte("x"), 5<<20)
	calls := []call{
		post("/v1/decisions", "201", "/v1/decisions", decision("oa-3", "allow", nil), "application/json"),
		post("/v1/decisions", "200", "/v1/decisions", allow, "application/json"),
		post("/v1/decisions", "400", "/v1/decisions", []byte(`{"id":`), "application/json"),
		post("/v1/decisions", "409", "/v1/decisions", decision("oa-1", "deny", nil), "application/json"),
		post("/v1/decisions", "413", "/v1/decisions", big, "application/json"),
		post("/v1/decisions", "415", "/v1/decisions", allow, "text/plain"),
		post("/v1/decisions", "422", "/v1/decisions", decision("oa-4", "allow", map[string]any{"parent_id": "nope"}), "application/json"),
		post("/v1/decisions/batch", "200", "/v1/decisions/batch", []byte(`{"decisions":[`+string(decision("oa-5", "deny", nil))+`]}`), "application/json"),
		post("/v1/decisions/batch", "400", "/v1/decisions/batch", []byte(`{"decisions":{}}`), "application/json"),
		post("/v1/decisions/batch", "413", "/v1/decisions/batch", big, "application/json"),
		post("/v1/decisions/batch", "415", "/v1/decisions/batch", []byte(`{}`), "text/plain"),
		get("/v1/decisions/{id}", "200", "/v1/decisions/oa-1"),
		get("/v1/decisions/{id}", "404", "/v1/decisions/nope"),
		post("/v1/executions", "201", "/v1/executions", exec, "application/json"),
		post("/v1/executions", "200", "/v1/executions", exec, "application/json"),
		post("/v1/executions", "400", "/v1/executions", []byte(`{}`), "application/json"),
		post("/v1/executions", "409", "/v1/executions", execution("oa-x", "oa-2"), "application/json"),
		post("/v1/executions", "413", "/v1/executions", big, "application/json"),
		post("/v1/executions", "415", "/v1/executions", exec, "text/plain"),
		get("/v1/executions/{id}", "200", "/v1/executions/oa-x"),
		get("/v1/executions/{id}", "404", "/v1/executions/nope"),
		post("/v1/revocations", "201", "/v1/revocations", rev, "application/json"),
		post("/v1/revocations", "200", "/v1/revocations", rev, "application/json"),
		post("/v1/revocations", "400", "/v1/revocations", []byte(`{}`), "application/json"),
		post("/v1/revocations", "409", "/v1/revocations", revocation("oa-r2", "oa-2", nil), "application/json"),
		post("/v1/revocations", "415", "/v1/revocations", []byte(`{}`), "text/plain"),
		post("/v1/revocations", "422", "/v1/revocations", revocation("oa-r3", "nope", nil), "application/json"),
		get("/v1/revocations/{id}", "200", "/v1/revocations/oa-r"),
		get("/v1/revocations/{id}", "404", "/v1/revocations/nope"),
		get("/v1/authorizations/{id}", "200", "/v1/authorizations/oa-1"),
		get("/v1/authorizations/{id}", "404", "/v1/authorizations/nope"),
		get("/v1/keys", "200", "/v1/keys"),
		post("/v1/opa/decision-logs", "200", "/v1/opa/decision-logs", opaBody, "application/json"),
		post("/v1/opa/decision-logs", "400", "/v1/opa/decision-logs", []byte(`{}`), "application/json"),
		post("/v1/opa/decision-logs", "413", "/v1/opa/decision-logs", bytes.Repeat([]byte(" "), 70<<20), "application/json"),
		get("/v1/checkpoint", "200", "/v1/checkpoint"),
		get("/v1/proofs/inclusion", "200", "/v1/proofs/inclusion?index=0&tree_size=2"),
		get("/v1/proofs/inclusion", "400", "/v1/proofs/inclusion?index=5&tree_size=2"),
		get("/v1/proofs/inclusion", "404", "/v1/proofs/inclusion?leaf_hash=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
		get("/v1/proofs/consistency", "200", "/v1/proofs/consistency?from=1&to=2"),
		get("/v1/proofs/consistency", "400", "/v1/proofs/consistency?from=0&to=2"),
		get("/v1/entries", "200", "/v1/entries?start=0&count=2"),
		get("/v1/entries", "400", "/v1/entries?start=0&count=0"),
		get("/v1/search", "200", "/v1/search?outcome=allow&limit=1"),
		get("/v1/search", "400", "/v1/search?nope=1"),
		get("/v1/export", "200", "/v1/export?subject=agent-7"),
		get("/v1/export", "400", "/v1/export?limit=1"),
		get("/v1/export", "413", "/v1/export?kind=decision"), // with the limit set to 1 below
		get("/v1/log", "200", "/v1/log"),
		get("/.well-known/jwks.json", "200", "/.well-known/jwks.json"),
		get("/healthz", "200", "/healthz"),
		get("/readyz", "200", "/readyz"),
		get("/metrics", "200", "/metrics"),
		get("/openapi.json", "200", "/openapi.json"),
		get("/checkpoint", "200", "/checkpoint"),
		get("/tile/{level}/{index}", "200", "/tile/0/000.p/2"),
		get("/tile/{level}/{index}", "404", "/tile/0/001"),
		get("/tile/entries/{index}", "200", "/tile/entries/000.p/2"),
		get("/tile/entries/{index}", "404", "/tile/entries/001"),
		get("/", "200", "/"),
		get("/search", "200", "/search?outcome=deny"),
		get("/checkpoints", "200", "/checkpoints"),
		get("/verify", "200", "/verify"),
		get("/entries/{index}", "200", "/entries/0"),
		get("/explorer/{asset}", "200", "/explorer/app.js"),
		get("/explorer/{asset}", "404", "/explorer/nope.js"),
	}
	covered := map[string]bool{}
	for _, c := range calls {
		name := c.path + " " + c.method + " " + c.status
		t.Run(name, func(t *testing.T) {
			if name == "/v1/export get 413" {
				e.srv.exportLimit = 1
				defer func() { e.srv.exportLimit = 0 }()
			}
			var r response
			if c.method == "get" {
				r = e.get(c.url)
			} else {
				r = e.do(http.MethodPost, c.url, c.contentType, c.body)
			}
			if fmt.Sprint(r.status) != c.status {
				t.Fatalf("%s %s: %s, want %s", c.method, c.url, r, c.status)
			}
			doc := o.response(c.path, c.method, c.status)
			if doc == nil {
				t.Fatalf("%s is not documented", name)
			}
			covered[name] = true
			content, _ := doc["content"].(map[string]any)
			media := strings.TrimSpace(strings.Split(r.header.Get("Content-Type"), ";")[0])
			if len(content) == 0 {
				return
			}
			if _, ok := content[media]; !ok {
				t.Fatalf("answered %s, documented %v", media, content)
			}
			if media != "application/json" {
				return
			}
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
			if err != nil {
				t.Fatalf("the answer is not JSON: %v", err)
			}
			if err := o.schema(t, c.path, c.method, c.status, media).Validate(v); err != nil {
				t.Fatalf("the answer does not validate against the documented schema: %v\n%s", err, r.body)
			}
		})
	}
	for _, op := range o.operations() {
		if !covered[op] {
			t.Errorf("%s is documented but no request here gets it", op)
		}
	}
	// Every route of the server is documented.
	for route := range e.srv.routes {
		path := strings.ReplaceAll(route, ":id", "{id}")
		if route == "/tile/*" {
			continue // the two tile paths
		}
		// The explorer's paths under a prefix.
		path = strings.NewReplacer("/entries/*", "/entries/{index}", "/explorer/*", "/explorer/{asset}").Replace(path)
		if _, ok := o.doc["paths"].(map[string]any)[path]; !ok {
			t.Errorf("route %s is not in docs/openapi.json", route)
		}
	}
	if r := e.get("/openapi.json"); !bytes.Equal(r.body, docs.OpenAPI) {
		t.Error("GET /openapi.json is not docs/openapi.json")
	}
}
