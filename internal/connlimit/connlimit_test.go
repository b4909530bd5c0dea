package connlimit

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// serve serves handler with cfg on a loopback port and returns its address.
func serve(t *testing.T, cfg Config, handler http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The server's own idle timeout is long: only pressure closes.
	hs := &http.Server{Handler: handler, IdleTimeout: time.Hour, ReadHeaderTimeout: time.Hour}
	wrapped := Wrap(ln, hs, cfg)
	go hs.Serve(wrapped)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// dialFrom connects to addr from the loopback address from (127.0.0.0/8
// is all loopback on Linux), so that one test can be several clients.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a request on c, keeping it open, and reads the answer within
// wait: false when c was closed instead.
func get(c net.Conn, wait time.Duration) bool {
	c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
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

// closed reports whether the server closed c within wait.
func closed(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	ne, timeout := err.(net.Error)
	return err != nil && !(timeout && ne.Timeout())
}

// TestPerAddr: an address gets PerAddr connections; more are closed at
// once; one closed gives its place back.
func TestPerAddr(t *testing.T) {
	addr := serve(t, Config{Max: 100, PerAddr: 3}, ok)
	var held []net.Conn
	for i := range 5 {
		c := dialFrom(t, "127.0.0.2", addr)
		if got := get(c, 5*time.Second); got != (i < 3) {
			t.Fatalf("connection %d served: %v", i, got)
		}
		if i < 3 {
			held = append(held, c)
		}
	}
	if c := dialFrom(t, "127.0.0.3", addr); !get(c, 5*time.Second) {
		t.Fatal("another address was refused")
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for !get(dialFrom(t, "127.0.0.2", addr), 5*time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not give its place back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPressure: when Max connections are held idle by several addresses,
// each within its cap, the idle ones are closed after IdleUnderPressure
// and a new client is served: it waited for the server's idle timeout.
func TestPressure(t *testing.T) {
	const idle = 200 * time.Millisecond
	addr := serve(t, Config{Max: 8, PerAddr: 2, IdleUnderPressure: idle}, ok)
	var held []net.Conn
	for i := range 8 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i/2), addr)
		if !get(c, 5*time.Second) {
			t.Fatalf("connection %d was not served", i)
		}
		held = append(held, c)
	}
	begin := time.Now()
	if c := dialFrom(t, "127.0.0.20", addr); !get(c, 10*time.Second) {
		t.Fatal("a new client was not served while the budget is held idle")
	}
	took := time.Since(begin)
	t.Logf("a new client served %v after the budget was held idle (IdleUnderPressure %v)", took, idle)
	n := 0
	for _, c := range held {
		if closed(c, time.Second) {
			n++
		}
	}
	if n == 0 {
		t.Error("no idle connection was closed")
	}
}

// TestBusyNotClosed: under pressure, connections serving a request are
// never closed, however long the request takes.
//
// A new connection is idle until the server reads its request: each
// request is in its handler before the next connection is made, so the
// first two are busy before the third brings the pressure, and the third
// has IdleUnderPressure to get its request read. (With 50 ms, a goroutine
// of a loaded machine could come too late for any of the three.)
func TestBusyNotClosed(t *testing.T) {
	const idle = 250 * time.Millisecond
	release, arrived := make(chan struct{}), make(chan struct{}, 3)
	addr := serve(t, Config{Max: 4, IdleUnderPressure: idle}, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
	answers := make(chan bool, 3)
	for i := range 3 {
		c := dialFrom(t, "127.0.0.2", addr)
		go func() { answers <- get(c, 10*time.Second) }()
		select {
		case <-arrived:
		case ok := <-answers:
			t.Fatalf("connection %d answered %v before its handler ran", i, ok)
		case <-time.After(10 * time.Second):
			t.Fatalf("the request of connection %d never reached its handler", i)
		}
	}
	time.Sleep(4 * idle)
	close(release)
	for range 3 {
		if !<-answers {
			t.Fatal("a connection serving a request was closed under pressure")
		}
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:80", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:443", "2001:db8:1:3::/64"},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientAddr(a); got != tc.want {
			t.Errorf("clientAddr(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// countingListener counts the writes of the connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// pattern is a body of size bytes.
func pattern(size int) []byte { return bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size] }

// TestCoalesceWrites: with CoalesceWrites every answer arrives whole, in
// one write where net/http alone makes two of a buffer's 4 KiB and a
// rest of less than as much again, never in more writes than without.
func TestCoalesceWrites(t *testing.T) {
	sizes := []int{0, 100, 3900, 4000, 4095, 4096, 4097, 5000, 7000, 8100, 8192, 9000, 20000, 70000}
	// writes returns, for each size, the writes of its answer, sent twice
	// on one keep-alive connection: with a Content-Length, then chunked.
	writes := func(coalesce, useTLS bool) [][2]int64 {
		var n atomic.Int64
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			size, _ := strconv.Atoi(r.URL.Query().Get("size"))
			if r.URL.Query().Get("length") != "" {
				w.Header().Set("Content-Length", strconv.Itoa(size))
			}
			w.Write(pattern(size))
		}))
		s.Config.WriteTimeout = time.Minute
		s.Listener = Wrap(countingListener{s.Listener, &n}, s.Config, Config{CoalesceWrites: coalesce})
		var c net.Conn
		var err error
		if useTLS {
			s.StartTLS()
			c, err = tls.Dial("tcp", s.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		} else {
			s.Start()
			c, err = net.Dial("tcp", s.Listener.Addr().String())
		}
		defer s.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var got [][2]int64
		for _, size := range sizes {
			var w [2]int64
			for i, query := range []string{"&length=1", ""} {
				before := n.Load()
				fmt.Fprintf(c, "GET /?size=%d%s HTTP/1.1\r\nHost: test\r\n\r\n", size, query)
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || !bytes.Equal(body, pattern(size)) {
					t.Fatalf("size %d (coalesce %v): %d bytes, %v", size, coalesce, len(body), err)
				}
				// Each write is counted before it is made: all of an
				// answer's are once the client has read it whole.
				w[i] = n.Load() - before
			}
			got = append(got, w)
		}
		return got
	}
	plain, coalesced := writes(false, false), writes(true, false)
	for i, size := range sizes {
		for j, kind := range []string{"with a length", "chunked"} {
			p, c := plain[i][j], coalesced[i][j]
			if c > p || c < 1 {
				t.Errorf("%d bytes %s: %d writes coalesced, %d without", size, kind, c, p)
			}
		}
	}
	// The sizes that matter: net/http alone writes an answer of 5,000
	// bytes in two.
	if plain[7] != [2]int64{2, 2} || coalesced[7] != [2]int64{1, 1} {
		t.Errorf("5,000 bytes: %v writes coalesced, %v without; want [1 1] and [2 2]", coalesced[7], plain[7])
	}
	// TLS connections are left alone.
	if plain, coalesced := writes(false, true), writes(true, true); !slices.Equal(plain, coalesced) {
		t.Errorf("TLS: %v writes coalesced, %v without; want the same", coalesced, plain)
	}
}

// TestCoalesceCloseStopsWrite: closing a connection whose write blocks
// (a client that does not read, no write deadline) ends the write at
// once, as without CoalesceWrites.
func TestCoalesceCloseStopsWrite(t *testing.T) {
	writing := make(chan struct{})
	done := make(chan error, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(writing)
		chunk := make([]byte, 64<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	})}
	go hs.Serve(Wrap(ln, hs, Config{CoalesceWrites: true}))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: test\r\n\r\n")
	<-writing
	time.Sleep(200 * time.Millisecond) // the socket's buffers fill; the write blocks
	closed := make(chan struct{})
	go func() { hs.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the server waits for a blocked write")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the blocked write did not end when its connection closed")
	}
}
