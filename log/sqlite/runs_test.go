package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/govlog/govlog/log"
)

func testFilterKey(seed uint64) filterKey {
	var k filterKey
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range k.salt {
		k.salt[i] = byte(r.Uint32())
	}
	return k
}

// TestRunFilters checks that every key of a run is found in it, that
// few absent keys are, across chunks and runs of several slots.
func TestRunFilters(t *testing.T) {
	const blocks = 64 // slots of 512 keys nominal, 640 at most
	k := testFilterKey(1)
	f := newRunFilters(k, blocks)
	var (
		start uint64
		runs  [][]uint64
		all   []newRun
	)
	// 150 runs (more than 64 slots: several uint64s a row, grown a few
	// times), some of several slots.
	for i := range 150 {
		n := 300 + (i%7)*200
		var ks []uint64
		for j := range n {
			ks = append(ks, k.id(log.EntryID{Kind: log.KindDecision, ID: fmt.Sprintf("r%d-%d", i, j)}))
		}
		if err := f.add(start, start+uint64(n), runBlob(ks, blocks)); err != nil {
			t.Fatal(err)
		}
		all = append(all, newRun{start, start + uint64(n), runBlob(ks, blocks)})
		runs = append(runs, ks)
		start += uint64(n)
	}
	if len(f.slotRun) <= 150 || f.stride < (len(f.slotRun)+63)/64 {
		t.Fatalf("%d slots in a stride of %d", len(f.slotRun), f.stride)
	}
	for i, ks := range runs {
		r := f.runs[i]
		for _, h := range ks {
			in := f.mayHold(nil, h)
			found := false
			for _, s := range in {
				found = found || s == r.start
			}
			if !found || !f.holds(r, h) {
				t.Fatalf("run %d does not hold its key", i)
			}
		}
		if got, ok := f.runOf(r.upto - 1); !ok || got.start != r.start {
			t.Fatalf("runOf(%d) = %+v, %v", r.upto-1, got, ok)
		}
	}
	// All at once (as Open adds them): the same filters.
	g := newRunFilters(k, blocks)
	if err := g.addRuns(all); err != nil {
		t.Fatal(err)
	}
	for j := range 5000 {
		h := k.id(log.EntryID{Kind: log.KindDecision, ID: fmt.Sprintf("r%d-%d", j%150, j)})
		if a, b := f.mayHold(nil, h), g.mayHold(nil, h); !slices.Equal(a, b) {
			t.Fatalf("one at a time %v, all at once %v", a, b)
		}
	}
	if _, ok := f.runOf(start); ok {
		t.Fatal("runOf after the last run found one")
	}
	falseRuns := 0
	const absent = 20000
	for j := range absent {
		falseRuns += len(f.mayHold(nil, k.id(log.EntryID{Kind: log.KindDecision, ID: fmt.Sprintf("absent-%d", j)})))
	}
	// 32 bits a key (a little fewer in a full slot): about 2·10^-5
	// false positives a slot, about 300 slots here.
	if per := float64(falseRuns) / absent; per > 0.05 {
		t.Fatalf("%.4f false runs a lookup", per)
	}
	t.Logf("%d slots, %.4f false runs a lookup, %d bytes", len(f.slotRun), float64(falseRuns)/absent, f.bytes())
	if err := f.add(start+1, start+2, runBlob(nil, blocks)); err == nil {
		t.Fatal("a run with a gap before it was added")
	}
	if err := f.add(start, start+1, make([]byte, 3)); err == nil {
		t.Fatal("a filter of 3 bytes was added")
	}
}

// TestFilterKeySalted checks that two salts place the same keys apart.
func TestFilterKeySalted(t *testing.T) {
	a, b := testFilterKey(1), testFilterKey(2)
	same := 0
	for i := range 100 {
		e := log.EntryID{Kind: log.KindDecision, ID: fmt.Sprint(i)}
		if a.id(e) == b.id(e) || a.hash(int64(i)) == b.hash(int64(i)) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d keys hash alike with two salts", same)
	}
}

// filterHoldsTable checks that every row of the ids table is in its run's
// filter, and returns the rows.
func filterHoldsTable(t *testing.T, b *Backend) int {
	t.Helper()
	f := b.snap.Load().idRuns
	rows, err := b.rdb.QueryContext(context.Background(), `SELECT run, kind, id, idx FROM ids`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			k        log.EntryID
			run, idx uint64
		)
		if err := rows.Scan(&run, &k.Kind, &k.ID, &idx); err != nil {
			t.Fatal(err)
		}
		r, ok := f.runOf(idx)
		if !ok || r.start != run || !f.holds(r, f.key.id(k)) {
			t.Fatalf("the run filters rule out %v (entry %d of run %d), which the ids table holds", k, idx, run)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIDRunsAppends checks the filters against the ids table through
// merges and a reopening, and that resubmissions are found and new ids
// appended whatever the filters answer (the ids table stays the truth).
func TestIDRunsAppends(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	sign, v := newSign(t)
	b := openAt(t, path, Options{HashMerge: 64})
	n := 0
	batch := func(k int) []*log.Entry {
		var out []*log.Entry
		for range k {
			out = append(out, decision(t, fmt.Sprintf("s-%d", n), decisionOpts{}))
			n++
		}
		return out
	}
	for range 10 {
		mustAppend(t, b, sign, batch(50)...)
	}
	if got := filterHoldsTable(t, b); got < 400 {
		t.Fatalf("%d ids rows after 500 entries with merges of 64", got)
	}
	resubmit := func(when string) {
		t.Helper()
		old := []*log.Entry{decision(t, "s-3", decisionOpts{}), decision(t, "s-250", decisionOpts{}), decision(t, fmt.Sprintf("s-%d", n-1), decisionOpts{})}
		res, _ := mustAppend(t, b, sign, append(old, batch(3)...)...)
		for i, want := range []uint64{3, 250, uint64(n - 4)} {
			if !res[i].Existing || res[i].Index != want {
				t.Fatalf("%s: the resubmission of entry %d: %+v", when, want, res[i])
			}
		}
		for i := 3; i < 6; i++ {
			if res[i].Existing || res[i].Index != uint64(n-6+i) {
				t.Fatalf("%s: new entry %d: %+v", when, i, res[i])
			}
		}
		if idx, _, err := b.Lookup(ctx, log.KindDecision, "s-250"); err != nil || idx != 250 {
			t.Fatalf("%s: Lookup(s-250) = %d, %v", when, idx, err)
		}
		if _, _, err := b.Lookup(ctx, log.KindDecision, "never"); err == nil {
			t.Fatalf("%s: Lookup(never) found it", when)
		}
	}
	resubmit("merged")

	// "Maybe" in every run, as false positives: the lookups find nothing
	// in the others.
	b.writeMu.Lock()
	f := b.snap.Load().idRuns
	f.mu.Lock()
	for i := range f.sliced {
		f.sliced[i] = ^uint64(0)
	}
	f.mu.Unlock()
	b.writeMu.Unlock()
	resubmit("every run maybe")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
	b = openAt(t, path, Options{HashMerge: 64})
	if got := filterHoldsTable(t, b); got < n-64 {
		t.Fatalf("%d ids rows after %d entries with merges of 64", got, n)
	}
	resubmit("reopened")
}

// TestIDRunsOtherWriter checks that ids another process stored are
// found: the reload after the refused append reads the runs again.
func TestIDRunsOtherWriter(t *testing.T) {
	path := tempDB(t)
	sign, _ := newSign(t)
	a := openAt(t, path, Options{HashMerge: 64})
	b := openAt(t, path, Options{HashMerge: 64})
	var batch []*log.Entry
	for i := range 100 {
		batch = append(batch, decision(t, fmt.Sprintf("o-%d", i), decisionOpts{}))
	}
	mustAppend(t, a, sign, batch...) // merges 32 + ids rows
	if _, _, err := b.Append(context.Background(), batch[:1], sign); err == nil {
		t.Fatal("an append on a stale state succeeded")
	}
	for _, when := range []string{"reloaded", "again"} {
		res, _ := mustAppend(t, b, sign, batch[:1]...)
		if !res[0].Existing || res[0].Index != 0 {
			t.Fatalf("%s: the resubmission of o-0 after another process stored it: %+v", when, res[0])
		}
		if got := filterHoldsTable(t, b); got != 100 {
			t.Fatalf("%d ids rows, want 100", got)
		}
	}
}

// BenchmarkRunFilters times one lookup among the filters of 610 runs of
// 16,384 keys (a log of 10,000,000 entries).
func BenchmarkRunFilters(b *testing.B) {
	k := testFilterKey(1)
	blocks := blocksFor(DefaultHashMerge)
	f := newRunFilters(k, blocks)
	keys := make([]uint64, DefaultHashMerge)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 610 {
		for j := range keys {
			keys[j] = r.Uint64()
		}
		if err := f.add(uint64(i)*DefaultHashMerge, uint64(i+1)*DefaultHashMerge, runBlob(keys, blocks)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(f.bytes())/(1<<20), "MiB")
	var (
		buf   []uint64
		found int
	)
	for b.Loop() {
		buf = f.mayHold(buf[:0], r.Uint64())
		found += len(buf)
	}
	b.ReportMetric(float64(found)/float64(b.N), "false-runs/op")
}

// BenchmarkLoadRuns reads the stored filters of 610 runs of 16,384 keys
// (an index of a log of 10,000,000 entries) as Open does: its B/op is
// the garbage and the filters an Open allocates, what its peak memory
// holds beyond the filters themselves (MiB).
func BenchmarkLoadRuns(b *testing.B) {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", filepath.Join(b.TempDir(), "runs.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE id_runs (run INTEGER PRIMARY KEY, upto INTEGER NOT NULL, filter BLOB)`); err != nil {
		b.Fatal(err)
	}
	k, blocks := testFilterKey(1), blocksFor(DefaultHashMerge)
	keys := make([]uint64, DefaultHashMerge)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 610 {
		for j := range keys {
			keys[j] = r.Uint64()
		}
		if _, err := db.Exec(`INSERT INTO id_runs (run, upto, filter) VALUES (?, ?, ?)`, i*DefaultHashMerge, (i+1)*DefaultHashMerge, runBlob(keys, blocks)); err != nil {
			b.Fatal(err)
		}
	}
	var f *runFilters
	for b.Loop() {
		if f, err = loadRuns(ctx, db, idRuns, k, blocks); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(f.bytes())/(1<<20), "MiB")
}
