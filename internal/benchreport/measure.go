package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govlog/govlog/internal/freeport"
	"github.com/govlog/govlog/internal/loadgen"
	"github.com/govlog/govlog/internal/procstat"
	"github.com/govlog/govlog/log/trillian/trilliantest"
)

// backendResult is what one backend measured.
type backendResult struct {
	Name string
	// Slug names the backend in the profiles' file names.
	Slug string
	// Closed is the closed-loop single-decision run on a small log, Open
	// the open-loop run at the fixed rate.
	Closed, Open *loadgen.Report
	// Fill samples the batch-endpoint throughput while filling the log.
	Fill []sample
	// FillRate is the throughput of the whole fill.
	FillRate float64
	// FillCPU is the server's CPU per decision over the whole fill, in µs
	// (0 when the server does not export its CPU time).
	FillCPU float64
	// FillClientCPU is the load generator's CPU per decision over the
	// whole fill, in µs.
	FillClientCPU float64
	// Entries is the tree size after the fill.
	Entries int
	// ClosedFull is the closed-loop run again on the filled log.
	ClosedFull *loadgen.Report
	// Proofs are inclusion proof lookups on the filled log.
	Proofs *loadgen.Report
	// Claims is the closed loop of governed executions (an allow, then a
	// claim of it) on the filled log.
	Claims *loadgen.Report
	// ClaimRounds are a claim's cost over a decision's measured side by
	// side: each round a closed loop of single decisions and one of pairs,
	// back to back on the filled log (measureClaimRounds).
	ClaimRounds []claimRound
	// Profiles are the server's CPU profiles during the loads, by load
	// (loadSingle, loadFill, loadClaims, loadProofs).
	Profiles map[string]*breakdown
	// Floor is the closed loop of Closed against internal/floor in front
	// of this backend: govlogd's HTTP stack answering real receipts
	// without logging anything (embedded only; nil otherwise).
	Floor *loadgen.Report
	// DurableFloor is the same closed loop against internal/floor
	// --durable: the HTTP floor whose handlers answer only after a group
	// commit to a fsynced file and a checkpoint signature, each allow's
	// artifact signed (embedded only).
	DurableFloor *loadgen.Report
	// ProofFloor is the inclusion-proof load of Proofs against the same
	// internal/floor: govlogd's HTTP stack answering the same proof
	// requests with precomputed bytes of the real answers (embedded only).
	ProofFloor *loadgen.Report
	// RSSMiB is govlogd's resident memory after the runs.
	RSSMiB float64
	// StorageBytes is the size of the data directory (embedded only).
	StorageBytes int64
}

// sample is the throughput of one fill step, ending at tree size Size.
type sample struct {
	Size      int
	PerSecond float64
}

func goBuild(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin+string(os.PathSeparator), "./cmd/govlogd", "./cmd/govlog", "./internal/floor")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build govlogd, govlog and floor: %w\n%s", err, out)
	}
	return nil
}

// microBenchmarks runs the Go benchmarks of the hot paths.
func microBenchmarks(ctx context.Context, benchtime string) ([]microResult, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime,
		"./log", "./log/sqlite", "./verifier")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("failed to run the micro-benchmarks: %w\n%s%s", err, out, stderr.Bytes())
	}
	return parseBenchOutput(out), nil
}

// daemon is a running govlogd.
type daemon struct {
	cmd *exec.Cmd
	url string
	// pprof is the address of its profiling listener.
	pprof string
	data  string
	out   *os.File
}

func startDaemon(ctx context.Context, bin, data string, extra ...string) (*daemon, error) {
	addrs, err := freeport.Addrs(2)
	if err != nil {
		return nil, err
	}
	addr, pprofAddr := addrs[0], addrs[1]
	out, err := os.CreateTemp("", "benchreport-govlogd-*.log")
	if err != nil {
		return nil, err
	}
	args := append([]string{"--listen", addr, "--pprof", pprofAddr, "--data", data, "--origin", "bench.govlog.test/log", "--log-level", "warn"}, extra...)
	cmd := exec.Command(filepath.Join(bin, "govlogd"), args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("failed to start govlogd: %w", err)
	}
	d := &daemon{cmd: cmd, url: "http://" + addr, pprof: pprofAddr, data: data, out: out}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(d.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.stop()
			log, _ := os.ReadFile(out.Name())
			return nil, fmt.Errorf("govlogd not ready after 60s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.out.Close()
	os.Remove(d.out.Name())
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// measure runs the loads against the govlogd at d, filling its log to fill
// entries. The closed loop of single decisions, a window of the fill, the
// claims and the proof lookups run under a CPU profile of the server of
// o.closedFor, written into o.out.
func measure(ctx context.Context, logger *slog.Logger, name, slug string, d *daemon, o options, fill int) (*backendResult, error) {
	res := &backendResult{Name: name, Slug: slug, Profiles: map[string]*breakdown{}}
	base := loadgen.Config{URL: d.url, Concurrency: o.clients}
	profile := func(load string) *profiler {
		return startProfile(ctx, d.pprof, o.closedFor, filepath.Join(o.out, profileFile(slug, load)))
	}
	profiled := func(load string, p *profiler) error {
		b, err := p.wait()
		if err != nil {
			return err
		}
		res.Profiles[load] = b
		return nil
	}
	var err error
	logger.Info("closed loop, single decisions", "backend", name, "for", o.closedFor)
	cfg := base
	cfg.Duration = o.closedFor
	p := profile(loadSingle)
	if res.Closed, err = load(ctx, loadgen.Run, cfg); err != nil {
		return nil, err
	}
	if err := profiled(loadSingle, p); err != nil {
		return nil, err
	}
	logger.Info("open loop", "backend", name, "rate", o.rate, "for", o.openFor)
	cfg = base
	cfg.Rate, cfg.Duration = o.rate, o.openFor
	if res.Open, err = load(ctx, loadgen.Run, cfg); err != nil {
		return nil, err
	}
	size := res.Closed.Acknowledged + res.Open.Acknowledged
	// At least one step, so that the batch endpoint is always measured.
	fill = max(fill, size+1000)
	step := max((fill-size)/o.samples, 1000)
	logger.Info("filling", "backend", name, "to", fill, "step", step)
	start := time.Now()
	filled := 0
	var fillCPU, fillClientCPU float64
	cpuKnown := true
	from := size
	p = nil
	for size < fill {
		n := min(step, fill-size)
		if fill-size-n < step/2 {
			n = fill - size // no tiny last step: its rate would be noise
		}
		if p == nil && (2*(size-from) >= fill-from || n == fill-size) {
			p = profile(loadFill) // the step halfway through (or the last)
		}
		cfg = base
		cfg.N, cfg.Batch, cfg.Concurrency = n, 1000, 4
		rep, err := load(ctx, loadgen.Run, cfg)
		if err != nil {
			return nil, err
		}
		size += rep.Acknowledged
		filled += rep.Acknowledged
		fillCPU += rep.ServerCPUSeconds
		fillClientCPU += rep.ClientCPUSeconds
		cpuKnown = cpuKnown && rep.ServerCPUError == ""
		res.Fill = append(res.Fill, sample{Size: size, PerSecond: rep.PerSecond})
		logger.Info("fill", "backend", name, "size", size, "decisions/s", int(rep.PerSecond), "server CPU µs/decision", int(rep.ServerCPUPerDecision))
	}
	if err := profiled(loadFill, p); err != nil {
		return nil, err
	}
	res.FillRate = float64(filled) / time.Since(start).Seconds()
	if cpuKnown && filled > 0 {
		res.FillCPU = fillCPU / float64(filled) * 1e6
	}
	if filled > 0 {
		res.FillClientCPU = fillClientCPU / float64(filled) * 1e6
	}
	res.Entries = size
	logger.Info("closed loop on the filled log", "backend", name)
	cfg = base
	cfg.Duration = o.closedFor
	if res.ClosedFull, err = load(ctx, loadgen.Run, cfg); err != nil {
		return nil, err
	}
	res.Entries += res.ClosedFull.Acknowledged
	logger.Info("closed loop, governed executions (allow, then claim)", "backend", name, "for", o.closedFor)
	cfg = base
	cfg.Duration, cfg.Claims = o.closedFor, true
	p = profile(loadClaims)
	if res.Claims, err = load(ctx, loadgen.Run, cfg); err != nil {
		return nil, err
	}
	if err := profiled(loadClaims, p); err != nil {
		return nil, err
	}
	res.Entries += 2 * res.Claims.Acknowledged
	logger.Info("claims and decisions side by side", "backend", name, "rounds", o.claimRounds, "each", o.claimFor)
	if err := measureClaimRounds(ctx, res, base, o); err != nil {
		return nil, err
	}
	logger.Info("inclusion proofs", "backend", name, "n", o.proofs)
	cfg = base
	cfg.N, cfg.Concurrency = o.proofs, 32
	p = profile(loadProofs)
	if res.Proofs, err = load(ctx, loadgen.RunProofs, cfg); err != nil {
		return nil, err
	}
	if err := profiled(loadProofs, p); err != nil {
		return nil, err
	}
	res.RSSMiB = procstat.RSSMiB(d.cmd.Process.Pid)
	return res, nil
}

// claimRound is one round of measureClaimRounds: the server's CPU per
// single decision and per allow and claim, in µs, of two closed loops run
// back to back.
type claimRound struct {
	Decision, Pair float64
}

// Ratio is what a claim costs over a decision: the pair less a decision,
// over a decision.
func (r claimRound) Ratio() float64 { return (r.Pair - r.Decision) / r.Decision }

// measureClaimRounds measures a claim's cost against a decision's side by
// side: o.claimRounds rounds, each a closed loop of single decisions and a
// closed loop of allows and claims of o.claimFor each, back to back, the
// order swapped every round. The claims and single-decision runs above are
// minutes apart, and the machine's load moves their ratio by more than the
// claim costs (one report read 1.96× where rounds like these read 1.22×):
// the median of paired rounds is the figure the target is judged by.
func measureClaimRounds(ctx context.Context, res *backendResult, base loadgen.Config, o options) error {
	for i := range o.claimRounds {
		var r claimRound
		for j := range 2 {
			claims := (i+j)%2 == 1
			cfg := base
			cfg.Duration, cfg.Claims = o.claimFor, claims
			rep, err := load(ctx, loadgen.Run, cfg)
			if err != nil {
				return err
			}
			if rep.ServerCPUError != "" || rep.ServerCPUPerDecision == 0 {
				return nil // no CPU figures from this server: no rounds
			}
			if claims {
				r.Pair = rep.ServerCPUPerDecision
				res.Entries += 2 * rep.Acknowledged
			} else {
				r.Decision = rep.ServerCPUPerDecision
				res.Entries += rep.Acknowledged
			}
		}
		res.ClaimRounds = append(res.ClaimRounds, r)
	}
	return nil
}

// load runs a load with the garbage collector as govlog bench sets it for
// that load (loadgen.SetGCPercent), so that the load generator's CPU per
// decision is the same, and checks it.
func load(ctx context.Context, run func(context.Context, loadgen.Config) (*loadgen.Report, error), cfg loadgen.Config) (*loadgen.Report, error) {
	defer loadgen.SetGCPercent(cfg.Batch)()
	return check(run(ctx, cfg))
}

// check turns receipts that fail verification into an error: a fast but
// wrong log scores zero.
func check(rep *loadgen.Report, err error) (*loadgen.Report, error) {
	if err != nil {
		return nil, err
	}
	if rep.VerifyFailures > 0 {
		return nil, fmt.Errorf("%d receipts did not verify (first: %s)", rep.VerifyFailures, rep.FirstVerifyErr)
	}
	return rep, nil
}

func measureEmbedded(ctx context.Context, logger *slog.Logger, bin string, o options) (*backendResult, error) {
	data, err := os.MkdirTemp("", "benchreport-data-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	d, err := startDaemon(ctx, bin, data)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	res, err := measure(ctx, logger, "embedded (SQLite)", "embedded", d, o, o.fill)
	if err != nil {
		return nil, err
	}
	res.StorageBytes = dirSize(data)
	logger.Info("closed loop, single decisions, against the HTTP floor", "for", o.closedFor)
	if res.Floor, res.ProofFloor, err = measureFloor(ctx, logger, bin, d.url, false, o); err != nil {
		return nil, fmt.Errorf("failed to measure the HTTP floor: %w", err)
	}
	logger.Info("closed loop, single decisions, against the durable floor", "for", o.closedFor)
	if res.DurableFloor, _, err = measureFloor(ctx, logger, bin, d.url, true, o); err != nil {
		return nil, fmt.Errorf("failed to measure the durable floor: %w", err)
	}
	return res, nil
}

// measureFloor runs the closed loop of single decisions, then the
// inclusion-proof load, against internal/floor, which serves receipts,
// and the proofs of entries, it took from the govlogd at from. durable
// runs it with --durable (a group commit to a fsynced file before each
// answer) and the closed loop only.
func measureFloor(ctx context.Context, logger *slog.Logger, bin, from string, durable bool, o options) (single, proofs *loadgen.Report, err error) {
	addrs, err := freeport.Addrs(1)
	if err != nil {
		return nil, nil, err
	}
	addr := addrs[0]
	var out bytes.Buffer
	args := []string{"--from", from, "--listen", addr}
	if durable {
		dir, err := os.MkdirTemp("", "benchreport-floor-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		args = append(args, "--durable", dir, "--proof-pages", "0")
	}
	cmd := exec.Command(filepath.Join(bin, "floor"), args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	url := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/v1/log"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("floor not serving after 60s: %s", out.Bytes())
		}
	}
	if single, err = load(ctx, loadgen.Run, loadgen.Config{URL: url, Concurrency: o.clients, Duration: o.closedFor, Replayed: true}); err != nil || durable {
		return single, nil, err
	}
	logger.Info("inclusion proofs against the HTTP floor", "n", o.proofs)
	if proofs, err = load(ctx, loadgen.RunProofs, loadgen.Config{URL: url, Concurrency: 32, N: o.proofs}); err != nil {
		return nil, nil, err
	}
	return single, proofs, nil
}

// measureTrillian starts Trillian on a fresh MariaDB database with the
// test helpers; skip is set when no database is reachable.
func measureTrillian(ctx context.Context, logger *slog.Logger, bin string, o options) (res *backendResult, skip, err error) {
	env, skip, err := trilliantest.Setup(ctx, trilliantest.Options{})
	defer env.Teardown()
	if skip != nil || err != nil {
		return nil, skip, err
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "govlog"), "trillian-createtree", "--admin-addr", env.Servers.LogRPC, "--name", "govlog-bench").CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create a tree: %w\n%s", err, out)
	}
	tree := strings.TrimSpace(string(out))
	data, err := os.MkdirTemp("", "benchreport-keys-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(data)
	d, err := startDaemon(ctx, bin, data, "--backend", "trillian", "--trillian-addr", env.Servers.LogRPC,
		"--trillian-tree-id", tree, "--trillian-mysql-dsn", env.DSN)
	if err != nil {
		return nil, nil, err
	}
	defer d.stop()
	res, err = measure(ctx, logger, "Trillian + MariaDB", "trillian", d, o, o.trillianFill)
	return res, nil, err
}

// machine notes what the run ran on.
func machine(r *report) error {
	r.CPUs = runtime.NumCPU()
	r.GoVersion = runtime.Version()
	if r.CPUModel = procstat.CPUModel(); r.CPUModel == "" {
		r.CPUModel = runtime.GOARCH
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the module root (make bench does)")
	}
	return nil
}

// watchLoad samples the machine's 1-minute load average (Linux:
// /proc/loadavg) every interval until the returned function is called,
// which returns the samples, sorted.
func watchLoad(ctx context.Context, every time.Duration) func() []float64 {
	var (
		mu      sync.Mutex
		samples []float64
	)
	take := func() {
		b, err := os.ReadFile("/proc/loadavg")
		if err != nil {
			return
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			mu.Lock()
			samples = append(samples, v)
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for take(); ; take() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []float64 {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		slices.Sort(samples)
		return samples
	}
}
