package trillian

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/trillian"
	"google.golang.org/grpc"
)

// The tests run against real Trillian servers on a real MariaDB/MySQL:
// TestMain builds trillian_log_server and trillian_log_signer from the
// Trillian version in go.mod (once; go install keeps them up to date in
// .trillian/bin of the module), creates a database with a random name and
// Trillian's schema, starts both servers on free loopback ports, and drops
// the database at the end.
//
// The server is at 127.0.0.1:3306, user root without password, unless
// GOVLOG_TEST_MYSQL names another (a go-sql-driver DSN without database,
// e.g. "user:pw@tcp(host:3306)/"). When it is unreachable the tests are
// skipped, loudly, or fail when GOVLOG_REQUIRE_MARIADB is set (CI).

// requireEnv is the environment variable that turns a missing MariaDB into
// a test failure.
const requireEnv = "GOVLOG_REQUIRE_MARIADB"

// Signer settings of the test servers: integrate fast.
const (
	testSequencerInterval = "20ms"
	testPollInterval      = 5 * time.Millisecond
)

// testEnv is the state TestMain prepares for every test.
type testEnv struct {
	// skip is why the tests cannot run (no database); err is a setup
	// failure.
	skip error
	err  error

	bin       string // directory of the Trillian binaries
	serverDSN string // the MySQL server, without database
	dbName    string
	dsn       string // the test database
	servers   *servers
	conn      *grpc.ClientConn // to servers' log server
	buildTook time.Duration
}

var env testEnv // set by TestMain only, read by the tests

func TestMain(m *testing.M) {
	code := func() int {
		defer env.teardown()
		env.setup()
		return m.Run()
	}()
	os.Exit(code)
}

func (e *testEnv) setup() {
	e.serverDSN = os.Getenv("GOVLOG_TEST_MYSQL")
	if e.serverDSN == "" {
		e.serverDSN = "root@tcp(127.0.0.1:3306)/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := sql.Open("mysql", e.serverDSN)
	if err != nil {
		e.err = err
		return
	}
	defer root.Close()
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if err := root.PingContext(pctx); err != nil {
		e.skip = fmt.Errorf("MariaDB/MySQL is not reachable at %s: %w", e.serverDSN, err)
		return
	}
	if e.bin, e.buildTook, e.err = buildTrillian(ctx); e.err != nil {
		return
	}
	fmt.Fprintf(os.Stderr, "trillian tests: Trillian binaries ready in %s (%v)\n", e.bin, e.buildTook.Round(time.Millisecond))

	if e.dsn, e.dbName, e.err = e.createDatabase(ctx, root); e.err != nil {
		return
	}
	if e.servers, e.err = startServers(e.bin, e.dsn); e.err != nil {
		return
	}
	e.conn, e.err = dial(e.servers.logRPC)
}

func (e *testEnv) teardown() {
	if e.conn != nil {
		e.conn.Close()
	}
	if e.servers != nil {
		e.servers.stop()
	}
	if e.dbName != "" {
		if db, err := sql.Open("mysql", e.serverDSN); err == nil {
			if _, err := db.Exec("DROP DATABASE IF EXISTS " + e.dbName); err != nil {
				fmt.Fprintf(os.Stderr, "trillian tests: failed to drop database %s: %v\n", e.dbName, err)
			}
			db.Close()
		}
	}
}

// createDatabase creates a database with a random name and loads
// Trillian's schema into it.
func (e *testEnv) createDatabase(ctx context.Context, root *sql.DB) (dsn, name string, err error) {
	var suffix [6]byte
	rand.Read(suffix[:])
	name = "govlog_test_" + hex.EncodeToString(suffix[:])
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", err
	}
	cfg, err := mysql.ParseDSN(e.serverDSN)
	if err != nil {
		return "", name, err
	}
	cfg.DBName = name
	if err := loadTrillianSchema(ctx, cfg); err != nil {
		return "", name, err
	}
	return cfg.FormatDSN(), name, nil
}

// newDatabase is createDatabase for one test: the database is dropped when
// the test ends.
func (e *testEnv) newDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root, err := sql.Open("mysql", e.serverDSN)
	if err != nil {
		t.Fatal(err)
	}
	dsn, name, err := e.createDatabase(ctx, root)
	t.Cleanup(func() {
		if name != "" {
			if _, err := root.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
				t.Errorf("failed to drop database %s: %v", name, err)
			}
		}
		root.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// need returns the environment, or skips (loudly) or fails the test.
func need(t *testing.T) *testEnv {
	t.Helper()
	if env.skip != nil {
		if os.Getenv(requireEnv) != "" {
			t.Fatalf("%s is set, but the Trillian backend tests cannot run: %v", requireEnv, env.skip)
		}
		t.Skipf("\n\n*** SKIPPING THE TRILLIAN BACKEND TESTS: %v ***\n"+
			"*** Start MariaDB on 127.0.0.1:3306 (root, no password) to run them; CI sets %s=1 to make this a failure. ***\n", env.skip, requireEnv)
	}
	if env.err != nil {
		t.Fatalf("failed to set up Trillian for the tests: %v", env.err)
	}
	return &env
}

// buildTrillian installs the Trillian servers of the version go.mod
// requires into .trillian/bin of the module (go install skips binaries
// that are up to date).
func buildTrillian(ctx context.Context) (string, time.Duration, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", 0, fmt.Errorf("failed to find the go command: %w", err)
	}
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Version}}", "github.com/google/trillian").Output()
	if err != nil {
		return "", 0, fmt.Errorf("failed to read Trillian's version from go.mod: %w", err)
	}
	version := strings.TrimSpace(string(out))
	gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" {
		return "", 0, fmt.Errorf("failed to find the module root: %v", err)
	}
	bin := filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), ".trillian", "bin")
	if dir := os.Getenv("GOVLOG_TRILLIAN_BIN"); dir != "" {
		bin = dir
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", "-tags=mysql,etcd",
		"github.com/google/trillian/cmd/trillian_log_server@"+version,
		"github.com/google/trillian/cmd/trillian_log_signer@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("failed to build Trillian %s: %w\n%s", version, err, out)
	}
	return bin, time.Since(start), nil
}

// loadTrillianSchema loads storage/mysql/schema/storage.sql of the Trillian
// module into the database of cfg.
func loadTrillianSchema(ctx context.Context, cfg *mysql.Config) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
	if err != nil {
		return fmt.Errorf("failed to find the Trillian module: %w", err)
	}
	schema, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "storage", "mysql", "schema", "storage.sql"))
	if err != nil {
		return fmt.Errorf("failed to read Trillian's schema: %w", err)
	}
	c := cfg.Clone()
	c.MultiStatements = true
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, string(schema)); err != nil {
		return fmt.Errorf("failed to load Trillian's schema: %w", err)
	}
	return nil
}

// servers is one trillian_log_server and one trillian_log_signer.
type servers struct {
	bin, dsn, dir                    string
	logRPC, logHTTP, sigRPC, sigHTTP string

	mu     sync.Mutex
	server *exec.Cmd
	signer *exec.Cmd
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startServers starts both servers on free loopback ports and waits until
// they are healthy.
func startServers(bin, dsn string) (*servers, error) {
	dir, err := os.MkdirTemp("", "govlog-trillian-")
	if err != nil {
		return nil, err
	}
	s := &servers{bin: bin, dsn: dsn, dir: dir}
	for _, a := range []*string{&s.logRPC, &s.logHTTP, &s.sigRPC, &s.sigHTTP} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if err := s.startServer(); err != nil {
		s.stop()
		return nil, err
	}
	if err := s.startSigner(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *servers) start(name string, args ...string) (*exec.Cmd, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	common := []string{"--storage_system=mysql", "--mysql_uri=" + s.dsn, "--quota_system=noop"}
	cmd := exec.Command(filepath.Join(s.bin, name), append(common, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	return cmd, nil
}

func (s *servers) startServer() error {
	cmd, err := s.start("trillian_log_server", "--rpc_endpoint="+s.logRPC, "--http_endpoint="+s.logHTTP)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.server = cmd
	s.mu.Unlock()
	return s.healthy("trillian_log_server", s.logHTTP)
}

func (s *servers) startSigner() error {
	cmd, err := s.start("trillian_log_signer", "--rpc_endpoint="+s.sigRPC, "--http_endpoint="+s.sigHTTP,
		"--force_master", "--sequencer_interval="+testSequencerInterval, "--batch_size=1000",
		"--num_sequencers=4", "--pre_election_pause=10ms")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.signer = cmd
	s.mu.Unlock()
	return s.healthy("trillian_log_signer", s.sigHTTP)
}

func (s *servers) healthy(name, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
	return fmt.Errorf("%s at %s is not healthy after 30s; its log:\n%s", name, addr, tail(logs, 3000))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// kill stops a server at once (SIGKILL: the servers wait 5s after SIGTERM).
func kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

func (s *servers) killServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.server)
	s.server = nil
}

func (s *servers) killSigner() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.signer)
	s.signer = nil
}

func (s *servers) stop() {
	s.killSigner()
	s.killServer()
	os.RemoveAll(s.dir)
}

// newTree creates a log tree on the shared servers; it is deleted (so the
// signer stops visiting it) when the test ends.
func (e *testEnv) newTree(t *testing.T) int64 {
	t.Helper()
	return newTreeOn(t, e.conn)
}

func newTreeOn(t *testing.T, conn *grpc.ClientConn) int64 {
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
func (e *testEnv) open(t *testing.T, tree int64, tweak ...func(*Config)) *Backend {
	t.Helper()
	cfg := Config{Addr: e.servers.logRPC, TreeID: tree, DSN: e.dsn, PollInterval: testPollInterval}
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
// seen by a Backend, made unreachable on demand.
type proxy struct {
	addr, upstream string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: l.Addr().String(), upstream: upstream, conns: make(map[net.Conn]bool)}
	p.serve(l)
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
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
}

// cut closes the listener and every connection: connecting is refused.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same address.
func (p *proxy) restore(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("failed to listen on %s again: %v", p.addr, err)
	}
	p.serve(l)
}
