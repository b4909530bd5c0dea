package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The workers' connections against net/http's server: the request as
// sent, answers with and without Content-Length, a path prefix, the token,
// keep-alive, Connection: close, and TLS.
func TestConn(t *testing.T) {
	var conns atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/base/echo":
			if r.Header.Get("Authorization") != "Bearer tok" || r.Method != http.MethodPost ||
				r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body)) {
				http.Error(w, fmt.Sprintf("%s %q %v", r.Method, r.Header, r.ContentLength), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusCreated)
			w.Write(body) // chunked: no Content-Length
		case "/base/close":
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Length", "2")
			w.Write([]byte("ok"))
		case "/base/big":
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		default:
			http.NotFound(w, r)
		}
	})
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			conns.Store(0)
			srv := httptest.NewUnstartedServer(h)
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			if useTLS {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			ep, err := newEndpoint(srv.URL+"/base/", "tok")
			if err != nil {
				t.Fatal(err)
			}
			if useTLS {
				ep.tls.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			}
			c := ep.conn(context.Background(), 10*time.Second)
			defer c.close()
			var buf []byte
			for i := range 3 {
				body := []byte(fmt.Sprintf(`{"n":%d}`, i))
				status, got, err := c.do(http.MethodPost, "/echo", body, &buf)
				if err != nil || status != http.StatusCreated || string(got) != string(body) {
					t.Fatalf("POST /echo: %d %q %v", status, got, err)
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("%d connections for three requests: want one, kept alive", n)
			}
			if got, err := c.get("/close", &buf); err != nil || string(got) != "ok" || c.nc != nil {
				t.Fatalf("GET /close: %q %v, connection kept %v", got, err, c.nc != nil)
			}
			if got, err := c.get("/big", &buf); err != nil || len(got) != 1<<20 {
				t.Fatalf("GET /big: %d bytes, %v", len(got), err)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections: want a second after Connection: close", n)
			}
			c.limit = 1000 // as for /metrics: the first bytes, then a new connection
			if got, err := c.get("/big", &buf); err != nil || len(got) != 1000 || c.nc != nil {
				t.Fatalf("GET /big, limit 1000: %d bytes, %v, connection kept %v", len(got), err, c.nc != nil)
			}
			c.limit = 0
			if _, err := c.get("/missing", &buf); err == nil || !strings.Contains(err.Error(), "http_404") {
				t.Fatalf("GET /missing: %v, want the 404", err)
			}
		})
	}
}

// rawServer serves each connection it accepts with serve (then closes
// it) and returns its endpoint and the count of connections accepted.
func rawServer(t *testing.T, serve func(nc net.Conn)) (*endpoint, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer nc.Close()
				serve(nc)
			}()
		}
	}()
	ep, err := newEndpoint("http://"+ln.Addr().String(), "")
	if err != nil {
		t.Fatal(err)
	}
	return ep, &accepted
}

// A request on a connection the server closed while it was idle is sent
// again on a new one, once; a connection that fails before its first answer
// is an error.
func TestConnClosedIdle(t *testing.T) {
	answers := make(chan int, 16) // how many requests each connection answers before closing
	ep, accepted := rawServer(t, func(nc net.Conn) {
		br := bufio.NewReader(nc)
		for range <-answers {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := ep.conn(context.Background(), 10*time.Second)
	defer c.close()
	var buf []byte
	answers <- 1
	answers <- 1
	for i := range 2 {
		if got, err := c.get("/", &buf); err != nil || string(got) != "ok" {
			t.Fatalf("request %d: %q %v", i, got, err)
		}
		time.Sleep(20 * time.Millisecond) // the server closes the connection
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the second request sent again on a new one)", n)
	}
	// A new connection closed before its first answer: not sent again.
	answers <- 0
	c.close()
	if _, err := c.get("/", &buf); err == nil {
		t.Fatal("a connection closed before any answer: no error")
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections, want 3: a failure on a new connection is not retried", n)
	}
}

// Cancelling the run ends a request the server does not answer.
func TestConnCancel(t *testing.T) {
	ep, _ := rawServer(t, func(nc net.Conn) { io.Copy(io.Discard, nc) }) // never answers
	ctx, cancel := context.WithCancel(context.Background())
	c := ep.conn(ctx, time.Minute)
	defer c.close()
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	var buf []byte
	if _, err := c.get("/", &buf); err == nil || time.Since(t0) > 10*time.Second {
		t.Fatalf("%v after %v: want an error soon after the cancellation", err, time.Since(t0))
	}
	if _, err := c.get("/", &buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("a request after the cancellation: %v", err)
	}
}

func TestNewEndpoint(t *testing.T) {
	for _, tc := range []struct{ url, token, addr, base, err string }{
		{"http://127.0.0.1:8080", "", "127.0.0.1:8080", "", ""},
		{"http://example.com/api/", "", "example.com:80", "/api", ""},
		{"https://[::1]/x", "", "[::1]:443", "/x", ""},
		{"ftp://example.com", "", "", "", "want http(s)"},
		{"http://example.com?a=1", "", "", "", "want http(s)"},
		{"http://example.com", "a\r\nX: y", "", "", "line break"},
	} {
		e, err := newEndpoint(tc.url, tc.token)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || e.addr != tc.addr || e.base != tc.base {
			t.Errorf("%q: %+v %v, want %s and %q", tc.url, e, err, tc.addr, tc.base)
		}
	}
	e, _ := newEndpoint("https://log.example:8443", "")
	if e.tls == nil || e.tls.ServerName != "log.example" || e.tls.InsecureSkipVerify {
		t.Errorf("TLS config %+v", e.tls)
	}
}
