package log

import (
	"fmt"
	"sync"

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
// The proofs of an append's leaves in one tree share most of their nodes:
// the nodes are kept by level, in index order (the old range has at most
// one node a level, and the append completes each level's nodes left to
// right), and the ephemeral nodes of the tree of the latest size proved,
// at most one a level, are rehashed once.
//
// Use: p := NewProver(rng) before appending to rng (which must begin at
// 0), pass p.Visit (alone or from the caller's own visitor) to every
// rng.Append, then call p.Proof for each new leaf. A Prover is not safe
// for concurrent use while leaves are appended; afterwards Proof may be
// called from any goroutine.
type Prover struct {
	// begin is the first leaf appended, end one past the last.
	begin, end uint64
	levels     []proverLevel

	mu      sync.Mutex
	ephSize uint64   // the tree size of eph
	eph     [][]byte // by level: the ephemeral nodes of the tree of ephSize rehashed so far
}

// proverLevel holds the hashes of the nodes of one level with indices
// first, first+1, ….
type proverLevel struct {
	first  uint64
	hashes [][]byte
}

// NewProver returns a Prover of the leaves to be appended to rng, a
// compact range of [0, rng.End()).
func NewProver(rng *compact.Range) (*Prover, error) {
	if rng.Begin() != 0 {
		return nil, fmt.Errorf("failed to prove appends: the compact range begins at %d, not 0", rng.Begin())
	}
	p := &Prover{begin: rng.End(), end: rng.End()}
	for i, id := range compact.RangeNodes(0, rng.End(), nil) {
		p.Visit(id, rng.Hashes()[i])
	}
	return p, nil
}

// Visit records a node the compact range emitted: a compact.VisitFn.
func (p *Prover) Visit(id compact.NodeID, hash []byte) {
	for uint(len(p.levels)) <= id.Level {
		p.levels = append(p.levels, proverLevel{})
	}
	l := &p.levels[id.Level]
	switch {
	case len(l.hashes) > 0 && id.Index >= l.first && id.Index-l.first < uint64(len(l.hashes)):
		l.hashes[id.Index-l.first] = hash
	case len(l.hashes) > 0 && id.Index == l.first+uint64(len(l.hashes)):
		l.hashes = append(l.hashes, hash)
	default:
		// Not next to the level's nodes (a compact range emits none such):
		// the level starts again there, and a proof that needs a node
		// dropped fails.
		l.first, l.hashes = id.Index, append(l.hashes[:0], hash)
	}
	if id.Level == 0 {
		p.end = max(p.end, id.Index+1)
	}
}

// node returns the hash of the node id, if it was recorded.
func (p *Prover) node(id compact.NodeID) ([]byte, bool) {
	if id.Level >= uint(len(p.levels)) {
		return nil, false
	}
	l := &p.levels[id.Level]
	if id.Index < l.first || id.Index-l.first >= uint64(len(l.hashes)) {
		return nil, false
	}
	return l.hashes[id.Index-l.first], true
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
	// IDs[eb:ee] are the nodes under the ephemeral node, if any: rehashed
	// into it once per tree size and level.
	ephem, eb, ee := nodes.Ephem()
	var eph []byte
	if ee-eb > 1 {
		p.mu.Lock()
		if p.ephSize == size && ephem.Level < uint(len(p.eph)) {
			eph = p.eph[ephem.Level]
		}
		p.mu.Unlock()
	}
	out := make([][32]byte, 0, len(nodes.IDs))
	if ee-eb > 1 && eph == nil {
		hashes := make([][]byte, len(nodes.IDs))
		for i, id := range nodes.IDs {
			h, ok := p.node(id)
			if !ok {
				return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: node %d/%d was not appended", index, size, id.Level, id.Index)
			}
			hashes[i] = h
		}
		if hashes, err = nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren); err != nil {
			return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: %w", index, size, err)
		}
		for _, h := range hashes {
			if len(h) != 32 {
				return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: a node hash is %d bytes", index, size, len(h))
			}
			out = append(out, [32]byte(h))
		}
		p.mu.Lock()
		if p.ephSize != size {
			p.ephSize, p.eph = size, p.eph[:0]
		}
		for uint(len(p.eph)) <= ephem.Level {
			p.eph = append(p.eph, nil)
		}
		p.eph[ephem.Level] = hashes[eb]
		p.mu.Unlock()
		return out, nil
	}
	for i := 0; i < len(nodes.IDs); i++ {
		h := eph
		if i == eb && ee-eb > 1 {
			i = ee - 1
		} else {
			var ok bool
			if h, ok = p.node(nodes.IDs[i]); !ok {
				return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: node %d/%d was not appended", index, size, nodes.IDs[i].Level, nodes.IDs[i].Index)
			}
		}
		if len(h) != 32 {
			return nil, fmt.Errorf("failed to prove entry %d in the tree of size %d: a node hash is %d bytes", index, size, len(h))
		}
		out = append(out, [32]byte(h))
	}
	return out, nil
}
