// Package trilliantest runs real Trillian servers on a real MariaDB or
// MySQL for tests: the tests of the Trillian backend and the end-to-end
// tests of govlogd on Trillian use it. It is test support, not for
// production code.
//
// It builds trillian_log_server and trillian_log_signer from the Trillian
// version the module requires (go install keeps them up to date in
// .trillian/bin of the module, or in $GOVLOG_TRILLIAN_BIN), creates a
// database with a random name and Trillian's schema, and starts both
// servers on free loopback ports with the flags govlog recommends
// (--storage_system=mysql --quota_system=noop, one signer with
// --force_master and a short --sequencer_interval).
//
// The MySQL server is 127.0.0.1:3306, user root without password, unless
// $GOVLOG_TEST_MYSQL names another (a go-sql-driver DSN without database,
// e.g. "user:pw@tcp(host:3306)/"). When it is unreachable, tests that need
// it are skipped, loudly, or fail when $GOVLOG_REQUIRE_MARIADB is set (CI).
package trilliantest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/govlog/govlog/internal/freeport"
)

// Environment variables the package reads.
const (
	// RequireEnv, when set, turns an unreachable MySQL server into a test
	// failure instead of a skip.
	RequireEnv = "GOVLOG_REQUIRE_MARIADB"
	// MySQLEnv names the MySQL server: a DSN without database.
	MySQLEnv = "GOVLOG_TEST_MYSQL"
	// BinEnv names the directory the Trillian binaries are installed into.
	BinEnv = "GOVLOG_TRILLIAN_BIN"
)

// DefaultServerDSN is the MySQL server used when $GOVLOG_TEST_MYSQL is
// not set.
const DefaultServerDSN = "root@tcp(127.0.0.1:3306)/"

// Signer settings of the test servers. Every Append waits for the signer,
// so it integrates often.
const (
	DefaultSequencerInterval = 20 * time.Millisecond
	DefaultBatchSize         = 1000
	DefaultNumSequencers     = 4
)

// Options tunes trillian_log_signer. The zero value of each field selects
// the default named in its comment.
type Options struct {
	// SequencerInterval is --sequencer_interval. Default
	// DefaultSequencerInterval.
	SequencerInterval time.Duration
	// BatchSize is --batch_size. Default DefaultBatchSize.
	BatchSize int
	// NumSequencers is --num_sequencers. Default DefaultNumSequencers.
	NumSequencers int
}

// ServerDSN is the MySQL server the tests use, without a database.
func ServerDSN() string {
	if dsn := os.Getenv(MySQLEnv); dsn != "" {
		return dsn
	}
	return DefaultServerDSN
}

// Ping checks that the MySQL server of dsn answers within 3 seconds.
func Ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", dsn, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("MariaDB/MySQL is not reachable at %s: %w", dsn, err)
	}
	return nil
}

// Skip skips t loudly because MySQL is not available (reason), or fails
// it when $GOVLOG_REQUIRE_MARIADB is set.
func Skip(t testing.TB, reason error) {
	t.Helper()
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s is set, but the tests that need Trillian cannot run: %v", RequireEnv, reason)
	}
	t.Skipf("\n\n*** SKIPPING A TEST THAT NEEDS TRILLIAN: %v ***\n"+
		"*** Start MariaDB on 127.0.0.1:3306 (root, no password) to run it; CI sets %s=1 to make this a failure. ***\n", reason, RequireEnv)
}

// Build installs the Trillian servers of the version go.mod requires into
// .trillian/bin of the module, or $GOVLOG_TRILLIAN_BIN (go install skips
// binaries that are up to date), and returns that directory.
func Build(ctx context.Context) (string, time.Duration, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", 0, fmt.Errorf("failed to find the go command: %w", err)
	}
	out, err := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Version}}", "github.com/google/trillian").Output()
	if err != nil {
		return "", 0, fmt.Errorf("failed to read Trillian's version from go.mod: %w", err)
	}
	version := strings.TrimSpace(string(out))
	bin := os.Getenv(BinEnv)
	if bin == "" {
		gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" {
			return "", 0, fmt.Errorf("failed to find the module root: %w", err)
		}
		bin = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), ".trillian", "bin")
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

// CreateDatabase creates a database with a random name on the server of
// serverDSN and loads Trillian's schema into it. It returns the DSN of the
// new database and its name (set even when loading the schema failed, so
// that the caller can drop it).
func CreateDatabase(ctx context.Context, serverDSN string) (dsn, name string, err error) {
	var suffix [6]byte
	rand.Read(suffix[:])
	name = "govlog_test_" + hex.EncodeToString(suffix[:])
	root, err := sql.Open("mysql", serverDSN)
	if err != nil {
		return "", "", err
	}
	defer root.Close()
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("failed to create database %s: %w", name, err)
	}
	cfg, err := mysql.ParseDSN(serverDSN)
	if err != nil {
		return "", name, err
	}
	cfg.DBName = name
	if err := loadSchema(ctx, cfg); err != nil {
		return "", name, err
	}
	return cfg.FormatDSN(), name, nil
}

// DropDatabase drops a database CreateDatabase made.
func DropDatabase(serverDSN, name string) error {
	db, err := sql.Open("mysql", serverDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
		return fmt.Errorf("failed to drop database %s: %w", name, err)
	}
	return nil
}

// NewDatabase is CreateDatabase for one test: the database is dropped
// when the test ends.
func NewDatabase(t testing.TB, serverDSN string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, name, err := CreateDatabase(ctx, serverDSN)
	if name != "" {
		t.Cleanup(func() {
			if err := DropDatabase(serverDSN, name); err != nil {
				t.Error(err)
			}
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// loadSchema loads storage/mysql/schema/storage.sql of the Trillian
// module into the database of cfg.
func loadSchema(ctx context.Context, cfg *mysql.Config) error {
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

// Servers is one trillian_log_server and one trillian_log_signer on one
// database. Their addresses stay the same across restarts.
type Servers struct {
	// LogRPC is the gRPC address of trillian_log_server (log and admin
	// API); LogHTTP its /healthz and /metrics.
	LogRPC, LogHTTP string
	// SignerRPC and SignerHTTP are trillian_log_signer's.
	SignerRPC, SignerHTTP string
	// DSN is the database both use.
	DSN string

	bin, dir string
	opts     Options

	mu     sync.Mutex
	server *exec.Cmd
	signer *exec.Cmd
}

// CPU is the CPU time (user and system) the running trillian_log_server
// and trillian_log_signer used so far, for benchmarks: read from /proc on
// Linux, 0 elsewhere. A server restarted since starts again from 0.
func (s *Servers) CPU() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum time.Duration
	for _, cmd := range []*exec.Cmd{s.server, s.signer} {
		if cmd != nil && cmd.Process != nil {
			sum += cpuTime(cmd.Process.Pid)
		}
	}
	return sum
}

// StartServers starts both servers on free loopback ports, with the
// binaries in bin, on the database of dsn, and waits until they are
// healthy. Their logs go to a temporary directory that Stop removes.
func StartServers(bin, dsn string, opts Options) (*Servers, error) {
	if opts.SequencerInterval <= 0 {
		opts.SequencerInterval = DefaultSequencerInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.NumSequencers <= 0 {
		opts.NumSequencers = DefaultNumSequencers
	}
	dir, err := os.MkdirTemp("", "govlog-trillian-")
	if err != nil {
		return nil, err
	}
	s := &Servers{DSN: dsn, bin: bin, dir: dir, opts: opts}
	addrs, err := freeport.Addrs(4)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.LogRPC, s.LogHTTP, s.SignerRPC, s.SignerHTTP = addrs[0], addrs[1], addrs[2], addrs[3]
	if err := s.StartServer(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.StartSigner(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Servers) start(name string, args ...string) (*exec.Cmd, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	common := []string{"--storage_system=mysql", "--mysql_uri=" + s.DSN, "--quota_system=noop"}
	cmd := exec.Command(filepath.Join(s.bin, name), append(common, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	return cmd, nil
}

// StartServer starts trillian_log_server (again) and waits until it is
// healthy.
func (s *Servers) StartServer() error {
	cmd, err := s.start("trillian_log_server", "--rpc_endpoint="+s.LogRPC, "--http_endpoint="+s.LogHTTP)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.server = cmd
	s.mu.Unlock()
	return s.healthy("trillian_log_server", s.LogHTTP)
}

// StartSigner starts trillian_log_signer (again) and waits until it is
// healthy.
func (s *Servers) StartSigner() error {
	cmd, err := s.start("trillian_log_signer", "--rpc_endpoint="+s.SignerRPC, "--http_endpoint="+s.SignerHTTP,
		"--force_master", "--sequencer_interval="+s.opts.SequencerInterval.String(),
		"--batch_size="+strconv.Itoa(s.opts.BatchSize), "--num_sequencers="+strconv.Itoa(s.opts.NumSequencers),
		"--pre_election_pause=10ms")
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.signer = cmd
	s.mu.Unlock()
	return s.healthy("trillian_log_signer", s.SignerHTTP)
}

func (s *Servers) healthy(name, addr string) error {
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
	return fmt.Errorf("%s at %s is not healthy after 30s; its log:\n%s", name, addr, s.Log(name, 3000))
}

// Log returns the last n bytes of the output of a server ("trillian_log_server"
// or "trillian_log_signer").
func (s *Servers) Log(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// kill stops a server at once: SIGKILL, since the servers wait 5s after
// SIGTERM.
func kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// KillServer kills trillian_log_server.
func (s *Servers) KillServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.server)
	s.server = nil
}

// KillSigner kills trillian_log_signer.
func (s *Servers) KillSigner() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kill(s.signer)
	s.signer = nil
}

// Stop kills both servers and removes their logs.
func (s *Servers) Stop() {
	s.KillSigner()
	s.KillServer()
	os.RemoveAll(s.dir)
}

// Env is Trillian ready for tests: the binaries, a database and both
// servers on it.
type Env struct {
	// Bin is the directory of the Trillian binaries.
	Bin string
	// ServerDSN is the MySQL server, without database.
	ServerDSN string
	// DSN is the database of the servers.
	DSN string
	// Servers are the running servers.
	Servers *Servers
	// BuildTook is how long building (or checking) the binaries took.
	BuildTook time.Duration

	dbName string
}

// Setup prepares an Env for a whole test binary (from TestMain): skip is
// set when MySQL is unreachable (the tests should then call Skip), err
// when setting up failed. The caller calls Teardown at the end, also when
// skip or err is set.
func Setup(ctx context.Context, opts Options) (e *Env, skip, err error) {
	e = &Env{ServerDSN: ServerDSN()}
	if err := Ping(ctx, e.ServerDSN); err != nil {
		return e, err, nil
	}
	if e.Bin, e.BuildTook, err = Build(ctx); err != nil {
		return e, nil, err
	}
	if e.DSN, e.dbName, err = CreateDatabase(ctx, e.ServerDSN); err != nil {
		return e, nil, err
	}
	if e.Servers, err = StartServers(e.Bin, e.DSN, opts); err != nil {
		return e, nil, err
	}
	return e, nil, nil
}

// Teardown stops the servers and drops the database.
func (e *Env) Teardown() {
	if e.Servers != nil {
		e.Servers.Stop()
	}
	if e.dbName != "" {
		if err := DropDatabase(e.ServerDSN, e.dbName); err != nil {
			fmt.Fprintf(os.Stderr, "trilliantest: %v\n", err)
		}
	}
}

// Start prepares an Env for one test, torn down when the test ends. It
// skips the test (loudly) when MySQL is unreachable, or fails it when
// $GOVLOG_REQUIRE_MARIADB is set.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, skip, err := Setup(ctx, opts)
	t.Cleanup(e.Teardown)
	if skip != nil {
		Skip(t, skip)
	}
	if err != nil {
		t.Fatalf("failed to set up Trillian: %v", err)
	}
	return e
}
