package sqlite

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

const (
	// tileHeight is the C2SP tlog-tiles tile height: a tile at tile level L
	// holds nodes of tree level tileHeight*L.
	tileHeight = 8
	// tileWidth is the number of hashes in a full tile.
	tileWidth = 1 << tileHeight
	// hashSize is the size of one RFC 6962 (SHA-256) node hash.
	hashSize = 32
	// fullTileBytes is the size of a full tile's hashes.
	fullTileBytes = tileWidth * hashSize
)

// hashChildren is the RFC 6962 interior node hash.
var hashChildren = rfc6962.DefaultHasher.HashChildren

// tileKey names a hash tile: tile level and tile index.
type tileKey struct {
	level uint
	index uint64
}

func (k tileKey) String() string { return fmt.Sprintf("%d/%d", k.level, k.index) }

// tile is one hash tile with the interior nodes above its hashes: rows[0]
// holds the stored hashes (of tree level 8k for a tile of tile level k),
// rows[r] the hashes of the complete nodes of tree level 8k+r above them.
// Proofs read nodes from rows without hashing. Never modified once built.
type tile struct {
	rows [tileHeight][]byte
}

// newTile builds a tile from its stored hashes (a multiple of 32 bytes),
// computing up to 255 interior hashes.
func newTile(hashes []byte) *tile {
	t := &tile{}
	t.rows[0] = hashes
	for r := 1; r < tileHeight; r++ {
		below := t.rows[r-1]
		n := len(below) / hashSize / 2
		row := make([]byte, 0, n*hashSize)
		for i := range n {
			row = append(row, hashChildren(below[2*i*hashSize:(2*i+1)*hashSize], below[(2*i+1)*hashSize:(2*i+2)*hashSize])...)
		}
		t.rows[r] = row
	}
	return t
}

// extendTile is newTile(hashes) for hashes that extend those of old (nil
// for none): the interior hashes old has are copied, not recomputed. A
// batch of a few dozen entries then hashes a few dozen interior nodes of
// its partial tile, not up to 255.
func extendTile(old *tile, hashes []byte) *tile {
	if old == nil {
		return newTile(hashes)
	}
	t := &tile{}
	t.rows[0] = hashes
	for r := 1; r < tileHeight; r++ {
		below := t.rows[r-1]
		n := len(below) / hashSize / 2
		row := make([]byte, 0, n*hashSize)
		row = append(row, old.rows[r][:min(len(old.rows[r]), n*hashSize)]...)
		for i := len(row) / hashSize; i < n; i++ {
			row = append(row, hashChildren(below[2*i*hashSize:(2*i+1)*hashSize], below[(2*i+1)*hashSize:(2*i+2)*hashSize])...)
		}
		t.rows[r] = row
	}
	return t
}

// hashes returns the tile's stored hashes.
func (t *tile) hashes() []byte { return t.rows[0] }

// width is the number of stored hashes.
func (t *tile) width() int { return len(t.rows[0]) / hashSize }

// edgeTile is the partial tile of one tile level on the right edge of a tree;
// t is nil when the level has no partial tile (its width is 0).
type edgeTile struct {
	index uint64
	t     *tile
}

// edgePos is where the right edge of a tree crosses one tile level: the
// index of the tile being filled and its width (0 when the level has only
// full tiles).
type edgePos struct {
	index uint64
	width int
}

// rightEdge returns the edge position of every tile level that has at least
// one node hash in a tree of size, from tile level 0 up.
func rightEdge(size uint64) []edgePos {
	var out []edgePos
	for level := uint(0); ; level++ {
		n := levelNodes(size, level)
		if n == 0 {
			return out
		}
		out = append(out, edgePos{index: n >> tileHeight, width: int(n % tileWidth)})
	}
}

// levelNodes is the number of complete nodes at tree level tileHeight*level
// in a tree of size: the number of hashes on that tile level.
func levelNodes(size uint64, level uint) uint64 {
	shift := tileHeight * level
	if shift >= 64 {
		return 0
	}
	return size >> shift
}

// tileFunc returns a tile: at least as wide as nodeHashes needs, which
// checks.
type tileFunc func(k tileKey) (*tile, error)

// nodeHashes returns the hash of each node, each of which must be a complete
// (perfect) subtree of the tree the tiles come from. A node at tree level
// 8k+r is one of the interior nodes of a tile of tile level k, computed
// from the 2^r hashes of tree level 8k under it. Tiles are fetched once per
// call. Each hash is a copy of its own.
func nodeHashes(ids []compact.NodeID, get tileFunc) ([][]byte, error) {
	out, err := tileNodes(make([][]byte, 0, len(ids)), ids, get)
	if err != nil {
		return nil, err
	}
	for i, h := range out {
		out[i] = append([]byte(nil), h...)
	}
	return out, nil
}

// tileNodes appends to dst the hash of each node, as nodeHashes returns
// them but not copied: each is a slice of its tile's memory, which must
// not be modified (tiles are immutable and shared) and is valid as long
// as the tile is. Tiles are fetched once per call, remembered in a small
// array (a proof touches a handful) rather than a map.
func tileNodes(dst [][]byte, ids []compact.NodeID, get tileFunc) ([][]byte, error) {
	type fetched struct {
		k tileKey
		t *tile
	}
	var buf [8]fetched
	tiles := buf[:0]
	for _, id := range ids {
		k, off, n := nodeTile(id)
		var t *tile
		for i := range tiles {
			if tiles[i].k == k {
				t = tiles[i].t
				break
			}
		}
		if t == nil {
			var err error
			if t, err = get(k); err != nil {
				return nil, err
			}
			tiles = append(tiles, fetched{k, t})
		}
		if t.width() < off+n {
			return nil, fmt.Errorf("tile %v has %d hashes, node %d/%d needs %d", k, t.width(), id.Level, id.Index, off+n)
		}
		r, pos := id.Level%tileHeight, off/n*hashSize
		dst = append(dst, t.rows[r][pos:pos+hashSize:pos+hashSize])
	}
	return dst, nil
}

// nodeTile returns the tile a node is in, the position in it of the first
// stored hash under the node, and how many stored hashes are under it.
func nodeTile(id compact.NodeID) (k tileKey, off, n int) {
	r := id.Level % tileHeight
	first := id.Index << r
	return tileKey{level: id.Level / tileHeight, index: first >> tileHeight}, int(first % tileWidth), 1 << r
}

// tileCache is a bounded LRU cache of full tiles (with their interior
// nodes: about 16 KiB each). Full tiles are immutable,
// so a cached one is never stale. Safe for concurrent use.
type tileCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cachedTile, most recently used first
	tiles map[tileKey]*list.Element
}

type cachedTile struct {
	key  tileKey
	tile *tile
}

func newTileCache(max int) *tileCache {
	return &tileCache{max: max, order: list.New(), tiles: make(map[tileKey]*list.Element)}
}

func (c *tileCache) get(k tileKey) (*tile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tiles[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedTile).tile, true
}

// put caches a full tile.
func (c *tileCache) put(k tileKey, t *tile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tiles[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.tiles[k] = c.order.PushFront(&cachedTile{key: k, tile: t})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.tiles, last.Value.(*cachedTile).key)
	}
}

func (c *tileCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
