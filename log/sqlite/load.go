package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/govlog/govlog/log"
)

// reloadLocked replaces the in-memory state (compact range, snapshot) with
// what is on disk, verified as Open does. With probe it also commits a
// one-row write, to check that storage takes writes again, and clears the
// failure; without, the failure stays until a write commits (a read-only
// file system still reads). The caller holds writeMu.
func (b *Backend) reloadLocked(ctx context.Context, probe bool) error {
	snap, rng, err := b.load(ctx, probe)
	if err == nil {
		// The search tail, read again: the failed batch may have
		// committed, a range merge with it.
		snap.tail, err = b.reindex(ctx, snap.size())
	}
	if err != nil {
		b.failure.Store(&failureErr{err})
		return err
	}
	old := b.snap.Load()
	b.snap.Store(snap)
	b.rng = rng
	if probe {
		b.failure.Store(nil)
	}
	b.logger.Info("reloaded log storage", "size", snap.size(), "previous_size", old.size())
	return nil
}

// load reads and verifies the stored state in one write transaction (BEGIN
// IMMEDIATE, so no other process can write meanwhile): the latest
// checkpoint, the partial tiles of its tree and the compact range rebuilt
// from tiles. Storage errors wrap log.ErrUnavailable, mismatches log.ErrFork.
func (b *Backend) load(ctx context.Context, probe bool) (*snapshot, *compact.Range, error) {
	if err := b.file.check(); err != nil {
		return nil, nil, err
	}
	tx, err := b.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, unavailable("begin a transaction", err)
	}
	defer func() { _ = tx.Rollback() }()

	snap, rng, err := b.verify(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	if probe {
		if _, err := tx.ExecContext(ctx, sqlProbe, time.Now().UnixNano()); err != nil {
			return nil, nil, unavailable("write the probe row", err)
		}
		if err := tx.Commit(); err != nil {
			return nil, nil, unavailable("commit the probe row", err)
		}
	}
	return snap, rng, nil
}

// verify loads the latest checkpoint and checks the storage against it.
func (b *Backend) verify(ctx context.Context, tx *sql.Tx) (*snapshot, *compact.Range, error) {
	var (
		rowSize int64
		text    []byte
	)
	err := tx.QueryRowContext(ctx, sqlLatestCheckpoint).Scan(&rowSize, &text)
	if errors.Is(err, sql.ErrNoRows) {
		// A new log: it must hold nothing at all.
		var entries, tiles int64
		if err := tx.QueryRowContext(ctx, sqlCountEntries).Scan(&entries); err != nil {
			return nil, nil, unavailable("count entries", err)
		}
		if err := tx.QueryRowContext(ctx, sqlCountTiles).Scan(&tiles); err != nil {
			return nil, nil, unavailable("count tiles", err)
		}
		if entries != 0 || tiles != 0 {
			return nil, nil, fmt.Errorf("%w: storage holds %d entries and %d tiles but no checkpoint", log.ErrFork, entries, tiles)
		}
		s := &snapshot{pending: newPendingHashes(0), ids: newPendingIDs(0, int(b.hashMerge))}
		if err := loadAllRuns(ctx, tx, s); err != nil {
			return nil, nil, err
		}
		if s.idRuns.next() != 0 || s.hashRuns.next() != 0 {
			return nil, nil, fmt.Errorf("%w: storage holds index runs but no checkpoint", log.ErrFork)
		}
		return s, b.factory.NewEmptyRange(0), nil
	}
	if err != nil {
		return nil, nil, unavailable("read the latest checkpoint", err)
	}
	cp, _, err := log.ParseCheckpoint(text, log.CheckpointRules{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the checkpoint stored for size %d: %w", log.ErrFork, rowSize, err)
	}
	if cp.Size != uint64(rowSize) {
		return nil, nil, fmt.Errorf("%w: the checkpoint stored for size %d is for size %d", log.ErrFork, rowSize, cp.Size)
	}
	size := cp.Size

	// The partial tile of each level: exactly as wide as the tree says.
	read := func(k tileKey) ([]byte, error) {
		var h []byte
		err := tx.QueryRowContext(ctx, sqlTile, int64(k.level), int64(k.index)).Scan(&h)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: tile %v of the tree of size %d is missing", log.ErrFork, k, size)
		}
		if err != nil {
			return nil, unavailable(fmt.Sprintf("read tile %v", k), err)
		}
		return h, nil
	}
	edge := make([]edgeTile, 0, 8)
	for level, pos := range rightEdge(size) {
		e := edgeTile{index: pos.index}
		if pos.width > 0 {
			k := tileKey{level: uint(level), index: pos.index}
			h, err := read(k)
			if err != nil {
				return nil, nil, err
			}
			if len(h) != pos.width*hashSize {
				return nil, nil, fmt.Errorf("%w: tile %v holds %d bytes, the tree of size %d needs %d hashes", log.ErrFork, k, len(h), size, pos.width)
			}
			e.t = newTile(h)
		}
		edge = append(edge, e)
	}
	snap := &snapshot{has: true, cp: cp, edge: edge}
	get := func(k tileKey) (*tile, error) {
		if t := snap.edgeTile(k); t != nil {
			return t, nil
		}
		h, err := read(k)
		if err != nil {
			return nil, err
		}
		if len(h) != fullTileBytes {
			return nil, fmt.Errorf("%w: full tile %v holds %d bytes", log.ErrFork, k, len(h))
		}
		return newTile(h), nil
	}

	// The compact range of [0, size), from tiles; its root must be the
	// checkpoint's.
	hashes, err := nodeHashes(compact.RangeNodes(0, size, nil), get)
	if err != nil {
		if errors.Is(err, log.ErrUnavailable) || errors.Is(err, log.ErrFork) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %w", log.ErrFork, err)
	}
	rng, err := b.factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: failed to rebuild the compact range of size %d: %w", log.ErrFork, size, err)
	}
	if root := rootHash(rng); root != cp.Hash {
		return nil, nil, fmt.Errorf("%w: the tiles' root hash at size %d is %x, the checkpoint's is %x", log.ErrFork, size, root, cp.Hash)
	}

	// Entries from index 0 to size-1 and none beyond. Both ends are
	// B-tree lookups: counting the rows would read the whole table (8 s
	// warm, 26 s cold at 10,000,000 entries). A hole in the middle is
	// left to govlog fsck, which rehashes every entry; the last tile's
	// entries are checked one by one below.
	var first, last sql.NullInt64
	if err := tx.QueryRowContext(ctx, sqlEntryBounds).Scan(&first, &last); err != nil {
		return nil, nil, unavailable("read the entry index bounds", err)
	}
	if size == 0 && (first.Valid || last.Valid) ||
		size > 0 && (!first.Valid || first.Int64 != 0 || !last.Valid || uint64(last.Int64) != size-1) {
		return nil, nil, fmt.Errorf("%w: storage holds entries %s to %s, the checkpoint has size %d", log.ErrFork, bound(first), bound(last), size)
	}

	// The leaves of the last level-0 tile must hash to it.
	if size > 0 {
		k := tileKey{level: 0, index: (size - 1) / tileWidth}
		t, err := get(k)
		if err != nil {
			return nil, nil, err
		}
		h := t.hashes()
		start := k.index * tileWidth
		rows, err := tx.QueryContext(ctx, sqlEntries, int64(start), int64(size))
		if err != nil {
			return nil, nil, unavailable("read entries", err)
		}
		defer rows.Close()
		want := start
		for rows.Next() {
			var (
				idx  int64
				leaf []byte
			)
			if err := rows.Scan(&idx, &leaf); err != nil {
				return nil, nil, unavailable("read entries", err)
			}
			if uint64(idx) != want {
				return nil, nil, fmt.Errorf("%w: entry %d is missing", log.ErrFork, want)
			}
			pos := (want - start) * hashSize
			if lh := log.LeafHash(leaf); string(lh[:]) != string(h[pos:pos+hashSize]) {
				return nil, nil, fmt.Errorf("%w: entry %d does not match its leaf hash in tile %v", log.ErrFork, want, k)
			}
			want++
		}
		if err := rows.Err(); err != nil {
			return nil, nil, unavailable("read entries", err)
		}
		if want != size {
			return nil, nil, fmt.Errorf("%w: entry %d is missing", log.ErrFork, want)
		}
	}
	if err := loadAllRuns(ctx, tx, snap); err != nil {
		return nil, nil, err
	}
	if snap.pending, err = loadPending(snap.hashRuns.next(), size, get); err != nil {
		return nil, nil, err
	}
	if snap.ids, err = loadPendingIDs(ctx, tx, snap.idRuns.next(), size, b.hashMerge); err != nil {
		return nil, nil, err
	}
	return snap, rng, nil
}

// edgeTile returns the partial tile k of the snapshot's tree, or nil when
// k is not one.
func (s *snapshot) edgeTile(k tileKey) *tile {
	if k.level < uint(len(s.edge)) && s.edge[k.level].index == k.index {
		return s.edge[k.level].t
	}
	return nil
}

// rootHash is the root of a compact range that begins at 0.
func rootHash(rng *compact.Range) [32]byte {
	if rng.End() == 0 {
		return log.EmptyRoot
	}
	root, err := rng.GetRootHash(nil)
	if err != nil || len(root) != hashSize {
		// Unreachable: the range begins at 0 and is not empty.
		panic(fmt.Sprintf("compact range root: %v", err))
	}
	return [32]byte(root)
}

// bound formats an entry index bound for an error.
func bound(i sql.NullInt64) string {
	if !i.Valid {
		return "none"
	}
	return fmt.Sprint(i.Int64)
}

// loadAllRuns reads the runs of both indexes and their filters into s.
func loadAllRuns(ctx context.Context, tx *sql.Tx, s *snapshot) error {
	k, blocks, err := readFilterKey(ctx, tx)
	if err != nil {
		return err
	}
	if s.idRuns, err = loadRuns(ctx, tx, idRuns, k, blocks); err != nil {
		return err
	}
	s.hashRuns, err = loadRuns(ctx, tx, hashRuns, k, blocks)
	return err
}
