package trillian

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/govlog/govlog/log"
)

// The search index of a tree covers its entries [0, size) of its
// govlog_search_indexed row: each of them has all its postings. Appends
// write the postings of the entries their checkpoint is the first to
// cover and, in the same transaction, advance size to the new checkpoint's
// size when it was the previous checkpoint's (sqlAdvanceIndexed). When it
// was not (a log created before the index existed, a backfill not
// finished, or a checkpoint stored by a replica of a version without
// govlog_search_indexed), backfill indexes the entries from size to the
// latest checkpoint, reading their leaves from Trillian. Open runs it
// before it returns; an Append or a Search that finds the index short
// starts it in the background. Search refuses (ErrUnavailable) to answer
// from postings beyond size rather than miss entries.
//
// Backfill is safe with any number of replicas running it and appending:
// a replica holds the named lock backfillLock while it backfills, so the
// others wait instead of doing the same work; each chunk's postings are
// INSERT IGNOREd and size moves forward only over entries whose postings
// are committed (sqlBackfilled); and backfill stops only when size equals
// the latest checkpoint's size read holding the tree's lock, which every
// Append holds from reading the previous checkpoint to its commit: no
// Append is then half-way, and each later one finds size equal to its
// previous checkpoint's and advances it.

// defaultBackfillChunk is how many entries one transaction of backfill
// indexes: four GetLeavesByRange calls, about 8,000 postings (8 an entry
// of BenchmarkBackfill).
const defaultBackfillChunk = 4 * leavesPerCall

// backfillProgress is how often backfill logs its progress.
const backfillProgress = 10 * time.Second

const (
	// sqlIndexedInit creates the row of a tree that has none: nothing is
	// known to be indexed.
	sqlIndexedInit = "INSERT IGNORE INTO govlog_search_indexed (tree_id, size) VALUES (?, 0)"
	// sqlIndexedSizes reads, in one snapshot, the size the index covers
	// and the latest stored checkpoint's.
	sqlIndexedSizes = `SELECT i.size, COALESCE((SELECT MAX(c.size) FROM govlog_checkpoints c WHERE c.tree_id = i.tree_id), 0)
		FROM govlog_search_indexed i WHERE i.tree_id = ?`
	// sqlAdvanceIndexed is the Append's: (new size, tree, previous
	// checkpoint's size).
	sqlAdvanceIndexed = "UPDATE govlog_search_indexed SET size = ? WHERE tree_id = ? AND size = ?"
	// sqlBackfilled is the backfill's, once the postings of [from, to)
	// are written: (to, tree, from, to).
	sqlBackfilled = "UPDATE govlog_search_indexed SET size = ? WHERE tree_id = ? AND size >= ? AND size < ?"
)

// backfillLockName is the MySQL named lock a replica holds while it
// backfills a tree (at most 64 characters: a tree id has at most 19
// digits).
func backfillLockName(tree int64) string {
	return "govlog_search_backfill_" + strconv.FormatInt(tree, 10)
}

// indexedSizes reads the size the search index covers and the latest
// stored checkpoint's size. A tree without a row has nothing indexed.
func (b *Backend) indexedSizes(ctx context.Context, q querier) (indexed, size uint64, err error) {
	err = q.QueryRowContext(ctx, sqlIndexedSizes, b.treeID).Scan(&indexed, &size)
	if errors.Is(err, sql.ErrNoRows) {
		size, err := b.size(ctx)
		return 0, size, err
	}
	if err != nil {
		return 0, 0, unavailable("read the size of the search index", err)
	}
	return indexed, size, nil
}

// sawIndexed records that the search index covers size entries.
func (b *Backend) sawIndexed(size uint64) { raise(&b.indexed, size) }

// searchable fails with ErrUnavailable unless the search index covers the
// entries below end; then it starts a backfill in the background.
func (b *Backend) searchable(ctx context.Context, end uint64) error {
	if b.indexed.Load() >= end {
		return nil
	}
	indexed, size, err := b.indexedSizes(ctx, b.db)
	if err != nil {
		return err
	}
	b.sawIndexed(indexed)
	if indexed >= end {
		return nil
	}
	b.backfillInBackground()
	return fmt.Errorf("%w: the search index covers %d of the log's %d entries; the rest are being indexed, try again later",
		log.ErrUnavailable, indexed, size)
}

// backfill indexes the entries of stored checkpoints the search index
// does not cover yet, a chunk per transaction, and returns once it covers
// the latest checkpoint. Interrupted, it leaves every finished chunk
// indexed, and the next run continues from there.
func (b *Backend) backfill(ctx context.Context) (err error) {
	if _, err := b.db.ExecContext(ctx, sqlIndexedInit, b.treeID); err != nil {
		return unavailable("create the search index's row of the tree", err)
	}
	indexed, size, err := b.indexedSizes(ctx, b.db)
	if err != nil {
		return err
	}
	if indexed >= size {
		b.sawIndexed(indexed)
		return nil
	}
	release, err := b.backfillLock(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	chunk := uint64(defaultBackfillChunk)
	if b.hooks.backfillChunk > 0 {
		chunk = uint64(b.hooks.backfillChunk)
	}
	var (
		start    = time.Now()
		logged   = start
		from     uint64
		done     uint64
		announce = true
	)
	for {
		indexed, size, err = b.indexedSizes(ctx, b.db)
		if err != nil {
			return err
		}
		if indexed >= size {
			// Confirmed under the tree's lock: no Append is between
			// storing a checkpoint and advancing the index's size.
			if indexed, size, err = b.indexedSizesLocked(ctx); err != nil {
				return err
			}
			if indexed >= size {
				break
			}
		}
		if announce {
			from, announce = indexed, false
			b.logger.Info("indexing entries for search", "tree", b.treeID, "from", indexed, "to", size)
		}
		to := min(indexed+chunk, size)
		if err := b.backfillChunk(ctx, indexed, to); err != nil {
			return err
		}
		done += to - indexed
		if h := b.hooks.afterBackfillChunk; h != nil {
			if err := h(to); err != nil {
				return fmt.Errorf("%w: %w", log.ErrUnavailable, err)
			}
		}
		if time.Since(logged) >= backfillProgress {
			logged = time.Now()
			b.logger.Info("indexing entries for search", "tree", b.treeID, "indexed", to, "to", size,
				"entries_per_second", int(float64(done)/time.Since(start).Seconds()))
		}
	}
	b.sawIndexed(indexed)
	if !announce {
		b.logger.Info("indexed entries for search", "tree", b.treeID, "from", from, "to", indexed, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// advanceIndexed runs in the transaction that stores the checkpoint of
// size to after the one of size from: the search index covers to if it
// covered from. It returns the size the index covers once tx commits (0:
// unknown), and whether it is short of to.
func (b *Backend) advanceIndexed(ctx context.Context, tx *sql.Tx, from, to uint64) (indexed uint64, short bool, err error) {
	res, err := tx.ExecContext(ctx, sqlAdvanceIndexed, to, b.treeID, from)
	if err != nil {
		return 0, false, unavailable("record the size of the search index", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, unavailable("record the size of the search index", err)
	}
	if n == 1 {
		return to, false, nil
	}
	// No row changed: the index did not cover from (or to == from).
	return 0, to > from, nil
}

// indexedSizesLocked is indexedSizes holding the tree's lock.
func (b *Backend) indexedSizesLocked(ctx context.Context) (indexed, size uint64, err error) {
	tx, err := b.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, 0, unavailable("begin a transaction", err)
	}
	defer func() { _ = tx.Rollback() }()
	var locked int64
	if err := tx.QueryRowContext(ctx, sqlLockTree, b.treeID).Scan(&locked); err != nil {
		return 0, 0, unavailable(fmt.Sprintf("lock tree %d", b.treeID), err)
	}
	if indexed, size, err = b.indexedSizes(ctx, tx); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, unavailable("commit", err)
	}
	return indexed, size, nil
}

// backfillChunk writes the postings of the covered entries [from, to) and
// advances the index's size over them, in one transaction.
func (b *Backend) backfillChunk(ctx context.Context, from, to uint64) error {
	got, err := b.leaves(ctx, from, to-from)
	if err != nil {
		return err
	}
	leaves := make([][]byte, len(got))
	for i, l := range got {
		leaves[i] = l.GetLeafValue()
	}
	tx, err := b.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return unavailable("begin the search index transaction", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := b.writePostings(ctx, tx, from, leaves); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, sqlBackfilled, to, b.treeID, from, to); err != nil {
		return unavailable("record the size of the search index", err)
	}
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Sprintf("commit the search postings of entries %d to %d", from, to-1), err)
	}
	return nil
}

// backfillLock takes the tree's backfill lock on a connection of its own,
// waiting while another replica holds it; release gives it back.
func (b *Backend) backfillLock(ctx context.Context) (release func() error, err error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, unavailable("connect to the database", err)
	}
	name := backfillLockName(b.treeID)
	for waited := false; ; waited = true {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 5)", name).Scan(&got); err != nil {
			conn.Close()
			return nil, unavailable("take the search index lock", err)
		}
		if got.Valid && got.Int64 == 1 {
			break
		}
		if !waited {
			b.logger.Info("another replica is indexing entries for search; waiting for it", "tree", b.treeID, "lock", name)
		}
	}
	return func() error {
		defer conn.Close()
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", name); err != nil {
			return unavailable("release the search index lock", err)
		}
		return nil
	}, nil
}

// backfillInBackground starts backfill on a goroutine of its own, unless
// one runs already or the Backend is closed.
func (b *Backend) backfillInBackground() {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.bgStopped || b.bgRunning || b.bgCtx == nil {
		return
	}
	b.bgRunning = true
	b.bg.Go(func() {
		err := b.backfill(b.bgCtx)
		if err != nil && b.bgCtx.Err() == nil {
			b.logger.Error("failed to index entries for search; an append or a search will try again", "tree", b.treeID, "err", err)
		}
		b.bgMu.Lock()
		b.bgRunning = false
		b.bgMu.Unlock()
	})
}

// stopBackground cancels the background backfill and waits for it.
func (b *Backend) stopBackground() {
	b.bgMu.Lock()
	b.bgStopped = true
	b.bgMu.Unlock()
	if b.bgCancel != nil {
		b.bgCancel()
	}
	b.bg.Wait()
}
