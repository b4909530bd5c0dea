package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govlog/govlog/client"
	vaudit "github.com/govlog/govlog/verifier/audit"
	"golang.org/x/mod/sumdb/note"
)

// errAuditFailed is returned (exit status 1) once the report is printed.
var errAuditFailed = errors.New("the log failed the audit")

// auditFlags are the flags audit and monitor share.
type auditFlags struct {
	url, key, state, tokenFile, gzip *string
	workers                          *int
	asJSON                           *bool
}

func addAuditFlags(f *flags) *auditFlags {
	return &auditFlags{
		url:       f.String("url", "", "the govlog server's base `URL` (required)"),
		key:       f.String("log-key", "", "the log's note verifier `key`: a file holding it, or the key text (required)"),
		state:     f.String("state", "", "keep the audit state in `FILE` and, when it exists, audit only what is new since"),
		tokenFile: f.String("token-file", "", "send the bearer token in this `file` (default: $GOVLOG_TOKEN, if set), for logs whose reads need one"),
		workers:   f.Int("workers", 0, "entry bundles fetched and checked at once (default: 2 per CPU, plus 2)"),
		asJSON:    f.Bool("json", false, "print JSON"),
		gzip:      f.String("gzip", "auto", "ask for gzip-compressed entry bundles: on, off, or auto (on unless the log is on loopback, where compressing costs more than it saves)"),
	}
}

// useGzip decides whether to ask for compressed entry bundles.
func useGzip(mode, rawURL string) (bool, error) {
	switch mode {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto":
		u, err := url.Parse(rawURL)
		if err != nil {
			return true, nil
		}
		host := u.Hostname()
		if host == "localhost" {
			return false, nil
		}
		ip := net.ParseIP(host)
		return ip == nil || !ip.IsLoopback(), nil
	}
	return false, fmt.Errorf("want on, off or auto, got %q", mode)
}

// client returns the client of the audited log, and the previous state
// (nil when --state is unset or the file does not exist yet).
func (a *auditFlags) client(f *flags) (*client.Client, *vaudit.State, error) {
	switch {
	case *a.url == "":
		return nil, nil, f.usagef("--url is required")
	case *a.key == "":
		return nil, nil, f.usagef("--log-key is required")
	case f.NArg() != 0:
		return nil, nil, f.usagef("unexpected arguments %q", f.Args())
	case *a.workers < 0:
		return nil, nil, f.usagef("--workers must not be negative")
	}
	key, err := readVerifierKey(*a.key)
	if err != nil {
		return nil, nil, f.usagef("--log-key: %v", err)
	}
	workers := *a.workers
	if workers == 0 {
		workers = 2*runtime.GOMAXPROCS(0) + 2
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = workers + 4
	gzip, err := useGzip(*a.gzip, *a.url)
	if err != nil {
		return nil, nil, f.usagef("--gzip: %v", err)
	}
	transport.DisableCompression = !gzip
	opts := []client.Option{client.WithLogKey(key), client.WithHTTPClient(&http.Client{Transport: transport, Timeout: 2 * time.Minute})}
	token := os.Getenv("GOVLOG_TOKEN")
	if *a.tokenFile != "" {
		data, err := os.ReadFile(*a.tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("failed to read the token: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.New(*a.url, opts...)
	if err != nil {
		return nil, nil, f.usagef("--url: %v", err)
	}
	st, err := loadState(*a.state, key)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
}

// loadState reads an audit state file; a missing file is no state.
func loadState(path string, key note.Verifier) (*vaudit.State, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the state file: %w", err)
	}
	st, err := vaudit.UnmarshalState(data, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// saveState writes the audit state file atomically.
func saveState(path string, st *vaudit.State) error {
	if path == "" || st == nil {
		return nil
	}
	data, err := st.MarshalBinary()
	if err != nil {
		return err
	}
	return client.WriteFileAtomic(path, data)
}

// auditReport is the JSON report of govlog audit.
type auditReport struct {
	*vaudit.Report
	URL              string  `json:"url"`
	Seconds          float64 `json:"seconds"`
	EntriesPerSecond float64 `json:"entries_per_second"`
	StateSaved       bool    `json:"state_saved"`
}

// audit replays a log through its tiles API and checks everything.
func audit(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("audit", "audit --url URL --log-key VKEY [--state FILE] [--json] [--fail-on-findings]")
	af := addAuditFlags(f)
	failOnFindings := f.Bool("fail-on-findings", false, "exit with status 1 on findings too (late executions, sequence gaps)")
	quiet := f.Bool("quiet", false, "no progress bar")
	cpuProfile := f.String("cpuprofile", "", "write a CPU profile of the audit to `file`")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	c, st, err := af.client(f)
	if err != nil {
		return err
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
	var bar *progressBar
	if !*quiet && !*af.asJSON && isTerminal(os.Stderr) {
		bar = &progressBar{w: os.Stderr, start: time.Now()}
	}
	// The replay allocates a little for every entry, and keeps an id table:
	// collect garbage less often.
	defer debug.SetGCPercent(debug.SetGCPercent(300))
	start := time.Now()
	opts := client.AuditOptions{State: st, Workers: *af.workers}
	if bar != nil {
		opts.Progress = bar.update
	}
	rep, newState, err := c.Audit(ctx, opts)
	bar.finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	out := auditReport{Report: rep, URL: *af.url, Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		out.EntriesPerSecond = float64(rep.Audited.Entries) / elapsed.Seconds()
	}
	if newState != nil && *af.state != "" {
		if err := saveState(*af.state, newState); err != nil {
			return err
		}
		out.StateSaved = true
	}
	if *af.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printAudit(stdout, &out, *af.state)
	}
	switch {
	case !rep.OK:
		return fmt.Errorf("%w: %d failures", errAuditFailed, rep.FailureCount)
	case *failOnFindings && (rep.FindingCount > 0 || len(rep.SequenceGaps) > 0):
		return fmt.Errorf("%w: %d findings, %d submitters with sequence gaps (--fail-on-findings)", errAuditFailed, rep.FindingCount, len(rep.SequenceGaps))
	}
	return nil
}

// printAudit prints the human summary of an audit.
func printAudit(w io.Writer, r *auditReport, statePath string) {
	rep := r.Report
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-11s %s\n", name, fmt.Sprintf(format, args...))
	}
	line("log", "%s (%s)", rep.Origin, r.URL)
	if cp := rep.Checkpoint; cp != nil {
		line("checkpoint", "size %d, root %s", cp.Size, cp.RootHash)
	}
	if p := rep.Previous; p != nil {
		line("previous", "size %d, root %s (from %s)", p.Size, p.RootHash, statePath)
	}
	if n := rep.Audited.Entries; n > 0 {
		line("replayed", "entries %d to %d (%d) in %.2fs, %.0f entries/s", rep.Start, rep.Start+n-1, n, r.Seconds, r.EntriesPerSecond)
	} else {
		line("replayed", "nothing new (%.2fs)", r.Seconds)
	}
	t := rep.Totals
	line("totals", "%d entries: %d decisions (%d allow, %d deny), %d execution reports", t.Entries, t.Decisions, t.Allows, t.Denies, t.Executions)
	for _, p := range rep.Failures {
		printProblem(w, "FAIL", p)
	}
	if n := uint64(len(rep.Failures)); rep.FailureCount > n {
		fmt.Fprintf(w, "FAIL        … and %d more failures (see --json)\n", rep.FailureCount-n)
	}
	for _, p := range rep.Findings {
		printProblem(w, "FINDING", p)
	}
	if n := uint64(len(rep.Findings)); rep.FindingCount > n {
		fmt.Fprintf(w, "FINDING     … and %d more findings (see --json)\n", rep.FindingCount-n)
	}
	for _, g := range rep.SequenceGaps {
		var ranges []string
		for _, m := range g.Missing {
			if m[0] == m[1] {
				ranges = append(ranges, fmt.Sprint(m[0]))
			} else {
				ranges = append(ranges, fmt.Sprintf("%d-%d", m[0], m[1]))
			}
		}
		more := ""
		if len(g.Missing) == 100 { // the report lists at most 100 ranges
			more = ", …"
		}
		fmt.Fprintf(w, "%-11s submitter %q is missing %d sequence numbers below its highest, %d: %s%s\n", "GAP", g.Submitter, g.Count, g.Highest, strings.Join(ranges, ", "), more)
	}
	if ev := rep.Inconsistency; ev != nil {
		fmt.Fprintf(w, "EVIDENCE    %s\nold checkpoint:\n%s\nnew checkpoint:\n%s\n", ev.Reason, ev.OldCheckpoint, ev.NewCheckpoint)
		if len(ev.Proof) > 0 {
			fmt.Fprintf(w, "consistency proof:\n%s\n", strings.Join(ev.Proof, "\n"))
		}
	}
	switch {
	case rep.OK && r.StateSaved:
		line("result", "OK (state saved to %s)", statePath)
	case rep.OK:
		line("result", "OK")
	default:
		line("result", "FAILED: %d failures", rep.FailureCount)
	}
}

func printProblem(w io.Writer, label string, p vaudit.Problem) {
	where := ""
	if p.Index != nil {
		where = fmt.Sprintf(" entry %d", *p.Index)
	}
	earlier := ""
	if p.Earlier {
		earlier = " (found by an earlier audit)"
	}
	fmt.Fprintf(w, "%-11s [%s]%s: %s%s\n", label, p.Code, where, p.Message, earlier)
	keys := make([]string, 0, len(p.Evidence))
	for k := range p.Evidence {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p.Evidence[k]
		if strings.Contains(v, "\n") {
			v = strings.ReplaceAll(strings.TrimRight(v, "\n"), "\n", "\n              ")
		}
		fmt.Fprintf(w, "            %s: %s\n", k, v)
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws the progress of a replay on a terminal.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func (p *progressBar) update(done, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 40
	filled := int(float64(width) * float64(done) / float64(max(total, 1)))
	rate := float64(done) / max(now.Sub(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d entries, %.0f/s ", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, rate)
	p.drawn = true
}

func (p *progressBar) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\n")
	}
}
