package log

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePath(t *testing.T) {
	for _, tc := range []struct {
		id   TileID
		path string
	}{
		{TileID{Level: 0, Index: 0, Width: 256}, "tile/0/000"},
		{TileID{Level: 1, Index: 1234067, Width: 256}, "tile/1/x001/x234/067"},
		{TileID{Level: 2, Index: 5, Width: 17}, "tile/2/005.p/17"},
		{TileID{Entries: true, Index: 1000, Width: 256}, "tile/entries/x001/000"},
		{TileID{Entries: true, Index: 999, Width: 1}, "tile/entries/999.p/1"},
		{TileID{Level: 63, Index: ^uint64(0), Width: 255}, "tile/63/x018/x446/x744/x073/x709/x551/615.p/255"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := tc.id.Path(); got != tc.path {
				t.Fatalf("Path() = %q, want %q", got, tc.path)
			}
			got, err := ParseTilePath(tc.path)
			if err != nil || got != tc.id {
				t.Fatalf("ParseTilePath = %+v, %v; want %+v", got, err, tc.id)
			}
			// The Go checksum database writes the same index encoding.
			if !tc.id.Entries && tc.id.Index < 1<<62 {
				sum := tlog.Tile{H: TileHeight, L: int(tc.id.Level), N: int64(tc.id.Index), W: tc.id.Width}.Path()
				if want := strings.Replace(sum, "tile/8/", "tile/", 1); want != tc.path {
					t.Fatalf("x/mod/sumdb/tlog writes %q", sum)
				}
			}
		})
	}
	for _, bad := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tiles/0/000", "/tile/0/000", "tile/0/000/",
		"tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/+1/000", "tile/x/000",
		"tile/0/0", "tile/0/0000", "tile/0/00a", "tile/0/x000/001", "tile/0/x001", "tile/0/001/002",
		"tile/0/y001/002", "tile/0/X001/002", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01",
		"tile/0/000.p/", "tile/0/000.p/1/", "tile/0/000.p", "tile/0/000.p/1.p/2", "tile/0/x001.p/1/002",
		"tile/entries/", "tile/entries/00", "tile/entries/000.p/300", "tile/data/000",
		"tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
		"tile/0/000?x", "tile/0/000 ",
	} {
		if id, err := ParseTilePath(bad); !errors.Is(err, ErrBadTilePath) {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want ErrBadTilePath", bad, id, err)
		}
	}
}

func TestTileHashes(t *testing.T) {
	// The example of the specification: "a tree of size 70,000 will be
	// represented by 273 full level 0 tiles, one partial level 0 tile of
	// width 112, one full level 1 tile, one partial level 1 tile of width
	// 17, and one partial level 2 tile of width 1."
	for _, tc := range []struct {
		size, level, index uint64
		want               int
	}{
		{70000, 0, 0, 256}, {70000, 0, 272, 256}, {70000, 0, 273, 112}, {70000, 0, 274, 0},
		{70000, 1, 0, 256}, {70000, 1, 1, 17}, {70000, 1, 2, 0},
		{70000, 2, 0, 1}, {70000, 2, 1, 0}, {70000, 3, 0, 0},
		{256, 0, 0, 256}, {256, 1, 0, 1}, {255, 1, 0, 0}, {0, 0, 0, 0},
		{^uint64(0), 7, 0, 255}, {^uint64(0), 8, 0, 0}, {^uint64(0), 63, 0, 0},
		{^uint64(0), 0, ^uint64(0), 0}, {^uint64(0), 0, ^uint64(0) >> 8, 255},
	} {
		if got := TileHashes(tc.size, tc.level, tc.index); got != tc.want {
			t.Errorf("TileHashes(%d, %d, %d) = %d, want %d", tc.size, tc.level, tc.index, got, tc.want)
		}
	}
}

func TestEntryBundle(t *testing.T) {
	entries := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{'x'}, MaxEntryBytes), []byte(`{"v":1}`)}
	var bundle []byte
	for _, e := range entries {
		var err error
		if bundle, err = AppendEntryBundle(bundle, e); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.HasPrefix(bundle, []byte{0, 1, 'a', 0, 0, 0xff, 0xff, 'x'}) {
		t.Fatalf("bundle starts %x", bundle[:8])
	}
	got, err := ParseEntryBundle(bundle, len(entries))
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if !bytes.Equal(got[i], entries[i]) {
			t.Fatalf("entry %d differs", i)
		}
	}
	if _, err := AppendEntryBundle(nil, make([]byte, MaxEntryBytes+1)); err == nil {
		t.Fatal("AppendEntryBundle took an entry of 65,536 bytes")
	}
	for _, tc := range []struct {
		name   string
		bundle []byte
		width  int
	}{
		{"too few", bundle, len(entries) + 1},
		{"too many", bundle, len(entries) - 1},
		{"truncated length", append(bundle[:len(bundle):len(bundle)], 0), len(entries) + 1},
		{"truncated entry", bundle[:len(bundle)-1], len(entries)},
		{"empty", nil, 1},
	} {
		if _, err := ParseEntryBundle(tc.bundle, tc.width); err == nil {
			t.Errorf("%s: ParseEntryBundle succeeded", tc.name)
		}
	}
}
