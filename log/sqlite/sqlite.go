// Package sqlite is govlog's embedded log storage: a log.Backend in one
// SQLite database file (github.com/mattn/go-sqlite3).
//
// # Durability and concurrency
//
// The database runs in WAL mode with synchronous=FULL. Append runs one
// write transaction per batch on a single writer connection: the entries,
// their index rows, the hash tiles they touch and the signed checkpoint of
// the new tree head are committed together, and COMMIT returns only once
// the write-ahead log is fsynced. A crash before that point loses the whole
// batch (nothing of it was acknowledged); after it, the whole batch
// survives. The database therefore never holds an entry without the
// checkpoint that covers it, nor a checkpoint without its entries.
//
// One process writes a log file. Each Append checks, inside its write
// transaction, that the latest stored checkpoint is still the one it holds
// in memory, and otherwise fails and reloads, so a second writer on the
// same file costs availability, never consistency.
//
// Reads (proofs, entries, lookups) use a separate pool of query-only
// connections; in WAL mode they are never blocked by the writer. Every read
// is bounded by the latest checkpoint held in memory, which Append replaces
// only after COMMIT has succeeded, so readers never see an entry before its
// checkpoint is durable.
//
// # Storage layout
//
// Schema version 5 (PRAGMA user_version; migrations are the embedded
// schema/NNNN_*.sql files, applied in order in one transaction each):
//
//	entries(idx INTEGER PRIMARY KEY, leaf BLOB)
//	    The leaf bytes (the canonical entry) of each index.
//	tiles(level, idx, hashes BLOB) WITHOUT ROWID
//	    RFC 6962 node hashes as C2SP tlog-tiles hash tiles of height 8:
//	    tile (L, N) holds the hashes of the Merkle nodes at tree level 8L,
//	    indices 256N .. 256N+255, 32 bytes each. The tile on the right edge
//	    of a level is partial (fewer than 256 hashes) and grows in place;
//	    a partial tile of width W is the prefix of the full tile, so the
//	    tlog-tiles resource tile/L/N.p/W is served by truncation.
//	ids(run, kind, id, idx, allow) WITHOUT ROWID
//	    The entry index of each decision (kind 1), execution report (2),
//	    revocation (3) and key (4), and whether a decision is an allow,
//	    keyed by (run, kind, id). The rows of the newest entries wait in
//	    memory (see pendingIDs); each merge writes theirs as one run,
//	    run being the first entry of it, in key order within it, at the
//	    end of the B-tree (see runFilters). The runs cover a prefix of
//	    the log; Open reads the ids of the rest from their leaves.
//	    (kind, id) is not a key: that an id is stored once is stood for
//	    by the appends (the rule book looks every id up) and checked by
//	    govlog fsck.
//	id_runs(run, upto, filter), hash_runs(run, upto, filter),
//	run_filters(id, salt, blocks)
//	    The runs of ids and leaf_hashes: the entries [run, upto) and a
//	    split-block Bloom filter of the run's keys, written with the run.
//	    Open reads every filter; a lookup probes only the runs whose
//	    filter may hold its key (about 0.02 false runs a lookup). The
//	    keys are hashed with a per-log salt (run_filters). A log
//	    migrated from version 3 has runs of 16,384 entries, whose filters
//	    the first Open builds.
//	sequences(submitter, sequence, idx) WITHOUT ROWID
//	    Decisions with a non-zero sequence, per submitter.
//	leaf_hashes(run, prefix, idx) WITHOUT ROWID
//	    The first 8 bytes of each RFC 6962 leaf hash, as a big-endian
//	    signed integer, with the index, in runs as ids; LookupHash
//	    confirms a candidate against the full hash in the level-0 tile.
//	    The rows of the newest entries (about Options.HashMerge) are
//	    not written yet: their hashes wait in memory and are written as
//	    one run by the batch that crosses an odd multiple of half of it
//	    (see pendingHashes). Open reads the hashes of the entries after
//	    the last run from the level-0 tiles.
//	checkpoints(size INTEGER PRIMARY KEY, note BLOB)
//	    Every signed checkpoint note, one per committed batch: Covering(i)
//	    is the first one with size > i.
//	probe(id, at)
//	    One row, rewritten by Ready's health probe after a failure.
//	authorizations(decision_id, decided_at, authorized_until,
//	               max_executions, executor, leaf_hash, uses, revoked)
//	    What the rule book needs of each allow (log.Authorization): its
//	    accepted claims (uses) and whether it is revoked, written with the
//	    batch that changes them. An allow never claimed nor revoked has
//	    no row: its authorization is read from its leaf, or, for an allow
//	    appended since Open whose ids row is still held in memory
//	    (pendingIDs), taken from that row, which holds it as the allow
//	    started.
//	search_postings(key INTEGER PRIMARY KEY, list BLOB), search_indexed(id, size)
//	    The search index (log.Searcher): the entries of each term of the
//	    entries' summaries (log.Summary.Terms, a 31-bit hash of a field
//	    and its value), by range of 16,384 indexes, delta-coded in a few
//	    hundred rows a range (schema version 5, postings.go): a field term's in
//	    the row of its range and bucket (256 a range; key rng << 8 |
//	    term >> 23), a group of ~5 bytes for a term of one entry; a time
//	    term's in a row of its own a range (key term << 24 | rng, less
//	    2^56), so a time bucket's rows are together; a list is run-coded,
//	    or a 2,048-byte bitmap for a dense term. About
//	    9 bytes an entry for the load generator's decisions, against
//	    ~136 for the row a posting of version 4 (search_terms), which
//	    the migration to version 5 drops: Open then indexes the full
//	    ranges again from the entries (8-20 s a million entries).
//	    Only full ranges are stored, search_indexed entries: after the
//	    append that fills a range, the following commits write its rows,
//	    in key order, a slice each, and the last moves search_indexed
//	    past it. The postings of the newest entries, those of the last,
//	    partial range and of a range being written, are held in memory
//	    (searchTail); Open finishes a range a crash left half written and
//	    reads the rest from the entries (at most 16,383), so a crash never
//	    leaves an entry unindexed. A log from before version 3 is indexed
//	    by Open.
//
// With 500-byte entries the file takes about 600 bytes an entry: the leaf,
// its 32-byte hash in a tile, and its index rows.
//
// Only complete nodes are stored. Appending a leaf to the compact range
// (github.com/transparency-dev/merkle/compact) reports the leaf hash and
// every node it completes; those at tree levels 0, 8, 16, … are appended
// to their tile. A node at tree level 8k+r (r < 8) is recomputed from the
// 2^r hashes of tree level 8k under it, which lie in one tile of level k.
// Those interior nodes are computed once per tile in memory: when a full
// tile enters the LRU cache, and for the partial tiles of the right edge
// when a batch is published. A proof is then a few tile lookups and the
// rehash of its ephemeral node.
//
// # A worked example
//
// A log of 600 entries holds entries rows 0..599 and four tiles:
//
//	tile 0/0   256 hashes  leaf hashes 0..255              (full)
//	tile 0/1   256 hashes  leaf hashes 256..511            (full)
//	tile 0/2    88 hashes  leaf hashes 512..599            (partial, tile/0/002.p/88)
//	tile 1/0     2 hashes  level-8 nodes 0 and 1, the      (partial, tile/1/000.p/2)
//	                       roots of tiles 0/0 and 0/1
//
// Its root is H(n9,0 ‖ H(n6,8 ‖ H(n4,36 ‖ n3,74))), with n(l,i) the node
// at tree level l, index i, and H(x ‖ y) the RFC 6962 interior hash: n9,0
// is the hash of the two hashes of tile 1/0; n6,8 of hashes 0..63 of tile
// 0/2, n4,36 of its hashes 64..79 and n3,74 of its hashes 80..87. The
// inclusion proof of entry 5 in this tree is n0,4, n1,3, n2,0, n3,1, n4,1,
// n5,1, n6,1 and n7,1 (all from tile 0/0), n8,1 (hash 1 of tile 1/0), and
// the hash of the ephemeral node covering entries 512..599, rehashed from
// n6,8, n4,36 and n3,74 (all from tile 0/2): three tiles, of which the full
// one is cached.
//
// Appending entries 600..855 in one batch rewrites tile 0/2 (now full, 256
// hashes), writes tile 0/3 (88 hashes) and tile 1/0 (3 hashes: the root of
// tile 0/2 is node n8,2), and stores the checkpoint of size 856: one
// transaction.
//
// # Failures
//
// An Append that fails (storage error, failed signature, canceled context)
// rolls back and leaves the in-memory state as it was; its error wraps
// log.ErrUnavailable. The next Append first reloads the state from disk and
// verifies it as Open does, since a failed COMMIT may have committed; until
// a batch commits, Ready probes storage (the reload and a one-row write
// transaction) and reports log.ErrUnavailable while that fails. A batch
// that writes nothing (identical resubmissions) does not count: on a
// read-only file system it succeeds. Recovery needs no operator; a fork
// (log.ErrFork) does.
//
// # Opening
//
// Open creates the schema in a new file. On an existing one it loads the
// latest checkpoint, rebuilds the compact range of its size from the tiles
// (compact.RangeNodes), and fails with an error wrapping log.ErrFork unless
// the range's root is the checkpoint's root hash, the entries table holds
// exactly that many entries, and the leaves of the last level-0 tile hash
// to the stored tile. Open does not verify the checkpoint's signature: the
// log.Log does, with the log's key.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// The SQLite driver, registered as "sqlite3".
	_ "github.com/mattn/go-sqlite3"
	"github.com/transparency-dev/merkle/compact"

	"github.com/govlog/govlog/internal/sqlitemigrate"
	"github.com/govlog/govlog/log"
)

// Options configures a Backend. The zero value of each field selects the
// default named in its comment.
type Options struct {
	// Logger receives operational logs (storage failures, recovery).
	// Default: discard.
	Logger *slog.Logger
	// TileCacheSize is the most full tiles kept in memory for proofs,
	// about 16 KiB each with their interior nodes. Full tiles never
	// change, so the cache is never stale. Default 1024 (16 MiB).
	TileCacheSize int
	// ReadConns is the number of read connections in the pool. Default 4.
	ReadConns int
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (another process, a backup) before failing. Default 5s.
	BusyTimeout time.Duration
	// HashMerge is how many of the newest entries may lack their rows in
	// the leaf-hash and id indexes: their hashes and ids wait in memory
	// (about 160 bytes an entry) and are written in one sorted pass by
	// the batch that crosses HashMerge/2, then every HashMerge entries
	// (half a search range away from the batches that write a range's
	// postings; above a search range, 16,384, the first merge is at
	// 8,192 and HashMerge should be a multiple of 16,384).
	// Larger values write fewer pages per entry on a big log; each merge
	// makes one batch's commit longer. Default DefaultHashMerge (16,384).
	HashMerge int
}

// Defaults of Options.
const (
	DefaultTileCacheSize = 1024
	DefaultReadConns     = 4
	DefaultBusyTimeout   = 5 * time.Second
)

// Backend is a log.Backend in one SQLite database. Create it with Open.
type Backend struct {
	logger  *slog.Logger
	factory *compact.RangeFactory

	// wdb is the writer: exactly one connection, whose transactions all
	// BEGIN IMMEDIATE. Only the holder of writeMu uses it.
	wdb *sql.DB
	// rdb is the pool of query-only read connections, used by any
	// goroutine; r holds its prepared statements.
	rdb *sql.DB
	r   readStmts
	// w holds the writer's prepared statements (on wdb).
	w writeStmts

	// cache holds full tiles; any goroutine.
	cache *tileCache

	// snap is the published state: the latest stored checkpoint and the
	// partial tiles of its tree. The writer (under writeMu) replaces it
	// only after the checkpoint is durable; any goroutine reads it and
	// bounds every read by its size.
	snap atomic.Pointer[snapshot]

	// failure is non-nil after an Append or probe failed and until a
	// reload from disk succeeded. Written under writeMu, read by Ready
	// without it.
	failure atomic.Pointer[failureErr]

	// writeMu is held by Append (the sequencer goroutine), by Ready while it
	// probes storage, and by Close. It guards rng, closed and the writer
	// connection.
	writeMu sync.Mutex
	// rng is the compact range [0, snap.cp.Size): the right edge of the
	// tree, from which the next root is computed. Guarded by writeMu.
	rng    *compact.Range
	closed bool
	// keys are the key entries found in the stored runs (prefetch).
	// Guarded by writeMu.
	keys keyCache

	// hooks are fault-injection points for tests; zero in production.
	hooks testHooks
	// file is the database file opened, checked before every commit.
	file fileIdentity
	// hashMerge is the number of entries whose leaf_hashes rows are held
	// back (DefaultHashMerge; tests lower it).
	hashMerge uint64
}

var _ log.Backend = (*Backend)(nil)

// snapshot is an immutable view of the stored log.
type snapshot struct {
	// has is false until the first checkpoint is stored.
	has bool
	cp  log.Checkpoint
	// edge[k] is the partial tile of tile level k of the tree of size
	// cp.Size, for every level that has a node hash.
	edge []edgeTile
	// pending holds the leaf hashes not yet in leaf_hashes.
	pending *pendingHashes
	// ids holds the ids rows not yet in ids.
	ids *pendingIDs
	// idRuns and hashRuns are the runs of ids and leaf_hashes and their
	// filters (see runFilters); the writer adds a merge's runs.
	idRuns, hashRuns *runFilters
	// tail holds the search postings of the last, partial range, merge
	// (or nil) those of the full range being written to search_postings.
	tail  *searchTail
	merge *searchMerge
}

func (s *snapshot) size() uint64 { return s.cp.Size }

type failureErr struct{ err error }

// testHooks lets tests inject failures around COMMIT.
type testHooks struct {
	// beforeCommit runs just before COMMIT; an error fails the batch,
	// which is rolled back.
	beforeCommit func() error
	// afterCommit runs after a successful COMMIT; an error is reported as
	// a failed COMMIT (which may or may not have committed).
	afterCommit func() error
	// noSearchIndex makes appends write no search postings and searches
	// fail: only for measuring what the index costs
	// (BenchmarkAppendSearchIndex, and govlogd built with the tag
	// govlog_nosearchindex: buildNoSearchIndex).
	noSearchIndex bool
}

//go:embed schema/*.sql
var schemaFS embed.FS

// Open opens the log stored in the SQLite database file at path, creating
// the file and its schema when it does not exist. The file's directory
// must exist. Open verifies the stored tree against the latest checkpoint
// (see the package comment); a mismatch is an error wrapping log.ErrFork.
func Open(ctx context.Context, path string, opts Options) (*Backend, error) {
	if opts.TileCacheSize < 0 || opts.ReadConns < 0 || opts.BusyTimeout < 0 || opts.HashMerge < 0 {
		return nil, errors.New("failed to open log storage: TileCacheSize, ReadConns, BusyTimeout and HashMerge must not be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.TileCacheSize == 0 {
		opts.TileCacheSize = DefaultTileCacheSize
	}
	if opts.ReadConns == 0 {
		opts.ReadConns = DefaultReadConns
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.HashMerge == 0 {
		opts.HashMerge = DefaultHashMerge
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("failed to open log storage %s: its directory does not exist", path)
	}
	if err := sqlitemigrate.Create(abs); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	b := &Backend{
		logger:  opts.Logger,
		factory: &compact.RangeFactory{Hash: hashChildren},
		cache:   newTileCache(opts.TileCacheSize),

		hashMerge: uint64(opts.HashMerge),
		hooks:     testHooks{noSearchIndex: buildNoSearchIndex},
	}
	ok := false
	defer func() {
		if !ok {
			b.closeDBs()
		}
	}()

	// The writer. synchronous=FULL: COMMIT fsyncs the WAL, so a returned
	// COMMIT is durable. journal_mode=WAL is persistent in the file.
	b.wdb, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {busy},
		"_txlock":       {"immediate"},
		// Every statement a batch runs stays prepared (see shapes).
		"_stmt_cache_size": {"128"},
	}))
	if err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	b.wdb.SetMaxOpenConns(1)
	b.wdb.SetMaxIdleConns(1)
	var mode string
	if err := b.wdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("failed to open log storage %s: journal mode is %q, want wal", path, mode)
	}
	if err := b.migrate(ctx); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	t0 := time.Now()
	if n, err := persistFilters(ctx, b.wdb, b.hashMerge); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	} else if n > 0 {
		b.logger.Info("built the filters of the index runs migrated from version 3", "runs", n, "elapsed", time.Since(t0).Round(time.Millisecond))
	}
	if b.file, err = statFile(abs); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	if err := b.w.prepare(ctx, b.wdb); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}

	b.rdb, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"_busy_timeout": {busy},
		"_query_only":   {"1"},
		"_txlock":       {"deferred"},
	}))
	if err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	b.rdb.SetMaxOpenConns(opts.ReadConns)
	b.rdb.SetMaxIdleConns(opts.ReadConns)
	if err := b.r.prepare(ctx, b.rdb); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}

	snap, rng, err := b.load(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	if snap.tail, err = b.reindex(ctx, snap.size()); err != nil {
		return nil, fmt.Errorf("failed to open log storage %s: %w", path, err)
	}
	b.snap.Store(snap)
	b.rng = rng
	ok = true
	b.logger.Info("opened log storage", "path", path, "size", snap.size(), "checkpoint", snap.has)
	if b.hooks.noSearchIndex {
		b.logger.Warn("this build writes no search index and refuses searches: for measurement only")
	}
	return b, nil
}

// dsn is the go-sqlite3 data source name of a file URI with parameters.
func dsn(abs string, params url.Values) string {
	return "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + params.Encode()
}

// migrate brings the schema to the newest version.
func (b *Backend) migrate(ctx context.Context) error {
	return sqlitemigrate.Apply(ctx, b.wdb, schemaFS, func(v int) {
		b.logger.Info("migrated log storage schema", "version", v)
	})
}

// Ready returns nil when Append can be expected to succeed. After a failed
// Append it probes storage (a reload from disk and a small write
// transaction) and returns an error wrapping log.ErrUnavailable while that
// fails; a successful probe clears the failure. While an Append is running
// it reports the last known state without waiting.
func (b *Backend) Ready(ctx context.Context) error {
	if !b.writeMu.TryLock() {
		if f := b.failure.Load(); f != nil {
			return fmt.Errorf("%w: the last append failed: %w", log.ErrUnavailable, f.err)
		}
		return nil
	}
	defer b.writeMu.Unlock()
	if b.closed {
		return fmt.Errorf("%w: storage is closed", log.ErrUnavailable)
	}
	if b.failure.Load() == nil {
		return nil
	}
	if b.file.path != "" {
		if err := checkFreeSpace(b.file.path); err != nil {
			return err
		}
	}
	if err := b.reloadLocked(ctx, true); err != nil {
		return fmt.Errorf("%w: storage is still failing: %w", log.ErrUnavailable, err)
	}
	return nil
}

// Close closes the database. No method may be called after it.
func (b *Backend) Close() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.closeDBs(); err != nil {
		return fmt.Errorf("failed to close log storage: %w", err)
	}
	return nil
}

func (b *Backend) closeDBs() error {
	var errs []error
	errs = append(errs, b.r.close(), b.w.close())
	if b.rdb != nil {
		errs = append(errs, b.rdb.Close())
	}
	if b.wdb != nil {
		// Closing the last connection checkpoints the WAL into the file.
		errs = append(errs, b.wdb.Close())
	}
	return errors.Join(errs...)
}

// unavailable wraps a storage error.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: failed to %s: %w", log.ErrUnavailable, what, err)
}
