package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// The tests in this file call the Backend directly, as the sequencer does.

func testEmpty(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	if cp, err := b.Latest(ctx); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Latest of a new log: got %v, %v; want ErrNotFound", cp.Size, err)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready of a new log: %v", err)
	}
	_, err := b.Covering(ctx, 0)
	wantErr(t, "Covering(0) of a new log", err, log.ErrNotFound)
	_, _, err = b.Lookup(ctx, log.KindDecision, "d-1")
	wantErr(t, "Lookup of a new log", err, log.ErrNotFound)
	_, err = b.LookupHash(ctx, log.EmptyRoot)
	wantErr(t, "LookupHash of a new log", err, log.ErrNotFound)

	// An empty batch creates the size-0 checkpoint.
	res, cp, err := b.Append(ctx, nil, h.sign)
	if err != nil {
		t.Fatalf("Append(nil) on a new log: %v", err)
	}
	if len(res) != 0 {
		t.Fatalf("Append(nil) returned %d results", len(res))
	}
	h.checkpoint(t, cp)
	if cp.Size != 0 || cp.Hash != log.EmptyRoot || cp.Origin != h.signer.Name() {
		t.Fatalf("first checkpoint: origin %q, size %d, root %x; want %q, 0, SHA-256(\"\")", cp.Origin, cp.Size, cp.Hash, h.signer.Name())
	}
	latest, err := b.Latest(ctx)
	if err != nil || !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("Latest after the first Append: %v, %q; want the size-0 checkpoint", err, latest.Note)
	}
	// Another empty batch signs nothing new.
	h.appendEntries(t, b, nil)

	_, err = b.Entries(ctx, 0, 1)
	wantErr(t, "Entries(0, 1) of an empty log", err, log.ErrOutOfRange)
	_, err = b.InclusionProof(ctx, 0, 0)
	wantErr(t, "InclusionProof(0, 0)", err, log.ErrOutOfRange)
	_, err = b.ConsistencyProof(ctx, 0, 0)
	wantErr(t, "ConsistencyProof(0, 0)", err, log.ErrOutOfRange)
	_, err = b.Covering(ctx, 0)
	wantErr(t, "Covering(0) of an empty log", err, log.ErrNotFound)
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func testAppendSingle(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	// A first Append that appends creates its checkpoint directly.
	sub := allow(t, "d-1")
	batch := h.entries(t, sub)
	res, cp := h.appendEntries(t, b, batch)
	if res[0].Err != nil || res[0].Existing || res[0].Index != 0 {
		t.Fatalf("first entry: %+v", res[0])
	}
	leaf := batch[0].Leaf
	lh := log.LeafHash(leaf)
	if cp.Size != 1 || cp.Hash != lh {
		t.Fatalf("checkpoint: size %d root %x; want 1 and the leaf hash %x", cp.Size, cp.Hash, lh)
	}
	got, err := b.Entries(ctx, 0, 10)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], leaf) {
		t.Fatalf("Entries(0, 10) = %d leaves, %v; want the one leaf", len(got), err)
	}
	idx, l, err := b.Lookup(ctx, log.KindDecision, "d-1")
	if err != nil || idx != 0 || !bytes.Equal(l, leaf) {
		t.Fatalf("Lookup(d-1) = %d, %v; want 0 and the leaf", idx, err)
	}
	if idx, err := b.LookupHash(ctx, lh); err != nil || idx != 0 {
		t.Fatalf("LookupHash = %d, %v; want 0", idx, err)
	}
	c, err := b.Covering(ctx, 0)
	if err != nil || !bytes.Equal(c.Note, cp.Note) {
		t.Fatalf("Covering(0) = %v; want the checkpoint Append returned", err)
	}
	_, err = b.Covering(ctx, 1)
	wantErr(t, "Covering(1)", err, log.ErrNotFound)
	p, err := b.InclusionProof(ctx, 0, 1)
	if err != nil || len(p) != 0 {
		t.Fatalf("InclusionProof(0, 1) = %d hashes, %v; want none", len(p), err)
	}
	p, err = b.ConsistencyProof(ctx, 1, 1)
	if err != nil || len(p) != 0 {
		t.Fatalf("ConsistencyProof(1, 1) = %d hashes, %v; want none", len(p), err)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func testAppendBatch(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	h.append(t, b, allow(t, "first"))
	ref := testonly.New(rfc6962.DefaultHasher)
	first, _ := b.Entries(ctx, 0, 1)
	ref.AppendData(first...)

	var subs []*log.Submission
	for i := range 10 {
		if i%3 == 0 {
			subs = append(subs, deny(t, fmt.Sprintf("d-%d", i)))
		} else {
			subs = append(subs, allow(t, fmt.Sprintf("d-%d", i)))
		}
	}
	batch := h.entries(t, subs...)
	// appendEntries checks that the indices are 1 to 10, in any order.
	res, cp := h.appendEntries(t, b, batch)
	for i, r := range res {
		if r.Err != nil || r.Existing {
			t.Fatalf("entry %d: %+v; want appended", i, r)
		}
	}
	ref.AppendData(byIndex(batch, res)...)
	if cp.Size != 11 || cp.Hash != [32]byte(ref.Hash()) {
		t.Fatalf("checkpoint: size %d root %x; want 11 and %x", cp.Size, cp.Hash, ref.Hash())
	}
	for i, r := range res {
		c, err := b.Covering(ctx, r.Index)
		if err != nil || !bytes.Equal(c.Note, cp.Note) {
			t.Fatalf("Covering(%d): %v; want the batch's checkpoint", r.Index, err)
		}
		verifyInclusion(t, b, r.Index, cp.Size, log.LeafHash(batch[i].Leaf), cp.Hash)
		got, err := b.Entries(ctx, r.Index, 1)
		if err != nil || !bytes.Equal(got[0], batch[i].Leaf) {
			t.Fatalf("Entries(%d, 1): %v; want the leaf of entry %d of the batch", r.Index, err, i)
		}
	}
	c, err := b.Covering(ctx, 0)
	if err != nil || c.Size != 1 {
		t.Fatalf("Covering(0) = size %d, %v; want the size-1 checkpoint", c.Size, err)
	}
}

func testResubmission(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	seq := decision(t, "alice", "seq-1", log.OutcomeAllow, map[string]any{"sequence": 7})
	orig := h.entries(t, allow(t, "d-1"), seq, execution(t, "rt", "e-1", "d-1", "started"))
	res, cp1 := h.appendEntries(t, b, orig)
	h.append(t, b, allow(t, "d-2"), deny(t, "d-3"))
	latest, _ := b.Latest(ctx)

	// The same submissions again, stamped later: their leaves differ from
	// the stored ones, but they are the same submissions.
	again := h.entries(t, allow(t, "d-1"), seq, execution(t, "rt", "e-1", "d-1", "started"))
	if bytes.Equal(again[0].Leaf, orig[0].Leaf) {
		t.Fatal("test bug: a resubmission should have a later logged_at")
	}
	res2, cp := h.appendEntries(t, b, again)
	for i, r := range res2 {
		if r.Err != nil || !r.Existing || r.Index != res[i].Index || !bytes.Equal(r.Leaf, res[i].Leaf) {
			t.Fatalf("resubmission %d: %+v; want Existing at %d with the original leaf", i, r, res[i].Index)
		}
	}
	if !bytes.Equal(cp.Note, latest.Note) {
		t.Fatalf("a batch of resubmissions changed the latest checkpoint")
	}
	for i := range orig {
		c, err := b.Covering(ctx, res[i].Index)
		if err != nil || !bytes.Equal(c.Note, cp1.Note) {
			t.Fatalf("Covering(%d) after a resubmission: %v; want the original checkpoint", res[i].Index, err)
		}
	}

	// Within one batch: the second copy is Existing with the first's index.
	// (Indices 5 and 6 go to d-4 and d-5, in either order.)
	dup := h.entries(t, allow(t, "d-4"), allow(t, "d-4"), deny(t, "d-5"), allow(t, "d-4"))
	res3, cp3 := h.appendEntries(t, b, dup)
	want := []struct {
		existing bool
		as       int // the batch entry whose index and leaf it gets
	}{{false, 0}, {true, 0}, {false, 2}, {true, 0}}
	for i, w := range want {
		r := res3[i]
		if r.Err != nil || r.Existing != w.existing || r.Index != res3[w.as].Index || !bytes.Equal(r.Leaf, dup[w.as].Leaf) {
			t.Fatalf("batch with duplicates, entry %d: %+v; want Existing=%v with the index and leaf of entry %d", i, r, w.existing, w.as)
		}
	}
	if cp3.Size != 7 || res3[0].Index == res3[2].Index || res3[0].Index < 5 || res3[2].Index < 5 {
		t.Fatalf("batch with duplicates: size %d, d-4 at %d, d-5 at %d; want 7, and 5 and 6", cp3.Size, res3[0].Index, res3[2].Index)
	}
}

func testIDConflict(t *testing.T, h *harness) {
	b := h.backend(t)
	h.append(t, b, decision(t, "alice", "d-1", log.OutcomeAllow, nil))
	_, cp := h.append(t, b, execution(t, "rt", "e-1", "d-1", "started"))

	tests := []struct {
		name string
		sub  *log.Submission
	}{
		{"other content", decision(t, "alice", "d-1", log.OutcomeDeny, nil)},
		{"other submitter", decision(t, "bob", "d-1", log.OutcomeAllow, nil)},
		{"other context", decision(t, "alice", "d-1", log.OutcomeAllow, map[string]any{"context": map[string]any{"k": 1}})},
		{"execution, other status", execution(t, "rt", "e-1", "d-1", "failed")},
		{"execution, other submitter", execution(t, "rt2", "e-1", "d-1", "started")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, got := h.append(t, b, tt.sub)
			wantErr(t, "conflicting resubmission", res[0].Err, log.ErrIDConflict)
			if got.Size != cp.Size {
				t.Fatalf("a refused entry was appended: size %d, want %d", got.Size, cp.Size)
			}
		})
	}
	t.Run("same batch", func(t *testing.T) {
		res, got := h.append(t, b, allow(t, "d-2"), deny(t, "d-2"), allow(t, "d-3"))
		if res[0].Err != nil || res[2].Err != nil {
			t.Fatalf("unexpected refusals: %v, %v", res[0].Err, res[2].Err)
		}
		wantErr(t, "second d-2 of the batch", res[1].Err, log.ErrIDConflict)
		if got.Size != cp.Size+2 || res[0].Index < cp.Size || res[2].Index < cp.Size || res[0].Index == res[2].Index {
			t.Fatalf("size %d, d-2 at %d, d-3 at %d; want %d, and %d and %d", got.Size, res[0].Index, res[2].Index, cp.Size+2, cp.Size, cp.Size+1)
		}
	})
}

func testSequenceConflict(t *testing.T, h *harness) {
	b := h.backend(t)
	seq := func(submitter, id string, n int) *log.Submission {
		return decision(t, submitter, id, log.OutcomeAllow, map[string]any{"sequence": n})
	}
	res, _ := h.append(t, b, seq("alice", "a-1", 1), seq("alice", "a-2", 2), seq("bob", "b-1", 1))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i, r.Err)
		}
	}
	tests := []struct {
		name string
		sub  *log.Submission
		want error // nil: appended; errExisting: Existing
	}{
		{"repeat by the same submitter", seq("alice", "a-3", 1), log.ErrSequenceConflict},
		{"same number, other submitter", seq("carol", "c-1", 2), nil},
		{"identical resubmission", seq("alice", "a-2", 2), errExisting},
		{"new number", seq("alice", "a-4", 4), nil},
		{"no sequence", allow(t, "a-5"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := h.append(t, b, tt.sub)
			checkResult(t, res[0], tt.want)
		})
	}
	t.Run("same batch", func(t *testing.T) {
		res, _ := h.append(t, b, seq("dave", "d-1", 9), seq("dave", "d-2", 9), seq("erin", "e-1", 9))
		checkResult(t, res[0], nil)
		checkResult(t, res[1], log.ErrSequenceConflict)
		checkResult(t, res[2], nil)
	})
	t.Run("resubmission in the same batch", func(t *testing.T) {
		res, _ := h.append(t, b, seq("gina", "g-1", 3), seq("gina", "g-1", 3))
		checkResult(t, res[0], nil)
		checkResult(t, res[1], errExisting)
	})
	t.Run("refused entry keeps its number free", func(t *testing.T) {
		// d-1 is taken by dave with other content: refused, so its
		// sequence number was never used.
		res, _ := h.append(t, b, seq("frank", "d-1", 5), seq("frank", "f-2", 5))
		checkResult(t, res[0], log.ErrIDConflict)
		checkResult(t, res[1], nil)
	})
}

// errExisting marks an expected Existing result in tables.
var errExisting = errors.New("existing")

// violation marks, in tables, an expected new entry that records this
// violation.
type violation string

func (v violation) Error() string { return "violation " + string(v) }

func checkResult(t *testing.T, r log.AppendResult, want error) {
	t.Helper()
	switch want {
	case nil:
		if r.Err != nil || r.Existing {
			t.Fatalf("got %+v, want a new entry", r)
		}
	case errExisting:
		if r.Err != nil || !r.Existing {
			t.Fatalf("got %+v, want Existing", r)
		}
	default:
		if v, ok := want.(violation); ok {
			if r.Err != nil || r.Existing || log.LeafViolation(r.Leaf) != string(v) {
				t.Fatalf("got error %v, existing %v, violation %q; want a new entry with violation %q", r.Err, r.Existing, log.LeafViolation(r.Leaf), v)
			}
			return
		}
		if !errors.Is(r.Err, want) {
			t.Fatalf("got error %v, want %v", r.Err, want)
		}
		if r.Existing {
			t.Fatalf("refused entry is also Existing")
		}
	}
}

func testParent(t *testing.T, h *harness) {
	b := h.backend(t)
	h.append(t, b, allow(t, "root"), deny(t, "denied"), execution(t, "rt", "exec-only", "root", "started"))
	child := func(id, parent string) *log.Submission {
		return decision(t, "anonymous", id, log.OutcomeAllow, map[string]any{"parent_id": parent})
	}
	tests := []struct {
		name string
		sub  *log.Submission
		want error
	}{
		{"parent in the log", child("c-1", "root"), nil},
		{"parent is a deny", child("c-2", "denied"), log.ErrParentDenied},
		{"unknown parent", child("c-3", "nope"), log.ErrUnknownParent},
		{"parent is an execution id", child("c-4", "exec-only"), log.ErrUnknownParent},
		{"grandchild", child("c-5", "c-1"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := h.append(t, b, tt.sub)
			checkResult(t, res[0], tt.want)
		})
	}
	t.Run("same batch", func(t *testing.T) {
		res, _ := h.append(t, b,
			child("b-child-first", "b-parent"), // the parent comes later: unknown
			allow(t, "b-parent"),
			child("b-child", "b-parent"),
		)
		checkResult(t, res[0], log.ErrUnknownParent)
		checkResult(t, res[1], nil)
		checkResult(t, res[2], nil)
	})
	t.Run("chain in the same batch", func(t *testing.T) {
		// appendEntries checks k-0 < k-1 < k-2 < k-e.
		res, _ := h.append(t, b,
			allow(t, "k-0"),
			child("k-1", "k-0"),
			allow(t, "k-x"),
			child("k-2", "k-1"),
			execution(t, "rt", "k-e", "k-2", "started"),
			child("k-3", "root"),
		)
		for i := range res {
			checkResult(t, res[i], nil)
		}
	})
	t.Run("refused parent in the same batch", func(t *testing.T) {
		res, _ := h.append(t, b,
			decision(t, "mallory", "root", log.OutcomeAllow, nil), // id conflict
			child("r-child", "r-new"),
			decision(t, "anonymous", "r-new", log.OutcomeAllow, map[string]any{"parent_id": "missing"}),
			child("r-grandchild", "r-new"),
		)
		checkResult(t, res[0], log.ErrIDConflict)
		checkResult(t, res[1], log.ErrUnknownParent)
		checkResult(t, res[2], log.ErrUnknownParent)
		checkResult(t, res[3], log.ErrUnknownParent)
	})
}

func testExecutions(t *testing.T, h *harness) {
	b := h.backend(t)
	h.append(t, b, allow(t, "ok"), deny(t, "no"))
	// Reports without artifact: the rules that need none.
	tests := []struct {
		name string
		sub  *log.Submission
		want error
	}{
		{"claim without artifact", execution(t, "rt", "e-1", "ok", "started"), violation(log.ViolationArtifactMissing)},
		{"terminal report of an unknown claim", terminal(t, "rt", "e-2", "ok", "succeeded", "no-such-claim"), violation(log.ViolationUnknownClaim)},
		{"identical resubmission", execution(t, "rt", "e-1", "ok", "started"), errExisting},
		{"other content", execution(t, "rt", "e-1", "ok", "aborted"), log.ErrIDConflict},
		{"deny", execution(t, "rt", "e-3", "no", "started"), violation(log.ViolationNotAuthorized)},
		{"unknown decision", execution(t, "rt", "e-4", "nope", "started"), violation(log.ViolationUnknownDecision)},
		{"decision_id names an execution", execution(t, "rt", "e-5", "e-1", "started"), violation(log.ViolationUnknownDecision)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := h.append(t, b, tt.sub)
			checkResult(t, res[0], tt.want)
		})
	}
	t.Run("same batch", func(t *testing.T) {
		res, _ := h.append(t, b,
			execution(t, "rt", "s-0", "s-allow", "started"), // decision comes later
			allow(t, "s-allow"),
			deny(t, "s-deny"),
			execution(t, "rt", "s-1", "s-allow", "started"),
			execution(t, "rt", "s-2", "s-deny", "started"),
			deny(t, "ok"), // conflict: refused, "ok" stays an allow
			execution(t, "rt", "s-3", "ok", "aborted"),
		)
		checkResult(t, res[0], violation(log.ViolationUnknownDecision))
		checkResult(t, res[1], nil)
		checkResult(t, res[2], nil)
		checkResult(t, res[3], violation(log.ViolationArtifactMissing))
		checkResult(t, res[4], violation(log.ViolationNotAuthorized))
		checkResult(t, res[5], log.ErrIDConflict)
		checkResult(t, res[6], violation(log.ViolationArtifactMissing))
	})
}

func testNamespaces(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	res, _ := h.append(t, b, allow(t, "x"), execution(t, "anonymous", "x", "x", "started"))
	checkResult(t, res[0], nil)
	checkResult(t, res[1], nil)
	di, dl, err := b.Lookup(ctx, log.KindDecision, "x")
	if err != nil || di != res[0].Index || !bytes.Equal(dl, res[0].Leaf) {
		t.Fatalf("Lookup(decision x) = %d, %v; want %d", di, err, res[0].Index)
	}
	ei, el, err := b.Lookup(ctx, log.KindExecution, "x")
	if err != nil || ei != res[1].Index || !bytes.Equal(el, res[1].Leaf) {
		t.Fatalf("Lookup(execution x) = %d, %v; want %d", ei, err, res[1].Index)
	}
	// An execution id does not block a decision id, and the other way round.
	res, _ = h.append(t, b, execution(t, "anonymous", "y", "x", "started"), allow(t, "y"))
	checkResult(t, res[0], nil)
	checkResult(t, res[1], nil)
	_, _, err = b.Lookup(ctx, log.KindExecution, "nope")
	wantErr(t, "Lookup(execution nope)", err, log.ErrNotFound)
	_, _, err = b.Lookup(ctx, log.Kind(9), "x")
	if err == nil {
		t.Fatal("Lookup of an unknown kind succeeded")
	}
	for i, leaf := range [][]byte{dl, el} {
		idx, err := b.LookupHash(ctx, log.LeafHash(leaf))
		if err != nil || idx != uint64(i) {
			t.Fatalf("LookupHash(leaf %d) = %d, %v", i, idx, err)
		}
	}
	_, err = b.LookupHash(ctx, log.LeafHash([]byte("no such leaf")))
	wantErr(t, "LookupHash(unknown)", err, log.ErrNotFound)
}

// proofLogSize is the size of the log the proof tests build: sizes 1 to 32
// one Append each, then batches of 13.
const proofLogSize = 300

// buildLog appends proofLogSize decisions and returns the reference tree of
// their leaves, the checkpoints returned, by size, and the decision ids by
// index.
func buildLog(t *testing.T, h *harness, b log.Backend) (*testonly.Tree, map[uint64]log.Checkpoint, []string) {
	ref := testonly.New(rfc6962.DefaultHasher)
	cps := make(map[uint64]log.Checkpoint)
	ids := make([]string, proofLogSize)
	for ref.Size() < proofLogSize {
		n := 1
		if ref.Size() >= 32 {
			n = min(13, proofLogSize-int(ref.Size()))
		}
		subs := make([]*log.Submission, n)
		for i := range subs {
			id := fmt.Sprintf("p-%d", int(ref.Size())+i)
			if i%4 == 3 {
				subs[i] = deny(t, id)
			} else {
				subs[i] = allow(t, id)
			}
		}
		batch := h.entries(t, subs...)
		res, cp := h.appendEntries(t, b, batch)
		ref.AppendData(byIndex(batch, res)...)
		for i, r := range res {
			ids[r.Index] = subs[i].ID
		}
		if cp.Size != ref.Size() || cp.Hash != [32]byte(ref.Hash()) {
			t.Fatalf("checkpoint of size %d has root %x, want size %d root %x", cp.Size, cp.Hash, ref.Size(), ref.Hash())
		}
		cps[cp.Size] = cp
	}
	return ref, cps, ids
}

func testProofs(t *testing.T, h *harness) {
	b := h.backend(t)
	ref, cps, ids := buildLog(t, h, b)
	root := func(size uint64) [32]byte {
		if cp, ok := cps[size]; ok {
			return cp.Hash // signed by the log, checked against ref
		}
		return [32]byte(ref.HashAt(size))
	}
	leafHash := func(i uint64) [32]byte { return [32]byte(ref.LeafHash(i)) }
	short := testing.Short()

	t.Run("inclusion", func(t *testing.T) {
		for size := uint64(1); size <= proofLogSize; size++ {
			// Every index at every size up to 40 and at some signed sizes;
			// elsewhere the edges and the middle.
			all := !short && (size <= 40 || size >= 45 && (size-45)%52 == 0 || size == proofLogSize)
			for i := uint64(0); i < size; i++ {
				if all || i == 0 || i+1 == size || i == size/2 || i == (size*5)/8 {
					verifyInclusion(t, b, i, size, leafHash(i), root(size))
				}
			}
		}
	})
	t.Run("consistency", func(t *testing.T) {
		for from := uint64(1); from <= proofLogSize; from++ {
			_, fromSigned := cps[from]
			for to := from; to <= proofLogSize; to++ {
				_, toSigned := cps[to]
				// Every pair of signed sizes and every pair up to 40;
				// elsewhere a sample.
				all := !short && (fromSigned && toSigned || to <= 40)
				if all || to == from || to == proofLogSize || (from*7+to*13)%199 == 0 {
					verifyConsistency(t, b, from, to, root(from), root(to))
				}
			}
		}
	})
	t.Run("covering", func(t *testing.T) {
		ctx := context.Background()
		for i := uint64(0); i < proofLogSize; i++ {
			c, err := b.Covering(ctx, i)
			if err != nil {
				t.Fatalf("Covering(%d): %v", i, err)
			}
			h.checkpoint(t, c)
			want := cps[c.Size]
			if c.Size <= i || !bytes.Equal(c.Note, want.Note) {
				t.Fatalf("Covering(%d) returned size %d, not the checkpoint Append returned for it", i, c.Size)
			}
			for s := i + 1; s < c.Size; s++ {
				if _, ok := cps[s]; ok {
					t.Fatalf("Covering(%d) returned size %d, but size %d covered it first", i, c.Size, s)
				}
			}
		}
	})
	t.Run("lookups", func(t *testing.T) {
		ctx := context.Background()
		for i := uint64(0); i < proofLogSize; i += 7 {
			idx, leaf, err := b.Lookup(ctx, log.KindDecision, ids[i])
			if err != nil || idx != i || log.LeafHash(leaf) != leafHash(i) {
				t.Fatalf("Lookup(%s) = %d, %v; want index %d and its leaf", ids[i], idx, err, i)
			}
			if idx, err := b.LookupHash(ctx, leafHash(i)); err != nil || idx != i {
				t.Fatalf("LookupHash(leaf %d) = %d, %v", i, idx, err)
			}
		}
	})
}

func testOutOfRange(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	h.append(t, b, allow(t, "a"), allow(t, "b"), allow(t, "c"))
	for _, c := range []struct{ index, size uint64 }{{3, 3}, {0, 4}, {5, 4}, {2, 2}, {0, 0}, {1<<64 - 1, 3}, {0, 1<<64 - 1}} {
		_, err := b.InclusionProof(ctx, c.index, c.size)
		wantErr(t, fmt.Sprintf("InclusionProof(%d, %d)", c.index, c.size), err, log.ErrOutOfRange)
	}
	for _, c := range []struct{ from, to uint64 }{{0, 1}, {0, 3}, {2, 1}, {1, 4}, {4, 4}, {3, 1<<64 - 1}} {
		_, err := b.ConsistencyProof(ctx, c.from, c.to)
		wantErr(t, fmt.Sprintf("ConsistencyProof(%d, %d)", c.from, c.to), err, log.ErrOutOfRange)
	}
	for _, start := range []uint64{3, 4, 1<<64 - 1} {
		_, err := b.Entries(ctx, start, 1)
		wantErr(t, fmt.Sprintf("Entries(%d, 1)", start), err, log.ErrOutOfRange)
	}
	_, err := b.Covering(ctx, 3)
	wantErr(t, "Covering(3)", err, log.ErrNotFound)
}

func testEntries(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	var leaves [][]byte
	for round := range 4 {
		subs := make([]*log.Submission, 9)
		for i := range subs {
			subs[i] = allow(t, fmt.Sprintf("e-%d-%d", round, i))
		}
		batch := h.entries(t, subs...)
		res, _ := h.appendEntries(t, b, batch)
		leaves = append(leaves, byIndex(batch, res)...)
	}
	size := uint64(len(leaves))
	for _, c := range []struct {
		start uint64
		count int
	}{{0, 1}, {0, 36}, {0, 1000}, {5, 4}, {8, 2}, {9, 9}, {30, 10}, {35, 1}, {35, 1000}, {17, 1}} {
		got, err := b.Entries(ctx, c.start, c.count)
		if err != nil {
			t.Fatalf("Entries(%d, %d): %v", c.start, c.count, err)
		}
		want := leaves[c.start:min(size, c.start+uint64(c.count))]
		if len(got) != len(want) {
			t.Fatalf("Entries(%d, %d) returned %d leaves, want %d", c.start, c.count, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("Entries(%d, %d): leaf %d differs", c.start, c.count, i)
			}
		}
	}
	// Paging through the whole log, as an auditor does.
	var all [][]byte
	for start := uint64(0); start < size; {
		page, err := b.Entries(ctx, start, 5)
		if err != nil || len(page) == 0 {
			t.Fatalf("Entries(%d, 5) = %d leaves, %v", start, len(page), err)
		}
		all = append(all, page...)
		start += uint64(len(page))
	}
	if len(all) != len(leaves) {
		t.Fatalf("paging read %d leaves, want %d", len(all), len(leaves))
	}
}

func testDurability(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	h.append(t, b, allow(t, "d-1"), deny(t, "d-2"))
	res, cp := h.append(t, b, execution(t, "rt", "e-1", "d-1", "started"),
		decision(t, "alice", "s-1", log.OutcomeAllow, map[string]any{"sequence": 1}))
	checkResult(t, res[0], nil)
	leaves, err := b.Entries(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	covering := make([]log.Checkpoint, len(leaves))
	for i := range leaves {
		if covering[i], err = b.Covering(ctx, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	b = h.backend(t)
	latest, err := b.Latest(ctx)
	if err != nil || !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("Latest after reopen: %v\n%s\nwant\n%s", err, latest.Note, cp.Note)
	}
	got, err := b.Entries(ctx, 0, 100)
	if err != nil || len(got) != len(leaves) {
		t.Fatalf("Entries after reopen: %d leaves, %v; want %d", len(got), err, len(leaves))
	}
	for i := range got {
		if !bytes.Equal(got[i], leaves[i]) {
			t.Fatalf("leaf %d changed across reopen", i)
		}
		c, err := b.Covering(ctx, uint64(i))
		if err != nil || !bytes.Equal(c.Note, covering[i].Note) {
			t.Fatalf("Covering(%d) changed across reopen: %v", i, err)
		}
		verifyInclusion(t, b, uint64(i), cp.Size, log.LeafHash(got[i]), cp.Hash)
	}
	if idx, _, err := b.Lookup(ctx, log.KindExecution, "e-1"); err != nil || idx != res[0].Index {
		t.Fatalf("Lookup(e-1) after reopen = %d, %v; want %d", idx, err, res[0].Index)
	}
	// Every rule still holds against what was logged before the reopen.
	res, _ = h.append(t, b,
		allow(t, "d-1"), // resubmission
		deny(t, "d-1"),  // conflict
		decision(t, "alice", "s-2", log.OutcomeAllow, map[string]any{"sequence": 1}),
		execution(t, "rt", "e-2", "d-2", "started"),
		decision(t, "anonymous", "d-3", log.OutcomeAllow, map[string]any{"parent_id": "d-1"}),
	)
	checkResult(t, res[0], errExisting)
	checkResult(t, res[1], log.ErrIDConflict)
	checkResult(t, res[2], log.ErrSequenceConflict)
	checkResult(t, res[3], violation(log.ViolationNotAuthorized))
	checkResult(t, res[4], nil)
	next, _ := b.Latest(ctx)
	verifyConsistency(t, b, cp.Size, next.Size, cp.Hash, next.Hash)

	// And again, with nothing appended in between.
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = h.backend(t)
	again, err := b.Latest(ctx)
	if err != nil || !bytes.Equal(again.Note, next.Note) {
		t.Fatalf("Latest after a second reopen: %v", err)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready after reopen: %v", err)
	}
}

// testCanceled appends with a canceled context: the batch either fails as a
// whole, with an error wrapping ErrUnavailable, or succeeds; either way a
// retry of the same submissions afterwards is logged once.
func testCanceled(t *testing.T, h *harness) {
	b := h.backend(t)
	h.append(t, b, allow(t, "a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, cp, err := b.Append(ctx, h.entries(t, allow(t, "b"), deny(t, "c")), h.sign)
	if err != nil {
		wantErr(t, "Append with a canceled context", err, log.ErrUnavailable)
	} else {
		h.checkpoint(t, cp)
		if len(res) != 2 || res[0].Err != nil || res[1].Err != nil {
			t.Fatalf("Append with a canceled context succeeded with results %+v", res)
		}
	}
	// Appends resume; the retry is logged, or Existing if the first try
	// was made durable after all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, cp, err = b.Append(context.Background(), h.entries(t, allow(t, "b"), deny(t, "c")), h.sign)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Append after a canceled one: %v", err)
	}
	h.checkpoint(t, cp)
	for i, r := range res {
		if r.Err != nil || r.Index < 1 || r.Index > 2 {
			t.Fatalf("retry %d: %+v; want index 1 or 2", i, r)
		}
	}
	if cp.Size != 3 || res[0].Index == res[1].Index {
		t.Fatalf("size %d after the retry, indices %d and %d; want 3, and 1 and 2", cp.Size, res[0].Index, res[1].Index)
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("Ready after a successful Append: %v", err)
	}
}

// testConcurrentReaders reads while another goroutine appends: readers see
// all or nothing of a batch, and never an entry whose checkpoint is not yet
// stored.
func testConcurrentReaders(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := h.backend(t)
	h.append(t, b, allow(t, "first"))

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := readOnce(ctx, h, b, r); err != nil {
					if ctx.Err() != nil {
						return // the test is over
					}
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	for i := range 40 {
		subs := make([]*log.Submission, 1+i%5)
		for j := range subs {
			subs[j] = allow(t, fmt.Sprintf("c-%d-%d", i, j))
		}
		if _, _, err := b.Append(ctx, h.entries(t, subs...), h.sign); err != nil {
			if ctx.Err() != nil {
				break
			}
			t.Fatalf("Append: %v", err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func readOnce(ctx context.Context, h *harness, b log.Backend, r int) error {
	switch r {
	case 0:
		// Entries visible means their checkpoint is stored.
		leaves, err := b.Entries(ctx, 0, 1000)
		if err != nil {
			return fmt.Errorf("reader: Entries: %w", err)
		}
		cp, err := b.Latest(ctx)
		if err != nil {
			return fmt.Errorf("reader: Latest: %w", err)
		}
		if uint64(len(leaves)) > cp.Size {
			return fmt.Errorf("reader: Entries returned %d leaves, but the latest checkpoint (read after) has size %d", len(leaves), cp.Size)
		}
		if uint64(len(leaves)) < cp.Size && ctx.Err() == nil {
			// Fine: a batch landed in between. But what was read must be
			// the log's prefix.
			if _, err := b.Entries(ctx, uint64(len(leaves)), 1); err != nil {
				return fmt.Errorf("reader: Entries(%d, 1) below the latest size %d: %w", len(leaves), cp.Size, err)
			}
		}
	case 1:
		// A proof against the latest checkpoint verifies.
		cp, err := b.Latest(ctx)
		if err != nil {
			return fmt.Errorf("reader: Latest: %w", err)
		}
		i := cp.Size - 1
		leaves, err := b.Entries(ctx, i, 1)
		if err != nil {
			return fmt.Errorf("reader: Entries(%d, 1) under the latest checkpoint: %w", i, err)
		}
		p, err := b.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			return fmt.Errorf("reader: InclusionProof(%d, %d): %w", i, cp.Size, err)
		}
		lh := log.LeafHash(leaves[0])
		if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, lh[:], slices32(p), cp.Hash[:]); err != nil {
			return fmt.Errorf("reader: InclusionProof(%d, %d) against the latest checkpoint does not verify: %w", i, cp.Size, err)
		}
	case 2:
		// Found by id means covered by a stored checkpoint.
		cp, err := b.Latest(ctx)
		if err != nil {
			return fmt.Errorf("reader: Latest: %w", err)
		}
		idx, _, err := b.Lookup(ctx, log.KindDecision, fmt.Sprintf("c-%d-0", cp.Size%40))
		if errors.Is(err, log.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reader: Lookup: %w", err)
		}
		c, err := b.Covering(ctx, idx)
		if err != nil {
			return fmt.Errorf("entry %d is visible to Lookup but Covering fails: %w", idx, err)
		}
		if c.Size <= idx {
			return fmt.Errorf("reader: Covering(%d) returned size %d", idx, c.Size)
		}
	}
	return nil
}
