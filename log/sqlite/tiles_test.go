package sqlite

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// refTiles computes, independently of the backend, the hashes of every tile
// level of a tree: level 0 holds the leaf hashes, level k hash j is the root
// of leaves [j·256^k, (j+1)·256^k), each computed by a reference tree.
func refTiles(leaves [][]byte) [][][]byte {
	var levels [][][]byte
	for width := 1; width <= len(leaves); width *= tileWidth {
		var level [][]byte
		for start := 0; start+width <= len(leaves); start += width {
			tr := testonly.New(rfc6962.DefaultHasher)
			tr.AppendData(leaves[start : start+width]...)
			level = append(level, tr.Hash())
		}
		levels = append(levels, level)
	}
	return levels
}

// tilesAt serves the tiles of the tree of size as the backend stores them:
// full tiles, and partial tiles exactly as wide as the tree of size makes
// them. A tile that does not exist yet at size is an error.
func tilesAt(levels [][][]byte, size uint64) tileFunc {
	memo := make(map[tileKey]*tile)
	return func(k tileKey) (*tile, error) {
		if t, ok := memo[k]; ok {
			return t, nil
		}
		n := levelNodes(size, k.level)
		first := k.index * tileWidth
		if first >= n {
			return nil, fmt.Errorf("tile %v does not exist at size %d", k, size)
		}
		last := min(first+tileWidth, n)
		var out []byte
		for j := first; j < last; j++ {
			out = append(out, levels[k.level][j]...)
		}
		memo[k] = newTile(out)
		return memo[k], nil
	}
}

func leavesN(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return leaves
}

// checkSize checks the root (through the compact range rebuilt from tiles)
// and the inclusion and consistency proofs, built from tiles, of the tree of
// size against the reference tree.
func checkSize(t *testing.T, ref *testonly.Tree, levels [][][]byte, size uint64, indices, froms []uint64) {
	t.Helper()
	tiles := tilesAt(levels, size)
	root := ref.HashAt(size)
	hashes, err := nodeHashes(compact.RangeNodes(0, size, nil), tiles)
	if err != nil {
		t.Fatalf("size %d: compact range nodes: %v", size, err)
	}
	f := &compact.RangeFactory{Hash: hashChildren}
	rng, err := f.NewRange(0, size, hashes)
	if err != nil {
		t.Fatal(err)
	}
	if got := rootHash(rng); !bytes.Equal(got[:], root) {
		t.Fatalf("size %d: root %x, want %x", size, got, root)
	}
	for _, i := range indices {
		nodes, err := proof.Inclusion(i, size)
		if err != nil {
			t.Fatal(err)
		}
		h, err := nodeHashes(nodes.IDs, tiles)
		if err != nil {
			t.Fatalf("inclusion %d in %d: %v", i, size, err)
		}
		p, err := nodes.Rehash(h, hashChildren)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, levels[0][i], p, root); err != nil {
			t.Fatalf("inclusion %d in %d does not verify: %v", i, size, err)
		}
		want, _ := ref.InclusionProof(i, size)
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("inclusion %d in %d differs from the reference", i, size)
		}
	}
	for _, from := range froms {
		nodes, err := proof.Consistency(from, size)
		if err != nil {
			t.Fatal(err)
		}
		h, err := nodeHashes(nodes.IDs, tiles)
		if err != nil {
			t.Fatalf("consistency %d to %d: %v", from, size, err)
		}
		p, err := nodes.Rehash(h, hashChildren)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, p, ref.HashAt(from), root); err != nil {
			t.Fatalf("consistency %d to %d does not verify: %v", from, size, err)
		}
	}
}

// sample returns a spread of values in [lo, hi): both ends, the middle,
// the tile boundaries nearby and every step-th value.
func sample(lo, hi, step uint64) []uint64 {
	seen := make(map[uint64]bool)
	var out []uint64
	add := func(v uint64) {
		if v >= lo && v < hi && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for _, v := range []uint64{lo, lo + 1, (lo + hi) / 2, hi - 2, hi - 1, 255, 256, 257, 511, 512} {
		add(v)
	}
	for v := lo; v < hi; v += step {
		add(v)
	}
	return out
}

func TestNodeMathEverySize(t *testing.T) {
	const n = 600
	leaves := leavesN(n)
	ref := testonly.New(rfc6962.DefaultHasher)
	ref.AppendData(leaves...)
	levels := refTiles(leaves)
	for size := uint64(1); size <= n; size++ {
		checkSize(t, ref, levels, size, sample(0, size, 97), sample(1, size+1, 89))
	}
	// Every index and every earlier size at a few sizes around tile edges.
	for _, size := range []uint64{256, 513, 600} {
		checkSize(t, ref, levels, size, sample(0, size, 1), sample(1, size+1, 1))
	}
}

func TestNodeMathLevel2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 70,000 leaves")
	}
	const n = 70000
	leaves := leavesN(n)
	ref := testonly.New(rfc6962.DefaultHasher)
	ref.AppendData(leaves...)
	levels := refTiles(leaves)
	if len(levels) != 3 || len(levels[2]) != 1 {
		t.Fatalf("reference has %d tile levels", len(levels))
	}
	for _, size := range []uint64{65535, 65536, 65537, 65536 + 256, 70000} {
		checkSize(t, ref, levels, size, sample(0, size, 9973), sample(1, size+1, 9967))
	}
}

func TestRightEdge(t *testing.T) {
	for _, tc := range []struct {
		size uint64
		want []edgePos
	}{
		{0, nil},
		{1, []edgePos{{0, 1}}},
		{255, []edgePos{{0, 255}}},
		{256, []edgePos{{1, 0}, {0, 1}}},
		{600, []edgePos{{2, 88}, {0, 2}}},
		{65536, []edgePos{{256, 0}, {1, 0}, {0, 1}}},
		{70000, []edgePos{{273, 112}, {1, 17}, {0, 1}}},
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			if got := rightEdge(tc.size); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rightEdge(%d) = %v, want %v", tc.size, got, tc.want)
			}
		})
	}
}

func TestNodeTile(t *testing.T) {
	for _, tc := range []struct {
		id      compact.NodeID
		k       tileKey
		off, nh int
	}{
		{compact.NewNodeID(0, 5), tileKey{0, 0}, 5, 1},
		{compact.NewNodeID(0, 600), tileKey{0, 2}, 88, 1},
		{compact.NewNodeID(6, 8), tileKey{0, 2}, 0, 64},
		{compact.NewNodeID(4, 36), tileKey{0, 2}, 64, 16},
		{compact.NewNodeID(3, 74), tileKey{0, 2}, 80, 8},
		{compact.NewNodeID(8, 1), tileKey{1, 0}, 1, 1},
		{compact.NewNodeID(9, 0), tileKey{1, 0}, 0, 2},
		{compact.NewNodeID(15, 1), tileKey{1, 0}, 128, 128},
		{compact.NewNodeID(15, 2), tileKey{1, 1}, 0, 128},
		{compact.NewNodeID(16, 3), tileKey{2, 0}, 3, 1},
	} {
		t.Run(fmt.Sprintf("%d/%d", tc.id.Level, tc.id.Index), func(t *testing.T) {
			k, off, n := nodeTile(tc.id)
			if k != tc.k || off != tc.off || n != tc.nh {
				t.Errorf("nodeTile = %v, %d, %d; want %v, %d, %d", k, off, n, tc.k, tc.off, tc.nh)
			}
		})
	}
}

// TestWorkedExample checks the example of the package comment.
func TestWorkedExample(t *testing.T) {
	nodes, err := proof.Inclusion(5, 600)
	if err != nil {
		t.Fatal(err)
	}
	want := ids(0, 4, 1, 3, 2, 0, 3, 1, 4, 1, 5, 1, 6, 1, 7, 1, 8, 1, 3, 74, 4, 36, 6, 8)
	if !reflect.DeepEqual(nodes.IDs, want) {
		t.Fatalf("proof nodes %v, want %v", nodes.IDs, want)
	}
	if got := compact.RangeNodes(0, 600, nil); !reflect.DeepEqual(got, ids(9, 0, 6, 8, 4, 36, 3, 74)) {
		t.Fatalf("compact range nodes %v", got)
	}
	tiles := make(map[tileKey]bool)
	for _, id := range nodes.IDs {
		k, _, _ := nodeTile(id)
		tiles[k] = true
	}
	if !reflect.DeepEqual(tiles, map[tileKey]bool{{0, 0}: true, {1, 0}: true, {0, 2}: true}) {
		t.Fatalf("proof tiles %v", tiles)
	}
	if got := rightEdge(856); !reflect.DeepEqual(got, []edgePos{{3, 88}, {0, 3}}) {
		t.Fatalf("rightEdge(856) = %v", got)
	}
}

func TestTileCache(t *testing.T) {
	c := newTileCache(2)
	a, b, d := tileKey{0, 1}, tileKey{0, 2}, tileKey{1, 0}
	c.put(a, newTile([]byte("a")))
	c.put(b, newTile([]byte("b")))
	if _, ok := c.get(a); !ok { // a is now the most recently used
		t.Fatal("a not cached")
	}
	c.put(d, newTile([]byte("d"))) // evicts b
	if _, ok := c.get(b); ok {
		t.Error("b was not evicted")
	}
	for _, k := range []tileKey{a, d} {
		if _, ok := c.get(k); !ok {
			t.Errorf("%v was evicted", k)
		}
	}
	if c.len() != 2 {
		t.Errorf("cache holds %d tiles, want 2", c.len())
	}
}

// ids makes node ids from level, index pairs.
func ids(li ...uint64) []compact.NodeID {
	var out []compact.NodeID
	for i := 0; i < len(li); i += 2 {
		out = append(out, compact.NewNodeID(uint(li[i]), li[i+1]))
	}
	return out
}

// TestExtendTile checks that extending a tile of every width to every
// larger width gives the tile built from scratch.
func TestExtendTile(t *testing.T) {
	full := make([]byte, fullTileBytes)
	for i := range full {
		full[i] = byte(i*7 + i/32)
	}
	for from := 1; from <= tileWidth; from += 3 {
		old := newTile(full[:from*hashSize])
		for to := from; to <= tileWidth; to += 5 {
			got, want := extendTile(old, full[:to*hashSize]), newTile(full[:to*hashSize])
			for r := range tileHeight {
				if !bytes.Equal(got.rows[r], want.rows[r]) {
					t.Fatalf("extending width %d to %d: row %d differs", from, to, r)
				}
			}
		}
	}
	if got, want := extendTile(nil, full[:9*hashSize]), newTile(full[:9*hashSize]); !bytes.Equal(got.rows[3], want.rows[3]) {
		t.Fatal("extending no tile differs from a new tile")
	}
}
