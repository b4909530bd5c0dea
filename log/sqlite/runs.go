package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"sync"

	"github.com/govlog/govlog/log"
)

// The id and leaf-hash indexes are stored in runs (schema version 4): each
// merge of the held-back rows (pendingIDs, pendingHashes) writes the rows
// of the entries [run, upto) under the key run, sorted within it, so that
// it appends pages at the end of the B-tree instead of dirtying about one
// page of a B-tree of every key per row. At 10,000,000 entries an index
// has about 610 runs: a lookup probes only those whose filter may hold
// the key.
//
// runFilters holds the filter of every run of one index: a split block
// Bloom filter (as Parquet's: each key sets one bit in each of the eight
// 32-bit words of one 256-bit block) of blocks blocks per slot, a run
// taking one slot per slotKeys keys or part of it. Every slot has the same
// blocks and a key the same block and bits in each, so the slots are
// stored bit-sliced: for each bit of each word of each block, one bit a
// slot, 64 slots to a uint64, the uint64s of all slots side by side. A
// lookup ANDs the eight uint64s its bits name, 64 slots at once: eight
// short contiguous reads (80 bytes each at 10,000,000 entries, 610 slots)
// instead of a cache miss per run.
//
// The filter of a run is written with the run, in the merge's
// transaction, as a blob in its row of id_runs or hash_runs; Open reads
// them all. A run migrated from version 3 has none until Open builds it
// from the run's rows (persistFilters). The keys are hashed with a salt
// stored in the database (run_filters), drawn at random when the table
// was made: stable across restarts, and no input can aim at a block.
//
// The runs are added by the writer, after the merge committed (a merge
// that failed leaves the backend to reload everything from disk); readers
// check under mu and bound what they find by their snapshot's size.
type runFilters struct {
	key    filterKey
	blocks int
	mu     sync.RWMutex
	// bit s%64 of sliced[row*stride+s/64] is bit (row%32) of word
	// (row/32%8) of block (row/256) of slot s; stride grows by a quarter
	// when the slots outgrow it.
	sliced []uint64
	stride int
	// slotRun[s] is the position in runs of slot s's run.
	slotRun []int32
	runs    []storedRun
}

// storedRun is a run of an index: the entries [start, upto), whose
// filter is slots [slot, slot+slots).
type storedRun struct {
	start, upto uint64
	slot, slots int
}

// filterBitsPerKey is the nominal size of a slot: 32 bits a key, about
// 2·10^-5 false positives a slot (8 keys a block): a lookup among 610
// slots finds 0.021 false runs (BenchmarkRunFilters). A slot takes up to 5/4 of its
// nominal keys (slotKeys) before a run takes another.
const filterBitsPerKey = 32

// filterKey is the salted hash of the filters' keys.
type filterKey struct{ salt [16]byte }

// id is the filter key of an ids row.
func (k filterKey) id(e log.EntryID) uint64 {
	var arr [96]byte // on the stack for ids of up to 78 bytes
	buf := append(append(append(arr[:0], k.salt[:]...), 'i', byte(e.Kind)), e.ID...)
	s := sha256.Sum256(buf)
	return binary.LittleEndian.Uint64(s[:8])
}

// hash is the filter key of a leaf_hashes row (its prefix).
func (k filterKey) hash(prefix int64) uint64 {
	var buf [25]byte
	copy(buf[:], k.salt[:])
	buf[16] = 'h'
	binary.BigEndian.PutUint64(buf[17:], uint64(prefix))
	s := sha256.Sum256(buf[:])
	return binary.LittleEndian.Uint64(s[:8])
}

// blocksFor is the blocks of a slot for merges of h rows.
func blocksFor(h uint64) int {
	return int(max(1, (h*filterBitsPerKey+255)/256))
}

// slotKeys is how many keys a slot of blocks takes.
func slotKeys(blocks int) int {
	return blocks * 256 / filterBitsPerKey * 5 / 4
}

// probe is the block of h and the bit it sets in each of the block's
// eight words: the filters' one mapping of a key to its bits, stored
// (runBlob) and looked up (runFilters.rows).
func probe(h uint64, blocks int) (int, [8]uint32) {
	b, _ := bits.Mul64(h>>32, uint64(blocks)<<32)
	var bit [8]uint32
	for i, salt := range filterSalt {
		bit[i] = uint32(h) * salt >> 27
	}
	return int(b), bit
}

// filterSalt are the multipliers of the eight bit positions (Parquet's).
var filterSalt = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// runBlob is the stored filter of a run of keys: its slots, each blocks
// blocks of eight little-endian 32-bit words. Key i goes to slot
// i*slots/len(keys).
func runBlob(keys []uint64, blocks int) []byte {
	slots := max(1, (len(keys)+slotKeys(blocks)-1)/slotKeys(blocks))
	words := make([]uint32, slots*blocks*8)
	for i, h := range keys {
		s := i * slots / len(keys)
		b, bit := probe(h, blocks)
		w := words[(s*blocks+b)*8:]
		for j := range bit {
			w[j] |= 1 << bit[j]
		}
	}
	out := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

func newRunFilters(key filterKey, blocks int) *runFilters {
	return &runFilters{key: key, blocks: blocks}
}

// next is the first entry after the runs (0 without any).
func (f *runFilters) next() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.runs) == 0 {
		return 0
	}
	return f.runs[len(f.runs)-1].upto
}

// add appends the run [start, upto) with its stored filter.
func (f *runFilters) add(start, upto uint64, blob []byte) error {
	return f.addRuns([]newRun{{start: start, upto: upto, filter: blob}})
}

// addRuns appends runs, in order, with their stored filters. The words
// are written in the order of the sliced rows, every slot's word at
// once: one pass over the rows, however many runs (Open adds them all).
func (f *runFilters) addRuns(runs []newRun) error {
	slotBytes := f.blocks * 32
	f.mu.Lock()
	defer f.mu.Unlock()
	next, first := uint64(0), len(f.slotRun)
	if len(f.runs) > 0 {
		next = f.runs[len(f.runs)-1].upto
	}
	var blobs [][]byte // of each new slot
	for _, nr := range runs {
		if len(nr.filter) == 0 || len(nr.filter)%slotBytes != 0 {
			return fmt.Errorf("%w: the filter of the run of entries %d to %d holds %d bytes, not slots of %d", log.ErrFork, nr.start, nr.upto, len(nr.filter), slotBytes)
		}
		if nr.start != next || nr.upto <= nr.start {
			return fmt.Errorf("%w: the index's run of entries %d to %d follows one that ends at %d", log.ErrFork, nr.start, nr.upto, next)
		}
		next = nr.upto
		for i := 0; i < len(nr.filter); i += slotBytes {
			blobs = append(blobs, nr.filter[i:i+slotBytes])
		}
	}
	if need := (first + len(blobs) + 63) / 64; need > f.stride {
		f.grow(max(need, f.stride+f.stride/4+1))
	}
	// Sixteen words (a cache line of each blob) at a time.
	for w0 := 0; w0 < f.blocks*8; w0 += 16 { // word w%8 of block w/8
		for i, blob := range blobs {
			s := first + i
			col, bit := s/64, uint64(1)<<(s%64)
			for w := w0; w < min(w0+16, f.blocks*8); w++ {
				row := f.sliced[w*32*f.stride:]
				for v := binary.LittleEndian.Uint32(blob[4*w:]); v != 0; v &= v - 1 {
					row[bits.TrailingZeros32(v)*f.stride+col] |= bit
				}
			}
		}
	}
	for _, nr := range runs {
		r := storedRun{start: nr.start, upto: nr.upto, slot: len(f.slotRun), slots: len(nr.filter) / slotBytes}
		for range r.slots {
			f.slotRun = append(f.slotRun, int32(len(f.runs)))
		}
		f.runs = append(f.runs, r)
	}
	return nil
}

// grow makes room for stride*64 slots.
func (f *runFilters) grow(stride int) {
	rows := f.blocks * 8 * 32
	sliced := make([]uint64, rows*stride)
	if f.stride > 0 {
		for row := range rows {
			copy(sliced[row*stride:], f.sliced[row*f.stride:(row+1)*f.stride])
		}
	}
	f.sliced, f.stride = sliced, stride
}

// rows are the rows of sliced of h's eight bits.
func (f *runFilters) rows(h uint64) [8]int {
	b, bit := probe(h, f.blocks)
	var rows [8]int
	for w := range rows {
		rows[w] = (b*8+w)*32 + int(bit[w])
	}
	return rows
}

// mayHold appends to dst the start of every run whose filter may hold h,
// in ascending order.
func (f *runFilters) mayHold(dst []uint64, h uint64) []uint64 {
	rows := f.rows(h)
	f.mu.RLock()
	defer f.mu.RUnlock()
	cols := (len(f.slotRun) + 63) / 64
	var r [8][]uint64
	for w := range r {
		r[w] = f.sliced[rows[w]*f.stride : rows[w]*f.stride+cols]
	}
	last := -1
	for c := range cols {
		acc := r[0][c] & r[1][c] & r[2][c] & r[3][c] & r[4][c] & r[5][c] & r[6][c] & r[7][c]
		if n := len(f.slotRun) - c*64; n < 64 {
			acc &= 1<<n - 1 // slots not added yet have no bits
		}
		for ; acc != 0; acc &= acc - 1 {
			if run := int(f.slotRun[c*64+bits.TrailingZeros64(acc)]); run != last {
				dst = append(dst, f.runs[run].start)
				last = run
			}
		}
	}
	return dst
}

// runOf returns the run that holds entry idx's row, if any.
func (f *runFilters) runOf(idx uint64) (storedRun, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].upto > idx })
	if i == len(f.runs) {
		return storedRun{}, false
	}
	return f.runs[i], true
}

// holds reports whether the filter of run r may hold h.
func (f *runFilters) holds(r storedRun, h uint64) bool {
	rows := f.rows(h)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := r.slot; s < r.slot+r.slots; s++ {
		all := true
		for _, row := range rows {
			all = all && f.sliced[row*f.stride+s/64]&(1<<(s%64)) != 0
		}
		if all {
			return true
		}
	}
	return false
}

// bytes is the memory the filters take.
func (f *runFilters) bytes() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return 8 * len(f.sliced)
}

// runIndex names the tables of an index stored in runs.
type runIndex struct {
	runs, rows string
	// keys reads the keys of a run, in key order.
	keys func(ctx context.Context, q dbQuerier, k filterKey, run uint64) ([]uint64, error)
}

// dbQuerier is a *sql.Tx or *sql.DB.
type dbQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	idRuns = runIndex{runs: "id_runs", rows: "ids", keys: func(ctx context.Context, q dbQuerier, k filterKey, run uint64) ([]uint64, error) {
		rows, err := q.QueryContext(ctx, `SELECT kind, id FROM ids WHERE run = ? ORDER BY kind, id`, int64(run))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []uint64
		for rows.Next() {
			var e log.EntryID
			if err := rows.Scan(&e.Kind, &e.ID); err != nil {
				return nil, err
			}
			out = append(out, k.id(e))
		}
		return out, rows.Err()
	}}
	hashRuns = runIndex{runs: "hash_runs", rows: "leaf_hashes", keys: func(ctx context.Context, q dbQuerier, k filterKey, run uint64) ([]uint64, error) {
		rows, err := q.QueryContext(ctx, `SELECT prefix FROM leaf_hashes WHERE run = ? ORDER BY prefix, idx`, int64(run))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []uint64
		for rows.Next() {
			var p int64
			if err := rows.Scan(&p); err != nil {
				return nil, err
			}
			out = append(out, k.hash(p))
		}
		return out, rows.Err()
	}}
)

// readFilterKey reads the salt and slot size of the filters.
func readFilterKey(ctx context.Context, q dbQuerier) (filterKey, int, error) {
	var (
		salt   []byte
		blocks int64
		k      filterKey
	)
	if err := q.QueryRowContext(ctx, `SELECT salt, blocks FROM run_filters WHERE id = 1`).Scan(&salt, &blocks); err != nil {
		return k, 0, unavailable("read the filters' salt", err)
	}
	if len(salt) != len(k.salt) || blocks < 1 || blocks > 1<<20 {
		return k, 0, fmt.Errorf("%w: the filters' salt holds %d bytes and their slots %d blocks", log.ErrFork, len(salt), blocks)
	}
	copy(k.salt[:], salt)
	return k, int(blocks), nil
}

// loadRuns reads the runs of an index and their filters; the filter of a
// run that has none stored is built from its rows (see persistFilters).
func loadRuns(ctx context.Context, q dbQuerier, ix runIndex, k filterKey, blocks int) (*runFilters, error) {
	f := newRunFilters(k, blocks)
	type stored struct {
		run, upto int64
		filter    []byte
	}
	rows, err := q.QueryContext(ctx, `SELECT run, upto, filter FROM `+ix.runs+` ORDER BY run`)
	if err != nil {
		return nil, unavailable("read the runs of "+ix.rows, err)
	}
	var runs []stored
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.run, &s.upto, &s.filter); err != nil {
			rows.Close()
			return nil, unavailable("read the runs of "+ix.rows, err)
		}
		runs = append(runs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, unavailable("read the runs of "+ix.rows, err)
	}
	all := make([]newRun, 0, len(runs))
	for _, s := range runs {
		if s.run < 0 || s.upto < 0 {
			return nil, fmt.Errorf("%w: %s holds the run of entries %d to %d", log.ErrFork, ix.runs, s.run, s.upto)
		}
		if s.filter == nil {
			keys, err := ix.keys(ctx, q, k, uint64(s.run))
			if err != nil {
				return nil, unavailable("read the run of "+ix.rows+" at entry "+fmt.Sprint(s.run), err)
			}
			s.filter = runBlob(keys, blocks)
		}
		all = append(all, newRun{start: uint64(s.run), upto: uint64(s.upto), filter: s.filter})
	}
	if err := f.addRuns(all); err != nil {
		return nil, fmt.Errorf("%s: %w", ix.runs, err)
	}
	return f, nil
}

// persistFilters builds and stores the filter of every run that has none
// (the runs of a log migrated from version 3), a few runs a transaction.
// On a log without runs it sets the slots' size for merges of h rows.
func persistFilters(ctx context.Context, db *sql.DB, h uint64) (int, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM id_runs) + (SELECT count(*) FROM hash_runs)`).Scan(&n); err != nil {
		return 0, unavailable("count the index runs", err)
	}
	k, blocks, err := readFilterKey(ctx, db)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		// Written only when it changes: a log opened as it is writes
		// nothing here.
		if blocks != blocksFor(h) {
			if _, err := db.ExecContext(ctx, `UPDATE run_filters SET blocks = ? WHERE id = 1`, blocksFor(h)); err != nil {
				return 0, unavailable("size the filters", err)
			}
		}
		return 0, nil
	}
	built := 0
	for _, ix := range []runIndex{idRuns, hashRuns} {
		for {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return built, unavailable("begin a transaction", err)
			}
			runs, err := nullRuns(ctx, tx, ix, 16)
			if err == nil && len(runs) == 0 {
				_ = tx.Rollback()
				break
			}
			for _, run := range runs {
				var keys []uint64
				if keys, err = ix.keys(ctx, tx, k, run); err != nil {
					break
				}
				if _, err = tx.ExecContext(ctx, `UPDATE `+ix.runs+` SET filter = ? WHERE run = ?`, runBlob(keys, blocks), int64(run)); err != nil {
					break
				}
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				_ = tx.Rollback()
				return built, unavailable("build the filters of "+ix.rows, err)
			}
			built += len(runs)
		}
	}
	return built, nil
}

// nullRuns returns up to n runs of an index without a stored filter.
func nullRuns(ctx context.Context, q dbQuerier, ix runIndex, n int) ([]uint64, error) {
	rows, err := q.QueryContext(ctx, `SELECT run FROM `+ix.runs+` WHERE filter IS NULL ORDER BY run LIMIT ?`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var r int64
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, uint64(r))
	}
	return out, rows.Err()
}
