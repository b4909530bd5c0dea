// Command soak is `make soak`: it runs govlogd on the embedded SQLite log,
// with two govlog-witness processes cosigning its checkpoints under a
// policy that requires both, under a bounded mixed load for an hour, and
// checks that the processes' resident memory, goroutines and open files
// stay flat:
//
//	go run ./internal/soak -out docs/soak
//	go run ./internal/soak -duration 10m -interval 10s -out /tmp/soak
//
// Everything runs on loopback, built from this checkout, with the data in a
// temporary directory that is removed at the end (the hour at the default
// rate fills about 3 GB). The load, all of it bounded in rate:
//
//   - single decisions, open loop at -rate per second (internal/loadgen:
//     ~10% with a lineage link, every receipt verified), latency measured
//     from each request's due time;
//   - a batch of -batch-size decisions every -batch-every;
//   - -exec-rate allow decisions per second, each followed by the report of
//     its execution (package client, receipts verified);
//   - -read-rate reads per second: checkpoints (checked consistent with
//     every earlier one), inclusion proofs verified against a checkpoint,
//     pages of entries, entry bundles checked against their hash tiles, and
//     receipts;
//   - an incremental audit every -audit-every (client.Audit with the state
//     of the previous one, saved and reloaded as govlog audit --state does);
//   - and the witness pushes that govlogd makes for every checkpoint.
//
// Every -interval it samples govlogd's resident memory, heap, goroutines,
// open files and SQLite file sizes, the witnesses' memory, goroutines and
// open files and how far their cosigned tree is behind, and the load's
// latency, rate and errors; it writes report.md, samples.csv and PNG
// charts into -out. When the load ends, the witnesses must catch up and a
// last audit must cover the whole log; then govlogd must shut down
// cleanly.
//
// The verdict skips the first quarter of the samples (warm-up) and
// compares the median of the last quarter with that of the second: a
// figure that grew beyond both limits of its rule (see rules) fails the
// soak, as does any error, any receipt, proof or checkpoint that does not
// verify, or any audit failure. The command then exits with status 1 and
// says what grew; after a growth it also saves govlogd's goroutine dump and
// heap profile next to the report. Ctrl-C stops the load and the
// processes and writes the report of what was sampled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govlog/govlog/internal/loadgen"
	"github.com/govlog/govlog/internal/procstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the soak winds down; a second one kills
		// it at once (and the kernel kills the children).
		<-ctx.Done()
		stop()
	}()
	_, err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	out         string
	duration    time.Duration
	interval    time.Duration
	rate        float64
	clients     int
	batchEvery  time.Duration
	batchSize   int
	execRate    float64
	readRate    float64
	auditEvery  time.Duration
	witnessMode string
	bin         string
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.out, "out", "docs/soak", "`directory` for report.md, samples.csv and the PNG charts")
	fs.DurationVar(&o.duration, "duration", time.Hour, "how long the load runs")
	fs.DurationVar(&o.interval, "interval", 30*time.Second, "time between samples")
	fs.Float64Var(&o.rate, "rate", 500, "single decisions per second, open loop")
	fs.IntVar(&o.clients, "c", 64, "most single-decision requests in flight")
	fs.DurationVar(&o.batchEvery, "batch-every", 5*time.Second, "time between batch submissions")
	fs.IntVar(&o.batchSize, "batch-size", 200, "decisions per batch (at most 1000)")
	fs.Float64Var(&o.execRate, "exec-rate", 10, "allow decisions per second followed by the report of their execution")
	fs.Float64Var(&o.readRate, "read-rate", 50, "reads per second: checkpoints, proofs, entries, tiles, receipts")
	fs.DurationVar(&o.auditEvery, "audit-every", time.Minute, "time between incremental audits")
	fs.StringVar(&o.witnessMode, "witness-mode", "async", "govlogd's --witness-mode: async or sync")
	fs.StringVar(&o.bin, "bin", "", "`directory` holding govlogd and govlog-witness (default: build them from this checkout)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.interval < time.Second:
		return o, errors.New("-interval must be at least 1s")
	case o.duration < 4*o.interval:
		return o, fmt.Errorf("-duration %v is less than 4 × -interval %v: the verdict compares quarters of the samples", o.duration, o.interval)
	case o.rate <= 0 || o.clients < 1:
		return o, errors.New("-rate must be positive and -c at least 1")
	case o.batchSize < 1 || o.batchSize > 1000 || o.batchEvery <= 0:
		return o, errors.New("-batch-size must be 1 to 1000 and -batch-every positive")
	case o.execRate < 0 || o.readRate < 0 || o.auditEvery <= 0:
		return o, errors.New("-exec-rate and -read-rate must not be negative and -audit-every must be positive")
	case o.witnessMode != "async" && o.witnessMode != "sync":
		return o, fmt.Errorf("-witness-mode %q: want async or sync", o.witnessMode)
	}
	return o, nil
}

// run runs the soak and writes its report; the error says what failed.
func run(ctx context.Context, args []string, stderr io.Writer) (*report, error) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "linux" {
		return nil, errors.New("the soak samples processes through /proc: it needs Linux")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", o.out, err)
	}
	// No file of an earlier run may pass for this one's.
	for _, name := range outputs() {
		if err := os.Remove(filepath.Join(o.out, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("failed to remove the earlier report: %w", err)
		}
	}
	work, err := os.MkdirTemp("", "govlog-soak-")
	if err != nil {
		return nil, fmt.Errorf("failed to create a work directory: %w", err)
	}
	defer os.RemoveAll(work)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(work, "bin")
		logger.Info("building govlogd and govlog-witness")
		if err := goBuild(ctx, bin); err != nil {
			if ctx.Err() != nil {
				return nil, errors.New("interrupted while building")
			}
			return nil, err
		}
	}
	logger.Info("starting two govlog-witness processes and govlogd", "witness_mode", o.witnessMode)
	c, err := startCluster(ctx, bin, work, o.witnessMode)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			c.stop()
		}
	}()
	rep := &report{Started: time.Now().UTC(), Options: o, Command: strings.TrimSpace("go run ./internal/soak " + strings.Join(args, " ")),
		CPUs: runtime.NumCPU(), CPUModel: procstat.CPUModel(), GoVersion: runtime.Version(), Policy: c.policy}
	for _, p := range c.procs() {
		rep.pids = append(rep.pids, p.pid())
	}
	for _, w := range c.witnesses {
		rep.Witnesses = append(rep.Witnesses, strings.TrimPrefix(w.name, "govlog-witness "))
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.watch(cancel)
	l, err := newLoad(o, c.govlogd.url, c.logKey, work, logger)
	if err != nil {
		return nil, err
	}
	sp := &sampler{c: c, hc: l.hc}
	if err := sp.take(runCtx, &sample{}); err != nil {
		return nil, err
	}
	logger.Info("soak started", "duration", o.duration, "interval", o.interval, "rate", o.rate, "govlogd", c.govlogd.url)

	loadCtx, stopLoad := context.WithCancel(runCtx)
	var bg sync.WaitGroup
	bg.Go(func() { l.run(loadCtx) })
	start := time.Now()
	n := int(math.Round(float64(o.duration) / float64(o.interval)))
	for i := range n {
		t0 := time.Now()
		single, err := loadgen.Run(loadCtx, loadgen.Config{URL: l.url, Duration: o.interval, Rate: o.rate, Concurrency: o.clients,
			LogKey: l.logKey, Prefix: fmt.Sprintf("%s-s%05d", l.prefix, i)})
		if loadCtx.Err() != nil {
			break // interrupted, or a process died: the interval is incomplete
		}
		if err != nil {
			stopLoad()
			bg.Wait()
			return nil, fmt.Errorf("failed to run the load: %w", err)
		}
		s := sample{At: time.Since(start)}
		s.singles(single, time.Since(t0).Seconds())
		rep.singles(single)
		l.loadgenReport("single", single)
		if err := sp.take(loadCtx, &s); err != nil {
			l.count(loadCtx, "sample", "unreadable", err.Error())
		}
		if loadCtx.Err() != nil {
			break
		}
		cs := l.take()
		s.background(&cs)
		rep.Samples = append(rep.Samples, s)
		logger.Info("sample", "t", s.At.Round(time.Second), "rss_mib", fmt.Sprintf("%.1f", s.RSSMiB), "goroutines", s.Goroutines,
			"fds", s.FDs, "tree_size", s.TreeSize, "decisions/s", int(s.Rate), "p99_ms", s.P99, "errors", s.Errors+s.VerifyFailures,
			"witness_lag", s.Lag())
	}
	stopLoad()
	bg.Wait()
	rep.Took = time.Since(start).Round(time.Second)

	switch {
	case ctx.Err() != nil:
		rep.Interrupted = true
		logger.Warn("interrupted: stopping the processes and writing the report", "samples", len(rep.Samples))
	case runCtx.Err() != nil:
		rep.problem(context.Cause(runCtx).Error())
	default:
		rep.finish(runCtx, logger, l, sp)
		switch {
		case ctx.Err() != nil:
			rep.Interrupted = true
		case runCtx.Err() != nil:
			rep.problem(context.Cause(runCtx).Error())
		}
	}
	l.take()
	rep.Totals = l.all
	rep.judge()
	if len(rep.Growth) > 0 {
		rep.Profiles = saveProfiles(c, l, o.out)
	}
	took, err := c.stop()
	stopped = true
	rep.ShutdownSeconds = took.Seconds()
	if err != nil && !rep.Interrupted && runCtx.Err() == nil {
		rep.problem("govlogd did not shut down cleanly: " + err.Error())
	}
	rep.collect()
	if len(rep.Problems) > 0 {
		rep.Logs = saveLogs(c, o.out)
	}
	if err := rep.write(o.out); err != nil {
		return rep, err
	}
	logger.Info("report written", "dir", o.out)
	switch {
	case rep.Interrupted && len(rep.Problems) > 0:
		return rep, fmt.Errorf("interrupted after %v; the report has the %d samples taken; by then:\n  %s", rep.Took, len(rep.Samples), strings.Join(rep.Problems, "\n  "))
	case rep.Interrupted:
		return rep, fmt.Errorf("interrupted after %v; the report has the %d samples taken", rep.Took, len(rep.Samples))
	case len(rep.Problems) > 0:
		return rep, fmt.Errorf("the soak failed:\n  %s", strings.Join(rep.Problems, "\n  "))
	}
	return rep, nil
}

// finish waits for the witnesses to cosign the final tree and runs a last
// audit up to it.
func (r *report) finish(ctx context.Context, logger *slog.Logger, l *load, sp *sampler) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	var last sample
	for {
		last = sample{}
		err := sp.take(ctx, &last)
		caught := err == nil && last.TreeSize > 0 && last.Lag() == 0
		for _, w := range last.Witnesses {
			caught = caught && w.Lag == 0
		}
		if caught {
			r.Final.TreeSize = last.TreeSize
			r.Final.CatchUpSeconds = time.Since(start).Seconds()
			break
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			r.problem(fmt.Sprintf("the witnesses had not cosigned the final tree (size %d) a minute after the load stopped: the policy is satisfied up to %d (%v)",
				last.TreeSize, last.Cosigned, err))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	logger.Info("witnesses caught up; final audit", "tree_size", r.Final.TreeSize)
	if err := l.audit(ctx); err != nil {
		if ctx.Err() == nil {
			r.problem("the final audit did not run: " + err.Error())
		}
		return
	}
	c := l.take()
	if a := c.Audits[len(c.Audits)-1]; a.Failure == "" && a.TreeSize < r.Final.TreeSize {
		r.problem(fmt.Sprintf("the final audit covered %d entries of %d", a.TreeSize, r.Final.TreeSize))
	} else {
		r.Final.AuditSeconds, r.Final.Audited = a.Seconds, a.TreeSize
	}
	r.Final.StorageBytes = last.LogDB + last.LogWAL + last.CosDB + last.CosWAL
}

// profileFiles are govlogd's profiles saved after a growth: pprof path and
// file name.
var profileFiles = []struct{ path, file string }{
	{"/debug/pprof/goroutine?debug=1", "govlogd-goroutines.txt"},
	{"/debug/pprof/heap", "govlogd-heap.pprof"},
}

// logFiles are the names of the processes' output, saved after a failure.
var logFiles = []string{"govlogd.log", "witness-1.log", "witness-2.log"}

// outputs are the names of every file the soak may write into -out.
func outputs() []string {
	names := []string{"report.md", "samples.csv"}
	for _, c := range chartFiles {
		names = append(names, c.file)
	}
	for _, p := range profileFiles {
		names = append(names, p.file)
	}
	return append(names, logFiles...)
}

// saveProfiles saves govlogd's goroutine dump and heap profile into dir.
func saveProfiles(c *cluster, l *load, dir string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var saved []string
	for _, p := range profileFiles {
		b, err := get(ctx, l.hc, c.pprofURL+p.path)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, p.file), b, 0o644)
		}
		if err == nil {
			saved = append(saved, p.file)
		}
	}
	return saved
}

// saveLogs copies the processes' output into dir.
func saveLogs(c *cluster, dir string) []string {
	var saved []string
	for _, p := range c.procs() {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		name := filepath.Base(p.logPath)
		if os.WriteFile(filepath.Join(dir, name), b, 0o644) == nil {
			saved = append(saved, name)
		}
	}
	return saved
}
