package sqlite

import (
	"context"
	"database/sql"
	"hash/maphash"
	"math/bits"
	"sync"
	"time"

	"github.com/govlog/govlog/log"
)

// idFilter answers, for a kind and id, whether the ids table may hold its
// row ("maybe") or certainly does not: a Bloom filter of every row of the
// table, so that prefetch skips the table for ids never stored, which is
// every new entry's own id.
//
// The table stays the truth: a "maybe" is looked up there as before
// (the filter's false positives: 0.13% of the ids never stored, with a
// segment at its capacity; a few segments add theirs), and
// until the filter is built every answer is "maybe". It is built in the
// background after Open (build: every row of the table, read in chunks),
// while the writer adds the rows each merge writes (add, before the
// commit: a row of a batch that did not commit only costs a lookup).
// The rows held in memory (pendingIDs) are not in it: prefetch finds
// those first. The ids are hashed with a random seed, so no input can aim
// at a block.
//
// It is a split block Bloom filter (as Parquet's): each id sets one bit in
// each of the eight 32-bit words of one 256-bit block, 16 bits an id, in
// segments of growing size. A full segment is followed by one as large as
// all before it, so the bits per row stay between 16 and 32 as the log
// grows; each lookup reads one block of every segment, a few at most.
type idFilter struct {
	seed maphash.Seed
	mu   sync.RWMutex
	segs []filterSeg
	// ready is set once build has added every row of the table.
	ready bool
}

// filterSeg is one Bloom filter of cap ids, of which n are in.
type filterSeg struct {
	blocks [][8]uint32
	cap, n int
}

// filterBitsPerID is the size of a segment for its capacity: 16 bits
// each: 0.13% false positives at capacity (measured, 2^20 ids).
const filterBitsPerID = 16

// filterMinCap is the least capacity of a segment.
const filterMinCap = 1 << 16

// newIDFilter returns an empty filter, not ready, whose first segment
// holds about n ids.
func newIDFilter(n uint64) *idFilter {
	f := &idFilter{seed: maphash.MakeSeed()}
	f.grow(int(max(n, filterMinCap)))
	return f
}

func (f *idFilter) grow(n int) {
	nb := (n*filterBitsPerID + 255) / 256
	f.segs = append(f.segs, filterSeg{blocks: make([][8]uint32, nb), cap: n})
}

// filterSalt are the multipliers of the eight bit positions (Parquet's).
var filterSalt = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

func (f *idFilter) hash(k log.EntryID) uint64 {
	h := maphash.String(f.seed, k.ID) ^ uint64(k.Kind)*0x9e3779b97f4a7c15
	// The finalizer of splitmix64: every bit of h moves both halves.
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// block is the block of h in s, and the bit of each of its words.
func (s *filterSeg) block(h uint64) (*[8]uint32, [8]uint32) {
	hi, _ := bits.Mul64(h, uint64(len(s.blocks)))
	var mask [8]uint32
	for i, salt := range filterSalt {
		mask[i] = 1 << (uint32(h) * salt >> 27)
	}
	return &s.blocks[hi], mask
}

// addRows records the ids of rows.
func (f *idFilter) addRows(rows []idRow) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rows {
		f.addLocked(r.EntryID)
	}
}

// add records the ids.
func (f *idFilter) add(ks ...log.EntryID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range ks {
		f.addLocked(k)
	}
}

func (f *idFilter) addLocked(k log.EntryID) {
	s := &f.segs[len(f.segs)-1]
	if s.n == s.cap {
		total := 0
		for _, s := range f.segs {
			total += s.cap
		}
		f.grow(total)
		s = &f.segs[len(f.segs)-1]
	}
	b, mask := s.block(f.hash(k))
	for i := range b {
		b[i] |= mask[i]
	}
	s.n++
}

// mayHold reports whether the ids table may hold a row of k: false only
// when the filter is built and no row of k was added.
func (f *idFilter) mayHold(k log.EntryID) bool {
	h := f.hash(k)
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.ready {
		return true
	}
	for i := range f.segs {
		b, mask := f.segs[i].block(h)
		all := true
		for j := range b {
			all = all && b[j]&mask[j] != 0
		}
		if all {
			return true
		}
	}
	return false
}

// bytes is the memory the filter's bits take.
func (f *idFilter) bytes() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, s := range f.segs {
		n += len(s.blocks) * 32
	}
	return n
}

// filterChunk is how many rows of the ids table build reads a query.
const filterChunk = 1 << 14

// build adds every row of the ids table, read from db in chunks in key
// order (each a transaction of its own, so that the WAL's checkpoints are
// not held back), then marks the filter ready. Rows are never deleted, and
// the ones a merge writes meanwhile are added by the writer, so every row
// stored when build returns is in the filter. It returns the rows read.
func (f *idFilter) build(ctx context.Context, db *sql.DB) (int, error) {
	n := 0
	ks := make([]log.EntryID, 0, filterChunk)
	for kind := log.KindDecision; kind.Valid(); kind++ {
		last := ""
		for {
			rows, err := db.QueryContext(ctx, sqlIDsAfter, int64(kind), last, filterChunk)
			if err != nil {
				return n, unavailable("read the id index", err)
			}
			ks = ks[:0]
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return n, unavailable("read the id index", err)
				}
				ks = append(ks, log.EntryID{Kind: kind, ID: id})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return n, unavailable("read the id index", err)
			}
			f.add(ks...)
			n += len(ks)
			if len(ks) < filterChunk {
				break
			}
			last = ks[len(ks)-1].ID
		}
	}
	f.mu.Lock()
	f.ready = true
	f.mu.Unlock()
	return n, nil
}

// startFilter replaces the id filter by a new one, for a log of size
// entries, built in the background; a build still running is stopped
// first. The caller holds writeMu (or is Open).
func (b *Backend) startFilter(size uint64) {
	b.stopFilter()
	f := newIDFilter(size + size/4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.filter, b.filterStop = f, func() { cancel(); <-done }
	go func() {
		defer close(done)
		start := time.Now()
		n, err := f.build(ctx, b.rdb)
		if err != nil {
			if ctx.Err() == nil {
				b.logger.Error("failed to build the id filter: every id is looked up in storage", "err", err)
			}
			return
		}
		b.logger.Info("built the id filter", "ids", n, "bytes", f.bytes(), "elapsed", time.Since(start).Round(time.Millisecond))
	}()
}

// stopFilter stops the filter's build, if running.
func (b *Backend) stopFilter() {
	if b.filterStop != nil {
		b.filterStop()
		b.filterStop = nil
	}
}

// sqlIDsAfter reads the ids of a kind after one, in key order.
const sqlIDsAfter = `SELECT id FROM ids WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`
