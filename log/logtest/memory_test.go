package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// memStore is a reference in-memory log, only to test the suite itself:
// the simplest code that follows the Backend contract. A memStore outlives
// the memBackends opened on it, as a directory outlives a process.
type memStore struct {
	mu          sync.Mutex
	tree        *testonly.Tree
	leaves      [][]byte
	ids         map[kindID]uint64
	allow       map[string]bool // decision id -> outcome is allow
	auths       map[string]log.Authorization
	sequences   map[submitterSeq]bool
	hashes      map[[32]byte]uint64
	checkpoints []log.Checkpoint // in order of size
}

type submitterSeq struct {
	submitter string
	seq       uint64
}

func newMemStore() *memStore {
	return &memStore{
		tree:      testonly.New(rfc6962.DefaultHasher),
		ids:       make(map[kindID]uint64),
		allow:     make(map[string]bool),
		auths:     make(map[string]log.Authorization),
		sequences: make(map[submitterSeq]bool),
		hashes:    make(map[[32]byte]uint64),
	}
}

// memBackend is one open handle on a memStore.
type memBackend struct {
	s      *memStore
	closed bool // guarded by s.mu
	// failAppend, when set, makes Append fail as storage down would.
	failAppend bool
	// reorder, when set, gives the entries a batch appends their indices
	// in another order than the batch's: deps[k] is the position among
	// them of the entry the k-th names (Submission.Refs), or -1; it
	// returns the positions in the order of their new indices.
	reorder func(deps []int) []int
}

var _ log.Backend = (*memBackend)(nil)

var errClosed = errors.New("backend is closed")

func (b *memBackend) lock() error {
	b.s.mu.Lock()
	if b.closed {
		b.s.mu.Unlock()
		return errClosed
	}
	return nil
}

func (b *memBackend) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	if err := b.lock(); err != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	defer b.s.mu.Unlock()
	s := b.s
	if b.failAppend {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: injected failure", log.ErrUnavailable)
	}
	// Work on copies: nothing changes unless the whole batch commits.
	ids := clone(s.ids)
	allow := clone(s.allow)
	sequences := clone(s.sequences)
	var (
		added [][]byte
		deps  []int // see memBackend.reorder
	)
	size := uint64(len(s.leaves))
	// The rule book judges the batch against what the store holds of its
	// names.
	names := log.NamesOf(batch)
	facts := &log.Facts{IDs: make(map[log.EntryID]log.Stored), Sequences: make(map[log.SequenceKey]bool),
		Authorizations: make(map[string]*log.Authorization)}
	for _, id := range names.Authorizations {
		if a, ok := s.auths[id]; ok {
			facts.Authorizations[id] = &a
		}
	}
	for _, k := range names.IDs {
		if idx, ok := ids[kindID{k.Kind, k.ID}]; ok {
			facts.IDs[k] = log.Stored{Leaf: s.leaves[idx], Allow: k.Kind == log.KindDecision && allow[k.ID]}
		}
	}
	for _, k := range names.Sequences {
		if sequences[submitterSeq{k.Submitter, k.Sequence}] {
			facts.Sequences[k] = true
		}
	}
	results := make([]log.AppendResult, len(batch))
	for i, v := range log.Judge(batch, facts) {
		e, r := batch[i], &results[i]
		switch v.Fate {
		case log.FateRefused:
			r.Err = v.Err
			continue
		case log.FateExisting:
			if v.Of >= 0 {
				*r = results[v.Of]
			} else {
				r.Index = ids[kindID{e.Kind, e.ID}]
				r.Leaf = s.leaves[r.Index]
			}
			r.Existing = true
			continue
		}
		idx := size + uint64(len(added))
		ids[kindID{e.Kind, e.ID}] = idx
		if e.Kind == log.KindDecision {
			allow[e.ID] = e.Allow
		}
		if k, ok := e.SequenceKey(); ok {
			sequences[submitterSeq{k.Submitter, k.Sequence}] = true
		}
		dep := -1
		for _, ref := range e.Refs() {
			if di, ok := ids[kindID{ref.Kind, ref.ID}]; ok && di >= size {
				dep = max(dep, int(di-size))
			}
		}
		added = append(added, v.Leaf)
		deps = append(deps, dep)
		r.Index, r.Leaf = idx, v.Leaf
	}
	if b.reorder != nil && len(added) > 1 {
		order := b.reorder(deps)
		newIdx := make(map[uint64]uint64, len(order))
		reordered := make([][]byte, len(order))
		for j, k := range order {
			newIdx[size+uint64(k)] = size + uint64(j)
			reordered[j] = added[k]
		}
		added = reordered
		for i := range results {
			if n, ok := newIdx[results[i].Index]; ok && results[i].Err == nil {
				results[i].Index = n
			}
		}
		for k, idx := range ids {
			if n, ok := newIdx[idx]; ok {
				ids[k] = n
			}
		}
	}
	if len(added) == 0 && len(s.checkpoints) > 0 {
		return results, s.checkpoints[len(s.checkpoints)-1], nil
	}
	auths := clone(s.auths)
	for id, a := range facts.Authorizations {
		if a.Dirty {
			a.Dirty = false
			auths[id] = *a
		}
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(s.leaves...)
	tree.AppendData(added...)
	cp, err := sign(tree.Size(), [32]byte(tree.Hash()))
	if err != nil {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: failed to sign: %w", log.ErrUnavailable, err)
	}
	// The receipts of the entries this batch appended (and of their
	// repeats in it).
	for i := range results {
		if r := &results[i]; r.Err == nil && r.Index >= size {
			p, err := tree.InclusionProof(r.Index, tree.Size())
			if err != nil {
				return nil, log.Checkpoint{}, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
			}
			r.Proof = to32(p)
		}
	}
	// Commit.
	s.tree = tree
	for _, leaf := range added {
		h := log.LeafHash(leaf)
		if _, ok := s.hashes[h]; !ok {
			s.hashes[h] = uint64(len(s.leaves))
		}
		s.leaves = append(s.leaves, leaf)
	}
	s.ids, s.allow, s.sequences, s.auths = ids, allow, sequences, auths
	s.checkpoints = append(s.checkpoints, cp)
	return results, cp, nil
}

func (b *memBackend) Authorization(ctx context.Context, decisionID string) (*log.Authorization, error) {
	if err := b.lock(); err != nil {
		return nil, fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	defer b.s.mu.Unlock()
	a, ok := b.s.auths[decisionID]
	if !ok {
		return nil, log.ErrNotFound
	}
	a.Entries = slices.Clone(a.Entries)
	return &a, nil
}

func clone[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (b *memBackend) Latest(ctx context.Context) (log.Checkpoint, error) {
	if err := b.lock(); err != nil {
		return log.Checkpoint{}, err
	}
	defer b.s.mu.Unlock()
	if len(b.s.checkpoints) == 0 {
		return log.Checkpoint{}, log.ErrNotFound
	}
	return b.s.checkpoints[len(b.s.checkpoints)-1], nil
}

func (b *memBackend) Covering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	if err := b.lock(); err != nil {
		return log.Checkpoint{}, err
	}
	defer b.s.mu.Unlock()
	for _, cp := range b.s.checkpoints {
		if cp.Size > index {
			return cp, nil
		}
	}
	return log.Checkpoint{}, log.ErrNotFound
}

func (b *memBackend) InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error) {
	if err := b.lock(); err != nil {
		return nil, err
	}
	defer b.s.mu.Unlock()
	if index >= size || size > b.s.tree.Size() {
		return nil, log.ErrOutOfRange
	}
	p, err := b.s.tree.InclusionProof(index, size)
	return to32(p), err
}

func (b *memBackend) ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error) {
	if err := b.lock(); err != nil {
		return nil, err
	}
	defer b.s.mu.Unlock()
	if from == 0 || from > to || to > b.s.tree.Size() {
		return nil, log.ErrOutOfRange
	}
	p, err := b.s.tree.ConsistencyProof(from, to)
	return to32(p), err
}

func to32(p [][]byte) [][32]byte {
	out := make([][32]byte, len(p))
	for i := range p {
		out[i] = [32]byte(p[i])
	}
	return out
}

func (b *memBackend) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	if err := b.lock(); err != nil {
		return nil, err
	}
	defer b.s.mu.Unlock()
	size := uint64(len(b.s.leaves))
	if start >= size {
		return nil, log.ErrOutOfRange
	}
	end := min(size, start+uint64(count))
	return append([][]byte(nil), b.s.leaves[start:end]...), nil
}

func (b *memBackend) Lookup(ctx context.Context, kind log.Kind, id string) (uint64, []byte, error) {
	if err := b.lock(); err != nil {
		return 0, nil, err
	}
	defer b.s.mu.Unlock()
	idx, ok := b.s.ids[kindID{kind, id}]
	if !ok {
		return 0, nil, log.ErrNotFound
	}
	return idx, b.s.leaves[idx], nil
}

func (b *memBackend) LookupHash(ctx context.Context, leafHash [32]byte) (uint64, error) {
	if err := b.lock(); err != nil {
		return 0, err
	}
	defer b.s.mu.Unlock()
	idx, ok := b.s.hashes[leafHash]
	if !ok {
		return 0, log.ErrNotFound
	}
	return idx, nil
}

func (b *memBackend) Ready(ctx context.Context) error {
	if err := b.lock(); err != nil {
		return fmt.Errorf("%w: %w", log.ErrUnavailable, err)
	}
	defer b.s.mu.Unlock()
	if b.failAppend {
		return fmt.Errorf("%w: injected failure", log.ErrUnavailable)
	}
	return nil
}

func (b *memBackend) Close() error {
	if err := b.lock(); err != nil {
		return err
	}
	defer b.s.mu.Unlock()
	b.closed = true
	return nil
}

func newMemLog(t *testing.T) Opener {
	s := newMemStore()
	return func(t *testing.T) log.Backend { return &memBackend{s: s} }
}

func TestMemory(t *testing.T) {
	Run(t, newMemLog)
}

// TestMemoryReordered runs the suite against a backend that gives the
// entries of a batch their indices in another order than the batch's, as
// the contract allows: dependencies first, otherwise last entry first.
func TestMemoryReordered(t *testing.T) {
	Run(t, func(t *testing.T) Opener {
		s := newMemStore()
		return func(t *testing.T) log.Backend { return &memBackend{s: s, reorder: reverseWaves} }
	})
}

// reverseWaves orders entries by dependency depth, and within one depth
// backwards.
func reverseWaves(deps []int) []int {
	depth := make([]int, len(deps))
	most := 0
	for k, d := range deps {
		if d >= 0 {
			depth[k] = depth[d] + 1 // d < k
			most = max(most, depth[k])
		}
	}
	var order []int
	for w := 0; w <= most; w++ {
		for k := len(deps) - 1; k >= 0; k-- {
			if depth[k] == w {
				order = append(order, k)
			}
		}
	}
	return order
}

// reverse orders entries backwards, ignoring their dependencies.
func reverse(deps []int) []int {
	order := make([]int, len(deps))
	for k := range order {
		order[k] = len(deps) - 1 - k
	}
	return order
}

// brokenBackends are backends that each break one rule, and the subtests
// of the suite that must catch them.
func brokenBackends() map[string]struct {
	newLog func(t *testing.T) Opener
	tests  []string
} {
	wrap := func(f func(b *memBackend) log.Backend) func(t *testing.T) Opener {
		return func(t *testing.T) Opener {
			s := newMemStore()
			return func(t *testing.T) log.Backend { return f(&memBackend{s: s}) }
		}
	}
	type broken = struct {
		newLog func(t *testing.T) Opener
		tests  []string
	}
	return map[string]broken{
		"forgetful": {func(t *testing.T) Opener {
			return func(t *testing.T) log.Backend { return &memBackend{s: newMemStore()} }
		}, []string{"Durability", "Log/Reopen", "Log/CloseDrains"}},
		"no-sequences": {wrap(func(b *memBackend) log.Backend { return &noSeq{b} }), []string{"SequenceConflict", "Log/Refusals"}},
		"bad-proofs":   {wrap(func(b *memBackend) log.Backend { return &badProof{b} }), []string{"Proofs", "AppendBatch"}},
		"bad-receipts": {wrap(func(b *memBackend) log.Backend { return &badAppendProof{b} }),
			[]string{"AppendSingle", "AppendBatch", "Log/Submit", "Log/Concurrent"}},
		"latest-covering": {wrap(func(b *memBackend) log.Backend { return &latestCovering{b} }), []string{"Resubmission", "Log/Resubmission", "Proofs"}},
		"short-pages":     {wrap(func(b *memBackend) log.Backend { return &shortPages{b} }), []string{"Entries"}},
		"fork":            {wrap(func(b *memBackend) log.Backend { return &forking{memBackend: b} }), []string{"Proofs"}},
		"dependencies-last": {wrap(func(b *memBackend) log.Backend {
			b.reorder = reverse
			return b
		}), []string{"Parent", "Executions", "Namespaces"}},
	}
}

// TestBroken runs the suite against the broken backend named by
// $LOGTEST_BROKEN; TestSuiteFails runs it in a child process and expects it
// to fail.
func TestBroken(t *testing.T) {
	name := os.Getenv("LOGTEST_BROKEN")
	if name == "" {
		t.Skip("run by TestSuiteFails")
	}
	Run(t, brokenBackends()[name].newLog)
}

// TestSuiteFails checks that the suite catches broken backends: the suite
// can fail.
func TestSuiteFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	if os.Getenv("LOGTEST_BROKEN") != "" {
		t.Skip("in a child process")
	}
	for name, b := range brokenBackends() {
		for _, sub := range b.tests {
			t.Run(name+"/"+sub, func(t *testing.T) {
				pattern := "^TestBroken$"
				for _, part := range strings.Split(sub, "/") {
					pattern += "/^" + part + "$"
				}
				cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.count=1")
				cmd.Env = append(os.Environ(), "LOGTEST_BROKEN="+name)
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				if !errors.As(err, &exit) {
					t.Fatalf("the suite's %s passed against the %s backend (err %v):\n%s", sub, name, err, out)
				}
				if !bytes.Contains(out, []byte("--- FAIL: TestBroken/"+sub)) {
					t.Fatalf("the child did not fail in %s:\n%s", sub, out)
				}
			})
		}
	}
}

// noSeq forgets sequence numbers.
type noSeq struct{ *memBackend }

func (b *noSeq) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	for _, e := range batch {
		if e.Sequence != 0 {
			c := *e.Submission
			c.Sequence = 0
			e.Submission = &c
		}
	}
	return b.memBackend.Append(ctx, batch, sign)
}

type badProof struct{ *memBackend }

func (b *badProof) InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error) {
	p, err := b.memBackend.InclusionProof(ctx, index, size)
	if len(p) > 1 {
		p[0], p[1] = p[1], p[0]
	}
	return p, err
}

// badAppendProof returns wrong inclusion proofs from Append.
type badAppendProof struct{ *memBackend }

func (b *badAppendProof) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	res, cp, err := b.memBackend.Append(ctx, batch, sign)
	for i, r := range res {
		if len(r.Proof) > 0 {
			r.Proof[0][0] ^= 1
		} else if r.Err == nil && !r.Existing {
			res[i].Proof = [][32]byte{{}}
		}
	}
	return res, cp, err
}

type latestCovering struct{ *memBackend }

func (b *latestCovering) Covering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	cp, err := b.memBackend.Latest(ctx)
	if err == nil && cp.Size <= index {
		return log.Checkpoint{}, log.ErrNotFound
	}
	return cp, err
}

type shortPages struct{ *memBackend }

func (b *shortPages) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	leaves, err := b.memBackend.Entries(ctx, start, count)
	if len(leaves) > 1 {
		leaves = leaves[:len(leaves)-1]
	}
	return leaves, err
}

// forking signs a checkpoint for a root other than the tree's, once the log
// is past size 40.
type forking struct {
	*memBackend
}

func (b *forking) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	return b.memBackend.Append(ctx, batch, func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		if size > 40 {
			hash[0] ^= 1
		}
		return sign(size, hash)
	})
}

var _ log.Searcher = (*memBackend)(nil)

// Search scans every entry the latest checkpoint covers.
func (b *memBackend) Search(ctx context.Context, q *log.Query, start, end uint64, limit int) ([]log.Found, error) {
	if err := b.lock(); err != nil {
		return nil, err
	}
	defer b.s.mu.Unlock()
	var size uint64
	if n := len(b.s.checkpoints); n > 0 {
		size = b.s.checkpoints[n-1].Size
	}
	if end == 0 || end > size {
		end = size
	}
	var cands []log.Found
	for i := start; i < end; i++ {
		cands = append(cands, log.Found{Index: i, Leaf: b.s.leaves[i]})
	}
	found, _, err := log.FilterFound(q, cands, limit)
	return found, err
}
