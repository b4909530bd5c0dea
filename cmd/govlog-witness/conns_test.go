package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConnectionCap: the witness bounds the connections of one address
// (it bounded none: any client could hold every file descriptor).
func TestConnectionCap(t *testing.T) {
	lg := newTestLog(t, "example.com/log", 1)
	url, _ := start(t, Config{DataDir: filepath.Join(t.TempDir(), "data"), Name: "witness.test/w1",
		LogKeys: []string{lg.vkey}, MaxConnsPerAddr: 2})
	addr := strings.TrimPrefix(url, "http://")
	healthz := func(from string) bool {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Skipf("cannot connect from %s: %v", from, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: w\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	held := 0
	for range 4 {
		if healthz("127.0.0.2") {
			held++
		}
	}
	if held != 2 {
		t.Errorf("one address holds %d connections, want 2", held)
	}
	if !healthz("127.0.0.3") {
		t.Error("another address was not served")
	}
}
