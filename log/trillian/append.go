package trillian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/govlog/govlog/log"
)

// maxReserveAttempts bounds the retries of a reservation that lost a race
// with another replica.
const maxReserveAttempts = 8

// maxFirstPoll bounds how long a wait for integration goes before it
// first reads Trillian's tree head.
const maxFirstPoll = 100 * time.Millisecond

// maxQueueAttempts bounds the retries of a QueueLeaf that failed with a
// transient storage error.
const maxQueueAttempts = 4

// Multi-row statements are cut at these many rows or bytes of leaves.
const (
	rowsPerStatement  = 500
	bytesPerStatement = 4 << 20
)

// statementRows returns how many of n rows, from the first, one multi-row
// statement takes: at most rowsPerStatement, and no more than
// bytesPerStatement of the rows' sizes (size(i)), but at least one row.
func statementRows(n int, size func(i int) int) int {
	k, total := 0, 0
	for k < n && k < rowsPerStatement {
		s := size(k)
		if k > 0 && total+s > bytesPerStatement {
			break
		}
		total += s
		k++
	}
	return k
}

// Append implements log.Backend; the package comment describes its steps
// and why a crash between any two of them is safe. It runs on the
// sequencer goroutine, one at a time per Backend; other replicas' Appends
// run concurrently on the same tree.
func (b *Backend) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	if b.closed.Load() {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: the Trillian backend is closed", log.ErrUnavailable)
	}
	for i, e := range batch {
		if e == nil || e.Submission == nil || len(e.Leaf) == 0 || e.ID == "" || !e.Kind.Valid() {
			return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to append: entry %d of the batch is incomplete", log.ErrUnavailable, i)
		}
	}
	results, cp, err := b.append(ctx, batch, sign)
	if err != nil {
		b.logger.Error("failed to append a batch", "tree", b.treeID, "entries", len(batch), "err", err)
		return nil, log.Checkpoint{}, err
	}
	b.mu.Lock()
	b.stall = nil // Trillian integrates again
	b.mu.Unlock()
	return results, cp, nil
}

// seqKey is a govlog_sequences key: a submitter's sequence number, the
// submitter by its SHA-256.
type seqKey struct {
	submitter [32]byte
	sequence  uint64
}

func newSeqKey(k log.SequenceKey) seqKey {
	return seqKey{sha256.Sum256([]byte(k.Submitter)), k.Sequence}
}

// idRow is a govlog_ids row, read or about to be inserted.
type idRow struct {
	leaf  []byte
	hash  [32]byte
	allow bool
	// index is the leaf's index, or -1 while unknown (NULL).
	index int64
}

// pending is a leaf this Append queues and waits for.
type pending struct {
	key      log.EntryID
	leaf     []byte
	hash     [32]byte
	identity [32]byte
	// index is the leaf's index in the tree once found, -1 before.
	index int64
	// queued is set once QueueLeaf accepted the leaf; existed when Trillian
	// already held a leaf with this identity.
	queued, existed bool
	// results are the batch positions whose Index is this leaf's index.
	results []int
	// fresh is set for the leaf of an entry this Append reserved.
	fresh bool
	// after are the leaves this one must follow in the tree: its parent or
	// decision, when that is queued by this Append too (its index is not
	// known yet). It is queued only once they are integrated.
	after []*pending
}

// plan is the outcome of the reservation: every result, with its index
// when already known, and the leaves to queue.
type plan struct {
	results []log.AppendResult
	queue   []*pending
	// need is the smallest tree size that covers every index already
	// known of the batch.
	need uint64
}

func (b *Backend) append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	t0 := time.Now()
	p, err := b.reserve(ctx, batch)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	if h := b.hooks.afterReserve; h != nil {
		if err := h(); err != nil {
			return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
		}
	}
	if len(p.queue) == 0 {
		// Nothing to wait for: the latest checkpoint may already cover
		// everything (resubmissions, refusals).
		cp, has, err := b.latest(ctx, b.db)
		if err != nil {
			return nil, log.Checkpoint{}, err
		}
		if has && cp.Size >= p.need {
			return p.results, cp, nil
		}
		cp, _, err = b.storeCheckpoint(ctx, p, nil, nil, sign)
		if err != nil {
			return nil, log.Checkpoint{}, err
		}
		return p.results, cp, nil
	}

	// The tree head before queueing: every leaf queued from here on lands
	// at an index of at least its size.
	t1 := time.Now()
	r0, err := b.root(ctx)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	waves, err := inWaves(p.queue)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	// The compact range of r0 lets this Append prove its own leaves in
	// the tree head it signs (see receipts.go).
	rng := b.catchUp(ctx, r0)
	w := b.newIntegration(p.queue, r0)
	for i, wave := range waves {
		if i > 0 {
			// This wave's leaves name leaves of earlier waves: those must
			// be in the tree first (see queueWave).
			var deps []*pending
			for _, pd := range wave {
				deps = append(deps, pd.after...)
			}
			if err := w.wait(ctx, deps); err != nil {
				return nil, log.Checkpoint{}, err
			}
		}
		if err := b.queueWave(ctx, wave); err != nil {
			return nil, log.Checkpoint{}, err
		}
		if err := w.existing(ctx, wave); err != nil {
			return nil, log.Checkpoint{}, err
		}
	}
	if h := b.hooks.afterQueue; h != nil {
		if err := h(); err != nil {
			return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
		}
	}
	t2 := time.Now()
	if err := w.wait(ctx, p.queue); err != nil {
		return nil, log.Checkpoint{}, err
	}
	r := w.cur
	t3 := time.Now()
	for _, pd := range p.queue {
		for _, i := range pd.results {
			p.results[i].Index = uint64(pd.index)
		}
		p.need = max(p.need, uint64(pd.index)+1)
	}
	// With the compact range of r0 and every leaf since, r is known to
	// extend r0: no consistency proof is needed from r0 to r.
	var (
		prover   *log.Prover
		next     *compact.Range
		extended *root
	)
	if rng != nil && w.complete && !b.hooks.noRange {
		if prover, next = advance(rng, w.leaves, r); prover != nil {
			extended = &r0
		}
	}
	b.setRange(next)
	cp, covers, err := b.storeCheckpoint(ctx, p, &r, extended, sign)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	if err := b.receipts(ctx, p, cp, covers, prover); err != nil {
		return nil, log.Checkpoint{}, err
	}
	b.logger.Debug("appended a batch", "tree", b.treeID, "entries", len(batch), "queued", len(p.queue), "waves", len(waves), "size", cp.Size,
		"reserve", t1.Sub(t0), "queue", t2.Sub(t1), "integrate", t3.Sub(t2), "checkpoint", time.Since(t3))
	return p.results, cp, nil
}

// reserve runs step 1, retrying from scratch when it loses a race with
// another replica (a duplicate key, a deadlock).
func (b *Backend) reserve(ctx context.Context, batch []*log.Entry) (*plan, error) {
	for attempt := 1; ; attempt++ {
		p, err := b.tryReserve(ctx, batch)
		if err == nil {
			return p, nil
		}
		if !isRace(err) || attempt == maxReserveAttempts || ctx.Err() != nil {
			return nil, unavailable("reserve the batch's ids", err)
		}
		b.logger.Debug("lost a race with another replica; reserving again", "tree", b.treeID, "attempt", attempt, "err", err)
	}
}

func (b *Backend) tryReserve(ctx context.Context, batch []*log.Entry) (*plan, error) {
	tx, err := b.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after COMMIT

	// What govlog's tables hold of the batch's names, in a few
	// statements, and the rule book's verdict on each entry.
	names := log.NamesOf(batch)
	// The authorizations first, locked: a replica judging a claim on the
	// same authorization waits here for this transaction.
	auths, err := b.fetchAuthorizations(ctx, tx, names.Authorizations)
	if err != nil {
		return nil, err
	}
	rows, err := b.fetchIDs(ctx, tx, names.IDs)
	if err != nil {
		return nil, err
	}
	facts := &log.Facts{IDs: make(map[log.EntryID]log.Stored, len(rows)), Authorizations: auths}
	for k, row := range rows {
		facts.IDs[k] = log.Stored{Leaf: row.leaf, Allow: row.allow}
	}
	if facts.Sequences, err = b.fetchSequences(ctx, tx, names.Sequences); err != nil {
		return nil, err
	}
	verdicts := log.Judge(batch, facts)

	p := &plan{results: make([]log.AppendResult, len(batch))}
	queued := make(map[log.EntryID]*pending)
	// await queues the leaf of a row whose index is not known yet (once).
	await := func(key log.EntryID, row *idRow) *pending {
		if pd, ok := queued[key]; ok {
			return pd
		}
		pd := &pending{key: key, leaf: row.leaf, hash: row.hash, identity: identityHash(key.Kind, key.ID), index: -1}
		queued[key] = pd
		p.queue = append(p.queue, pd)
		return pd
	}
	var (
		newIDs  []*log.Entry
		newSeqs []seqRow
	)
	for i, v := range verdicts {
		e := batch[i]
		key := e.EntryID()
		switch v.Fate {
		case log.FateRefused:
			p.results[i] = log.AppendResult{Err: v.Err}
			continue
		case log.FateExisting:
			// The row of the original: stored before, or reserved for
			// an entry earlier in the batch.
			row := rows[key]
			p.results[i] = log.AppendResult{Existing: true, Leaf: row.leaf}
			if row.index >= 0 {
				p.results[i].Index = uint64(row.index)
				p.need = max(p.need, uint64(row.index)+1)
			} else {
				pd := await(key, row)
				pd.results = append(pd.results, i)
			}
			continue
		}
		row := &idRow{leaf: v.Leaf, hash: v.LeafHash, allow: e.Kind == log.KindDecision && e.Allow, index: -1}
		rows[key] = row
		pd := await(key, row)
		pd.fresh = true
		// It must follow in the tree the entries it names whose index
		// is not known yet.
		for _, ref := range e.Refs() {
			if r, ok := rows[ref]; ok && r.index < 0 {
				pd.after = append(pd.after, await(ref, r))
			}
		}
		pd.results = append(pd.results, i)
		p.results[i] = log.AppendResult{Leaf: v.Leaf}
		newIDs = append(newIDs, e)
		if k, ok := e.SequenceKey(); ok {
			newSeqs = append(newSeqs, seqRow{newSeqKey(k), e.ID})
		}
	}
	// A row reserved earlier whose index is not known yet (its Append
	// failed, or runs on another replica) is queued again here; the
	// entries it names may be such rows too, and must be queued and
	// integrated first.
	for i := 0; i < len(p.queue); i++ { // p.queue grows in the loop
		pd := p.queue[i]
		if pd.fresh {
			continue // its dependencies were found above
		}
		refs, err := log.LeafRefs(pd.leaf)
		if err != nil {
			return nil, fmt.Errorf("the govlog_ids row of %v holds a leaf that does not parse: %w", pd.key, err)
		}
		for _, ref := range refs {
			row, found := rows[ref]
			if !found {
				more, err := b.fetchIDs(ctx, tx, []log.EntryID{ref})
				if err != nil {
					return nil, err
				}
				if row, found = more[ref]; found {
					rows[ref] = row
				}
			}
			if !found {
				// Reservations are judged, so this is not expected; the
				// audit of the log would report the broken link.
				b.logger.Warn("a reserved entry names an entry that has no row", "tree", b.treeID, "entry", pd.key, "names", ref)
				continue
			}
			if row.index < 0 {
				pd.after = append(pd.after, await(ref, row))
			}
		}
	}
	if err := b.insertIDs(ctx, tx, newIDs, rows); err != nil {
		return nil, err
	}
	if err := b.insertSequences(ctx, tx, newSeqs); err != nil {
		return nil, err
	}
	if err := b.putAuthorizations(ctx, tx, facts.Authorizations); err != nil {
		return nil, err
	}
	// From COMMIT on, the ids are taken (see the package comment).
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return p, nil
}

// fetchAuthorizations reads and locks (FOR UPDATE, in id order) the
// govlog_authorizations rows of ids that exist.
func (b *Backend) fetchAuthorizations(ctx context.Context, tx *sql.Tx, ids []string) (map[string]*log.Authorization, error) {
	out := make(map[string]*log.Authorization, len(ids))
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for len(sorted) > 0 {
		n := min(len(sorted), rowsPerStatement)
		args := []any{b.treeID}
		for _, id := range sorted[:n] {
			args = append(args, id)
		}
		sorted = sorted[n:]
		q := "SELECT " + authorizationColumns + " FROM govlog_authorizations WHERE tree_id = ? AND decision_id IN (" +
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ") ORDER BY decision_id FOR UPDATE"
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			id, a, err := scanAuthorization(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = a
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// authorizationColumns are the columns scanAuthorization reads.
const authorizationColumns = "decision_id, decided_at, authorized_until, max_executions, executor, leaf_hash, uses, revoked, entries"

// scanAuthorization reads one govlog_authorizations row.
func scanAuthorization(rows interface{ Scan(...any) error }) (string, *log.Authorization, error) {
	var (
		id                      string
		decided, until          int64
		executor, hash, entries []byte
		a                       log.Authorization
	)
	if err := rows.Scan(&id, &decided, &until, &a.MaxExecutions, &executor, &hash, &a.Uses, &a.Revoked, &entries); err != nil {
		return "", nil, err
	}
	if len(hash) != len(a.LeafHash) {
		return "", nil, fmt.Errorf("the govlog_authorizations row of %q is corrupt: its leaf hash has %d bytes", id, len(hash))
	}
	a.DecidedAt, a.AuthorizedUntil = time.Unix(0, decided).UTC(), time.Unix(until, 0).UTC()
	a.Executor, a.LeafHash = string(executor), [32]byte(hash)
	if err := a.DecodeEntries(string(entries)); err != nil {
		return "", nil, err
	}
	return id, &a, nil
}

// putAuthorizations writes the authorizations the rule book created or
// changed (Dirty), in id order, in multi-row statements.
func (b *Backend) putAuthorizations(ctx context.Context, tx *sql.Tx, auths map[string]*log.Authorization) error {
	var ids []string
	for id, a := range auths {
		if a.Dirty {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	entries := make([]string, len(ids))
	for i, id := range ids {
		entries[i] = auths[id].EncodeEntries()
	}
	for len(ids) > 0 {
		n := statementRows(len(ids), func(i int) int { return len(ids[i]) + len(auths[ids[i]].Executor) + len(entries[i]) })
		args := make([]any, 0, 10*n)
		for i, id := range ids[:n] {
			a := auths[id]
			args = append(args, b.treeID, id, a.DecidedAt.UnixNano(), a.AuthorizedUntil.Unix(), a.MaxExecutions, []byte(a.Executor), a.LeafHash[:], a.Uses, a.Revoked, []byte(entries[i]))
		}
		q := "INSERT INTO govlog_authorizations (tree_id, " + authorizationColumns + ") VALUES " + placeholders(n, 10) +
			" ON DUPLICATE KEY UPDATE uses = VALUES(uses), revoked = VALUES(revoked), entries = VALUES(entries)"
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		ids, entries = ids[n:], entries[n:]
	}
	return nil
}

// fetchIDs reads the govlog_ids rows of keys that exist.
func (b *Backend) fetchIDs(ctx context.Context, tx *sql.Tx, keys []log.EntryID) (map[log.EntryID]*idRow, error) {
	byKind := make(map[log.Kind][]string)
	for _, k := range keys {
		byKind[k.Kind] = append(byKind[k.Kind], k.ID)
	}
	out := make(map[log.EntryID]*idRow, len(keys))
	for kind, ids := range byKind {
		sort.Strings(ids)
		for len(ids) > 0 {
			n := min(len(ids), rowsPerStatement)
			chunk := ids[:n]
			ids = ids[n:]
			args := []any{b.treeID, uint8(kind)}
			for _, id := range chunk {
				args = append(args, id)
			}
			q := "SELECT id, leaf, leaf_hash, allow, leaf_index FROM govlog_ids WHERE tree_id = ? AND kind = ? AND id IN (" +
				strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var (
					id    string
					hash  []byte
					index sql.NullInt64
					row   idRow
				)
				if err := rows.Scan(&id, &row.leaf, &hash, &row.allow, &index); err != nil {
					rows.Close()
					return nil, err
				}
				if len(hash) != sha256.Size || log.LeafHash(row.leaf) != [32]byte(hash) {
					rows.Close()
					return nil, fmt.Errorf("the govlog_ids row of %v %q is corrupt: its leaf hash does not match its leaf", kind, id)
				}
				row.hash = [32]byte(hash)
				row.index = -1
				if index.Valid {
					row.index = index.Int64
				}
				out[log.EntryID{Kind: kind, ID: id}] = &row
			}
			if err := rows.Close(); err != nil {
				return nil, err
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// fetchSequences reads which of keys are taken.
func (b *Backend) fetchSequences(ctx context.Context, tx *sql.Tx, keys []log.SequenceKey) (map[log.SequenceKey]bool, error) {
	bySubmitter := make(map[[32]byte][]uint64)
	submitters := make(map[[32]byte]string)
	for _, k := range keys {
		h := newSeqKey(k).submitter
		submitters[h] = k.Submitter
		bySubmitter[h] = append(bySubmitter[h], k.Sequence)
	}
	out := make(map[log.SequenceKey]bool)
	for sub, seqs := range bySubmitter {
		for len(seqs) > 0 {
			n := min(len(seqs), rowsPerStatement)
			chunk := seqs[:n]
			seqs = seqs[n:]
			args := []any{b.treeID, sub[:]}
			for _, s := range chunk {
				args = append(args, s)
			}
			q := "SELECT sequence FROM govlog_sequences WHERE tree_id = ? AND submitter_hash = ? AND sequence IN (" +
				strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				var s uint64
				if err := rows.Scan(&s); err != nil {
					rows.Close()
					return nil, err
				}
				out[log.SequenceKey{Submitter: submitters[sub], Sequence: s}] = true
			}
			if err := rows.Close(); err != nil {
				return nil, err
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// insertIDs inserts the rows of new entries, in key order (so that racing
// replicas lock rows in the same order), in multi-row statements.
func (b *Backend) insertIDs(ctx context.Context, tx *sql.Tx, entries []*log.Entry, rows map[log.EntryID]*idRow) error {
	sorted := append([]*log.Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Kind != sorted[j].Kind {
			return sorted[i].Kind < sorted[j].Kind
		}
		return sorted[i].ID < sorted[j].ID
	})
	for len(sorted) > 0 {
		n := statementRows(len(sorted), func(i int) int { return len(sorted[i].Leaf) })
		args := make([]any, 0, 6*n)
		for _, e := range sorted[:n] {
			row := rows[e.EntryID()]
			args = append(args, b.treeID, uint8(e.Kind), e.ID, row.leaf, row.hash[:], row.allow)
		}
		q := "INSERT INTO govlog_ids (tree_id, kind, id, leaf, leaf_hash, allow) VALUES " + placeholders(n, 6)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		sorted = sorted[n:]
	}
	return nil
}

// seqRow is a govlog_sequences row to insert.
type seqRow struct {
	key seqKey
	id  string
}

// insertSequences inserts the sequence rows of new decisions, in key
// order (so that racing replicas lock rows in the same order).
func (b *Backend) insertSequences(ctx context.Context, tx *sql.Tx, rows []seqRow) error {
	sorted := append([]seqRow(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool {
		if c := bytes.Compare(sorted[i].key.submitter[:], sorted[j].key.submitter[:]); c != 0 {
			return c < 0
		}
		return sorted[i].key.sequence < sorted[j].key.sequence
	})
	for len(sorted) > 0 {
		n := min(len(sorted), rowsPerStatement)
		args := make([]any, 0, 4*n)
		for _, r := range sorted[:n] {
			args = append(args, b.treeID, r.key.submitter[:], r.key.sequence, r.id)
		}
		q := "INSERT INTO govlog_sequences (tree_id, submitter_hash, sequence, id) VALUES " + placeholders(n, 4)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		sorted = sorted[n:]
	}
	return nil
}

// queueLeaf runs step 2 for one leaf. Trillian answers ALREADY_EXISTS with
// the leaf it holds for the identity; it must be ours, byte for byte, or
// govlog's tables and the tree disagree (ErrFork).
func (b *Backend) queueLeaf(ctx context.Context, pd *pending) error {
	req := &trillian.QueueLeafRequest{
		LogId: b.treeID,
		Leaf:  &trillian.LogLeaf{LeafValue: pd.leaf, LeafIdentityHash: pd.identity[:]},
	}
	var (
		resp *trillian.QueueLeafResponse
		err  error
	)
	// Queueing is idempotent (the identity dedups). Trillian's MySQL
	// storage fails a QueueLeaf that races another one for the same
	// identity ("failed to retrieve all existing leaves", code Unknown):
	// asked again, it answers ALREADY_EXISTS.
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
		resp, err = b.client.QueueLeaf(rctx, req)
		cancel()
		if c := status.Code(err); attempt == maxQueueAttempts || (c != codes.Unknown && c != codes.Aborted) || ctx.Err() != nil {
			break
		}
		b.logger.Debug("retrying QueueLeaf", "tree", b.treeID, "entry", pd.key, "err", err)
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
	if err != nil {
		return rpcError(fmt.Sprintf("queue the leaf of %v", pd.key), err)
	}
	q := resp.GetQueuedLeaf()
	switch code := codes.Code(q.GetStatus().GetCode()); code {
	case codes.OK:
	case codes.AlreadyExists:
		pd.existed = true
		if held := q.GetLeaf().GetLeafValue(); !bytes.Equal(held, pd.leaf) {
			return fmt.Errorf("%w: Trillian holds another leaf for %v than govlog_ids (leaf hash %x, govlog_ids has %x): the tables do not belong to this tree",
				log.ErrFork, pd.key, log.LeafHash(held), pd.hash)
		}
	default:
		return fmt.Errorf("%w: failed to queue the leaf of %v: Trillian answered %v: %s", log.ErrUnavailable, pd.key, code, q.GetStatus().GetMessage())
	}
	pd.queued = true
	return nil
}

// inWaves splits the leaves to queue into waves: the first holds every
// leaf that follows no other leaf of the batch, each next one the leaves
// whose dependencies are all in earlier waves. Within a wave, order does
// not matter.
func inWaves(queue []*pending) ([][]*pending, error) {
	depth := make(map[*pending]int, len(queue))
	var visit func(pd *pending) (int, error)
	visit = func(pd *pending) (int, error) {
		if d, ok := depth[pd]; ok {
			if d < 0 {
				return 0, fmt.Errorf("%w: govlog_ids holds a cycle of parent and decision links through %v", log.ErrFork, pd.key)
			}
			return d, nil
		}
		depth[pd] = -1 // visiting
		d := 0
		for _, a := range pd.after {
			da, err := visit(a)
			if err != nil {
				return 0, err
			}
			d = max(d, da+1)
		}
		depth[pd] = d
		return d, nil
	}
	var waves [][]*pending
	for _, pd := range queue {
		d, err := visit(pd)
		if err != nil {
			return nil, err
		}
		for len(waves) <= d {
			waves = append(waves, nil)
		}
		waves[d] = append(waves[d], pd)
	}
	return waves, nil
}

// queueWave runs step 2 for one wave: it queues its leaves concurrently,
// at most queueConcurrency at once.
//
// Trillian's sequencer gives leaves their indices in the order of their
// queue timestamps (storage/mysql: ORDER BY QueueTimestampNanos), which
// trillian_log_server reads from its wall clock when QueueLeaf starts. So
// the leaves of one wave land in whatever order their calls happen to be
// timed, and a dependency is not guaranteed to come first merely because
// its QueueLeaf returned before the dependent one started: another
// trillian_log_server whose clock is behind, or a clock stepped back, can
// stamp the later leaf earlier, and one sequencing pass would then put it
// first. Append therefore queues a wave only once the leaves it depends on
// are integrated: their indices are then fixed and lower than any leaf
// queued afterwards.
func (b *Backend) queueWave(ctx context.Context, wave []*pending) error {
	if len(wave) == 1 {
		return b.queueLeaf(ctx, wave[0])
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(b.queueConcurrency)
	for _, pd := range wave {
		g.Go(func() error { return b.queueLeaf(gctx, pd) })
	}
	return g.Wait()
}

// integration runs step 3: it follows Trillian's tree as it grows and
// finds the indices of the leaves an Append queued. It is used by the
// Append's goroutine only.
type integration struct {
	b *Backend
	// byIdentity holds every leaf of the Append, queued or not yet.
	byIdentity map[[32]byte]*pending
	// cur is the latest tree head read; every leaf below scanned was
	// matched against byIdentity (or looked up by hash).
	cur     root
	scanned uint64
	// leaves are the leaves from the first tree head to scanned, while
	// complete (every one was read, none skipped by a lookup by hash).
	leaves   []*trillian.LogLeaf
	complete bool
}

func (b *Backend) newIntegration(queue []*pending, r0 root) *integration {
	w := &integration{b: b, byIdentity: make(map[[32]byte]*pending, len(queue)), cur: r0, scanned: r0.size, complete: true}
	for _, pd := range queue {
		w.byIdentity[pd.identity] = pd
	}
	return w
}

// existing finds the index of each leaf of a wave that Trillian already
// held (another replica, or an earlier Append, queued it): by hash within
// the part of the tree already scanned. One integrated later is found by
// the scan.
func (w *integration) existing(ctx context.Context, wave []*pending) error {
	if w.scanned == 0 {
		return nil
	}
	for _, pd := range wave {
		if !pd.existed || pd.index >= 0 {
			continue
		}
		index, found, err := w.b.indexByHash(ctx, pd.hash, w.scanned)
		if err != nil {
			return err
		}
		if found {
			pd.index = int64(index)
		}
	}
	return nil
}

// wait polls Trillian's tree head until every leaf of want, all queued
// already, has its index; w.cur is then a tree head that contains them.
func (w *integration) wait(ctx context.Context, want []*pending) error {
	b := w.b
	missing := func() int {
		n := 0
		for _, pd := range want {
			if pd.index < 0 {
				n++
			}
		}
		return n
	}
	start := time.Now()
	deadline := start.Add(b.integrationTimeout)
	// Trillian's signer integrates in passes, so a wait takes about as
	// long as the last one: the first read of the tree head comes after
	// half of that (at most maxFirstPoll, at least b.poll), the next ones
	// every b.poll.
	timer := time.NewTimer(max(min(time.Duration(b.waited.Load())/2, maxFirstPoll), b.poll))
	defer timer.Stop()
	polled := false
	for left := missing(); left > 0; left = missing() {
		if time.Now().After(deadline) {
			err := fmt.Errorf("%w: Trillian did not integrate %d of the %d queued leaves within %v (tree size %d); is trillian_log_signer running?",
				log.ErrUnavailable, left, len(want), b.integrationTimeout, w.cur.size)
			b.mu.Lock()
			b.stall = &stall{size: w.cur.size, err: err}
			b.mu.Unlock()
			return err
		}
		if polled {
			timer.Reset(b.poll)
		}
		polled = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: failed to wait for Trillian to integrate %d leaves: %w", log.ErrUnavailable, left, ctx.Err())
		case <-timer.C:
		}
		r, err := b.root(ctx)
		if err != nil {
			return err
		}
		if r.size < w.scanned {
			return fmt.Errorf("%w: Trillian's tree shrank from %d to %d leaves", log.ErrFork, w.scanned, r.size)
		}
		if r.size == w.scanned {
			continue
		}
		if err := w.scan(ctx, r, left); err != nil {
			return err
		}
		w.cur, w.scanned = r, r.size
	}
	if polled {
		b.waited.Store(int64(time.Since(start)))
	}
	return nil
}

// scan matches the leaves Trillian integrated between w.scanned and r.size
// against the Append's leaves.
func (w *integration) scan(ctx context.Context, r root, left int) error {
	b := w.b
	if r.size-w.scanned > uint64(4*left+leavesPerCall) {
		// Others appended much more than we wait for: asking for each of
		// our queued leaves costs less than reading all of theirs. A leaf
		// not queued yet is looked up by existing once queued, if Trillian
		// already holds it then.
		w.complete, w.leaves = false, nil
		for _, pd := range w.byIdentity {
			if pd.index >= 0 || !pd.queued {
				continue
			}
			index, found, err := b.indexByHash(ctx, pd.hash, r.size)
			if err != nil {
				return err
			}
			if found {
				pd.index = int64(index)
			}
		}
		return nil
	}
	leaves, err := b.leaves(ctx, w.scanned, r.size-w.scanned)
	if err != nil {
		return err
	}
	if w.complete {
		w.leaves = append(w.leaves, leaves...)
	}
	for _, l := range leaves {
		id := l.GetLeafIdentityHash()
		if len(id) != sha256.Size {
			continue // not a govlog leaf
		}
		pd, ok := w.byIdentity[[32]byte(id)]
		if !ok || pd.index >= 0 {
			continue
		}
		if !bytes.Equal(l.GetMerkleLeafHash(), pd.hash[:]) {
			return fmt.Errorf("%w: Trillian integrated another leaf (hash %x) for %v %q than govlog_ids holds (%x)",
				log.ErrFork, l.GetMerkleLeafHash(), pd.key.Kind, pd.key.ID, pd.hash)
		}
		pd.index = l.GetLeafIndex()
	}
	return nil
}

// storeCheckpoint runs step 4. r is a tree head that contains every leaf
// of the plan, or nil to read the current one (a plan that queued nothing);
// extended, when set, is a tree head r is known to extend (its compact
// range and every leaf since make r's root).
// It returns the checkpoint that covers the batch and, when it stored that
// checkpoint itself, the size of the one before (it is the first to cover
// the entries from there on); otherwise covers is the checkpoint's size.
func (b *Backend) storeCheckpoint(ctx context.Context, p *plan, r, extended *root, sign log.SignFunc) (cp log.Checkpoint, covers uint64, err error) {
	var (
		// indexed is the size the search index covers once committed;
		// short is set when it does not cover the stored checkpoint.
		indexed uint64
		short   bool
	)
	tx, err := b.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return log.Checkpoint{}, 0, unavailable("begin the checkpoint transaction", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after COMMIT
	var locked int64
	if err := tx.QueryRowContext(ctx, sqlLockTree, b.treeID).Scan(&locked); err != nil {
		return log.Checkpoint{}, 0, unavailable(fmt.Sprintf("lock tree %d", b.treeID), err)
	}
	// Under the lock, this is the latest checkpoint of any replica.
	latest, has, err := b.latest(ctx, tx)
	if err != nil {
		return log.Checkpoint{}, 0, err
	}
	cp, covers = latest, latest.Size
	if !has || latest.Size < p.need {
		if r == nil {
			head, err := b.root(ctx)
			if err != nil {
				return log.Checkpoint{}, 0, err
			}
			r = &head
		}
		if r.size < p.need {
			return log.Checkpoint{}, 0, fmt.Errorf("%w: Trillian's tree head of size %d does not cover the batch (size %d needed)", log.ErrUnavailable, r.size, p.need)
		}
		known := extended != nil && extended.size == latest.Size && extended.hash == latest.Hash
		if has && !known {
			// r.size >= need > latest.Size: checkpoints grow, each
			// consistent with the one before.
			if err := b.checkConsistent(ctx, latest, *r); err != nil {
				return log.Checkpoint{}, 0, err
			}
		}
		signed, err := sign(r.size, r.hash)
		if err != nil {
			return log.Checkpoint{}, 0, fmt.Errorf("%w: failed to sign the checkpoint of size %d: %w", log.ErrUnavailable, r.size, err)
		}
		if parsed, _, err := log.ParseCheckpoint(signed.Note, log.CheckpointRules{}); err != nil || parsed.Size != r.size || parsed.Hash != r.hash || signed.Size != r.size || signed.Hash != r.hash {
			return log.Checkpoint{}, 0, fmt.Errorf("%w: the signer returned a checkpoint that is not for size %d and root %x (%w)", log.ErrUnavailable, r.size, r.hash, err)
		}
		if _, err := tx.ExecContext(ctx, sqlInsertCheckpoint, b.treeID, r.size, r.hash[:], signed.Note); err != nil {
			return log.Checkpoint{}, 0, unavailable(fmt.Sprintf("store the checkpoint of size %d", r.size), err)
		}
		cp = signed
		// The search postings of every entry this checkpoint is the first
		// to cover, in the same transaction.
		if err := b.indexRange(ctx, tx, latest.Size, r.size, p.queue); err != nil {
			return log.Checkpoint{}, 0, err
		}
		// The index covers the new checkpoint if it covered the previous
		// one; else a backfill is due (see backfill.go).
		if !b.hooks.noIndexedSize {
			if indexed, short, err = b.advanceIndexed(ctx, tx, latest.Size, r.size); err != nil {
				return log.Checkpoint{}, 0, err
			}
		}
	}
	if err := b.setIndices(ctx, tx, p.queue); err != nil {
		return log.Checkpoint{}, 0, err
	}
	// The durability point of the checkpoint (the leaves are durable in
	// Trillian already): after COMMIT, readers may see the batch.
	if err := tx.Commit(); err != nil {
		return log.Checkpoint{}, 0, unavailable("commit the checkpoint", err)
	}
	b.saw(cp.Size)
	b.sawIndexed(indexed)
	if short {
		b.backfillInBackground()
	}
	return cp, covers, nil
}

// setIndices records the indices of leaves a stored checkpoint now covers.
func (b *Backend) setIndices(ctx context.Context, tx *sql.Tx, queue []*pending) error {
	byKind := make(map[log.Kind][]*pending)
	for _, pd := range queue {
		byKind[pd.key.Kind] = append(byKind[pd.key.Kind], pd)
	}
	for kind, pds := range byKind {
		sort.Slice(pds, func(i, j int) bool { return pds[i].key.ID < pds[j].key.ID })
		for len(pds) > 0 {
			n := min(len(pds), rowsPerStatement)
			var q strings.Builder
			args := make([]any, 0, 3*n+2)
			q.WriteString("UPDATE govlog_ids SET leaf_index = CASE id")
			for _, pd := range pds[:n] {
				q.WriteString(" WHEN ? THEN ?")
				args = append(args, pd.key.ID, pd.index)
			}
			q.WriteString(" END WHERE tree_id = ? AND kind = ? AND leaf_index IS NULL AND id IN (")
			q.WriteString(strings.TrimSuffix(strings.Repeat("?, ", n), ", "))
			q.WriteString(")")
			args = append(args, b.treeID, uint8(kind))
			for _, pd := range pds[:n] {
				args = append(args, pd.key.ID)
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return unavailable("record the indices of the batch", err)
			}
			pds = pds[n:]
		}
	}
	return nil
}
