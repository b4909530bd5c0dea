package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The floor admits a decision as a real one is admitted and answers the
// receipts it was given, in turn.
func TestFloor(t *testing.T) {
	if _, err := NewFloor(prometheus.NewRegistry(), nil, []byte(`{}`), nil, nil); err == nil {
		t.Fatal("NewFloor accepted no receipts")
	}
	receipts := [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}
	h, err := NewFloor(prometheus.NewRegistry(), receipts, []byte(`{"origin":"o"}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	post := func(ct, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+"/v1/decisions", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	seen := map[string]bool{}
	for range 2 {
		code, body := post("application/json", `{"id":"x"}`)
		if code != http.StatusCreated {
			t.Fatalf("POST: %d %s", code, body)
		}
		seen[body] = true
	}
	if !seen[`{"id":"a"}`] || !seen[`{"id":"b"}`] {
		t.Errorf("two requests got %v, want both receipts", seen)
	}
	if code, body := post("text/plain", `{"id":"x"}`); code != http.StatusUnsupportedMediaType || !strings.Contains(body, `"unsupported_media_type"`) {
		t.Errorf("text/plain: %d %s, want 415 unsupported_media_type", code, body)
	}
	if code, body := post("application/json", `{"id":"`+strings.Repeat("x", 70<<10)+`"}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB body: %d %.100s, want 413", code, body)
	}
	for path, want := range map[string]string{"/v1/log": `{"origin":"o"}`, "/metrics": "govlog_http_requests_total"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(want)) {
			t.Errorf("GET %s: %d %.200s, want %s", path, resp.StatusCode, b, want)
		}
	}
}

// With proofs, the floor answers the reads of an inclusion-proof load from
// the bytes it was given, after parsing the query as govlogd does.
func TestFloorProofs(t *testing.T) {
	receipts := [][]byte{[]byte(`{"id":"a"}`)}
	if _, err := NewFloor(prometheus.NewRegistry(), receipts, []byte(`{}`), nil, &FloorProofs{Checkpoint: []byte("cp\n")}); err == nil {
		t.Fatal("NewFloor accepted proofs without pages and answers")
	}
	proofs := &FloorProofs{
		Checkpoint: []byte("origin\n5\nroot\n"),
		Pages:      [][]byte{[]byte(`{"entries":[{"index":3}]}`), []byte(`{"entries":[{"index":4}]}`)},
		Inclusion: map[string][]byte{
			"index=3&tree_size=5": []byte(`{"index":3,"tree_size":5,"hashes":["AA=="]}` + "\n"),
			"index=4&tree_size=5": []byte(`{"index":4,"tree_size":5,"hashes":["AQ=="]}` + "\n"),
		},
	}
	h, err := NewFloor(prometheus.NewRegistry(), receipts, []byte(`{}`), nil, proofs)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	get := func(path string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, tc := range []struct {
		path, want string
		code       int
		ctype      string
	}{
		{"/v1/checkpoint", "origin\n5\nroot\n", 200, "text/plain; charset=utf-8"},
		{"/v1/proofs/inclusion?index=3&tree_size=5", string(proofs.Inclusion["index=3&tree_size=5"]), 200, "application/json"},
		{"/v1/proofs/inclusion?index=4&tree_size=5", string(proofs.Inclusion["index=4&tree_size=5"]), 200, "application/json"},
		// Not held: a 404, never another entry's proof.
		{"/v1/proofs/inclusion?tree_size=5&index=3", `"not_found"`, 404, "application/json"},
		{"/v1/proofs/inclusion?index=2&tree_size=5", `"not_found"`, 404, "application/json"},
		// The query is parsed as govlogd parses it.
		{"/v1/proofs/inclusion?index=3&tree_size=5&x=1", `"invalid_request"`, 400, "application/json"},
		{"/v1/proofs/inclusion?index=3&index=3", `"invalid_request"`, 400, "application/json"},
		{"/v1/entries?start=0&count=1000&x=1", `"invalid_request"`, 400, "application/json"},
	} {
		code, ctype, body := get(tc.path)
		if code != tc.code || !strings.HasPrefix(ctype, tc.ctype) || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %s %q, want %d %s %q", tc.path, code, ctype, body, tc.code, tc.ctype, tc.want)
		}
	}
	// Pages in turn, whatever the start.
	seen := map[string]bool{}
	for _, start := range []string{"0", "17"} {
		code, _, body := get("/v1/entries?start=" + start + "&count=1000")
		if code != 200 {
			t.Fatalf("GET /v1/entries: %d %s", code, body)
		}
		seen[body] = true
	}
	if len(seen) != 2 {
		t.Errorf("two pages read got %v, want both pages", seen)
	}
}

// With commit, the floor answers a decision only once commit returns, and
// answers 503 log_unavailable, never the receipt, when it fails.
func TestFloorCommit(t *testing.T) {
	receipts := [][]byte{[]byte(`{"id":"a"}`)}
	var fail atomic.Bool
	var got [][]byte
	var mu sync.Mutex
	commit := func(_ context.Context, body, receipt []byte) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, append(slices.Clone(body), receipt...))
		if fail.Load() {
			return errors.New("disk gone")
		}
		return nil
	}
	h, err := NewFloor(prometheus.NewRegistry(), receipts, []byte(`{}`), commit, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	post := func() (int, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+"/v1/decisions", "application/json", strings.NewReader(`{"id":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(); code != http.StatusCreated || body != `{"id":"a"}` {
		t.Errorf("POST: %d %s, want 201 and the receipt", code, body)
	}
	fail.Store(true)
	if code, body := post(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"log_unavailable"`) || strings.Contains(body, `"a"`) {
		t.Errorf("POST with the commit failing: %d %s, want 503 log_unavailable without the receipt", code, body)
	}
	if len(got) != 2 || string(got[0]) != `{"id":"x"}{"id":"a"}` {
		t.Errorf("commit saw %q, want the body and the receipt of each request", got)
	}
}
