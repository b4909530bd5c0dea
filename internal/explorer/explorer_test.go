package explorer

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIsPage(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/search": true, "/checkpoints": true, "/verify": true, "/entries/0": true, "/entries/x": true,
		"/explorer/app.js": true,
		"/entries/":        false, "/entries": false, "/searchx": false, "/v1/log": false, "/checkpoint": false, "": false,
	} {
		if got := IsPage(p); got != want {
			t.Errorf("IsPage(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestServes(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/entries/3": true, "/explorer/app.js": true, "/explorer/app.css": true,
		"/explorer/": false, "/explorer/index.html": false, "/explorer/nope.js": false, "/explorer/../explorer.go": false,
		"/explorer/./app.js": false, "/entries/": false, "/v1/log": false,
	} {
		if got := Serves(p); got != want {
			t.Errorf("Serves(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler()
	get := func(method, path string) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Result()
	}
	for _, path := range []string{"/", "/entries/12", "/search?outcome=deny"} {
		r := get(http.MethodGet, path)
		body, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 || r.Header.Get("Content-Security-Policy") != CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(string(body), `<script type="module" src="/explorer/app.js"></script>`) {
			t.Errorf("GET %s: %d %v", path, r.StatusCode, r.Header)
		}
		// No inline script or style: the CSP would block them.
		if strings.Contains(string(body), "<script>") || strings.Contains(string(body), "<style") || strings.Contains(string(body), " style=") {
			t.Errorf("GET %s: inline script or style", path)
		}
		if r := get(http.MethodHead, path); r.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", path, r.StatusCode)
		}
	}
	for _, path := range []string{"/explorer/app.js", "/explorer/app.css"} {
		if r := get(http.MethodGet, path); r.StatusCode != 200 || r.Header.Get("Content-Security-Policy") != CSP {
			t.Errorf("GET %s: %d", path, r.StatusCode)
		}
	}
	for _, path := range []string{"/explorer/", "/explorer/index.html", "/explorer/missing.js", "/nope", "/entries/"} {
		if r := get(http.MethodGet, path); r.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.StatusCode)
		}
	}
}

// The committed script never turns text into markup: every piece of log
// content reaches the page as a text node (src/dom.ts).
func TestNoHTMLSinks(t *testing.T) {
	js, err := assets.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(js), sink) {
			t.Errorf("assets/app.js uses %s", sink)
		}
	}
}
