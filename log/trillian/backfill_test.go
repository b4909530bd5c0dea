package trillian

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

// backfillFixture is a tree with entries appended through a Backend, the
// postings its appends wrote, and the answers its searches gave with the
// index complete.
type backfillFixture struct {
	f    *fixture
	db   *sql.DB
	tree int64
	// postings are the tree's rows of govlog_search after the appends.
	postings [][2]int64
	size     uint64
	// queries are one per entry (its resource) and some that match many.
	queries []*log.Query
}

// newBackfillFixture appends n decisions (every third a deny, each with a
// resource of its own) in batches of 25 through b, on the database db.
func newBackfillFixture(t *testing.T, f *fixture, b *Backend, db *sql.DB, n int) *backfillFixture {
	t.Helper()
	x := &backfillFixture{f: f, db: db, tree: b.treeID}
	var subs []*log.Submission
	for i := range n {
		outcome := log.OutcomeAllow
		if i%3 == 0 {
			outcome = log.OutcomeDeny
		}
		subs = append(subs, f.decision(fmt.Sprintf("bf-%d", i), outcome, fmt.Sprintf(`,"resource":"res-%d"`, i)))
		x.queries = append(x.queries, &log.Query{Resource: fmt.Sprintf("res-%d", i)})
	}
	for len(subs) > 0 {
		k := min(len(subs), 25)
		_, cp := f.append(b, subs[:k]...)
		subs = subs[k:]
		x.size = cp.Size
	}
	x.queries = append(x.queries,
		&log.Query{Subject: "agent-7"},
		&log.Query{Outcome: log.OutcomeDeny},
		&log.Query{Subject: "agent-7", Outcome: log.OutcomeAllow, Action: "deploy"},
		// Time buckets: Plan.Any.
		&log.Query{From: baseTime(), To: baseTime().Add(time.Hour)},
	)
	want := x.want(t, b)
	for i := range n {
		if len(want[i]) != 1 {
			t.Fatalf("resource res-%d: %v match, want one entry", i, want[i])
		}
	}
	if got, all := len(want[n]), n; got != all {
		t.Fatalf("subject agent-7: %d entries match, want %d", got, all)
	}
	if got, deny := len(want[n+1]), (n+2)/3; got != deny {
		t.Fatalf("outcome deny: %d entries match, want %d", got, deny)
	}
	// The appends' index answers as the log does.
	for i, q := range x.queries {
		if got := x.search(t, b, q); !slices.Equal(got, want[i]) {
			t.Fatalf("Search(%+v) = %v, want %v", *q, got, want[i])
		}
	}
	x.postings = x.readPostings(t)
	if got := x.indexedRow(t); got != x.size {
		t.Fatalf("after the appends the search index covers %d entries, want the checkpoint's %d", got, x.size)
	}
	return x
}

// want returns the entries of the log (read from Trillian, not from the
// index) that match each query.
func (x *backfillFixture) want(t *testing.T, b *Backend) [][]uint64 {
	t.Helper()
	leaves, err := b.Entries(context.Background(), 0, int(x.size))
	if err != nil || uint64(len(leaves)) != x.size {
		t.Fatalf("Entries(0, %d): %d leaves, %v", x.size, len(leaves), err)
	}
	out := make([][]uint64, len(x.queries))
	for i, leaf := range leaves {
		s, err := log.Summarize(leaf)
		if err != nil {
			t.Fatal(err)
		}
		for j, q := range x.queries {
			if q.Match(&s) {
				out[j] = append(out[j], uint64(i))
			}
		}
	}
	return out
}

func (x *backfillFixture) search(t *testing.T, b *Backend, q *log.Query) []uint64 {
	t.Helper()
	found, err := b.Search(context.Background(), q, 0, 0, 1000)
	if err != nil {
		t.Fatalf("Search(%+v): %v", *q, err)
	}
	out := make([]uint64, len(found))
	for i, fd := range found {
		out[i] = fd.Index
	}
	return out
}

func (x *backfillFixture) readPostings(t *testing.T) [][2]int64 {
	t.Helper()
	rows, err := x.db.Query("SELECT term, leaf_index FROM govlog_search WHERE tree_id = ? ORDER BY term, leaf_index", x.tree)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var p [2]int64
		if err := rows.Scan(&p[0], &p[1]); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (x *backfillFixture) indexedRow(t *testing.T) uint64 {
	t.Helper()
	var size uint64
	if err := x.db.QueryRow("SELECT size FROM govlog_search_indexed WHERE tree_id = ?", x.tree).Scan(&size); err != nil {
		t.Fatalf("reading the size the search index covers: %v", err)
	}
	return size
}

func (x *backfillFixture) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := x.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// unindex makes the tree look like a log created before the search
// index: no postings, nothing covered.
func (x *backfillFixture) unindex(t *testing.T) {
	t.Helper()
	x.exec(t, "DELETE FROM govlog_search WHERE tree_id = ?", x.tree)
	x.exec(t, "UPDATE govlog_search_indexed SET size = 0 WHERE tree_id = ?", x.tree)
}

// check checks that the index covers the log, holds exactly the postings
// the appends wrote, and that b's searches find what they found.
func (x *backfillFixture) check(t *testing.T, b *Backend) {
	t.Helper()
	if got := x.indexedRow(t); got != x.size {
		t.Errorf("the search index covers %d entries, want %d", got, x.size)
	}
	if got := x.readPostings(t); !slices.Equal(got, x.postings) {
		t.Errorf("the index holds %d postings, want the %d the appends wrote (or they differ)", len(got), len(x.postings))
	}
	x.checkSearches(t, b)
}

// checkSearches checks that b's searches find every entry of the log that
// matches, and no other.
func (x *backfillFixture) checkSearches(t *testing.T, b *Backend) {
	t.Helper()
	want := x.want(t, b)
	for i, q := range x.queries {
		if got := x.search(t, b, q); !slices.Equal(got, want[i]) {
			t.Errorf("Search(%+v) = %v, want %v", *q, got, want[i])
		}
	}
}

// postingsBelow counts the postings of entries below size.
func (x *backfillFixture) postingsBelow(size uint64) (n int) {
	for _, p := range x.postings {
		if uint64(p[1]) < size {
			n++
		}
	}
	return n
}

// TestBackfill: the entries of a log the search index does not cover (one
// created before the index existed) are indexed by Open, a chunk per
// transaction; an interrupted backfill resumes where it stopped; replicas
// opening at once index it once, together; until the index covers the
// log, searches fail rather than miss entries, and an Append or a Search
// that finds it short indexes the rest in the background.
func TestBackfill(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	db, err := sql.Open("mysql", e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree := e.newTree(t)
	a := e.open(t, tree)
	x := newBackfillFixture(t, f, a, db, 100)
	a.Close()
	const chunk = 16
	chunks := func(cfg *Config) { cfg.hooks.backfillChunk = chunk }

	t.Run("interrupted", func(t *testing.T) {
		x.unindex(t)
		crash := errors.New("simulated crash")
		var n int
		cfg := Config{Addr: e.Servers.LogRPC, TreeID: tree, DSN: e.DSN, PollInterval: testPollInterval}
		chunks(&cfg)
		cfg.hooks.afterBackfillChunk = func(to uint64) error {
			if n++; n == 2 {
				return crash
			}
			return nil
		}
		b, err := Open(ctx, cfg)
		if err == nil {
			b.Close()
			t.Fatal("Open succeeded through a crash in its backfill")
		}
		if !errors.Is(err, log.ErrUnavailable) || !errors.Is(err, crash) {
			t.Fatalf("Open: %v, want ErrUnavailable (so that govlogd retries)", err)
		}
		if got := x.indexedRow(t); got != 2*chunk {
			t.Fatalf("after two chunks the index covers %d entries, want %d", got, 2*chunk)
		}
		if got, want := len(x.readPostings(t)), x.postingsBelow(2*chunk); got != want {
			t.Fatalf("after two chunks the index holds %d postings, want %d", got, want)
		}

		var first atomic.Uint64
		b = e.open(t, tree, chunks, func(cfg *Config) {
			cfg.hooks.afterBackfillChunk = func(to uint64) error {
				first.CompareAndSwap(0, to)
				return nil
			}
		})
		defer b.Close()
		if got := first.Load(); got != 3*chunk {
			t.Errorf("the resumed backfill's first chunk ended at %d, want %d (it must continue, not start over)", got, 3*chunk)
		}
		x.check(t, b)
	})

	t.Run("replicas at once", func(t *testing.T) {
		x.unindex(t)
		var (
			chunkCount atomic.Int64
			wg         sync.WaitGroup
			bs         = make([]*Backend, 3)
			errs       = make([]error, 3)
		)
		for i := range bs {
			cfg := Config{Addr: e.Servers.LogRPC, TreeID: tree, DSN: e.DSN, PollInterval: testPollInterval}
			chunks(&cfg)
			cfg.hooks.afterBackfillChunk = func(uint64) error { chunkCount.Add(1); return nil }
			wg.Go(func() { bs[i], errs[i] = Open(ctx, cfg) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Open of replica %d: %v", i, err)
			}
			defer bs[i].Close()
		}
		if got, want := chunkCount.Load(), int64((x.size+chunk-1)/chunk); got != want {
			t.Errorf("the replicas indexed %d chunks, want %d: one replica at a time", got, want)
		}
		for _, b := range bs {
			x.check(t, b)
		}
		// Appends keep the index covering the log, on every replica.
		_, cp := f.append(bs[1], f.decision("after-backfill", log.OutcomeDeny, `,"resource":"res-after"`))
		if got := x.indexedRow(t); got != cp.Size {
			t.Errorf("after an append the index covers %d entries, want %d", got, cp.Size)
		}
		for _, b := range bs {
			if got := x.search(t, b, &log.Query{Resource: "res-after"}); !slices.Equal(got, []uint64{cp.Size - 1}) {
				t.Errorf("Search(res-after) = %v, want [%d]", got, cp.Size-1)
			}
		}
	})

	// The state of the tree now is the fixture's again, one entry more.
	b := e.open(t, tree, chunks)
	defer b.Close()
	x.size, x.postings = b.known.Load(), x.readPostings(t)
	x.queries = append(x.queries, &log.Query{Resource: "res-after"}, &log.Query{Resource: "res-reset"})

	t.Run("appends during the backfill", func(t *testing.T) {
		// b appends while another replica opening indexes the log.
		x.unindex(t)
		var (
			started = make(chan struct{})
			once    sync.Once
			wg      sync.WaitGroup
			errs    = make(chan error, 5)
			last    atomic.Uint64
			// appended is closed once the first append is done: the
			// backfill waits for it after its first chunk.
			appended = make(chan struct{})
		)
		wg.Go(func() {
			<-started
			for i := range 5 {
				id := fmt.Sprintf("during-%d", i)
				_, cp, err := b.Append(ctx, f.entries(f.decision(id, log.OutcomeAllow, `,"resource":"res-`+id+`"`)), f.sign)
				if err != nil {
					errs <- err
					return
				}
				last.Store(cp.Size)
				if i == 0 {
					close(appended)
				}
			}
		})
		c := e.open(t, tree, chunks, func(cfg *Config) {
			cfg.hooks.afterBackfillChunk = func(uint64) error {
				once.Do(func() {
					close(started)
					select {
					case <-appended:
					case <-time.After(30 * time.Second):
					}
				})
				time.Sleep(20 * time.Millisecond) // the other appends run meanwhile
				return nil
			}
		})
		defer c.Close()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Append during the backfill: %v", err)
		}
		x.size = last.Load()
		waitIndexed(t, x, b)
		for i := range 5 {
			x.queries = append(x.queries, &log.Query{Resource: fmt.Sprintf("res-during-%d", i)})
		}
		if got := x.indexedRow(t); got != x.size {
			t.Errorf("the search index covers %d entries, want %d", got, x.size)
		}
		x.checkSearches(t, c)
		x.checkSearches(t, b)
		// Every entry has the postings an append gives it.
		var missing int
		if err := db.QueryRow(`SELECT COUNT(*) FROM govlog_ids i WHERE i.tree_id = ? AND NOT EXISTS
			(SELECT 1 FROM govlog_search s WHERE s.tree_id = i.tree_id AND s.leaf_index = i.leaf_index)`, tree).Scan(&missing); err != nil {
			t.Fatal(err)
		}
		if missing != 0 {
			t.Errorf("%d entries have no postings", missing)
		}
		x.postings = x.readPostings(t)
	})

	t.Run("short index refuses searches", func(t *testing.T) {
		x.unindex(t)
		b.indexed.Store(0) // as if this replica had not seen the index complete
		_, err := b.Search(ctx, &log.Query{Subject: "agent-7"}, 0, 0, 10)
		if !errors.Is(err, log.ErrUnavailable) {
			t.Fatalf("Search with the index short: %v, want ErrUnavailable", err)
		}
		// A search that needs no postings still answers.
		if found, err := b.Search(ctx, &log.Query{Kind: log.SearchDecision}, 0, 0, 10); err != nil || len(found) != 10 {
			t.Fatalf("Search(kind=decision) with the index short: %d entries, %v; want 10", len(found), err)
		}
		// The refused search started the backfill in the background.
		waitIndexed(t, x, b)
		x.check(t, b)
	})

	t.Run("short index found by an append", func(t *testing.T) {
		x.unindex(t)
		_, cp := f.append(b, f.decision("after-reset", log.OutcomeAllow, `,"resource":"res-reset"`))
		x.size = cp.Size
		x.postings = nil // the append's own postings are in the index
		waitIndexed(t, x, b)
		if got := x.search(t, b, &log.Query{Resource: "res-reset"}); !slices.Equal(got, []uint64{cp.Size - 1}) {
			t.Errorf("Search(res-reset) = %v, want [%d]", got, cp.Size-1)
		}
		x.checkSearches(t, b)
	})
}

// waitIndexed waits for the background backfill to cover the log.
func waitIndexed(t *testing.T, x *backfillFixture, b *Backend) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for x.indexedRow(t) < x.size {
		if time.Now().After(deadline) {
			t.Fatalf("the background backfill did not cover the log within 30s: %d of %d entries", x.indexedRow(t), x.size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The search that first refused may still be on its way out.
	b.bg.Wait()
}

// TestBackfillUpgrade: govlog's tables at schema version 3 or 2 are
// migrated to 4 with the size the search index covers: the latest
// checkpoint's when the postings reach entry 0 (the tree was indexed since
// its first checkpoint), else 0; Open then indexes what is missing.
func TestBackfillUpgrade(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	// govlog's tables in a database of their own, to take them back to
	// older versions.
	dsn := e.newDatabase(t)
	own := func(cfg *Config) { cfg.DSN = dsn; cfg.hooks.backfillChunk = 16 }
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree := e.newTree(t)
	a := e.open(t, tree, own)
	x := newBackfillFixture(t, f, a, db, 60)
	a.Close()

	downgrade := func(t *testing.T, version int) {
		t.Helper()
		x.exec(t, "DROP TABLE govlog_search_indexed")
		if version < 3 {
			x.exec(t, "DROP TABLE govlog_search")
		}
		x.exec(t, "DELETE FROM govlog_schema WHERE version > ?", version)
	}
	openCounting := func(t *testing.T) (*Backend, int64) {
		var chunks atomic.Int64
		b := e.open(t, tree, own, func(cfg *Config) {
			cfg.hooks.afterBackfillChunk = func(uint64) error { chunks.Add(1); return nil }
		})
		return b, chunks.Load()
	}

	t.Run("version 3, indexed from the start", func(t *testing.T) {
		downgrade(t, 3)
		if err := migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if got := x.indexedRow(t); got != x.size {
			t.Fatalf("migrated, the index covers %d entries, want the checkpoint's %d", got, x.size)
		}
		b, chunks := openCounting(t)
		defer b.Close()
		if chunks != 0 {
			t.Errorf("Open indexed %d chunks of a log indexed already", chunks)
		}
		x.check(t, b)
	})

	t.Run("version 3, upgraded from version 2", func(t *testing.T) {
		// The first 25 entries were appended at version 2: no postings.
		downgrade(t, 3)
		x.exec(t, "DELETE FROM govlog_search WHERE tree_id = ? AND leaf_index < 25", x.tree)
		if err := migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if got := x.indexedRow(t); got != 0 {
			t.Fatalf("migrated, the index covers %d entries, want 0 (entry 0 has no postings)", got)
		}
		b, chunks := openCounting(t)
		defer b.Close()
		if want := int64((x.size + 15) / 16); chunks != want {
			t.Errorf("Open indexed %d chunks, want %d", chunks, want)
		}
		x.check(t, b)
	})

	t.Run("version 2", func(t *testing.T) {
		downgrade(t, 2)
		if err := migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		if got := x.indexedRow(t); got != 0 {
			t.Fatalf("migrated, the index covers %d entries, want 0", got)
		}
		b, _ := openCounting(t)
		defer b.Close()
		x.check(t, b)
	})
}

// BenchmarkBackfill measures Open's backfill: it indexes a log of
// backfillBenchEntries decisions (of about 500 bytes, as govlog bench
// writes) that has no postings, b.N times, and reports entries/s and the
// time of one chunk (defaultBackfillChunk entries: its Trillian reads and
// its transaction). Run it with
//
//	go test -run '^$' -bench Backfill -benchtime 3x ./log/trillian/
func BenchmarkBackfill(b *testing.B) {
	e := need(b)
	ctx := context.Background()
	tree := e.newTree(b)
	var (
		chunks    atomic.Int64
		chunkTime atomic.Int64
		last      time.Time
	)
	bk := e.open(b, tree, func(cfg *Config) {
		cfg.hooks.afterBackfillChunk = func(uint64) error {
			now := time.Now()
			chunkTime.Add(int64(now.Sub(last)))
			chunks.Add(1)
			last = now
			return nil
		}
	})
	defer bk.Close()
	signer, _ := logtest.Keys(b)
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
	now := time.Now()
	for n := 0; n < backfillBenchEntries; {
		var batch []*log.Entry
		for range 500 {
			body := fmt.Sprintf(`{"id":"bench-%d","outcome":"allow","decided_at":%q,"subject":"agent-%d","action":"deploy",`+
				`"resource":"svc/payments/%d","policy":{"id":"prod-deploy","version":"7"},"reasons":["change ticket approved","within window"],`+
				`"context":{"ticket":"OPS-%d","risk":0.25}}`, n, now.UTC().Format(time.RFC3339), n%50, n, n)
			d, err := log.ParseDecision([]byte(body), now)
			if err != nil {
				b.Fatal(err)
			}
			entry, err := log.NewEntry(log.DecisionSubmission(d, "bench"), now, 300*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, entry)
			n++
		}
		if _, _, err := bk.Append(ctx, batch, sign); err != nil {
			b.Fatal(err)
		}
	}
	var postings int64
	if err := bk.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM govlog_search WHERE tree_id = ?", tree).Scan(&postings); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var took time.Duration
	for range b.N {
		b.StopTimer()
		for _, q := range []string{"DELETE FROM govlog_search WHERE tree_id = ?", "UPDATE govlog_search_indexed SET size = 0 WHERE tree_id = ?"} {
			if _, err := bk.db.ExecContext(ctx, q, tree); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		last = start
		if err := bk.backfill(ctx); err != nil {
			b.Fatal(err)
		}
		took += time.Since(start)
	}
	b.ReportMetric(float64(b.N*backfillBenchEntries)/took.Seconds(), "entries/s")
	b.ReportMetric(float64(chunkTime.Load())/float64(chunks.Load())/float64(time.Millisecond), "chunk_ms")
	b.ReportMetric(float64(postings)/backfillBenchEntries, "postings/entry")
	b.ReportMetric(0, "ns/op")
}

// backfillBenchEntries is the size of BenchmarkBackfill's log.
const backfillBenchEntries = 20000
