package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/cputime"
	"github.com/govlog/govlog/log"
)

// BenchmarkLookupAtSize looks up ids (Lookup) and leaf hashes
// (LookupHash) of entries of the log BenchmarkAppendAtSize builds
// (GOVLOG_BENCH_APPEND_N entries, default 1,000,000, at
// GOVLOG_BENCH_APPEND_DB), opened as it is, and of keys it does not hold.
// Entries are drawn at random: most lookups read pages not cached.
func BenchmarkLookupAtSize(b *testing.B) {
	n := benchEnvInt(b, "GOVLOG_BENCH_APPEND_N", 1_000_000)
	path := os.Getenv("GOVLOG_BENCH_APPEND_DB")
	if path == "" {
		path = filepath.Join(os.TempDir(), fmt.Sprintf("govlog-append-%d.db", n))
	}
	bulkLog(b, path, n)
	ctx := context.Background()
	t0, cpu0 := time.Now(), cputime.Process()
	be := openAt(b, path, Options{})
	s := be.snap.Load()
	b.Logf("open: %v, %v of CPU, run filters %d + %d bytes", time.Since(t0).Round(time.Millisecond), time.Duration(cputime.Process()-cpu0).Round(time.Millisecond), s.idRuns.bytes(), s.hashRuns.bytes())
	r := rand.New(rand.NewPCG(1, 2))
	b.Run("id=stored", func(b *testing.B) {
		for b.Loop() {
			i := r.IntN(n)
			_, id, _ := benchLeaf(i)
			if idx, _, err := be.Lookup(ctx, log.KindDecision, id); err != nil || idx != uint64(i) {
				b.Fatalf("Lookup(%q) = %d, %v", id, idx, err)
			}
		}
	})
	b.Run("id=absent", func(b *testing.B) {
		for b.Loop() {
			id := fmt.Sprintf("bench-%09d-%016x", r.IntN(n), r.Uint64())
			if _, _, err := be.Lookup(ctx, log.KindDecision, id); !errors.Is(err, log.ErrNotFound) {
				b.Fatalf("Lookup(%q): %v", id, err)
			}
		}
	})
	b.Run("hash=stored", func(b *testing.B) {
		for b.Loop() {
			i := r.IntN(n)
			leaf, _, _ := benchLeaf(i)
			if idx, err := be.LookupHash(ctx, log.LeafHash(leaf)); err != nil || idx != uint64(i) {
				b.Fatalf("LookupHash(entry %d) = %d, %v", i, idx, err)
			}
		}
	})
	b.Run("hash=absent", func(b *testing.B) {
		for b.Loop() {
			var h [32]byte
			for j := 0; j < 32; j += 8 {
				v := r.Uint64()
				for k := range 8 {
					h[j+k] = byte(v >> (8 * k))
				}
			}
			if _, err := be.LookupHash(ctx, h); !errors.Is(err, log.ErrNotFound) {
				b.Fatalf("LookupHash(%x): %v", h, err)
			}
		}
	})
}
