package trillian

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/trillian"
	"google.golang.org/grpc"

	"github.com/govlog/govlog/log/trillian/trilliantest"
)

// The tests run against real Trillian servers on a real MariaDB/MySQL,
// prepared by trilliantest: TestMain builds the servers, creates a
// database with a random name and Trillian's schema, starts both servers
// on free loopback ports, and drops the database at the end. When MySQL is
// unreachable the tests are skipped, loudly, or fail when
// GOVLOG_REQUIRE_MARIADB is set (CI).

// testPollInterval is how often the tests' Backends read the tree head.
const testPollInterval = 5 * time.Millisecond

// testEnv is the state TestMain prepares for every test.
type testEnv struct {
	*trilliantest.Env
	// skip is why the tests cannot run (no database); err is a setup
	// failure.
	skip, err error
	conn      *grpc.ClientConn // to the log server
}

var env testEnv // set by TestMain only, read by the tests

func TestMain(m *testing.M) {
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		env.Env, env.skip, env.err = trilliantest.Setup(ctx, trilliantest.Options{})
		cancel()
		defer env.Env.Teardown()
		if env.skip == nil && env.err == nil {
			fmt.Fprintf(os.Stderr, "trillian tests: Trillian binaries ready in %s (%v)\n", env.Bin, env.BuildTook.Round(time.Millisecond))
			env.conn, env.err = dial(env.Servers.LogRPC)
		}
		if env.conn != nil {
			defer env.conn.Close()
		}
		return m.Run()
	}()
	os.Exit(code)
}

// need returns the environment, or skips (loudly) or fails the test.
func need(t testing.TB) *testEnv {
	t.Helper()
	if env.skip != nil {
		trilliantest.Skip(t, env.skip)
	}
	if env.err != nil {
		t.Fatalf("failed to set up Trillian for the tests: %v", env.err)
	}
	return &env
}

// newDatabase creates a database with Trillian's schema for one test.
func (e *testEnv) newDatabase(t testing.TB) string {
	t.Helper()
	return trilliantest.NewDatabase(t, e.ServerDSN)
}

// newTree creates a log tree on the shared servers; it is deleted (so the
// signer stops visiting it) when the test ends.
func (e *testEnv) newTree(t testing.TB) int64 {
	t.Helper()
	return newTreeOn(t, e.conn)
}

func newTreeOn(t testing.TB, conn *grpc.ClientConn) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := createTree(ctx, conn, "govlog-test")
	if err != nil {
		t.Fatalf("CreateTree: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := trillian.NewTrillianAdminClient(conn).DeleteTree(ctx, &trillian.DeleteTreeRequest{TreeId: id})
		if err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Logf("DeleteTree(%d): %v", id, err)
		}
	})
	return id
}

// open opens a Backend on a tree of the shared servers. The caller closes
// it (the conformance suite does).
func (e *testEnv) open(t testing.TB, tree int64, tweak ...func(*Config)) *Backend {
	t.Helper()
	cfg := Config{Addr: e.Servers.LogRPC, TreeID: tree, DSN: e.DSN, PollInterval: testPollInterval}
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open(tree %d): %v", tree, err)
	}
	return b
}

// proxy is a TCP proxy whose link can be cut and restored: the database as
// seen by a Backend, made unreachable on demand. It keeps its listener
// while cut (a connection is closed as soon as it is accepted), so that no
// other process can take its port before it is restored.
type proxy struct {
	addr, upstream string
	l              net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String(), upstream: upstream, l: l, conns: make(map[net.Conn]bool)}
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.down { // cut meanwhile
				p.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(up, c) })
			p.wg.Go(func() { pipe(c, up) })
		}
	})
	t.Cleanup(func() {
		p.cut()
		l.Close()
		p.wg.Wait()
	})
	return p
}

// cut closes every connection, and each new one as soon as it is accepted.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore lets connections through again.
func (p *proxy) restore(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
