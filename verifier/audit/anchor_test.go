package audit_test

import (
	"bytes"
	"fmt"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/audit"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// auditAnchored runs an audit like tiles.audit, calling check between
// Begin and the replay.
func (s *tiles) auditAnchored(t testing.TB, cp log.Checkpoint, prev *audit.State, check func(a *audit.Audit) error) *audit.Report {
	t.Helper()
	a, err := audit.New(s.l.Verifier, prev)
	if err != nil {
		t.Fatal(err)
	}
	var proof [][]byte
	if prev != nil && prev.Checkpoint().Size < cp.Size {
		proof = s.l.Consistency(prev.Checkpoint().Size, cp.Size)
	}
	if err := a.Begin(cp.Note, proof); err != nil {
		rep, _ := a.Finish()
		return rep
	}
	if err := check(a); err != nil {
		rep, _ := a.Finish()
		return rep
	}
	size := a.Checkpoint().Size
	for next := a.Next(); next < size; next = a.Next() {
		index := next / log.TileWidth
		w := log.TileHashes(size, 0, index)
		if err := a.Apply(a.Scan(index, w, s.get(t, log.TileID{Entries: true, Index: index, Width: w}), s.get(t, log.TileID{Index: index, Width: w}))); err != nil {
			break
		}
	}
	for _, id := range a.PendingTiles() {
		a.CheckTile(id, s.get(t, id))
	}
	rep, _ := a.Finish()
	return rep
}

// TestAnchors: a log rebuilt from scratch with the same key, one deny
// left out, passes an audit that nothing anchors (and the report says
// so), and fails one anchored by the state of an audit of the real log,
// or by a checkpoint of the real log; a witness policy anchors an audit
// and gives the cosignatures' times.
func TestAnchors(t *testing.T) {
	real := testlog.New(t)
	real.GrowClean(300)
	rebuilt := testlog.New(t) // the same key
	for i, e := range real.Entries {
		if i == 1 { // d-1, a deny
			continue
		}
		rebuilt.Append(e, real.Decisions[i])
	}
	for i := 300; i < 320; i++ {
		rebuilt.AddDecision(testlog.DecisionJSON(i))
	}
	none := func(*audit.Audit) error { return nil }

	// The real log, audited once; its state and checkpoint.
	realTiles := newTiles(real)
	first, st := realTiles.audit(t, real.Checkpoint(300), nil, nil)
	if !first.OK || first.Anchored || len(first.Anchors) != 0 {
		t.Fatalf("first audit: ok %v anchored %v %v", first.OK, first.Anchored, first.Anchors)
	}
	real.GrowClean(310)
	if rep := realTiles.auditAnchored(t, real.Checkpoint(310), st, none); !rep.OK || !rep.Anchored || fmt.Sprint(rep.Anchors) != "[state]" {
		t.Fatalf("audit with state: ok %v anchored %v %v %v", rep.OK, rep.Anchored, rep.Anchors, rep.Failures)
	}
	trusted := real.Checkpoint(200).Note
	rep := realTiles.auditAnchored(t, real.Checkpoint(310), nil, func(a *audit.Audit) error {
		return a.CheckTrusted(trusted, real.Consistency(200, 310))
	})
	if !rep.OK || !rep.Anchored || fmt.Sprint(rep.Anchors) != "[trusted_checkpoint]" {
		t.Fatalf("audit with a trusted checkpoint: ok %v anchored %v %v %v", rep.OK, rep.Anchored, rep.Anchors, rep.Failures)
	}

	// The rebuilt log, with nothing to anchor the audit: it passes, and
	// the report says it is not anchored.
	s := newTiles(rebuilt)
	cp := rebuilt.Checkpoint(uint64(len(rebuilt.Entries)))
	rep = s.auditAnchored(t, cp, nil, none)
	if !rep.OK || rep.Anchored || len(rep.Anchors) != 0 {
		t.Fatalf("rebuilt log, unanchored: ok %v anchored %v %v %v", rep.OK, rep.Anchored, rep.Anchors, rep.Failures)
	}
	// Anchored by the real log's audit state: a fork.
	rep = s.auditAnchored(t, cp, st, none)
	if rep.OK || rep.Anchored || len(problems(rep.Failures, audit.ProblemInconsistent)) != 1 || rep.Inconsistency == nil {
		t.Fatalf("rebuilt log with the state: ok %v anchored %v %v", rep.OK, rep.Anchored, rep.Failures)
	}
	// Anchored by a checkpoint of the real log: a fork, with both
	// checkpoints and the proof as evidence.
	for _, size := range []uint64{200, 310} {
		trusted := real.Checkpoint(size).Note
		rep = s.auditAnchored(t, cp, nil, func(a *audit.Audit) error { return a.CheckTrusted(trusted, rebuilt.Consistency(size, cp.Size)) })
		if rep.OK || rep.Anchored || len(problems(rep.Failures, audit.ProblemInconsistent)) != 1 || rep.Inconsistency == nil ||
			rep.Inconsistency.OldCheckpoint != string(trusted) || rep.Inconsistency.NewCheckpoint != string(cp.Note) || len(rep.Inconsistency.Proof) == 0 {
			t.Fatalf("rebuilt log with a trusted checkpoint of size %d: ok %v anchored %v %v", size, rep.OK, rep.Anchored, rep.Failures)
		}
	}
	// A trusted checkpoint larger than the log's: a rollback.
	real.GrowClean(330)
	rep = s.auditAnchored(t, cp, nil, func(a *audit.Audit) error { return a.CheckTrusted(real.Checkpoint(330).Note, nil) })
	if rep.OK || len(problems(rep.Failures, audit.ProblemRollback)) != 1 {
		t.Fatalf("rebuilt log with a larger trusted checkpoint: %v", rep.Failures)
	}
	// The empty tree anchors nothing.
	rep = s.auditAnchored(t, cp, nil, func(a *audit.Audit) error { return a.CheckTrusted(real.Checkpoint(0).Note, nil) })
	if !rep.OK || rep.Anchored {
		t.Fatalf("a trusted empty checkpoint: ok %v anchored %v %v", rep.OK, rep.Anchored, rep.Failures)
	}
	// A trusted checkpoint that is not the log's.
	other := testlog.New(t)
	other.Signer, other.Verifier, _ = testlog.NoteKey(t, testlog.Origin, 2)
	other.GrowClean(10)
	rep = s.auditAnchored(t, cp, nil, func(a *audit.Audit) error { return a.CheckTrusted(other.Checkpoint(10).Note, nil) })
	if rep.OK || len(problems(rep.Failures, audit.ProblemBadCheckpoint)) != 1 {
		t.Fatalf("a foreign trusted checkpoint: %v", rep.Failures)
	}

	// A witness policy: satisfied, the audit is anchored and lists the
	// cosignature; not satisfied, a failure.
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := verifier.ParsePolicy(fmt.Appendf(nil, "witness w1 %s https://w1.example\nquorum w1\n", cvkey))
	if err != nil {
		t.Fatal(err)
	}
	body := cp.Note[:bytes.Index(cp.Note, []byte("\n\n"))+1]
	signed, err := note.Sign(&note.Note{Text: string(body)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	cosigned := cp
	cosigned.Note = append(bytes.Clone(cp.Note), signed[len(body)+1:]...)
	rep = s.auditAnchored(t, cosigned, nil, func(a *audit.Audit) error { a.CheckWitnesses(policy); return nil })
	if !rep.OK || !rep.Anchored || fmt.Sprint(rep.Anchors) != "[witness_policy]" || len(rep.Cosignatures) != 1 || rep.Cosignatures[0].Witness != "witness.example/w1" {
		t.Fatalf("cosigned: ok %v anchored %v %v %v %v", rep.OK, rep.Anchored, rep.Anchors, rep.Cosignatures, rep.Failures)
	}
	rep = s.auditAnchored(t, cp, nil, func(a *audit.Audit) error { a.CheckWitnesses(policy); return nil })
	if rep.OK || rep.Anchored || len(problems(rep.Failures, audit.ProblemWitnessPolicy)) != 1 {
		t.Fatalf("not cosigned: ok %v anchored %v %v", rep.OK, rep.Anchored, rep.Failures)
	}
}
