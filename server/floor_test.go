package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The floor admits a decision as a real one is admitted and answers the
// receipts it was given, in turn.
func TestFloor(t *testing.T) {
	if _, err := NewFloor(prometheus.NewRegistry(), nil, []byte(`{}`)); err == nil {
		t.Fatal("NewFloor accepted no receipts")
	}
	receipts := [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}
	h, err := NewFloor(prometheus.NewRegistry(), receipts, []byte(`{"origin":"o"}`))
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
