package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzHandler feeds arbitrary requests to the handler of a healthy log:
// every answer must be below 500 (bad input is never the server's fault,
// and the log is available), and every error a JSON error body.
func FuzzHandler(f *testing.F) {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead, http.MethodOptions, "PATCH", "BREW"}
	seeds := []struct {
		method      uint8
		path, query string
		ctype       string
		body        []byte
	}{
		{1, "/v1/decisions", "", "application/json", decision("f-1", "allow", nil)},
		{1, "/v1/decisions", "", "application/json", decision("f-2", "deny", map[string]any{"parent_id": "f-1", "sequence": 3})},
		{1, "/v1/decisions", "", "application/json; charset=utf-8", []byte(`{"id":"a","id":"a"}`)},
		{1, "/v1/decisions/batch", "", "application/json", []byte(`{"decisions":[` + string(decision("f-3", "allow", nil)) + `,{"id":"x"},17]}`)},
		{1, "/v1/decisions/batch", "", "application/json", []byte(`{"decisions":[],"decisions":[]}`)},
		{1, "/v1/executions", "", "application/json", execution("x-1", "f-1")},
		{1, "/v1/executions", "", "text/plain", execution("x-2", "f-1")},
		{0, "/v1/decisions/f-1", "", "", nil},
		{0, "/v1/executions/x-1", "", "", nil},
		{0, "/v1/checkpoint", "", "", nil},
		{0, "/v1/proofs/inclusion", "index=0&tree_size=1", "", nil},
		{0, "/v1/proofs/inclusion", "leaf_hash=AAAA", "", nil},
		{0, "/v1/proofs/consistency", "from=1&to=2", "", nil},
		{0, "/v1/entries", "start=0&count=10", "", nil},
		{0, "/v1/entries", "start=%2B0", "", nil},
		{0, "/v1/log", "", "", nil},
		{0, JWKSPath, "", "", nil},
		{0, "/healthz", "", "", nil},
		{0, "/readyz", "x=1", "", nil},
		{0, "/metrics", "", "", nil},
		{2, "/v1/decisions", "a=%zz", "application/json", nil},
		{4, "/nope", "", "", nil},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.ctype, s.body)
	}
	env := newEnv(f, envOptions{})
	f.Fuzz(func(t *testing.T, method uint8, path, query, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req := &http.Request{
			Method:     methods[int(method)%len(methods)],
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{},
			Body:       io.NopCloser(bytes.NewReader(body)),
			Host:       "example.com",
			RequestURI: path,
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		env.srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s (%q, %q): %d %s", req.Method, path, query, ctype, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && req.Method != http.MethodHead {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d with a body that is not a JSON error: %q", rec.Code, rec.Body)
			}
		}
	})
}
