package log

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The geometry of the C2SP tlog-tiles read API (c2sp.org/tlog-tiles).
const (
	// TileHeight is the height of a tile: a tile at tile level L holds
	// Merkle tree nodes of tree level TileHeight*L.
	TileHeight = 8
	// TileWidth is the number of hashes in a full hash tile, and of entries
	// in a full entry bundle.
	TileWidth = 1 << TileHeight
	// MaxTileLevel is the highest tile level a path may name.
	MaxTileLevel = 63
)

// TileReader is implemented by a Backend that can serve the C2SP
// tlog-tiles read API from its own storage. The server type-asserts a
// Backend to it; a Backend that does not implement it has no tiles API.
//
// Both methods read the tree of the Backend's latest checkpoint, MUST be
// safe for concurrent use (also with Append), and MUST NOT return data
// beyond the latest checkpoint's size.
type TileReader interface {
	// ReadTile returns the first width hashes (32 bytes each) of hash tile
	// (level, index): the hashes of the Merkle tree nodes at tree level
	// TileHeight*level, indices TileWidth*index to TileWidth*index+width-1.
	// width is 1 to TileWidth; TileWidth asks for the full tile. When the
	// latest tree does not have that many hashes in this tile, ReadTile
	// returns ErrNotFound: a partial tile of any width up to the one the
	// tree has is served (each is a prefix of the next, and of the full
	// tile), and nothing wider.
	ReadTile(ctx context.Context, level, index uint64, width int) ([]byte, error)

	// ReadEntryBundle returns entry bundle index of width entries: the
	// leaves of entries TileWidth*index to TileWidth*index+width-1, each
	// as a big-endian uint16 length followed by the leaf bytes. width and
	// ErrNotFound are as for ReadTile.
	ReadEntryBundle(ctx context.Context, index uint64, width int) ([]byte, error)
}

// TileID names one resource of the tlog-tiles API: a hash tile or an entry
// bundle, full (Width TileWidth) or partial.
type TileID struct {
	// Entries is true for an entry bundle, false for a hash tile.
	Entries bool
	// Level is the tile level of a hash tile, 0 to MaxTileLevel (0 for an
	// entry bundle).
	Level uint64
	// Index is the tile's index in its level.
	Index uint64
	// Width is the number of hashes or entries, 1 to TileWidth.
	Width int
}

// ErrBadTilePath is returned by ParseTilePath for a path that is not the
// canonical path of a tile.
var ErrBadTilePath = errors.New("not a tlog-tiles path")

// Path returns the resource's path relative to the log's prefix, as
// tlog-tiles writes it: "tile/<L>/<N>[.p/<W>]" or
// "tile/entries/<N>[.p/<W>]", with N in zero-padded groups of three
// digits, all but the last prefixed with "x": index 1234067 is
// "x001/x234/067".
func (t TileID) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries/")
	} else {
		b.WriteString(strconv.FormatUint(t.Level, 10))
		b.WriteByte('/')
	}
	b.WriteString(tileIndexPath(t.Index))
	if t.Width < TileWidth {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(t.Width))
	}
	return b.String()
}

// tileIndexPath encodes a tile index as tlog-tiles path elements.
func tileIndexPath(n uint64) string {
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n /= 1000; n > 0; n /= 1000 {
		groups = append(groups, fmt.Sprintf("x%03d", n%1000))
	}
	var b strings.Builder
	for i := len(groups) - 1; i >= 0; i-- {
		b.WriteString(groups[i])
		if i > 0 {
			b.WriteByte('/')
		}
	}
	return b.String()
}

// ParseTilePath parses the path of a tile or entry bundle, such as
// "tile/0/x001/234" or "tile/entries/005.p/17", relative to the log's
// prefix. It accepts exactly the paths Path writes: the one canonical
// encoding of each resource (no leading zeros in L or W, no superfluous
// "x000" groups, W from 1 to 255). Other paths fail with ErrBadTilePath.
func ParseTilePath(path string) (TileID, error) {
	bad := func(why string) (TileID, error) {
		return TileID{}, fmt.Errorf("%w: %q: %s", ErrBadTilePath, clip(path), why)
	}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad(`it does not start with "tile/"`)
	}
	var t TileID
	head, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("it has no tile index")
	}
	if head == "entries" {
		t.Entries = true
	} else {
		// SPEC: "<L> is the “level” of the tile, and MUST be a decimal
		// ASCII integer between 0 and 63, with no additional leading
		// zeroes."
		level, ok := canonicalUint(head)
		if !ok || level > MaxTileLevel {
			return bad("the level must be a decimal from 0 to 63")
		}
		t.Level = level
	}
	t.Width = TileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		// SPEC: "<W> is the width of the tile, a decimal ASCII integer
		// between 1 and 255, with no additional leading zeroes."
		w, ok := canonicalUint(rest[i+len(".p/"):])
		if !ok || w < 1 || w >= TileWidth {
			return bad("the partial width must be a decimal from 1 to 255")
		}
		t.Width = int(w)
		rest = rest[:i]
	}
	// SPEC: "<N> … MUST be a non-negative integer encoded into zero-padded
	// 3-digit path elements. All but the last path element MUST begin with
	// an x."
	groups := strings.Split(rest, "/")
	if len(groups) > 7 {
		return bad("the index has too many path elements")
	}
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			if !strings.HasPrefix(g, "x") {
				return bad("every index element but the last must begin with x")
			}
			g = g[1:]
		}
		if len(g) != 3 || g[0] < '0' || g[0] > '9' || g[1] < '0' || g[1] > '9' || g[2] < '0' || g[2] > '9' {
			return bad("index elements must be three decimal digits")
		}
		d := uint64(g[0]-'0')*100 + uint64(g[1]-'0')*10 + uint64(g[2]-'0')
		if t.Index > (^uint64(0)-d)/1000 {
			return bad("the index is too large")
		}
		t.Index = t.Index*1000 + d
	}
	if t.Path() != path {
		return bad("not the canonical encoding of the tile")
	}
	return t, nil
}

// canonicalUint parses a decimal without sign or leading zeros.
func canonicalUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// TileHashes returns how many hashes tile (level, index) holds in a tree of
// size: TileWidth for a full tile, 1 to TileWidth-1 for the partial tile on
// the right edge, 0 when the tree has none of its hashes. For level 0 it is
// also the number of entries of entry bundle index.
func TileHashes(size, level, index uint64) int {
	shift := TileHeight * level
	if shift >= 64 {
		return 0
	}
	nodes := size >> shift // complete nodes at tree level TileHeight*level
	first := index * TileWidth
	if index > (^uint64(0))/TileWidth || nodes <= first {
		return 0
	}
	return int(min(nodes-first, TileWidth))
}

// AppendEntryBundle appends one entry to an entry bundle: its length as a
// big-endian uint16, then its bytes. It fails for an entry longer than
// 65,535 bytes, which a bundle cannot hold.
func AppendEntryBundle(bundle, entry []byte) ([]byte, error) {
	if len(entry) > MaxEntryBytes {
		return nil, fmt.Errorf("failed to add an entry of %d bytes to an entry bundle: the limit is %d", len(entry), MaxEntryBytes)
	}
	bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(entry)))
	return append(bundle, entry...), nil
}

// ParseEntryBundle splits an entry bundle into its entries, which share the
// bundle's memory. It fails when the bundle does not hold exactly width
// entries, and for a width that is not 1 to TileWidth.
func ParseEntryBundle(bundle []byte, width int) ([][]byte, error) {
	if width < 1 || width > TileWidth {
		return nil, fmt.Errorf("failed to parse the entry bundle: a width of %d entries, not 1 to %d", width, TileWidth)
	}
	out := make([][]byte, 0, width)
	for len(bundle) > 0 {
		if len(bundle) < 2 {
			return nil, fmt.Errorf("failed to parse the entry bundle: entry %d has a truncated length", len(out))
		}
		n := int(binary.BigEndian.Uint16(bundle))
		if len(bundle)-2 < n {
			return nil, fmt.Errorf("failed to parse the entry bundle: entry %d is truncated (%d of %d bytes)", len(out), len(bundle)-2, n)
		}
		if len(out) == width {
			return nil, fmt.Errorf("failed to parse the entry bundle: it holds more than %d entries", width)
		}
		out = append(out, bundle[2:2+n:2+n])
		bundle = bundle[2+n:]
	}
	if len(out) != width {
		return nil, fmt.Errorf("failed to parse the entry bundle: it holds %d entries, want %d", len(out), width)
	}
	return out, nil
}
