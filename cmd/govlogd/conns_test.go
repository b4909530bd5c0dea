package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address from (127.0.0.0/8
// is all loopback on Linux), so that one test can be several clients.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", from, err)
	}
	return c
}

// getOn sends GET /healthz on c, keeping it open, and reads the answer:
// false when the server closed c instead.
func getOn(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: govlog\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestIdleConnectionsFromOneAddress: one address that opens --max-conns
// keep-alive connections and holds them idle gets only its cap of them
// (a quarter of --max-conns by default); other clients are still served,
// each at once. Without the cap they waited for the idle timeout (120s).
func TestIdleConnectionsFromOneAddress(t *testing.T) {
	cfg := testConfig(filepath.Join(t.TempDir(), "data"))
	cfg.MaxConns = 8
	s := start(t, cfg)
	addr := strings.TrimPrefix(s.url, "http://")

	held := 0
	for range cfg.MaxConns {
		c := dialFrom(t, "127.0.0.2", addr)
		defer c.Close()
		if getOn(c) {
			held++
		}
	}
	if held != cfg.MaxConns/4 {
		t.Errorf("one address holds %d idle connections, want its cap %d", held, cfg.MaxConns/4)
	}

	var slowest time.Duration
	for i := range 50 {
		begin := time.Now()
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", i+1), addr)
		ok := getOn(c)
		c.Close()
		took := time.Since(begin)
		slowest = max(slowest, took)
		if !ok {
			t.Fatalf("client %d was not served (after %v)", i, took)
		}
	}
	t.Logf("50 other clients while one address holds its cap of idle connections: slowest %v", slowest)
}

func TestMaxConnsPerAddrDefault(t *testing.T) {
	for _, tc := range []struct{ max, perAddr, want int }{
		{0, 0, defaultMaxConns / 4},
		{100, 0, 25},
		{3, 0, 1},
		{100, 100, 100},
		{100, -1, -1},
		{-1, 0, 0},
	} {
		c := SecurityConfig{MaxConns: tc.max, MaxConnsPerAddr: tc.perAddr}
		if err := c.validate(); err != nil || c.MaxConnsPerAddr != tc.want {
			t.Errorf("--max-conns %d --max-conns-per-addr %d: %d, %v; want %d", tc.max, tc.perAddr, c.MaxConnsPerAddr, err, tc.want)
		}
	}
}
