package trillian

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/trillian"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/govlog/govlog/log"
)

// The read methods run on any goroutine. Each reads the latest stored
// checkpoint first and bounds everything it reads by its size: Trillian's
// tree may already be larger (another replica's batch not yet covered by a
// stored checkpoint), and what lies beyond is not yet acknowledged.

// Latest implements log.Backend.
func (b *Backend) Latest(ctx context.Context) (log.Checkpoint, error) {
	cp, has, err := b.latest(ctx, b.db)
	if err != nil {
		return log.Checkpoint{}, err
	}
	if !has {
		return log.Checkpoint{}, fmt.Errorf("failed to read the latest checkpoint: %w", log.ErrNotFound)
	}
	return cp, nil
}

// size is the size of the latest stored checkpoint, 0 when there is none.
func (b *Backend) size(ctx context.Context) (uint64, error) {
	cp, _, err := b.latest(ctx, b.db)
	return cp.Size, err
}

// bound returns the size of a stored checkpoint, at least want when one is
// stored, without a database read when a checkpoint that large was seen
// already: stored checkpoints only grow, so any size seen is a safe bound
// for reads. Below want it returns the latest stored size.
func (b *Backend) bound(ctx context.Context, want uint64) (uint64, error) {
	if known := b.known.Load(); known >= want {
		return known, nil
	}
	return b.size(ctx)
}

// Covering implements log.Backend. Checkpoints are stored in increasing
// size, so the first one that covers an entry never changes.
func (b *Backend) Covering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	cp, err := scanCheckpoint(b.db.QueryRowContext(ctx, sqlCovering, b.treeID, index))
	if errors.Is(err, sql.ErrNoRows) {
		return log.Checkpoint{}, fmt.Errorf("failed to find the checkpoint covering entry %d: %w", index, log.ErrNotFound)
	}
	if err != nil {
		return log.Checkpoint{}, unavailable(fmt.Sprintf("read the checkpoint covering entry %d", index), err)
	}
	return cp, nil
}

// InclusionProof implements log.Backend.
func (b *Backend) InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error) {
	latest, err := b.bound(ctx, size)
	if err != nil {
		return nil, err
	}
	if index >= size || size > latest {
		return nil, fmt.Errorf("%w: no inclusion proof of entry %d in a tree of size %d (the log has %d entries)", log.ErrOutOfRange, index, size, latest)
	}
	return b.inclusion(ctx, index, size)
}

// inclusion asks Trillian for the inclusion proof of entry index in the
// tree of size, which Trillian's tree must have.
func (b *Backend) inclusion(ctx context.Context, index, size uint64) ([][32]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	resp, err := b.client.GetInclusionProof(rctx, &trillian.GetInclusionProofRequest{
		LogId: b.treeID, LeafIndex: int64(index), TreeSize: int64(size),
	})
	if err != nil {
		return nil, rpcError(fmt.Sprintf("get the inclusion proof of entry %d in size %d", index, size), err)
	}
	p := resp.GetProof()
	if p == nil || p.GetLeafIndex() != int64(index) {
		return nil, fmt.Errorf("%w: Trillian returned no inclusion proof of entry %d in size %d", log.ErrUnavailable, index, size)
	}
	return hashes32(p.GetHashes())
}

// ConsistencyProof implements log.Backend.
func (b *Backend) ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error) {
	latest, err := b.bound(ctx, to)
	if err != nil {
		return nil, err
	}
	if from == 0 || from > to || to > latest {
		return nil, fmt.Errorf("%w: no consistency proof from size %d to %d (the log has %d entries)", log.ErrOutOfRange, from, to, latest)
	}
	if from == to {
		return [][32]byte{}, nil
	}
	p, err := b.consistency(ctx, from, to)
	if err != nil {
		return nil, err
	}
	return hashes32(p)
}

func hashes32(hs [][]byte) ([][32]byte, error) {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		if len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: Trillian returned a proof hash of %d bytes", log.ErrUnavailable, len(h))
		}
		out[i] = [32]byte(h)
	}
	return out, nil
}

// Entries implements log.Backend.
func (b *Backend) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	latest, err := b.bound(ctx, start+uint64(max(count, 1)))
	if err != nil {
		return nil, err
	}
	if start >= latest {
		return nil, fmt.Errorf("%w: entry %d is beyond the log's %d entries", log.ErrOutOfRange, start, latest)
	}
	if count <= 0 {
		return [][]byte{}, nil
	}
	n := min(uint64(count), latest-start)
	leaves, err := b.leaves(ctx, start, n)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(leaves))
	for i, l := range leaves {
		if h := log.LeafHash(l.GetLeafValue()); string(h[:]) != string(l.GetMerkleLeafHash()) {
			return nil, fmt.Errorf("%w: Trillian's leaf %d does not hash to its Merkle leaf hash", log.ErrUnavailable, start+uint64(i))
		}
		out[i] = l.GetLeafValue()
	}
	return out, nil
}

// leaves reads leaves [start, start+count) from Trillian, which must hold
// them all, leavesPerCall at a time.
func (b *Backend) leaves(ctx context.Context, start, count uint64) ([]*trillian.LogLeaf, error) {
	out := make([]*trillian.LogLeaf, 0, count)
	for uint64(len(out)) < count {
		next := start + uint64(len(out))
		n := min(count-uint64(len(out)), leavesPerCall)
		rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
		resp, err := b.client.GetLeavesByRange(rctx, &trillian.GetLeavesByRangeRequest{
			LogId: b.treeID, StartIndex: int64(next), Count: int64(n),
		}, grpc.MaxCallRecvMsgSize(maxRecvMsgSize))
		cancel()
		if err != nil {
			return nil, rpcError(fmt.Sprintf("read entries %d to %d", next, next+n-1), err)
		}
		got := resp.GetLeaves()
		if len(got) == 0 {
			return nil, fmt.Errorf("%w: Trillian returned no leaves from index %d", log.ErrUnavailable, next)
		}
		for _, l := range got {
			if uint64(len(out)) == count {
				break
			}
			want := start + uint64(len(out))
			if l.GetLeafIndex() != int64(want) {
				return nil, fmt.Errorf("%w: Trillian returned leaf %d where %d was due", log.ErrUnavailable, l.GetLeafIndex(), want)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// Lookup implements log.Backend. A row whose index is not recorded yet (its
// Append failed or is still running, here or on another replica) is looked
// up in Trillian by leaf hash within the latest checkpoint, and recorded.
func (b *Backend) Lookup(ctx context.Context, kind log.Kind, id string) (uint64, []byte, error) {
	var (
		leaf, hash []byte
		index      sql.NullInt64
	)
	err := b.db.QueryRowContext(ctx, sqlLookup, b.treeID, uint8(kind), id).Scan(&leaf, &hash, &index)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, log.ErrNotFound)
	}
	if err != nil {
		return 0, nil, unavailable(fmt.Sprintf("look up %v %q", kind, id), err)
	}
	want := uint64(1)
	if index.Valid {
		want = uint64(index.Int64) + 1
	}
	latest, err := b.bound(ctx, want)
	if err != nil {
		return 0, nil, err
	}
	if index.Valid {
		if uint64(index.Int64) >= latest {
			return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, log.ErrNotFound)
		}
		return uint64(index.Int64), leaf, nil
	}
	if len(hash) != sha256.Size || latest == 0 {
		return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, log.ErrNotFound)
	}
	i, found, err := b.indexByHash(ctx, [32]byte(hash), latest)
	if err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, fmt.Errorf("failed to look up %v %q: %w", kind, id, log.ErrNotFound)
	}
	if _, err := b.db.ExecContext(ctx, sqlSetIndex, int64(i), b.treeID, uint8(kind), id); err != nil {
		b.logger.Warn("failed to record an index found in Trillian", "tree", b.treeID, "kind", kind, "id", id, "err", err)
	}
	return i, leaf, nil
}

// LookupHash implements log.Backend.
func (b *Backend) LookupHash(ctx context.Context, leafHash [32]byte) (uint64, error) {
	latest, err := b.size(ctx)
	if err != nil {
		return 0, err
	}
	if latest > 0 {
		i, found, err := b.indexByHash(ctx, leafHash, latest)
		if err != nil {
			return 0, err
		}
		if found {
			return i, nil
		}
	}
	return 0, fmt.Errorf("failed to look up leaf hash %x: %w", leafHash, log.ErrNotFound)
}

// indexByHash asks Trillian for the first index of a leaf hash in the tree
// of the given size (> 0).
func (b *Backend) indexByHash(ctx context.Context, leafHash [32]byte, size uint64) (uint64, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	resp, err := b.client.GetInclusionProofByHash(rctx, &trillian.GetInclusionProofByHashRequest{
		LogId: b.treeID, LeafHash: leafHash[:], TreeSize: int64(size), OrderBySequence: true,
	})
	if status.Code(err) == codes.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, rpcError(fmt.Sprintf("look up leaf hash %x", leafHash), err)
	}
	found := false
	var first int64
	for _, p := range resp.GetProof() {
		if i := p.GetLeafIndex(); i >= 0 && uint64(i) < size && (!found || i < first) {
			first, found = i, true
		}
	}
	return uint64(first), found, nil
}

// Authorization implements log.Backend. The row may name
// entries that are reserved but not yet covered by a stored checkpoint:
// Lookup tells.
func (b *Backend) Authorization(ctx context.Context, decisionID string) (*log.Authorization, error) {
	row := b.db.QueryRowContext(ctx, "SELECT "+authorizationColumns+" FROM govlog_authorizations WHERE tree_id = ? AND decision_id = ?", b.treeID, decisionID)
	_, a, err := scanAuthorization(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("failed to read the authorization of %q: %w", decisionID, log.ErrNotFound)
	}
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read the authorization of %q", decisionID), err)
	}
	return a, nil
}
