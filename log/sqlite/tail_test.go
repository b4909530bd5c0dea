package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// benchResource is the resource of entry i of the benchmark log: the
// entries below benchResources each have their own.
func benchResource(i int) string { return fmt.Sprintf("svc/resource-%d", (i*7919)%benchResources) }

// findEach searches for each entry of idxs by its resource and by its
// time (one millisecond) and fails unless each search finds exactly it:
// every posting of the entry is where a search looks for it.
func findEach(t *testing.T, b *Backend, idxs []int) {
	t.Helper()
	ctx := context.Background()
	for _, i := range idxs {
		at := benchStart.Add(time.Duration(i) * time.Millisecond)
		// The time search starts a few entries early: the entries of
		// its second bucket before it are read and dropped.
		for k, q := range []log.Query{{Resource: benchResource(i)}, {From: at, To: at.Add(time.Millisecond)}} {
			found, err := b.Search(ctx, &q, uint64(k*max(0, i-5)), 0, 10)
			if err != nil {
				t.Fatalf("search for entry %d: %v", i, err)
			}
			if len(found) != 1 || found[0].Index != uint64(i) {
				var got []uint64
				for _, f := range found {
					got = append(got, f.Index)
				}
				t.Fatalf("search %+v for entry %d found %v", q, i, got)
			}
		}
	}
}

// findAll pages through searches that together match every entry of
// the benchmark log of n entries, by a field (the outcome: allow, deny)
// and by time (the hours of the whole log), and fails unless each finds
// exactly its entries, in order.
func findAll(t *testing.T, b *Backend, n int) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		q     log.Query
		match func(i int) bool
	}{
		{log.Query{Outcome: log.OutcomeDeny}, func(i int) bool { return i%10 == 3 }},
		{log.Query{Outcome: log.OutcomeAllow}, func(i int) bool { return i%10 != 3 }},
		{log.Query{From: benchStart, To: benchStart.Add(time.Hour + time.Duration(n)*time.Millisecond).Truncate(time.Hour)}, func(int) bool { return true }},
	} {
		next, start := 0, uint64(0)
		for {
			page, err := b.Search(ctx, &tc.q, start, 0, 1000)
			if err != nil {
				t.Fatalf("search %+v: %v", tc.q, err)
			}
			for _, f := range page {
				for next < n && !tc.match(next) {
					next++
				}
				if f.Index != uint64(next) {
					t.Fatalf("search %+v found entry %d, want %d", tc.q, f.Index, next)
				}
				next++
			}
			if len(page) < 1000 {
				break
			}
			start = page[len(page)-1].Index + 1
		}
		for next < n && !tc.match(next) {
			next++
		}
		if next != n {
			t.Fatalf("search %+v did not find entry %d", tc.q, next)
		}
	}
}

// every returns from, from+step, … below to.
func every(from, to, step int) []int {
	var out []int
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

// TestSearchTailReopen: a log closed in the middle of a range (its last
// range's postings only ever in memory) finds every entry by search once
// reopened, and appends on from there, through a range merge of the tail
// read by Open.
func TestSearchTailReopen(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	const n = 1<<rangeBits - 1000
	bulkLogSigned(t, path, n-1500, sign) // the rows Append writes
	b, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendBench(t, b, sign, n-1500, n, 500)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openAt(t, path, Options{})
	if tail := b.snap.Load().tail; tail.from != 0 || tail.n != n {
		t.Fatalf("after Open the tail holds %d entries from %d", tail.n, tail.from)
	}
	findAll(t, b, n)
	findEach(t, b, append(every(n-1600, n, 4), every(0, n-1600, 331)...))
	appendBench(t, b, sign, n, 1<<rangeBits+500, 500)
	if tail := b.snap.Load().tail; tail.from != 1<<rangeBits || tail.n != 500 {
		t.Fatalf("after the merge the tail holds %d entries from %d", tail.n, tail.from)
	}
	findAll(t, b, 1<<rangeBits+500)
	findEach(t, b, every(n-200, 1<<rangeBits+500, 5))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// TestSearchTailCrash: a child process appends past a range's fill and
// into the next range, and is killed (SIGKILL) right after its last
// Append returned, in the middle of the range's merge; the file passes
// Check, and reopened, the log finds every acknowledged entry by search
// and passes Check.
func TestSearchTailCrash(t *testing.T) {
	if path := os.Getenv("GOVLOG_SQLITE_CRASH_TAIL_DB"); path != "" {
		crashTailChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "log.db")
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	bulkLogSigned(t, path, crashTailFrom, signWith(skey)) // the rows Append writes
	cmd := exec.Command(os.Args[0], "-test.run=^TestSearchTailCrash$")
	cmd.Env = append(os.Environ(), "GOVLOG_SQLITE_CRASH_TAIL_DB="+path, "GOVLOG_SQLITE_CRASH_TAIL_KEY="+skey)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	acked, err := strconv.Atoi(string(bytes.TrimSpace(out)))
	if err != nil {
		t.Fatalf("child output %q", out)
	}
	// Killed in the middle of the range's merge (searchMerge): part of
	// its postings stored, search_indexed at its first entry; Check
	// accepts that, and Open finishes it.
	var indexed, stored int64
	sqlQueryRow(t, path, `SELECT (SELECT size FROM search_indexed), (SELECT count(*) FROM search_postings)`, &indexed, &stored)
	if indexed != 0 || stored == 0 {
		t.Fatalf("after the crash: search_indexed %d, %d rows stored; want 0 and a part of the range's", indexed, stored)
	}
	if _, err := Check(context.Background(), path, v, nil); err != nil {
		t.Fatalf("Check of the merge the crash interrupted (%d rows stored): %v", stored, err)
	}
	b := openAt(t, path, Options{})
	if cp, err := b.Latest(context.Background()); err != nil || cp.Size != uint64(acked) {
		t.Fatalf("Latest after the crash = size %d, %v; the child acknowledged %d", cp.Size, err, acked)
	}
	findAll(t, b, acked)
	findEach(t, b, append(every(crashTailFrom, acked, 5), every(0, crashTailFrom, 331)...))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(context.Background(), path, v, nil); err != nil {
		t.Fatalf("Check after the crash: %v", err)
	}
}

// crashTailFrom is the size of the log TestSearchTailCrash's child
// appends to, a little short of a range.
const crashTailFrom = 1<<rangeBits - 1500

// crashTailChild appends the benchmark log's entries from crashTailFrom
// to past a range merge, prints the acknowledged size and kills itself.
func crashTailChild(path string) {
	ctx := context.Background()
	b, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sign := signWith(os.Getenv("GOVLOG_SQLITE_CRASH_TAIL_KEY"))
	var cp log.Checkpoint
	for i := crashTailFrom; i < 1<<rangeBits+2345; i += 700 {
		var batch []*log.Entry
		for j := i; j < min(i+700, 1<<rangeBits+2345); j++ {
			batch = append(batch, benchEntry(j))
		}
		if _, cp, err = b.Append(ctx, batch, sign); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	fmt.Println(cp.Size)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// signWith returns the SignFunc of a note signer key, which panics if
// the key is not one.
func signWith(skey string) log.SignFunc {
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	return func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
}

// TestSearchMergeRace: searches of the newest entries, from a full range
// into the tail, run while appends fill ranges and merge them, a slice a
// commit: each page holds every match from its start, in order, without
// a gap or a repeat, at least up to the size published before the search
// began. Some searches must have begun during a merge.
func TestSearchMergeRace(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	const from = 1<<rangeBits - 3000
	bulkLog(t, path, from) // the rows Append writes
	b := openAt(t, path, Options{})
	sign, _ := newSign(t)
	queries := []struct {
		name  string
		q     func(start int) log.Query
		match func(start, i int) bool
	}{
		{"deny", func(int) log.Query { return log.Query{Outcome: log.OutcomeDeny} },
			func(_, i int) bool { return i%10 == 3 }},
		{"action+deny", func(int) log.Query { return log.Query{Action: "action-13", Outcome: log.OutcomeDeny} },
			func(_, i int) bool { return i%benchActions == 13 }},
		{"time", func(start int) log.Query {
			at := benchStart.Add(time.Duration(start) * time.Millisecond)
			return log.Query{From: at, To: at.Add(time.Hour)}
		}, func(start, i int) bool { return i >= start }},
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var searches sync.Map
	var duringMerge atomic.Int64
	for _, qq := range queries {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				s := b.snap.Load()
				published := int(s.size())
				if s.merge != nil {
					duringMerge.Add(1)
				}
				start := max(0, published-2000-k%1000)
				q := qq.q(start)
				found, err := b.Search(ctx, &q, uint64(start), 0, 300)
				if err != nil {
					t.Errorf("%s: %v", qq.name, err)
					return
				}
				next := start
				for _, f := range found {
					for !qq.match(start, next) {
						next++
					}
					if f.Index != uint64(next) {
						t.Errorf("%s from %d (published %d): found %d, want %d", qq.name, start, published, f.Index, next)
						return
					}
					next++
				}
				if len(found) < 300 {
					// The page ends at the size the search saw: at least
					// the one published before it began.
					for next < published && !qq.match(start, next) {
						next++
					}
					if next < published {
						t.Errorf("%s from %d: %d results, missing entry %d below the published size %d", qq.name, start, len(found), next, published)
						return
					}
				}
				n, _ := searches.LoadOrStore(qq.name, new(int))
				*n.(*int)++
			}
		})
	}
	appendBench(t, b, sign, from, 2<<rangeBits+1000, 499)
	close(done)
	wg.Wait()
	searches.Range(func(k, v any) bool {
		t.Logf("%s: %d searches", k, *v.(*int))
		return true
	})
	t.Logf("%d searches began during a merge", duringMerge.Load())
	if duringMerge.Load() == 0 {
		t.Error("no search began during a merge")
	}
}

// toV4 rewrites the search index of the log at path in the layout of
// schema version 4: a row (rng, term, idx) a posting of the full ranges,
// field terms at rng = idx >> 14, time terms at rng = -1.
func toV4(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	var size, indexed int64
	if err := tx.QueryRow(`SELECT (SELECT count(*) FROM entries), (SELECT size FROM search_indexed)`).Scan(&size, &indexed); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE search_postings`,
		`CREATE TABLE search_terms (rng INTEGER NOT NULL, term INTEGER NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (rng, term, idx)) WITHOUT ROWID`,
		`PRAGMA user_version = 4`,
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for i := range indexed {
		var leaf []byte
		if err := tx.QueryRow(`SELECT leaf FROM entries WHERE idx = ?`, i).Scan(&leaf); err != nil {
			t.Fatal(err)
		}
		s, err := log.Summarize(leaf)
		if err != nil {
			t.Fatal(err)
		}
		for _, term := range s.FieldTerms() {
			if _, err := tx.Exec(`INSERT INTO search_terms (rng, term, idx) VALUES (?, ?, ?)`, i>>rangeBits, int64(term), i); err != nil {
				t.Fatal(err)
			}
		}
		for _, term := range s.TimeTerms() {
			if _, err := tx.Exec(`INSERT INTO search_terms (rng, term, idx) VALUES (-1, ?, ?)`, int64(term), i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromV4: a log of schema version 4 (a row a posting) is
// migrated to version 5 by Open: the old postings dropped, the full
// ranges indexed again from the entries, the last range in memory; the
// log then finds every entry, appends, and passes Check.
func TestMigrateFromV4(t *testing.T) {
	ctx := context.Background()
	const n = 2<<rangeBits + 700
	path := tempDB(t)
	sign, v := newSign(t)
	bulkLogSigned(t, path, n, sign) // the rows Append writes
	toV4(t, path)
	if _, err := Check(ctx, path, v, nil); err == nil || !strings.Contains(err.Error(), "the schema version is 4") {
		t.Fatalf("Check of version 4: %v", err)
	}
	b := openAt(t, path, Options{})
	var indexed, ranges int64
	if err := b.rdb.QueryRowContext(ctx, `SELECT (SELECT size FROM search_indexed), (SELECT count(DISTINCT `+sqlRowRange+`) FROM search_postings)`).Scan(&indexed, &ranges); err != nil {
		t.Fatal(err)
	}
	if indexed != 2<<rangeBits || ranges != 2 {
		t.Fatalf("after Open: search_indexed %d, rows of %d ranges; want %d, 2", indexed, ranges, 2<<rangeBits)
	}
	if tail := b.snap.Load().tail; tail.from != 2<<rangeBits || tail.n != n-2<<rangeBits {
		t.Fatalf("after Open the tail holds %d entries from %d", tail.n, tail.from)
	}
	findAll(t, b, n)
	findEach(t, b, append(every(2<<rangeBits, n, 3), every(0, 2<<rangeBits, 331)...))
	appendBench(t, b, sign, n, n+100, 50)
	findEach(t, b, every(n-100, n+100, 3))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check after Open: %v", err)
	}
}

// indexedState returns search_indexed and how many rows of search
// postings are stored of the ranges at or after entry from.
func indexedState(t *testing.T, b *Backend, from uint64) (indexed, above int64) {
	t.Helper()
	if err := b.rdb.QueryRow(`SELECT (SELECT size FROM search_indexed), (SELECT count(*) FROM search_postings WHERE `+sqlRowRange+` >= ?)`, int64(from>>rangeBits)).Scan(&indexed, &above); err != nil {
		t.Fatal(err)
	}
	return indexed, above
}

// TestSearchMergeSpread: the range an append fills is written by the
// following commits, a slice each (searchMerge); meanwhile search_indexed
// stays at its first entry and searches find every entry; Check accepts
// the log closed in the middle of a merge, and Open finishes it; a
// commit that fails writes nothing of it, and the reload of the log
// that follows a failure finishes it, whether the commit failed or only
// its reply was lost.
func TestSearchMergeSpread(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	const from = 1<<rangeBits - 1000
	bulkLogSigned(t, path, from, sign) // the rows Append writes
	b := openAt(t, path, Options{})
	// The batch that fills range 0, then two more: the merge is under way.
	appendBench(t, b, sign, from, 1<<rangeBits+200, 100)
	m := b.snap.Load().merge
	if m == nil || m.from != 0 || m.done == 0 || m.done >= len(m.rows) {
		t.Fatalf("merge after the fill: %+v", m)
	}
	t.Logf("range 0: %d postings in %d rows, %d rows written by 2 commits", m.postings, len(m.rows), m.done)
	if indexed, above := indexedState(t, b, 0); indexed != 0 || above != int64(m.done) {
		t.Fatalf("during the merge: search_indexed %d, %d rows stored; want 0, %d", indexed, above, m.done)
	}
	findEach(t, b, every(1<<rangeBits-300, 1<<rangeBits+200, 3))
	findAll(t, b, 1<<rangeBits+200)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed in the middle of the merge: a state Check accepts.
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check in the middle of a merge: %v", err)
	}
	b = openAt(t, path, Options{})
	if m := b.snap.Load().merge; m != nil {
		t.Fatalf("merge after Open: %+v", m)
	}
	if indexed, above := indexedState(t, b, 1<<rangeBits); indexed != 1<<rangeBits || above != 0 {
		t.Fatalf("after Open: search_indexed %d, %d rows stored after it; want %d, 0", indexed, above, 1<<rangeBits)
	}
	findAll(t, b, 1<<rangeBits+200)

	for _, tc := range []struct {
		name      string
		hooks     testHooks
		committed bool
	}{
		{"failed commit", testHooks{beforeCommit: func() error { return errors.New("disk on fire") }}, false},
		{"lost reply", testHooks{afterCommit: func() error { return errors.New("lost the reply") }}, true},
	} {
		size := int(b.snap.Load().size())
		next := size - size%(1<<rangeBits) + 1<<rangeBits
		appendBench(t, b, sign, size, next+150, 50) // the fill and two slices
		m := b.snap.Load().merge
		if m == nil || m.from != uint64(next-1<<rangeBits) || m.done == 0 {
			t.Fatalf("%s: merge after the fill: %+v", tc.name, m)
		}
		done := int64(m.done)
		b.hooks = tc.hooks
		if _, _, err := b.Append(ctx, []*log.Entry{benchEntry(next + 150)}, sign); err == nil {
			t.Fatalf("%s: Append passed", tc.name)
		}
		b.hooks = testHooks{}
		want := done
		if tc.committed {
			want = int64(min(len(m.rows), m.sliceEnd(1)))
		}
		if indexed, above := indexedState(t, b, m.from); indexed != int64(m.from) || above != want {
			t.Fatalf("%s: search_indexed %d, %d rows of the range stored; want %d, %d", tc.name, indexed, above, m.from, want)
		}
		after := next + 150
		if tc.committed {
			after++
		}
		appendBench(t, b, sign, after, next+300, 50)
		if m := b.snap.Load().merge; m != nil {
			t.Fatalf("%s: merge after the reload: %+v", tc.name, m)
		}
		if indexed, _ := indexedState(t, b, 0); indexed != int64(next) {
			t.Fatalf("%s: after the reload search_indexed is %d, want %d", tc.name, indexed, next)
		}
		findAll(t, b, next+300)
		findEach(t, b, every(next-100, next+300, 7))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
