package log

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Prover proves the leaves an append adds to a tree, from what the append
// computes anyway: the compact range of the tree before it, and every node
// the range emits as the new leaves are appended. The inclusion proof of
// a new leaf in the grown tree needs nothing else: each proof node left of
// the leaf is either a node of the old compact range or a node that holds
// new leaves and was completed by the append; each one right of it holds
// only new leaves (an ephemeral node on the right edge is rehashed from
// the complete nodes under it). So a Backend that extends a compact range
// in Append returns each new entry's receipt without reading its storage
// again.
//
// Use: p := NewProver(rng) before appending to rng (which must begin at
// 0), pass p.Visit (alone or from the caller's own visitor) to every
// rng.Append, then call p.Proof for each new leaf. A Prover is not safe
// for concurrent use while leaves are appended; afterwards Proof may be
// called from any goroutine.
type Prover struct {
	// begin is the first leaf appended, end one past the last.
	begin, end uint64
	nodes      map[compact.NodeID][]byte
}

// NewProver returns a Prover of the leaves to be appended to rng, a
// compact range of [0, rng.End()).
func NewProver(rng *compact.Range) (*Prover, error) {
	if rng.Begin() != 0 {
		return nil, fmt.Errorf("failed to prove appends: the compact range begins at %d, not 0", rng.Begin())
	}
	p := &Prover{begin: rng.End(), end: rng.End(), nodes: make(map[compact.NodeID][]byte)}
	for i, id := range compact.RangeNodes(0, rng.End(), nil) {
		p.nodes[id] = rng.Hashes()[i]
	}
	return p, nil
}

// Visit records a node the compact range emitted: a compact.VisitFn.
func (p *Prover) Visit(id compact.NodeID, hash []byte) {
	p.nodes[id] = hash
	if id.Level == 0 {
		p.end = max(p.end, id.Index+1)
	}
}

// Proof returns the RFC 6962 inclusion proof of the leaf at index, one of
// the leaves appended since NewProver, in the tree of size, which must
// not exceed the leaves appended so far.
func (p *Prover) Proof(index, size uint64) ([][32]byte, error) {
	if index < p.begin || index >= size || size > p.end {
		return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: entries %d to %d were appended", index, size, p.begin, p.end)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: %w", index, size, err)
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, ok := p.nodes[id]
		if !ok {
			return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: node %d/%d was not appended", index, size, id.Level, id.Index)
		}
		hashes[i] = h
	}
	hashes, err = nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: %w", index, size, err)
	}
	out := make([][32]byte, len(hashes))
	for i, h := range hashes {
		if len(h) != 32 {
			return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: a node hash is %d bytes", index, size, len(h))
		}
		out[i] = [32]byte(h)
	}
	return out, nil
}
