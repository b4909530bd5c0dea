package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"sync/atomic"
	"time"

	"github.com/govlog/govlog/internal/loadgen"
)

// bench load-tests a govlog server and verifies every receipt it gets.
func bench(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("bench", "[flags]",
		"Load-test a govlog server: submit decisions (or look up inclusion proofs) from concurrent clients, "+
			"verify every receipt, and report throughput, latency, the server's CPU per decision (from its /metrics) and the load generator's own.")
	srv := addServerFlags(f)
	f.Group("Load")
	n := f.Int("n", 10000, "submit `N` decisions; with --duration, at most N when given")
	duration := f.Duration("duration", 0, "run for this long instead of a number of decisions, such as 30s")
	rate := f.Float64("rate", 0, "open loop: submit at a fixed rate of `R` decisions/s, latency measured from each request's due time (default: closed loop)")
	c := f.Int("c", 64, "`C` concurrent clients (open loop: at most C requests in flight)")
	batch := f.Int("batch", 0, "submit through the batch endpoint, `B` decisions per request (default: one decision per request)")
	proofs := f.Bool("proofs", false, "measure inclusion proof lookups (-n of them, each verified) instead of submitting")
	claims := f.Bool("claims", false, "governed executions: each of the N operations is an allow, then a claim of it with its artifact "+
		"(both verified); the server's CPU is then per allow and claim")
	keyArg := f.String("log-key", "", "verify checkpoints with this note verifier `key` (default: the key the server publishes)")
	replayed := f.Bool("replayed-receipts", false, "accept receipts that verify but are of other entries than the ones submitted "+
		"(for internal/floor, which answers with receipts it took from a log; by default such a receipt fails)")
	f.Group("Output")
	asJSON := f.Bool("json", false, "print the report as JSON")
	quiet := f.Bool("quiet", false, "no progress on the terminal")
	cpuProfile := f.String("cpuprofile", "", "write a CPU profile of the load generator to `file`")
	traceFile := f.String("trace", "", "write a Go execution trace of the load generator to `file` (go tool trace)")
	f.Example("govlog bench --url http://127.0.0.1:8080 -n 20000 -c 64", "20,000 single decisions from 64 clients")
	f.Example("govlog bench --url http://127.0.0.1:8080 --duration 30s --rate 2000 --batch 100", "open loop: 2,000 decisions/s in batches of 100 for 30 seconds")
	if err := srv.parse(f, args, stdout); err != nil {
		return err
	}
	switch {
	case *n < 1 || *c < 1 || *batch < 0 || *batch > 1000:
		return f.usagef("need -n ≥ 1, -c ≥ 1 and 0 ≤ --batch ≤ 1000")
	case *duration < 0 || *rate < 0:
		return f.usagef("need --duration ≥ 0 and --rate ≥ 0")
	case *proofs && (*duration > 0 || *rate > 0):
		return f.usagef("--proofs takes -n, not --duration or --rate")
	case *claims && (*batch > 1 || *rate > 0 || *proofs):
		return f.usagef("--claims runs closed loop with single submissions: not with --batch, --rate or --proofs")
	case f.NArg() != 0:
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	token, err := srv.token()
	if err != nil {
		return err
	}
	cfg := loadgen.Config{URL: *srv.url, N: *n, Duration: *duration, Rate: *rate, Concurrency: *c, Batch: *batch, Token: token, Claims: *claims, Replayed: *replayed}
	if *duration > 0 && !f.IsSet("n") {
		cfg.N = 0
	}
	if *keyArg != "" {
		key, err := readVerifierKey(*keyArg)
		if err != nil {
			return f.usagef("--log-key: %v", err)
		}
		cfg.LogKey = key
	}
	if *cpuProfile != "" {
		out, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return fmt.Errorf("failed to start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		out, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := trace.Start(out); err != nil {
			return fmt.Errorf("failed to start the execution trace: %w", err)
		}
		defer trace.Stop()
	}
	defer loadgen.SetGCPercent(*batch)()
	run := loadgen.Run
	if *proofs {
		run = loadgen.RunProofs
	}
	stop := showProgress(newProgress(*quiet, "decisions"), &cfg)
	rep, err := run(ctx, cfg)
	stop()
	if err != nil {
		return fmt.Errorf("failed to run the load: %w", err)
	}
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, cfg, *proofs, rep)
	}
	if rep.VerifyFailures > 0 {
		return fmt.Errorf("%d receipts did NOT verify (first: %s)", rep.VerifyFailures, rep.FirstVerifyErr)
	}
	return nil
}

// showProgress draws the progress of a run (cfg.Done of cfg.N) on bar
// until the returned function is called.
func showProgress(bar *progress, cfg *loadgen.Config) (stop func()) {
	if bar == nil {
		return func() {}
	}
	cfg.Done = new(atomic.Int64)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				bar.finish()
				return
			case <-t.C:
				bar.update(uint64(cfg.Done.Load()), uint64(cfg.N))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func printReport(w io.Writer, cfg loadgen.Config, proofs bool, r *loadgen.Report) {
	if proofs {
		fmt.Fprintf(w, "%d inclusion proof lookups, %d clients, %.2fs\n", r.Requests, cfg.Concurrency, r.Seconds)
		fmt.Fprintf(w, "verified: %d (%.0f proofs/s)\n", r.Acknowledged, r.PerSecond)
	} else {
		mode := "single decisions"
		if cfg.Batch > 1 {
			mode = fmt.Sprintf("batches of %d", cfg.Batch)
		}
		if r.Mode == "open" {
			fmt.Fprintf(w, "open loop at %.0f decisions/s, at most %d in flight: %d decisions, %s, %.2fs\n", r.TargetRate, cfg.Concurrency, r.Decisions, mode, r.Seconds)
			fmt.Fprintf(w, "requests sent late (all clients busy > %v after due): %d of %d\n", loadgen.LateAfter, r.Late, r.Requests)
		} else {
			fmt.Fprintf(w, "%d decisions, %s, %d clients, %.2fs\n", r.Decisions, mode, cfg.Concurrency, r.Seconds)
		}
		fmt.Fprintf(w, "acknowledged and verified: %d (%.0f decisions/s)\n", r.Acknowledged, r.PerSecond)
	}
	l := r.LatencyMS
	from := ""
	if r.Mode == "open" {
		from = ", from due time"
	}
	fmt.Fprintf(w, "latency per request (ms%s): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", from, l.P50, l.P90, l.P99, l.P999, l.Max)
	if s := r.SendLagMS; s != nil {
		fmt.Fprintf(w, "  of it, sent after due time (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	if s := r.FromSendMS; s != nil {
		fmt.Fprintf(w, "  from the send (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", s.P50, s.P90, s.P99, s.P999, s.Max)
	}
	codes := make([]string, 0, len(r.Errors))
	for code := range r.Errors {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	unit := "decision"
	if proofs {
		unit = "proof"
	}
	if r.ServerCPUError != "" {
		fmt.Fprintf(w, "server CPU per %s: unknown (%s)\n", unit, r.ServerCPUError)
	} else {
		fmt.Fprintf(w, "server CPU per %s: %.1f µs (%.2f s of CPU for %d)\n", unit, r.ServerCPUPerDecision, r.ServerCPUSeconds, r.Acknowledged)
	}
	fmt.Fprintf(w, "load generator CPU per %s: %.1f µs (%.2f s of CPU for %d)\n", unit, r.ClientCPUPerDecision, r.ClientCPUSeconds, r.Acknowledged)
	fmt.Fprintf(w, "errors: %d", len(codes))
	for _, code := range codes {
		fmt.Fprintf(w, "  %s=%d", code, r.Errors[code])
	}
	fmt.Fprintf(w, "\nreceipts failing verification: %d\n", r.VerifyFailures)
}
