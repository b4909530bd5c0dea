package server

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// concretePath turns a route path into a URL path that the route matches.
func concretePath(route string) string {
	route = strings.ReplaceAll(route, ":id", "t-1")
	return strings.ReplaceAll(route, "*", "0/000")
}

// TestMethods sends every method to every route: a method the route does
// not serve — OPTIONS included, since there is no CORS — gets 405
// method_not_allowed with an Allow header listing exactly the methods it
// serves.
func TestMethods(t *testing.T) {
	e := newEnv(t, envOptions{})
	want := map[string]string{
		"/v1/decisions":       "POST",
		"/v1/decisions/batch": "POST",
		"/v1/executions":      "POST",
		"/v1/decisions/:id":   "GET, HEAD",
		"/v1/checkpoint":      "GET, HEAD",
		"/healthz":            "GET, HEAD",
		"/tile/*":             "GET, HEAD",
		JWKSPath:              "GET, HEAD",
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "BREW"}
	for route := range e.srv.routes {
		path := concretePath(route)
		t.Run(path, func(t *testing.T) {
			e := e.with(t)
			answers := map[string]response{}
			var allow string
			for _, m := range methods {
				answers[m] = e.do(m, path, "application/json", nil)
				if answers[m].status == http.StatusMethodNotAllowed && allow == "" {
					allow = answers[m].header.Get("Allow")
				}
			}
			if w, ok := want[route]; ok && allow != w {
				t.Errorf("Allow %q, want %q", allow, w)
			}
			listed := strings.Split(allow, ", ")
			for _, m := range methods {
				r := answers[m]
				if slices.Contains(listed, m) {
					if r.status == http.StatusMethodNotAllowed {
						t.Errorf("%s is listed in Allow %q but refused", m, allow)
					}
					continue
				}
				if r.status != http.StatusMethodNotAllowed {
					t.Errorf("%s: %s; want 405 (Allow %q)", m, r, allow)
					continue
				}
				if m != http.MethodHead {
					wantError(t, r, http.StatusMethodNotAllowed, codeMethodNotAllowed)
				}
				if got := r.header.Get("Allow"); got != allow {
					t.Errorf("%s: Allow %q, another method got %q", m, got, allow)
				}
			}
		})
	}
}

// TestPreflight: a CORS preflight is an OPTIONS like any other.
func TestPreflight(t *testing.T) {
	e := newEnv(t, envOptions{})
	req, err := http.NewRequest(http.MethodOptions, e.url+"/v1/decisions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	r := e.send(req)
	wantError(t, r, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
	for name := range r.header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("CORS header %s: %q", name, r.header.Get(name))
		}
	}
}

// TestRepeatedHeaders: a header that may appear once, given twice, is
// refused whatever its values — never read as the first one.
func TestRepeatedHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, path := range []string{"/v1/decisions", "/v1/decisions/batch", "/v1/executions"} {
		for _, second := range []string{"text/plain", "application/json"} {
			t.Run(path+" "+second, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(decision("h-1", "deny", nil)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Add("Content-Type", "application/json")
				req.Header.Add("Content-Type", second)
				r := e.with(t).send(req)
				wantError(t, r, http.StatusUnsupportedMediaType, codeUnsupportedMediaType)
				if !strings.Contains(string(r.body), "more than once") {
					t.Errorf("the message does not say why: %s", r.body)
				}
			})
		}
	}
	if n := e.treeSize(); n != 0 {
		t.Fatalf("refused requests logged %d entries", n)
	}
}
