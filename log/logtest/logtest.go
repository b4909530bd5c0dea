// Package logtest is the conformance suite of log.Backend: every storage
// backend of govlog runs it from its own tests,
//
//	func TestConformance(t *testing.T) {
//		logtest.Run(t, func(t *testing.T) logtest.Opener {
//			dir := t.TempDir() // a new, empty log
//			return func(t *testing.T) log.Backend {
//				b, err := mybackend.Open(context.Background(), dir)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return b
//			}
//		})
//	}
//
// Run checks the contract documented on log.Backend both directly and
// through the log.Log sequencer: appends of single entries and batches
// (distinct indices, all covered by the returned checkpoint, in any order
// consistent with the batch's parent and decision links, each appended
// entry with its inclusion proof in that checkpoint), the rule book's
// verdicts as the backend applies them, groups of submissions (SubmitAll)
// appended whole,
// idempotent resubmission, id and sequence conflicts, lineage (parent_id)
// and execution reports, RFC 6962 inclusion and consistency proofs verified
// against the signed checkpoints, paging, lookups, durability across close
// and reopen, concurrent submissions and readers, the sequencer's
// backpressure and shutdown, and that no two checkpoints of one size ever
// have different roots.
//
// Every checkpoint is signed with the fixed test key SignerKey, whose origin
// is "example.com/govlog"; the keys are test-only and public.
package logtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Opener opens the Backend under test on the storage of one log. Every call
// of one Opener opens the same log: after the suite closed the Backend an
// earlier call returned, the next call must see everything the log
// acknowledged (durability). The suite closes every Backend it opens, itself
// or through log.Log.Close; an Opener must not close it.
//
// An embedded backend keeps the log in a directory the Opener captures; a
// networked one (Trillian) captures the tree and connects again on each call.
type Opener func(t *testing.T) log.Backend

// Run runs the conformance suite against a backend. newLog is called once
// per subtest and must return the Opener of a new, empty log. Subtests do
// not run in parallel.
func Run(t *testing.T, newLog func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Empty", testEmpty},
		{"AppendSingle", testAppendSingle},
		{"AppendBatch", testAppendBatch},
		{"Resubmission", testResubmission},
		{"IDConflict", testIDConflict},
		{"SequenceConflict", testSequenceConflict},
		{"Parent", testParent},
		{"Executions", testExecutions},
		{"Evidence", testEvidence},
		{"Evidence/Batch", testEvidenceBatch},
		{"Namespaces", testNamespaces},
		{"Proofs", testProofs},
		{"OutOfRange", testOutOfRange},
		{"Entries", testEntries},
		{"Durability", testDurability},
		{"ConcurrentReaders", testConcurrentReaders},
		{"Canceled", testCanceled},
		{"Search", testSearch},
		{"Log/Config", testLogConfig},
		{"Log/Submit", testLogSubmit},
		{"Log/Resubmission", testLogResubmission},
		{"Log/SubmitAll", testLogSubmitAll},
		{"Log/Refusals", testLogRefusals},
		{"Log/Lookup", testLogLookup},
		{"Log/Concurrent", testLogConcurrent},
		{"Log/Reopen", testLogReopen},
		{"Log/WrongKey", testLogWrongKey},
		{"Log/ClockBackwards", testLogClockBackwards},
		{"Log/Pushback", testLogPushback},
		{"Log/CloseDrains", testLogCloseDrains},
		{"Log/TooLarge", testLogTooLarge},
		{"Log/AppendFailure", testLogAppendFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newHarness(t, newLog(t)))
		})
	}
}

// harness holds one log under test and what the suite learnt about it.
type harness struct {
	open     Opener
	signer   note.Signer
	verifier note.Verifier

	mu sync.Mutex
	// roots is every checkpoint root seen, by size: a second root for one
	// size is a fork.
	roots map[uint64][32]byte
	// tick makes each direct Append's logged_at distinct.
	tick int
}

func newHarness(t *testing.T, open Opener) *harness {
	s, v := Keys(t)
	return &harness{open: open, signer: s, verifier: v, roots: make(map[uint64][32]byte)}
}

// closeOnce lets the suite close a Backend exactly once, whether a test
// closes it, log.Log.Close does, or the test's cleanup.
type closeOnce struct {
	log.Backend
	once sync.Once
	err  error
}

func (c *closeOnce) Close() error {
	c.once.Do(func() { c.err = c.Backend.Close() })
	return c.err
}

// backend opens the log; the Backend is closed when the test ends, unless
// it already was.
func (h *harness) backend(t *testing.T) log.Backend {
	t.Helper()
	b := h.open(t)
	if b == nil {
		t.Fatal("Opener returned a nil Backend")
	}
	c := &closeOnce{Backend: b}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("failed to close the backend: %v", err)
		}
	})
	return c
}

func (h *harness) sign(size uint64, hash [32]byte) (log.Checkpoint, error) {
	return log.SignCheckpoint(h.signer, size, hash)
}

// checkpoint checks that cp is a checkpoint of this log: its note opens
// with the log's key and says what cp says, and no other root was ever seen
// for its size. It returns the opened checkpoint.
func (h *harness) checkpoint(t *testing.T, cp log.Checkpoint) log.Checkpoint {
	t.Helper()
	opened, err := log.OpenCheckpoint(cp.Note, h.verifier)
	if err != nil {
		t.Fatalf("checkpoint of size %d does not open with the log key: %v\n%s", cp.Size, err, cp.Note)
	}
	if opened.Origin != cp.Origin || opened.Size != cp.Size || opened.Hash != cp.Hash {
		t.Fatalf("checkpoint fields (origin %q, size %d, root %x) differ from its note:\n%s", cp.Origin, cp.Size, cp.Hash, cp.Note)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if root, ok := h.roots[cp.Size]; ok && root != cp.Hash {
		t.Fatalf("two checkpoints of size %d with different roots: %x and %x", cp.Size, root, cp.Hash)
	}
	h.roots[cp.Size] = cp.Hash
	return opened
}

// entries stamps submissions for a direct Append, each with its own
// logged_at, a millisecond after the previous one.
func (h *harness) entries(t *testing.T, subs ...*log.Submission) []*log.Entry {
	t.Helper()
	out := make([]*log.Entry, len(subs))
	for i, s := range subs {
		h.mu.Lock()
		h.tick++
		at := baseTime().Add(time.Duration(h.tick) * time.Millisecond)
		h.mu.Unlock()
		e, err := log.NewEntry(s, at, 300*time.Second)
		if err != nil {
			t.Fatalf("NewEntry(%s %q): %v", s.Kind, s.ID, err)
		}
		e.Origin = h.signer.Name()
		out[i] = e
	}
	return out
}

// append appends a batch directly, failing the test on a batch error, and
// checks the shape of the results and the checkpoint.
func (h *harness) append(t *testing.T, b log.Backend, subs ...*log.Submission) ([]log.AppendResult, log.Checkpoint) {
	t.Helper()
	return h.appendEntries(t, b, h.entries(t, subs...))
}

func (h *harness) appendEntries(t *testing.T, b log.Backend, batch []*log.Entry) ([]log.AppendResult, log.Checkpoint) {
	t.Helper()
	before, err := b.Latest(context.Background())
	if err != nil && !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Latest: %v", err)
	}
	res, cp, err := b.Append(context.Background(), batch, h.sign)
	if err != nil {
		t.Fatalf("Append of %d entries: %v", len(batch), err)
	}
	if len(res) != len(batch) {
		t.Fatalf("Append returned %d results for %d entries", len(res), len(batch))
	}
	h.checkpoint(t, cp)
	// New entries take distinct indices from before.Size on, in any order
	// consistent with the batch's dependencies; the checkpoint covers
	// exactly them (a single writer appends nothing else).
	next := before.Size
	index := make(map[kindID]uint64) // entries of the batch with an index
	taken := make(map[uint64]int)
	for i, r := range res {
		key := kindID{batch[i].Kind, batch[i].ID}
		if lh := log.LeafHash(r.Leaf); r.LeafHash != nil && !bytes.Equal(r.LeafHash, lh[:]) {
			t.Errorf("result %d: LeafHash %x is not the hash of Leaf, %x", i, r.LeafHash, lh)
		}
		switch {
		case r.Err != nil:
			if r.Existing {
				t.Errorf("result %d: both Existing and Err %v", i, r.Err)
			}
		case r.Existing:
			if first, ok := index[key]; ok && first != r.Index {
				t.Errorf("result %d: Existing at index %d, but the same id is at %d earlier in the batch", i, r.Index, first)
			} else if !ok && r.Index >= before.Size {
				t.Errorf("result %d: Existing at index %d, beyond the log before this batch (%d)", i, r.Index, before.Size)
			}
			index[key] = r.Index
		default:
			if r.Index < before.Size {
				t.Errorf("result %d: appended at index %d, inside the log before this batch (%d)", i, r.Index, before.Size)
			}
			if other, ok := taken[r.Index]; ok {
				t.Errorf("results %d and %d: both appended at index %d", other, i, r.Index)
			}
			taken[r.Index] = i
			if v := log.LeafViolation(r.Leaf); !bytes.Equal(r.Leaf, batch[i].Leaf) &&
				(v == "" || !bytes.Equal(r.Leaf, log.WithViolation(batch[i].Leaf, v))) {
				t.Errorf("result %d: Leaf is not the appended entry's leaf", i)
			}
			// SPEC: an entry whose parent or decision is appended earlier
			// in the same batch gets a higher index.
			if dep, ok := index[dependency(batch[i])]; ok && dep >= r.Index {
				t.Errorf("result %d (%v %q): appended at index %d, but the decision it names is at %d", i, key.kind, key.id, r.Index, dep)
			}
			index[key] = r.Index
			next++
		}
	}
	for idx, i := range taken {
		if idx >= next {
			t.Errorf("result %d: appended at index %d, but the batch appended %d entries after the %d before it", i, idx, next-before.Size, before.Size)
		}
	}
	if cp.Size != next {
		t.Fatalf("Append returned a checkpoint of size %d, want %d", cp.Size, next)
	}
	// SPEC: the results of the entries the batch appended (and of their
	// repeats in it) carry their inclusion proofs in the checkpoint
	// returned, which is the first to cover them (a single writer); the
	// others carry none.
	for i, r := range res {
		switch {
		case r.Err != nil || r.Index < before.Size:
			if r.Proof != nil {
				t.Errorf("result %d (index %d, err %v): a proof, but the batch did not append the entry", i, r.Index, r.Err)
			}
		case r.Proof == nil:
			t.Errorf("result %d: appended at index %d without its inclusion proof", i, r.Index)
		default:
			lh := log.LeafHash(r.Leaf)
			if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, lh[:], slices32(r.Proof), cp.Hash[:]); err != nil {
				t.Errorf("result %d: the inclusion proof of index %d in the checkpoint of size %d does not verify: %v", i, r.Index, cp.Size, err)
			}
		}
	}
	if next == before.Size && err == nil && before.Note != nil && !bytes.Equal(cp.Note, before.Note) {
		t.Errorf("Append appended nothing but returned a new checkpoint:\n%s\nwant the previous one:\n%s", cp.Note, before.Note)
	}
	latest, err := b.Latest(context.Background())
	if err != nil {
		t.Fatalf("Latest after Append: %v", err)
	}
	if !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("Latest after Append returned\n%s\nwant the checkpoint Append returned\n%s", latest.Note, cp.Note)
	}
	return res, cp
}

// kindID names an entry: ids are unique per kind.
type kindID struct {
	kind log.Kind
	id   string
}

// dependency names the decision an entry names as parent or decision;
// the zero kindID when none.
func dependency(e *log.Entry) kindID {
	switch {
	case e.Kind == log.KindDecision && e.ParentID != "":
		return kindID{log.KindDecision, e.ParentID}
	case e.Kind == log.KindExecution:
		return kindID{log.KindDecision, e.DecisionID}
	}
	return kindID{}
}

// byIndex returns the leaves a batch appended in the order of their
// indices, which need not be the batch's.
func byIndex(batch []*log.Entry, res []log.AppendResult) [][]byte {
	type indexed struct {
		index uint64
		leaf  []byte
	}
	var added []indexed
	for i, r := range res {
		if r.Err == nil && !r.Existing {
			added = append(added, indexed{r.Index, batch[i].Leaf})
		}
	}
	slices.SortFunc(added, func(a, b indexed) int { return cmp.Compare(a.index, b.index) })
	out := make([][]byte, len(added))
	for i, a := range added {
		out[i] = a.leaf
	}
	return out
}

// verifyInclusion checks the backend's inclusion proof of the leaf at index
// against root, the root of the tree of size.
func verifyInclusion(t *testing.T, b log.Backend, index, size uint64, leafHash, root [32]byte) {
	t.Helper()
	p, err := b.InclusionProof(context.Background(), index, size)
	if err != nil {
		t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash[:], slices32(p), root[:]); err != nil {
		t.Fatalf("InclusionProof(%d, %d) does not verify: %v", index, size, err)
	}
}

// verifyConsistency checks the backend's consistency proof between two
// tree sizes against their roots.
func verifyConsistency(t *testing.T, b log.Backend, from, to uint64, root1, root2 [32]byte) {
	t.Helper()
	p, err := b.ConsistencyProof(context.Background(), from, to)
	if err != nil {
		t.Fatalf("ConsistencyProof(%d, %d): %v", from, to, err)
	}
	if err := mproof.VerifyConsistency(rfc6962.DefaultHasher, from, to, slices32(p), root1[:], root2[:]); err != nil {
		t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", from, to, err)
	}
}

func slices32(hs [][32]byte) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// verifyReceipt checks a receipt as an offline verifier would, from the
// receipt alone and the log's verifier key: the tlog-proof parses, carries
// the entry, and its inclusion proof verifies against its checkpoint; the
// receipt's other fields say the same.
func (h *harness) verifyReceipt(t *testing.T, r *log.Receipt) log.Checkpoint {
	t.Helper()
	var tp proof.TLogProof
	if len(r.Entry) > tlogProofParseLimit {
		// formats/proof cannot read this tlog-proof (see
		// tlogProofParseLimit): check that it is the standard encoding of
		// the receipt's own fields, and verify those.
		tp = proof.TLogProof{Index: r.Index, Hashes: make([][32]byte, len(r.InclusionProof)), Checkpoint: []byte(r.Checkpoint), ExtraData: r.Entry}
		for i, h := range r.InclusionProof {
			if len(h) != 32 {
				t.Fatalf("receipt %q: inclusion_proof hash %d is %d bytes", r.ID, i, len(h))
			}
			tp.Hashes[i] = [32]byte(h)
		}
		if string(tp.Marshal()) != r.TLogProof {
			t.Fatalf("receipt %q: tlog_proof is not the tlog-proof of the receipt's fields", r.ID)
		}
	} else if err := tp.Unmarshal([]byte(r.TLogProof)); err != nil {
		t.Fatalf("receipt %q: tlog_proof does not parse: %v", r.ID, err)
	}
	if !bytes.Equal(tp.ExtraData, r.Entry) {
		t.Fatalf("receipt %q: the tlog_proof's extra is not the entry", r.ID)
	}
	if tp.Index != r.Index {
		t.Fatalf("receipt %q: the tlog_proof's index is %d, the receipt's %d", r.ID, tp.Index, r.Index)
	}
	if string(tp.Checkpoint) != r.Checkpoint {
		t.Fatalf("receipt %q: the tlog_proof's checkpoint is not the receipt's", r.ID)
	}
	if len(tp.Hashes) != len(r.InclusionProof) {
		t.Fatalf("receipt %q: the tlog_proof has %d hashes, inclusion_proof %d", r.ID, len(tp.Hashes), len(r.InclusionProof))
	}
	for i := range tp.Hashes {
		if !bytes.Equal(tp.Hashes[i][:], r.InclusionProof[i]) {
			t.Fatalf("receipt %q: hash %d of the tlog_proof differs from inclusion_proof", r.ID, i)
		}
	}
	cp, err := log.OpenCheckpoint(tp.Checkpoint, h.verifier)
	if err != nil {
		t.Fatalf("receipt %q: checkpoint does not open: %v", r.ID, err)
	}
	h.checkpoint(t, cp)
	lh := log.LeafHash(tp.ExtraData)
	if !bytes.Equal(r.LeafHash, lh[:]) {
		t.Fatalf("receipt %q: leaf_hash is not the entry's leaf hash", r.ID)
	}
	if err := mproof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, cp.Size, lh[:], slices32(tp.Hashes), cp.Hash[:]); err != nil {
		t.Fatalf("receipt %q: inclusion proof of index %d in size %d does not verify: %v", r.ID, tp.Index, cp.Size, err)
	}
	p, err := log.ParseEntry(tp.ExtraData)
	if err != nil {
		t.Fatalf("receipt %q: entry does not parse: %v", r.ID, err)
	}
	if p.ID != r.ID {
		t.Fatalf("receipt %q holds the entry of %q", r.ID, p.ID)
	}
	return cp
}

// tlogProofParseLimit is the largest entry whose tlog-proof
// github.com/transparency-dev/formats/proof (v0.1.1) can parse: its
// Unmarshal reads lines with a bufio.Scanner of the default 64 KiB limit,
// and the "extra" line of a larger entry is longer than that. Entries may
// be up to log.MaxEntryBytes.
const tlogProofParseLimit = 49146

// baseTime is the decided_at of the suite's decisions, and near the
// logged_at of its direct appends.
func baseTime() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// decision returns the submission of a valid decision, parsed with
// log.ParseDecision. fields override or add members; a nil value deletes
// the member.
func decision(t *testing.T, submitter, id, outcome string, fields map[string]any) *log.Submission {
	t.Helper()
	obj := map[string]any{
		"id":         id,
		"outcome":    outcome,
		"decided_at": baseTime().Format(time.RFC3339),
		"subject":    "agent-7",
		"action":     "deploy",
		"policy":     map[string]any{"id": "prod-deploy"},
	}
	for k, v := range fields {
		if v == nil {
			delete(obj, k)
		} else {
			obj[k] = v
		}
	}
	body, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	d, err := log.ParseDecision(body, baseTime())
	if err != nil {
		t.Fatalf("ParseDecision(%s): %v", body, err)
	}
	return log.DecisionSubmission(d, submitter)
}

func allow(t *testing.T, id string) *log.Submission {
	t.Helper()
	return decision(t, "anonymous", id, log.OutcomeAllow, nil)
}

func deny(t *testing.T, id string) *log.Submission {
	t.Helper()
	return decision(t, "anonymous", id, log.OutcomeDeny, nil)
}

// execution returns the submission of a valid execution report.
func execution(t *testing.T, submitter, id, decisionID, status string) *log.Submission {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"decision_id":%q,"status":%q,"at":%q}`, id, decisionID, status, baseTime().Format(time.RFC3339))
	e, err := log.ParseExecution([]byte(body), baseTime())
	if err != nil {
		t.Fatalf("ParseExecution(%s): %v", body, err)
	}
	return log.ExecutionSubmission(e, submitter)
}

// terminal returns the submission of a terminal report that ends claim.
func terminal(t *testing.T, submitter, id, decisionID, status, claim string) *log.Submission {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"decision_id":%q,"status":%q,"at":%q,"claim_id":%q}`, id, decisionID, status, baseTime().Format(time.RFC3339), claim)
	e, err := log.ParseExecution([]byte(body), baseTime())
	if err != nil {
		t.Fatalf("ParseExecution(%s): %v", body, err)
	}
	return log.ExecutionSubmission(e, submitter)
}

// revocation returns the submission of a valid revocation.
func revocation(t *testing.T, submitter, id, decisionID string) *log.Submission {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"decision_id":%q,"revoked_at":%q}`, id, decisionID, baseTime().Format(time.RFC3339))
	r, err := log.ParseRevocation([]byte(body), baseTime())
	if err != nil {
		t.Fatalf("ParseRevocation(%s): %v", body, err)
	}
	return log.RevocationSubmission(r, submitter)
}

// bigDecision returns an allow whose canonical form is exactly n bytes
// (n from 300 to about 98,000), padded with reasons of three-byte
// characters.
func bigDecision(t *testing.T, id string, n int) *log.Submission {
	t.Helper()
	with := func(reasons []string) *log.Submission {
		return decision(t, "anonymous", id, log.OutcomeAllow, map[string]any{"reasons": reasons})
	}
	// A reason of c bytes adds c+3 bytes (quotes and comma) after the
	// first, which adds c+2 ("[]" are there already).
	full := strings.Repeat("€", 1000)
	var reasons []string
	missing := n - len(with([]string{"x"}).Content) + 1 // bytes of the last reason
	for missing > 3000 && len(reasons) < log.MaxReasons-1 {
		reasons = append(reasons, full)
		missing -= len(full) + 3
	}
	if missing < 1 || missing > 3000 {
		t.Fatalf("cannot pad a decision to %d bytes", n)
	}
	s := with(append(reasons, strings.Repeat("€", missing/3)+strings.Repeat("x", missing%3)))
	if len(s.Content) != n {
		t.Fatalf("padded decision is %d bytes, want %d", len(s.Content), n)
	}
	return s
}

// wantErr checks that err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}
