package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"github.com/govlog/govlog/log"
)

// DefaultHashMerge is how many entries' leaf_hashes rows are held back
// and then written at once, in key order (see pendingHashes).
const DefaultHashMerge = 1 << 14

// pendingHashes holds the leaf hashes of the newest entries, [from, …),
// whose leaf_hashes rows are not written yet.
//
// leaf_hashes is keyed by hash: one entry's row lands on a random page of
// the B-tree, so a batch of n entries dirtied n of its pages, each written
// to the WAL, fsynced and checkpointed (about a third of a small batch's
// storage CPU). Its rows are only read by LookupHash and nothing else
// depends on them, so they are held back: the batch that crosses
// (k + 1/2) * hashMerge writes all their rows in key order, and a page of
// the B-tree takes many rows at once. Half a merge size away from the
// multiples of it: the batches that fill a search range (16,384 entries,
// the default merge size) write that range's postings, and the two bulk
// writes in one commit made it twice as long (max latency -25 to -40%
// with them apart, govlog bench -n 40000 -c 64, 3 rounds side by side).
// Until then LookupHash finds those entries here. Which entries are not
// in the index follows from the file (see loadPending): a crash loses
// nothing.
//
// The writer adds each committed batch (under mu) and replaces the whole
// value after a merge; readers bound what they find by their snapshot's
// size.
type pendingHashes struct {
	from uint64
	mu   sync.RWMutex
	// prefixes are the index keys of entries from, from+1, …
	prefixes []int64
	// first is the first of those entries with each leaf hash.
	first map[[32]byte]uint64
}

func newPendingHashes(from uint64) *pendingHashes {
	return &pendingHashes{from: from, first: make(map[[32]byte]uint64)}
}

// add records the leaf hashes of entries next, next+1, …, which follow the
// last one added.
func (p *pendingHashes) add(next uint64, hashes [][32]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if next != p.from+uint64(len(p.prefixes)) {
		// Unreachable: the writer adds every committed batch in order.
		panic(fmt.Sprintf("pending leaf hashes: adding entry %d after %d", next, p.from+uint64(len(p.prefixes))))
	}
	for i, h := range hashes {
		p.prefixes = append(p.prefixes, hashPrefix(h))
		if _, ok := p.first[h]; !ok {
			p.first[h] = next + uint64(i)
		}
	}
}

// lookup returns the first entry below size with the leaf hash.
func (p *pendingHashes) lookup(h [32]byte, size uint64) (uint64, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	i, ok := p.first[h]
	return i, ok && i < size
}

// rows returns the leaf_hashes rows of the pending entries below size and
// of the entries size, size+1, … with the given hashes, in key order.
func (p *pendingHashes) rows(size uint64, hashes [][32]byte) []any {
	type row struct{ prefix, idx int64 }
	p.mu.RLock()
	rs := make([]row, 0, int(size-p.from)+len(hashes))
	for i, k := range p.prefixes[:size-p.from] {
		rs = append(rs, row{k, int64(p.from) + int64(i)})
	}
	p.mu.RUnlock()
	for i, h := range hashes {
		rs = append(rs, row{hashPrefix(h), int64(size) + int64(i)})
	}
	slices.SortFunc(rs, func(a, b row) int { return cmp.Or(cmp.Compare(a.prefix, b.prefix), cmp.Compare(a.idx, b.idx)) })
	args := make([]any, 0, 2*len(rs))
	for _, r := range rs {
		args = append(args, r.prefix, r.idx)
	}
	return args
}

// loadPending finds, in a tree of size entries, the first entry without a
// leaf_hashes row (the rows are written for a prefix of the entries: a
// binary search) and reads the leaf hashes of that entry and the ones
// after it from the level-0 tiles.
func loadPending(ctx context.Context, tx *sql.Tx, size uint64, get func(tileKey) (*tile, error)) (*pendingHashes, error) {
	leafHash := func(i uint64) ([32]byte, error) {
		t, err := get(tileKey{level: 0, index: i / tileWidth})
		if err != nil {
			return [32]byte{}, err
		}
		pos := int(i%tileWidth) * hashSize
		return [32]byte(t.hashes()[pos : pos+hashSize]), nil
	}
	lo, hi := uint64(0), size
	for lo < hi {
		mid := lo + (hi-lo)/2
		h, err := leafHash(mid)
		if err != nil {
			return nil, err
		}
		var n int
		if err := tx.QueryRowContext(ctx, sqlHasHashRow, hashPrefix(h), int64(mid)).Scan(&n); err != nil {
			return nil, unavailable("look up the leaf-hash index", err)
		}
		if n > 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	p := newPendingHashes(lo)
	var hashes [][32]byte
	for i := lo; i < size; i++ {
		h, err := leafHash(i)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	p.add(lo, hashes)
	return p, nil
}

// lookupPending is LookupHash's look in the pending hashes of s.
func (s *snapshot) lookupPending(h [32]byte) (uint64, error) {
	if s.pending != nil {
		if i, ok := s.pending.lookup(h, s.size()); ok {
			return i, nil
		}
	}
	return 0, fmt.Errorf("failed to look up leaf hash %x: %w", h, log.ErrNotFound)
}
