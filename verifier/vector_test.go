package verifier_test

import (
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/internal/testlog"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// exampleVector builds the receipt of ExampleReceipt from fixed keys and
// timestamps: entry 1 of a three-entry log, against the checkpoint of size 3.
func exampleVector(t testing.TB) (vkey, tlogProof string) {
	signer, _, vkey := testlog.NoteKey(t, "example.com/govlog", 1)
	tree := testonly.New(rfc6962.DefaultHasher)
	var leaves [][]byte
	for i, body := range []string{
		`{"id":"d-0","outcome":"deny","decided_at":"2026-11-25T17:59:00Z","subject":"agent-7","action":"deploy","policy":{"id":"prod-deploy"}}`,
		`{"id":"d-1","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","resource":"svc/api","policy":{"id":"prod-deploy"}}`,
		`{"id":"x-1","decision_id":"d-1","status":"succeeded","at":"2026-11-25T18:00:30Z"}`,
	} {
		loggedAt := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Minute)
		var sub *log.Submission
		if i < 2 {
			d, err := log.ParseDecision([]byte(body), loggedAt)
			if err != nil {
				t.Fatal(err)
			}
			sub = log.DecisionSubmission(d, "control-plane-1")
		} else {
			x, err := log.ParseExecution([]byte(body), loggedAt)
			if err != nil {
				t.Fatal(err)
			}
			sub = log.ExecutionSubmission(x, "runtime-1")
		}
		e, err := log.NewEntry(sub, loggedAt, 300*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, e.Leaf)
		tree.AppendData(e.Leaf)
	}
	cp, err := log.SignCheckpoint(signer, 3, [32]byte(tree.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	p, err := tree.InclusionProof(1, 3)
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([][32]byte, len(p))
	for i := range p {
		hashes[i] = [32]byte(p[i])
	}
	return vkey, log.NewReceipt("d-1", 1, leaves[1], cp, hashes).TLogProof
}

// TestExampleVector checks that the vector of the examples is what the log
// package builds today: a change of the entry, checkpoint or tlog-proof
// encoding shows here first.
func TestExampleVector(t *testing.T) {
	vkey, tlogProof := exampleVector(t)
	if vkey != exampleLogKey {
		t.Errorf("log key is now\n%s", vkey)
	}
	if tlogProof != exampleTLogProof {
		t.Errorf("tlog-proof is now\n%s", tlogProof)
	}
}
