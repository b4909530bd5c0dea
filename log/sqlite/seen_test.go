package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

func TestIDFilter(t *testing.T) {
	ids := func(prefix string, kind log.Kind, n int) []log.EntryID {
		var out []log.EntryID
		for i := range n {
			out = append(out, log.EntryID{Kind: kind, ID: fmt.Sprintf("%s-%d", prefix, i)})
		}
		return out
	}
	for _, c := range []struct {
		name  string
		size  uint64 // the log size the filter is made for
		added []log.EntryID
		ready bool
		// absent are never added: "maybe" only for a few (false positives)
		absent []log.EntryID
		segs   int // segments after the adds
	}{
		{name: "being built: every id maybe", added: ids("a", log.KindDecision, 10), absent: ids("b", log.KindDecision, 1000), segs: 1},
		{name: "empty", ready: true, absent: ids("b", log.KindDecision, 10000), segs: 1},
		{name: "some", ready: true, added: ids("a", log.KindDecision, 1000), absent: ids("b", log.KindDecision, 10000), segs: 1},
		{name: "kinds apart", ready: true, added: ids("a", log.KindDecision, 1000), absent: append(ids("a", log.KindExecution, 1000), ids("a", log.KindRevocation, 1000)...), segs: 1},
		{name: "every kind", ready: true, added: append(append(ids("a", log.KindKey, 100), ids("a", log.KindRevocation, 100)...), ids("a", log.KindExecution, 100)...), absent: ids("a", log.KindDecision, 1000), segs: 1},
		{name: "full: a second segment", ready: true, added: ids("a", log.KindDecision, filterMinCap+1), absent: ids("b", log.KindDecision, 10000), segs: 2},
		{name: "grown three times", ready: true, added: ids("a", log.KindDecision, 4*filterMinCap+1), absent: ids("b", log.KindDecision, 10000), segs: 4},
		{name: "sized to the log", size: 3 * filterMinCap, ready: true, added: ids("a", log.KindDecision, 3*filterMinCap), absent: ids("b", log.KindDecision, 10000), segs: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newIDFilter(c.size)
			if len(c.added) > 0 {
				f.add(c.added[:len(c.added)/2]...)
				var rows []idRow
				for _, k := range c.added[len(c.added)/2:] {
					rows = append(rows, idRow{EntryID: k})
				}
				f.addRows(rows)
			}
			f.ready = c.ready
			for _, k := range c.added {
				if !f.mayHold(k) {
					t.Fatalf("mayHold(%v) = false for an id added", k)
				}
			}
			fp := 0
			for _, k := range c.absent {
				if f.mayHold(k) {
					fp++
				}
			}
			switch {
			case !c.ready && fp != len(c.absent):
				t.Fatalf("a filter being built ruled out %d ids", len(c.absent)-fp)
			case c.ready && fp > len(c.absent)/100:
				t.Fatalf("%d false positives in %d", fp, len(c.absent))
			}
			if len(f.segs) != c.segs {
				t.Fatalf("%d segments, want %d", len(f.segs), c.segs)
			}
			if per := float64(f.bytes()*8) / float64(max(len(c.added), 1)); len(c.added) > filterMinCap && per > 2*filterBitsPerID+1 {
				t.Fatalf("%.1f bits an id", per)
			}
		})
	}
}

// TestIDFilterSeeded checks that two filters place the same ids apart:
// the hash is keyed by a random seed.
func TestIDFilterSeeded(t *testing.T) {
	a, b := newIDFilter(0), newIDFilter(0)
	same := 0
	for i := range 100 {
		k := log.EntryID{Kind: log.KindDecision, ID: fmt.Sprint(i)}
		if a.hash(k) == b.hash(k) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("%d ids hash alike in two filters", same)
	}
}

// readyFilter waits for the build of b's id filter and returns it.
func readyFilter(t testing.TB, b *Backend) *idFilter {
	t.Helper()
	for range 1000 {
		b.writeMu.Lock()
		f := b.filter
		b.writeMu.Unlock()
		f.mu.RLock()
		ready := f.ready
		f.mu.RUnlock()
		if ready {
			return f
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the id filter was not built in 100 s")
	return nil
}

// filterHoldsTable checks that every row of the ids table is in f.
func filterHoldsTable(t *testing.T, b *Backend, f *idFilter) int {
	t.Helper()
	rows, err := b.rdb.QueryContext(context.Background(), `SELECT kind, id FROM ids`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k log.EntryID
		if err := rows.Scan(&k.Kind, &k.ID); err != nil {
			t.Fatal(err)
		}
		if !f.mayHold(k) {
			t.Fatalf("the id filter rules out %v, which the ids table holds", k)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIDFilterAppends checks the filter against the ids table through
// merges and a reopening, and that resubmissions are found and new ids
// appended whatever the filter answers: built, being built, or "maybe"
// for every id (the ids table stays the truth).
func TestIDFilterAppends(t *testing.T) {
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
	if got := filterHoldsTable(t, b, readyFilter(t, b)); got < 400 {
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
	}
	resubmit("built")

	// Being built: every id is looked up.
	b.writeMu.Lock()
	b.stopFilter()
	b.filter = newIDFilter(0)
	b.writeMu.Unlock()
	resubmit("being built")
	mustAppend(t, b, sign, batch(100)...) // merges: the rows are added while it is built

	// "Maybe" for every id, as a false positive: the lookup finds nothing.
	b.writeMu.Lock()
	f := newIDFilter(0)
	for i := range f.segs[0].blocks {
		f.segs[0].blocks[i] = [8]uint32{^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)}
	}
	f.ready = true
	b.filter = f
	b.writeMu.Unlock()
	resubmit("every id maybe")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, path, v, nil); err != nil {
		t.Fatalf("Check: %v", err)
	}
	b = openAt(t, path, Options{HashMerge: 64})
	if got := filterHoldsTable(t, b, readyFilter(t, b)); got < n-64 {
		t.Fatalf("%d ids rows after %d entries with merges of 64", got, n)
	}
	resubmit("reopened")
}

// TestIDFilterOtherWriter checks that ids another process stored are
// found: the reload after the refused append builds the filter again.
func TestIDFilterOtherWriter(t *testing.T) {
	path := tempDB(t)
	sign, _ := newSign(t)
	a := openAt(t, path, Options{HashMerge: 64})
	b := openAt(t, path, Options{HashMerge: 64})
	readyFilter(t, b)
	var batch []*log.Entry
	for i := range 100 {
		batch = append(batch, decision(t, fmt.Sprintf("o-%d", i), decisionOpts{}))
	}
	mustAppend(t, a, sign, batch...) // merges 32 + ids rows
	if _, _, err := b.Append(context.Background(), batch[:1], sign); err == nil {
		t.Fatal("an append on a stale state succeeded")
	}
	for _, when := range []string{"reloaded", "filter built again"} {
		res, _ := mustAppend(t, b, sign, batch[:1]...)
		if !res[0].Existing || res[0].Index != 0 {
			t.Fatalf("%s: the resubmission of o-0 after another process stored it: %+v", when, res[0])
		}
		if got := filterHoldsTable(t, b, readyFilter(t, b)); got != 100 {
			t.Fatalf("%d ids rows, want 100", got)
		}
	}
}
