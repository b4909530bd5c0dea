// Package opatest runs a real Open Policy Agent for tests: the tests of
// govlog-gate's policy mode and the end-to-end tests of OPA's decision-log
// plugin uploading to govlogd use it. It is test support, not for
// production code.
//
// It builds OPA from its Go module at the pinned Version with go install,
// into .opa/bin of the module (or $GOVLOG_OPA_BIN), where it is kept
// across runs, and starts "opa run --server" on a free loopback port with
// a policy and a configuration file given by the test. When the module
// cannot be downloaded (no network), tests that need OPA are skipped,
// loudly, or fail when $GOVLOG_REQUIRE_OPA is set (CI).
package opatest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/freeport"
)

// Version is the OPA release the tests run.
const Version = "v1.22.4"

// Module is OPA's Go module (its main package is the opa command).
const Module = "github.com/open-policy-agent/opa"

// Environment variables the package reads.
const (
	// RequireEnv, when set, turns an OPA that cannot be built into a test
	// failure instead of a skip.
	RequireEnv = "GOVLOG_REQUIRE_OPA"
	// BinEnv names the directory OPA is installed into.
	BinEnv = "GOVLOG_OPA_BIN"
)

var (
	buildOnce sync.Once
	buildPath string
	buildSkip string
	buildErr  error
)

// Binary returns the path of the opa command, building it once per test
// binary (go install relinks only what is out of date).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildSkip, buildErr = build() })
	if buildSkip != "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s is set, but OPA cannot be built: %s", RequireEnv, buildSkip)
		}
		t.Skipf("\n\n*** SKIPPING A TEST THAT NEEDS OPA: %s ***\n*** Set %s=1 to make this a failure. ***\n", buildSkip, RequireEnv)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func build() (path, skip string, err error) {
	bin := os.Getenv(BinEnv)
	if bin == "" {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" {
			return "", "", fmt.Errorf("failed to find the module root: %w", err)
		}
		bin = filepath.Join(filepath.Dir(strings.TrimSpace(string(gomod))), ".opa", "bin", Version)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", "", err
	}
	dl := exec.Command("go", "mod", "download", Module+"@"+Version)
	dl.Dir = bin
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("cannot download %s@%s: %v\n%s", Module, Version, err, out), nil
	}
	cmd := exec.Command("go", "install", Module+"@"+Version)
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("failed to build %s@%s: %v\n%s", Module, Version, err, out)
	}
	return filepath.Join(bin, "opa"), "", nil
}

// OPA is a running opa server.
type OPA struct {
	// URL is its base URL, e.g. "http://127.0.0.1:40123".
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
}

// Start runs "opa run --server" with the Rego policy and the
// configuration (YAML or JSON; "" for none) and waits until it is
// healthy. It is killed when the test ends.
func Start(t testing.TB, policy, config string) *OPA {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.rego")
	if err := os.WriteFile(policyFile, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, err := freeport.Addrs(2)
	if err != nil {
		t.Fatal(err)
	}
	addr := addrs[0]
	args := []string{"run", "--server", "--addr", addr, "--diagnostic-addr", addrs[1], "--log-level", "info"}
	if config != "" {
		cfgFile := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config-file", cfgFile)
	}
	args = append(args, policyFile)
	o := &OPA{URL: "http://" + addr, exited: make(chan struct{}), out: &syncBuffer{}}
	o.cmd = exec.Command(bin, args...)
	o.cmd.Stdout, o.cmd.Stderr = o.out, o.out
	dieWithParent(o.cmd)
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { o.cmd.Wait(); close(o.exited) }()
	t.Cleanup(func() {
		o.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("opa output:\n%s", o.Output())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-o.exited:
			t.Fatalf("opa exited before it was healthy:\n%s", o.Output())
		default:
		}
		if resp, err := http.Get(o.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("opa not healthy after 60s:\n%s", o.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop asks OPA to stop (SIGTERM: its decision-log plugin uploads what it
// holds) and kills it if it has not exited within grace.
func (o *OPA) Stop(grace time.Duration) {
	select {
	case <-o.exited:
		return
	default:
	}
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(grace):
		o.cmd.Process.Kill()
		<-o.exited
	}
}

// Output is what OPA printed so far.
func (o *OPA) Output() string { return o.out.String() }

// Query asks OPA's data API for the decision at path (e.g.
// "govlog/gate/allow") on input, with ctx bounding it; it returns the
// HTTP status.
func (o *OPA) Query(ctx context.Context, path, input string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL+"/v1/data/"+path, strings.NewReader(`{"input":`+input+`}`))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
