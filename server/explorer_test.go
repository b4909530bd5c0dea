package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/govlog/govlog/internal/explorer"
)

func TestExplorerRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/", "/search", "/search?subject=agent-7&outcome=deny", "/checkpoints", "/verify", "/entries/0", "/entries/18446744073709551615"} {
		r := e.get(path)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", path, r.status, r.header.Get("Content-Type"))
		}
		if got := r.header.Get("Content-Security-Policy"); got != explorer.CSP {
			t.Errorf("GET %s: Content-Security-Policy %q", path, got)
		}
		if !strings.Contains(string(r.body), `src="/explorer/app.js"`) {
			t.Errorf("GET %s: not the explorer's page", path)
		}
	}
	for path, ctype := range map[string]string{"/explorer/app.js": "text/javascript", "/explorer/app.css": "text/css"} {
		r := e.get(path)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), ctype) || r.header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d %v", path, r.status, r.header)
		}
	}
	// What is not a page stays the API's: JSON errors.
	for _, path := range []string{"/explorer/", "/explorer/index.html", "/explorer/../server.go", "/explorer/%2e%2e/x", "/explorer/nope.js", "/entries/", "/nope"} {
		wantError(t, e.get(path), http.StatusNotFound, "not_found")
	}
	r := e.post("/", []byte("{}"))
	wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: Allow %q", r.header.Get("Allow"))
	}
}

// With reads authenticated, the explorer's pages (which hold no log data)
// load without a token, and every API read the page makes still needs one.
func TestExplorerAuthRead(t *testing.T) {
	e := newTokenEnv(t, true)
	for _, path := range []string{"/", "/entries/0", "/explorer/app.js"} {
		if r := e.get(path); r.status != http.StatusOK {
			t.Errorf("GET %s without a token: %s", path, r)
		}
	}
	for _, path := range []string{"/v1/log", "/v1/checkpoint", "/v1/entries?start=0", "/tile/entries/000.p/1", "/v1/entries/0"} {
		wantRefused(t, e.get(path), 401)
	}
}

func TestNoExplorer(t *testing.T) {
	e := newAuthEnv(t, func(c *Config) { c.NoExplorer = true })
	for _, path := range []string{"/", "/entries/0", "/explorer/app.js"} {
		wantError(t, e.get(path), http.StatusNotFound, "not_found")
	}
}
