package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/dirlock"
	"github.com/govlog/govlog/internal/keys"
)

// TestMain runs the test binary as govlogd when asked to, so that the
// tests can check the real exit status and output.
func TestMain(m *testing.M) {
	if os.Getenv("GOVLOGD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"192.168.1.10:8080", false},
		{"example.com:8080", false},
		{"localhost.example.com:8080", false},
		{"127.0.0.1", false},
		{"", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkLoopback(tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("checkLoopback(%q) = %v", tc.addr, err)
			}
		})
	}
}

// TestBinaryRefusesNonLoopback runs govlogd itself: a non-loopback
// --listen exits non-zero with a clear message, before creating anything.
func TestBinaryRefusesNonLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080"} {
		t.Run(listen, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			cmd := exec.Command(os.Args[0], "--listen", listen, "--data", data, "--origin", "example.com/log")
			cmd.Env = append(os.Environ(), "GOVLOGD_TEST_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("govlogd --listen %s: %v\n%s", listen, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "loopback") || !strings.Contains(stderr.String(), listen) {
				t.Errorf("message does not explain the refusal: %s", stderr.String())
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created: %v", err)
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "--no-such-flag")
		cmd.Env = append(os.Environ(), "GOVLOGD_TEST_MAIN=1")
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("unknown flag: %v", err)
		}
	})
}

func TestCLIValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"ttl fraction", []string{"--artifact-ttl", "1500ms"}, "whole number of seconds"},
		{"ttl short", []string{"--artifact-ttl", "500ms"}, "at least 1s"},
		{"ttl negative", []string{"--artifact-ttl", "-5s"}, "at least 1s"},
		{"origin space", []string{"--origin", "a b"}, "white space"},
		{"origin plus", []string{"--origin", "a+b"}, "'+'"},
		{"log format", []string{"--log-format", "xml"}, "log-format"},
		{"argument", []string{"extra"}, "usage"},
		{"negative batch", []string{"--max-batch", "-1"}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			args := append([]string{"--listen", "127.0.0.1:0", "--data", data}, tc.args...)
			err := cli(context.Background(), args, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
				t.Fatalf("cli(%q) = %v, output %q; want %q", tc.args, err, stderr.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created: %v", err)
			}
		})
	}
	if o := defaultOrigin(); keys.ValidName(o) != nil || !strings.HasSuffix(o, "/govlog") {
		t.Errorf("defaultOrigin() = %q", o)
	}
}

// started is a govlogd run in the test process.
type started struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, cfg Config) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	cfg.listening = func(a net.Addr) { addr <- a }
	s := &started{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- Run(ctx, cfg) }()
	select {
	case a := <-addr:
		s.url = "http://" + a.String()
	case err := <-s.done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("govlogd did not start")
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *started) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Run after shutdown: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("govlogd did not stop within 20s")
		}
	})
}

func testConfig(data string) Config {
	return Config{Listen: "127.0.0.1:0", DataDir: data, Origin: "example.com/govlogd-test"}
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestRun(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	cfg := testConfig(data)
	s := start(t, cfg)

	fi, err := os.Stat(data)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v %v", fi.Mode(), err)
	}
	for _, name := range []string{keys.SignerFile, keys.ArtifactFile} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v", name, err)
		}
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	decision := `{"id":"d-1","outcome":"allow","decided_at":"` + time.Now().UTC().Format(time.RFC3339) +
		`","subject":"agent-7","action":"deploy","policy":{"id":"p"}}`
	status, body := post(t, s.url+"/v1/decisions", decision)
	if status != http.StatusCreated || !bytes.Contains(body, []byte(`"artifact"`)) {
		t.Fatalf("POST: %d %s", status, body)
	}
	s.stop(t)

	// Restart on the same data: the same log, and the same receipt.
	s = start(t, cfg)
	status, again := post(t, s.url+"/v1/decisions", decision)
	if status != http.StatusOK || !bytes.Equal(again, body) {
		t.Fatalf("resubmission after restart: %d %s", status, again)
	}
	var info struct {
		TreeSize uint64 `json:"tree_size"`
	}
	resp, err = http.Get(s.url + "/v1/log")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.TreeSize != 2 { // the artifact key's entry, logged once, and the decision
		t.Errorf("tree size %d after restart", info.TreeSize)
	}
}

func TestRunRefuses(t *testing.T) {
	t.Run("other origin", func(t *testing.T) {
		data := t.TempDir()
		if err := keys.Generate(data, "example.com/other"); err != nil {
			t.Fatal(err)
		}
		err := Run(context.Background(), testConfig(data))
		if err == nil || !strings.Contains(err.Error(), `"example.com/other"`) {
			t.Fatalf("Run with another log's key: %v", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		data := t.TempDir()
		if err := keys.Generate(data, testConfig(data).Origin); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(data, keys.ArtifactFile)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		err := Run(context.Background(), testConfig(data))
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0644") {
			t.Fatalf("Run with a 0644 key: %v", err)
		}
		if _, err := os.Stat(filepath.Join(data, DBFile)); !os.IsNotExist(err) {
			t.Errorf("the database was created: %v", err)
		}
	})
	t.Run("partial keys", func(t *testing.T) {
		data := t.TempDir()
		if err := keys.Generate(data, testConfig(data).Origin); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(data, keys.SignerFile))
		if err := Run(context.Background(), testConfig(data)); err == nil || !strings.Contains(err.Error(), keys.SignerFile) {
			t.Fatalf("Run without log.key: %v", err)
		}
	})
	t.Run("database without keys", func(t *testing.T) {
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, DBFile), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Run(context.Background(), testConfig(data)); err == nil || !strings.Contains(err.Error(), "no keys") {
			t.Fatalf("Run on a database without keys: %v", err)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := testConfig(t.TempDir())
		cfg.Listen = ln.Addr().String()
		if err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Fatalf("Run on a busy port: %v", err)
		}
	})
}

// TestOrigin: the origin comes from the key when there is one; a new log
// gets the one given, or <hostname>/govlog; a contradicting one is refused.
func TestOrigin(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := keys.Generate(mkdir(t, data), "example.com/from-key"); err != nil {
		t.Fatal(err)
	}
	var origin string
	if _, err := openKeys(data, &origin, discard()); err != nil || origin != "example.com/from-key" {
		t.Fatalf("origin from the key: %q, %v", origin, err)
	}
	origin = "example.com/other"
	_, err := openKeys(data, &origin, discard())
	if err == nil || !strings.Contains(err.Error(), `--origin "example.com/other" contradicts the log key`) ||
		!strings.Contains(err.Error(), `"example.com/from-key"`) || !strings.Contains(err.Error(), "omit --origin") {
		t.Fatalf("a contradicting origin: %v", err)
	}
	fresh := mkdir(t, filepath.Join(t.TempDir(), "fresh"))
	origin = ""
	if _, err := openKeys(fresh, &origin, discard()); err != nil || origin != defaultOrigin() {
		t.Fatalf("a new log without --origin: %q, %v", origin, err)
	}
	// Restarting without --origin serves the same log.
	s := start(t, Config{Listen: "127.0.0.1:0", DataDir: data})
	var info struct {
		Origin string `json:"origin"`
	}
	resp, err := http.Get(s.url + "/v1/log")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Origin != "example.com/from-key" {
		t.Errorf("GET /v1/log origin %q", info.Origin)
	}
}

// TestOneProcessPerDataDir: a second Run on the data directory of a
// running one is refused at once, naming the first.
func TestOneProcessPerDataDir(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	start(t, testConfig(data))
	began := time.Now()
	err := Run(context.Background(), testConfig(data))
	var he *dirlock.HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() || he.Program != "govlogd" {
		t.Fatalf("second Run: %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("the refusal took %v", took)
	}
	// The Trillian backend without witnesses does not write the data
	// directory (only its keys are there): replicas may share it. Its
	// refusal is then about Trillian, not the lock.
	cfg := testConfig(data)
	cfg.Backend, cfg.Trillian = backendTrillian, TrillianConfig{Addr: "127.0.0.1:1", TreeID: 1, MySQLDSN: "x@tcp(127.0.0.1:1)/x"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(data, false); err != nil {
		t.Errorf("lockDataDir without writes: %v", err)
	}
}

// TestHelpAndVersion: govlogd --help prints the grouped flags to stdout
// and exits 0; --version and version print the build.
func TestHelpAndVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := cli(context.Background(), []string{"--help"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	help := stdout.String()
	for _, want := range []string{
		"usage: govlogd [flags]\n", "\nServer:\n", "\nStorage:\n", "\nAuthentication, TLS and limits:\n", "\nWitnesses:\n",
		"\n  --listen ADDRESS ", "\n  --config FILE ", "(default 127.0.0.1:8080)", "\nExamples:\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "\n  -listen") || strings.Contains(help, "Usage of") || stderr.Len() != 0 {
		t.Errorf("help in Go's default style, or on stderr:\n%s\n%s", help, stderr.String())
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout.Reset()
		if err := cli(context.Background(), args, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(stdout.String(), "govlogd github.com/govlog/govlog ") {
			t.Errorf("%q: %v %q", args, err, stdout.String())
		}
	}
}

// TestConfigFile: the flags from --config, the command line over them.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "govlogd.conf")
	os.WriteFile(conf, []byte("# a comment\nlisten 0.0.0.0:8443\nartifact-ttl 1500ms\n"), 0o600)
	var stderr bytes.Buffer
	// The file's non-loopback --listen without authentication is refused:
	// the file was read.
	err := cli(context.Background(), []string{"--config", conf, "--data", filepath.Join(dir, "d")}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), `refusing --listen "0.0.0.0:8443"`) {
		t.Fatalf("from the file: %v", err)
	}
	// The command line overrides the file: its --listen is accepted, and
	// the file's --artifact-ttl is what is refused now.
	err = cli(context.Background(), []string{"--config", conf, "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "d")}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--artifact-ttl must be a whole number of seconds") {
		t.Fatalf("the command line over the file: %v", err)
	}
	os.WriteFile(conf, []byte("listen 127.0.0.1:0\nno-such-flag 1\n"), 0o600)
	if err := cli(context.Background(), []string{"--config", conf}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), `:2: unknown setting "no-such-flag"`) {
		t.Fatalf("an unknown setting: %v", err)
	}
	os.Chmod(conf, 0o666)
	if err := cli(context.Background(), []string{"--config", conf}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "lets the group or others write it") {
		t.Fatalf("a world-writable configuration file: %v", err)
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestConfigExample parses the complete configuration file of
// docs/operations.md: every line is a flag govlogd knows, with a valid
// value.
func TestConfigExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- govlogd.conf example")
	_, rest, ok2 := strings.Cut(rest, "```conf\n")
	example, _, ok3 := strings.Cut(rest, "```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/operations.md has no configuration example")
	}
	path := filepath.Join(t.TempDir(), "govlogd.conf")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg, err := parseCLI([]string{"--config", path}, io.Discard, &stderr)
	if err != nil {
		t.Fatalf("the example does not parse: %v\n%s", err, stderr.String())
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.DataDir != "/var/lib/govlog" || cfg.Origin != "govlog.example.com/decisions" ||
		!cfg.AuthRead || cfg.AuthJWKS == "" || cfg.TLSKey != "/etc/govlog/tls.key" || cfg.RateLimit != 200 ||
		cfg.WitnessMode != "sync" || cfg.Backend != "trillian" || cfg.Trillian.TreeID != 7281944912738590145 ||
		cfg.Trillian.MySQLDSN != "govlog:secret@tcp(127.0.0.1:3306)/govlog_trillian?parseTime=false" || cfg.ArtifactTTL != 300*time.Second {
		t.Errorf("parsed %+v", cfg)
	}
	// The command line overrides it.
	cfg, err = parseCLI([]string{"--config", path, "--listen", "127.0.0.1:9"}, io.Discard, &stderr)
	if err != nil || cfg.Listen != "127.0.0.1:9" {
		t.Errorf("override: %v %+v", err, cfg)
	}
}

// --no-explorer reaches the server's configuration; the explorer is on by
// default (server.TestNoExplorer: what the server then answers).
func TestNoExplorerFlag(t *testing.T) {
	for args, want := range map[string]bool{"": false, "--no-explorer": true} {
		cfg, err := parseCLI(strings.Fields(args), io.Discard, io.Discard)
		if err != nil || cfg.NoExplorer != want {
			t.Errorf("govlogd %s: NoExplorer %v, err %v", args, cfg != nil && cfg.NoExplorer, err)
		}
	}
}
