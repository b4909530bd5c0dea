package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/govlog/govlog/log"
)

var _ log.Searcher = (*Backend)(nil)

// Search implements log.Searcher on the search_terms postings of the full
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

// Postings of field terms (log.Summary.FieldTerms) are keyed by a range
// of 1<<rangeBits indexes first (rng = index >> rangeBits), then term and
// index, so that a range's postings are written together, in key order,
// and a search probes the ranges in index order. Postings of time terms
// (log.Summary.TimeTerms) are all in range timeRange: the entries of a
// range share their time buckets, so these are together already, and a
// time-only search reads a bucket with one seek.
//
// Only full ranges are in search_terms: search_indexed is the tree size
// rounded down to a range, or a range less while the last full range is
// being merged, and the postings of the entries after it are held in
// memory (searchTail). The append that fills a range hands it to the
// following commits, which write its postings a slice each, in key order
// (searchMerge); the last slice moves search_indexed to its end. Rows of
// that range beyond search_indexed are never read: a search reads the
// range from memory until then. Open finishes a range whose merge a
// crash interrupted (reindex).
const (
	rangeBits = 14
	timeRange = -1
	// legacyChunkBase is where the field postings of the last, partial
	// range were kept, in chunks of 256 entries (rng = legacyChunkBase +
	// index >> 8), before they were held in memory. Open deletes them;
	// fsck fails a log that has any.
	legacyChunkBase = 1 << 40
)

// indexedFloor is search_indexed for a log of size entries: the entries
// of its full ranges.
func indexedFloor(size uint64) uint64 { return size >> rangeBits << rangeBits }

// sqlInsertPostings writes the postings of one range: ?1 is the rng, ?2
// the range's first index, ?3 a JSON array of postings packed by
// packPosting, in key order. One parameter, expanded by SQLite, rather
// than three bound values a posting (BenchmarkPostingsInsert). OR IGNORE:
// Open writes a range whose merge a crash interrupted, some of whose rows
// are there (the rows are whole keys: a row present is the posting); like
// OR FAIL, it keeps no statement journal.
var sqlInsertPostings = `INSERT OR IGNORE INTO search_terms (rng, term, idx)
	SELECT ?1, value >> ` + strconv.Itoa(rangeBits) + `, ?2 + (value & ` + strconv.Itoa(1<<rangeBits-1) + `) FROM json_each(?3)`

// writeRanges writes the postings of the entries [from, to), whole ranges
// (from and to are multiples of 1<<rangeBits), and sets search_indexed to
// to. fields[k] and times[k] are the packed postings of range
// from>>rangeBits + k (packPosting), in any order.
func writeRanges(ctx context.Context, tx *sql.Tx, from, to uint64, fields, times [][]uint64) error {
	for k := range int((to - from) >> rangeBits) {
		first := from + uint64(k)<<rangeBits
		slices.Sort(times[k])
		slices.Sort(fields[k])
		if err := writePostings(ctx, tx, timeRange, first, times[k]); err != nil {
			return err
		}
		if err := writePostings(ctx, tx, int64(first>>rangeBits), first, fields[k]); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(to)); err != nil {
		return fmt.Errorf("failed to update the search index size: %w", err)
	}
	return nil
}

// writePostings writes postings of the range that begins at first, packed
// by packPosting and sorted, at rng.
func writePostings(ctx context.Context, tx *sql.Tx, rng int64, first uint64, postings []uint64) error {
	if len(postings) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, sqlInsertPostings, rng, int64(first), string(appendJSONArray(nil, postings))); err != nil {
		return fmt.Errorf("failed to write the search postings of entries %d to %d: %w", first, first+1<<rangeBits-1, err)
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
// the plan's postings name: those of the full ranges in search_terms,
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
	// search_terms, the rest from the tails.
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
// most search_indexed), in one statement that probes them in order.
func allCandidates(ctx context.Context, tx *sql.Tx, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	// The first term drives, in index order; CROSS JOIN keeps SQLite from
	// reordering the loops (the plan puts the most selective term first).
	// ?1 is the first range, ?2 the first term, ?3 and ?4 bound the
	// index, ?5 is the limit, ?6 the last range; the other terms follow.
	var q strings.Builder
	q.WriteString("WITH RECURSIVE r(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM r WHERE x < ?6) SELECT t0.idx, e.leaf FROM r CROSS JOIN search_terms AS t0")
	for i := 1; i < len(terms); i++ {
		fmt.Fprintf(&q, " CROSS JOIN search_terms AS t%d", i)
	}
	q.WriteString(" CROSS JOIN entries AS e WHERE t0.rng = r.x AND t0.term = ?2 AND t0.idx >= ?3 AND t0.idx < ?4")
	for i := 1; i < len(terms); i++ {
		fmt.Fprintf(&q, " AND %[1]s.rng = t0.rng AND %[1]s.term = ?%[2]d AND %[1]s.idx = t0.idx", "t"+strconv.Itoa(i), i+6)
	}
	q.WriteString(" AND e.idx = t0.idx LIMIT ?5")
	args := []any{int64(start >> rangeBits), int64(terms[0]), int64(start), int64(end), n, int64((end - 1) >> rangeBits)}
	for _, t := range terms[1:] {
		args = append(args, int64(t))
	}
	// The ranges are generated in increasing order and each is read in
	// index order, so the rows come in index order (checked below).
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, unavailable("search", err)
	}
	out, err := scanFound(rows, nil)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(out); i++ {
		if out[i].Index <= out[i-1].Index {
			return nil, fmt.Errorf("%w: failed to search: the index answered out of order", log.ErrUnavailable)
		}
	}
	return out, nil
}

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
// ranges (end is at most search_indexed). Each term's postings are read
// in index order, the terms in the plan's order (chronological), each
// bounded by the n-th candidate found so far: in a log whose entries are
// in time order, each later bucket costs one seek.
func anyCandidates(ctx context.Context, tx *sql.Tx, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	stmt, err := tx.PrepareContext(ctx, `SELECT t.idx, e.leaf FROM search_terms AS t CROSS JOIN entries AS e
		WHERE t.rng = ? AND t.term = ? AND t.idx >= ? AND t.idx < ? AND e.idx = t.idx ORDER BY t.idx LIMIT ?`)
	if err != nil {
		return nil, unavailable("search", err)
	}
	defer stmt.Close()
	var out []log.Found
	bound := end
	for _, t := range terms {
		rows, err := stmt.QueryContext(ctx, int64(timeRange), int64(t), int64(start), int64(bound), n)
		if err != nil {
			return nil, unavailable("search", err)
		}
		got, err := scanFound(rows, nil)
		if err != nil {
			return nil, err
		}
		out = log.MergeFound(out, got, n)
		if len(out) == n {
			bound = out[n-1].Index
		}
	}
	return out, nil
}

// reindex brings the search index of a log of size entries to its
// layout, and returns the tail of its last, partial range (loadTail):
//
//   - a log whose index holds postings of its partial range (written before
//     the tail was held in memory: chunks of 256 entries, rng >=
//     legacyChunkBase, and the range's time postings) has them deleted,
//     with search_indexed set back to the range's first entry: they are
//     derived data, and the tail is read from the entries;
//   - the full ranges the index does not cover yet (a log created before
//     the index existed, schema version 1 or 2, or the range whose merge
//     a crash interrupted, part of whose rows are written: see
//     searchMerge) are indexed, a range per transaction, so an
//     interrupted run continues where it stopped.
//
// Appends index their entries themselves.
func (b *Backend) reindex(ctx context.Context, size uint64) (*searchTail, error) {
	var indexed int64
	if err := b.wdb.QueryRowContext(ctx, sqlIndexedSize).Scan(&indexed); err != nil {
		return nil, unavailable("read the search index size", err)
	}
	from := indexedFloor(uint64(indexed))
	var chunks bool
	if err := b.wdb.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM search_terms WHERE rng >= ?)`, int64(legacyChunkBase)).Scan(&chunks); err != nil {
		return nil, unavailable("read the search index", err)
	}
	if chunks || uint64(indexed) != from {
		if err := b.dropPartialRange(ctx, from, min(uint64(indexed), size)); err != nil {
			return nil, err
		}
	}
	if full := indexedFloor(size); from < full {
		b.logger.Info("indexing entries for search", "from", from, "to", full)
		for ; from < full; from += 1 << rangeBits {
			if err := b.reindexRange(ctx, from); err != nil {
				return nil, err
			}
		}
	}
	t, err := loadTail(ctx, b.wdb, from, size)
	if err != nil {
		return nil, fmt.Errorf("failed to read the search postings of entries %d to %d: %w", from, size, err)
	}
	return t, nil
}

// dropPartialRange deletes the search postings of the entries [from, to)
// of a partial range (from is a range's first entry), those of its
// fields by range and those of its time buckets by the buckets of its
// entries, and sets search_indexed to from.
func (b *Backend) dropPartialRange(ctx context.Context, from, to uint64) error {
	tx, err := b.wdb.BeginTx(ctx, nil)
	if err != nil {
		return unavailable("begin a transaction", err)
	}
	defer func() { _ = tx.Rollback() }()
	t, err := loadTail(ctx, tx, from, to)
	if err != nil {
		return fmt.Errorf("failed to read the entries of the search index's last range: %w", err)
	}
	var dropped, n int64
	for term := range t.times.of {
		res, err := tx.ExecContext(ctx, `DELETE FROM search_terms WHERE rng = ? AND term = ? AND idx >= ?`, int64(timeRange), int64(term), int64(from))
		if err != nil {
			return unavailable("delete search postings", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return unavailable("delete search postings", err)
		}
		dropped += n
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM search_terms WHERE rng >= ?`, int64(from>>rangeBits))
	if err != nil {
		return unavailable("delete search postings", err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return unavailable("delete search postings", err)
	}
	dropped += n
	if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(from)); err != nil {
		return unavailable("update the search index size", err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable("commit", err)
	}
	b.logger.Info("dropped the stored search postings of the last, partial range: they are held in memory", "from", from, "to", to, "postings", dropped)
	return nil
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
