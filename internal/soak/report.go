package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/govlog/govlog/internal/loadgen"
)

// report is everything one soak measured and concluded.
type report struct {
	Started   time.Time
	Took      time.Duration
	Command   string
	Options   options
	CPUs      int
	CPUModel  string
	GoVersion string
	Policy    string
	Witnesses []string

	Samples []sample
	// Requests, Acked and Late add up the single-decision runs.
	Requests, Acked, Late int
	// Totals is everything else the load did.
	Totals counts
	Final  struct {
		TreeSize       uint64
		CatchUpSeconds float64
		AuditSeconds   float64
		Audited        uint64
		StorageBytes   int64
	}
	ShutdownSeconds float64

	// Verdicts judge each rule; NotJudged says why there are none.
	Verdicts  []verdict
	NotJudged string
	// Growth lists the figures that grew; Problems everything that failed
	// the soak, growth included.
	Growth      []string
	Problems    []string
	Interrupted bool
	// Profiles and Logs are the files saved next to the report.
	Profiles, Logs []string
	// pids are the child processes' (for the tests).
	pids []int
}

func (r *report) singles(rep *loadgen.Report) {
	r.Requests += rep.Requests
	r.Acked += rep.Acknowledged
	r.Late += rep.Late
}

func (r *report) problem(p string) { r.Problems = append(r.Problems, p) }

// rule is a flatness rule: a figure fails when its last-quarter median
// exceeds its second-quarter median by more than pct percent and by more
// than abs.
type rule struct {
	What string
	Unit string
	Pct  float64
	Abs  float64
	get  func(sample) float64
}

// rules are the flatness rules for govlogd and its witnesses; conns is
// the most connections the load opens. Sockets and goroutines are judged
// apart: each keep-alive connection of the load holds a socket and a
// goroutine in govlogd, and the load's connection pool grows and shrinks
// with the latency spikes (up to conns), so only a growth beyond that pool
// is a leak of connections.
func rules(witnesses []string, conns int) []rule {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	rs := []rule{
		{"govlogd resident memory", "MiB", 25, 8, func(s sample) float64 { return s.RSSMiB }},
		{"govlogd goroutines, less one per socket", "", 10, 20, func(s sample) float64 { return float64(s.Goroutines - s.Sockets) }},
		{"govlogd open files other than sockets", "", 10, 10, func(s sample) float64 { return float64(s.FDs - s.Sockets) }},
		{"govlogd sockets", "", 10, float64(conns), func(s sample) float64 { return float64(s.Sockets) }},
		{"log.db-wal", "MiB", 100, 64, func(s sample) float64 { return mib(s.LogWAL) }},
		{"cosigned.db-wal", "MiB", 100, 64, func(s sample) float64 { return mib(s.CosWAL) }},
	}
	for i, name := range witnesses {
		w := func(s sample) witnessSample { return s.Witnesses[i] }
		rs = append(rs,
			rule{name + " resident memory", "MiB", 25, 8, func(s sample) float64 { return w(s).RSSMiB }},
			rule{name + " goroutines, less one per socket", "", 10, 20, func(s sample) float64 { return float64(w(s).Goroutines - w(s).Sockets) }},
			rule{name + " open files other than sockets", "", 10, 10, func(s sample) float64 { return float64(w(s).FDs - w(s).Sockets) }},
			rule{name + " sockets", "", 10, 10, func(s sample) float64 { return float64(w(s).Sockets) }})
	}
	return rs
}

// verdict is a rule applied to the samples.
type verdict struct {
	rule
	Base, Last float64
	Grew       bool
}

// quarters returns the second and the last quarter of the samples (nil
// when there are fewer than 4).
func quarters(s []sample) (second, last []sample) {
	q := len(s) / 4
	if q == 0 {
		return nil, nil
	}
	return s[q : 2*q], s[len(s)-q:]
}

func median(s []sample, f func(sample) float64) float64 {
	v := make([]float64, len(s))
	for i := range s {
		v[i] = f(s[i])
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// judge applies the flatness rules.
func (r *report) judge() {
	second, last := quarters(r.Samples)
	if second == nil {
		r.NotJudged = fmt.Sprintf("only %d samples: flatness needs at least 4", len(r.Samples))
		return
	}
	for _, ru := range rules(r.Witnesses, connCap(r.Options)) {
		v := verdict{rule: ru, Base: median(second, ru.get), Last: median(last, ru.get)}
		g := v.Last - v.Base
		v.Grew = g > ru.Abs && g > v.Base*ru.Pct/100
		r.Verdicts = append(r.Verdicts, v)
		if v.Grew {
			r.Growth = append(r.Growth, fmt.Sprintf("%s grew from %s to %s (%s; the limit is %s)", ru.What, v.fmt(v.Base), v.fmt(v.Last), v.growth(), v.limit()))
		}
	}
}

func (v verdict) fmt(x float64) string {
	if v.Unit == "" {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprintf("%.1f %s", x, v.Unit)
}

func (v verdict) growth() string {
	g := v.Last - v.Base
	pct := "—"
	if v.Base > 0 {
		pct = fmt.Sprintf("%+.0f%%", 100*g/v.Base)
	}
	if v.Unit == "" {
		return fmt.Sprintf("%+g, %s", g, pct)
	}
	return fmt.Sprintf("%+.1f %s, %s", g, v.Unit, pct)
}

func (v verdict) limit() string {
	if v.Unit == "" {
		return fmt.Sprintf("+%g%% and +%g", v.Pct, v.Abs)
	}
	return fmt.Sprintf("+%g%% and +%g %s", v.Pct, v.Abs, v.Unit)
}

// collect turns growth, errors, verification failures and audit failures
// into problems.
func (r *report) collect() {
	r.Problems = append(r.Growth, r.Problems...)
	t := &r.Totals
	if n := t.errorCount(); n > 0 {
		r.problem(fmt.Sprintf("%d errors: %s", n, r.errorList()))
	}
	failedPushes := 0
	for _, s := range r.Samples {
		failedPushes += s.PushNo
	}
	if failedPushes > 0 {
		r.problem(fmt.Sprintf("%d pushes of a checkpoint to a witness failed (govlog_witness_pushes_total of govlogd, by result)", failedPushes))
	}
	if t.VerifyFailures > 0 {
		r.problem(fmt.Sprintf("%d receipts, proofs or checkpoints did not verify (first: %s)", t.VerifyFailures, t.FirstVerifyErr))
	}
	for _, a := range t.Audits {
		if a.Failure != "" {
			r.problem(fmt.Sprintf("an audit up to tree size %d failed: %s", a.TreeSize, a.Failure))
		}
	}
	var findings uint64
	for _, a := range t.Audits {
		findings += a.Findings
	}
	if findings > 0 {
		r.problem(fmt.Sprintf("the audits reported %d findings (late executions or sequence gaps) where none were expected", findings))
	}
}

func (r *report) errorList() string {
	keys := make([]string, 0, len(r.Totals.Errors))
	for k := range r.Totals.Errors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		p := fmt.Sprintf("%s ×%d", k, r.Totals.Errors[k])
		if ex := r.Totals.ErrorExamples[k]; ex != "" {
			p += fmt.Sprintf(" (%.200s)", ex)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// write writes report.md, samples.csv and the charts into dir.
func (r *report) write(dir string) error {
	if len(r.Samples) > 0 {
		if err := r.charts(dir); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "samples.csv"), r.csv(), 0o644); err != nil {
		return fmt.Errorf("failed to write the samples: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), r.markdown(), 0o644); err != nil {
		return fmt.Errorf("failed to write the report: %w", err)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *report) markdown() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := r.Options
	p("# govlog soak report\n\n")
	p("Generated by `make soak` (`%s`) on %s, %d CPUs (%s), %s. The load ran %v, sampled every %v (%d samples); ",
		r.Command, r.Started.Format("2006-01-02 15:04 MST"), r.CPUs, r.CPUModel, r.GoVersion, r.Took, o.interval, len(r.Samples))
	p("the load generator, govlogd and both witnesses share the machine.\n\n")
	switch {
	case r.Interrupted:
		p("**Interrupted** after %v: the report covers the samples taken; the witnesses' catch-up, the final audit and the clean shutdown were not checked.\n\n", r.Took)
	case len(r.Problems) == 0:
		p("**Verdict: flat.** No error; every receipt, proof, checkpoint and audit verified; the witnesses caught up; govlogd shut down cleanly; nothing grew beyond its limit.\n\n")
	default:
		p("**Verdict: failed.**\n\n")
	}
	for _, pr := range r.Problems {
		// A process's last lines go in a block under the problem.
		first, rest, _ := strings.Cut(pr, "\n")
		p("- %s\n", first)
		if rest != "" {
			p("\n  ```\n  %s\n  ```\n", strings.ReplaceAll(rest, "\n", "\n  "))
		}
	}
	if len(r.Problems) > 0 {
		p("\n")
	}
	if len(r.Profiles)+len(r.Logs) > 0 {
		p("Saved next to this report: %s.\n\n", strings.Join(append(slices.Clone(r.Profiles), r.Logs...), ", "))
	}

	p("## Setup\n\n")
	p("govlogd on the embedded SQLite backend, loopback, `--witness-mode %s`, with two govlog-witness processes and this policy:\n\n```\n%s```\n\n", o.witnessMode, r.Policy)
	p("The load, bounded in rate:\n\n")
	p("- single decisions, open loop at %.0f/s (at most %d in flight; about 10%% name a parent), latency from each request's due time, every receipt verified; ", o.rate, o.clients)
	p("one run per interval, back to back (the pause while the last requests of a run are answered shows as an achieved rate a little below the target);\n")
	p("- a batch of %d decisions every %v, every receipt verified;\n", o.batchSize, o.batchEvery)
	p("- %g allow decisions per second, each followed by the report of its execution (both receipts verified);\n", o.execRate)
	p("- %g reads per second: checkpoints (REST and tiles, each checked consistent with the previous ones), inclusion proofs verified against a checkpoint, pages of entries, entry bundles checked against their level-0 tiles, receipts;\n", o.readRate)
	p("- an incremental audit every %v (the previous audit's state, saved and reloaded);\n", o.auditEvery)
	p("- govlogd pushing every checkpoint to both witnesses.\n\n")

	p("## Flatness\n\n")
	p("The first quarter of the samples is warm-up. The median of the last quarter is compared with the median of the second quarter; a figure fails when it grew by more than both limits. ")
	p("Each keep-alive connection of the load holds a socket and a goroutine in govlogd, and the load's pool of connections (at most %d) grows and shrinks with the latency spikes: ", connCap(o))
	p("so goroutines are judged less one per socket, open files without the sockets, and the sockets may not grow by more than the whole pool.\n\n")
	if r.NotJudged != "" {
		p("Not judged: %s.\n\n", r.NotJudged)
	} else {
		p("| figure | 2nd quarter | last quarter | growth | limit | |\n|---|---:|---:|---:|---|---|\n")
		for _, v := range r.Verdicts {
			ok := "ok"
			if v.Grew {
				ok = "**grew**"
			}
			p("| %s | %s | %s | %s | %s | %s |\n", v.What, v.fmt(v.Base), v.fmt(v.Last), v.growth(), v.limit(), ok)
		}
		p("\n")
		second, last := quarters(r.Samples)
		p99 := func(s sample) float64 { return s.P99 }
		rate := func(s sample) float64 { return s.Rate }
		p("Not judged (they depend on the machine): single-decision p99 %.1f → %.1f ms, achieved rate %.0f → %.0f decisions/s.\n\n",
			median(second, p99), median(last, p99), median(second, rate), median(last, rate))
	}

	p("## Totals\n\n| | |\n|---|---|\n")
	t := &r.Totals
	secs := r.Took.Seconds()
	p("| single decisions | %d requests, %d acknowledged (%.0f/s), %d sent late |\n", r.Requests, r.Acked, float64(r.Acked)/math.Max(secs, 1), r.Late)
	if len(r.Samples) > 0 {
		all := func(s sample) float64 { return s.P50 }
		worst := func(f func(sample) float64) float64 {
			m := 0.0
			for _, s := range r.Samples {
				m = math.Max(m, f(s))
			}
			return m
		}
		p("| single-decision latency (per interval) | median p50 %.1f ms, median p99 %.1f ms; worst p99 %.1f ms, worst p99.9 %.1f ms, max %.1f ms |\n",
			median(r.Samples, all), median(r.Samples, func(s sample) float64 { return s.P99 }),
			worst(func(s sample) float64 { return s.P99 }), worst(func(s sample) float64 { return s.P999 }), worst(func(s sample) float64 { return s.Max }))
	}
	p("| batches | %d (%d decisions) |\n", t.Batches, t.BatchDecisions)
	p("| executions | %d decisions each followed by its execution report |\n", t.Executions)
	reads := 0
	var kinds []string
	for _, m := range readMix {
		reads += t.Reads[m.kind]
		kinds = append(kinds, fmt.Sprintf("%s %d", m.kind, t.Reads[m.kind]))
	}
	p("| reads | %d: %s; %d skipped (all %d readers busy) |\n", reads, strings.Join(kinds, ", "), t.ReadSkipped, maxReads)
	if n := len(t.Audits); n > 0 {
		maxSec := 0.0
		for _, a := range t.Audits {
			maxSec = math.Max(maxSec, a.Seconds)
		}
		last := t.Audits[n-1]
		p("| audits | %d, the longest %.1f s; the last up to tree size %d, its state %d KiB |\n", n, maxSec, last.TreeSize, last.StateBytes/1024)
	}
	pushOK, pushNo := 0, 0
	var lagMax int64
	for _, s := range r.Samples {
		pushOK += s.PushesOK
		pushNo += s.PushNo
		lagMax = max(lagMax, s.Lag())
	}
	p("| witness pushes | %d cosigned, %d failed |\n", pushOK, pushNo)
	if len(r.Samples) > 0 {
		p("| cosigned checkpoint behind the tree (at the samples) | median %.0f, max %d entries |\n", median(r.Samples, func(s sample) float64 { return float64(s.Lag()) }), lagMax)
	}
	if f := r.Final; f.TreeSize > 0 {
		p("| final tree size | %d; storage %.1f MiB (%.0f B per entry) |\n", f.TreeSize, mib(f.StorageBytes), float64(f.StorageBytes)/float64(f.TreeSize))
		p("| after the load | witnesses caught up in %.1f s; final audit %.2f s up to %d |\n", f.CatchUpSeconds, f.AuditSeconds, f.Audited)
	}
	p("| govlogd shutdown (SIGTERM to exit) | %.1f s |\n", r.ShutdownSeconds)
	p("| errors; failed verifications | %d; %d |\n\n", t.errorCount(), t.VerifyFailures)
	if len(r.Samples) == 0 {
		return b.Bytes()
	}

	p("## Charts\n\n")
	for _, c := range chartFiles {
		p("![%s](%s)\n\n", c.title, c.file)
	}

	p("## Samples\n\nAt the end of each interval; latency, rate, reads and errors cover the interval (samples.csv has every figure).\n\n")
	p("| t | RSS MiB | heap MiB | goroutines | fds (sockets) | tree size | log.db + WAL MiB | decisions/s | p50 / p99 / p99.9 ms | reads | errors | audit s | witness lag |")
	for i := range r.Witnesses {
		p(" w%d RSS MiB / goroutines / fds (sockets) |", i+1)
	}
	p("\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for range r.Witnesses {
		p("---:|")
	}
	p("\n")
	for _, s := range r.Samples {
		audit := "—"
		if s.Audits > 0 {
			audit = fmt.Sprintf("%.1f", s.AuditSeconds)
		}
		p("| %s | %.1f | %.1f | %d | %d (%d) | %d | %.1f + %.1f | %.0f | %.1f / %.1f / %.1f | %d | %d | %s | %d |",
			fmtAt(s.At), s.RSSMiB, s.HeapMiB, s.Goroutines, s.FDs, s.Sockets, s.TreeSize, mib(s.LogDB), mib(s.LogWAL), s.Rate,
			s.P50, s.P99, s.P999, s.Reads, s.Errors+s.VerifyFailures, audit, s.Lag())
		for _, w := range s.Witnesses {
			p(" %.1f / %d / %d (%d) |", w.RSSMiB, w.Goroutines, w.FDs, w.Sockets)
		}
		p("\n")
	}
	return b.Bytes()
}

func fmtAt(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func (r *report) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"t_seconds", "rss_mib", "heap_mib", "goroutines", "fds", "sockets", "tree_size", "cosigned_size",
		"log_db_bytes", "log_wal_bytes", "cosigned_db_bytes", "cosigned_wal_bytes", "pushes_cosigned", "pushes_failed",
		"requests", "acknowledged", "decisions_per_second", "p50_ms", "p99_ms", "p999_ms", "max_ms", "late",
		"batches", "batch_decisions", "executions", "reads", "read_p99_ms", "errors", "verify_failures",
		"audits", "audit_seconds", "audit_entries"}
	for i := range r.Witnesses {
		for _, f := range []string{"rss_mib", "goroutines", "fds", "sockets", "db_bytes", "lag"} {
			head = append(head, fmt.Sprintf("w%d_%s", i+1, f))
		}
	}
	w.Write(head)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	d := func(x int64) string { return strconv.FormatInt(x, 10) }
	for _, s := range r.Samples {
		row := []string{f(math.Round(s.At.Seconds()*10) / 10), f(math.Round(s.RSSMiB*10) / 10), f(math.Round(s.HeapMiB*10) / 10),
			d(int64(s.Goroutines)), d(int64(s.FDs)), d(int64(s.Sockets)), d(int64(s.TreeSize)), d(int64(s.Cosigned)),
			d(s.LogDB), d(s.LogWAL), d(s.CosDB), d(s.CosWAL), d(int64(s.PushesOK)), d(int64(s.PushNo)),
			d(int64(s.Requests)), d(int64(s.Acked)), f(math.Round(s.Rate)), f(s.P50), f(s.P99), f(s.P999), f(s.Max), d(int64(s.Late)),
			d(int64(s.Batches)), d(int64(s.BatchDecisions)), d(int64(s.Executions)), d(int64(s.Reads)), f(s.ReadP99),
			d(int64(s.Errors)), d(int64(s.VerifyFailures)), d(int64(s.Audits)), f(math.Round(s.AuditSeconds*100) / 100), d(int64(s.AuditEntries))}
		for _, ws := range s.Witnesses {
			row = append(row, f(math.Round(ws.RSSMiB*10)/10), d(int64(ws.Goroutines)), d(int64(ws.FDs)), d(int64(ws.Sockets)), d(ws.DBBytes), d(ws.Lag))
		}
		w.Write(row)
	}
	w.Flush()
	return b.Bytes()
}
