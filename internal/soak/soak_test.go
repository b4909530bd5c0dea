package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var bin struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// binaries builds govlogd and govlog-witness once for the tests.
func binaries(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the soak needs Linux /proc")
	}
	if testing.Short() {
		t.Skip("runs the soak: not in -short mode")
	}
	bin.once.Do(func() {
		if bin.dir, bin.err = os.MkdirTemp("", "soak-test-bin-"); bin.err == nil {
			bin.err = goBuild(context.Background(), bin.dir)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.dir
}

// shortArgs is a small soak: 100 decisions/s, everything else scaled down.
func shortArgs(bin, out, duration string) []string {
	return []string{"-bin", bin, "-out", out, "-duration", duration, "-interval", "2s", "-rate", "100", "-c", "16",
		"-batch-every", "2s", "-batch-size", "50", "-exec-rate", "5", "-read-rate", "20", "-audit-every", "5s"}
}

// TestSoakShort runs the whole soak for 12 s: every sample is taken,
// nothing fails to verify, the witnesses catch up, the last audit covers
// the log, and the report, the CSV and the charts are written. A growth
// in so short a run on a busy machine proves nothing, so it is only
// logged.
func TestSoakShort(t *testing.T) {
	b := binaries(t)
	out := t.TempDir()
	var stderr lockedBuffer
	rep, err := run(context.Background(), shortArgs(b, out, "12s"), &stderr)
	if rep == nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if len(rep.Problems) > len(rep.Growth) {
		t.Fatalf("the soak failed: %v\n%s", err, stderr.String())
	}
	if len(rep.Growth) > 0 {
		t.Logf("growth in a 12 s run (not judged here): %v", rep.Growth)
	}
	if len(rep.Samples) != 6 {
		t.Fatalf("%d samples, want 6", len(rep.Samples))
	}
	for i, s := range rep.Samples {
		if s.RSSMiB <= 0 || s.Goroutines <= 0 || s.FDs <= 0 || s.Sockets <= 0 || s.LogDB <= 0 || len(s.Witnesses) != 2 ||
			s.Witnesses[0].RSSMiB <= 0 || s.Witnesses[1].FDs <= 0 || s.Acked == 0 || (i > 0 && s.TreeSize <= rep.Samples[i-1].TreeSize) {
			t.Fatalf("sample %d: %+v", i, s)
		}
	}
	tot := rep.Totals
	reads := 0
	for _, n := range tot.Reads {
		reads += n
	}
	if tot.Batches == 0 || tot.Executions == 0 || reads == 0 || tot.Reads["inclusion proof"] == 0 || len(tot.Audits) < 2 {
		t.Errorf("totals: %+v", tot)
	}
	if rep.Acked != rep.Requests || rep.Requests < 900 {
		t.Errorf("single decisions: %d requests, %d acknowledged", rep.Requests, rep.Acked)
	}
	if f := rep.Final; f.TreeSize == 0 || f.Audited != f.TreeSize {
		t.Errorf("final: %+v", f)
	}
	if len(rep.Verdicts) == 0 {
		t.Errorf("not judged: %s", rep.NotJudged)
	}
	checkOutputs(t, out, len(rep.Samples))
	checkStopped(t, rep)
}

// TestSoakInterrupted cancels a soak of an hour after its second sample,
// as Ctrl-C does: the processes are stopped and the report of the samples
// taken is written.
func TestSoakInterrupted(t *testing.T) {
	b := binaries(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &sampleWatcher{after: 2, cancel: cancel}
	rep, err := run(ctx, shortArgs(b, out, "1h"), stderr)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || rep == nil || !rep.Interrupted {
		t.Fatalf("err = %v\n%s", err, stderr.String())
	}
	if len(rep.Samples) < 2 {
		t.Fatalf("%d samples", len(rep.Samples))
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("**Interrupted**")) {
		t.Errorf("report.md:\n%s", md)
	}
	checkOutputs(t, out, len(rep.Samples))
	checkStopped(t, rep)
}

func checkOutputs(t *testing.T, dir string, samples int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "samples.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != samples+1 || rows[0][0] != "t_seconds" {
		t.Errorf("samples.csv: %d rows, %v", len(rows), err)
	}
	for _, c := range chartFiles {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if w := img.Bounds().Dx(); w < 300 || len(b) > 200_000 {
			t.Errorf("%s: %d px wide, %d bytes", c.file, w, len(b))
		}
	}
}

// checkStopped checks that no child process is left.
func checkStopped(t *testing.T, rep *report) {
	t.Helper()
	if len(rep.pids) != 3 {
		t.Fatalf("pids %v", rep.pids)
	}
	for _, pid := range rep.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there (%v)", pid, err)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sampleWatcher keeps the log and calls cancel once it has seen after
// samples logged.
type sampleWatcher struct {
	lockedBuffer
	after  int
	seen   int
	cancel func()
}

func (w *sampleWatcher) Write(p []byte) (int, error) {
	n, err := w.lockedBuffer.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen += bytes.Count(p, []byte("msg=sample ")); w.seen >= w.after {
		w.cancel()
	}
	return n, err
}

var _ io.Writer = (*sampleWatcher)(nil)

func TestJudge(t *testing.T) {
	names := []string{"w1", "w2"}
	mk := func(n int, f func(i int, s *sample)) *report {
		r := &report{Witnesses: names, Options: options{clients: 64}}
		for i := range n {
			s := sample{At: time.Duration(i) * time.Second, RSSMiB: 100, Goroutines: 80, FDs: 90, Sockets: 70,
				LogWAL: 4 << 20, CosWAL: 4 << 20,
				Witnesses: []witnessSample{{RSSMiB: 20, Goroutines: 12, FDs: 17, Sockets: 3}, {RSSMiB: 20, Goroutines: 12, FDs: 17, Sockets: 3}}}
			if f != nil {
				f(i, &s)
			}
			r.Samples = append(r.Samples, s)
		}
		r.judge()
		return r
	}
	for _, tc := range []struct {
		name string
		n    int
		f    func(i int, s *sample)
		grew []string
	}{
		{"flat", 40, nil, nil},
		{"noise in the warm-up and single spikes", 40, func(i int, s *sample) {
			if i < 10 || i%7 == 0 {
				s.RSSMiB, s.Goroutines = 300, 500
			}
		}, nil},
		{"goroutines leak", 40, func(i int, s *sample) { s.Goroutines += 2 * i }, []string{"govlogd goroutines, less one per socket grew from 39 to 79 (+40, +103%; the limit is +10% and +20)"}},
		{"small absolute growth is not a leak", 40, func(i int, s *sample) { s.Witnesses[0].Goroutines += i / 4 }, nil},
		{"connections of the load's pool are not a leak", 40, func(i int, s *sample) { s.Sockets += i; s.FDs += i; s.Goroutines += i }, nil},
		{"beyond the pool they are", 40, func(i int, s *sample) { s.Sockets += 6 * i; s.FDs += 6 * i; s.Goroutines += 6 * i },
			[]string{"govlogd sockets grew from 157 to 277 (+120, +76%; the limit is +10% and +92)"}},
		{"memory", 40, func(i int, s *sample) {
			if i >= 30 {
				s.RSSMiB = 130
			}
		}, []string{"govlogd resident memory grew from 100.0 MiB to 130.0 MiB (+30.0 MiB, +30%; the limit is +25% and +8 MiB)"}},
		{"witness files", 40, func(i int, s *sample) { s.Witnesses[1].FDs += i }, []string{"w2 open files other than sockets grew from 28.5 to 48.5"}},
		{"WAL", 12, func(i int, s *sample) { s.LogWAL += int64(i) << 24 }, []string{"log.db-wal grew from 68.0 MiB to 164.0 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mk(tc.n, tc.f)
			if len(r.Growth) != len(tc.grew) {
				t.Fatalf("growth %q, want %q", r.Growth, tc.grew)
			}
			for i, g := range tc.grew {
				if !strings.HasPrefix(r.Growth[i], g) {
					t.Errorf("growth %q, want %q…", r.Growth[i], g)
				}
			}
		})
	}
	if r := mk(3, nil); r.NotJudged == "" || len(r.Verdicts) != 0 {
		t.Errorf("3 samples judged: %+v", r.Verdicts)
	}
	if second, last := quarters(make([]sample, 10)); len(second) != 2 || len(last) != 2 {
		t.Errorf("quarters of 10: %d, %d", len(second), len(last))
	}
}

func TestCollect(t *testing.T) {
	r := &report{Growth: []string{"x grew"}, Totals: newCounts(), Samples: []sample{{PushesOK: 9, PushNo: 1}, {PushNo: 2}}}
	r.Problems = []string{"govlogd did not shut down cleanly"}
	r.Totals.Errors["read tiles: http_500"] = 2
	r.Totals.ErrorExamples["read tiles: http_500"] = "GET /tile/0/000: 500"
	r.Totals.VerifyFailures, r.Totals.FirstVerifyErr = 1, "single: bad proof"
	r.Totals.Audits = []auditRun{{TreeSize: 10}, {TreeSize: 20, Failure: "hash mismatch", Findings: 1}}
	r.collect()
	want := []string{"x grew", "govlogd did not shut down cleanly", "2 errors: read tiles: http_500 ×2 (GET /tile/0/000: 500)",
		"3 pushes of a checkpoint to a witness failed",
		"1 receipts, proofs or checkpoints did not verify (first: single: bad proof)", "an audit up to tree size 20 failed: hash mismatch",
		"the audits reported 1 findings"}
	if len(r.Problems) != len(want) {
		t.Fatalf("problems %q", r.Problems)
	}
	for i := range want {
		if !strings.HasPrefix(r.Problems[i], want[i]) {
			t.Errorf("problem %q, want %q…", r.Problems[i], want[i])
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-duration", "1m", "-interval", "30s"}, "less than 4 × -interval"},
		{[]string{"-interval", "100ms"}, "at least 1s"},
		{[]string{"-rate", "0"}, "-rate must be positive"},
		{[]string{"-batch-size", "1001"}, "-batch-size must be 1 to 1000"},
		{[]string{"-witness-mode", "fast"}, "want async or sync"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "flag provided but not defined"},
	} {
		if _, err := parseOptions(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	o, err := parseOptions(nil, io.Discard)
	if err != nil || o.duration != time.Hour || o.interval != 30*time.Second || o.rate != 500 || o.out != "docs/soak" || o.witnessMode != "async" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}
