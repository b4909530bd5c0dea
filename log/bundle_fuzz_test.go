package log_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// FuzzParseEntryBundle feeds arbitrary bytes and widths to
// ParseEntryBundle. It never panics, and:
//
//   - it accepts only widths of 1 to TileWidth (a C2SP tlog-tiles entry
//     bundle holds at most 256 entries), and then exactly the bundles that
//     split into width length-prefixed entries (checked against a walk of
//     the bundle here);
//   - what it accepts re-encodes with AppendEntryBundle to the very input;
//   - each entry it returns is a slice of the input whose capacity ends
//     with it, so appending to one cannot overwrite the next;
//   - it refuses with a short "failed to parse the entry bundle" error.
//
// The seeds are bundles of the golden entries (added here) and mangled
// ones (testdata/fuzz/FuzzParseEntryBundle).
func FuzzParseEntryBundle(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(testdata, "entries", "valid.json"))
	if err != nil {
		f.Fatal(err)
	}
	var golden []vectors.Entry
	if err := json.Unmarshal(data, &golden); err != nil {
		f.Fatal(err)
	}
	var all []byte
	for _, e := range golden {
		one, err := log.AppendEntryBundle(nil, []byte(e.Leaf))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(one, 1)
		all = append(all, one...)
	}
	f.Add(all, len(golden))
	f.Add(all, len(golden)+1)
	f.Add(all[:len(all)-1], len(golden))
	f.Add(bytes.Repeat([]byte{0, 0}, log.TileWidth), log.TileWidth)
	f.Add(bytes.Repeat([]byte{0, 0}, log.TileWidth+1), log.TileWidth+1)
	f.Add([]byte{}, 0)
	f.Add([]byte{0, 1, 'x'}, -1)
	big, err := log.AppendEntryBundle(nil, bytes.Repeat([]byte{'x'}, log.MaxEntryBytes))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(big, 1)

	f.Fuzz(func(t *testing.T, bundle []byte, width int) {
		entries, err := log.ParseEntryBundle(bundle, width)
		n, ok := walkBundle(bundle)
		want := ok && n == width && width >= 1 && width <= log.TileWidth
		if (err == nil) != want {
			t.Fatalf("ParseEntryBundle(%d bytes, width %d) = %v; the bundle holds %d entries (%v)", len(bundle), width, err, n, ok)
		}
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "failed to parse the entry bundle") || len(msg) > 200 {
				t.Fatalf("error %q", msg)
			}
			return
		}
		if len(entries) != width || len(entries) > log.TileWidth {
			t.Fatalf("%d entries for width %d", len(entries), width)
		}
		var again []byte
		for i, e := range entries {
			if cap(e) != len(e) {
				t.Fatalf("entry %d has %d bytes of spare capacity", i, cap(e)-len(e))
			}
			if again, err = log.AppendEntryBundle(again, e); err != nil {
				t.Fatalf("entry %d does not re-encode: %v", i, err)
			}
		}
		if !bytes.Equal(again, bundle) {
			t.Fatalf("the entries re-encode to another bundle:\n%x\n%x", again, bundle)
		}
	})
}

// walkBundle counts the length-prefixed entries of a bundle; ok is false
// when it does not split into whole entries.
func walkBundle(b []byte) (n int, ok bool) {
	for len(b) > 0 {
		if len(b) < 2 {
			return n, false
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b)-2 < l {
			return n, false
		}
		b = b[2+l:]
		n++
	}
	return n, true
}
