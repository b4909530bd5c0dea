package sqlite

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
)

// walFrame is one frame of a write-ahead log: the page it writes and the
// first byte of that page's B-tree header (13 a table leaf, 5 a table
// interior page, 10 an index leaf, 2 an index interior page; anything
// else is an overflow or free-list page).
type walFrame struct {
	page uint32
	kind byte
}

// walFrames reads the frames of the write-ahead log of the database at
// path from byte off on, and the offset after the last whole frame. The
// format: a 32-byte header (the page size at bytes 8–11), then frames of a
// 24-byte header (the page number first, big-endian) and the page.
func walFrames(t testing.TB, path string, off int64) ([]walFrame, int64) {
	t.Helper()
	data, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 32 {
		return nil, off
	}
	pageSize := int64(binary.BigEndian.Uint32(data[8:12]))
	off = max(off, 32)
	var frames []walFrame
	for ; off+24+pageSize <= int64(len(data)); off += 24 + pageSize {
		f := walFrame{page: binary.BigEndian.Uint32(data[off : off+4])}
		header := off + 24
		if f.page == 1 {
			header += 100 // the database header
		}
		f.kind = data[header]
		frames = append(frames, f)
	}
	return frames, off
}

// walCounter reads what each commit writes to the WAL: the writer
// connection does not checkpoint (wal_autocheckpoint=0), so the frames of
// each commit follow those of the one before.
type walCounter struct {
	path string
	off  int64
}

func newWALCounter(t testing.TB, b *Backend, path string) *walCounter {
	t.Helper()
	if _, err := b.wdb.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		t.Fatal(err)
	}
	// From an empty WAL: after a checkpoint, commits overwrite its frames
	// from the start.
	var busy, frames, done int
	if err := b.wdb.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil || busy != 0 {
		t.Fatalf("failed to empty the WAL: %v (busy %d)", err, busy)
	}
	return &walCounter{path: path}
}

// next returns the frames written since the last call.
func (c *walCounter) next(t testing.TB) []walFrame {
	t.Helper()
	frames, end := walFrames(t, c.path, c.off)
	c.off = end
	return frames
}

// TestCommitWALPages counts the WAL pages of group commits of the sizes
// the service makes (single decisions from 64 clients commit 1 to 64
// entries at a time, about 18 on average; the batch endpoint about
// 1,000) of 800-byte entries, on a log past its first tiles, and holds
// them to what they write today (docs/performance-log.md, "What one commit
// writes"): a commit that writes more pages is a regression to explain.
// GOVLOG_WAL_PAGES=PREFIX writes, for each group size G, every frame's
// page number and kind to PREFIX.G and the database with its WAL to
// PREFIX.G.db, to map the pages to tables with the sqlite3 shell's
// dbstat.
func TestCommitWALPages(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 50,000 entries")
	}
	for _, tc := range []struct {
		group, commits int
		most           float64 // WAL frames a commit, on average
	}{
		{1, 200, 7},
		{16, 100, 12},
		{64, 50, 23},
		{1000, 20, 270},
	} {
		t.Run(fmt.Sprintf("group=%d", tc.group), func(t *testing.T) {
			path := tempDB(t)
			be := openAt(t, path, Options{})
			sign, _ := newSign(t)
			m := newEntryMaker(t, 800)
			// Past the first full tiles and the first merge of the
			// held-back rows.
			for range 10 {
				mustAppend(t, be, sign, m.batch(1000)...)
			}
			wal := newWALCounter(t, be, path)
			var frames int
			var dump strings.Builder
			rows0 := totalChanges(t, be)
			for range tc.commits {
				if _, _, err := be.Append(context.Background(), m.batch(tc.group), sign); err != nil {
					t.Fatal(err)
				}
				written := wal.next(t)
				if len(written) == 0 {
					t.Fatal("a commit wrote no WAL frame")
				}
				frames += len(written)
				for _, f := range written {
					fmt.Fprintf(&dump, "%d %d\n", f.page, f.kind)
				}
			}
			per := float64(frames) / float64(tc.commits)
			rows := float64(totalChanges(t, be)-rows0) / float64(tc.commits)
			t.Logf("a commit of %d entries: %.2f rows written, %.2f WAL frames, %.3f an entry", tc.group, rows, per, per/float64(tc.group))
			if per > tc.most {
				t.Errorf("a commit of %d entries writes %.2f WAL frames on average, want at most %.0f", tc.group, per, tc.most)
			}
			if prefix := os.Getenv("GOVLOG_WAL_PAGES"); prefix != "" {
				out := fmt.Sprintf("%s.%d", prefix, tc.group)
				if err := os.WriteFile(out, []byte(dump.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				for _, suffix := range []string{"", "-wal"} {
					data, err := os.ReadFile(path + suffix)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(out+".db"+suffix, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// totalChanges is the number of rows the writer connection has inserted,
// updated or deleted since it opened.
func totalChanges(t testing.TB, b *Backend) int64 {
	t.Helper()
	var n int64
	if err := b.wdb.QueryRow(`SELECT total_changes()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
