package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A worker's requests go over a connection of its own, written by hand and
// read with http.ReadResponse, instead of through an http.Client: the
// Transport hands every request between three goroutines (the caller's and
// the connection's read and write loops), which cost the generator about
// as much CPU as the rest of a single decision's work together, on the same
// cores as the server it measures (docs/performance-log.md, *The load
// generator's connections*).

// endpoint is where the workers connect: the server's address and what
// goes in front of every request path.
type endpoint struct {
	addr    string      // host:port
	base    string      // the URL's path, without a trailing slash
	tls     *tls.Config // nil for http
	headers string      // the headers every request carries
}

// newEndpoint parses the server's URL (https: the system's roots).
func newEndpoint(rawURL, token string) (*endpoint, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: URL: %w", err)
	}
	if u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("loadgen: URL %q: want http(s)://host[:port][/path]", rawURL)
	}
	if strings.ContainsAny(token, "\r\n\x00") {
		return nil, errors.New("loadgen: the token has a line break or NUL")
	}
	e := &endpoint{addr: u.Host, base: strings.TrimSuffix(u.EscapedPath(), "/")}
	if u.Port() == "" {
		e.addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	if u.Scheme == "https" {
		e.tls = &tls.Config{ServerName: u.Hostname()}
	}
	e.headers = "Host: " + u.Host + "\r\nUser-Agent: govlog-bench\r\n"
	if token != "" {
		e.headers += "Authorization: Bearer " + token + "\r\n"
	}
	return e, nil
}

// conn is one worker's keep-alive HTTP/1.1 connection. It is redialled
// after the server closes it. A request takes at most timeout, and ends
// when ctx does.
type conn struct {
	e       *endpoint
	ctx     context.Context
	timeout time.Duration
	nc      net.Conn
	br      *bufio.Reader
	limit   int64       // the most of an answer's body read (0: all); past it nc is closed
	stop    func() bool // ends the cancellation of nc by ctx
	used    bool        // nc has carried an answer
	req     []byte      // the request being written
}

func (e *endpoint) conn(ctx context.Context, timeout time.Duration) *conn {
	return &conn{e: e, ctx: ctx, timeout: timeout}
}

func (c *conn) dial() error {
	d := net.Dialer{Timeout: 10 * time.Second}
	var nc net.Conn
	var err error
	if c.e.tls != nil {
		nc, err = (&tls.Dialer{NetDialer: &d, Config: c.e.tls}).DialContext(c.ctx, "tcp", c.e.addr)
	} else {
		nc, err = d.DialContext(c.ctx, "tcp", c.e.addr)
	}
	if err != nil {
		return err
	}
	c.nc, c.used = nc, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	// A run that is cancelled ends the request being read.
	c.stop = context.AfterFunc(c.ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// close closes the connection; the next request dials a new one.
func (c *conn) close() {
	if c.nc != nil {
		c.stop()
		c.nc.Close()
		c.nc = nil
	}
}

// get returns the body of a 200 answer to GET path, read into *buf.
func (c *conn) get(path string, buf *[]byte) ([]byte, error) {
	status, body, err := c.do(http.MethodGet, path, nil, buf)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, errorCode(status, body))
	}
	return body, nil
}

// do sends a request (a body only with POST) and returns the answer's
// status and body, read into *buf (its capacity kept for the next
// answer). A request that finds its reused connection closed by the server
// before any answer is sent again once on a new one: every request of the
// generator is safe to repeat (a decision or a report resubmitted with the
// same id gets the receipt of the first).
func (c *conn) do(method, path string, body []byte, buf *[]byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		if c.nc == nil {
			if err := c.dial(); err != nil {
				return 0, nil, err
			}
		}
		reused := c.used
		status, b, err := c.roundTrip(method, path, body, buf)
		if err == nil {
			return status, b, nil
		}
		c.close()
		if !reused || attempt > 0 || c.ctx.Err() != nil || !closedByPeer(err) {
			return 0, nil, err
		}
	}
}

func (c *conn) roundTrip(method, path string, body []byte, buf *[]byte) (int, []byte, error) {
	r := append(c.req[:0], method...)
	r = append(append(append(append(r, ' '), c.e.base...), path...), " HTTP/1.1\r\n"...)
	r = append(r, c.e.headers...)
	if method == http.MethodPost {
		r = append(r, "Content-Type: application/json\r\nContent-Length: "...)
		r = append(strconv.AppendInt(r, int64(len(body)), 10), "\r\n"...)
	}
	r = append(append(r, "\r\n"...), body...)
	c.req = r
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, nil, err
	}
	if err := c.ctx.Err(); err != nil { // before the deadline was set: not after
		return 0, nil, err
	}
	if _, err := c.nc.Write(r); err != nil {
		return 0, nil, err
	}
	// Closed without a byte of an answer, io.EOF here, is what a request
	// may be sent again for (ReadResponse would make it unexpected).
	if _, err := c.br.Peek(1); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, err
	}
	b, err := readBody(resp, c.limit, buf)
	if c.limit > 0 && int64(len(b)) == c.limit {
		c.close() // before Close, which would read the rest of the body
	}
	resp.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	c.used = true
	if resp.Close {
		c.close()
	}
	return resp.StatusCode, b, nil
}

// closedByPeer reports whether err is the server having closed the
// connection before answering.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
