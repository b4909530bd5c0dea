package audit_test

import (
	"github.com/govlog/govlog/internal/cputime"
	"testing"

	"github.com/govlog/govlog/verifier/audit"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// BenchmarkIncrementalAudit is the whole of an incremental audit of 1,000
// new entries after 100,000 (40% allows, 20% execution reports): the state
// read and checked, the new entries replayed, the next state written.
func BenchmarkIncrementalAudit(b *testing.B) {
	const old, size = 100_000, 101_000
	l := testlog.New(b)
	l.GrowClean(size)
	s := newTiles(l)
	_, st := s.audit(b, l.Checkpoint(old), nil, nil)
	data, err := st.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	to, proof := l.Checkpoint(size), l.Consistency(old, size)
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		prev, err := audit.UnmarshalState(data, l.Verifier)
		if err != nil {
			b.Fatal(err)
		}
		rep, next := s.audit(b, to, prev, proof)
		if !rep.OK || next == nil {
			b.Fatalf("%+v", rep.Failures)
		}
		if _, err := next.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(data)), "state-bytes")
}

// BenchmarkStateRoundTrip reads, checks and writes the state of a log of
// 100,000 entries (40% allows, 20% execution reports).
func BenchmarkStateRoundTrip(b *testing.B) {
	l := testlog.New(b)
	l.GrowClean(100_000)
	_, st := newTiles(l).audit(b, l.Checkpoint(100_000), nil, nil)
	data, err := st.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		st, err := audit.UnmarshalState(data, l.Verifier)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(data)), "state-bytes")
}

// BenchmarkAuditFromScratch audits a log of 20,000 entries from scratch
// (40% allows, 20% execution reports), the tiles served as the test log
// computes them.
func BenchmarkAuditFromScratch(b *testing.B) {
	const n = 20_000
	l := testlog.New(b)
	l.GrowClean(n)
	s := newTiles(l)
	cp := l.Checkpoint(n)
	s.audit(b, cp, nil, nil) // warm-up
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		if rep, st := s.audit(b, cp, nil, nil); !rep.OK || st == nil {
			b.Fatalf("%+v", rep.Failures)
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N*n), "cpu-ns/entry")
}
