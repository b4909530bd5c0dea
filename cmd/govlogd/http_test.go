package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestOptionsAsterisk: "OPTIONS *" (the server-wide form, RFC 9110
// §9.3.7) gets the API's JSON 405 like any OPTIONS, not net/http's empty
// 200.
func TestOptionsAsterisk(t *testing.T) {
	s := start(t, testConfig(filepath.Join(t.TempDir(), "data")))
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusMethodNotAllowed ||
		body.Error.Code != "method_not_allowed" {
		t.Fatalf("OPTIONS *: %d %+v %v", resp.StatusCode, body, err)
	}
}
