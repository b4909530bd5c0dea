// Package e2e holds end-to-end tests: they build the real govlogd and govlog
// binaries, start them on loopback and talk to them over real HTTP, the way
// an independent client would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "govlog-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/govlogd", "../cmd/govlog", "../cmd/govlog-gate")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "failed to build the binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running govlogd.
type daemon struct {
	t      *testing.T
	data   string
	addr   string
	url    string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddrs are the addresses freeAddr handed out.
var freeAddrs struct {
	mu   sync.Mutex
	seen map[string]bool
}

// freeAddr returns a loopback address whose port was free, for a process
// that must be told its address before it starts (or start again on it).
// Where the address can be read from the process's log, listen on port 0
// instead (startDaemon, startServing): another process may take a port
// between freeAddr and the bind. freeAddr takes its ports below the
// kernel's ephemeral range (ip_local_port_range), which the kernel never
// hands out by itself: not to a listener on port 0 of a test running in
// parallel, nor to an outgoing connection, even while a daemon is down
// between two starts on its address. It never returns an address twice.
func freeAddr(t *testing.T) string {
	t.Helper()
	freeAddrs.mu.Lock()
	defer freeAddrs.mu.Unlock()
	if freeAddrs.seen == nil {
		freeAddrs.seen = map[string]bool{}
	}
	low := 0 // the ports freeAddr picks from: [low, ephemeral)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if ephemeral, err := strconv.Atoi(f[0]); err == nil && ephemeral-10000 >= 10000 {
				low = ephemeral - 10000
			}
		}
	}
	for range 1000 {
		addr := "127.0.0.1:0" // the kernel's choice, when the range is unknown
		if low > 0 {
			addr = "127.0.0.1:" + strconv.Itoa(low+mathrand.IntN(10000))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		addr = l.Addr().String()
		l.Close()
		if !freeAddrs.seen[addr] {
			freeAddrs.seen[addr] = true
			return addr
		}
	}
	t.Fatal("no free port found")
	return ""
}

// startDaemon starts govlogd on data (a new free port unless addr is set)
// and waits until it is ready.
func startDaemon(t *testing.T, data, addr string, extra ...string) *daemon {
	t.Helper()
	return startDaemonBin(t, filepath.Join(binDir, "govlogd"), data, addr, extra...)
}

// builds are the builds done once per test run, by their output.
var builds struct {
	mu   sync.Mutex
	done map[string]*onceBuild
}

type onceBuild struct {
	once sync.Once
	err  error
}

// buildOnce runs, once per test run, the command line args in the
// repository's root to build out (under binDir), and returns out's path.
// A build that prints anything fails: compiler and linker warnings
// included.
func buildOnce(t *testing.T, out string, args ...string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]*onceBuild{}
	}
	b := builds.done[out]
	if b == nil {
		b = &onceBuild{}
		builds.done[out] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			b.err = fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return filepath.Join(binDir, out)
}

// goBuild builds the Go packages pkgs into binDir/dir once per test run,
// with the race detector when the tests have it, and returns the
// directory.
func goBuild(t *testing.T, dir string, flags []string, pkgs ...string) string {
	t.Helper()
	args := append([]string{"go", "build", "-o", filepath.Join(binDir, dir) + string(os.PathSeparator)}, flags...)
	if raceEnabled {
		args = append(args, "-race")
	}
	return buildOnce(t, dir, append(args, pkgs...)...)
}

// crashpointGovlogd is the govlogd of the crash suite: with its test-only
// crash points (-tags crashpoint), which the production binary does not
// have.
func crashpointGovlogd(t *testing.T) string {
	t.Helper()
	return filepath.Join(goBuild(t, "crashpoint", []string{"-tags", "crashpoint"}, "./cmd/govlogd"), "govlogd")
}

// servingAddr finds the address of the "govlogd serving" (or
// "govlog-witness serving") line of a process's log.
var servingAddr = regexp.MustCompile(`msg="govlog(?:d|-witness) serving" addr=(\S+)`)

// startDaemonBin is startDaemon with the govlogd binary bin. Without addr,
// govlogd listens on a port the kernel chooses (127.0.0.1:0) and the
// address is read from its log: a port found free and given up, then
// passed on (freeAddr), may be taken by another process in between (the
// tests of other packages run at the same time).
func startDaemonBin(t *testing.T, bin, data, addr string, extra ...string) *daemon {
	t.Helper()
	listen := addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	d := &daemon{t: t, data: data, addr: addr, url: "http://" + addr, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	args := append([]string{"--listen", listen, "--data", data, "--origin", "e2e.govlog.test/log"}, extra...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.stderr, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("govlogd output:\n%s", d.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("govlogd exited before it was ready:\n%s", d.stderr.String())
		default:
		}
		if d.addr == "" {
			if m := servingAddr.FindStringSubmatch(d.stderr.String()); m != nil {
				d.addr, d.url = m[1], "http://"+m[1]
			}
		}
		if d.addr != "" {
			resp, err := http.Get(d.url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("govlogd not ready after 60s:\n%s", d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (d *daemon) kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// term sends SIGTERM and returns how long the process took to exit.
func (d *daemon) term(t *testing.T, limit time.Duration) time.Duration {
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("govlogd did not exit within %v of SIGTERM", limit)
		return 0
	}
}

// logKey reads the log's note verifier key from the data directory.
func (d *daemon) logKey(t *testing.T) note.Verifier {
	t.Helper()
	vkey, err := os.ReadFile(filepath.Join(d.data, "log.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a request and returns status, body and headers.
func call(ctx context.Context, method, url, contentType string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

func postJSON(ctx context.Context, url string, body []byte) (int, []byte, error) {
	status, b, _, err := call(ctx, http.MethodPost, url, "application/json", body)
	return status, b, err
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	status, b, _, err := call(context.Background(), http.MethodGet, url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status == 200 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return status
}

// apiError is the JSON error body of the wire contract.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error body: %q", body)
	}
	return e.Error.Code
}

// decision returns a decision body.
func decision(id, outcome, parent string, seq uint64) []byte {
	d := map[string]any{
		"id":         id,
		"outcome":    outcome,
		"decided_at": time.Now().UTC().Format(time.RFC3339Nano),
		"subject":    "agent-" + id[len(id)-1:],
		"action":     "deploy",
		"resource":   "svc/" + id,
		"policy":     map[string]any{"id": "prod-deploy", "version": "7", "digest": "sha256:" + strings.Repeat("ab", 32)},
		"reasons":    []string{"change ticket approved", "within window ☀"},
		"context":    map[string]any{"ticket": "OPS-1", "risk": 0.25, "n": 12},
	}
	if parent != "" {
		d["parent_id"] = parent
	}
	if seq != 0 {
		d["sequence"] = seq
	}
	b, _ := json.Marshal(d)
	return b
}
