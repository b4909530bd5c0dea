package trillian

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/compact"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
)

// Receipts out of the commit.
//
// Append returns, with its checkpoint, the inclusion proof of every entry
// it appended. To find its leaves' indices it reads every leaf Trillian
// integrated since the tree head it started from; with the compact range
// of the tree before them it knows every node hash those proofs need (see
// log.Prover). So the Backend keeps the compact range of Trillian's tree
// up to date across Appends. Every node hash comes from leaf hashes that
// Trillian returned, and the root they make is checked against Trillian's
// tree head before any proof is taken from them. When the range is not
// known (other replicas appended too much meanwhile), Append asks Trillian
// for the proofs and verifies them against the tree head it signed.

// maxCatchUp is the most leaves Append reads to bring its compact range up
// to the tree head it starts from (leaves other replicas appended); beyond
// it, it rebuilds the range from one inclusion proof.
const maxCatchUp = 4 * leavesPerCall

var factory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// receipts sets the inclusion proof of every entry the Append appended
// whose first covering checkpoint is cp, the one it returns: cp was stored
// by this Append (the one before it had size covers) and holds the entry.
// prover, when set, holds every node of cp's tree right of where the
// Append started; otherwise the proofs come from Trillian.
func (b *Backend) receipts(ctx context.Context, p *plan, cp log.Checkpoint, covers uint64, prover *log.Prover) error {
	for _, pd := range p.queue {
		if !pd.fresh || pd.index < 0 || uint64(pd.index) < covers || uint64(pd.index) >= cp.Size {
			continue
		}
		index := uint64(pd.index)
		var proof [][32]byte
		var err error
		if prover != nil {
			proof, err = prover.Proof(index, cp.Size)
		}
		if prover == nil || err != nil {
			if proof, err = b.inclusion(ctx, index, cp.Size); err != nil {
				return err
			}
			if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, pd.hash[:], slices32(proof), cp.Hash[:]); err != nil {
				return fmt.Errorf("%w: Trillian's inclusion proof of entry %d in its tree head of size %d (root %x) does not verify: %w",
					log.ErrUnavailable, index, cp.Size, cp.Hash, err)
			}
		}
		for _, i := range pd.results {
			p.results[i].Proof = proof
		}
	}
	return nil
}

func slices32(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// setRange records the compact range of Trillian's tree the next Append
// starts from, nil when unknown.
func (b *Backend) setRange(rng *compact.Range) {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	b.rng = rng
}

// catchUp returns the compact range of Trillian's tree of r0 (nil when it
// cannot be had): the one the last Append left, extended by the leaves
// appended since, or rebuilt from Trillian. Runs on the Append goroutine.
func (b *Backend) catchUp(ctx context.Context, r0 root) *compact.Range {
	b.rngMu.Lock()
	rng := b.rng
	b.rngMu.Unlock()
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

// advance extends the compact range of [0, r0.size) by the leaves
// Trillian integrated up to r, recording every node in a Prover; it
// returns nil when the leaves do not make r's root.
func advance(rng *compact.Range, leaves []*trillian.LogLeaf, r root) (*log.Prover, *compact.Range) {
	if rng.End()+uint64(len(leaves)) != r.size {
		return nil, nil
	}
	next, err := cloneRange(rng)
	if err != nil {
		return nil, nil
	}
	prover, err := log.NewProver(next)
	if err != nil || appendLeaves(next, leaves, prover.Visit) != nil || !rootIs(next, r) {
		return nil, nil
	}
	return prover, next
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
