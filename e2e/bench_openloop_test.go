package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/loadgen"
)

// TestBenchOpenLoop runs the open-loop load generator against the real
// binary at a modest fixed rate: every decision is acknowledged and
// verified, the run takes the schedule's time (not less: the rate is
// honoured), and the latency is measured from the due times.
func TestBenchOpenLoop(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  loadgen.Config
		want int // decisions
	}{
		{"single decisions, -n", loadgen.Config{N: 150, Rate: 300, Concurrency: 16}, 150},
		{"single decisions, --duration", loadgen.Config{Duration: 500 * time.Millisecond, Rate: 200, Concurrency: 16}, 100},
		{"batches", loadgen.Config{N: 400, Rate: 1000, Batch: 40, Concurrency: 4}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.LogKey = d.url, d.logKey(t)
			start := time.Now()
			rep, err := loadgen.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			if rep.Mode != "open" || rep.Decisions != tc.want || rep.Acknowledged != tc.want || rep.VerifyFailures != 0 || len(rep.Errors) != 0 {
				t.Fatalf("report: %+v", rep)
			}
			// The last request is due at (requests-1)/rate: an open loop
			// cannot finish before it.
			batch := max(cfg.Batch, 1)
			lastDue := time.Duration(float64(time.Second) * float64(tc.want-batch) / cfg.Rate)
			if took < lastDue {
				t.Fatalf("finished in %v, before the last request was due (%v): the rate was not honoured", took, lastDue)
			}
			if rep.LatencyMS.P50 <= 0 || rep.LatencyMS.P50 > rep.LatencyMS.P99 || rep.LatencyMS.P99 > rep.LatencyMS.Max {
				t.Fatalf("percentiles: %+v", rep.LatencyMS)
			}
			if rep.Late > rep.Requests {
				t.Fatalf("late %d of %d requests", rep.Late, rep.Requests)
			}
		})
	}
}

// TestBenchOpenLoopCLI runs `govlog bench --rate --duration --json` against
// the real daemon and checks the report it prints.
func TestBenchOpenLoopCLI(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "")
	code, out := govlog(t, t.TempDir(), nil, "bench", "--url", d.url, "--rate", "200", "--duration", "400ms", "-c", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	var rep struct {
		Mode         string             `json:"mode"`
		TargetRate   float64            `json:"target_rate"`
		Decisions    int                `json:"decisions"`
		Acknowledged int                `json:"acknowledged"`
		Late         int                `json:"late"`
		Errors       map[string]int     `json:"errors"`
		LatencyMS    map[string]float64 `json:"latency_ms"`
		SendLagMS    map[string]float64 `json:"send_lag_ms"`
		FromSendMS   map[string]float64 `json:"latency_from_send_ms"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Mode != "open" || rep.TargetRate != 200 || rep.Decisions != 80 || rep.Acknowledged != 80 || len(rep.Errors) != 0 {
		t.Fatalf("report: %s", out)
	}
	for _, p := range []string{"p50", "p90", "p99", "p99_9"} {
		if rep.LatencyMS[p] <= 0 || rep.FromSendMS[p] <= 0 {
			t.Fatalf("no %s latency: %s", p, out)
		}
	}
	// The latency from due time is the send lag and the round trip.
	if rep.SendLagMS == nil || rep.SendLagMS["p50"] < 0 || rep.SendLagMS["max"] > rep.LatencyMS["max"] || rep.FromSendMS["max"] > rep.LatencyMS["max"] {
		t.Fatalf("send lag or latency from send: %s", out)
	}
	code, out = govlog(t, t.TempDir(), nil, "bench", "--url", d.url, "--rate", "100", "-n", "20", "-c", "4")
	if code != 0 || !strings.Contains(out, "open loop at 100 decisions/s") || !strings.Contains(out, "acknowledged and verified: 20 ") || !strings.Contains(out, "sent late") ||
		!strings.Contains(out, "of it, sent after due time (ms): p50") || !strings.Contains(out, "from the send (ms): p50") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if code, out = govlog(t, t.TempDir(), nil, "bench", "--url", d.url, "--rate", "-1"); code == 0 {
		t.Fatalf("negative rate accepted: %s", out)
	}
}
