package sqlite

import (
	"context"
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
	plan := q.Plan()
	var out []log.Found
	for cursor := start; len(out) < limit && cursor < end; {
		n := min(max(2*(limit-len(out)), 64), 1000)
		cands, err := b.candidates(ctx, plan, cursor, end, n)
		if err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			break
		}
		found, _, err := log.FilterFound(q, cands, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("%w: failed to search: %w", log.ErrUnavailable, err)
		}
		out = append(out, found...)
		cursor = cands[len(cands)-1].Index + 1
	}
	return out, nil
}

// candidates returns up to n entries in [start, end) in index order that
// the plan's postings name.
func (b *Backend) candidates(ctx context.Context, p log.Plan, start, end uint64, n int) ([]log.Found, error) {
	var (
		query strings.Builder
		args  []any
	)
	switch {
	case len(p.All) > 0:
		// The first term drives, in index order; CROSS JOIN keeps SQLite
		// from reordering the loops (the plan puts the most selective
		// term first).
		query.WriteString("SELECT t0.idx, e.leaf FROM search_terms AS t0")
		for i := 1; i < len(p.All); i++ {
			fmt.Fprintf(&query, " CROSS JOIN search_terms AS t%d", i)
		}
		query.WriteString(" CROSS JOIN entries AS e WHERE t0.term = ? AND t0.idx >= ? AND t0.idx < ?")
		args = append(args, int64(p.All[0]), int64(start), int64(end))
		for i := 1; i < len(p.All); i++ {
			t := "t" + strconv.Itoa(i)
			query.WriteString(" AND " + t + ".term = ? AND " + t + ".idx = t0.idx")
			args = append(args, int64(p.All[i]))
		}
		query.WriteString(" AND e.idx = t0.idx ORDER BY t0.idx LIMIT ?")
	case len(p.Any) > 0:
		return b.anyCandidates(ctx, p.Any, start, end, n)
	default:
		query.WriteString("SELECT idx, leaf FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?")
		args = append(args, int64(start), int64(end))
	}
	args = append(args, n)
	rows, err := b.rdb.QueryContext(ctx, query.String(), args...)
	if err != nil {
		return nil, unavailable("search", err)
	}
	defer rows.Close()
	var out []log.Found
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
// that the postings of any of terms name. Each term's postings are read in
// index order, the terms in the plan's order (chronological for hour
// buckets), each bounded by the n-th candidate found so far: in a log
// whose entries are in time order, each later bucket costs one seek.
func (b *Backend) anyCandidates(ctx context.Context, terms []log.Term, start, end uint64, n int) ([]log.Found, error) {
	var out []log.Found
	bound := end
	for _, t := range terms {
		rows, err := b.rdb.QueryContext(ctx, `SELECT t.idx, e.leaf FROM search_terms AS t CROSS JOIN entries AS e
			WHERE t.term = ? AND t.idx >= ? AND t.idx < ? AND e.idx = t.idx ORDER BY t.idx LIMIT ?`, int64(t), int64(start), int64(bound), n)
		if err != nil {
			return nil, unavailable("search", err)
		}
		var got []log.Found
		for rows.Next() {
			var (
				idx  int64
				leaf []byte
			)
			if err := rows.Scan(&idx, &leaf); err != nil {
				rows.Close()
				return nil, unavailable("search", err)
			}
			got = append(got, log.Found{Index: uint64(idx), Leaf: leaf})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, unavailable("search", err)
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
		for _, t := range s.Terms() {
			terms = append(terms, int64(t), idx)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	for len(terms) > 0 {
		n := min(len(terms)/2, chunk)
		q := "INSERT OR IGNORE INTO search_terms (term, idx) VALUES (?, ?)" + strings.Repeat(", (?, ?)", n-1)
		if _, err := tx.ExecContext(ctx, q, terms[:2*n]...); err != nil {
			return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
		}
		terms = terms[2*n:]
	}
	if _, err := tx.ExecContext(ctx, sqlSetIndexed, int64(to)); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("failed to index entries %d to %d: %w", from, to, err)
	}
	return nil
}
