package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// entryMaker makes distinct decision entries of about 500 bytes cheaply:
// one entry built by the log package, with its 12-character id replaced.
type entryMaker struct {
	tmpl *log.Entry
	next int
	// random makes ids of 10 random hexadecimal digits (as UUIDs would
	// land in the id index), rather than in order.
	random bool
	// spread, when random, makes ids of 36 characters, as long as a
	// UUID's, that land among the ids of benchLeaf's entries 0 …
	// spread-1 (bench-%09d): at a random place in the id index of a log
	// built by bulkLog, as UUIDs would in a log of UUIDs.
	spread int
}

const tmplID = "b-0000000000"

func newEntryMaker(t testing.TB, size int) *entryMaker {
	e := decision(t, tmplID, decisionOpts{})
	if pad := size - len(e.Leaf) - len(`,"context":{"pad":""}`); pad > 0 {
		e = decision(t, tmplID, decisionOpts{pad: pad})
	}
	return &entryMaker{tmpl: e}
}

func (m *entryMaker) make() *log.Entry {
	id := fmt.Sprintf("b-%010d", m.next)
	if m.random {
		id = fmt.Sprintf("b-%010x", rand.Uint64()>>24)
		if m.spread > 0 {
			id = fmt.Sprintf("bench-%09d-%020x", rand.IntN(m.spread), rand.Uint64()>>16)
		}
	}
	m.next++
	sub := *m.tmpl.Submission
	sub.ID = id
	sub.Content = bytes.Replace(sub.Content, []byte(tmplID), []byte(id), 1)
	return &log.Entry{Submission: &sub, LoggedAt: m.tmpl.LoggedAt, AuthorizedUntil: m.tmpl.AuthorizedUntil,
		Leaf: bytes.Replace(m.tmpl.Leaf, []byte(tmplID), []byte(id), 1)}
}

func (m *entryMaker) batch(n int) []*log.Entry {
	out := make([]*log.Entry, n)
	for i := range out {
		out[i] = m.make()
	}
	return out
}

// BenchmarkAppend appends batches of 500-byte entries: one transaction,
// one fsync and one signature per batch. Batches of 1 are the fixed cost
// of a group commit (a lone submission's, as most of the open loop's and
// many of the closed loop's commits are), those of 32 the group commits
// of single decisions from a few dozen clients, those of 1,024 the batch
// endpoint's. cpu-ns/entry is the process CPU time per entry (user
// and system, all threads, including the fsync's), which time the machine
// gives other processes does not inflate.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 32, 1024} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			ctx := context.Background()
			be := openAt(b, tempDB(b), Options{})
			sign, _ := newSign(b)
			m := newEntryMaker(b, 500)
			// Start from a log that is not tiny.
			for range 20 {
				mustAppend(b, be, sign, m.batch(1024)...)
			}
			// Entries are made off the timed path, by another goroutine.
			batches, done := make(chan []*log.Entry, 4), make(chan struct{})
			defer close(done)
			go func() {
				for {
					select {
					case batches <- m.batch(n):
					case <-done:
						return
					}
				}
			}()
			var entries int
			start, cpu := time.Now(), cputime.Process()
			for b.Loop() {
				batch := <-batches
				if _, _, err := be.Append(ctx, batch, sign); err != nil {
					b.Fatal(err)
				}
				entries += n
			}
			b.ReportMetric(float64(entries)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(entries), "ns/entry")
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(entries), "cpu-ns/entry")
		})
	}
}

// BenchmarkAppendAtSize appends batches of 32 entries with random ids
// (UUIDs: each lands on its own page of the id index) to an empty log and
// to one of GOVLOG_BENCH_APPEND_N entries (default 1,000,000), built by
// bulkLog once at GOVLOG_BENCH_APPEND_DB (default in the temporary
// directory) and copied for each run. The ids are as long as UUIDs and
// land at random among the log's ids (entryMaker.spread), as UUIDs do in
// a log of UUIDs; GOVLOG_BENCH_APPEND_IDS=after makes them as before
// ("b-" and 10 hexadecimal digits): all of them sort before the built
// log's ids, into a part of the id index as small as an empty log's.
// Compare cpu-ns/entry of the two:
// the target is appends at 10,000,000 entries within 20% of an
// empty log. GOVLOG_BENCH_HASH_MERGE sets Options.HashMerge; -v prints
// the five slowest appends and the time to open the log again after
// the run, with the rows it left pending.
func BenchmarkAppendAtSize(b *testing.B) {
	n := benchEnvInt(b, "GOVLOG_BENCH_APPEND_N", 1_000_000)
	base := os.Getenv("GOVLOG_BENCH_APPEND_DB")
	if base == "" {
		base = filepath.Join(os.TempDir(), fmt.Sprintf("govlog-append-%d.db", n))
	}
	opts := Options{HashMerge: benchEnvInt(b, "GOVLOG_BENCH_HASH_MERGE", 0)}
	bulkLog(b, base, n)
	for _, filled := range []bool{false, true} {
		b.Run(fmt.Sprintf("filled=%v", filled), func(b *testing.B) {
			ctx := context.Background()
			path := tempDB(b)
			if filled {
				copyFile(b, base, path)
			}
			t0, cpu0 := time.Now(), cputime.Process()
			be := openAt(b, path, opts)
			s := be.snap.Load()
			b.Logf("open: %v, %v of CPU, run filters %d + %d bytes", time.Since(t0).Round(time.Millisecond), time.Duration(cputime.Process()-cpu0).Round(time.Millisecond), s.idRuns.bytes(), s.hashRuns.bytes())
			sign, _ := newSign(b)
			m := newEntryMaker(b, 500)
			m.random = true
			if os.Getenv("GOVLOG_BENCH_APPEND_IDS") != "after" {
				m.spread = n
			}
			var (
				entries int
				times   []time.Duration
			)
			cpu := cputime.Process()
			for b.Loop() {
				t := time.Now()
				if _, _, err := be.Append(ctx, m.batch(32), sign); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t))
				entries += 32
			}
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(entries), "cpu-ns/entry")
			// The slowest appends, by how many entries they ended at.
			order := make([]int, len(times))
			for i := range order {
				order[i] = i
			}
			slices.SortFunc(order, func(i, j int) int { return cmp.Compare(times[j], times[i]) })
			var slow []string
			for _, i := range order[:min(5, len(order))] {
				slow = append(slow, fmt.Sprintf("%v at +%d", times[i].Round(time.Millisecond), 32*(i+1)))
			}
			b.Logf("slowest appends: %s", strings.Join(slow, ", "))
			b.ReportMetric(float64(times[order[0]].Microseconds())/1000, "max-ms")
			// Open again: it reads the pending entries' ids from their leaves.
			b.StopTimer()
			snap := be.snap.Load()
			pending := snap.size() - min(snap.pending.from, snap.ids.from)
			if err := be.Close(); err != nil {
				b.Fatal(err)
			}
			t0, cpu0 = time.Now(), cputime.Process()
			openAt(b, path, opts) // closed by the cleanup
			b.Logf("open again with %d pending: %v, %v of CPU", pending, time.Since(t0).Round(time.Millisecond), time.Duration(cputime.Process()-cpu0).Round(time.Millisecond))
		})
	}
}

// copyFile copies the file at src to dst.
func copyFile(tb testing.TB, src, dst string) {
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	// Written back before the run: else the first checkpoint's fsync of
	// the database writes back whatever of the copy the kernel has not.
	if err := out.Sync(); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkTree100k reads from a log of 102,400 500-byte entries.
func BenchmarkTree100k(b *testing.B) {
	ctx := context.Background()
	path := tempDB(b)
	be, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	sign, _ := newSign(b)
	m := newEntryMaker(b, 500)
	var leaves [][]byte
	buildStart := time.Now()
	for range 100 {
		batch := m.batch(1024)
		mustAppend(b, be, sign, batch...)
		for _, e := range batch {
			leaves = append(leaves, e.Leaf)
		}
	}
	b.Logf("built 102,400 entries in %v", time.Since(buildStart))
	if err := be.Close(); err != nil {
		b.Fatal(err)
	}
	if fi, err := os.Stat(path); err == nil {
		b.Logf("database: %d bytes, %.0f B/entry", fi.Size(), float64(fi.Size())/float64(len(leaves)))
	}
	b.Run("Open", func(b *testing.B) {
		for b.Loop() {
			be, err := Open(ctx, path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			be.Close()
		}
	})
	be = openAt(b, path, Options{})
	size := uint64(len(leaves))
	rnd := rand.New(rand.NewPCG(1, 2))
	b.Run("InclusionProof", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.InclusionProof(ctx, rnd.Uint64N(size), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InclusionProof/cold", func(b *testing.B) {
		cold := openAt(b, path, Options{TileCacheSize: 1})
		for b.Loop() {
			if _, err := cold.InclusionProof(ctx, rnd.Uint64N(size), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ConsistencyProof", func(b *testing.B) {
		for b.Loop() {
			if _, err := be.ConsistencyProof(ctx, 1+rnd.Uint64N(size), size); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LookupHash", func(b *testing.B) {
		for b.Loop() {
			i := rnd.Uint64N(size)
			if got, err := be.LookupHash(ctx, log.LeafHash(leaves[i])); err != nil || got != i {
				b.Fatal(got, err)
			}
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := be.Lookup(ctx, log.KindDecision, fmt.Sprintf("b-%010d", rnd.IntN(len(leaves)))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenPending opens two logs of the same size, alternating: one
// whose newest 16,383 entries have no ids and leaf_hashes rows yet (the
// most a log holds in memory with the default merge size), one with
// every row, and reports the time of Open and, apart, of what Open does
// for the pending ids (loadPendingIDs: the ids of the pending entries
// read from their leaves). Open also finishes the
// search range the appends filled, which the first log left half written:
// the difference of the Open times is not all the pending rows'.
func BenchmarkOpenPending(b *testing.B) {
	ctx := context.Background()
	const size = DefaultHashMerge/2 + DefaultHashMerge - 1
	paths := [2]string{filepath.Join(b.TempDir(), "pending.db"), filepath.Join(b.TempDir(), "none.db")}
	bulkLog(b, paths[0], DefaultHashMerge/2)
	bulkLog(b, paths[1], size)
	be := openAt(b, paths[0], Options{})
	sign, _ := newSign(b)
	for next := DefaultHashMerge / 2; next < size; {
		batch := make([]*log.Entry, 0, 1024)
		for ; next < size && len(batch) < cap(batch); next++ {
			batch = append(batch, benchEntry(next))
		}
		if _, _, err := be.Append(ctx, batch, sign); err != nil {
			b.Fatal(err)
		}
	}
	if err := be.Close(); err != nil {
		b.Fatal(err)
	}
	var open, ids [2]time.Duration
	for b.Loop() {
		for i, path := range paths {
			t0 := time.Now()
			be, err := Open(ctx, path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			open[i] += time.Since(t0)
			tx, err := be.rdb.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			t0 = time.Now()
			p, err := loadPendingIDs(ctx, tx, be.snap.Load().idRuns.next(), size, DefaultHashMerge)
			if err != nil {
				b.Fatal(err)
			}
			ids[i] += time.Since(t0)
			_ = tx.Rollback()
			if got, want := size-p.from, uint64(1-i)*(DefaultHashMerge-1); got != want {
				b.Fatalf("%s holds %d ids in memory, want %d", path, got, want)
			}
			if err := be.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i, what := range []string{"pending", "none"} {
		b.ReportMetric(float64(open[i].Microseconds())/float64(b.N)/1000, "ms/open-"+what)
		b.ReportMetric(float64(ids[i].Microseconds())/float64(b.N)/1000, "ms/ids-"+what)
	}
}
