package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// TestReindex: a log whose entries the search index does not cover (one
// written before the index existed) is indexed when it is opened for
// writing, a full range per transaction, the last range in memory, and
// then passes Check.
func TestReindex(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	// Two full ranges: with one, an empty index is the state of a merge
	// just begun (searchMerge).
	const n = 2<<rangeBits + 10
	bulkLogSigned(t, path, n, sign) // the rows Append writes
	sqlExec(t, path, `DELETE FROM search_postings`)
	sqlExec(t, path, `UPDATE search_indexed SET size = 0`)
	if _, err := Check(ctx, path, v, nil); err == nil {
		t.Fatal("Check passed a log with no search index")
	}
	b := openAt(t, path, Options{})
	found, err := b.Search(ctx, &log.Query{Outcome: log.OutcomeDeny}, 0, 0, n)
	if err != nil || len(found) != n/10+1 {
		t.Fatalf("Search after reindexing: %d entries, %v; want %d", len(found), err, n/10+1)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check after reindexing: %v", err)
	}
}

// TestNoSearchIndex: a log that writes no search postings (the hook of
// the measurement-only build govlog_nosearchindex) refuses searches as
// unavailable instead of answering from an index it does not keep; the
// next Open of the normal build indexes what it appended.
func TestNoSearchIndex(t *testing.T) {
	if buildNoSearchIndex {
		t.Fatal("this build writes no search index: it must never be the default")
	}
	ctx := context.Background()
	path := tempDB(t)
	sign, _ := newSign(t)
	b := openAt(t, path, Options{})
	b.hooks.noSearchIndex = true
	const n = 10
	for i := range n {
		mustAppend(t, b, sign, entryOfSize(t, i, 500))
	}
	q := &log.Query{Subject: "agent-7"}
	if found, err := b.Search(ctx, q, 0, 0, n); !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("Search without the index: %d entries, %v; want log.ErrUnavailable", len(found), err)
	}
	if got := b.snap.Load().tail.n; got != 0 {
		t.Fatalf("the search tail holds %d entries, want 0", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openAt(t, path, Options{})
	if found, err := b.Search(ctx, q, 0, 0, n+1); err != nil || len(found) != n {
		t.Fatalf("Search after reopening: %d entries, %v; want %d", len(found), err, n)
	}
}

// appendBench appends the benchmark log's entries [from, to) to b in
// batches of batch entries.
func appendBench(t testing.TB, b *Backend, sign log.SignFunc, from, to, batch int) {
	t.Helper()
	for i := from; i < to; i += batch {
		var entries []*log.Entry
		for j := i; j < min(i+batch, to); j++ {
			entries = append(entries, benchEntry(j))
		}
		mustAppend(t, b, sign, entries...)
	}
}

// TestSearchRanges: the postings of a range of 1<<rangeBits entries are
// written by the commits after an append fills it, those of the last
// range are held in memory; searches whose matches, pages and bounds
// cross ranges and the tail return exactly the entries a scan of the
// whole log finds, in order, and Check finds every posting where it
// belongs.
func TestSearchRanges(t *testing.T) {
	ctx := context.Background()
	const n = 2<<rangeBits + 5000 // two full ranges and a partial one
	path := tempDB(t)
	b := openAt(t, path, Options{})
	defer b.Close()
	sign, v := newSign(t)
	leaves := make([][]byte, n)
	// Batches of an odd size, so that appends fill ranges and chunks
	// midway. The entries carry their submission's fields, which the
	// index is then written from (log.EntryTerms); Check reads the leaves.
	for from := 0; from < n; from += 1001 {
		var batch []*log.Entry
		for i := from; i < min(from+1001, n); i++ {
			e := benchEntry(i)
			leaves[i] = e.Leaf
			batch = append(batch, e)
		}
		mustAppend(t, b, sign, batch...)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
	last := benchStart.Add(n * time.Millisecond)
	boundary := uint64(1) << rangeBits
	for _, tt := range []struct {
		name       string
		q          log.Query
		start, end uint64
		limit      int
	}{
		{"subject", log.Query{Subject: fmt.Sprintf("agent-%d", benchSubject(int(boundary)-1))}, 0, 0, 1},
		{"subject+deny", log.Query{Subject: fmt.Sprintf("agent-%d", benchSubject(3)), Outcome: log.OutcomeDeny}, 0, 0, 1},
		{"action+policy", log.Query{Action: "action-7", PolicyID: "policy-7"}, 0, 0, 37},
		{"action+policy+deny", log.Query{Action: "action-3", PolicyID: "policy-3", Outcome: log.OutcomeDeny}, 0, 0, 50},
		{"deny, bounded across a range", log.Query{Outcome: log.OutcomeDeny}, boundary - 95, boundary + 107, 7},
		// An outcome of nine entries in ten is stored as a bitmap (appendList).
		{"allow, bounded across a range", log.Query{Outcome: log.OutcomeAllow}, boundary - 95, boundary + 107, 150},
		{"action+allow, bounded across a range", log.Query{Action: "action-4", Outcome: log.OutcomeAllow}, boundary - 950, boundary + 1070, 30},
		{"deny, from a range's first entry", log.Query{Outcome: log.OutcomeDeny}, 2 * boundary, 2*boundary + 100, 3},
		{"deny, in the tail", log.Query{Outcome: log.OutcomeDeny}, 2*boundary + 200, 2*boundary + 900, 11},
		{"action+deny, in the tail", log.Query{Action: "action-3", Outcome: log.OutcomeDeny}, 2 * boundary, 0, 4},
		{"deny, from a full range into the tail", log.Query{Outcome: log.OutcomeDeny}, 2*boundary - 50, 2*boundary + 50, 3},
		{"time, from a full range into the tail", log.Query{From: benchStart.Add(time.Duration(2*boundary-20) * time.Millisecond), To: benchStart.Add(time.Duration(2*boundary+30) * time.Millisecond)}, 0, 0, 7},
		{"the last 40 seconds", log.Query{From: last.Add(-40 * time.Second).Add(300 * time.Millisecond), To: last}, 0, 0, 999},
		{"no match", log.Query{Subject: "nobody"}, 0, 0, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			end := tt.end
			if end == 0 {
				end = n
			}
			var want []uint64
			for i := tt.start; i < end; i++ {
				s, err := log.Summarize(leaves[i])
				if err != nil {
					t.Fatal(err)
				}
				if tt.q.Match(&s) {
					want = append(want, i)
				}
			}
			var got []uint64
			for start := tt.start; ; {
				page, err := b.Search(ctx, &tt.q, start, tt.end, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > tt.limit {
					t.Fatalf("a page of %d results, limit %d", len(page), tt.limit)
				}
				for _, f := range page {
					if string(f.Leaf) != string(leaves[f.Index]) {
						t.Fatalf("entry %d: the wrong leaf", f.Index)
					}
					got = append(got, f.Index)
				}
				if len(page) < tt.limit {
					break
				}
				start = page[len(page)-1].Index + 1
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("found %d entries %v\nwant %d %v", len(got), got, len(want), want)
			}
			if tt.name != "no match" && (len(want) < 2 || want[0]>>rangeBits == want[len(want)-1]>>rangeBits) && tt.start < 2*boundary {
				t.Fatalf("matches %v: the case does not cross a range", want)
			}
		})
	}
	// Two ranges stored, the third in memory.
	var ranges, above, times int
	if err := b.rdb.QueryRowContext(ctx, `SELECT count(DISTINCT `+sqlRowRange+`) FILTER (WHERE key >= 0), count(*) FILTER (WHERE `+sqlRowRange+` >= 2),
		count(*) FILTER (WHERE key < 0) FROM search_postings`).Scan(&ranges, &above, &times); err != nil {
		t.Fatal(err)
	}
	if ranges != 2 || above != 0 || times == 0 {
		t.Fatalf("field rows of %d ranges, %d rows of the last range, %d time rows; want 2, 0, some", ranges, above, times)
	}
	if tail := b.snap.Load().tail; tail.from != 2<<rangeBits || tail.n != n-2<<rangeBits {
		t.Fatalf("the tail holds %d entries from %d, want %d from %d", tail.n, tail.from, n-2<<rangeBits, 2<<rangeBits)
	}
}
