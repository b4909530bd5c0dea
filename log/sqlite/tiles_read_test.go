package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/govlog/govlog/log"
)

// storedHashes is an independent tile source: the stored hashes of
// golang.org/x/mod/sumdb/tlog (the Go checksum database's tree), from which
// tlog.ReadTileData computes any tile.
type storedHashes struct {
	hashes []tlog.Hash
	n      int64
}

func (s *storedHashes) add(t testing.TB, leaves ...[]byte) {
	t.Helper()
	for _, l := range leaves {
		hs, err := tlog.StoredHashes(s.n, l, s)
		if err != nil {
			t.Fatal(err)
		}
		s.hashes = append(s.hashes, hs...)
		s.n++
	}
}

func (s *storedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s.hashes[x]
	}
	return out, nil
}

// backendTiles reads tiles from a Backend for tlog.TileHashReader.
type backendTiles struct {
	t     testing.TB
	b     *Backend
	reads int
}

func (r *backendTiles) Height() int { return tileHeight }

func (r *backendTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		r.reads++
		data, err := r.b.ReadTile(context.Background(), uint64(t.L), uint64(t.N), t.W)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *backendTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkTiles compares every tile and entry bundle of the backend's tree of
// size with the independent implementation, and checks that nothing wider
// than the tree is served.
func checkTiles(t *testing.T, b *Backend, ref *storedHashes, leaves [][]byte, cp log.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	size := cp.Size
	for _, tile := range tlog.NewTiles(tileHeight, 0, int64(size)) {
		want, err := tlog.ReadTileData(tile, ref)
		if err != nil {
			t.Fatal(err)
		}
		level, index := uint64(tile.L), uint64(tile.N)
		if got := log.TileHashes(size, level, index); got != tile.W {
			t.Fatalf("size %d: TileHashes(%d, %d) = %d, tlog says %d", size, level, index, got, tile.W)
		}
		for _, w := range []int{1, tile.W / 2, tile.W - 1, tile.W} {
			if w < 1 {
				continue
			}
			got, err := b.ReadTile(ctx, level, index, w)
			if err != nil {
				t.Fatalf("size %d: ReadTile(%d, %d, %d): %v", size, level, index, w, err)
			}
			if !bytes.Equal(got, want[:w*hashSize]) {
				t.Fatalf("size %d: tile %d/%d of width %d differs from tlog's", size, level, index, w)
			}
		}
		if tile.W < tileWidth {
			_, err := b.ReadTile(ctx, level, index, tile.W+1)
			wantErr(t, fmt.Sprintf("size %d: ReadTile(%d, %d, %d)", size, level, index, tile.W+1), err, log.ErrNotFound)
		}
		// The next tile of the level does not exist yet.
		_, err = b.ReadTile(ctx, level, index+1, 1)
		if tile.W < tileWidth || log.TileHashes(size, level, index+1) == 0 {
			wantErr(t, fmt.Sprintf("size %d: ReadTile(%d, %d, 1)", size, level, index+1), err, log.ErrNotFound)
		}
		if level != 0 {
			continue
		}
		for _, w := range []int{1, tile.W} {
			bundle, err := b.ReadEntryBundle(ctx, index, w)
			if err != nil {
				t.Fatalf("size %d: ReadEntryBundle(%d, %d): %v", size, index, w, err)
			}
			entries, err := log.ParseEntryBundle(bundle, w)
			if err != nil {
				t.Fatalf("size %d: bundle %d: %v", size, index, err)
			}
			for i, e := range entries {
				j := index*tileWidth + uint64(i)
				if !bytes.Equal(e, leaves[j]) {
					t.Fatalf("size %d: bundle %d entry %d is not leaf %d", size, index, i, j)
				}
				// Each entry hashes to its hash in the level-0 tile.
				if h := tlog.RecordHash(e); !bytes.Equal(h[:], want[i*hashSize:(i+1)*hashSize]) {
					t.Fatalf("size %d: entry %d does not hash to its tile hash", size, j)
				}
			}
		}
		if tile.W < tileWidth {
			_, err := b.ReadEntryBundle(ctx, index, tile.W+1)
			wantErr(t, fmt.Sprintf("size %d: ReadEntryBundle(%d, %d)", size, index, tile.W+1), err, log.ErrNotFound)
		}
	}
	// An independent reader, trusting nothing but the checkpoint: tlog
	// authenticates every tile it reads against the tree hash.
	if size > 0 {
		tree := tlog.Tree{N: int64(size), Hash: tlog.Hash(cp.Hash)}
		r := &backendTiles{t: t, b: b}
		hr := tlog.TileHashReader(tree, r)
		root, err := tlog.TreeHash(int64(size), hr)
		if err != nil || root != tlog.Hash(cp.Hash) {
			t.Fatalf("size %d: tlog.TreeHash from the tiles: %v, %v; the checkpoint says %x", size, root, err, cp.Hash)
		}
		// Every leaf hash, authenticated by tlog, is the hash of the leaf.
		idx := make([]int64, size)
		for i := range idx {
			idx[i] = tlog.StoredHashIndex(0, int64(i))
		}
		hs, err := hr.ReadHashes(idx)
		if err != nil {
			t.Fatalf("size %d: reading every leaf hash through tlog: %v", size, err)
		}
		for i, h := range hs {
			if h != tlog.RecordHash(leaves[i]) {
				t.Fatalf("size %d: leaf %d does not match its authenticated hash", size, i)
			}
		}
	}
}

func TestReadTiles(t *testing.T) {
	b := openAt(t, tempDB(t), Options{TileCacheSize: 2})
	sign, _ := newSign(t)
	ctx := context.Background()

	// Nothing before the first checkpoint.
	_, err := b.ReadTile(ctx, 0, 0, 1)
	wantErr(t, "ReadTile on a new log", err, log.ErrNotFound)
	_, err = b.ReadEntryBundle(ctx, 0, 1)
	wantErr(t, "ReadEntryBundle on a new log", err, log.ErrNotFound)
	mustAppend(t, b, sign)
	_, err = b.ReadTile(ctx, 0, 0, 1)
	wantErr(t, "ReadTile on an empty log", err, log.ErrNotFound)

	ref := &storedHashes{}
	var leaves [][]byte
	m := newEntryMaker(t, 300)
	sizes := []int{1, 2, 255, 256, 257, 511, 512, 600, 1000}
	if !testing.Short() {
		// A level-2 tile, and a full level-1 tile.
		sizes = append(sizes, 65536, 65536+256+3)
	}
	for _, size := range sizes {
		for len(leaves) < size {
			batch := m.batch(min(size-len(leaves), 8192))
			_, cp := mustAppend(t, b, sign, batch...)
			for _, e := range batch {
				leaves = append(leaves, e.Leaf)
				ref.add(t, e.Leaf)
			}
			if int(cp.Size) != len(leaves) {
				t.Fatalf("checkpoint size %d, want %d", cp.Size, len(leaves))
			}
		}
		cp, err := b.Latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(size), func(t *testing.T) { checkTiles(t, b, ref, leaves, cp) })
	}

	for _, tc := range []struct {
		name         string
		level, index uint64
		width        int
	}{
		{"width 0", 0, 0, 0},
		{"width 257", 0, 0, 257},
		{"level 8", 8, 0, 1},
		{"level 63", 63, 0, 1},
		{"huge index", 0, 1 << 60, 1},
		{"max index", 0, ^uint64(0), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.ReadTile(ctx, tc.level, tc.index, tc.width)
			wantErr(t, "ReadTile", err, log.ErrNotFound)
			_, err = b.ReadEntryBundle(ctx, tc.index, tc.width)
			if tc.level == 0 {
				wantErr(t, "ReadEntryBundle", err, log.ErrNotFound)
			}
		})
	}
}

// TestReadTilesBoundedByCheckpoint checks that a partial tile grows only
// with the published checkpoint: a reader never gets hashes of entries it
// cannot prove.
func TestReadTilesBoundedByCheckpoint(t *testing.T) {
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	ctx := context.Background()
	m := newEntryMaker(t, 200)
	mustAppend(t, b, sign, m.batch(10)...)
	commit := make(chan struct{})
	release := make(chan struct{})
	b.hooks.beforeCommit = func() error {
		close(commit)
		<-release
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Append(ctx, m.batch(5), sign)
		done <- err
	}()
	<-commit
	if _, err := b.ReadTile(ctx, 0, 0, 11); err == nil {
		t.Fatal("ReadTile served a hash of an uncommitted entry")
	}
	if _, err := b.ReadEntryBundle(ctx, 0, 11); err == nil {
		t.Fatal("ReadEntryBundle served an uncommitted entry")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReadTile(ctx, 0, 0, 15); err != nil {
		t.Fatalf("after the commit: %v", err)
	}
	if _, err := b.ReadEntryBundle(ctx, 0, 15); err != nil {
		t.Fatalf("after the commit: %v", err)
	}
}
