package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/govlog/govlog/log"
)

// The C2SP tlog-tiles read API, served from the stored tiles: a hash tile
// is a tiles row (the full ones through the tile cache, the partial ones
// from the published snapshot), and a partial tile of width W is the
// prefix of W hashes of the tile. An entry bundle is assembled from the
// entries rows. Both are bounded by the snapshot's size, like every read.

var _ log.TileReader = (*Backend)(nil)

// ReadTile implements log.TileReader.
func (b *Backend) ReadTile(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	s := b.snap.Load()
	if err := checkWidth(s, level, index, width); err != nil {
		return nil, fmt.Errorf("failed to read tile %d/%d of width %d: %w", level, index, width, err)
	}
	k := tileKey{level: uint(level), index: index}
	if s.edgeTile(k) == nil {
		if _, cached := b.cache.get(k); !cached {
			// A full tile that no proof needed lately: its stored hashes,
			// without computing (and caching) the interior nodes proofs
			// use. An auditor reads every tile once.
			return b.readFullTile(ctx, k, width)
		}
	}
	t, err := b.tile(ctx, s, k)
	if err != nil {
		return nil, fmt.Errorf("failed to read tile %d/%d: %w", level, index, err)
	}
	if t.width() < width {
		// Unreachable: the snapshot's tiles are as wide as its tree.
		return nil, fmt.Errorf("%w: tile %d/%d holds %d hashes, the tree of size %d needs %d", log.ErrUnavailable, level, index, t.width(), s.size(), width)
	}
	return append([]byte(nil), t.hashes()[:width*hashSize]...), nil
}

// readFullTile reads the first width hashes of a full tile from the
// database.
func (b *Backend) readFullTile(ctx context.Context, k tileKey, width int) ([]byte, error) {
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
	return h[:width*hashSize], nil
}

// ReadEntryBundle implements log.TileReader.
func (b *Backend) ReadEntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	s := b.snap.Load()
	if err := checkWidth(s, 0, index, width); err != nil {
		return nil, fmt.Errorf("failed to read entry bundle %d of width %d: %w", index, width, err)
	}
	start := index * tileWidth
	end := start + uint64(width)
	rows, err := b.r.entries.QueryContext(ctx, int64(start), int64(end))
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read entry bundle %d", index), err)
	}
	defer rows.Close()
	bundle := make([]byte, 0, width*512)
	next := start
	for rows.Next() {
		var (
			idx int64
			// RawBytes: the leaf is copied once, into the bundle.
			leaf sql.RawBytes
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, unavailable(fmt.Sprintf("read entry bundle %d", index), err)
		}
		if uint64(idx) != next {
			return nil, fmt.Errorf("%w: entry %d is missing", log.ErrUnavailable, next)
		}
		if bundle, err = log.AppendEntryBundle(bundle, leaf); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", log.ErrUnavailable, idx, err)
		}
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Sprintf("read entry bundle %d", index), err)
	}
	if next != end {
		return nil, fmt.Errorf("%w: entry %d is missing", log.ErrUnavailable, next)
	}
	return bundle, nil
}

// checkWidth returns log.ErrNotFound unless the snapshot's tree has at
// least width hashes in tile (level, index), 1 <= width <= tileWidth.
func checkWidth(s *snapshot, level, index uint64, width int) error {
	if width < 1 || width > tileWidth {
		return fmt.Errorf("%w: a tile is 1 to %d wide", log.ErrNotFound, tileWidth)
	}
	if !s.has {
		return fmt.Errorf("%w: the log has no checkpoint", log.ErrNotFound)
	}
	if have := log.TileHashes(s.size(), level, index); have < width {
		return fmt.Errorf("%w: the tree of size %d has %d hashes in this tile", log.ErrNotFound, s.size(), have)
	}
	return nil
}
