package main

import (
	"context"
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
	"strconv"
	"strings"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	vaudit "github.com/govlog/govlog/verifier/audit"
	"golang.org/x/mod/sumdb/note"
)

// errAuditFailed is returned (exit status 1) once the report is printed.
var errAuditFailed = errors.New("the log failed the audit")

// auditFlags are the flags audit and monitor share.
type auditFlags struct {
	*serverFlags
	key, state, gzip *string
	workers          *int
	asJSON           *bool
}

func addAuditFlags(f *flags) *auditFlags {
	a := &auditFlags{serverFlags: addServerFlags(f)}
	a.workers = f.Int("workers", 0, "entry bundles fetched and checked at once (default: 2 per CPU, plus 2)")
	a.gzip = f.String("gzip", "auto", "ask for gzip-compressed entry bundles: on, off, or auto (on unless the log is on loopback, where compressing costs more than it saves)")
	f.Group("Log")
	a.key = f.String("log-key", "", "the log's note verifier `key`: a file holding it, or the key text (required)")
	a.state = f.String("state", "", "keep the audit state in `FILE` and, when it exists, audit only what is new since")
	f.Group("Output")
	a.asJSON = f.Bool("json", false, "print JSON")
	return a
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
	if err := a.check(f); err != nil {
		return nil, nil, err
	}
	switch {
	case *a.key == "":
		return nil, nil, f.usagef("--log-key is required")
	case f.NArg() != 0:
		return nil, nil, f.usagef("unexpected argument %q", f.Arg(0))
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
	c, _, err := a.newClient(f, "", client.WithLogKey(key), client.WithHTTPClient(&http.Client{Transport: transport, Timeout: 2 * time.Minute}))
	if err != nil {
		return nil, nil, err
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
	if errors.Is(err, vaudit.ErrStateVersion) {
		return nil, fmt.Errorf("%s: %w: move it to OLD-FILE and run govlog audit --state %s --trusted-checkpoint OLD-FILE", path, err, path)
	}
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
	f := newFlags("audit", "[flags]",
		"Replay a log through its tiles API, trusting nothing but its verifier key, and check everything: "+
			"the checkpoint, consistency with the last audit, every hash and entry, and the log's rules.")
	af := addAuditFlags(f)
	failOnFindings := f.Bool("fail-on-findings", false, "exit with status 1 on findings too (violations the log recorded, claims without artifact, reports after a revocation, late executions, sequence gaps)")
	policyArg := f.String("witness-policy", "", "a witness policy `file`: the audited checkpoint must carry the cosignatures it requires; "+
		"this anchors the audit, and the report gives the witnesses' times")
	trustedArg := f.String("trusted-checkpoint", "", "a checkpoint of this log held from elsewhere (a checkpoint note, or a receipt: its checkpoint) in `FILE`: "+
		"the audited checkpoint must be consistent with it; this anchors the audit")
	requireAnchor := f.Bool("require-anchor", false, "exit with status 1 when the audit is unanchored: no saved state, witness policy or trusted checkpoint "+
		"vouches that this is the log seen before (a log rebuilt from scratch with the same key would pass)")
	quiet := f.Bool("quiet", false, "no progress on the terminal")
	cpuProfile := f.String("cpuprofile", "", "write a CPU profile of the audit to `file`")
	f.Example("govlog audit --url http://127.0.0.1:8080 --log-key data/log.vkey", "audit the whole log")
	f.Example("govlog audit --log-key log.vkey --state audit.state --json", "with $GOVLOG_URL set: audit what is new since the last run, a JSON report")
	f.Example("govlog audit --log-key log.vkey --witness-policy policy.txt --require-anchor", "a first audit, anchored by the witnesses' cosignatures")
	if err := f.parse(args, stdout); err != nil {
		return err
	}
	c, st, err := af.client(f)
	if err != nil {
		return err
	}
	opts := client.AuditOptions{State: st, Workers: *af.workers}
	if *policyArg != "" {
		if opts.WitnessPolicy, err = readPolicy(*policyArg); err != nil {
			return f.usagef("--witness-policy: %v", err)
		}
		// Witnesses in async mode cosign a new checkpoint a moment after
		// the log signs it: wait a little for a cosigned one.
		if opts.Checkpoint, err = cosignedCheckpoint(ctx, c, opts.WitnessPolicy); err != nil {
			return err
		}
	}
	if *trustedArg != "" {
		key, _ := readVerifierKey(*af.key)
		if opts.Trusted, err = readTrustedCheckpoint(*trustedArg, key); err != nil {
			return f.usagef("--trusted-checkpoint: %v", err)
		}
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
	bar := newProgress(*quiet, "entries")
	// The replay allocates a little for every entry, and keeps an id table:
	// collect garbage less often.
	defer debug.SetGCPercent(debug.SetGCPercent(300))
	start := time.Now()
	opts.Progress = bar.update
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
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else {
		printAudit(stdout, &out, *af.state)
	}
	switch {
	case !rep.OK:
		return fmt.Errorf("%w: %s", errAuditFailed, counted(rep.FailureCount, "failure", "failures"))
	case *failOnFindings && (rep.FindingCount > 0 || len(rep.SequenceGaps) > 0):
		return fmt.Errorf("%w: %d findings, %d submitters with sequence gaps (--fail-on-findings)", errAuditFailed, rep.FindingCount, len(rep.SequenceGaps))
	case *requireAnchor && !rep.Anchored:
		return fmt.Errorf("the audit is unanchored (--require-anchor): nothing vouches that this is the log seen before")
	}
	return nil
}

// cosignedCheckpoint returns the log's checkpoint note once it satisfies
// the policy, trying for a few seconds; then the last one fetched (the
// audit reports that it does not satisfy the policy).
func cosignedCheckpoint(ctx context.Context, c *client.Client, p *verifier.Policy) ([]byte, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		note, err := c.TilesCheckpoint(ctx)
		if err != nil || p.Satisfied(note) || time.Now().After(deadline) {
			return note, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readTrustedCheckpoint reads a checkpoint note signed by the log key,
// the checkpoint of a receipt (tlog-proof or JSON) verified with it, or
// the checkpoint of an audit state file of any version (so that a state
// too old to continue from anchors an audit from the start).
func readTrustedCheckpoint(path string, key note.Verifier) ([]byte, error) {
	if path != "-" && isStateFile(path) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("failed to read %s: %w", path, err)
		}
		return vaudit.StateCheckpoint(data, key)
	}
	data, err := readInput(path, nil, verifier.MaxReceiptBytes)
	if err != nil {
		return nil, err
	}
	if cp, err := verifier.Checkpoint(data, key); err == nil {
		return cp.Note, nil
	}
	v, err := verifyReceipt(data, key)
	if err != nil {
		return nil, fmt.Errorf("%s is neither a checkpoint nor a receipt of this log: %w", path, err)
	}
	return v.Checkpoint.Note, nil
}

// isStateFile reports whether the file at path begins as an audit state
// (which may be far larger than a receipt).
func isStateFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	prefix := make([]byte, len(vaudit.StatePrefix))
	_, err = io.ReadFull(f, prefix)
	return err == nil && string(prefix) == vaudit.StatePrefix
}

// totalsText is what an audit counted: "600 entries: 599 decisions (400
// allow, 199 deny), 0 execution reports", then the revocations and the
// artifact keys when there are any.
func totalsText(t vaudit.Totals) string {
	s := fmt.Sprintf("%s: %s (%d allow, %d deny), %s", counted(t.Entries, "entry", "entries"),
		counted(t.Decisions, "decision", "decisions"), t.Allows, t.Denies, counted(t.Executions, "execution report", "execution reports"))
	if t.Revocations > 0 || t.Keys > 0 {
		s += ", " + counted(t.Revocations, "revocation", "revocations") + ", " + counted(t.Keys, "artifact key", "artifact keys")
	}
	return s
}

// useText is what an audit found of an authorization: "1 of 3 executions
// used", then its violations and its revocation when there are any.
func useText(u vaudit.AuthorizationUse) string {
	s := fmt.Sprintf("%d of %d executions used", u.Uses, u.MaxExecutions)
	if u.Violations > 0 {
		s += ", " + counted(u.Violations, "violation", "violations")
	}
	if u.Revoked {
		s += ", revoked"
	}
	return s
}

// printAudit prints the human summary of an audit.
func printAudit(w io.Writer, r *auditReport, statePath string) {
	rep := r.Report
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-11s %s\n", name, fmt.Sprintf(format, args...))
	}
	line("log", "%s (%s)", field(rep.Origin), field(r.URL))
	if cp := rep.Checkpoint; cp != nil {
		line("checkpoint", "size %d, root %s", cp.Size, cp.RootHash)
	}
	if p := rep.Previous; p != nil {
		line("previous", "size %d, root %s (from %s)", p.Size, p.RootHash, field(statePath))
	}
	if n := rep.Audited.Entries; n > 0 {
		line("replayed", "entries %d to %d (%d) in %.2fs, %.0f entries/s", rep.Start, rep.Start+n-1, n, r.Seconds, r.EntriesPerSecond)
	} else {
		line("replayed", "nothing new (%.2fs)", r.Seconds)
	}
	line("totals", "%s", totalsText(rep.Totals))
	if len(rep.Violations) > 0 {
		var parts []string
		var n uint64
		for _, code := range log.Violations {
			if c := rep.Violations[code]; c > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", code, c))
				n += c
			}
		}
		line("violations", "%d recorded by the log: %s", n, strings.Join(parts, ", "))
	}
	const maxAuthLines = 20
	for i, u := range rep.Authorizations {
		if i == maxAuthLines {
			line("authorized", "… and %d more (see --json)", rep.AuthorizationCount-maxAuthLines)
			break
		}
		line("authorized", "%s (entry %d): %s", field(u.DecisionID), u.Index, useText(u))
	}
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
		fmt.Fprintf(w, "%-11s submitter %s is missing %d sequence numbers below its highest, %d: %s%s\n", "GAP", strconv.Quote(g.Submitter), g.Count, g.Highest, strings.Join(ranges, ", "), more)
	}
	if ev := rep.Inconsistency; ev != nil {
		printInconsistency(w, ev)
	}
	for _, a := range rep.Anchors {
		switch a {
		case vaudit.AnchorState:
			line("anchored", "by the saved state: consistent with the checkpoint of size %d audited before", rep.Previous.Size)
		case vaudit.AnchorWitnesses:
			line("anchored", "by the witness policy: the checkpoint carries the cosignatures it requires")
		case vaudit.AnchorTrusted:
			line("anchored", "by the trusted checkpoint: consistent with it")
		}
	}
	for _, c := range rep.Cosignatures {
		line("cosigned", "by %s at %s: every entry audited was in the log then", field(c.Witness), c.Time.Format(time.RFC3339))
	}
	const unanchored = "UNANCHORED: no failure, but nothing vouches that this is the log seen before " +
		"(no saved state, no witness policy, no trusted checkpoint): a log rebuilt from scratch with the same key would pass too"
	switch {
	case rep.OK && !rep.Anchored && r.StateSaved:
		line("result", "%s; state saved to %s, which anchors the next audit", unanchored, field(statePath))
	case rep.OK && !rep.Anchored:
		line("result", "%s", unanchored)
	case rep.OK && r.StateSaved:
		line("result", "OK (state saved to %s)", field(statePath))
	case rep.OK:
		line("result", "OK")
	default:
		line("result", "FAILED: %s", counted(rep.FailureCount, "failure", "failures"))
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
	code := p.Code
	if p.Violation != "" {
		code += " " + p.Violation
	}
	fmt.Fprintf(w, "%-11s [%s]%s: %s%s\n", label, code, where, escapeText(p.Message), earlier)
	keys := make([]string, 0, len(p.Evidence))
	for k := range p.Evidence {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "            %s: %s\n", escapeText(k), lines(p.Evidence[k], "              "))
	}
}

// printInconsistency prints the evidence of a fork: both checkpoints and
// the consistency proof, one line of the log's text a line of output.
func printInconsistency(w io.Writer, ev *vaudit.InconsistencyEvidence) {
	fmt.Fprintf(w, "EVIDENCE    %s\nold checkpoint:\n%s\nnew checkpoint:\n%s\n", escapeText(ev.Reason), lines(ev.OldCheckpoint, ""), lines(ev.NewCheckpoint, ""))
	if len(ev.Proof) > 0 {
		fmt.Fprintf(w, "consistency proof:\n%s\n", lines(strings.Join(ev.Proof, "\n"), ""))
	}
}

// lines prints a multi-line text from the log (a checkpoint, an entry):
// each line escaped, the lines after the first indented.
func lines(text, indent string) string {
	ls := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range ls {
		ls[i] = escapeText(l)
	}
	return strings.Join(ls, "\n"+indent)
}
