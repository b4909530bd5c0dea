package log

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// DerivedTiles returns a TileReader for a Backend that stores no tiles (the
// Trillian backend): tiles and entry bundles are derived from the
// Backend's entries and inclusion proofs, and full tiles, which never
// change, are kept in an LRU cache of at most cacheTiles tiles (8 KiB
// each; 0 means 1024).
//
// An entry bundle is one Entries call. A level-0 tile is the leaf hashes of
// one Entries call. A hash of a higher tile, the root of the complete
// subtree of 256^L entries that starts at entry i, is the leaf hash of
// entry i folded with the first 8L hashes of its inclusion proof (the
// siblings inside that subtree): one entry and one inclusion proof per
// hash, each proof verified against the latest checkpoint first, so a
// tile never holds a hash the checkpoint does not commit to.
func DerivedTiles(b Backend, cacheTiles int) TileReader {
	if cacheTiles <= 0 {
		cacheTiles = 1024
	}
	return &derivedTiles{b: b, max: cacheTiles, order: list.New(), tiles: make(map[TileID]*list.Element)}
}

// derivedTiles is the TileReader of DerivedTiles. Safe for concurrent use.
type derivedTiles struct {
	b   Backend
	max int
	// mu guards the cache: order holds *cachedTile, most recent first.
	mu    sync.Mutex
	order *list.List
	tiles map[TileID]*list.Element
}

type cachedTile struct {
	id   TileID
	data []byte
}

// derivedConcurrency bounds the entry and proof reads of one tile.
const derivedConcurrency = 16

func (d *derivedTiles) latest(ctx context.Context, level, index uint64, width int) (Checkpoint, error) {
	if width < 1 || width > TileWidth {
		return Checkpoint{}, fmt.Errorf("%w: a tile is 1 to %d wide", ErrNotFound, TileWidth)
	}
	cp, err := d.b.Latest(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	if have := TileHashes(cp.Size, level, index); have < width {
		return Checkpoint{}, fmt.Errorf("%w: the tree of size %d has %d hashes in this tile", ErrNotFound, cp.Size, have)
	}
	return cp, nil
}

// ReadEntryBundle implements TileReader.
func (d *derivedTiles) ReadEntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	if _, err := d.latest(ctx, 0, index, width); err != nil {
		return nil, fmt.Errorf("failed to read entry bundle %d of width %d: %w", index, width, err)
	}
	leaves, err := d.b.Entries(ctx, index*TileWidth, width)
	if err != nil {
		return nil, fmt.Errorf("failed to read entry bundle %d: %w", index, err)
	}
	if len(leaves) != width {
		return nil, fmt.Errorf("%w: entry bundle %d: the backend returned %d entries, want %d", ErrUnavailable, index, len(leaves), width)
	}
	var bundle []byte
	for i, leaf := range leaves {
		if bundle, err = AppendEntryBundle(bundle, leaf); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrUnavailable, index*TileWidth+uint64(i), err)
		}
	}
	return bundle, nil
}

// ReadTile implements TileReader.
func (d *derivedTiles) ReadTile(ctx context.Context, level, index uint64, width int) ([]byte, error) {
	id := TileID{Level: level, Index: index, Width: TileWidth}
	cp, err := d.latest(ctx, level, index, width)
	if err != nil {
		return nil, fmt.Errorf("failed to read tile %d/%d of width %d: %w", level, index, width, err)
	}
	if data, ok := d.get(id); ok {
		return append([]byte(nil), data[:width*32]...), nil
	}
	full := TileHashes(cp.Size, level, index) == TileWidth
	n := width
	if full {
		n = TileWidth // derive the whole tile once, for the cache
	}
	data := make([]byte, n*32)
	if level == 0 {
		leaves, err := d.b.Entries(ctx, index*TileWidth, n)
		if err != nil {
			return nil, fmt.Errorf("failed to read tile 0/%d: %w", index, err)
		}
		if len(leaves) != n {
			return nil, fmt.Errorf("%w: tile 0/%d: the backend returned %d entries, want %d", ErrUnavailable, index, len(leaves), n)
		}
		for i, leaf := range leaves {
			h := LeafHash(leaf)
			copy(data[i*32:], h[:])
		}
	} else if err := d.deriveHashes(ctx, cp, level, index, data); err != nil {
		return nil, fmt.Errorf("failed to read tile %d/%d: %w", level, index, err)
	}
	if full {
		d.put(id, data)
	}
	return append([]byte(nil), data[:width*32]...), nil
}

// deriveHashes fills data with the hashes of tile (level, index), level ≥ 1.
func (d *derivedTiles) deriveHashes(ctx context.Context, cp Checkpoint, level, index uint64, data []byte) error {
	height := int(TileHeight * level)
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, derivedConcurrency)
		errMu sync.Mutex
		first error
	)
	for j := range len(data) / 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			h, err := d.subtreeHash(ctx, cp, (index*TileWidth+uint64(j))<<height, height)
			if err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
				return
			}
			copy(data[j*32:], h)
		}()
	}
	wg.Wait()
	return first
}

// subtreeHash returns the root of the complete subtree of 2^height entries
// that starts at entry i, in the tree of cp.
func (d *derivedTiles) subtreeHash(ctx context.Context, cp Checkpoint, i uint64, height int) ([]byte, error) {
	leaves, err := d.b.Entries(ctx, i, 1)
	if err != nil {
		return nil, err
	}
	if len(leaves) != 1 {
		return nil, fmt.Errorf("%w: entry %d is missing", ErrUnavailable, i)
	}
	p, err := d.b.InclusionProof(ctx, i, cp.Size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(p))
	for k := range p {
		hashes[k] = p[k][:]
	}
	leaf := LeafHash(leaves[0])
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, leaf[:], hashes, cp.Hash[:]); err != nil {
		return nil, fmt.Errorf("%w: the inclusion proof of entry %d does not verify against the checkpoint of size %d: %w", ErrUnavailable, i, cp.Size, err)
	}
	if len(hashes) < height {
		return nil, fmt.Errorf("%w: the inclusion proof of entry %d has %d hashes, want at least %d", ErrUnavailable, i, len(hashes), height)
	}
	// Entry i is the leftmost of its subtree: every sibling below its
	// root is on the right.
	h := leaf[:]
	for _, s := range hashes[:height] {
		h = rfc6962.DefaultHasher.HashChildren(h, s)
	}
	return h, nil
}

func (d *derivedTiles) get(id TileID) ([]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.tiles[id]
	if !ok {
		return nil, false
	}
	d.order.MoveToFront(e)
	return e.Value.(*cachedTile).data, true
}

func (d *derivedTiles) put(id TileID, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.tiles[id]; ok {
		return
	}
	d.tiles[id] = d.order.PushFront(&cachedTile{id: id, data: data})
	for d.order.Len() > d.max {
		last := d.order.Back()
		d.order.Remove(last)
		delete(d.tiles, last.Value.(*cachedTile).id)
	}
}
