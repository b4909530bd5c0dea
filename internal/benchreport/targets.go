package main

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/govlog/govlog/internal/loadgen"
)

// The performance targets this report judges (docs/performance.md,
// Targets), on the embedded log.
const (
	targetSingleCPU   = 70     // µs of server CPU a single decision
	targetBatchCPU    = 30     // µs of server CPU a decision through the batch endpoint
	targetClaim       = 1.5    // a claim ÷ a decision
	targetProofCPU    = 25     // µs of server CPU an inclusion proof
	targetSingleRate  = 10_000 // single decisions/s, closed loop
	targetSingleP99   = 25     // ms, the same runs
	targetBatchRate   = 50_000 // decisions/s through the batch endpoint
	targetOpenRate    = 2000   // decisions/s, open loop
	targetOpenP99     = 10     // ms, at targetOpenRate
	targetVsTrillian  = 10     // embedded ÷ Trillian: throughput, and p99 lower
	targetAppendRatio = 0.8    // appends at size ÷ on a small log
	targetRSSMiB      = 300e6 / (1 << 20)
)

// targetTable writes the performance targets against what this run
// measured: each figure, the floor or bound the same run measured for it
// where there is one, and the verdict. A miss whose floor alone is above
// the target says so; one above its floor says by how much.
func (r *report) targetTable(b *bytes.Buffer) {
	emb := r.embedded()
	if emb == nil {
		return
	}
	var tr *backendResult
	for _, be := range r.Backends {
		if be != emb {
			tr = be
		}
	}
	o := r.Options
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Targets\n\n")
	p("The performance targets against this run, on the embedded log. *floor*: the cheapest this machine does the same work in this run ")
	p("(`internal/floor`; for the batch endpoint, its signatures and a `COMMIT`'s share, without HTTP); ")
	p("*bound*: the most the %d CPUs allow with the server and the load generator on them, %d CPUs ÷ (server + generator CPU per decision). ", r.CPUs, r.CPUs)
	p("A miss says whether the floor alone is above the target, or how far above its floor govlogd is.\n\n")
	p("| target | this run | floor or bound, this run | verdict |\n|---|---|---|---|\n")
	row := func(target, got, floor, verdict string) {
		p("| %s | %s | %s | %s |\n", target, got, floor, verdict)
	}

	// Server CPU against the floors.
	cpuRow := func(target string, limit, got, floor float64, floorName string) {
		if got == 0 {
			row(target, "—", "", "not measured")
			return
		}
		f := ""
		if floor > 0 {
			f = fmt.Sprintf("%s %.0f µs; govlogd %.2f× it", floorName, floor, got/floor)
		}
		row(target, fmt.Sprintf("%.0f µs", got), f, cpuVerdict(got, limit, floor))
	}
	durable := serverCPU(emb.DurableFloor)
	cpuRow(fmt.Sprintf("single decision, closed loop, %d clients: server CPU ≤ %d µs", o.clients, targetSingleCPU),
		targetSingleCPU, emb.loadCPU(loadSingle), durable, "the durable floor")
	var batchFloor float64
	for _, v := range r.floors(emb, loadFill) {
		batchFloor += v
	}
	cpuRow(fmt.Sprintf("batch endpoint: server CPU ≤ %d µs a decision", targetBatchCPU),
		targetBatchCPU, emb.FillCPU, batchFloor, "signatures and a `COMMIT`'s share")
	cpuRow(fmt.Sprintf("inclusion proof: server CPU ≤ %d µs", targetProofCPU),
		targetProofCPU, emb.loadCPU(loadProofs), serverCPU(emb.ProofFloor), "the HTTP floor")
	if m, ok := claimMedian(emb.ClaimRounds); ok {
		row(fmt.Sprintf("a claim ≤ %.1f× a decision, side by side", targetClaim), fmt.Sprintf("%.2f× (median of %d rounds)", m, len(emb.ClaimRounds)), "",
			verdict(m <= targetClaim))
	}

	// Throughput against what the cores allow.
	bound := func(server, client float64) float64 {
		if server <= 0 || client <= 0 {
			return 0
		}
		return float64(r.CPUs) / (server + client) * 1e6
	}
	if emb.Closed != nil && emb.ClosedFull != nil {
		got := fmt.Sprintf("small log %s, p99 %.1f ms; filled log %s, p99 %.1f ms",
			rate(emb.Closed.PerSecond), emb.Closed.LatencyMS.P99, rate(emb.ClosedFull.PerSecond), emb.ClosedFull.LatencyMS.P99)
		f := ""
		if bd := bound(emb.Closed.ServerCPUPerDecision, emb.Closed.ClientCPUPerDecision); bd > 0 {
			f = fmt.Sprintf("bound %s (%.0f + %.0f µs)", rate(bd), emb.Closed.ServerCPUPerDecision, emb.Closed.ClientCPUPerDecision)
			if bf := bound(durable, emb.Closed.ClientCPUPerDecision); bf > 0 {
				f += fmt.Sprintf("; with the durable floor's server CPU %s", rate(bf))
			}
		}
		ok := min(emb.Closed.PerSecond, emb.ClosedFull.PerSecond) >= targetSingleRate &&
			max(emb.Closed.LatencyMS.P99, emb.ClosedFull.LatencyMS.P99) <= targetSingleP99
		row(fmt.Sprintf("≥ %s single decisions/s, p99 ≤ %d ms", thousands(targetSingleRate), targetSingleP99), got, f, verdict(ok))
	}
	if emb.FillRate > 0 {
		f := ""
		if bd := bound(emb.FillCPU, emb.FillClientCPU); bd > 0 {
			f = fmt.Sprintf("bound %s (%.0f + %.0f µs)", rate(bd), emb.FillCPU, emb.FillClientCPU)
			if bf := bound(batchFloor, emb.FillClientCPU); batchFloor > 0 && bf > 0 {
				f += fmt.Sprintf("; with the floor's server CPU %s", rate(bf))
			}
		}
		row(fmt.Sprintf("batch endpoint ≥ %s decisions/s", thousands(targetBatchRate)), rate(emb.FillRate), f,
			verdict(emb.FillRate >= targetBatchRate))
	}
	if emb.Open != nil {
		got := fmt.Sprintf("p99 %.1f ms at %s (%d of %d sent late)", emb.Open.LatencyMS.P99, rate(emb.Open.PerSecond), emb.Open.Late, emb.Open.Requests)
		v := verdict(emb.Open.LatencyMS.P99 <= targetOpenP99)
		if o.rate != targetOpenRate {
			v = "not judged: the run's rate is " + rate(o.rate)
		}
		row(fmt.Sprintf("open loop at %s decisions/s: p99 ≤ %d ms", thousands(targetOpenRate), targetOpenP99), got, "", v)
	}

	// Against Trillian, and at size.
	if tr != nil {
		type ratio struct {
			name   string
			emb, t float64
		}
		through := []ratio{{"single, small log", perSecond(emb.Closed), perSecond(tr.Closed)}, {"single, filled", perSecond(emb.ClosedFull), perSecond(tr.ClosedFull)},
			{"batch", emb.FillRate, tr.FillRate}, {"proofs", perSecond(emb.Proofs), perSecond(tr.Proofs)}}
		lower := []ratio{{"closed loop, small log", p99(tr.Closed), p99(emb.Closed)}, {"filled", p99(tr.ClosedFull), p99(emb.ClosedFull)},
			{"open loop", p99(tr.Open), p99(emb.Open)}}
		each := func(rs []ratio) (string, bool) {
			var parts []string
			ok := true
			for _, x := range rs {
				if x.emb <= 0 || x.t <= 0 {
					parts = append(parts, x.name+" —")
					ok = false
					continue
				}
				parts = append(parts, fmt.Sprintf("%s %.1f×", x.name, x.emb/x.t))
				ok = ok && x.emb/x.t >= targetVsTrillian
			}
			return strings.Join(parts, ", "), ok
		}
		got, ok := each(through)
		row(fmt.Sprintf("embedded ≥ %d× Trillian's throughput", targetVsTrillian), got, "", verdict(ok))
		got, ok = each(lower)
		row(fmt.Sprintf("… and a p99 ≥ %d× lower", targetVsTrillian), got, "", verdict(ok))
	}
	if n := len(emb.Fill); n >= 2 && emb.Fill[0].PerSecond > 0 {
		ratio := emb.Fill[n-1].PerSecond / emb.Fill[0].PerSecond
		row(fmt.Sprintf("appends at 10,000,000 entries within %.0f%% of a small log", (1-targetAppendRatio)*100),
			fmt.Sprintf("the batch endpoint's last fill step ÷ its first: %.2f× at %s entries", ratio, thousands(emb.Fill[n-1].Size)), "",
			atSize(verdict(ratio >= targetAppendRatio), emb.Fill[n-1].Size))
	}
	if emb.RSSMiB > 0 {
		row(fmt.Sprintf("resident memory ≤ %.0f MiB (300 MB) at 10,000,000 entries", targetRSSMiB), fmt.Sprintf("%.0f MiB at %s entries", emb.RSSMiB, thousands(emb.Entries)), "",
			atSize(verdict(emb.RSSMiB <= targetRSSMiB), emb.Entries))
	}
	p("\nNot measured here: govlog on Trillian against raw Trillian (docs/trillian.md), and storage against the raw entries at 10,000,000 (docs/performance.md).\n\n")
}

// embedded is the embedded backend's result, nil when it was not measured.
func (r *report) embedded() *backendResult {
	for _, be := range r.Backends {
		if be.StorageBytes > 0 || be.Floor != nil {
			return be
		}
	}
	return nil
}

// cpuVerdict judges a CPU figure against its target and its floor.
func cpuVerdict(got, limit, floor float64) string {
	switch {
	case got <= limit:
		return "**met**"
	case floor > limit:
		return "**missed**: the floor alone is above the target"
	default:
		return "**missed**"
	}
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// atSize qualifies a verdict on a log smaller than the target's.
func atSize(v string, size int) string {
	if size < 10_000_000 {
		return v + fmt.Sprintf(" at %s entries (the target is at 10,000,000: `-fill 10000000`)", thousands(size))
	}
	return v
}

// claimMedian is the median of the rounds' claim ÷ decision.
func claimMedian(rounds []claimRound) (float64, bool) {
	if len(rounds) == 0 {
		return 0, false
	}
	rs := make([]float64, len(rounds))
	for i, r := range rounds {
		rs[i] = r.Ratio()
	}
	slices.Sort(rs)
	med := rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + med) / 2
	}
	return med, true
}

// rate is a throughput in operations a second.
func rate(v float64) string { return thousands(int(math.Round(v))) + "/s" }

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// perSecond is a run's throughput, 0 for a run not made.
func perSecond(rep *loadgen.Report) float64 {
	if rep == nil {
		return 0
	}
	return rep.PerSecond
}

// p99 is a run's 99th percentile latency in ms, 0 for a run not made.
func p99(rep *loadgen.Report) float64 {
	if rep == nil {
		return 0
	}
	return rep.LatencyMS.P99
}
