package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/govlog/govlog/log"
)

// searchTail holds the search postings of the newest entries, [from, …),
// those of the last, partial range of 1<<rangeBits entries: from is a
// multiple of 1<<rangeBits, and search_postings holds the postings of the
// entries before it, or of those before the range being merged
// (searchMerge).
//
// An append adds its entries' terms here after its commit (under mu).
// The append whose batch fills the range publishes a new tail of the
// entries after it, and this one, no longer added to, becomes the
// range's searchMerge: the following commits write the range's postings
// to search_postings a slice each, and the one that writes the last slice
// moves search_indexed past the range. A tail is never emptied, so a
// reader that took a snapshot before a merge still finds, in its tails,
// every entry of its snapshot that search_indexed of a later read
// transaction does not cover. Which entries the tail holds follows from
// the file: Open finishes a range whose merge a crash interrupted and
// reads the tail from entries [search_indexed, size) (reindex), so a
// crash loses nothing.
type searchTail struct {
	from uint64
	mu   sync.RWMutex
	n    uint64 // entries from, …, from+n-1 are held
	// fields and times are the entries of each field term and time term.
	fields, times postingLists
	// lastTimes are the time terms of the last entry added (entries of
	// one second share the slice, see log.Summary.TimeTerms), and
	// lastTimeLists their lists in times.
	lastTimes     []log.Term
	lastTimeLists []int32
}

// postingLists are the entries of each term, as offsets from the tail's
// first entry, in increasing order: lists[of[term]]. An entry's offset is
// appended after the earlier ones: a reader may keep a list it took under
// the tail's mu and read it after, the writer only appends beyond it.
type postingLists struct {
	of    map[log.Term]int32
	lists [][]uint32
}

// list returns the index in lists of term's list, adding an empty one.
func (p *postingLists) list(term log.Term) int32 {
	i, ok := p.of[term]
	if !ok {
		i = int32(len(p.lists))
		p.of[term] = i
		p.lists = append(p.lists, nil)
	}
	return i
}

// get returns term's list, nil when it has none.
func (p *postingLists) get(term log.Term) []uint32 {
	if i, ok := p.of[term]; ok {
		return p.lists[i]
	}
	return nil
}

func newSearchTail(from uint64) *searchTail {
	return &searchTail{from: from, fields: postingLists{of: make(map[log.Term]int32)}, times: postingLists{of: make(map[log.Term]int32)}}
}

// add records the terms of entries next, next+1, … (fields[i] and
// times[i] of entry next+i), which follow the last one added.
func (t *searchTail) add(next uint64, fields, times [][]log.Term) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if next != t.from+t.n {
		// Unreachable: the writer adds every committed batch in order.
		panic(fmt.Sprintf("search tail: adding entry %d after %d", next, t.from+t.n))
	}
	for i := range fields {
		off := uint32(t.n) + uint32(i)
		for _, term := range fields[i] {
			l := t.fields.list(term)
			t.fields.lists[l] = append(t.fields.lists[l], off)
		}
		// The entries of a second share their time terms' slice.
		if ts := times[i]; len(ts) != len(t.lastTimes) || len(ts) == 0 || &ts[0] != &t.lastTimes[0] {
			t.lastTimes, t.lastTimeLists = ts, t.lastTimeLists[:0]
			for _, term := range ts {
				t.lastTimeLists = append(t.lastTimeLists, t.times.list(term))
			}
		}
		for _, l := range t.lastTimeLists {
			t.times.lists[l] = append(t.times.lists[l], off)
		}
	}
	t.n += uint64(len(fields))
}

// lists returns the lists of terms in p, nil where a term has none.
func (t *searchTail) lists(p *postingLists, terms []log.Term) [][]uint32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([][]uint32, len(terms))
	for i, term := range terms {
		out[i] = p.get(term)
	}
	return out
}

// bounds returns [lo, hi) as offsets of the tail, clipped to it (hi <=
// lo when they do not meet).
func (t *searchTail) bounds(start, end uint64) (lo, hi uint32) {
	start, end = max(start, t.from), max(end, t.from)
	return uint32(min(start-t.from, 1<<32-1)), uint32(min(end-t.from, 1<<32-1))
}

// all returns up to n entries in [start, end), in index order, that every
// field term names.
func (t *searchTail) all(terms []log.Term, start, end uint64, n int) []uint64 {
	lo, hi := t.bounds(start, end)
	if lo >= hi || len(terms) == 0 {
		return nil
	}
	return intersect(nil, t.lists(&t.fields, terms), t.from, lo, hi, n)
}

// intersect appends to out up to n-len(out) entries base+off, in index
// order, for the offsets off in [lo, hi) that every list holds (lists of
// increasing offsets; the slice lists is reused).
func intersect(out []uint64, lists [][]uint32, base uint64, lo, hi uint32, n int) []uint64 {
	for i, l := range lists {
		a, _ := slices.BinarySearch(l, lo)
		b, _ := slices.BinarySearch(l, hi)
		lists[i] = l[a:b]
	}
	// The shortest list drives; each of its entries is looked up in the
	// others, which only move forward.
	slices.SortFunc(lists, func(a, b []uint32) int { return len(a) - len(b) })
	for _, off := range lists[0] {
		if len(out) >= n {
			break
		}
		ok := true
		for i := 1; i < len(lists) && ok; i++ {
			j, found := slices.BinarySearch(lists[i], off)
			lists[i] = lists[i][j:]
			ok = found
		}
		if ok {
			out = append(out, base+uint64(off))
		}
	}
	return out
}

// anyOf returns up to n entries in [start, end), in index order, that any
// of the time terms names.
func (t *searchTail) anyOf(terms []log.Term, start, end uint64, n int) []uint64 {
	lo, hi := t.bounds(start, end)
	if lo >= hi {
		return nil
	}
	var offs []uint32
	for _, l := range t.lists(&t.times, terms) {
		a, _ := slices.BinarySearch(l, lo)
		b, _ := slices.BinarySearch(l, hi)
		offs = append(offs, l[a:min(b, a+n)]...)
	}
	slices.Sort(offs)
	offs = slices.Compact(offs)
	out := make([]uint64, 0, min(len(offs), n))
	for _, off := range offs[:min(len(offs), n)] {
		out = append(out, t.from+uint64(off))
	}
	return out
}

// postings returns the packed field and time postings (see packPosting)
// of the tail's entries, grouped by range of 1<<rangeBits entries from
// from: fields[k] and times[k] are those of the entries of range
// from>>rangeBits + k, unsorted.
func (t *searchTail) postings(ranges int) (fields, times [][]uint64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	fields, times = make([][]uint64, ranges), make([][]uint64, ranges)
	for _, g := range []struct {
		p   *postingLists
		out [][]uint64
	}{{&t.fields, fields}, {&t.times, times}} {
		// Room for the postings of the whole range: the tail's and those
		// of the entries that fill it, about as many an entry.
		n := 0
		for _, l := range g.p.lists {
			n += len(l)
		}
		if ranges == 1 && t.n > 0 {
			g.out[0] = make([]uint64, 0, n*(1<<rangeBits)/int(t.n)+64)
		}
		for term, l := range g.p.of {
			for _, off := range g.p.lists[l] {
				k := off >> rangeBits
				g.out[k] = append(g.out[k], packPosting(term, uint64(off)))
			}
		}
	}
	return fields, times
}

// mergeSlice is the fewest postings of a range being merged that a commit
// writes (searchMerge), in whole rows: a range of the load generator's
// decisions has ~131,000 postings in ~270 rows, so about 9 rows.
const mergeSlice = 4096

// searchMerge is a full range whose postings are being written to
// search_postings, a slice a commit, in key order: the range's entries
// are in tail (no longer added to), search_indexed is the range's first
// entry until the commit that writes the last slice moves it to the end.
// A search reads the range from tail meanwhile; rows beyond
// search_indexed are never read.
//
// A merge is held by the published snapshot; only the writer (under
// writeMu) touches rows and done.
type searchMerge struct {
	tail *searchTail
	from uint64 // the range's first entry
	// rows are the range's rows in the order they are written, key order
	// (rangeRows), and postings how many postings they hold. Computed by
	// the first commit that writes a slice.
	rows     []postingRow
	postings int
	loaded   bool
	// done is how many rows the committed slices wrote.
	done int
}

// sliceEnd is the end in rows of the slice a commit of n entries writes
// from done: whole rows of at least mergeSlice postings, and enough that
// the merge ends within a quarter of a range of entries whatever the
// batch sizes (the next range fills three quarters of a range later, and
// the leaf-hash merge comes half a range after the fill, see
// pendingHashes).
func (m *searchMerge) sliceEnd(n int) int {
	m.load()
	k := max(mergeSlice, (m.postings*n+1<<rangeBits/4-1)/(1<<rangeBits/4))
	end := m.done
	for sum := 0; end < len(m.rows) && sum < k; end++ {
		sum += m.rows[end].postings
	}
	return end
}

// load computes rows, once.
func (m *searchMerge) load() {
	if !m.loaded {
		m.rows = m.tail.rangeRows(m.from)
		for _, r := range m.rows {
			m.postings += r.postings
		}
		m.loaded = true
	}
}

// write writes rows [done, to) and, when to is the end of rows, sets
// search_indexed to the end of the range.
func (m *searchMerge) write(ctx context.Context, tx *sql.Tx, to int) error {
	if err := writeRows(ctx, tx, m.from, m.rows[m.done:to]); err != nil {
		return err
	}
	if to == len(m.rows) {
		if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(m.from+1<<rangeBits)); err != nil {
			return fmt.Errorf("failed to update the search index size: %w", err)
		}
	}
	return nil
}

// rangeRows returns the rows of the tail's entries of the range that
// begins at first in the order a merge writes them (searchMerge.rows).
func (t *searchTail) rangeRows(first uint64) []postingRow {
	k := int((first - t.from) >> rangeBits)
	fields, times := t.postings(k + 1)
	slices.Sort(times[k])
	slices.Sort(fields[k])
	return rangeRows(first, fields[k], times[k])
}

// packPosting packs a term and an entry's offset in its range (the low
// rangeBits bits of off) into one integer, in the order of a range's
// lists: term, then index.
func packPosting(term log.Term, off uint64) uint64 {
	return uint64(term)<<rangeBits | off&(1<<rangeBits-1)
}

// loadTail reads the search postings of the entries [from, size) from
// their leaves (log.Summarize: what an append indexes, see
// log.EntryTerms), at most a range's worth, on every available core.
func loadTail(ctx context.Context, q querier, from, size uint64) (*searchTail, error) {
	t := newSearchTail(from)
	if size <= from {
		return t, nil
	}
	leaves, err := readLeaves(ctx, q, from, size)
	if err != nil {
		return nil, err
	}
	fields, times, err := summarizeAll(leaves, from)
	if err != nil {
		return nil, err
	}
	t.add(from, fields, times)
	return t, nil
}

// querier is a database, a connection or a transaction.
type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// readLeaves returns the leaves of entries [from, to).
func readLeaves(ctx context.Context, q querier, from, to uint64) ([][]byte, error) {
	rows, err := q.QueryContext(ctx, sqlEntries, int64(from), int64(to))
	if err != nil {
		return nil, unavailable("read entries", err)
	}
	defer rows.Close()
	var leaves [][]byte
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, unavailable("read entries", err)
		}
		if uint64(idx) != from+uint64(len(leaves)) {
			return nil, fmt.Errorf("%w: entry %d is missing", log.ErrFork, from+uint64(len(leaves)))
		}
		leaves = append(leaves, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read entries", err)
	}
	if uint64(len(leaves)) != to-from {
		return nil, fmt.Errorf("%w: entry %d is missing", log.ErrFork, from+uint64(len(leaves)))
	}
	return leaves, nil
}

// summarizeAll returns the field and time terms of the leaves of entries
// first, first+1, …, summarized on every available core.
func summarizeAll(leaves [][]byte, first uint64) (fields, times [][]log.Term, err error) {
	fields, times = make([][]log.Term, len(leaves)), make([][]log.Term, len(leaves))
	i, err := summarizeEach(leaves, func(i int, s *log.Summary) { fields[i], times[i] = s.FieldTerms(), s.TimeTerms() })
	if err != nil {
		return nil, nil, fmt.Errorf("%w: failed to index entry %d: %w", log.ErrFork, first+uint64(i), err)
	}
	return fields, times, nil
}

// summarizeEach calls f with each leaf's log.Summarize, on every
// available core (f is called once for each i, concurrently). On an error
// it returns the first leaf that failed and its error.
func summarizeEach(leaves [][]byte, f func(i int, s *log.Summary)) (int, error) {
	errs := make([]error, len(leaves))
	workers := min(runtime.GOMAXPROCS(0), max(len(leaves)/64, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(leaves); i += workers {
				s, err := log.Summarize(leaves[i])
				if err != nil {
					errs[i] = err
					continue
				}
				f(i, &s)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return 0, nil
}
