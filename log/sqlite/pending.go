package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/govlog/govlog/log"
)

// DefaultHashMerge is how many entries' leaf_hashes and ids rows are held
// back and then written at once, as one run of each index (see
// pendingHashes, runFilters).
const DefaultHashMerge = 1 << 14

// pendingHashes holds the leaf hashes of the newest entries, [from, …),
// whose leaf_hashes rows are not written yet.
//
// A row keyed by hash lands on a random page of a B-tree, so a batch of n
// entries dirtied n of its pages, each written to the WAL, fsynced and
// checkpointed (about a third of a small batch's storage CPU). The rows
// are held back instead: the batch that crosses (k + 1/2) * hashMerge
// writes all of them as one run of leaf_hashes (see runFilters), in key
// order within it, at the end of the B-tree. Half a merge size away from the
// multiples of it: the batches that fill a search range (16,384 entries,
// the default merge size) write that range's postings, and the two bulk
// writes in one commit made it twice as long (max latency -25 to -40%
// with them apart, govlog bench -n 40000 -c 64, 3 rounds side by side).
// Until then LookupHash finds those entries here. Which entries are not
// in the index follows from the file (the end of the last run, see
// loadPending): a crash loses nothing.
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
// of the entries size, size+1, … with the given hashes, in key order, as
// the run p.from (sqlInsertLeafs' values), and their filter keys.
func (p *pendingHashes) rows(size uint64, hashes [][32]byte, k filterKey) ([]any, []uint64) {
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
	args := make([]any, 0, 3*len(rs))
	keys := make([]uint64, len(rs))
	run := int64(p.from)
	for i, r := range rs {
		args = append(args, run, r.prefix, r.idx)
		keys[i] = k.hash(r.prefix)
	}
	return args, keys
}

// loadPending reads the leaf hashes of the entries from (the first
// without a leaf_hashes row: the end of the index's last run) to size
// from the level-0 tiles, each tile once.
func loadPending(from, size uint64, get func(tileKey) (*tile, error)) (*pendingHashes, error) {
	var (
		last tileKey
		t    *tile
	)
	leafHash := func(i uint64) ([32]byte, error) {
		if k := (tileKey{level: 0, index: i / tileWidth}); t == nil || k != last {
			var err error
			if t, err = get(k); err != nil {
				return [32]byte{}, err
			}
			last = k
		}
		pos := int(i%tileWidth) * hashSize
		return [32]byte(t.hashes()[pos : pos+hashSize]), nil
	}
	if from > size {
		return nil, fmt.Errorf("%w: the leaf-hash index holds rows up to entry %d, the log has %d entries", log.ErrFork, from, size)
	}
	p := newPendingHashes(from)
	var hashes [][32]byte
	for i := from; i < size; i++ {
		h, err := leafHash(i)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	p.add(from, hashes)
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

// pendingIDs holds the ids rows of the newest entries, [from, …), not
// written yet.
//
// Keyed by (kind, id), a batch's rows would land wherever their ids fall,
// a page of the B-tree for every client with an entry in the batch when
// clients number their ids (64 clients made ids 21 of a group commit's 33
// WAL pages), a page an entry for random ids (UUIDs). So they wait in
// memory, as the leaf hashes do (pendingHashes), and the same merge
// writes them as one run of ids (see runFilters). Unlike leaf_hashes, the
// rule book needs them in every commit (idempotency, lineage, claims):
// prefetch and Lookup look here first, then in the runs. The entries with
// rows are those of the runs, a prefix of the log, so Open reads the rows
// of the rest from their leaves (loadPendingIDs): a crash loses nothing.
// A log migrated from a version that wrote each batch's rows with the
// batch has them all: its pending part starts empty, at its size.
//
// The writer adds each committed batch (under mu) and replaces the whole
// value after a merge; readers bound what they find by their snapshot's
// size.
type pendingIDs struct {
	from uint64
	mu   sync.RWMutex
	// rows[i] is the row of entry from+i.
	rows []idRow
	// at is the position in rows of each hash of an id (idHash), more
	// that of the ids whose hash an earlier one has: a map keyed by an
	// integer takes a fraction of the CPU of one keyed by a string.
	at   map[uint64]int32
	more map[log.EntryID]int32
	seed maphash.Seed
}

// pendingID is an ids row held in memory.
type pendingID struct {
	idx   uint64
	allow bool
	// auth is, for an allow appended since Open, the authorization it
	// started with (log.NewAuthorization), never changed: prefetch gives
	// the rule book a copy of it when the allow has no authorizations row
	// (never claimed nor revoked), instead of the rule book parsing the
	// allow's leaf for it. Nil otherwise (rows rebuilt at Open): the leaf
	// is parsed.
	auth *log.Authorization
}

// idRow is an ids row.
type idRow struct {
	log.EntryID
	pendingID
}

// newPendingIDs returns the pending ids rows of the entries from on,
// with room for about n.
func newPendingIDs(from uint64, n int) *pendingIDs {
	return &pendingIDs{from: from, rows: make([]idRow, 0, n), at: make(map[uint64]int32, n), seed: maphash.MakeSeed()}
}

func (p *pendingIDs) hash(k log.EntryID) uint64 {
	return maphash.String(p.seed, k.ID) ^ uint64(k.Kind)
}

// next is the entry after the last one held.
func (p *pendingIDs) next() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.from + uint64(len(p.rows))
}

// add records the rows of entries next, next+1, …, which follow the last
// one added (rows[i] is entry next+i).
func (p *pendingIDs) add(next uint64, rows []idRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if next != p.from+uint64(len(p.rows)) {
		// Unreachable: the writer adds every committed batch in order.
		panic(fmt.Sprintf("pending ids: adding entry %d after %d", next, p.from+uint64(len(p.rows))))
	}
	for _, r := range rows {
		pos := int32(len(p.rows))
		p.rows = append(p.rows, r)
		h := p.hash(r.EntryID)
		if _, ok := p.at[h]; !ok {
			p.at[h] = pos
			continue
		}
		if p.more == nil {
			p.more = make(map[log.EntryID]int32)
		}
		p.more[r.EntryID] = pos
	}
}

// lookup returns the row of k if its entry is below size.
func (p *pendingIDs) lookup(k log.EntryID, size uint64) (pendingID, bool) {
	h := p.hash(k)
	p.mu.RLock()
	defer p.mu.RUnlock()
	pos, ok := p.at[h]
	if ok && p.rows[pos].EntryID != k {
		pos, ok = p.more[k]
	}
	if !ok || p.rows[pos].idx >= size {
		return pendingID{}, false
	}
	return p.rows[pos].pendingID, true
}

// sorted returns the ids rows of the pending entries and those of the
// batch, in key order.
func (p *pendingIDs) sorted(batch []idRow) []idRow {
	p.mu.RLock()
	rs := make([]idRow, 0, len(p.rows)+len(batch))
	rs = append(rs, p.rows...)
	p.mu.RUnlock()
	rs = append(rs, batch...)
	// SQLite compares TEXT with memcmp (BINARY), as Go compares strings.
	slices.SortFunc(rs, func(a, b idRow) int {
		if a.Kind != b.Kind {
			return cmp.Compare(a.Kind, b.Kind)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rs
}

// idArgs returns the values of sqlInsertIDs for rows, as the run run.
func idArgs(run uint64, rows []idRow) []any {
	args := make([]any, 0, 5*len(rows))
	for _, r := range rows {
		args = append(args, int64(run), int64(r.Kind), r.ID, int64(r.idx), r.allow)
	}
	return args
}

// loadPendingIDs reads the ids rows of the entries from (the first
// without an ids row: the end of the index's last run) to size from their
// leaves.
func loadPendingIDs(ctx context.Context, tx *sql.Tx, from, size, merge uint64) (*pendingIDs, error) {
	if from > size {
		return nil, fmt.Errorf("%w: the id index holds rows up to entry %d, the log has %d entries", log.ErrFork, from, size)
	}
	rows, err := idRowsOf(ctx, tx, from, size)
	if err != nil {
		return nil, err
	}
	p := newPendingIDs(from, max(len(rows), int(merge)))
	p.add(from, rows)
	return p, nil
}

// idRowsOf returns the ids rows of entries [from, to), read from their
// leaves (log.Summarize), summarized on every available core.
func idRowsOf(ctx context.Context, tx *sql.Tx, from, to uint64) ([]idRow, error) {
	leaves, err := readLeaves(ctx, tx, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]idRow, len(leaves))
	i, err := summarizeEach(leaves, func(i int, s *log.Summary) {
		out[i] = idRow{log.EntryID{Kind: summaryKind(s.Kind), ID: s.ID}, pendingID{idx: from + uint64(i), allow: s.Kind == log.SearchDecision && s.Outcome == log.OutcomeAllow}}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: failed to read the id of entry %d: %w", log.ErrFork, from+uint64(i), err)
	}
	return out, nil
}

// summaryKind is the Kind of a log.Summary's Kind.
func summaryKind(s string) log.Kind {
	for k := log.KindDecision; k.Valid(); k++ {
		if k.String() == s {
			return k
		}
	}
	return 0
}
