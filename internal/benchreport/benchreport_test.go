package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		return &backendResult{Name: name, Closed: rep(rate), Open: rep(rate), ClosedFull: rep(rate), Proofs: rep(rate),
			Fill: []sample{{10000, rate}, {20000, rate * 0.9}}, FillRate: rate, Entries: 20000, RSSMiB: 50, StorageBytes: 20000 * 900}
	}
	r := &report{Started: time.Now(), Command: "go run ./internal/benchreport -fill 20000", Options: options{rate: 2000, clients: 64, benchtime: "1s"},
		CPUs: 2, CPUModel: "test", GoVersion: "go1.26",
		Micro:    parseBenchOutput([]byte(benchOut)),
		Backends: []*backendResult{be("embedded (SQLite)", 5000), be("Trillian + MariaDB", 500)}}
	r.Backends[0].Floor = &loadgen.Report{ServerCPUPerDecision: 61.4}
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
		"p50 1.0 / p90 2.0 / p99 3.0 / p99.9 4.0 ms",
		"5000; 3 of 5000 late",
		"| 0.90× | 0.90× |",
		"| 900 B | 900 B |",
		"logging nothing): server CPU per request | 61 µs | — |",
		"| 6; 0 | 6; 0 |",
		"| log | ParseDecision/bytes=400 | 45.23 µs | 14785 | 336 |",
		"| log/sqlite | Append/batch=64 | 1.23 ms | 50000 | 700 | 9876 ns/entry |",
		"![latency CDF, open loop](latency-cdf.png)",
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
