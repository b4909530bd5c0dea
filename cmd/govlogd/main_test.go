package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
			err := cli(context.Background(), args, &stderr)
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
	if info.TreeSize != 1 {
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
