package trillian

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/govlog/govlog/log"
)

// indexRange writes the search postings of entries [from, to): the
// entries a checkpoint about to be stored (in tx) is the first to cover.
// The leaves come from this Append's queue; any other (queued by a replica
// that failed before storing its checkpoint) from Trillian.
func (b *Backend) indexRange(ctx context.Context, tx *sql.Tx, from, to uint64, queue []*pending) error {
	if from >= to {
		return nil
	}
	leaves := make(map[uint64][]byte, len(queue))
	for _, pd := range queue {
		if pd.index >= 0 && uint64(pd.index) >= from && uint64(pd.index) < to {
			leaves[uint64(pd.index)] = pd.leaf
		}
	}
	for i := from; i < to; {
		if leaves[i] != nil {
			i++
			continue
		}
		j := i
		for j < to && leaves[j] == nil {
			j++
		}
		got, err := b.leaves(ctx, i, j-i)
		if err != nil {
			return err
		}
		for k, l := range got {
			leaves[i+uint64(k)] = l.GetLeafValue()
		}
		i = j
	}
	ordered := make([][]byte, to-from)
	for i := range ordered {
		ordered[i] = leaves[from+uint64(i)]
	}
	return b.writePostings(ctx, tx, from, ordered)
}

// writePostings writes (INSERT IGNORE) the search postings of leaves, the
// entries from index from on, in multi-row statements.
func (b *Backend) writePostings(ctx context.Context, tx *sql.Tx, from uint64, leaves [][]byte) error {
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		q := "INSERT IGNORE INTO govlog_search (tree_id, term, leaf_index) VALUES " + placeholders(len(args)/3, 3)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return unavailable("write the search index", err)
		}
		args = args[:0]
		return nil
	}
	for k, leaf := range leaves {
		i := from + uint64(k)
		s, err := log.Summarize(leaf)
		if err != nil {
			return fmt.Errorf("%w: failed to index entry %d: %w", log.ErrUnavailable, i, err)
		}
		for _, t := range s.Terms() {
			args = append(args, b.treeID, int64(t), int64(i))
			if len(args) == 3*rowsPerStatement {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// Search implements log.Backend (log.Searcher) on govlog_search.
func (b *Backend) Search(ctx context.Context, q *log.Query, start, end uint64, limit int) ([]log.Found, error) {
	size, err := b.size(ctx)
	if err != nil {
		return nil, err
	}
	if end == 0 || end > size {
		end = size
	}
	return log.Collect(ctx, q, start, end, limit, b.candidates)
}

// candidates returns up to n entries in [start, end), in index order, that
// the plan's postings name, with their leaves from Trillian.
func (b *Backend) candidates(ctx context.Context, p log.Plan, start, end uint64, n int) ([]log.Found, error) {
	if len(p.All) > 0 || len(p.Any) > 0 {
		// Postings may be missing beyond the size the index covers.
		if err := b.searchable(ctx, end); err != nil {
			return nil, err
		}
	}
	var (
		query strings.Builder
		args  []any
	)
	switch {
	case len(p.All) > 0:
		// STRAIGHT_JOIN keeps the plan's order: the first term drives.
		query.WriteString("SELECT STRAIGHT_JOIN t0.leaf_index FROM govlog_search AS t0")
		for i := 1; i < len(p.All); i++ {
			t := "t" + strconv.Itoa(i)
			fmt.Fprintf(&query, " JOIN govlog_search AS %s ON %s.tree_id = t0.tree_id AND %s.term = ? AND %s.leaf_index = t0.leaf_index", t, t, t, t)
			args = append(args, int64(p.All[i]))
		}
		query.WriteString(" WHERE t0.tree_id = ? AND t0.term = ? AND t0.leaf_index >= ? AND t0.leaf_index < ? ORDER BY t0.leaf_index LIMIT ?")
		args = append(args, b.treeID, int64(p.All[0]), int64(start), int64(end), n)
	case len(p.Any) > 0:
		// Each term in the plan's order, bounded by the n-th index found so
		// far (see the SQLite backend's anyCandidates).
		var idx []log.Found
		bound := end
		for _, t := range p.Any {
			rows, err := b.db.QueryContext(ctx, `SELECT leaf_index FROM govlog_search WHERE tree_id = ? AND term = ?
				AND leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index LIMIT ?`, b.treeID, int64(t), int64(start), int64(bound), n)
			if err != nil {
				return nil, unavailable("search", err)
			}
			var got []log.Found
			for rows.Next() {
				var i int64
				if err := rows.Scan(&i); err != nil {
					rows.Close()
					return nil, unavailable("search", err)
				}
				got = append(got, log.Found{Index: uint64(i)})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, unavailable("search", err)
			}
			idx = log.MergeFound(idx, got, n)
			if len(idx) == n {
				bound = idx[n-1].Index
			}
		}
		return b.withLeaves(ctx, idx)
	default:
		count := min(uint64(n), end-start)
		leaves, err := b.leaves(ctx, start, count)
		if err != nil {
			return nil, err
		}
		out := make([]log.Found, len(leaves))
		for i, l := range leaves {
			out[i] = log.Found{Index: start + uint64(i), Leaf: l.GetLeafValue()}
		}
		return out, nil
	}
	rows, err := b.db.QueryContext(ctx, query.String(), args...)
	if err != nil {
		return nil, unavailable("search", err)
	}
	var idx []log.Found
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			rows.Close()
			return nil, unavailable("search", err)
		}
		idx = append(idx, log.Found{Index: uint64(i)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable("search", err)
	}
	return b.withLeaves(ctx, idx)
}

// withLeaves reads the leaves of candidates (in increasing index order)
// from Trillian, a run of consecutive indices per call.
func (b *Backend) withLeaves(ctx context.Context, idx []log.Found) ([]log.Found, error) {
	out := make([]log.Found, 0, len(idx))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j].Index == idx[j-1].Index+1 {
			j++
		}
		leaves, err := b.leaves(ctx, idx[i].Index, uint64(j-i))
		if err != nil {
			return nil, err
		}
		for k, l := range leaves {
			out = append(out, log.Found{Index: idx[i+k].Index, Leaf: l.GetLeafValue()})
		}
		i = j
	}
	return out, nil
}
