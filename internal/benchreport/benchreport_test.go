package main

import (
	"bytes"
	"compress/gzip"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/govlog/govlog/internal/loadgen"
)

const benchOut = `goos: linux
goarch: amd64
pkg: github.com/govlog/govlog/log
cpu: AMD EPYC
BenchmarkParseDecision/bytes=400-2         	    2000	     45233 ns/op	  10.88 MB/s	   14785 B/op	     336 allocs/op
BenchmarkLeafHash-2                        	    2000	       403.0 ns/op	1240.75 MB/s	       0 B/op	       0 allocs/op
PASS
ok  	github.com/govlog/govlog/log	0.866s
pkg: github.com/govlog/govlog/log/sqlite
BenchmarkAppend/batch=64-2   	     100	   1234567 ns/op	     9876 ns/entry	  50000 B/op	  700 allocs/op
--- BENCH: BenchmarkTree100k
    bench_test.go:110: built 102,400 entries in 2s
BenchmarkTree100k/InclusionProof-12 	  100000	      6000 ns/op
`

func TestParseBenchOutput(t *testing.T) {
	got := parseBenchOutput([]byte(benchOut))
	want := []microResult{
		{Pkg: "github.com/govlog/govlog/log", Name: "ParseDecision/bytes=400", NsPerOp: 45233, BytesPerOp: 14785, AllocsPerOp: 336},
		{Pkg: "github.com/govlog/govlog/log", Name: "LeafHash", NsPerOp: 403},
		{Pkg: "github.com/govlog/govlog/log/sqlite", Name: "Append/batch=64", NsPerOp: 1234567, BytesPerOp: 50000, AllocsPerOp: 700, Extra: [][2]string{{"ns/entry", "9876"}}},
		{Pkg: "github.com/govlog/govlog/log/sqlite", Name: "Tree100k/InclusionProof", NsPerOp: 6000},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results: %+v", len(got), got)
	}
	for i := range want {
		t.Run(want[i].Name, func(t *testing.T) {
			g, w := got[i], want[i]
			if g.Pkg != w.Pkg || g.Name != w.Name || g.NsPerOp != w.NsPerOp || g.BytesPerOp != w.BytesPerOp ||
				g.AllocsPerOp != w.AllocsPerOp || len(g.Extra) != len(w.Extra) || (len(w.Extra) > 0 && g.Extra[0] != w.Extra[0]) {
				t.Fatalf("got %+v, want %+v", g, w)
			}
		})
	}
}

func TestCDF(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	pts := cdf(lat, 100)
	// Every 10th latency, then the maximum (index 999 is not a multiple of
	// the step).
	if len(pts) != 101 || pts[0].X != 1 || pts[0].Y != 0.001 || pts[99].X != 991 {
		t.Fatalf("%d points, first %+v", len(pts), pts[0])
	}
	if last := pts[len(pts)-1]; last.Y != 1 || last.X != 1000 {
		t.Fatalf("last point %+v", last)
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].X < pts[i-1].X || pts[i].Y <= pts[i-1].Y {
			t.Fatalf("not monotonic at %d: %+v %+v", i, pts[i-1], pts[i])
		}
	}
	if pts := cdf(lat[:3], 100); len(pts) != 3 || pts[2].Y != 1 {
		t.Fatalf("short: %+v", pts)
	}
}

func TestWriteReport(t *testing.T) {
	lat := make([]time.Duration, 5000)
	for i := range lat {
		lat[i] = time.Duration(i*i/50+100) * time.Microsecond
	}
	rep := func(rate float64) *loadgen.Report {
		return &loadgen.Report{Mode: "open", Requests: 5000, Acknowledged: 5000, PerSecond: rate, Late: 3,
			LatencyMS: loadgen.Percentiles{P50: 1, P90: 2, P99: 3, P999: 4}, Latencies: lat, Errors: map[string]int{"x": 2}}
	}
	be := func(name string, rate float64) *backendResult {
		return &backendResult{Name: name, Closed: rep(rate), Open: rep(rate), ClosedFull: rep(rate), Proofs: rep(rate), Claims: rep(rate),
			Fill: []sample{{10000, rate}, {20000, rate * 0.9}}, FillRate: rate, Entries: 20000, RSSMiB: 50, StorageBytes: 20000 * 900}
	}
	r := &report{Started: time.Now(), Command: "go run ./internal/benchreport -fill 20000", Options: options{rate: 2000, clients: 64, benchtime: "1s", claimRounds: 6, claimFor: 3 * time.Second},
		CPUs: 2, CPUModel: "test", GoVersion: "go1.26", Load: []float64{0.5, 3, 12.25},
		Micro:    parseBenchOutput([]byte(benchOut)),
		Backends: []*backendResult{be("embedded (SQLite)", 5000), be("Trillian + MariaDB", 500)}}
	r.Backends[0].Floor = &loadgen.Report{ServerCPUPerDecision: 61.4}
	r.Backends[0].ProofFloor = &loadgen.Report{ServerCPUPerDecision: 30.4}
	r.Backends[0].DurableFloor = &loadgen.Report{ServerCPUPerDecision: 88.6}
	r.Backends[1].StorageBytes = 0
	r.Micro = append(r.Micro,
		microResult{Pkg: "github.com/govlog/govlog/log", Name: "FloorEd25519", NsPerOp: 23000, Extra: [][2]string{{"cpu-ns/op", "22000"}}},
		microResult{Pkg: "github.com/govlog/govlog/log/sqlite", Name: "FloorCommit/group=32", NsPerOp: 9e5, Extra: [][2]string{{"entries/s", "1000"}, {"cpu-ns/entry", "10000"}}},
		microResult{Pkg: "github.com/govlog/govlog/log/sqlite", Name: "FloorCommit/group=64", NsPerOp: 9e5, Extra: [][2]string{{"cpu-ns/entry", "5000"}}})
	emb, tr := r.Backends[0], r.Backends[1]
	emb.Closed = &loadgen.Report{ServerCPUPerDecision: 200, ClientCPUPerDecision: 151.4, LatencyMS: emb.Closed.LatencyMS}
	emb.Claims = &loadgen.Report{ServerCPUPerDecision: 460, PerSecond: 321}
	emb.ClaimRounds = []claimRound{{200, 480}, {200, 440}, {100, 300}, {250, 500}}
	emb.Proofs.ServerCPUPerDecision = 40
	emb.ClosedFull.ServerCPUPerDecision = 200
	emb.FillCPU = 60
	emb.FillClientCPU = 12.2
	shares := map[string]float64{partHTTP: 0.25, partEd25519: 0.125, partCommit: 0.1, partStorage: 0.2, partRules: 0.05,
		partReceipts: 0.05, partParse: 0.05, partRuntime: 0.125, partOther: 0.05}
	emb.Profiles = map[string]*breakdown{}
	for _, l := range loadOrder {
		emb.Profiles[l] = &breakdown{File: profileFile("embedded", l), Seconds: 8, Window: 10 * time.Second, Share: shares}
	}
	tr.Profiles = map[string]*breakdown{loadSingle: {File: profileFile("trillian", loadSingle), Seconds: 3, Window: 10 * time.Second, Share: shares}}
	dir := t.TempDir()
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| embedded (SQLite) | Trillian + MariaDB |",
		"was 0.5 at the least, 3.0 at the median and 12.2 at the most during the run: other work ran on the machine at the same time, 2 CPUs shared",
		"p50 1.0 / p90 2.0 / p99 3.0 / p99.9 4.0 ms",
		"5000; 3 of 5000 late",
		"| 0.90× | 0.90× |",
		"| 900 B | — (in MariaDB) |",
		"load generator CPU per decision (verifying every receipt) | 151 µs | — |",
		"each allow's artifact signed): server CPU per request | 89 µs | — |",
		"| … load generator CPU per decision | 12 µs | — |",
		"*Load generator CPU per decision*",
		"server CPU per allow and claim | 460 µs | — |",
		"a claim ÷ a decision, these runs (the pair less a single decision of the closed loop on the filled log, over it) | 1.30× | — |",
		"a claim ÷ a decision, side by side (the median of 6 rounds, each a closed loop of single decisions and one of pairs, 3s each, back to back on the filled log, the order swapped every round; target ≤ 1.5) | 1.30× (1.40, 1.20, 2.00, 1.00) | — |",
		"governed executions (an allow, then a claim of it), closed loop, 64 clients, 0s, filled log: pairs/s | 321 | 500 |",
		"## Where the server's CPU goes: embedded (SQLite)",
		"| part | single decisions, small log, µs per decision | floor | batch endpoint (fill), µs per decision | floor | allow + claim, µs per pair | floor | inclusion proofs, µs per proof | floor |",
		"| " + partHTTP + " | 50.0 µs (25%) | 61.4 µs | 15.0 µs (25%) |  | 115.0 µs (25%) | 122.8 µs | 10.0 µs (25%) | 30.4 µs |",
		"| " + partEd25519 + " | 25.0 µs (12%) | 15.4 µs | 7.5 µs (12%) | 15.4 µs | 57.5 µs (12%) | 22.0 µs | 5.0 µs (12%) |  |",
		"| " + partCommit + " | 20.0 µs (10%) | 10.0 µs | 6.0 µs (10%) | 5.0 µs | 46.0 µs (10%) | 20.0 µs | 4.0 µs (10%) |  |",
		"| " + partOther + " | 10.0 µs (5%) |  | 3.0 µs (5%) |  | 23.0 µs (5%) |  | 2.0 µs (5%) |  |",
		"| **total** | **200 µs** | 86.8 µs | **60 µs** | 20.4 µs | **460 µs** | 164.8 µs | **40 µs** | 30.4 µs |",
		"| profile | [cpu-embedded-single.pb.gz](cpu-embedded-single.pb.gz): 8.0 s of CPU in 10s | | [cpu-embedded-fill.pb.gz](cpu-embedded-fill.pb.gz)",
		"## Where the server's CPU goes: Trillian + MariaDB",
		"| part | single decisions, small log, µs per decision | floor |\n",
		"| " + partCommit + " | 10% |  |",
		"| " + partEd25519 + " | 12% | 15.4 µs |",
		"logging nothing): server CPU per request | 61 µs | — |",
		"with the real answers' bytes, precomputed): server CPU per request | 30 µs | — |",
		"| 4; 0 | 8; 0 |",
		"| log | ParseDecision/bytes=400 | 45.23 µs | 14785 | 336 |",
		"| log/sqlite | Append/batch=64 | 1.23 ms | 50000 | 700 | 9876 ns/entry |",
		"![latency CDF, open loop](latency-cdf.png)",
		"## Targets",
		"| single decision, closed loop, 64 clients: server CPU ≤ 70 µs | 200 µs | the durable floor 89 µs; govlogd 2.26× it | **missed**: the floor alone is above the target |",
		"| batch endpoint: server CPU ≤ 30 µs a decision | 60 µs | signatures and a `COMMIT`'s share 20 µs; govlogd 2.94× it | **missed** |",
		"| inclusion proof: server CPU ≤ 25 µs | 40 µs | the HTTP floor 30 µs; govlogd 1.32× it | **missed**: the floor alone is above the target |",
		"| a claim ≤ 1.5× a decision, side by side | 1.30× (median of 4 rounds) |  | **met** |",
		"| ≥ 10,000 single decisions/s, p99 ≤ 25 ms | small log 0/s, p99 3.0 ms; filled log 5,000/s, p99 3.0 ms | bound 5,692/s (200 + 151 µs); with the durable floor's server CPU 8,333/s | **missed** |",
		"| batch endpoint ≥ 50,000 decisions/s | 5,000/s | bound 27,701/s (60 + 12 µs); with the floor's server CPU 61,350/s | **missed** |",
		"| open loop at 2,000 decisions/s: p99 ≤ 10 ms | p99 3.0 ms at 5,000/s (3 of 5000 sent late) |  | **met** |",
		"| embedded ≥ 10× Trillian's throughput | single, small log —, single, filled 10.0×, batch 10.0×, proofs 10.0× |  | **missed** |",
		"| … and a p99 ≥ 10× lower | closed loop, small log 1.0×, filled 1.0×, open loop 1.0× |  | **missed** |",
		"| appends at 10,000,000 entries within 20% of a small log | the batch endpoint's last fill step ÷ its first: 0.90× at 20,000 entries |  | **met** at 20,000 entries (the target is at 10,000,000: `-fill 10000000`) |",
		"| resident memory ≤ 286 MiB (300 MB) at 10,000,000 entries | 50 MiB at 20,000 entries |  | **met** at 20,000 entries",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, name := range []string{"throughput.png", "latency-cdf.png"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := img.Bounds().Dx(); w < 300 || len(b) > 200_000 {
			t.Errorf("%s: %d px wide, %d bytes", name, w, len(b))
		}
	}
	if strings.Contains(string(md), "not measured") {
		t.Error("report says Trillian was skipped")
	}
}

// syntheticProfile is a CPU profile with one sample per stack (leaf
// first), each worth the given milliseconds.
func syntheticProfile(t *testing.T, samples map[string][]string, ms map[string]int64) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		DurationNanos: int64(10 * time.Second),
	}
	bin := &profile.Mapping{ID: 1, File: "/tmp/benchreport-bin-1/govlogd", HasFunctions: true}
	p.Mapping = []*profile.Mapping{bin}
	funcs := map[string]*profile.Function{}
	for name, stack := range samples {
		s := &profile.Sample{Value: []int64{ms[name] / 10, ms[name] * 1e6}}
		for _, fn := range stack {
			f := funcs[fn]
			if f == nil {
				f = &profile.Function{ID: uint64(len(funcs) + 1), Name: fn, Filename: "/home/someone/src/" + fn + ".go"}
				funcs[fn] = f
				p.Function = append(p.Function, f)
			}
			loc := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: bin, Line: []profile.Line{{Function: f}}}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stacks are typical stacks of govlogd under load, leaf first, and the
// part each belongs to.
var stacks = []struct {
	name  string
	stack []string
	part  string
}{
	{"socket write under a receipt", []string{"internal/runtime/syscall/linux.Syscall6", "syscall.RawSyscall6", "syscall.write", "internal/poll.(*FD).Write", "net.(*conn).Write", "bufio.(*Writer).Flush", "net/http.(*response).Write", "github.com/govlog/govlog/server.writeReceipt", "github.com/govlog/govlog/server.(*Server).postDecision", "github.com/labstack/echo/v4.(*Echo).ServeHTTP", "net/http.(*conn).serve"}, partHTTP},
	{"reading a request", []string{"net/textproto.(*Reader).ReadMIMEHeader", "net/http.readRequest", "net/http.(*conn).serve"}, partHTTP},
	{"artifact signature", []string{"crypto/internal/fips140/edwards25519/field.feMul", "crypto/internal/fips140/edwards25519.(*Point).ScalarBaseMult", "crypto/internal/fips140/ed25519.sign", "crypto/ed25519.Sign", "github.com/govlog/govlog/log.(*Log).SignArtifact", "github.com/govlog/govlog/server.(*artifactSigner).sign", "net/http.(*conn).serve"}, partEd25519},
	{"checkpoint signature in the commit", []string{"crypto/internal/fips140/sha512.blockAVX2", "crypto/internal/fips140/ed25519.sign", "github.com/govlog/govlog/log.SignCheckpoint", "github.com/govlog/govlog/log/sqlite.(*Backend).appendLocked", "database/sql.(*Tx).Commit"}, partEd25519},
	{"COMMIT", []string{"runtime.cgocall", "github.com/mattn/go-sqlite3._Cfunc_sqlite3_step_internal", "github.com/mattn/go-sqlite3.(*SQLiteConn).exec", "github.com/mattn/go-sqlite3.(*SQLiteTx).Commit", "database/sql.(*Tx).Commit", "github.com/govlog/govlog/log/sqlite.(*Backend).appendLocked", "github.com/govlog/govlog/log.(*Log).run"}, partCommit},
	{"an insert", []string{"runtime.cgocall", "github.com/mattn/go-sqlite3._Cfunc_sqlite3_step_internal", "github.com/mattn/go-sqlite3.(*SQLiteStmt).exec", "database/sql.(*Tx).ExecContext", "github.com/govlog/govlog/log/sqlite.(*Backend).appendLocked", "github.com/govlog/govlog/log.(*Log).run"}, partStorage},
	{"search terms", []string{"runtime.memmove", "github.com/govlog/govlog/log.EntryTerms", "github.com/govlog/govlog/log/sqlite.(*newRows).add"}, partStorage},
	{"Trillian", []string{"google.golang.org/grpc.(*ClientConn).Invoke", "github.com/govlog/govlog/log/trillian.(*Backend).Append"}, partStorage},
	{"rule book", []string{"internal/runtime/maps.(*Map).getWithKeySmall", "github.com/govlog/govlog/log.(*Facts).authorization", "github.com/govlog/govlog/log.Judge", "github.com/govlog/govlog/log/sqlite.(*Backend).appendLocked"}, partRules},
	{"a receipt's proof", []string{"runtime.memmove", "github.com/govlog/govlog/log.tlogProof", "github.com/govlog/govlog/log.newReceipt", "github.com/govlog/govlog/log.(*Log).result"}, partReceipts},
	{"a proof's JSON", []string{"encoding/json.(*encodeState).marshal", "encoding/json.(*Encoder).Encode", "github.com/govlog/govlog/server.encodeJSON", "github.com/govlog/govlog/server.(*Server).getInclusion", "net/http.(*conn).serve"}, partReceipts},
	{"parsing", []string{"github.com/govlog/govlog/log.(*canonicalizer).object", "github.com/govlog/govlog/log.parseDecision", "github.com/govlog/govlog/server.(*Server).submission", "net/http.(*conn).serve"}, partParse},
	{"allocation in parsing", []string{"runtime.nextFreeFast", "runtime.mallocgcSmallNoscan", "runtime.mallocgc", "github.com/govlog/govlog/log.parseDecision", "net/http.(*conn).serve"}, partRuntime},
	{"the garbage collector", []string{"runtime.scanobject", "runtime.gcDrain", "runtime.gcBgMarkWorker.func2", "runtime.systemstack", "runtime.gcBgMarkWorker"}, partRuntime},
	{"waking a goroutine", []string{"runtime.futex", "runtime.futexwakeup", "runtime.notewakeup", "runtime.startm", "runtime.wakep", "runtime.ready", "runtime.chansend", "github.com/govlog/govlog/log.(*Log).SubmitAll", "net/http.(*conn).serve"}, partRuntime},
	{"a handler's own code", []string{"context.WithDeadlineCause", "github.com/govlog/govlog/server.(*Server).submitDecision", "github.com/labstack/echo/v4.(*Echo).ServeHTTP", "net/http.(*conn).serve"}, partOther},
	{"nothing known", []string{"runtime/pprof.profileWriter"}, partOther},
}

func TestClassify(t *testing.T) {
	for _, s := range stacks {
		if got := classify(s.stack); got != s.part {
			t.Errorf("%s: %q, want %q", s.name, got, s.part)
		}
	}
}

func TestClassifyProfile(t *testing.T) {
	samples := map[string][]string{}
	ms := map[string]int64{}
	want := map[string]float64{}
	var total int64
	for i, s := range stacks {
		samples[s.name] = s.stack
		ms[s.name] = int64(10 * (i + 1))
		total += ms[s.name]
	}
	for _, s := range stacks {
		want[s.part] += float64(ms[s.name]) / float64(total)
	}
	b, err := classifyProfile(syntheticProfile(t, samples, ms))
	if err != nil {
		t.Fatal(err)
	}
	if b.Seconds != float64(total)/1e3 || b.Window != 10*time.Second {
		t.Errorf("%v s of CPU in %v, want %v s in 10s", b.Seconds, b.Window, float64(total)/1e3)
	}
	var sum float64
	for _, part := range partOrder {
		if math.Abs(b.Share[part]-want[part]) > 1e-9 {
			t.Errorf("%s: %.4f, want %.4f", part, b.Share[part], want[part])
		}
		sum += b.Share[part]
	}
	if math.Abs(sum-1) > 1e-9 || len(b.Share) != len(partOrder) {
		t.Errorf("shares %v sum to %v", b.Share, sum)
	}
	if _, err := classifyProfile([]byte("Could not enable CPU profiling: cpu profiling already in use\n")); err == nil {
		t.Error("an error message parsed as a profile")
	}
	if _, err := classifyProfile(syntheticProfile(t, nil, nil)); err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Errorf("empty profile: %v", err)
	}
}

func TestWatchLoad(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		t.Skip("no /proc/loadavg")
	}
	// A tick of 1 ms over 300 ms: at least 3 samples even on a machine
	// busy enough to delay the ticker's goroutine by tens of ms.
	stop := watchLoad(t.Context(), time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	got := stop()
	if len(got) < 3 || !slices.IsSorted(got) || got[0] < 0 {
		t.Fatalf("samples %v", got)
	}
}

func TestScrub(t *testing.T) {
	in := syntheticProfile(t, map[string][]string{"a": stacks[0].stack}, map[string]int64{"a": 10})
	if !bytes.Contains(gunzip(t, in), []byte("/tmp/benchreport-bin-1/")) {
		t.Fatal("the synthetic profile lacks the binary's directory")
	}
	out, err := scrub(in)
	if err != nil {
		t.Fatal(err)
	}
	raw := gunzip(t, out)
	for _, dir := range []string{"/tmp/", "/home/"} {
		if bytes.Contains(raw, []byte(dir)) {
			t.Errorf("the scrubbed profile still names %s", dir)
		}
	}
	if !bytes.Contains(raw, []byte("govlogd")) || !bytes.Contains(raw, []byte("net/http.(*conn).serve")) {
		t.Error("the scrubbed profile lost its binary's or its functions' names")
	}
	b, err := classifyProfile(out)
	if err != nil || b.Share[stacks[0].part] != 1 {
		t.Fatalf("scrubbed profile: %v, %v", b, err)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTargetVerdicts(t *testing.T) {
	for _, c := range []struct {
		got, limit, floor float64
		want              string
	}{
		{70, 70, 50, "**met**"},
		{71, 70, 50, "**missed**"},
		{90, 70, 0, "**missed**"},
		{90, 70, 84, "**missed**: the floor alone is above the target"},
		{60, 70, 84, "**met**"},
	} {
		if v := cpuVerdict(c.got, c.limit, c.floor); v != c.want {
			t.Errorf("cpuVerdict(%v, %v, %v) = %q, want %q", c.got, c.limit, c.floor, v, c.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 25060: "25,060", 10_000_000: "10,000,000"} {
		if s := thousands(n); s != want {
			t.Errorf("thousands(%d) = %q, want %q", n, s, want)
		}
	}
	if s := atSize("**met**", 10_000_000); s != "**met**" {
		t.Errorf("atSize at 10,000,000 = %q", s)
	}
}
