// Package connlimit bounds the connections an HTTP server serves, so that
// clients that open connections and hold them idle cannot starve the
// others. Wrap a listener and the server that serves it:
//
//   - at most Config.Max connections are served at once; more wait in the
//     kernel's accept queue (netutil.LimitListener);
//   - at most Config.PerAddr of them come from one client address (an
//     IPv4 address, or an IPv6 /64 network: one host has many of those
//     addresses); more are closed as soon as they are accepted;
//   - while more than half of Max are open, a connection idle for longer
//     than Config.IdleUnderPressure — between two requests, or before its
//     first — is closed, whatever the server's own idle timeout. A
//     connection serving a request is never closed.
//
// A legitimate client loses at most an idle keep-alive connection under
// pressure (HTTP clients open another one); an address that holds its cap
// of idle connections leaves the rest of the budget to everyone else.
//
// With Config.CoalesceWrites, the connections also send each HTTP/1.x
// answer larger than net/http's connection buffer in one write instead of
// two (see there).
package connlimit

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/netutil"
)

// Config configures Wrap. The zero value of each field selects the
// default named in its comment.
type Config struct {
	// Max bounds the connections served at once. Default 0: unbounded
	// (and no pressure).
	Max int
	// PerAddr bounds the connections of one client address. Default 0:
	// unbounded.
	PerAddr int
	// IdleUnderPressure is how long a connection may stay idle while more
	// than half of Max are open. Default DefaultIdleUnderPressure.
	IdleUnderPressure time.Duration
	// Logger receives a line when connections are refused over PerAddr, at
	// most one every logEvery. Default: discard.
	Logger *slog.Logger
	// CoalesceWrites sends an answer that overflows net/http's 4 KiB
	// connection buffer in one write(2) where net/http makes two: the
	// buffer's first 4 KiB, then the rest when the answer is finished.
	// While a plaintext HTTP/1.x connection serves a request, a write of
	// exactly the buffer's size is held, then sent with the next write, or
	// on its own before the connection's write deadline changes (net/http
	// clears it as soon as an answer is finished), when the request ends
	// or when the connection closes. One system call, one TCP segment and
	// one wakeup of the client fewer for every such answer.
	//
	// For servers whose handlers do not stream: a handler that flushes
	// when exactly 4 KiB are buffered, then waits, has those bytes sent
	// at its next write or at the end of its answer. TLS connections and
	// HTTP/2 are left alone. Default false.
	CoalesceWrites bool
}

// DefaultIdleUnderPressure is Config.IdleUnderPressure when unset.
const DefaultIdleUnderPressure = 5 * time.Second

// logEvery is the least time between two log lines about refusals.
const logEvery = 10 * time.Second

// Wrap returns a listener that applies cfg to the connections of ln, and
// sets hs.ConnState (calling the one set before, if any) to follow which
// of them are idle. Serve hs on the listener Wrap returns; closing it
// stops the watch on idle connections.
func Wrap(ln net.Listener, hs *http.Server, cfg Config) net.Listener {
	if cfg.IdleUnderPressure <= 0 {
		cfg.IdleUnderPressure = DefaultIdleUnderPressure
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Max > 0 {
		ln = netutil.LimitListener(ln, cfg.Max)
	}
	l := &listener{Listener: ln, cfg: cfg, done: make(chan struct{}),
		conns: map[*conn]struct{}{}, perAddr: map[string]int{}}
	next := hs.ConnState
	hs.ConnState = func(c net.Conn, state http.ConnState) {
		l.connState(c, state)
		if next != nil {
			next(c, state)
		}
	}
	if cfg.Max > 0 {
		go l.sweep()
	}
	return l
}

type listener struct {
	net.Listener
	cfg       Config
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu      sync.Mutex
	conns   map[*conn]struct{} // guarded by mu: the open connections
	perAddr map[string]int     // guarded by mu: open connections by client address
	refused int                // guarded by mu: refusals not logged yet
	logged  time.Time          // guarded by mu: when refusals were last logged
}

// conn is an accepted connection.
type conn struct {
	net.Conn
	l         *listener
	addr      string
	closeOnce sync.Once
	// idleSince, guarded by l.mu, is when the connection last became idle;
	// zero while it serves a request.
	idleSince time.Time

	// coalesce is Config.CoalesceWrites; wmu guards the fields after it.
	coalesce bool
	wmu      sync.Mutex
	active   bool    // serving a plaintext HTTP/1.x request
	held     *[]byte // a full buffer written, not sent yet
	werr     error   // the failure of sending held bytes outside Write
}

// httpBuffer is the size of net/http's buffer of a connection's writes:
// an answer that overflows it is written 4 KiB first.
const httpBuffer = 4 << 10

// heldPool holds the buffers of held writes: the buffer's 4 KiB and the
// rest of an answer up to as much again.
var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, 2*httpBuffer); return &b }}

// Write writes p, or with Config.CoalesceWrites holds it (see there).
func (c *conn) Write(p []byte) (int, error) {
	if !c.coalesce {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if h := c.held; h != nil && len(p) <= cap(*h)-len(*h) {
		// p joins the held bytes: one write for both.
		*h = append(*h, p...)
		if err := c.release(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := c.release(); err != nil {
		return 0, err
	}
	if c.active && len(p) == httpBuffer {
		h := heldPool.Get().(*[]byte)
		*h = append(*h, p...)
		c.held = h
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// release sends the held bytes, if any. The caller holds c.wmu. After a
// failure every write fails with it.
func (c *conn) release() error {
	h := c.held
	if h == nil {
		return nil
	}
	c.held = nil
	_, err := c.Conn.Write(*h)
	*h = (*h)[:0]
	heldPool.Put(h)
	if err != nil {
		c.werr = err
	}
	return err
}

// releaseOrClose sends the held bytes, if any, on behalf of a caller that
// cannot report a failure: it closes the connection instead, as net/http
// does when a write fails. The caller holds c.wmu.
func (c *conn) releaseOrClose() {
	if c.release() != nil {
		c.Conn.Close()
	}
}

// releaseOutside is releaseOrClose for a caller that does not hold c.wmu.
func (c *conn) releaseOutside() {
	if !c.coalesce {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.releaseOrClose()
}

// SetWriteDeadline sends the held bytes, if any, under the deadline they
// were written with, then sets the new one.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.releaseOutside()
	return c.Conn.SetWriteDeadline(t)
}

// SetDeadline: as SetWriteDeadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.releaseOutside()
	return c.Conn.SetDeadline(t)
}

// Accept accepts the next connection within the bounds.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := clientAddr(c.RemoteAddr())
		now := time.Now()
		l.mu.Lock()
		if l.cfg.PerAddr > 0 && l.perAddr[addr] >= l.cfg.PerAddr {
			l.refused++
			if now.Sub(l.logged) >= logEvery {
				l.cfg.Logger.Warn("closed connections at once: their client address holds its cap of connections",
					"addr", addr, "cap", l.cfg.PerAddr, "closed", l.refused)
				l.refused, l.logged = 0, now
			}
			l.mu.Unlock()
			c.Close()
			continue
		}
		// A new connection is idle until its first request.
		tc := &conn{Conn: c, l: l, addr: addr, idleSince: now, coalesce: l.cfg.CoalesceWrites}
		l.conns[tc] = struct{}{}
		l.perAddr[addr]++
		l.mu.Unlock()
		return tc, nil
	}
}

// Close closes the listener and stops the watch on idle connections.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Close closes the connection and gives its place back.
func (c *conn) Close() error {
	// Held bytes go first, unless a write is under way: then they are
	// its own, and closing is what stops a write that blocks.
	if c.coalesce && c.wmu.TryLock() {
		c.release()
		c.wmu.Unlock()
	}
	c.closeOnce.Do(func() {
		l := c.l
		l.mu.Lock()
		delete(l.conns, c)
		if l.perAddr[c.addr]--; l.perAddr[c.addr] <= 0 {
			delete(l.perAddr, c.addr)
		}
		l.mu.Unlock()
	})
	return c.Conn.Close()
}

// connState follows the idleness of the connections of l.
func (l *listener) connState(nc net.Conn, state http.ConnState) {
	tc, isTLS := nc.(*tls.Conn)
	if isTLS {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok || c.l != l {
		return
	}
	if c.coalesce {
		c.wmu.Lock()
		c.active = state == http.StateActive && !isTLS
		c.releaseOrClose()
		c.wmu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateActive:
		c.idleSince = time.Time{}
	case http.StateIdle:
		c.idleSince = time.Now()
	}
}

// sweep closes the connections idle for longer than IdleUnderPressure
// while more than half of Max are open, until l is closed.
func (l *listener) sweep() {
	tick := time.NewTicker(max(l.cfg.IdleUnderPressure/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		var now time.Time
		select {
		case <-l.done:
			return
		case now = <-tick.C:
		}
		var idle []*conn
		l.mu.Lock()
		if 2*len(l.conns) > l.cfg.Max {
			for c := range l.conns {
				if !c.idleSince.IsZero() && now.Sub(c.idleSince) >= l.cfg.IdleUnderPressure {
					idle = append(idle, c)
				}
			}
		}
		l.mu.Unlock()
		for _, c := range idle {
			c.Close()
		}
	}
}

// clientAddr is the address a connection counts against: its IPv4
// address, or the /64 network of its IPv6 address.
func clientAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return (&net.IPNet{IP: tcp.IP.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
