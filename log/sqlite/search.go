package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
)

var _ log.Searcher = (*Backend)(nil)

// Search implements log.Searcher on the search_postings of the full
// ranges and the tail of the published snapshot: it reads only entries
// below the published checkpoint's size.
func (b *Backend) Search(ctx context.Context, q *log.Query, start, end uint64, limit int) ([]log.Found, error) {
	if b.hooks.noSearchIndex {
		return nil, fmt.Errorf("%w: failed to search: this build writes no search index", log.ErrUnavailable)
	}
	s := b.snap.Load()
	if end == 0 || end > s.size() {
		end = s.size()
	}
	return log.Collect(ctx, q, start, end, limit, func(ctx context.Context, p log.Plan, start, end uint64, n int) ([]log.Found, error) {
		return b.candidates(ctx, s, p, start, end, n)
	})
}

// Postings are stored by range of 1<<rangeBits indexes (rng = index >>
// rangeBits), a few rows a range (search_postings, see postings.go): the
// field terms' in 256 buckets keyed by range first, so that a range's
// rows are written together, in key order, and a search probes the
// ranges in index order; the time terms' a row a term and range, keyed
// by term first: the entries of a range share their time buckets, and a
// time-only search reads a bucket's rows with one seek.
//
// Only full ranges are in search_postings: search_indexed is the tree size
// rounded down to a range, or a range less while the last full range is
// being merged, and the postings of the entries after it are held in
// memory (searchTail). The append that fills a range hands it to the
// following commits, which write its rows a slice each, in key order
// (searchMerge); the last slice moves search_indexed to its end. Rows of
// that range beyond search_indexed are never read: a search reads the
// range from memory until then. Open finishes a range whose merge a
// crash interrupted (reindex).
const rangeBits = 14

// indexedFloor is search_indexed for a log of size entries: the entries
// of its full ranges.
func indexedFloor(size uint64) uint64 { return size >> rangeBits << rangeBits }

// writeRanges writes the postings of the entries [from, to), whole ranges
// (from and to are multiples of 1<<rangeBits), and sets search_indexed to
// to. fields[k] and times[k] are the packed postings of range
// from>>rangeBits + k (packPosting), in any order.
func writeRanges(ctx context.Context, tx *sql.Tx, from, to uint64, fields, times [][]uint64) error {
	for k := range int((to - from) >> rangeBits) {
		first := from + uint64(k)<<rangeBits
		slices.Sort(times[k])
		slices.Sort(fields[k])
		if err := writeRows(ctx, tx, first, rangeRows(first, fields[k], times[k])); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(to)); err != nil {
		return fmt.Errorf("failed to update the search index size: %w", err)
	}
	return nil
}

// insertRowsChunk is the most rows one INSERT of writeRows writes.
const insertRowsChunk = 64

// writeRows writes rows of search_postings of the range that begins at
// first. OR IGNORE: Open writes a range whose merge a crash interrupted,
// some of whose rows are there (a row's list follows from the entries,
// so a row present is the row); like OR FAIL, it keeps no statement
// journal.
func writeRows(ctx context.Context, tx *sql.Tx, first uint64, rows []postingRow) error {
	args := make([]any, 0, 2*min(len(rows), insertRowsChunk))
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), insertRowsChunk)]
		rows = rows[len(chunk):]
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.key, r.list)
		}
		q := "INSERT OR IGNORE INTO search_postings (key, list) VALUES (?, ?)" + strings.Repeat(", (?, ?)", len(chunk)-1)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("failed to write the search postings of entries %d to %d: %w", first, first+1<<rangeBits-1, err)
		}
	}
	return nil
}

// appendJSONArray appends the JSON array of vs to dst: one statement
// parameter that SQLite's json_each expands into rows.
func appendJSONArray(dst []byte, vs []uint64) []byte {
	// At most 20 digits and a comma a value.
	dst = append(slices.Grow(dst, 21*len(vs)+2), '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, v, 10)
	}
	return append(dst, ']')
}

// candidates returns up to n entries in [start, end) in index order that
// the plan's postings name: those of the full ranges in search_postings,
// those of the range being merged and of the last range in the
// snapshot's tails.
func (b *Backend) candidates(ctx context.Context, s *snapshot, p log.Plan, start, end uint64, n int) ([]log.Found, error) {
	if len(p.All) == 0 && len(p.Any) == 0 {
		rows, err := b.rdb.QueryContext(ctx, "SELECT idx, leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?", int64(start), int64(end), n)
		if err != nil {
			return nil, unavailable("search", err)
		}
		return scanFound(rows, nil)
	}
	// One read transaction, begun after the snapshot (and its tails) was
	// taken: search_indexed is then at least the first entry of the range
	// being merged, or of the tail, and the tails hold every entry of the
	// snapshot from there. A range merged since is read from
	// search_postings, the rest from the tails.
	tails := []*searchTail{s.tail}
	lowest := s.tail.from
	if m := s.merge; m != nil {
		tails, lowest = []*searchTail{m.tail, s.tail}, m.from
	}
	tx, err := b.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, unavailable("search", err)
	}
	defer func() { _ = tx.Rollback() }()
	var indexed int64
	if err := tx.QueryRowContext(ctx, sqlIndexedSize).Scan(&indexed); err != nil {
		return nil, unavailable("search", err)
	}
	if uint64(indexed) < lowest {
		return nil, fmt.Errorf("%w: failed to search: the search index covers %d entries, the entries held in memory begin at %d", log.ErrUnavailable, indexed, lowest)
	}
	var out []log.Found
	if durable := min(end, uint64(indexed)); start < durable {
		if len(p.All) > 0 {
			out, err = allCandidates(ctx, tx, p.All, start, durable, n)
		} else {
			out, err = anyCandidates(ctx, tx, p.Any, start, durable, n)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(out) >= n || end <= uint64(indexed) {
		return out, nil
	}
	// The tails in index order: the range being merged ends where the
	// last range begins.
	from := max(start, uint64(indexed))
	var idxs []uint64
	for i, t := range tails {
		to := end
		if i+1 < len(tails) {
			to = min(end, tails[i+1].from)
		}
		if from >= to || len(out)+len(idxs) >= n {
			continue
		}
		if len(p.All) > 0 {
			idxs = append(idxs, t.all(p.All, from, to, n-len(out)-len(idxs))...)
		} else {
			idxs = append(idxs, t.anyOf(p.Any, from, to, n-len(out)-len(idxs))...)
		}
		from = to
	}
	if len(idxs) == 0 {
		return out, nil
	}
	return readFound(ctx, tx, idxs, out)
}

// readFound appends the leaves of the entries idxs (in increasing order)
// to out.
func readFound(ctx context.Context, tx *sql.Tx, idxs []uint64, out []log.Found) ([]log.Found, error) {
	buf := appendJSONArray(nil, idxs)
	rows, err := tx.QueryContext(ctx, `SELECT e.idx, e.leaf FROM json_each(?) AS j CROSS JOIN entries AS e WHERE e.idx = j.value ORDER BY j.key`, string(buf))
	if err != nil {
		return nil, unavailable("search", err)
	}
	n := len(out)
	if out, err = scanFound(rows, out); err != nil {
		return nil, err
	}
	if len(out)-n != len(idxs) {
		return nil, fmt.Errorf("%w: failed to search: %d of the %d entries the search index names are missing", log.ErrUnavailable, len(idxs)-(len(out)-n), len(idxs))
	}
	return out, nil
}

// allCandidates returns up to n entries in [start, end), in index order,
// that the postings of every term name, from the full ranges (end is at
// most search_indexed): each term's rows of the ranges read in range
// order by one statement (a cursor), the first term's (the plan puts the
// most selective first) driving, the others' cursors moved to the range
// of each of its rows that has the term.
func allCandidates(ctx context.Context, tx *sql.Tx, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	first, last := start>>rangeBits, (end-1)>>rangeBits
	curs := make([]*rangeCursor, len(terms))
	defer func() {
		for _, c := range curs {
			if c != nil {
				c.close()
			}
		}
	}()
	var (
		idxs  []uint64
		lists = make([][]uint32, len(terms))
		// drive are the terms' offset lists, bitmaps their lists as
		// bitmaps (appendList), only tested.
		drive   [][]uint32
		bitmaps [][]byte
		cands   []uint64
	)
	for i := range curs {
		c, err := openRangeCursor(ctx, tx, terms[i], first, last)
		if err != nil {
			return nil, err
		}
		curs[i] = c
		if i == 0 {
			// The others are opened when the first has a row.
			break
		}
	}
	for len(idxs) < n {
		// The first term's next row, of any range from first on.
		if _, err := curs[0].seek(first); err != nil {
			return nil, err
		}
		if curs[0].done {
			break
		}
		rng := curs[0].rng
		first = rng + 1
		drive, bitmaps = drive[:0], bitmaps[:0]
		all := true
		for i := 0; i < len(terms) && all; i++ {
			var err error
			if curs[i] == nil {
				if curs[i], err = openRangeCursor(ctx, tx, terms[i], rng, last); err != nil {
					return nil, err
				}
			}
			if i > 0 {
				if all, err = curs[i].seek(rng); err != nil || !all {
					if err != nil {
						return nil, err
					}
					break
				}
			}
			single, list, found, err := curs[i].group()
			switch {
			case err != nil:
				return nil, err
			case !found:
				all = false
			case len(list) == bitmapBytes:
				bitmaps = append(bitmaps, list)
			case list == nil:
				lists[i] = append(lists[i][:0], single)
				drive = append(drive, lists[i])
			default:
				if lists[i], err = decodeList(lists[i][:0], list); err != nil {
					return nil, curs[i].corrupt(err)
				}
				drive = append(drive, lists[i])
			}
		}
		if !all {
			continue
		}
		if len(drive) == 0 {
			lists[0], _ = decodeList(lists[0][:0], bitmaps[0])
			drive, bitmaps = append(drive, lists[0]), bitmaps[1:]
		}
		base := rng << rangeBits
		lo, hi := uint32(max(start, base)-base), uint32(min(end, base+1<<rangeBits)-base)
		cands = intersect(cands[:0], drive, base, lo, hi, 1<<rangeBits)
		for _, idx := range cands {
			off := idx - base
			ok := true
			for _, bm := range bitmaps {
				ok = ok && bm[off>>3]&(1<<(off&7)) != 0
			}
			if ok && len(idxs) < n {
				idxs = append(idxs, idx)
			}
		}
	}
	if len(idxs) == 0 {
		return nil, nil
	}
	return readFound(ctx, tx, idxs, nil)
}

// rangeCursor reads the rows of a field term's bucket in the ranges
// [from, to], in range order, with one statement.
type rangeCursor struct {
	term log.Term
	rows *sql.Rows
	// rng and list are the row the cursor is at (list valid until it
	// moves); done is set at the end.
	rng  uint64
	list sql.RawBytes
	at   bool
	done bool
}

func openRangeCursor(ctx context.Context, tx *sql.Tx, term log.Term, from, to uint64) (*rangeCursor, error) {
	b := termBucket(term)
	// The keys of the ranges are generated in increasing order, and each
	// is one lookup: the rows come in range order.
	rows, err := tx.QueryContext(ctx, `WITH RECURSIVE r(x) AS (SELECT ?1 UNION ALL SELECT x + `+strconv.Itoa(1<<bucketBits)+` FROM r WHERE x < ?2)
		SELECT p.key, p.list FROM r CROSS JOIN search_postings AS p WHERE p.key = r.x`, fieldKey(from, b), fieldKey(to, b))
	if err != nil {
		return nil, unavailable("search", err)
	}
	return &rangeCursor{term: term, rows: rows}, nil
}

// seek moves the cursor to its first row of a range at or after rng (or
// stays, when it is at one), and reports whether that row is rng's.
func (c *rangeCursor) seek(rng uint64) (bool, error) {
	for !c.done && (!c.at || c.rng < rng) {
		if !c.rows.Next() {
			c.done, c.at = true, false
			if err := c.rows.Err(); err != nil {
				return false, unavailable("search", err)
			}
			return false, nil
		}
		var key int64
		if err := c.rows.Scan(&key, &c.list); err != nil {
			return false, unavailable("search", err)
		}
		c.rng, c.at = uint64(key)>>bucketBits, true
	}
	return c.at && c.rng == rng, nil
}

// group returns the cursor's term's group in its row (termList); list is
// valid until the cursor moves.
func (c *rangeCursor) group() (single uint32, list []byte, found bool, err error) {
	single, list, found, err = termList(c.list, c.term)
	if err != nil {
		return 0, nil, false, c.corrupt(err)
	}
	return single, list, found, nil
}

// corrupt is the error of the cursor's row failing to decode.
func (c *rangeCursor) corrupt(err error) error {
	first := c.rng << rangeBits
	return fmt.Errorf("%w: failed to search: the search index's row of entries %d to %d, bucket %d: %w", log.ErrUnavailable, first, first+rangeMask, termBucket(c.term), err)
}

func (c *rangeCursor) close() { _ = c.rows.Close() }

// scanFound appends the (idx, leaf) rows to out and closes rows.
func scanFound(rows *sql.Rows, out []log.Found) ([]log.Found, error) {
	defer rows.Close()
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, unavailable("search", err)
		}
		out = append(out, log.Found{Index: uint64(idx), Leaf: leaf})
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("search", err)
	}
	return out, nil
}

// anyCandidates returns up to n entries in [start, end), in index order,
// that the postings of any of terms (time buckets) name, from the full
// ranges (end is at most search_indexed). Each term's rows are read in
// range order, with one seek, the terms in the plan's order
// (chronological), each bounded by the n-th candidate found so far: in a
// log whose entries are in time order, each later bucket costs one seek.
func anyCandidates(ctx context.Context, tx *sql.Tx, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	stmt, err := tx.PrepareContext(ctx, `SELECT key, list FROM search_postings WHERE key >= ? AND key <= ? ORDER BY key`)
	if err != nil {
		return nil, unavailable("search", err)
	}
	defer stmt.Close()
	var (
		out, got []uint64
		offs     []uint32
	)
	bound := end
	for _, t := range terms {
		if bound <= start {
			break
		}
		rows, err := stmt.QueryContext(ctx, timeKey(t, start>>rangeBits), timeKey(t, (bound-1)>>rangeBits))
		if err != nil {
			return nil, unavailable("search", err)
		}
		got = got[:0]
		for rows.Next() && len(got) < n {
			var (
				key  int64
				list sql.RawBytes
			)
			if err := rows.Scan(&key, &list); err != nil {
				rows.Close()
				return nil, unavailable("search", err)
			}
			first := uint64(key-timeKey(t, 0)) << rangeBits
			if offs, err = decodeList(offs[:0], list); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%w: failed to search: the search index's row of entries %d to %d, time term %d: %w", log.ErrUnavailable, first, first+1<<rangeBits-1, t, err)
			}
			for _, off := range offs {
				if idx := first + uint64(off); idx >= start && idx < bound && len(got) < n {
					got = append(got, idx)
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, unavailable("search", err)
		}
		out = mergeIndexes(out, got, n)
		if len(out) == n {
			bound = out[n-1]
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return readFound(ctx, tx, out, nil)
}

// mergeIndexes returns the first n of the union of a and b (each
// increasing), in increasing order.
func mergeIndexes(a, b []uint64, n int) []uint64 {
	out := make([]uint64, 0, min(len(a)+len(b), n))
	for len(out) < n && (len(a) > 0 || len(b) > 0) {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0] < b[0]:
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// reindex brings the search index of a log of size entries to its
// layout, and returns the tail of its last, partial range (loadTail): the
// full ranges the index does not cover yet (a log created or migrated
// before version 5, whose index Open writes again in this layout, or the
// range whose merge a crash interrupted, part of whose rows are written:
// see searchMerge) are indexed, a range per transaction, so an
// interrupted run continues where it stopped. Appends index their
// entries themselves.
func (b *Backend) reindex(ctx context.Context, size uint64) (*searchTail, error) {
	var indexed int64
	if err := b.wdb.QueryRowContext(ctx, sqlIndexedSize).Scan(&indexed); err != nil {
		return nil, unavailable("read the search index size", err)
	}
	// search_indexed is a whole number of ranges (reindexRange and the
	// merges move it a range at a time); any rows of the range after it
	// are rewritten with the same bytes.
	from := indexedFloor(uint64(indexed))
	if full := indexedFloor(size); from < full {
		b.logger.Info("indexing entries for search", "from", from, "to", full)
		t0 := time.Now()
		for ; from < full; from += 1 << rangeBits {
			if err := b.reindexRange(ctx, from); err != nil {
				return nil, err
			}
		}
		b.logger.Info("indexed entries for search", "to", full, "elapsed", time.Since(t0).Round(time.Millisecond))
	}
	t, err := loadTail(ctx, b.wdb, from, size)
	if err != nil {
		return nil, fmt.Errorf("failed to read the search postings of entries %d to %d: %w", from, size, err)
	}
	return t, nil
}

// reindexRange writes the search postings of the range of entries that
// begins at from, in one transaction.
func (b *Backend) reindexRange(ctx context.Context, from uint64) error {
	to := from + 1<<rangeBits
	tx, err := b.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	defer func() { _ = tx.Rollback() }()
	t, err := loadTail(ctx, tx, from, to)
	if err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	fields, times := t.postings(1)
	if err := writeRanges(ctx, tx, from, to, fields, times); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	return nil
}
