package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/govlog/govlog/log"
)

// The search benchmarks. BenchmarkSearch needs a big log; building it
// through Append takes as long as the log's own write path (an hour for
// ten million entries on a laptop), so bulkLog writes the database
// directly: the same rows Append writes (entries, ids, leaf hashes,
// search postings of the full ranges, tiles and one signed checkpoint),
// in large transactions without fsync. Open then verifies the tree against the
// checkpoint as it does for any log.
//
//	GOVLOG_BENCH_SEARCH_N=10000000 GOVLOG_BENCH_SEARCH_DB=/var/tmp/search.db \
//	    go test -run XXX -bench BenchmarkSearch -benchtime 200x ./log/sqlite/
//
// N defaults to 1,000,000; with GOVLOG_BENCH_SEARCH_DB the log is built
// once and reused by later runs.

// The shape of the benchmark log: 10,000 agents, 50 actions, 100,000
// resources, 20 policies; one decision in 10 is a deny; one entry a
// millisecond.
const (
	benchSubjects  = 10_000
	benchActions   = 50
	benchResources = 100_000
	benchPolicies  = 20
)

var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchLeaf is entry i of the benchmark log, in RFC 8785 form.
func benchLeaf(i int) (leaf []byte, id string, allow bool) {
	at := benchStart.Add(time.Duration(i) * time.Millisecond)
	id = fmt.Sprintf("bench-%09d", i)
	outcome := "allow"
	if i%10 == 3 {
		outcome = "deny"
	}
	au := ""
	if outcome == "allow" {
		au = `"authorized_until":"` + at.Truncate(time.Second).Add(300*time.Second).Format(log.AuthorizedUntilLayout) + `",`
	}
	leaf = fmt.Appendf(nil, `{%s"decision":{"action":"action-%d","decided_at":"%s","id":"%s","outcome":"%s","policy":{"id":"policy-%d"},"resource":"svc/resource-%d","subject":"agent-%d"},"logged_at":"%s","submitter":"control-plane","v":1}`,
		au, i%benchActions, at.Truncate(time.Second).Format(time.RFC3339), id, outcome, i%benchPolicies, (i*7919)%benchResources, benchSubject(i), at.Format(log.LoggedAtLayout))
	return leaf, id, outcome == "allow"
}

// benchEntry is entry i of the benchmark log as the sequencer hands it to
// Append: stamped, with the fields its submission carries
// (log.DecisionSubmission).
func benchEntry(i int) *log.Entry {
	leaf, id, allow := benchLeaf(i)
	return &log.Entry{Submission: &log.Submission{Kind: log.KindDecision, ID: id, Allow: allow, Submitter: "control-plane",
		Content: []byte(`{}`), Subject: fmt.Sprintf("agent-%d", benchSubject(i)), Action: fmt.Sprintf("action-%d", i%benchActions),
		Resource: fmt.Sprintf("svc/resource-%d", (i*7919)%benchResources), PolicyID: fmt.Sprintf("policy-%d", i%benchPolicies)},
		LoggedAt: benchStart.Add(time.Duration(i) * time.Millisecond), Leaf: leaf}
}

// benchSubject spreads the entries over the subjects independently of
// their outcome (i%10).
func benchSubject(i int) uint64 {
	return (uint64(i) * 2654435761 >> 7) % benchSubjects
}

// bulkLog builds (or, when the file exists, reuses) the benchmark log of
// n entries at path.
func bulkLog(tb testing.TB, path string, n int) {
	if _, err := os.Stat(path); err == nil {
		return
	}
	sign, _ := newSign(tb)
	bulkLogSigned(tb, path, n, sign)
}

// bulkLogSigned builds the benchmark log of n entries at path, its
// checkpoint signed with sign.
func bulkLogSigned(tb testing.TB, path string, n int, sign log.SignFunc) {
	ctx := context.Background()
	b, err := Open(ctx, path, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	if _, err := b.wdb.ExecContext(ctx, "PRAGMA synchronous = OFF"); err != nil {
		tb.Fatal(err)
	}
	if _, err := b.wdb.ExecContext(ctx, "PRAGMA cache_size = -1000000"); err != nil {
		tb.Fatal(err)
	}
	rng := (&compact.RangeFactory{Hash: hashChildren}).NewEmptyRange(0)
	open := map[tileKey][]byte{}
	var full []tileKey
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%tileHeight != 0 {
			return
		}
		k := tileKey{level: id.Level / tileHeight, index: id.Index / tileWidth}
		open[k] = append(open[k], hash...)
		if len(open[k]) == fullTileBytes {
			full = append(full, k)
		}
	}
	start := time.Now()
	const txEntries = 50_000
	tail, merge := newSearchTail(0), (*searchMerge)(nil)
	for from := 0; from < n; from += txEntries {
		tx, err := b.wdb.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		var rows newRows
		for i := from; i < min(from+txEntries, n); i++ {
			leaf, id, allow := benchLeaf(i)
			e := &log.Entry{Submission: &log.Submission{Kind: log.KindDecision, ID: id, Allow: allow}}
			lh := log.LeafHash(leaf)
			if err := rows.add(e, leaf, lh, uint64(i)); err != nil {
				tb.Fatal(err)
			}
			rows.leafHashes = append(rows.leafHashes, int64(i>>14<<14), hashPrefix(lh), int64(i))
			if err := rng.Append(lh[:], visit); err != nil {
				tb.Fatal(err)
			}
		}
		for _, r := range rows.ids {
			rows.idRows = append(rows.idRows, idArgs(r.idx>>14<<14, []idRow{r})...)
		}
		if err := rows.insert(ctx, tx); err != nil {
			tb.Fatal(err)
		}
		// The full ranges' postings (the last one's written by the next
		// transaction, or below); the last range's are read by Open.
		if err := rows.mergeSearch(ctx, tx, tail, merge); err != nil {
			tb.Fatal(err)
		}
		put := tx.StmtContext(ctx, b.w.putTile)
		for _, k := range full {
			if _, err := put.ExecContext(ctx, int64(k.level), int64(k.index), open[k]); err != nil {
				tb.Fatal(err)
			}
			delete(open, k)
		}
		full = full[:0]
		if uint64(from+txEntries) >= uint64(n) {
			for k, h := range open {
				if _, err := put.ExecContext(ctx, int64(k.level), int64(k.index), h); err != nil {
					tb.Fatal(err)
				}
			}
			cp, err := sign(uint64(n), rootHash(rng))
			if err != nil {
				tb.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, sqlInsertCheckpoint, int64(n), cp.Note); err != nil {
				tb.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
		tail, merge = rows.publishSearch(tail, merge)
	}
	// The last full range's postings, as the appends after it write them.
	if merge != nil {
		tx, err := b.wdb.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		merge.load()
		if err := merge.write(ctx, tx, len(merge.rows)); err != nil {
			tb.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	// The index runs (runs of 16,384 entries, as a log migrated from
	// schema version 3 has) and their filters.
	for _, t := range []string{"id_runs", "hash_runs"} {
		for run := 0; run < n; run += 1 << 14 {
			if _, err := b.wdb.ExecContext(ctx, `INSERT INTO `+t+` (run, upto, filter) VALUES (?, ?, NULL)`, run, min(run+1<<14, n)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if _, err := persistFilters(ctx, b.wdb, DefaultHashMerge); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("built a log of %d entries in %v", n, time.Since(start).Round(time.Second))
}

// benchEnvInt is the positive integer in the environment variable name,
// or def when it is unset: a benchmark's size or option.
func benchEnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

func benchSearchSize(tb testing.TB) (n int, path string) {
	n = benchEnvInt(tb, "GOVLOG_BENCH_SEARCH_N", 1_000_000)
	path = os.Getenv("GOVLOG_BENCH_SEARCH_DB")
	if path == "" {
		path = filepath.Join(tb.TempDir(), "search.db")
	}
	return n, path
}

// BenchmarkSearch measures the first page (100 results, as GET
// /v1/search answers by default) of filtered searches on a big log.
func BenchmarkSearch(b *testing.B) {
	n, path := benchSearchSize(b)
	bulkLog(b, path, n)
	ctx := context.Background()
	opened := time.Now()
	be, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	b.Logf("opened the log in %v (the search tail: %d entries)", time.Since(opened).Round(time.Millisecond), be.snap.Load().tail.n)
	if got := be.snap.Load().size(); got != uint64(n) {
		b.Fatalf("the log at %s has %d entries, want %d (remove it to rebuild)", path, got, n)
	}
	if fi, err := os.Stat(path); err == nil {
		b.Logf("log of %d entries: %d bytes (%.0f B/entry)", n, fi.Size(), float64(fi.Size())/float64(n))
	}
	last := benchStart.Add(time.Duration(n) * time.Millisecond)
	queries := []struct {
		name string
		q    log.Query
	}{
		{"subject", log.Query{Subject: "agent-4242"}},
		{"subject+deny", log.Query{Subject: "agent-4242", Outcome: log.OutcomeDeny}},
		{"action+policy", log.Query{Action: "action-7", PolicyID: "policy-7"}},
		{"resource", log.Query{Resource: "svc/resource-31337"}},
		{"deny", log.Query{Outcome: log.OutcomeDeny}},
		{"kind=decision", log.Query{Kind: log.SearchDecision}},
		{"last-hour", log.Query{From: last.Add(-time.Hour), To: last}},
		{"last-10-minutes", log.Query{From: last.Add(-10 * time.Minute), To: last}},
		{"subject+last-day", log.Query{Subject: "agent-4242", From: last.Add(-24 * time.Hour), To: last}},
		{"violation=any", log.Query{Violation: log.ViolationAny}},
	}
	for _, tt := range queries {
		b.Run(tt.name, func(b *testing.B) {
			var found int
			for b.Loop() {
				res, err := be.Search(ctx, &tt.q, 0, 0, 101)
				if err != nil {
					b.Fatal(err)
				}
				found = len(res)
			}
			b.ReportMetric(float64(found), "results")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
		})
	}
}

// BenchmarkOpenTail opens a log whose last range is one entry short of
// full (the most entries Open reads the search tail of: 1<<rangeBits-1)
// and one whose ranges are all full, alternating: the difference is what
// reading the tail costs Open.
func BenchmarkOpenTail(b *testing.B) {
	ctx := context.Background()
	paths := [2]string{filepath.Join(b.TempDir(), "tail.db"), filepath.Join(b.TempDir(), "full.db")}
	bulkLog(b, paths[0], 2<<rangeBits-1)
	bulkLog(b, paths[1], 2<<rangeBits)
	var spent [2]time.Duration
	for b.Loop() {
		for i, path := range paths {
			t0 := time.Now()
			be, err := Open(ctx, path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(t0)
			if got, want := be.snap.Load().tail.n, uint64(1-i)*(1<<rangeBits-1); got != want {
				b.Fatalf("the tail of %s holds %d entries, want %d", path, got, want)
			}
			if err := be.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(spent[0].Microseconds())/float64(b.N)/1000, "ms/open-with-tail")
	b.ReportMetric(float64(spent[1].Microseconds())/float64(b.N)/1000, "ms/open-without")
}

// BenchmarkAppendSearchIndex appends the same batches to two logs, one
// with the search index and one without, alternating batch by batch, so
// that both see the same machine: the ratio is what the index costs an
// append.
func BenchmarkAppendSearchIndex(b *testing.B) {
	ctx := context.Background()
	sign, _ := newSign(b)
	logs := [2]*Backend{openAt(b, tempDB(b), Options{}), openAt(b, tempDB(b), Options{})}
	logs[1].hooks.noSearchIndex = true
	const batch = 256
	next := 0
	mk := func() []*log.Entry {
		out := make([]*log.Entry, batch)
		for i := range out {
			out[i] = benchEntry(next)
			next++
		}
		return out
	}
	var spent, cpu, slowest, slowestCPU [2]time.Duration
	entries := 0
	// Append runs on this goroutine, its cgo calls on this thread: the
	// thread's CPU time is what the append cost, whatever the machine
	// gives other processes (the garbage collector's other threads aside).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		batchEntries := mk()
		for j, l := range logs {
			// Alternate which goes first.
			if (entries/batch)%2 == 1 {
				l = logs[1-j]
				j = 1 - j
			}
			t0, c0 := time.Now(), threadCPUTime()
			if _, _, err := l.Append(ctx, batchEntries, sign); err != nil {
				b.Fatal(err)
			}
			d, c := time.Since(t0), threadCPUTime()-c0
			spent[j] += d
			cpu[j] += c
			slowest[j], slowestCPU[j] = max(slowest[j], d), max(slowestCPU[j], c)
		}
		entries += batch
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(entries) }
	b.ReportMetric(per(spent[0]), "ns/entry-indexed")
	b.ReportMetric(per(spent[1]), "ns/entry-unindexed")
	b.ReportMetric(per(spent[0])/per(spent[1]), "ratio")
	b.ReportMetric(per(cpu[0]), "cpu-ns/entry-indexed")
	b.ReportMetric(per(cpu[1]), "cpu-ns/entry-unindexed")
	b.ReportMetric(per(cpu[0])/per(cpu[1]), "cpu-ratio")
	// The slowest Append: the one that writes the most of a range's
	// postings (searchMerge).
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(slowest[0]), "max-ms-indexed")
	b.ReportMetric(ms(slowest[1]), "max-ms-unindexed")
	b.ReportMetric(ms(slowestCPU[0]), "max-cpu-ms-indexed")
	b.ReportMetric(ms(slowestCPU[1]), "max-cpu-ms-unindexed")
}

// threadCPUTime is the CPU time the calling thread used so far (user and
// system).
func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPostingsInsert writes the postings of one range of
// 1<<rangeBits entries in one transaction (writeRanges), two sets:
// "random", 8 postings an entry of random terms (nearly all singletons),
// the set earlier versions measured; and "generator", the postings of the
// load generator's decisions (a subject of 500, an action of 8, a unique
// resource, an outcome of 2, one policy, a unique parent for one in ten,
// and hour, minute and second terms shared by runs of 1,000 entries).
// Reports ns and stored bytes (the lists) a posting.
func BenchmarkPostingsInsert(b *testing.B) {
	ctx := context.Background()
	const perEntry = 8
	random := make([]uint64, 0, perEntry<<rangeBits)
	for i := range uint64(1 << rangeBits) {
		for k := range uint64(perEntry) {
			random = append(random, packPosting(log.Term((i*2654435761+k*40503)%(1<<31)), i))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	var genFields, genTimes []uint64
	term := func(field string, v uint64) log.Term { return log.TermOf(field, strconv.FormatUint(v, 10)) }
	for i := range uint64(1 << rangeBits) {
		genFields = append(genFields,
			packPosting(term("subject", r.Uint64N(500)), i),
			packPosting(term("action", r.Uint64N(8)), i),
			packPosting(term("resource", i), i),
			packPosting(term("outcome", r.Uint64N(2)), i),
			packPosting(term("policy", 0), i))
		if r.IntN(10) == 0 {
			genFields = append(genFields, packPosting(term("parent", i), i))
		}
		genTimes = append(genTimes, packPosting(term("hour", 0), i), packPosting(term("minute", i/60000), i), packPosting(term("second", i/1000), i))
	}
	for _, set := range []struct {
		name          string
		fields, times []uint64
	}{{"random", random, nil}, {"generator", genFields, genTimes}} {
		b.Run(set.name, func(b *testing.B) {
			be := openAt(b, tempDB(b), Options{})
			rng := uint64(0)
			for b.Loop() {
				tx, err := be.wdb.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := writeRanges(ctx, tx, rng<<rangeBits, (rng+1)<<rangeBits, [][]uint64{slices.Clone(set.fields)}, [][]uint64{slices.Clone(set.times)}); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				rng++
			}
			n := len(set.fields) + len(set.times)
			f, t := slices.Clone(set.fields), slices.Clone(set.times)
			slices.Sort(f)
			slices.Sort(t)
			var size int
			for _, row := range rangeRows(0, f, t) {
				size += len(row.list)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/posting")
			b.ReportMetric(float64(size)/float64(n), "B/posting")
		})
	}
}
