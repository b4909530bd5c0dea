package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/govlog/govlog/internal/loadgen"
)

// bench load-tests a govlog server and verifies every receipt it gets.
func bench(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("bench", "bench --url URL -n N -c C [--batch B] [--log-key VKEY] [--json]")
	url := f.String("url", "", "the govlog server's base `URL` (required)")
	n := f.Int("n", 10000, "number of decisions to submit")
	c := f.Int("c", 64, "number of concurrent clients")
	batch := f.Int("batch", 0, "submit through the batch endpoint, `B` decisions per request (0: one decision per request)")
	keyArg := f.String("log-key", "", "verify checkpoints with this note verifier `key` (default: the key the server publishes)")
	asJSON := f.Bool("json", false, "print the report as JSON")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *url == "":
		return f.usagef("--url is required")
	case *n < 1 || *c < 1 || *batch < 0 || *batch > 1000:
		return f.usagef("need -n ≥ 1, -c ≥ 1 and 0 ≤ --batch ≤ 1000")
	case f.NArg() != 0:
		return f.usagef("unexpected arguments %q", f.Args())
	}
	cfg := loadgen.Config{URL: *url, N: *n, Concurrency: *c, Batch: *batch}
	if *keyArg != "" {
		key, err := readVerifierKey(*keyArg)
		if err != nil {
			return f.usagef("--log-key: %v", err)
		}
		cfg.LogKey = key
	}
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("failed to run the load: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, cfg, rep)
	}
	if rep.VerifyFailures > 0 {
		return fmt.Errorf("%d receipts did NOT verify (first: %s)", rep.VerifyFailures, rep.FirstVerifyErr)
	}
	return nil
}

func printReport(w io.Writer, cfg loadgen.Config, r *loadgen.Report) {
	mode := "single decisions"
	if cfg.Batch > 1 {
		mode = fmt.Sprintf("batches of %d", cfg.Batch)
	}
	fmt.Fprintf(w, "%d decisions, %s, %d clients, %.2fs\n", r.Decisions, mode, cfg.Concurrency, r.Seconds)
	fmt.Fprintf(w, "acknowledged and verified: %d (%.0f decisions/s)\n", r.Acknowledged, r.PerSecond)
	l := r.LatencyMS
	fmt.Fprintf(w, "latency per request (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	codes := make([]string, 0, len(r.Errors))
	for code := range r.Errors {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	fmt.Fprintf(w, "errors: %d", len(codes))
	for _, code := range codes {
		fmt.Fprintf(w, "  %s=%d", code, r.Errors[code])
	}
	fmt.Fprintf(w, "\nreceipts failing verification: %d\n", r.VerifyFailures)
}
