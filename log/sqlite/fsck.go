package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// CheckResult summarises a successful Check.
type CheckResult struct {
	// Size is the latest checkpoint's tree size: the entries checked.
	Size uint64
	// Root is the latest checkpoint's root hash.
	Root [32]byte
	// Checkpoints is the number of stored checkpoints, all verified.
	Checkpoints int
	// Tiles is the number of stored hash tiles, all compared.
	Tiles int
}

// checkChunk is how many entries Check parses in parallel at a time.
const checkChunk = 1024

// parseAll parses leaves into parsed and errs (same indices), on every
// available core.
func parseAll(leaves [][]byte, parsed []*log.ParsedEntry, errs []error) {
	workers := min(runtime.GOMAXPROCS(0), max(len(leaves)/64, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(leaves); i += workers {
				parsed[i], errs[i] = log.ParseEntry(leaves[i])
			}
		}()
	}
	wg.Wait()
}

// checkProgressEvery is how many entries Check replays between two calls
// of its progress function.
const checkProgressEvery = 1 << 14

// Check verifies a whole log database offline, opening the file at path
// read-only: SQLite's own quick_check; the latest checkpoint's signature
// with v (the log's note verifier key, whose name is the origin) and every
// other stored checkpoint's; every entry, rehashed into the tree in index
// order and parsed as an entry; every stored hash tile against the
// rehashed tree, with no tile stored that the tree does not have; the
// root at every stored checkpoint's size against that checkpoint; and the
// id, sequence and leaf-hash indexes against the entries they must point
// at, with no extra rows (the id and leaf-hash indexes cover a prefix of
// the entries: a running log holds the newest ones' rows in memory, and
// no id after that prefix repeats); and the search index: the rows of
// every full range, byte for byte the rows its entries' postings make (a
// row that does not decode is named corrupt; otherwise the first posting
// missing or extra is named), search_indexed at their end, and no row of
// the last range (a running log holds those in memory), or, while the
// last full range is being merged, search_indexed at its first entry and
// a part of its rows that the merge writes first (a prefix in key order,
// not all of them). progress, when not nil, is called with the
// number of entries checked so far and the number to check (the latest
// checkpoint's size), now and then and at the end.
//
// The error names the first problem found (the entry index, the tile or
// the checkpoint size); problems with the content wrap log.ErrFork.
// Check is meant for a stopped log, but it reads in one transaction, so it
// also checks a consistent snapshot of a running one.
func Check(ctx context.Context, path string, v note.Verifier, progress func(done, total uint64)) (CheckResult, error) {
	if v == nil {
		return CheckResult{}, errors.New("failed to check the log: no verifier key")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return CheckResult{}, fmt.Errorf("failed to check the log %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return CheckResult{}, fmt.Errorf("failed to check the log: %s does not exist", path)
		}
		return CheckResult{}, fmt.Errorf("failed to check the log %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"mode":          {"ro"},
		"_query_only":   {"1"},
		"_busy_timeout": {"5000"},
		"_txlock":       {"deferred"},
	}))
	if err != nil {
		return CheckResult{}, fmt.Errorf("failed to open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return CheckResult{}, fmt.Errorf("failed to open %s: %w", path, err)
	}
	defer func() { _ = tx.Rollback() }()
	c := &fsckState{ctx: ctx, tx: tx, v: v, progress: progress}
	res, err := c.run()
	if err != nil {
		return CheckResult{}, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// fsckState holds the state of one Check.
type fsckState struct {
	ctx      context.Context
	tx       *sql.Tx
	v        note.Verifier
	progress func(done, total uint64)

	// cps are the stored checkpoints not yet reached by the replay,
	// ascending; latest is the last one.
	cps    []log.Checkpoint
	latest log.Checkpoint

	// open[k] collects the hashes of the tile being filled on tile level
	// k; openIdx[k] is its index.
	open    [][]byte
	openIdx []uint64
	tiles   int
	tileErr error

	lookupID, lookupSeq, lookupHash, lookupRow, fieldRows *sql.Stmt
	// idRuns and hashRuns are the runs of the id and leaf-hash indexes
	// (see runFilters): the entries after the last run have no rows (see
	// pendingIDs, pendingHashes); unindexed are their ids.
	idRuns, hashRuns *runFilters
	unindexed        map[log.EntryID]uint64
	runsBuf          []uint64
	// searchRows counts the rows of search_postings the entries need,
	// and timeKeys are the keys of their time rows.
	searchRows uint64
	timeKeys   map[int64]bool
	// indexed is how many entries the search index covers.
	indexed uint64
	// merging is whether the range [indexed, indexed+1<<rangeBits) is
	// being merged (searchMerge): a prefix of its rows in key order is
	// stored, not all of them.
	merging bool
	// fields and times are the postings (packPosting) of the entries of
	// the range being read, checked against the stored rows at its end.
	fields, times []uint64
}

func (c *fsckState) run() (CheckResult, error) {
	if err := c.schema(); err != nil {
		return CheckResult{}, err
	}
	if err := c.checkpoints(); err != nil {
		return CheckResult{}, err
	}
	if len(c.cps) == 0 {
		return CheckResult{}, c.empty()
	}
	size := c.latest.Size
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = c.tx.PrepareContext(c.ctx, q)
		return st
	}
	c.lookupID = prep(`SELECT idx, allow FROM ids WHERE run = ? AND kind = ? AND id = ?`)
	c.lookupSeq = prep(`SELECT idx FROM sequences WHERE submitter = ? AND sequence = ?`)
	c.lookupHash = prep(`SELECT count(*) FROM leaf_hashes WHERE run = ? AND prefix = ? AND idx = ?`)
	c.lookupRow = prep(`SELECT list FROM search_postings WHERE key = ?`)
	c.fieldRows = prep(`SELECT key, list FROM search_postings WHERE key >= ? AND key < ? ORDER BY key`)
	if err != nil {
		return CheckResult{}, fmt.Errorf("failed to prepare the index lookups: %w", err)
	}
	defer closeAll(c.lookupID, c.lookupSeq, c.lookupHash, c.lookupRow, c.fieldRows)
	c.timeKeys = make(map[int64]bool)
	var runs snapshot
	if err := loadAllRuns(c.ctx, c.tx, &runs); err != nil {
		return CheckResult{}, fmt.Errorf("failed to read the index runs: %w", err)
	}
	c.idRuns, c.hashRuns, c.unindexed = runs.idRuns, runs.hashRuns, make(map[log.EntryID]uint64)
	if c.idRuns.next() > size || c.hashRuns.next() > size {
		return CheckResult{}, fmt.Errorf("%w: the index runs cover entries up to %d (ids) and %d (leaf hashes), the log has %d", log.ErrFork, c.idRuns.next(), c.hashRuns.next(), size)
	}
	if err := c.tx.QueryRowContext(c.ctx, sqlIndexedSize).Scan(&c.indexed); err != nil {
		return CheckResult{}, fmt.Errorf("failed to read the search index size: %w", err)
	}
	// Before the entries: a log in the layout of an older version names
	// what to do rather than its first posting out of place.
	full := indexedFloor(size)
	c.merging = full >= 1<<rangeBits && c.indexed == full-1<<rangeBits
	if c.indexed != full && !c.merging {
		return CheckResult{}, fmt.Errorf("%w: the search index covers %d entries, the full ranges of %d entries of a log of %d are %d, or a range less while the last is written (opening the log for writing brings the index to this layout)",
			log.ErrFork, c.indexed, 1<<rangeBits, size, full)
	}

	rng := (&compact.RangeFactory{Hash: hashChildren}).NewEmptyRange(0)
	nextCP := 0
	// A checkpoint of size 0 is the empty tree's.
	for nextCP < len(c.cps) && c.cps[nextCP].Size == 0 {
		if c.cps[nextCP].Hash != log.EmptyRoot {
			return CheckResult{}, fmt.Errorf("%w: the checkpoint of size 0 does not have the empty tree's root", log.ErrFork)
		}
		nextCP++
	}
	rows, err := c.tx.QueryContext(c.ctx, `SELECT idx, leaf FROM entries ORDER BY idx`)
	if err != nil {
		return CheckResult{}, fmt.Errorf("failed to read entries: %w", err)
	}
	defer rows.Close()
	var n, sequences uint64
	// Entries are read in index order and parsed in parallel, a chunk at a
	// time (parsing dominates the cost); the tree and the indexes are then
	// checked in index order, so the first problem is the one reported.
	var (
		leaves = make([][]byte, 0, checkChunk)
		parsed = make([]*log.ParsedEntry, checkChunk)
		errs   = make([]error, checkChunk)
	)
	flush := func() error {
		parseAll(leaves, parsed, errs)
		for i, leaf := range leaves {
			lh := log.LeafHash(leaf)
			if err := rng.Append(lh[:], c.visit); err != nil {
				return fmt.Errorf("failed to hash entry %d into the tree: %w", n, err)
			}
			if c.tileErr != nil {
				return fmt.Errorf("entry %d: %w", n, c.tileErr)
			}
			if errs[i] != nil {
				return fmt.Errorf("%w: entry %d is not a valid entry: %w", log.ErrFork, n, errs[i])
			}
			seq, err := c.indexes(n, parsed[i], lh)
			if err != nil {
				return err
			}
			if err := c.searchIndex(n, leaf); err != nil {
				return err
			}
			if seq {
				sequences++
			}
			n++
			for nextCP < len(c.cps) && c.cps[nextCP].Size == n {
				if root := rootHash(rng); root != c.cps[nextCP].Hash {
					return fmt.Errorf("%w: the entries' root hash at size %d is %x, the checkpoint of size %d says %x",
						log.ErrFork, n, root, n, c.cps[nextCP].Hash)
				}
				nextCP++
			}
			if n%checkProgressEvery == 0 {
				if c.progress != nil {
					c.progress(n, size)
				}
				if err := c.ctx.Err(); err != nil {
					return fmt.Errorf("failed to check the log: %w", err)
				}
			}
		}
		leaves = leaves[:0]
		return nil
	}
	for rows.Next() {
		var (
			idx  int64
			leaf []byte
		)
		if err := rows.Scan(&idx, &leaf); err != nil {
			return CheckResult{}, fmt.Errorf("failed to read entry %d: %w", n, err)
		}
		next := n + uint64(len(leaves))
		if idx < 0 || uint64(idx) != next {
			if err := flush(); err != nil {
				return CheckResult{}, err
			}
			return CheckResult{}, fmt.Errorf("%w: entry %d is missing (the next stored entry is %d)", log.ErrFork, next, idx)
		}
		if next >= size {
			if err := flush(); err != nil {
				return CheckResult{}, err
			}
			return CheckResult{}, fmt.Errorf("%w: entry %d is stored beyond the latest checkpoint's size %d", log.ErrFork, next, size)
		}
		leaves = append(leaves, leaf)
		if len(leaves) == checkChunk {
			if err := flush(); err != nil {
				return CheckResult{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return CheckResult{}, err
	}
	if err := rows.Err(); err != nil {
		return CheckResult{}, fmt.Errorf("failed to read entries after entry %d: %w", n, err)
	}
	if n != size {
		return CheckResult{}, fmt.Errorf("%w: entry %d is missing: the latest checkpoint has size %d", log.ErrFork, n, size)
	}
	if c.progress != nil && n%checkProgressEvery != 0 {
		c.progress(n, size)
	}
	// The partial tiles of the right edge.
	for level := range c.open {
		if len(c.open[level]) > 0 {
			if err := c.compareTile(tileKey{level: uint(level), index: c.openIdx[level]}, c.open[level]); err != nil {
				return CheckResult{}, err
			}
		}
	}
	var stored int
	if err := c.tx.QueryRowContext(c.ctx, sqlCountTiles).Scan(&stored); err != nil {
		return CheckResult{}, fmt.Errorf("failed to count tiles: %w", err)
	}
	if stored != c.tiles {
		return CheckResult{}, fmt.Errorf("%w: %d tiles are stored, the tree of size %d has %d", log.ErrFork, stored, size, c.tiles)
	}
	if err := c.searchBeyond(); err != nil {
		return CheckResult{}, err
	}
	// Every entry of a run has its row there: more rows are rows outside
	// the log.
	for _, t := range []struct {
		table string
		want  uint64
	}{{"ids", c.idRuns.next()}, {"leaf_hashes", c.hashRuns.next()}, {"sequences", sequences}, {"search_postings", c.searchRows}} {
		var got uint64
		if err := c.tx.QueryRowContext(c.ctx, "SELECT count(*) FROM "+t.table).Scan(&got); err != nil {
			return CheckResult{}, fmt.Errorf("failed to count the rows of %s: %w", t.table, err)
		}
		if got != t.want {
			return CheckResult{}, fmt.Errorf("%w: the %s index holds %d rows, the entries need %d", log.ErrFork, t.table, got, t.want)
		}
	}
	return CheckResult{Size: size, Root: c.latest.Hash, Checkpoints: len(c.cps), Tiles: c.tiles}, nil
}

// searchIndex records the search postings of entry n when it is in a
// full range the index covers, or in the range being merged, and checks
// the range's rows at its last entry (checkRange). The postings of the
// entries after the full ranges are held in memory by a running log, not
// stored.
func (c *fsckState) searchIndex(n uint64, leaf []byte) error {
	merging := c.merging && n >= c.indexed && n < c.indexed+1<<rangeBits
	if n >= c.indexed && !merging {
		return nil
	}
	s, err := log.Summarize(leaf)
	if err != nil {
		return fmt.Errorf("%w: entry %d: %w", log.ErrFork, n, err)
	}
	for _, t := range s.FieldTerms() {
		c.fields = append(c.fields, packPosting(t, n))
	}
	for _, t := range s.TimeTerms() {
		c.times = append(c.times, packPosting(t, n))
	}
	if (n+1)&rangeMask != 0 {
		return nil
	}
	first := n + 1 - 1<<rangeBits
	slices.Sort(c.fields)
	slices.Sort(c.times)
	err = c.checkRange(first, rangeRows(first, c.fields, c.times))
	c.fields, c.times = c.fields[:0], c.times[:0]
	return err
}

// checkRange checks the stored rows of the range that begins at first
// against want, the rows its entries need (rangeRows, in key order):
// every one of them stored, byte for byte, and no other row of the
// range's buckets; or, for the range being merged, a part of them that
// the merge writes first, and not all of them.
func (c *fsckState) checkRange(first uint64, want []postingRow) error {
	rng := first >> rangeBits
	stored := make([][]byte, len(want))
	present := make([]bool, len(want))
	for i, w := range want {
		if w.key >= 0 {
			break
		}
		c.timeKeys[w.key] = true
		var list []byte
		err := c.lookupRow.QueryRowContext(c.ctx, w.key).Scan(&list)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("failed to read the search index's rows of entries %d to %d: %w", first, first+rangeMask, err)
		}
		stored[i], present[i] = list, err == nil
	}
	rows, err := c.fieldRows.QueryContext(c.ctx, fieldKey(rng, 0), fieldKey(rng+1, 0))
	if err != nil {
		return fmt.Errorf("failed to read the search index's rows of entries %d to %d: %w", first, first+rangeMask, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key  int64
			list []byte
		)
		if err := rows.Scan(&key, &list); err != nil {
			return fmt.Errorf("failed to read the search index's rows of entries %d to %d: %w", first, first+rangeMask, err)
		}
		i, ok := slices.BinarySearchFunc(want, key, func(r postingRow, k int64) int { return cmp.Compare(r.key, k) })
		if !ok {
			bucket := uint64(key) & (1<<bucketBits - 1)
			got, err := decodeBucket(list, bucket)
			if err != nil {
				return fmt.Errorf("%w: the search index's row of entries %d to %d, bucket %d, is corrupt: %w", log.ErrFork, first, first+rangeMask, bucket, err)
			}
			if len(got) == 0 {
				return fmt.Errorf("%w: the search index holds an empty row of entries %d to %d, bucket %d", log.ErrFork, first, first+rangeMask, bucket)
			}
			return fmt.Errorf("%w: the search index holds a posting of entry %d (term %d) that the entry does not have", log.ErrFork, first+got[0]&rangeMask, int64(got[0]>>rangeBits))
		}
		stored[i], present[i] = list, true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to read the search index's rows of entries %d to %d: %w", first, first+rangeMask, err)
	}
	merging := c.merging && first == c.indexed
	prefix := 0
	for prefix < len(want) && present[prefix] {
		prefix++
	}
	for i, w := range want {
		if !present[i] {
			if !merging {
				return c.missing(first, w, nil)
			}
			continue
		}
		if merging && i > prefix {
			return fmt.Errorf("%w: the search index holds a row of entries %d to %d (%s) of the range being written, but not all those before it in key order", log.ErrFork, first, first+rangeMask, rowName(w.key))
		}
		if !bytes.Equal(stored[i], w.list) {
			return c.missing(first, w, stored[i])
		}
	}
	if merging {
		if len(want) > 0 && prefix == len(want) {
			return fmt.Errorf("%w: the search index holds every posting of entries %d to %d, but covers %d entries", log.ErrFork, first, first+rangeMask, c.indexed)
		}
		c.searchRows += uint64(prefix)
		return nil
	}
	c.searchRows += uint64(len(want))
	return nil
}

// rowName names the row of search_postings of key within its range.
func rowName(key int64) string {
	if key < 0 {
		return fmt.Sprintf("time term %d", (key-timeKeyBase)>>timeRangeBits)
	}
	return fmt.Sprintf("bucket %d", uint64(key)&(1<<bucketBits-1))
}

// missing returns the error of the range's row w (the row the entries
// need) stored as got (nil when absent): the row is corrupt, or the first
// posting it lacks or holds beyond w, or it is not in its encoding.
func (c *fsckState) missing(first uint64, w postingRow, got []byte) error {
	decode := func(list []byte) ([]uint64, error) {
		if w.key >= 0 {
			return decodeBucket(list, uint64(w.key)&(1<<bucketBits-1))
		}
		offs, err := decodeList(nil, list)
		term := log.Term((w.key - timeKeyBase) >> timeRangeBits)
		out := make([]uint64, len(offs))
		for i, off := range offs {
			out[i] = packPosting(term, uint64(off))
		}
		return out, err
	}
	want, err := decode(w.list)
	if err != nil {
		// Unreachable: the row is encoded here.
		return fmt.Errorf("failed to decode the search postings of entries %d to %d: %w", first, first+rangeMask, err)
	}
	var have []uint64
	if got != nil {
		if have, err = decode(got); err != nil {
			return fmt.Errorf("%w: the search index's row of entries %d to %d (%s) is corrupt: %w", log.ErrFork, first, first+rangeMask, rowName(w.key), err)
		}
	}
	for _, p := range want {
		if _, ok := slices.BinarySearch(have, p); !ok {
			return fmt.Errorf("%w: entry %d is missing from the search index (term %d)", log.ErrFork, first+p&rangeMask, int64(p>>rangeBits))
		}
	}
	for _, p := range have {
		if _, ok := slices.BinarySearch(want, p); !ok {
			return fmt.Errorf("%w: the search index holds a posting of entry %d (term %d) that the entry does not have", log.ErrFork, first+p&rangeMask, int64(p>>rangeBits))
		}
	}
	return fmt.Errorf("%w: the search index's row of entries %d to %d (%s) holds the right postings, but not in their encoding", log.ErrFork, first, first+rangeMask, rowName(w.key))
}

// searchBeyond checks that search_postings has no row past the ranges
// the index covers (or the range being merged): no field row of a later
// range, no time row but those of the checked ranges.
func (c *fsckState) searchBeyond() error {
	end := c.indexed
	if c.merging {
		end += 1 << rangeBits
	}
	var key int64
	err := c.tx.QueryRowContext(c.ctx, `SELECT key FROM search_postings WHERE key >= ? ORDER BY key LIMIT 1`, fieldKey(end>>rangeBits, 0)).Scan(&key)
	if err == nil {
		first := uint64(key) >> bucketBits << rangeBits
		return fmt.Errorf("%w: the search index holds a row of entries %d to %d, past the %d entries it covers", log.ErrFork, first, first+rangeMask, end)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("failed to read the search index: %w", err)
	}
	rows, err := c.tx.QueryContext(c.ctx, `SELECT key FROM search_postings WHERE key < 0 ORDER BY key`)
	if err != nil {
		return fmt.Errorf("failed to read the search index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&key); err != nil {
			return fmt.Errorf("failed to read the search index: %w", err)
		}
		if !c.timeKeys[key] {
			first := uint64(key-timeKeyBase) & (1<<timeRangeBits - 1) << rangeBits
			return fmt.Errorf("%w: the search index holds a row of time term %d for entries %d to %d, whose entries do not have it", log.ErrFork, (key-timeKeyBase)>>timeRangeBits, first, first+rangeMask)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to read the search index: %w", err)
	}
	return nil
}

// schema runs SQLite's quick_check and checks the schema version.
func (c *fsckState) schema() error {
	rows, err := c.tx.QueryContext(c.ctx, `PRAGMA quick_check`)
	if err != nil {
		return fmt.Errorf("failed to run SQLite's quick_check: %w", err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return fmt.Errorf("failed to run SQLite's quick_check: %w", err)
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to run SQLite's quick_check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: SQLite's quick_check reports: %s", log.ErrFork, strings.Join(problems, "; "))
	}
	names, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		return fmt.Errorf("failed to list migrations: %w", err)
	}
	var version int
	if err := c.tx.QueryRowContext(c.ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("failed to read the schema version: %w", err)
	}
	if version != len(names) {
		return fmt.Errorf("the schema version is %d, this program checks version %d", version, len(names))
	}
	return nil
}

// checkpoints reads and verifies every stored checkpoint.
func (c *fsckState) checkpoints() error {
	rows, err := c.tx.QueryContext(c.ctx, `SELECT size, note FROM checkpoints ORDER BY size`)
	if err != nil {
		return fmt.Errorf("failed to read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			size int64
			text []byte
		)
		if err := rows.Scan(&size, &text); err != nil {
			return fmt.Errorf("failed to read checkpoints: %w", err)
		}
		cp, err := log.OpenCheckpoint(text, c.v)
		if err != nil {
			return fmt.Errorf("%w: the checkpoint stored for size %d does not verify with the key %s: %w", log.ErrFork, size, c.v.Name(), err)
		}
		if size < 0 || cp.Size != uint64(size) {
			return fmt.Errorf("%w: the checkpoint stored for size %d is for size %d", log.ErrFork, size, cp.Size)
		}
		c.cps = append(c.cps, cp)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("failed to read checkpoints: %w", err)
	}
	if len(c.cps) > 0 {
		c.latest = c.cps[len(c.cps)-1]
	}
	return nil
}

// empty checks a log without a checkpoint: it must hold nothing.
func (c *fsckState) empty() error {
	for _, table := range []string{"entries", "tiles", "ids", "sequences", "leaf_hashes", "id_runs", "hash_runs"} {
		var n int64
		if err := c.tx.QueryRowContext(c.ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return fmt.Errorf("failed to count the rows of %s: %w", table, err)
		}
		if n != 0 {
			return fmt.Errorf("%w: the log has no checkpoint but %s holds %d rows", log.ErrFork, table, n)
		}
	}
	return nil
}

// visit collects the node hashes on tile levels, as Append stores them,
// and compares every tile that fills up with the stored one.
func (c *fsckState) visit(id compact.NodeID, hash []byte) {
	if id.Level%tileHeight != 0 || c.tileErr != nil {
		return
	}
	level := int(id.Level / tileHeight)
	for len(c.open) <= level {
		c.open = append(c.open, make([]byte, 0, fullTileBytes))
		c.openIdx = append(c.openIdx, 0)
	}
	k := tileKey{level: uint(level), index: id.Index / tileWidth}
	if len(c.open[level]) == 0 {
		c.openIdx[level] = k.index
	}
	if c.openIdx[level] != k.index || len(c.open[level]) != int(id.Index%tileWidth)*hashSize {
		c.tileErr = fmt.Errorf("node %d/%d does not follow the hashes of tile %v", id.Level, id.Index, k)
		return
	}
	c.open[level] = append(c.open[level], hash...)
	if len(c.open[level]) == fullTileBytes {
		c.tileErr = c.compareTile(k, c.open[level])
		c.open[level] = c.open[level][:0]
	}
}

// compareTile compares the stored tile k with the rehashed one.
func (c *fsckState) compareTile(k tileKey, want []byte) error {
	c.tiles++
	var got []byte
	err := c.tx.QueryRowContext(c.ctx, sqlTile, int64(k.level), int64(k.index)).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: tile %v is missing", log.ErrFork, k)
	}
	if err != nil {
		return fmt.Errorf("failed to read tile %v: %w", k, err)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%w: tile %v holds %d hashes, the entries make %d", log.ErrFork, k, len(got)/hashSize, len(want)/hashSize)
	}
	if !bytes.Equal(got, want) {
		for i := 0; i < len(want); i += hashSize {
			if !bytes.Equal(got[i:i+hashSize], want[i:i+hashSize]) {
				return fmt.Errorf("%w: hash %d of tile %v (tree level %d, node %d) does not match the entries",
					log.ErrFork, i/hashSize, k, k.level*tileHeight, k.index*tileWidth+uint64(i/hashSize))
			}
		}
	}
	return nil
}

// indexes checks the parsed entry at index n: its rows its rows in the id,
// sequence and leaf-hash indexes. It reports whether the entry has a
// sequence row.
func (c *fsckState) indexes(n uint64, p *log.ParsedEntry, lh [32]byte) (bool, error) {
	allow := p.Kind == log.KindDecision && p.Decision.Outcome == log.OutcomeAllow
	var (
		idx      int64
		rowAllow bool
	)
	k := log.EntryID{Kind: p.Kind, ID: p.ID}
	key := c.idRuns.key.id(k)
	own, indexed := c.idRuns.runOf(n)
	if indexed {
		// Its row, in its run, held by the run's filter.
		err := c.lookupID.QueryRowContext(c.ctx, int64(own.start), int64(p.Kind), p.ID).Scan(&idx, &rowAllow)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("%w: entry %d (%v %q) is missing from the id index's run of entries %d to %d", log.ErrFork, n, p.Kind, p.ID, own.start, own.upto)
		case err != nil:
			return false, fmt.Errorf("failed to look up entry %d in the id index: %w", n, err)
		case uint64(idx) != n:
			return false, fmt.Errorf("%w: the id index points %v %q at entry %d, it is entry %d", log.ErrFork, p.Kind, p.ID, idx, n)
		case rowAllow != allow:
			return false, fmt.Errorf("%w: the id index has allow=%v for entry %d, the entry says %v", log.ErrFork, rowAllow, n, allow)
		case !c.idRuns.holds(own, key):
			return false, fmt.Errorf("%w: the filter of the id index's run of entries %d to %d does not hold entry %d (%v %q)", log.ErrFork, own.start, own.upto, n, p.Kind, p.ID)
		}
	} else {
		// After the runs: the rows held in memory by a running log.
		if m, ok := c.unindexed[k]; ok {
			return false, fmt.Errorf("%w: entry %d repeats the %v of entry %d", log.ErrFork, n, k, m)
		}
		c.unindexed[k] = n
	}
	// (kind, id) is not a key of the index: no other run holds the id.
	c.runsBuf = c.idRuns.mayHold(c.runsBuf[:0], key)
	for _, run := range c.runsBuf {
		if indexed && run == own.start {
			continue
		}
		err := c.lookupID.QueryRowContext(c.ctx, int64(run), int64(p.Kind), p.ID).Scan(&idx, &rowAllow)
		if err == nil {
			return false, fmt.Errorf("%w: entry %d repeats the %v of entry %d", log.ErrFork, max(n, uint64(idx)), k, min(n, uint64(idx)))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("failed to look up entry %d in the id index: %w", n, err)
		}
	}
	if own, ok := c.hashRuns.runOf(n); ok {
		var count int
		if err := c.lookupHash.QueryRowContext(c.ctx, int64(own.start), hashPrefix(lh), int64(n)).Scan(&count); err != nil {
			return false, fmt.Errorf("failed to look up entry %d in the leaf-hash index: %w", n, err)
		}
		if count != 1 {
			return false, fmt.Errorf("%w: entry %d is missing from the leaf-hash index's run of entries %d to %d", log.ErrFork, n, own.start, own.upto)
		}
		if !c.hashRuns.holds(own, c.hashRuns.key.hash(hashPrefix(lh))) {
			return false, fmt.Errorf("%w: the filter of the leaf-hash index's run of entries %d to %d does not hold entry %d", log.ErrFork, own.start, own.upto, n)
		}
	}
	if p.Kind != log.KindDecision || p.Decision.Sequence == 0 {
		return false, nil
	}
	err := c.lookupSeq.QueryRowContext(c.ctx, p.Submitter, int64(p.Decision.Sequence)).Scan(&idx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%w: entry %d (sequence %d of %q) is missing from the sequence index", log.ErrFork, n, p.Decision.Sequence, p.Submitter)
	case err != nil:
		return false, fmt.Errorf("failed to look up entry %d in the sequence index: %w", n, err)
	case uint64(idx) != n:
		return false, fmt.Errorf("%w: the sequence index points sequence %d of %q at entry %d, it is entry %d", log.ErrFork, p.Decision.Sequence, p.Submitter, idx, n)
	}
	return true, nil
}
