package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/internal/freeport"
	"github.com/govlog/govlog/internal/keys"
)

// origin is the soak log's origin.
const origin = "soak.govlog.test/log"

// goBuild builds govlogd and govlog-witness into bin.
func goBuild(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+string(os.PathSeparator),
		"github.com/govlog/govlog/cmd/govlogd", "github.com/govlog/govlog/cmd/govlog-witness")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build govlogd and govlog-witness (run inside the govlog module, as make soak does): %w\n%s", err, out)
	}
	return nil
}

// proc is a child process: govlogd or a govlog-witness.
type proc struct {
	name    string
	cmd     *exec.Cmd
	url     string
	data    string
	logPath string
	logFile *os.File
	// exited is closed once the process has exited; waitErr is then its
	// exit status.
	exited  chan struct{}
	waitErr error
	// stopping is set before the process is told to stop: its exit is
	// then expected.
	stopping atomic.Bool
}

// startProc starts bin with args, its output in logPath, and waits until
// GET url+ready answers 200. The child gets its own process group (Ctrl-C
// in the terminal reaches the soak only, which stops the children in
// order) and, on Linux, SIGKILL if the soak dies.
func startProc(ctx context.Context, name, bin, url, ready, data, logPath string, args ...string) (*proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, url: url, data: data, logPath: logPath, logFile: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			p.logFile.Close()
			return nil, fmt.Errorf("%s exited at start (%v):\n%s", name, p.waitErr, p.tail(20))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop(5 * time.Second)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted while starting %s", name)
			}
			return nil, fmt.Errorf("%s not ready after 60s:\n%s", name, p.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills the
// process. It returns the exit status (nil for a clean exit) and how long
// the process took to exit.
func (p *proc) stop(grace time.Duration) (time.Duration, error) {
	p.stopping.Store(true)
	start := time.Now()
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			p.cmd.Process.Kill()
			<-p.exited
			p.logFile.Close()
			return time.Since(start), fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, grace)
		}
	}
	p.logFile.Close()
	if p.waitErr != nil {
		return time.Since(start), fmt.Errorf("%s exited with %w", p.name, p.waitErr)
	}
	return time.Since(start), nil
}

// tail returns the last n lines of the process's output.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// cluster is govlogd on the embedded SQLite log with its witnesses.
type cluster struct {
	govlogd   *proc
	witnesses []*proc
	pprofURL  string
	logKey    note.Verifier
	policy    string
}

// startCluster generates the log's keys, starts two govlog-witness
// processes witnessing it and govlogd with a policy requiring both, in
// witness mode mode, all under work.
func startCluster(ctx context.Context, bin, work, mode string) (c *cluster, err error) {
	data := filepath.Join(work, "log")
	if err := keys.Generate(data, origin); err != nil {
		return nil, fmt.Errorf("failed to generate the log keys: %w", err)
	}
	vkeyFile := filepath.Join(data, "log.vkey")
	vkey, err := os.ReadFile(vkeyFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log key: %w", err)
	}
	c = &cluster{}
	if c.logKey, err = note.NewVerifier(strings.TrimSpace(string(vkey))); err != nil {
		return nil, fmt.Errorf("failed to parse the log key: %w", err)
	}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	var policy strings.Builder
	for i := range 2 {
		addrs, err := freeport.Addrs(1)
		if err != nil {
			return nil, err
		}
		addr := addrs[0]
		name := fmt.Sprintf("witness.soak.test/w%d", i+1)
		wdata := filepath.Join(work, fmt.Sprintf("w%d", i+1))
		w, err := startProc(ctx, "govlog-witness "+name, filepath.Join(bin, "govlog-witness"), "http://"+addr, "/healthz", wdata,
			filepath.Join(work, logFiles[i+1]),
			"--listen", addr, "--data", wdata, "--name", name, "--log-key", vkeyFile)
		if err != nil {
			return nil, err
		}
		c.witnesses = append(c.witnesses, w)
		wkey, err := os.ReadFile(filepath.Join(wdata, "witness.vkey"))
		if err != nil {
			return nil, fmt.Errorf("failed to read the key of %s: %w", name, err)
		}
		fmt.Fprintf(&policy, "witness w%d %s %s\n", i+1, strings.TrimSpace(string(wkey)), w.url)
	}
	policy.WriteString("group both all w1 w2\nquorum both\n")
	c.policy = policy.String()
	policyFile := filepath.Join(work, "witness-policy.txt")
	if err := os.WriteFile(policyFile, []byte(c.policy), 0o644); err != nil {
		return nil, fmt.Errorf("failed to write the witness policy: %w", err)
	}
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return nil, err
	}
	addr, pprof := addrs[0], addrs[1]
	c.pprofURL = "http://" + pprof
	c.govlogd, err = startProc(ctx, "govlogd", filepath.Join(bin, "govlogd"), "http://"+addr, "/readyz", data, filepath.Join(work, logFiles[0]),
		"--listen", addr, "--data", data, "--origin", origin, "--log-level", "warn", "--pprof", pprof,
		"--witness-policy", policyFile, "--witness-mode", mode)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) procs() []*proc {
	var ps []*proc
	if c.govlogd != nil {
		ps = append(ps, c.govlogd)
	}
	return append(ps, c.witnesses...)
}

// watch calls died with the reason when a process exits unexpectedly.
func (c *cluster) watch(died func(error)) {
	for _, p := range c.procs() {
		go func() {
			<-p.exited
			if !p.stopping.Load() {
				died(fmt.Errorf("%s exited unexpectedly (%v); its last lines:\n%s", p.name, p.waitErr, p.tail(20)))
			}
		}()
	}
}

// stop stops govlogd, then the witnesses; it returns how long govlogd took
// to shut down and why it did not shut down cleanly, if it did not.
func (c *cluster) stop() (time.Duration, error) {
	var took time.Duration
	var err error
	if c.govlogd != nil {
		// govlogd exits within 20 s of SIGTERM (wire contract §8).
		took, err = c.govlogd.stop(25 * time.Second)
	}
	for _, w := range c.witnesses {
		w.stop(15 * time.Second)
	}
	return took, err
}

// metrics scrapes a Prometheus text endpoint: every series (name with its
// labels, as written) and its value.
func metrics(ctx context.Context, hc *http.Client, url string) (map[string]float64, error) {
	body, err := get(ctx, hc, url)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	s := bufio.NewScanner(bytes.NewReader(body))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the last space outside the labels; label
		// values of these endpoints hold no spaces.
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, nil
}

// get fetches url and fails unless it answers 200.
func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: url, status: resp.StatusCode, body: body}
	}
	return body, nil
}

// statusError is a non-200 answer.
type statusError struct {
	url    string
	status int
	body   []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.url, e.status, bytes.TrimSpace(e.body[:min(len(e.body), 200)]))
}

// code is the error code of the answer's JSON error body, or http_STATUS.
func (e *statusError) code() string {
	var b struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(e.body, &b) == nil && b.Error.Code != "" {
		return b.Error.Code
	}
	return fmt.Sprintf("http_%d", e.status)
}

// witnessedSize is the tree size of origin that the witness at url has
// cosigned (its GET / status).
func witnessedSize(ctx context.Context, hc *http.Client, url string) (uint64, error) {
	body, err := get(ctx, hc, url+"/")
	if err != nil {
		return 0, err
	}
	var st struct {
		Logs []struct {
			Origin   string `json:"origin"`
			TreeSize uint64 `json:"tree_size"`
		} `json:"logs"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("failed to decode the status of the witness at %s: %w", url, err)
	}
	for _, l := range st.Logs {
		if l.Origin == origin {
			return l.TreeSize, nil
		}
	}
	return 0, errors.New("the witness at " + url + " does not list the soak log")
}
