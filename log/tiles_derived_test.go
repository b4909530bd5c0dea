package log_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
)

// tilesHidden is a Backend without its TileReader methods, as the
// Trillian backend is; it counts the reads.
type tilesHidden struct {
	log.Backend
	entries, proofs atomic.Int64
}

func (h *tilesHidden) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	h.entries.Add(1)
	return h.Backend.Entries(ctx, start, count)
}

func (h *tilesHidden) InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error) {
	h.proofs.Add(1)
	return h.Backend.InclusionProof(ctx, index, size)
}

// TestDerivedTiles derives every tile and bundle of SQLite logs of several
// sizes from entries and proofs, and compares them with the tiles SQLite
// stores.
func TestDerivedTiles(t *testing.T) {
	ctx := context.Background()
	b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/derived")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
	hidden := &tilesHidden{Backend: b}
	derived := log.DerivedTiles(hidden, 4)
	stored := log.TileReader(b)

	tmpl, err := log.NewEntry(&log.Submission{Kind: log.KindDecision, Submitter: "s", Allow: true,
		Content: []byte(`{"action":"a","decided_at":"2026-01-01T00:00:00Z","id":"x-00000000","outcome":"allow","policy":{"id":"p"},"subject":"s"}`)},
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	appendN := func(n int) {
		batch := make([]*log.Entry, n)
		for i := range batch {
			id := fmt.Sprintf("x-%08d", next)
			next++
			sub := *tmpl.Submission
			sub.ID = id
			sub.Content = bytes.Replace(sub.Content, []byte("x-00000000"), []byte(id), 1)
			batch[i] = &log.Entry{Submission: &sub, LoggedAt: tmpl.LoggedAt, AuthorizedUntil: tmpl.AuthorizedUntil,
				Leaf: bytes.Replace(tmpl.Leaf, []byte("x-00000000"), []byte(id), 1)}
		}
		if _, _, err := b.Append(ctx, batch, sign); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Append(ctx, nil, sign); err != nil {
		t.Fatal(err)
	}
	sizes := []int{1, 255, 256, 300, 70000}
	if testing.Short() {
		sizes = sizes[:4]
	}
	for _, size := range sizes {
		for next < size {
			appendN(min(size-next, 8192))
		}
		cp, _ := b.Latest(ctx)
		for level := uint64(0); log.TileHashes(cp.Size, level, 0) > 0; level++ {
			for index := uint64(0); log.TileHashes(cp.Size, level, index) > 0; index++ {
				w := log.TileHashes(cp.Size, level, index)
				if level == 0 && w == log.TileWidth && index%16 != 0 && index != cp.Size/log.TileWidth-1 {
					continue // a sample of the full level-0 tiles
				}
				for _, width := range []int{1, w} {
					want, err := stored.ReadTile(ctx, level, index, width)
					if err != nil {
						t.Fatal(err)
					}
					got, err := derived.ReadTile(ctx, level, index, width)
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("size %d: tile %d/%d of width %d: derived %v, differs: %v", size, level, index, width, err, !bytes.Equal(got, want))
					}
					if level == 0 {
						want, _ := stored.ReadEntryBundle(ctx, index, width)
						got, err := derived.ReadEntryBundle(ctx, index, width)
						if err != nil || !bytes.Equal(got, want) {
							t.Fatalf("size %d: bundle %d of width %d: %v", size, index, width, err)
						}
					}
				}
				if w < log.TileWidth {
					if _, err := derived.ReadTile(ctx, level, index, w+1); !errors.Is(err, log.ErrNotFound) {
						t.Fatalf("size %d: tile %d/%d of width %d: %v", size, level, index, w+1, err)
					}
				}
			}
		}
	}
	// A full tile is derived once.
	if testing.Short() {
		return
	}
	before := hidden.proofs.Load()
	for range 3 {
		if _, err := derived.ReadTile(ctx, 1, 0, log.TileWidth); err != nil {
			t.Fatal(err)
		}
	}
	if n := hidden.proofs.Load() - before; n != 0 {
		t.Fatalf("a cached full tile took %d proofs", n)
	}
	for _, bad := range []struct {
		level, index uint64
		width        int
	}{{0, 0, 0}, {0, 0, 257}, {3, 0, 1}, {0, 1 << 40, 1}} {
		if _, err := derived.ReadTile(ctx, bad.level, bad.index, bad.width); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("ReadTile(%v): %v", bad, err)
		}
	}
}
