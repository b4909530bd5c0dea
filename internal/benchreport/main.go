// Command benchreport is `make bench`: it runs the Go micro-benchmarks of
// govlog's hot paths, then `govlog bench` loads (the internal/loadgen
// generator, every receipt verified) against govlogd on the embedded SQLite
// backend and on Trillian + MariaDB, one after the other on the same
// machine, and writes a markdown report, PNG charts and the server's CPU
// profiles:
//
//	go run ./internal/benchreport -out docs/bench
//
// The embedded log is filled to -fill entries (default 200,000) through the
// batch endpoint, sampling the append throughput every -fill/-samples
// entries. For the full-scale run of the performance targets:
//
//	go run ./internal/benchreport -out docs/bench -fill 10000000 -samples 50 -trillian-fill 200000
//
// govlogd runs with --pprof: during the closed loop of single decisions,
// a window of the fill, the closed loop of governed executions (an allow,
// then a claim of it) and the proof lookups, a CPU profile of the server
// is taken (cpu-BACKEND-LOAD.pb.gz next to report.md) and its samples
// classified by stack into parts (profile.go: HTTP, Ed25519, storage,
// receipts, parsing, the runtime, …), set in the report against the floor
// of each part the project measures.
//
// Trillian runs need a MariaDB/MySQL server (see log/trillian/trilliantest:
// 127.0.0.1:3306, root without password, or $GOVLOG_TEST_MYSQL); without
// one, or with -trillian=false, the report has the embedded backend only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	out          string
	fill         int
	trillianFill int
	samples      int
	closedFor    time.Duration
	claimRounds  int
	claimFor     time.Duration
	clients      int
	rate         float64
	openFor      time.Duration
	proofs       int
	micro        bool
	benchtime    string
	trillian     bool
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.out, "out", "docs/bench", "`directory` for report.md and the PNG charts")
	fs.IntVar(&o.fill, "fill", 200_000, "fill the embedded log to this many `entries`")
	fs.IntVar(&o.trillianFill, "trillian-fill", 40_000, "fill the Trillian log to this many `entries`")
	fs.IntVar(&o.samples, "samples", 20, "throughput samples while filling")
	fs.DurationVar(&o.closedFor, "closed", 10*time.Second, "duration of each closed-loop single-decision run")
	fs.IntVar(&o.claimRounds, "claim-rounds", 6, "rounds of a claim's cost against a decision's, side by side")
	fs.DurationVar(&o.claimFor, "claim-for", 3*time.Second, "duration of each closed loop of a claim round")
	fs.IntVar(&o.clients, "c", 64, "clients of the single-decision runs (open loop: most requests in flight)")
	fs.Float64Var(&o.rate, "rate", 2000, "open-loop arrival rate, decisions/s")
	fs.DurationVar(&o.openFor, "open", 10*time.Second, "duration of each open-loop run")
	fs.IntVar(&o.proofs, "proofs", 20_000, "inclusion proof lookups measured on the filled log")
	fs.BoolVar(&o.micro, "micro", true, "run the Go micro-benchmarks")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "go test -benchtime of the micro-benchmarks")
	fs.BoolVar(&o.trillian, "trillian", true, "also measure Trillian + MariaDB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.fill < 1000 || o.samples < 1 || o.trillianFill < 0 || o.claimRounds < 0 {
		return fmt.Errorf("need -fill ≥ 1000, -samples ≥ 1, -trillian-fill ≥ 0 and -claim-rounds ≥ 0")
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", o.out, err)
	}
	rep := &report{Started: time.Now().UTC(), Options: o, Command: "go run ./internal/benchreport " + joinArgs(args)}
	if err := machine(rep); err != nil {
		return err
	}
	stopLoad := watchLoad(ctx, 10*time.Second)
	bin, err := os.MkdirTemp("", "benchreport-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if err := goBuild(ctx, bin); err != nil {
		return err
	}
	if o.micro {
		logger.Info("running the micro-benchmarks", "benchtime", o.benchtime)
		if rep.Micro, err = microBenchmarks(ctx, o.benchtime); err != nil {
			return err
		}
	}
	logger.Info("measuring the embedded backend")
	emb, err := measureEmbedded(ctx, logger, bin, o)
	if err != nil {
		return fmt.Errorf("failed to measure the embedded backend: %w", err)
	}
	rep.Backends = append(rep.Backends, emb)
	if o.trillian {
		logger.Info("measuring Trillian + MariaDB")
		tr, skip, err := measureTrillian(ctx, logger, bin, o)
		switch {
		case skip != nil:
			rep.TrillianSkipped = skip.Error()
			logger.Warn("Trillian skipped", "reason", skip)
		case err != nil:
			return fmt.Errorf("failed to measure Trillian: %w", err)
		default:
			rep.Backends = append(rep.Backends, tr)
		}
	}
	rep.Took = time.Since(rep.Started).Round(time.Second)
	rep.Load = stopLoad()
	return rep.write(o.out)
}
