package trillian

import (
	"bytes"
	"context"
	"slices"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
)

// Receipts without round trips.
//
// Once Append returns, every submitter of the batch asks for its receipt:
// Covering (a database read) and InclusionProof (a Trillian RPC, which
// reads Trillian's tables). At a thousand entries a second that is as much
// work for the database as queueing them. But Append has already read
// every leaf Trillian integrated since the tree head it started from (to
// find its leaves' indices): with the compact range of the tree before
// them, it knows every node hash that an inclusion proof of those leaves
// needs. So the Backend keeps the compact range of Trillian's tree up to
// date across Appends, and remembers for each of its last few checkpoints
// the node hashes right of where its batch started; InclusionProof and
// Covering answer from them, and ask Trillian and the database otherwise.
// Every node hash comes from leaf hashes that Trillian returned, and the
// root they make is checked against Trillian's tree head before anything
// is remembered.

// recentCheckpoints is how many checkpoints' receipts are kept: Append
// may run again while the submitters of the previous batch read theirs.
const recentCheckpoints = 4

// maxCatchUp is the most leaves Append reads to bring its compact range up
// to the tree head it starts from (leaves other replicas appended); beyond
// it, it rebuilds the range from one inclusion proof.
const maxCatchUp = 4 * leavesPerCall

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// recent is what a stored checkpoint's batch knows: the node hashes of the
// tree of cp.Size that are right of from (and the compact range of
// [0, from)), and that cp was the first stored checkpoint to cover
// [covers, cp.Size).
type recent struct {
	cp     log.Checkpoint
	from   uint64
	covers uint64
	nodes  map[compact.NodeID][]byte
}

// proof builds the inclusion proof of index in the tree of r.cp.Size from
// the remembered nodes; ok is false when a node is missing.
func (r *recent) proof(index uint64) ([][32]byte, bool) {
	if index < r.from || index >= r.cp.Size {
		return nil, false
	}
	nodes, err := proof.Inclusion(index, r.cp.Size)
	if err != nil {
		return nil, false
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, ok := r.nodes[id]
		if !ok {
			return nil, false
		}
		hashes[i] = h
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, false
	}
	out := make([][32]byte, len(p))
	for i, h := range p {
		out[i] = [32]byte(h)
	}
	return out, true
}

// cachedProof returns a remembered inclusion proof.
func (b *Backend) cachedProof(index, size uint64) ([][32]byte, bool) {
	b.recentMu.Lock()
	defer b.recentMu.Unlock()
	for _, r := range b.recent {
		if r.cp.Size == size {
			return r.proof(index)
		}
	}
	return nil, false
}

// cachedCovering returns the remembered first checkpoint covering index.
func (b *Backend) cachedCovering(index uint64) (log.Checkpoint, bool) {
	b.recentMu.Lock()
	defer b.recentMu.Unlock()
	for _, r := range b.recent {
		if index >= r.covers && index < r.cp.Size {
			return r.cp, true
		}
	}
	return log.Checkpoint{}, false
}

// setRange records the compact range of Trillian's tree the next Append
// starts from, nil when unknown.
func (b *Backend) setRange(rng *compact.Range) {
	b.recentMu.Lock()
	defer b.recentMu.Unlock()
	b.rng = rng
}

// remember keeps what a batch knows of the checkpoint it stored.
func (b *Backend) remember(r *recent) {
	b.recentMu.Lock()
	defer b.recentMu.Unlock()
	b.recent = append(b.recent, r)
	if len(b.recent) > recentCheckpoints {
		b.recent = slices.Delete(b.recent, 0, len(b.recent)-recentCheckpoints)
	}
}

// catchUp returns the compact range of Trillian's tree of r0 (nil when it
// cannot be had): the one the last Append left, extended by the leaves
// appended since, or rebuilt from Trillian. Runs on the Append goroutine.
func (b *Backend) catchUp(ctx context.Context, r0 root) *compact.Range {
	b.recentMu.Lock()
	rng := b.rng
	b.recentMu.Unlock()
	if rng != nil && rng.End() == r0.size {
		return rng
	}
	if r0.size == 0 {
		return factory.NewEmptyRange(0)
	}
	if rng != nil && rng.End() < r0.size && r0.size-rng.End() <= maxCatchUp {
		leaves, err := b.leaves(ctx, rng.End(), r0.size-rng.End())
		if err == nil {
			ext, err := cloneRange(rng)
			if err == nil && appendLeaves(ext, leaves, nil) == nil && rootIs(ext, r0) {
				return ext
			}
		}
	}
	// The proof of the last leaf in the tree of r0 is the compact range of
	// the leaves before it, lowest node first.
	rctx, cancel := context.WithTimeout(ctx, b.rpcTimeout)
	defer cancel()
	resp, err := b.client.GetInclusionProof(rctx, &trillian.GetInclusionProofRequest{
		LogId: b.treeID, LeafIndex: int64(r0.size - 1), TreeSize: int64(r0.size),
	})
	if err != nil || resp.GetProof() == nil {
		return nil
	}
	last, err := b.leaves(ctx, r0.size-1, 1)
	if err != nil {
		return nil
	}
	hashes := slices.Clone(resp.GetProof().GetHashes())
	slices.Reverse(hashes)
	rng, err = factory.NewRange(0, r0.size-1, hashes)
	if err != nil || appendLeaves(rng, last, nil) != nil || !rootIs(rng, r0) {
		return nil
	}
	return rng
}

// advance computes, from the compact range of [0, r0.size) and the leaves
// Trillian integrated up to r, every node right of r0.size, and the
// compact range of r; ok is false when the leaves do not make r's root.
func advance(rng *compact.Range, leaves []*trillian.LogLeaf, r root) (nodes map[compact.NodeID][]byte, next *compact.Range, ok bool) {
	if rng.End()+uint64(len(leaves)) != r.size {
		return nil, nil, false
	}
	nodes = make(map[compact.NodeID][]byte, 2*len(leaves)+64)
	for i, id := range compact.RangeNodes(0, rng.End(), nil) {
		nodes[id] = rng.Hashes()[i]
	}
	next, err := cloneRange(rng)
	if err != nil || appendLeaves(next, leaves, func(id compact.NodeID, hash []byte) { nodes[id] = hash }) != nil || !rootIs(next, r) {
		return nil, nil, false
	}
	return nodes, next, true
}

// cloneRange copies a compact range: Append reuses its hash slice.
func cloneRange(rng *compact.Range) (*compact.Range, error) {
	return factory.NewRange(rng.Begin(), rng.End(), slices.Clone(rng.Hashes()))
}

func appendLeaves(rng *compact.Range, leaves []*trillian.LogLeaf, visit compact.VisitFn) error {
	for _, l := range leaves {
		if err := rng.Append(l.GetMerkleLeafHash(), visit); err != nil {
			return err
		}
	}
	return nil
}

// rootIs reports whether the compact range from 0 has r's size and root.
func rootIs(rng *compact.Range, r root) bool {
	if rng.Begin() != 0 || rng.End() != r.size {
		return false
	}
	if r.size == 0 {
		return r.hash == log.EmptyRoot
	}
	h, err := rng.GetRootHash(nil)
	return err == nil && bytes.Equal(h, r.hash[:])
}
