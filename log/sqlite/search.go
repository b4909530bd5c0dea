package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/govlog/govlog/log"
)

var _ log.Searcher = (*Backend)(nil)

// Search implements log.Searcher on the search_terms postings, written in
// the transaction of each append: it reads only entries below the
// published checkpoint's size.
func (b *Backend) Search(ctx context.Context, q *log.Query, start, end uint64, limit int) ([]log.Found, error) {
	size := b.snap.Load().size()
	if end == 0 || end > size {
		end = size
	}
	return log.Collect(ctx, q, start, end, limit, b.candidates)
}

// Postings of field terms (log.Summary.FieldTerms) are keyed by a range
// of indexes first, then term and index, so that a batch's postings land
// on a few pages rather than on a page per term all over the table. An
// append writes them in chunks of 1<<chunkBits entries (rng = chunkBase +
// index >> chunkBits): a batch's postings go to the end of the table,
// where SQLite fills pages in order. When the
// log has filled a range of 1<<rangeBits entries, the append that fills it
// rewrites the range's chunks as one range (rng = index >> rangeBits), in
// term order, once: a search probes the ranges, then the chunks of the
// last, partial range, in index order. Postings of time terms
// (log.Summary.TimeTerms) are all in range timeRange: the entries of a
// batch share their time buckets, so these are together already, and a
// time-only search reads a bucket with one seek.
const (
	rangeBits = 14
	chunkBits = 8
	chunkBase = 1 << 40
	timeRange = -1
)

// postingRange is the rng of the field postings of entry idx in a search
// index that covers size entries.
func postingRange(idx, size uint64) int64 {
	if idx>>rangeBits < size>>rangeBits {
		return int64(idx >> rangeBits)
	}
	return chunkRange(idx)
}

// chunkRange is the rng of the field postings of entry idx before its
// range is full.
func chunkRange(idx uint64) int64 { return chunkBase + int64(idx>>chunkBits) }

// appendPostings appends the search_terms rows (rng, term, idx) of entry
// idx to rows, before its range is full.
func appendPostings(rows []any, fields, times []log.Term, idx int64) []any {
	for _, t := range fields {
		rows = append(rows, chunkRange(uint64(idx)), int64(t), idx)
	}
	for _, t := range times {
		rows = append(rows, int64(timeRange), int64(t), idx)
	}
	return rows
}

// mergeRanges rewrites the chunks of the ranges a search index grown from
// from to to entries has filled as one range each, in the transaction
// that grows it.
func mergeRanges(ctx context.Context, tx *sql.Tx, from, to uint64) error {
	for r := from >> rangeBits; r < to>>rangeBits; r++ {
		first, last := r<<rangeBits, (r+1)<<rangeBits-1
		lo, hi := chunkRange(first), chunkRange(last)
		if _, err := tx.ExecContext(ctx, `INSERT OR FAIL INTO search_terms (rng, term, idx)
			SELECT ?, term, idx FROM search_terms WHERE rng BETWEEN ? AND ? ORDER BY term, idx`, int64(r), lo, hi); err != nil {
			return fmt.Errorf("failed to merge the search postings of entries %d to %d: %w", first, last, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM search_terms WHERE rng BETWEEN ? AND ?`, lo, hi); err != nil {
			return fmt.Errorf("failed to merge the search postings of entries %d to %d: %w", first, last, err)
		}
	}
	return nil
}

// candidates returns up to n entries in [start, end) in index order that
// the plan's postings name.
func (b *Backend) candidates(ctx context.Context, p log.Plan, start, end uint64, n int) ([]log.Found, error) {
	switch {
	case len(p.All) > 0:
		return b.allCandidates(ctx, p.All, start, end, n)
	case len(p.Any) > 0:
		return b.anyCandidates(ctx, p.Any, start, end, n)
	}
	rows, err := b.rdb.QueryContext(ctx, "SELECT idx, leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?", int64(start), int64(end), n)
	if err != nil {
		return nil, unavailable("search", err)
	}
	return scanFound(rows, nil)
}

// allCandidates returns up to n entries in [start, end), in index order,
// that the postings of every term name: the full ranges in one statement
// that probes them in order, then the chunks of the last one, one by one,
// until it has n. It reads in one transaction, so that the ranges it
// probes are those of one state of the index.
func (b *Backend) allCandidates(ctx context.Context, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	// The first term drives, in index order; CROSS JOIN keeps SQLite from
	// reordering the loops (the plan puts the most selective term first).
	// ?1 is the range, ?2 the first term, ?3 and ?4 bound the index, ?5 is
	// the limit, ?6 the last range; the other terms follow.
	join := func(rng string) string {
		var q strings.Builder
		q.WriteString(" search_terms AS t0")
		for i := 1; i < len(terms); i++ {
			fmt.Fprintf(&q, " CROSS JOIN search_terms AS t%d", i)
		}
		q.WriteString(" CROSS JOIN entries AS e WHERE t0.rng = " + rng + " AND t0.term = ?2 AND t0.idx >= ?3 AND t0.idx < ?4")
		for i := 1; i < len(terms); i++ {
			fmt.Fprintf(&q, " AND %[1]s.rng = t0.rng AND %[1]s.term = ?%[2]d AND %[1]s.idx = t0.idx", "t"+strconv.Itoa(i), i+6)
		}
		q.WriteString(" AND e.idx = t0.idx")
		return q.String()
	}
	args := []any{nil, int64(terms[0]), nil, nil, nil, nil}
	for _, t := range terms[1:] {
		args = append(args, int64(t))
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
	var out []log.Found
	// The full ranges: one seek each, without a round trip each. The
	// ranges are generated in increasing order and each is read in index
	// order, so the rows come in index order (checked below).
	if full := uint64(indexed) >> rangeBits << rangeBits; start < min(end, full) {
		to := min(end, full)
		args[0], args[2], args[3], args[4], args[5] = int64(start>>rangeBits), int64(start), int64(to), n, int64((to-1)>>rangeBits)
		rows, err := tx.QueryContext(ctx, "WITH RECURSIVE r(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM r WHERE x < ?6) SELECT t0.idx, e.leaf FROM r CROSS JOIN"+
			join("r.x")+" LIMIT ?5", args...)
		if err != nil {
			return nil, unavailable("search", err)
		}
		if out, err = scanFound(rows, out); err != nil {
			return nil, err
		}
		for i := 1; i < len(out); i++ {
			if out[i].Index <= out[i-1].Index {
				return nil, fmt.Errorf("%w: failed to search: the index answered out of order", log.ErrUnavailable)
			}
		}
		start = to
	}
	if len(out) >= n || start >= end {
		return out, nil
	}
	stmt, err := tx.PrepareContext(ctx, "SELECT t0.idx, e.leaf FROM"+join("?1")+" AND ?6 IS NOT NULL ORDER BY t0.idx LIMIT ?5")
	if err != nil {
		return nil, unavailable("search", err)
	}
	defer stmt.Close()
	for len(out) < n && start < end {
		rng := postingRange(start, uint64(indexed))
		bits := uint64(rangeBits)
		if rng >= chunkBase {
			bits = chunkBits
		}
		to := min((start>>bits+1)<<bits, end)
		args[0], args[2], args[3], args[4], args[5] = rng, int64(start), int64(to), n-len(out), 0
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, unavailable("search", err)
		}
		if out, err = scanFound(rows, out); err != nil {
			return nil, err
		}
		start = to
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
// that the postings of any of terms (time buckets) name. Each term's
// postings are read in index order, the terms in the plan's order
// (chronological), each bounded by the n-th candidate found so far: in a
// log whose entries are in time order, each later bucket costs one seek.
func (b *Backend) anyCandidates(ctx context.Context, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	var out []log.Found
	bound := end
	for _, t := range terms {
		rows, err := b.rdb.QueryContext(ctx, `SELECT t.idx, e.leaf FROM search_terms AS t CROSS JOIN entries AS e
			WHERE t.rng = ? AND t.term = ? AND t.idx >= ? AND t.idx < ? AND e.idx = t.idx ORDER BY t.idx LIMIT ?`,
			int64(timeRange), int64(t), int64(start), int64(bound), n)
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

// reindexChunk is how many entries one transaction of reindex indexes.
const reindexChunk = 4096

// reindex adds the search postings of the entries the search index does
// not cover yet: those of a log created before the index existed (schema
// version 1), a chunk per transaction, so an interrupted run continues
// where it stopped. Appends index their entries themselves.
func (b *Backend) reindex(ctx context.Context, size uint64) error {
	var indexed int64
	if err := b.wdb.QueryRowContext(ctx, sqlIndexedSize).Scan(&indexed); err != nil {
		return fmt.Errorf("failed to read the search index size: %w", err)
	}
	if uint64(indexed) >= size {
		return nil
	}
	b.logger.Info("indexing entries for search", "from", indexed, "to", size)
	for from := uint64(indexed); from < size; {
		to := min(from+reindexChunk, size)
		if err := b.reindexRange(ctx, from, to); err != nil {
			return err
		}
		from = to
	}
	return nil
}

func (b *Backend) reindexRange(ctx context.Context, from, to uint64) error {
	tx, err := b.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, sqlEntries, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	var terms []any
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			rows.Close()
			return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
		}
		s, err := log.Summarize(leaf)
		if err != nil {
			rows.Close()
			return fmt.Errorf("failed to index entry %d: %w", idx, err)
		}
		terms = appendPostings(terms, s.FieldTerms(), s.TimeTerms(), idx)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	for len(terms) > 0 {
		n := min(len(terms)/3, chunk)
		q := "INSERT OR IGNORE INTO search_terms (rng, term, idx) VALUES (?, ?, ?)" + strings.Repeat(", (?, ?, ?)", n-1)
		if _, err := tx.ExecContext(ctx, q, terms[:3*n]...); err != nil {
			return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
		}
		terms = terms[3*n:]
	}
	if err := mergeRanges(ctx, tx, from, to); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(to)); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	return nil
}
