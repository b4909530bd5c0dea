package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/govlog/govlog/log"
)

// The read methods run on any goroutine. Each takes one snapshot and bounds
// everything it reads by the snapshot's size: rows beyond it may already be
// committed by a concurrent Append that has not published yet, and are
// ignored.

// Latest implements log.Backend.
func (b *Backend) Latest(ctx context.Context) (log.Checkpoint, error) {
	s := b.snap.Load()
	if !s.has {
		return log.Checkpoint{}, fmt.Errorf("failed to read the latest checkpoint: %w", log.ErrNotFound)
	}
	return s.cp, nil
}

// Covering implements log.Backend.
func (b *Backend) Covering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	s := b.snap.Load()
	if !s.has || index >= s.size() {
		return log.Checkpoint{}, fmt.Errorf("failed to find the checkpoint covering entry %d: %w", index, log.ErrNotFound)
	}
	var (
		size int64
		text []byte
	)
	err := b.r.covering.QueryRowContext(ctx, int64(index), int64(s.size())).Scan(&size, &text)
	if errors.Is(err, sql.ErrNoRows) {
		return log.Checkpoint{}, fmt.Errorf("failed to find the checkpoint covering entry %d: %w", index, log.ErrNotFound)
	}
	if err != nil {
		return log.Checkpoint{}, unavailable(fmt.Sprintf("read the checkpoint covering entry %d", index), err)
	}
	cp, _, err := log.ParseCheckpoint(text, log.CheckpointRules{})
	if err != nil || cp.Size != uint64(size) {
		return log.Checkpoint{}, fmt.Errorf("%w: the checkpoint stored for size %d is corrupt: %w", log.ErrUnavailable, size, err)
	}
	return cp, nil
}

// InclusionProof implements log.Backend.
func (b *Backend) InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error) {
	s := b.snap.Load()
	if index >= size || size > s.size() {
		return nil, fmt.Errorf("%w: no inclusion proof of entry %d in a tree of size %d (the log has %d entries)", log.ErrOutOfRange, index, size, s.size())
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", log.ErrOutOfRange, err)
	}
	return b.proof(ctx, s, nodes)
}

// ConsistencyProof implements log.Backend.
func (b *Backend) ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error) {
	s := b.snap.Load()
	if from == 0 || from > to || to > s.size() {
		return nil, fmt.Errorf("%w: no consistency proof from size %d to %d (the log has %d entries)", log.ErrOutOfRange, from, to, s.size())
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", log.ErrOutOfRange, err)
	}
	return b.proof(ctx, s, nodes)
}

// proof fetches a proof's nodes from tiles and rehashes its ephemeral node.
// The nodes are read in place from the tiles (not copied) and copied once,
// into the answer.
func (b *Backend) proof(ctx context.Context, s *snapshot, nodes proof.Nodes) ([][32]byte, error) {
	// A proof has at most 64 nodes: the slices of the tiles' memory stay
	// on the stack.
	var buf [64][]byte
	hashes, err := b.nodes(ctx, s, buf[:0], nodes.IDs)
	if err != nil {
		return nil, err
	}
	// Rehash only reads the hashes it is given; the ephemeral node it
	// computes is a new slice.
	hashes, err = nodes.Rehash(hashes, hashChildren)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to rehash the proof: %w", log.ErrUnavailable, err)
	}
	out := make([][32]byte, len(hashes))
	for i, h := range hashes {
		out[i] = [32]byte(h)
	}
	return out, nil
}

// nodes appends to dst the hashes of complete nodes of the snapshot's
// tree, read in place from their tiles (tileNodes: not to be modified).
func (b *Backend) nodes(ctx context.Context, s *snapshot, dst [][]byte, ids []compact.NodeID) ([][]byte, error) {
	hashes, err := tileNodes(dst, ids, func(k tileKey) (*tile, error) { return b.tile(ctx, s, k) })
	if err != nil {
		if errors.Is(err, log.ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	return hashes, nil
}

// tile returns tile k of the snapshot's tree: a full tile from the cache or
// the database, the partial tile from the snapshot.
func (b *Backend) tile(ctx context.Context, s *snapshot, k tileKey) (*tile, error) {
	if t := s.edgeTile(k); t != nil {
		return t, nil
	}
	if k.index >= levelNodes(s.size(), k.level)/tileWidth {
		return nil, fmt.Errorf("%w: tile %v is not complete in the tree of size %d", log.ErrOutOfRange, k, s.size())
	}
	if t, ok := b.cache.get(k); ok {
		return t, nil
	}
	var h []byte
	err := b.r.tile.QueryRowContext(ctx, int64(k.level), int64(k.index)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: tile %v is missing", log.ErrUnavailable, k)
	}
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read tile %v", k), err)
	}
	if len(h) != fullTileBytes {
		return nil, fmt.Errorf("%w: full tile %v holds %d bytes", log.ErrUnavailable, k, len(h))
	}
	t := newTile(h)
	b.cache.put(k, t)
	return t, nil
}

// Entries implements log.Backend.
func (b *Backend) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	s := b.snap.Load()
	if start >= s.size() {
		return nil, fmt.Errorf("%w: entry %d is beyond the log's %d entries", log.ErrOutOfRange, start, s.size())
	}
	if count <= 0 {
		return [][]byte{}, nil
	}
	end := s.size()
	if uint64(count) < end-start {
		end = start + uint64(count)
	}
	rows, err := b.r.entries.QueryContext(ctx, int64(start), int64(end))
	if err != nil {
		return nil, unavailable("read entries", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, unavailable("read entries", err)
		}
		if want := start + uint64(len(out)); uint64(idx) != want {
			return nil, fmt.Errorf("%w: entry %d is missing", log.ErrUnavailable, want)
		}
		out = append(out, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("read entries", err)
	}
	if uint64(len(out)) != end-start {
		return nil, fmt.Errorf("%w: entry %d is missing", log.ErrUnavailable, start+uint64(len(out)))
	}
	return out, nil
}

// Lookup implements log.Backend. The ids rows of the newest entries are
// held in memory (see pendingIDs), the others in the ids table.
func (b *Backend) Lookup(ctx context.Context, kind log.Kind, id string) (uint64, []byte, error) {
	s := b.snap.Load()
	if r, ok := s.ids.lookup(log.EntryID{Kind: kind, ID: id}, s.size()); ok {
		leaves, err := b.Entries(ctx, r.idx, 1)
		if err != nil {
			return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, err)
		}
		return r.idx, leaves[0], nil
	}
	// Then each run whose filter may hold the id (see runFilters).
	var buf [4]uint64
	for _, run := range s.idRuns.mayHold(buf[:0], s.idRuns.key.id(log.EntryID{Kind: kind, ID: id})) {
		var (
			idx  int64
			leaf []byte
		)
		err := b.r.lookup.QueryRowContext(ctx, int64(run), int64(kind), id).Scan(&idx, &leaf)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, nil, unavailable(fmt.Sprintf("look up %v %q", kind, id), err)
		}
		if uint64(idx) < s.size() {
			return uint64(idx), leaf, nil
		}
	}
	return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, log.ErrNotFound)
}

// LookupHash implements log.Backend. The index holds 8 bytes of each leaf
// hash, in runs: the runs whose filter may hold them are read (see
// runFilters), and each candidate is confirmed against the full hash in
// its level-0 tile, the first entry first.
func (b *Backend) LookupHash(ctx context.Context, leafHash [32]byte) (uint64, error) {
	s := b.snap.Load()
	prefix := hashPrefix(leafHash)
	var (
		buf        [4]uint64
		candidates []uint64
	)
	for _, run := range s.hashRuns.mayHold(buf[:0], s.hashRuns.key.hash(prefix)) {
		rows, err := b.r.lookupHash.QueryContext(ctx, int64(run), prefix, int64(s.size()))
		if err != nil {
			return 0, unavailable("look up a leaf hash", err)
		}
		for rows.Next() {
			var idx int64
			if err := rows.Scan(&idx); err != nil {
				rows.Close()
				return 0, unavailable("look up a leaf hash", err)
			}
			candidates = append(candidates, uint64(idx))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, unavailable("look up a leaf hash", err)
		}
	}
	// Tiles are read after rows is closed: with one read connection, a
	// read while rows holds it would wait forever.
	for _, idx := range candidates {
		h, err := b.nodes(ctx, s, nil, []compact.NodeID{compact.NewNodeID(0, idx)})
		if err != nil {
			return 0, err
		}
		if [32]byte(h[0]) == leafHash {
			return idx, nil
		}
	}
	return s.lookupPending(leafHash)
}

// Authorization implements log.Backend.
func (b *Backend) Authorization(ctx context.Context, decisionID string) (*log.Authorization, error) {
	row := b.rdb.QueryRowContext(ctx, `SELECT `+authorizationColumns+` FROM authorizations WHERE decision_id = ?`, decisionID)
	_, a, err := scanAuthorization(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("failed to read the authorization of %q: %w", decisionID, log.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read the authorization of %q", decisionID), err)
	}
	return a, nil
}
