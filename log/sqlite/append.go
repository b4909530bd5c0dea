package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/govlog/govlog/log"
)

// Append implements log.Backend. It runs on the sequencer goroutine (one
// at a time; writeMu also excludes Ready's probe and Close).
//
// The whole batch is one write transaction: entries, index rows, the tiles
// it touches (each written once) and the signed checkpoint of the new tree
// head. In-memory state changes only after COMMIT succeeded. On any error
// the transaction is rolled back, the in-memory state is left untouched and
// marked stale, and the next Append (or Ready) first reloads it from disk:
// an error after COMMIT was issued may or may not have committed, and the
// reload re-verifies whatever is there. A checkpoint signed for a batch
// whose commit failed is discarded without leaving this method; the next
// Append signs again for whatever it commits.
func (b *Backend) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	for i, e := range batch {
		if e == nil || e.Submission == nil || len(e.Leaf) == 0 || e.ID == "" || !e.Kind.Valid() {
			return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to append: entry %d of the batch is incomplete", log.ErrUnavailable, i)
		}
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	if b.closed {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: storage is closed", log.ErrUnavailable)
	}
	recovering := b.failure.Load() != nil
	if recovering {
		if err := b.reloadLocked(ctx, false); err != nil {
			return nil, log.Checkpoint{}, fmt.Errorf("failed to recover from the previous failure: %w", err)
		}
	}
	before := b.snap.Load()
	results, cp, err := b.appendLocked(ctx, batch, sign)
	if err != nil {
		b.failure.Store(&failureErr{err})
		b.logger.Error("failed to append a batch", "entries", len(batch), "err", err)
		return nil, log.Checkpoint{}, err
	}
	if recovering && b.snap.Load() != before {
		// A batch committed: storage takes writes again. (One that wrote
		// nothing, such as identical resubmissions, proves nothing.)
		b.failure.Store(nil)
	}
	return results, cp, nil
}

func (b *Backend) appendLocked(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	old := b.snap.Load()
	if len(batch) == 0 && old.has {
		return nil, old.cp, nil
	}
	if old.size()+uint64(len(batch)) > maxEntries {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: the log holds %d entries, and this store holds at most %d (the keys of its search index)", log.ErrUnavailable, old.size(), uint64(maxEntries))
	}
	tx, err := b.wdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return nil, log.Checkpoint{}, unavailable("begin the batch transaction", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after COMMIT

	// Only this process writes; should another have appended since this
	// one loaded its state, refuse rather than sign on a stale tree. The
	// reload before the next Append picks up (and verifies) what it wrote.
	var stored sql.NullInt64
	if err := tx.QueryRowContext(ctx, sqlLatestSize).Scan(&stored); err != nil {
		return nil, log.Checkpoint{}, unavailable("read the latest checkpoint size", err)
	}
	if stored.Valid != old.has || (old.has && uint64(stored.Int64) != old.size()) {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: the latest stored checkpoint changed under this process (size %d, expected %d): is another process writing to the log?", log.ErrUnavailable, stored.Int64, old.size())
	}

	// What the log already holds of the ids and sequences the batch
	// names, and the rule book's verdict on each entry.
	facts, indices, err := prefetch(ctx, tx, log.NamesOf(batch), old.ids, old.idRuns, &b.keys)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	verdicts := log.Judge(batch, facts)

	// The tree grows in a copy of the compact range; its visitor collects
	// every new node hash on a tile level into that tile, starting from
	// the current partial tile.
	rng, err := b.factory.NewRange(0, b.rng.End(), slices.Clone(b.rng.Hashes()))
	if err != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to copy the compact range: %w", log.ErrUnavailable, err)
	}
	// The prover keeps every node too, for the receipts.
	prover, err := log.NewProver(rng)
	if err != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	touched := make(map[tileKey][]byte)
	var order []tileKey
	var visitErr error
	visit := func(id compact.NodeID, hash []byte) {
		prover.Visit(id, hash)
		if id.Level%tileHeight != 0 || visitErr != nil {
			return
		}
		k := tileKey{level: id.Level / tileHeight, index: id.Index / tileWidth}
		buf, ok := touched[k]
		if !ok {
			buf = make([]byte, 0, fullTileBytes)
			if t := old.edgeTile(k); t != nil {
				buf = append(buf, t.hashes()...)
			}
			order = append(order, k)
		}
		if pos := int(id.Index % tileWidth); len(buf) != pos*hashSize {
			visitErr = fmt.Errorf("tile %v holds %d hashes, node %d/%d goes at %d", k, len(buf)/hashSize, id.Level, id.Index, pos)
			return
		}
		touched[k] = append(buf, hash...)
	}

	results := make([]log.AppendResult, len(batch))
	rows := newRows{noSearch: b.hooks.noSearchIndex}
	var hashes [][32]byte // of the appended entries, for leaf_hashes
	size := old.size()
	for i, v := range verdicts {
		switch v.Fate {
		case log.FateRefused:
			results[i] = log.AppendResult{Err: v.Err}
		case log.FateExisting:
			if v.Of >= 0 {
				results[i] = results[v.Of]
			} else {
				id := batch[i].EntryID()
				results[i] = log.AppendResult{Index: indices[id], Leaf: facts.IDs[id].Leaf}
			}
			results[i].Existing = true
		case log.FateAppend:
			lh := v.LeafHash
			if err := rows.add(batch[i], v.Leaf, lh, size); err != nil {
				return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
			}
			hashes = append(hashes, lh)
			if err := rng.Append(lh[:], visit); err != nil {
				return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to extend the tree: %w", log.ErrUnavailable, err)
			}
			results[i] = log.AppendResult{Index: size, Leaf: v.Leaf, LeafHash: verdicts[i].LeafHash[:]}
			size++
		}
	}
	if visitErr != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to build tiles: %w", log.ErrUnavailable, visitErr)
	}
	if size == old.size() && old.has {
		// Nothing new: no signature, nothing written.
		return results, old.cp, nil
	}

	// The leaf_hashes and ids rows wait in memory until the batch crosses a
	// merge point (mergeCrossed) or twice the merge size is held.
	h := b.hashMerge
	merge := mergeCrossed(h, old.size(), size) || size-min(old.pending.from, old.ids.from) >= 2*h
	// A merge writes each index's rows as one run, with its filter.
	var idRun, hashRun newRun
	if merge {
		var hashKeys []uint64
		rows.leafHashes, hashKeys = old.pending.rows(old.size(), hashes, old.hashRuns.key)
		hashRun = newRun{start: old.pending.from, upto: size, filter: runBlob(hashKeys, old.hashRuns.blocks)}
		ids := old.ids.sorted(rows.ids)
		rows.idRows = idArgs(old.ids.from, ids)
		idKeys := make([]uint64, len(ids))
		for i, r := range ids {
			idKeys[i] = old.idRuns.key.id(r.EntryID)
		}
		idRun = newRun{start: old.ids.from, upto: size, filter: runBlob(idKeys, old.idRuns.blocks)}
	}
	if err := rows.insert(ctx, tx); err != nil {
		return nil, log.Checkpoint{}, err
	}
	if merge {
		for _, r := range []struct {
			ix  runIndex
			run newRun
		}{{idRuns, idRun}, {hashRuns, hashRun}} {
			if r.run.start == r.run.upto {
				continue // nothing held back (a log that had every row)
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR FAIL INTO `+r.ix.runs+` (run, upto, filter) VALUES (?, ?, ?)`, int64(r.run.start), int64(r.run.upto), r.run.filter); err != nil {
				return nil, log.Checkpoint{}, unavailable("insert into "+r.ix.runs, err)
			}
		}
	}
	if err := rows.mergeSearch(ctx, tx, old.tail, old.merge); err != nil {
		return nil, log.Checkpoint{}, err
	}
	if err := putAuthorizations(ctx, tx, facts.Authorizations); err != nil {
		return nil, log.Checkpoint{}, err
	}
	putTile := tx.StmtContext(ctx, b.w.putTile)
	for _, k := range order {
		if _, err := putTile.ExecContext(ctx, int64(k.level), int64(k.index), touched[k]); err != nil {
			return nil, log.Checkpoint{}, unavailable(fmt.Sprintf("write tile %v", k), err)
		}
	}
	// The receipts, from the nodes the batch computed, before anything
	// is acknowledged.
	for i, v := range verdicts {
		switch {
		case v.Fate == log.FateAppend:
			if results[i].Proof, err = prover.Proof(results[i].Index, size); err != nil {
				return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
			}
		case v.Fate == log.FateExisting && v.Of >= 0:
			results[i].Proof = results[v.Of].Proof
		}
	}

	root := rootHash(rng)
	cp, err := sign(size, root)
	if err != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to sign the checkpoint of size %d: %w", log.ErrUnavailable, size, err)
	}
	if parsed, _, err := log.ParseCheckpoint(cp.Note, log.CheckpointRules{}); err != nil || parsed.Size != size || parsed.Hash != root || cp.Size != size || cp.Hash != root {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: the signer returned a checkpoint that is not for size %d and root %x (%w)", log.ErrUnavailable, size, root, err)
	}
	if _, err := tx.StmtContext(ctx, b.w.insertCheckpoint).ExecContext(ctx, int64(size), cp.Note); err != nil {
		return nil, log.Checkpoint{}, unavailable(fmt.Sprintf("store the checkpoint of size %d", size), err)
	}
	if b.hooks.beforeCommit != nil {
		if err := b.hooks.beforeCommit(); err != nil {
			return nil, log.Checkpoint{}, unavailable("commit the batch", err)
		}
	}
	if err := b.file.check(); err != nil {
		return nil, log.Checkpoint{}, err
	}
	// The durability point: COMMIT returns after the WAL is fsynced
	// (synchronous=FULL). Before it, a crash loses the whole batch; after
	// it, the whole batch and its checkpoint survive.
	if err := tx.Commit(); err != nil {
		return nil, log.Checkpoint{}, unavailable("commit the batch", err)
	}
	if b.hooks.afterCommit != nil {
		if err := b.hooks.afterCommit(); err != nil {
			return nil, log.Checkpoint{}, unavailable("commit the batch", err)
		}
	}

	// Durable: publish. Readers see the new entries from here on.
	next := &snapshot{has: true, cp: cp, pending: old.pending, ids: old.ids, idRuns: old.idRuns, hashRuns: old.hashRuns}
	next.tail, next.merge = rows.publishSearch(old.tail, old.merge)
	if merge {
		next.pending, next.ids = newPendingHashes(size), newPendingIDs(size, int(h))
		// Committed: a failure here is a broken invariant, and the next
		// Append reloads the runs from disk.
		for _, r := range []struct {
			f   *runFilters
			run newRun
		}{{old.idRuns, idRun}, {old.hashRuns, hashRun}} {
			if r.run.start == r.run.upto {
				continue
			}
			if err := r.f.add(r.run.start, r.run.upto, r.run.filter); err != nil {
				return nil, log.Checkpoint{}, err
			}
		}
	} else {
		old.pending.add(old.size(), hashes)
		old.ids.add(old.size(), rows.ids)
	}
	for level, pos := range rightEdge(size) {
		k := tileKey{level: uint(level), index: pos.index}
		e := edgeTile{index: pos.index}
		if pos.width > 0 {
			e.t = old.edgeTile(k)
			if h, ok := touched[k]; ok {
				e.t = extendTile(e.t, h)
			}
		}
		next.edge = append(next.edge, e)
	}
	for _, k := range order {
		if h := touched[k]; len(h) == fullTileBytes {
			b.cache.put(k, extendTile(old.edgeTile(k), h))
		}
	}
	b.rng = rng
	b.snap.Store(next)
	return results, cp, nil
}

// chunk is the most rows one prefetch query or bulk insert statement
// names: a few hundred bound parameters at most. It is a power of two.
const chunk = 128

// A batch's lookups and inserts name a varying number of rows. So that the
// writer connection's statement cache (_stmt_cache_size) holds every
// statement it runs, they come in a few shapes only: 1, 2, 4, … chunk
// rows. A lookup of n names is padded to the next shape by repeating its
// last name (a name twice in an IN list finds its row once); an insert of n
// rows is split into shapes by the bits of n (41 = 32 + 8 + 1).
var (
	sqlLookupIDs            = shapes(`SELECT i.id, i.idx, i.allow, e.leaf FROM ids AS i JOIN entries AS e ON e.idx = i.idx WHERE i.run = ? AND i.kind = ? AND i.id IN (`, `?`, `)`)
	sqlLeavesAt             = shapes(`SELECT idx, leaf FROM entries WHERE idx IN (`, `?`, `)`)
	sqlLookupAuthorizations = shapes(`SELECT `+authorizationColumns+` FROM authorizations WHERE decision_id IN (`, `?`, `)`)
	sqlLookupSequences      = shapes(`SELECT submitter, sequence FROM sequences WHERE (submitter, sequence) IN (VALUES `, `(?, ?)`, `)`)
	sqlInsertEntries        = shapes(`INSERT OR FAIL INTO entries (idx, leaf) VALUES `, `(?, ?)`, ``)
	sqlInsertIDs            = shapes(`INSERT OR FAIL INTO ids (run, kind, id, idx, allow) VALUES `, `(?, ?, ?, ?, ?)`, ``)
	sqlInsertSequences      = shapes(`INSERT OR FAIL INTO sequences (submitter, sequence, idx) VALUES `, `(?, ?, ?)`, ``)
	sqlInsertLeafs          = shapes(`INSERT OR FAIL INTO leaf_hashes (run, prefix, idx) VALUES `, `(?, ?, ?)`, ``)
	// An authorization's uses and revocation change as claims and
	// revocations are accepted.
	sqlPutAuthorizations = shapes(`INSERT OR FAIL INTO authorizations (`+authorizationColumns+`) VALUES `,
		`(?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		` ON CONFLICT (decision_id) DO UPDATE SET uses = excluded.uses, revoked = excluded.revoked, entries = excluded.entries`)
)

// shapes returns the statement naming 1<<k rows at index k, k = 0 … log2(chunk).
func shapes(head, row, tail string) []string {
	var out []string
	for n := 1; n <= chunk; n *= 2 {
		out = append(out, head+row+strings.Repeat(", "+row, n-1)+tail)
	}
	return out
}

// shapeUp is the index in shapes of the smallest shape of at least n rows
// (0 < n <= chunk).
func shapeUp(n int) int { return bits.Len(uint(n - 1)) }

// prefetch reads, in a few queries, what the log holds of the names of a
// batch (log.NamesOf): the facts the rule book judges it by, and the index
// of each id found. An id is looked up in the pending rows first (see
// pendingIDs), then in each run of the ids table whose filter may hold it
// (see runFilters): none for an id never stored, but for a false positive.
func prefetch(ctx context.Context, tx *sql.Tx, names log.Names, pending *pendingIDs, runs *runFilters, keys *keyCache) (*log.Facts, map[log.EntryID]uint64, error) {
	facts := &log.Facts{IDs: make(map[log.EntryID]log.Stored, len(names.IDs)), Sequences: make(map[log.SequenceKey]bool),
		Authorizations: make(map[string]*log.Authorization, len(names.Authorizations))}
	stored := make(map[log.EntryID]uint64, len(names.IDs))
	type runKind struct {
		run  uint64
		kind log.Kind
	}
	byRun := make(map[runKind][]any)
	held := make(map[int64]idRow)
	var in []uint64
	for _, k := range names.IDs {
		if k.Kind == log.KindKey {
			if c, ok := keys.get(k.ID); ok {
				facts.IDs[k], stored[k] = c.Stored, c.idx
				continue
			}
		}
		if r, ok := pending.lookup(k, math.MaxUint64); ok {
			held[int64(r.idx)] = idRow{k, r}
			continue
		}
		in = runs.mayHold(in[:0], runs.key.id(k))
		for _, run := range in {
			byRun[runKind{run, k.Kind}] = append(byRun[runKind{run, k.Kind}], k.ID)
		}
	}
	args := make([]any, 0, 2*chunk+2)
	for rk, ids := range byRun {
		kind := rk.kind
		for len(ids) > 0 {
			n := min(len(ids), chunk)
			shape := shapeUp(n)
			args = append(append(args[:0], int64(rk.run), int64(kind)), ids[:n]...)
			for range 1<<shape - n {
				args = append(args, ids[n-1])
			}
			rows, err := tx.QueryContext(ctx, sqlLookupIDs[shape], args...)
			if err != nil {
				return nil, nil, unavailable("look up ids", err)
			}
			for rows.Next() {
				var (
					id  string
					idx int64
					s   log.Stored
				)
				if err := rows.Scan(&id, &idx, &s.Allow, &s.Leaf); err != nil {
					rows.Close()
					return nil, nil, unavailable("look up ids", err)
				}
				k := log.EntryID{Kind: kind, ID: id}
				facts.IDs[k] = s
				stored[k] = uint64(idx)
				if kind == log.KindKey {
					keys.put(id, cachedKey{s, uint64(idx)})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, nil, unavailable("look up ids", err)
			}
			ids = ids[n:]
		}
	}
	// The leaves of the ids found in the pending rows.
	idxs := make([]any, 0, len(held))
	for idx := range held {
		idxs = append(idxs, idx)
	}
	for len(idxs) > 0 {
		n := min(len(idxs), chunk)
		shape := shapeUp(n)
		args = append(args[:0], idxs[:n]...)
		for range 1<<shape - n {
			args = append(args, idxs[n-1])
		}
		rows, err := tx.QueryContext(ctx, sqlLeavesAt[shape], args...)
		if err != nil {
			return nil, nil, unavailable("read the entries of ids", err)
		}
		for rows.Next() {
			var (
				idx  int64
				leaf []byte
			)
			if err := rows.Scan(&idx, &leaf); err != nil {
				rows.Close()
				return nil, nil, unavailable("read the entries of ids", err)
			}
			r := held[idx]
			facts.IDs[r.EntryID] = log.Stored{Leaf: leaf, Allow: r.allow}
			stored[r.EntryID] = r.idx
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, unavailable("read the entries of ids", err)
		}
		idxs = idxs[n:]
	}
	for _, r := range held {
		if _, ok := facts.IDs[r.EntryID]; !ok {
			return nil, nil, fmt.Errorf("%w: entry %d (%v) is missing", log.ErrUnavailable, r.idx, r.EntryID)
		}
	}
	for ids := names.Authorizations; len(ids) > 0; {
		n := min(len(ids), chunk)
		shape := shapeUp(n)
		args = args[:0]
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		for range 1<<shape - n {
			args = append(args, ids[n-1])
		}
		rows, err := tx.QueryContext(ctx, sqlLookupAuthorizations[shape], args...)
		if err != nil {
			return nil, nil, unavailable("look up authorizations", err)
		}
		for rows.Next() {
			id, a, err := scanAuthorization(rows)
			if err != nil {
				rows.Close()
				return nil, nil, unavailable("look up authorizations", err)
			}
			facts.Authorizations[id] = a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, unavailable("look up authorizations", err)
		}
		ids = ids[n:]
	}
	// An allow without a row was never claimed nor revoked: it has the
	// authorization it started with, which the pending ids hold for the
	// allows appended since Open.
	for _, id := range names.Authorizations {
		if _, ok := facts.Authorizations[id]; ok {
			continue
		}
		if r, ok := pending.lookup(log.EntryID{Kind: log.KindDecision, ID: id}, math.MaxUint64); ok && r.auth != nil {
			a := *r.auth
			facts.Authorizations[id] = &a
		}
	}
	for seqs := names.Sequences; len(seqs) > 0; {
		n := min(len(seqs), chunk)
		shape := shapeUp(n)
		args = args[:0]
		for _, k := range seqs[:n] {
			// Sequences are at most 2^53-1; the cast keeps any uint64 distinct.
			args = append(args, k.Submitter, int64(k.Sequence))
		}
		for range 1<<shape - n {
			args = append(args, args[len(args)-2], args[len(args)-1])
		}
		rows, err := tx.QueryContext(ctx, sqlLookupSequences[shape], args...)
		if err != nil {
			return nil, nil, unavailable("look up sequences", err)
		}
		for rows.Next() {
			var (
				k   log.SequenceKey
				seq int64
			)
			if err := rows.Scan(&k.Submitter, &seq); err != nil {
				rows.Close()
				return nil, nil, unavailable("look up sequences", err)
			}
			k.Sequence = uint64(seq)
			facts.Sequences[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, unavailable("look up sequences", err)
		}
		seqs = seqs[n:]
	}
	return facts, stored, nil
}

// authorizationColumns are the columns scanAuthorization reads.
const authorizationColumns = `decision_id, decided_at, authorized_until, max_executions, executor, leaf_hash, uses, revoked, entries`

// scanAuthorization reads one authorizations row.
func scanAuthorization(rows interface{ Scan(...any) error }) (string, *log.Authorization, error) {
	var (
		id, entries    string
		decided, until int64
		hash           []byte
		a              log.Authorization
	)
	if err := rows.Scan(&id, &decided, &until, &a.MaxExecutions, &a.Executor, &hash, &a.Uses, &a.Revoked, &entries); err != nil {
		return "", nil, err
	}
	if len(hash) != len(a.LeafHash) {
		return "", nil, fmt.Errorf("the authorization of %q has a leaf hash of %d bytes", id, len(hash))
	}
	a.DecidedAt, a.AuthorizedUntil, a.LeafHash = time.Unix(0, decided).UTC(), time.Unix(until, 0).UTC(), [32]byte(hash)
	if err := a.DecodeEntries(entries); err != nil {
		return "", nil, err
	}
	return id, &a, nil
}

// putAuthorizations writes every authorization the rule book changed
// (Dirty), in key order, in statements of 1, 2, 4, … chunk rows (see
// shapes).
//
// An allow's authorization as it starts (no claim, not revoked) is not
// written: it is exactly what the rule book and Log.Authorization read
// from the decision's leaf when there is no row, so its row would only
// cost the group commit a page of this table keyed by decision id (about
// one page per allow, written to the WAL and synced). The row is written
// with the batch that first changes it.
func putAuthorizations(ctx context.Context, tx *sql.Tx, auths map[string]*log.Authorization) error {
	ids := make([]string, 0, len(auths))
	for id, a := range auths {
		if a.Dirty && !fresh(a) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	args := make([]any, 0, 9*min(len(ids), chunk))
	for len(ids) > 0 {
		shape := min(bits.Len(uint(len(ids)))-1, len(sqlPutAuthorizations)-1)
		n := 1 << shape
		args = args[:0]
		for _, id := range ids[:n] {
			a := auths[id]
			args = append(args, id, a.DecidedAt.UnixNano(), a.AuthorizedUntil.Unix(), a.MaxExecutions, a.Executor, a.LeafHash[:], a.Uses, a.Revoked, a.EncodeEntries())
		}
		if _, err := tx.ExecContext(ctx, sqlPutAuthorizations[shape], args...); err != nil {
			return unavailable(fmt.Sprintf("write the authorizations of %q and %d more", ids[0], n-1), err)
		}
		ids = ids[n:]
	}
	return nil
}

// keyCache holds the key entries (log.KindKey) prefetch found in the
// stored runs of the ids index, by kid: a logged key entry never changes,
// and every batch with an artifact names the key that signed it, which on
// a log past its first runs is a query a batch. Only the writer uses it.
type keyCache struct {
	m map[string]cachedKey
}

// cachedKey is a key entry as prefetch found it, and its index.
type cachedKey struct {
	log.Stored
	idx uint64
}

// maxCachedKeys bounds keyCache: a log has a key entry per artifact key
// it ever used, a handful.
const maxCachedKeys = 256

func (c *keyCache) get(kid string) (cachedKey, bool) {
	k, ok := c.m[kid]
	return k, ok
}

func (c *keyCache) put(kid string, k cachedKey) {
	if c.m == nil {
		c.m = make(map[string]cachedKey)
	}
	if len(c.m) < maxCachedKeys {
		c.m[kid] = k
	}
}

// fresh reports whether a is an allow's authorization as it starts, the
// one log.Facts derives from the decision's leaf when no row is stored.
// Uses and Entries only grow and Revoked is never cleared, so a stored
// authorization is never fresh again.
func fresh(a *log.Authorization) bool {
	return a.Uses == 0 && !a.Revoked && len(a.Entries) == 0
}

// newRows are the rows of the entries a batch appends, for bulk inserts,
// and the search terms of each (fields[i] and times[i] of entry first+i),
// which go to the search tail (see searchTail).
type newRows struct {
	entries, sequences, leafHashes, idRows []any
	// ids are the entries' ids rows, written (idRows) only when the batch
	// merges the pending ones (see pendingIDs).
	ids           []idRow
	fields, times [][]log.Term
	first, size   int64 // the first entry's index, the tree size after the batch
	noSearch      bool  // testHooks.noSearchIndex
	merged        int   // the rows of the search merge written once the batch commits
}

func (r *newRows) add(e *log.Entry, leaf []byte, leafHash [32]byte, index uint64) error {
	idx := int64(index)
	if len(r.entries) == 0 {
		r.first = idx
	}
	if !r.noSearch {
		fields, times, err := log.EntryTerms(e, leaf)
		if err != nil {
			return fmt.Errorf("failed to index entry %d: %w", index, err)
		}
		r.fields, r.times = append(r.fields, fields), append(r.times, times)
	}
	r.entries = append(r.entries, idx, leaf)
	row := idRow{e.EntryID(), pendingID{idx: index}}
	if e.Kind == log.KindDecision && e.Allow {
		row.allow, row.auth = true, log.NewAuthorization(e, leafHash)
	}
	r.ids = append(r.ids, row)
	if k, ok := e.SequenceKey(); ok {
		r.sequences = append(r.sequences, k.Submitter, int64(k.Sequence), idx)
	}
	r.size = idx + 1
	return nil
}

// insert writes the rows in statements of 1, 2, 4, … chunk rows (see
// shapes).
//
// OR FAIL: a multi-row INSERT with the default conflict resolution
// (ABORT) must be able to undo its own rows, so SQLite keeps a statement
// journal of every page it changes, and spills it to a temporary file
// beyond 64 KiB, which a batch's random-keyed index rows reach at once.
// FAIL keeps no statement journal. A failed INSERT fails the batch, whose
// whole transaction is rolled back, so nothing else changes.
func (r *newRows) insert(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []struct {
		table string
		stmts []string
		n     int
		args  []any
	}{
		{"entries", sqlInsertEntries, 2, r.entries},
		{"ids", sqlInsertIDs, 5, r.idRows},
		{"sequences", sqlInsertSequences, 3, r.sequences},
		{"leaf_hashes", sqlInsertLeafs, 3, r.leafHashes},
	} {
		for args := t.args; len(args) > 0; {
			rows := len(args) / t.n
			shape := min(bits.Len(uint(rows))-1, len(t.stmts)-1) // the largest shape of at most rows
			n := 1 << shape
			if _, err := tx.ExecContext(ctx, t.stmts[shape], args[:n*t.n]...); err != nil {
				return unavailable("insert into "+t.table, err)
			}
			args = args[n*t.n:]
		}
	}
	return nil
}

// mergeSearch writes the batch's share of the search postings (see
// searchMerge): the next slice of the range being merged, m; or, when
// the batch fills one or more ranges, the rest of m and the postings of
// those ranges but the last (only a batch of more than a range has
// such), from tail's entries (the batch follows them) and the batch's,
// moving search_indexed to the last full range's first entry. That range
// is merged by the following commits.
func (r *newRows) mergeSearch(ctx context.Context, tx *sql.Tx, tail *searchTail, m *searchMerge) error {
	if r.noSearch || len(r.fields) == 0 {
		return nil
	}
	full := indexedFloor(uint64(r.size))
	if full <= tail.from {
		if m == nil {
			return nil
		}
		r.merged = m.sliceEnd(len(r.fields))
		if err := m.write(ctx, tx, r.merged); err != nil {
			return unavailable("write the search postings", err)
		}
		return nil
	}
	tail.mu.RLock()
	next := tail.from + tail.n
	tail.mu.RUnlock()
	if next != uint64(r.first) {
		return fmt.Errorf("%w: the search index's last range ends at entry %d, the batch begins at %d", log.ErrUnavailable, next, r.first)
	}
	if m != nil {
		m.load()
		if err := m.write(ctx, tx, len(m.rows)); err != nil {
			return unavailable("write the search postings", err)
		}
	}
	last := full - 1<<rangeBits
	if last == tail.from {
		return nil
	}
	fields, times := tail.postings(int((last - tail.from) >> rangeBits))
	for i := range r.fields {
		idx := uint64(r.first) + uint64(i)
		if idx >= last {
			break
		}
		k := (idx - tail.from) >> rangeBits
		for _, t := range r.fields[i] {
			fields[k] = append(fields[k], packPosting(t, idx))
		}
		for _, t := range r.times[i] {
			times[k] = append(times[k], packPosting(t, idx))
		}
	}
	if err := writeRanges(ctx, tx, tail.from, last, fields, times); err != nil {
		return unavailable("write the search postings", err)
	}
	return nil
}

// publishSearch returns the search tail and merge after the batch
// committed: tail with the batch's entries added and m with the slice
// mergeSearch wrote (nil once it wrote the last); or, when the batch
// filled a range, a new tail of the batch's entries after it, and the
// merge of that range, whose entries are in tail with the batch's
// before it.
func (r *newRows) publishSearch(tail *searchTail, m *searchMerge) (*searchTail, *searchMerge) {
	if r.noSearch || len(r.fields) == 0 {
		return tail, m
	}
	full := indexedFloor(uint64(r.size))
	if full <= tail.from {
		tail.add(uint64(r.first), r.fields, r.times)
		if m != nil {
			if r.merged == len(m.rows) {
				return tail, nil
			}
			m.done = r.merged
		}
		return tail, m
	}
	skip := int(full - uint64(r.first))
	tail.add(uint64(r.first), r.fields[:skip], r.times[:skip])
	next := newSearchTail(full)
	if skip < len(r.fields) {
		next.add(full, r.fields[skip:], r.times[skip:])
	}
	return next, &searchMerge{tail: tail, from: full - 1<<rangeBits}
}

// hashPrefix is the leaf_hashes key of a leaf hash: its first 8 bytes as a
// big-endian signed integer.
func hashPrefix(h [32]byte) int64 {
	return int64(binary.BigEndian.Uint64(h[:8]))
}

// mergeCrossed reports whether a batch that takes the log from size old to
// size new crosses a merge point of the held-back rows (see pendingHashes,
// pendingIDs): k·h + h/2, half a merge size away from the multiples of h,
// which puts it half a search range away from the batches that fill one
// (searchTail) while h is at most a range, so that the two bulk writes never
// make one commit longer together. A merge size above a search range (a
// multiple of it) keeps the offset at half a range, k·h + 8,192: half of h
// would fall on a range's end.
func mergeCrossed(h, old, new uint64) bool {
	d := h - min(h, 1<<rangeBits)/2
	return (new+d)/h > (old+d)/h
}

// newRun is a run a merge writes: the entries [start, upto) and the
// filter of their keys (runBlob).
type newRun struct {
	start, upto uint64
	filter      []byte
}
