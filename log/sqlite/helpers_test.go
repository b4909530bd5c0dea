package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

const testOrigin = "example.com/govlog-sqlite-test"

var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newSign returns a SignFunc signing with a fresh Ed25519 note key, and
// the key's verifier.
func newSign(t testing.TB) (log.SignFunc, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}, verifier
}

// openAt opens the backend at path and closes it at the end of the test.
func openAt(t testing.TB, path string, opts Options) *Backend {
	t.Helper()
	b, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func tempDB(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "log.db")
}

// decisionOpts are the optional fields of a test decision.
type decisionOpts struct {
	outcome   string // default allow
	submitter string // default "alice"
	parent    string
	sequence  uint64
	action    string // default "deploy"
	pad       int    // bytes of context padding
}

// decision builds the entry of a valid decision, through the log package's
// own parsing and canonicalization.
func decision(t testing.TB, id string, o decisionOpts) *log.Entry {
	t.Helper()
	if o.outcome == "" {
		o.outcome = log.OutcomeAllow
	}
	if o.submitter == "" {
		o.submitter = "alice"
	}
	if o.action == "" {
		o.action = "deploy"
	}
	d := map[string]any{
		"id": id, "outcome": o.outcome, "decided_at": testTime.Format(time.RFC3339),
		"subject": "agent-7", "action": o.action, "policy": map[string]any{"id": "prod-deploy"},
	}
	if o.parent != "" {
		d["parent_id"] = o.parent
	}
	if o.sequence != 0 {
		d["sequence"] = o.sequence
	}
	if o.pad > 0 {
		d["context"] = map[string]any{"pad": strings.Repeat("x", o.pad)}
	}
	body, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := log.ParseDecision(body, testTime)
	if err != nil {
		t.Fatalf("ParseDecision: %v", err)
	}
	e, err := log.NewEntry(log.DecisionSubmission(parsed, o.submitter), testTime, 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// execution builds the entry of a valid execution report.
func execution(t testing.TB, id, decisionID, submitter string) *log.Entry {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"id": id, "decision_id": decisionID, "status": "succeeded", "at": testTime.Format(time.RFC3339),
	})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := log.ParseExecution(body, testTime)
	if err != nil {
		t.Fatalf("ParseExecution: %v", err)
	}
	e, err := log.NewEntry(log.ExecutionSubmission(parsed, submitter), testTime, 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// entryOfSize builds decision i with a leaf of about size bytes.
func entryOfSize(t testing.TB, i int, size int) *log.Entry {
	t.Helper()
	e := decision(t, fmt.Sprintf("d-%08d", i), decisionOpts{})
	if pad := size - len(e.Leaf) - len(`,"context":{"pad":""}`); pad > 0 {
		e = decision(t, fmt.Sprintf("d-%08d", i), decisionOpts{pad: pad})
	}
	return e
}

// mustAppend appends a batch and fails the test on a batch error.
func mustAppend(t testing.TB, b *Backend, sign log.SignFunc, batch ...*log.Entry) ([]log.AppendResult, log.Checkpoint) {
	t.Helper()
	res, cp, err := b.Append(context.Background(), batch, sign)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("Append returned %d results for %d entries", len(res), len(batch))
	}
	return res, cp
}

// reference is an independent Merkle tree of the leaves appended so far.
type reference struct {
	tree   *testonly.Tree
	leaves [][]byte
}

func newReference() *reference { return &reference{tree: testonly.New(rfc6962.DefaultHasher)} }

func (r *reference) add(leaves ...[]byte) {
	for _, l := range leaves {
		r.tree.AppendData(l)
		r.leaves = append(r.leaves, l)
	}
}

// checkInclusion verifies the backend's inclusion proof of index in size
// against the reference root.
func (r *reference) checkInclusion(t testing.TB, b *Backend, index, size uint64) {
	t.Helper()
	p, err := b.InclusionProof(context.Background(), index, size)
	if err != nil {
		t.Fatalf("InclusionProof(%d, %d): %v", index, size, err)
	}
	lh := log.LeafHash(r.leaves[index])
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, lh[:], slices32(p), r.tree.HashAt(size)); err != nil {
		t.Fatalf("InclusionProof(%d, %d) does not verify: %v", index, size, err)
	}
}

func (r *reference) checkConsistency(t testing.TB, b *Backend, from, to uint64) {
	t.Helper()
	p, err := b.ConsistencyProof(context.Background(), from, to)
	if err != nil {
		t.Fatalf("ConsistencyProof(%d, %d): %v", from, to, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, slices32(p), r.tree.HashAt(from), r.tree.HashAt(to)); err != nil {
		t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", from, to, err)
	}
}

func slices32(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}
