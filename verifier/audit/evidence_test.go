package audit_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/audit"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// judgedLog builds a log the way the log does: every submission judged by
// the rule book (log.Judge) against what was appended before, with real
// artifacts signed by a logged key; add appends what it appends.
type judgedLog struct {
	t     testing.TB
	l     *testlog.Log
	facts log.Facts
	key   ed25519.PrivateKey
	kid   string
}

func newJudgedLog(t testing.TB) *judgedLog { return judgedOn(t, testlog.New(t)) }

// judgedOn appends to l, whose entries so far the rule book's facts do
// not hold.
func judgedOn(t testing.TB, l *testlog.Log) *judgedLog {
	seed := sha256.Sum256([]byte("audit evidence test key"))
	j := &judgedLog{t: t, l: l, key: ed25519.NewKeyFromSeed(seed[:]), kid: "k-1"}
	c, err := log.NewKeyContent(j.kid, j.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	j.add(log.KeySubmission(c, testlog.Origin))
	return j
}

func (j *judgedLog) now() time.Time {
	return testlog.Start.Add(time.Duration(len(j.l.Entries)) * time.Second)
}

// add judges a submission and appends it unless the rule book refuses it;
// it returns the entry and the verdict.
func (j *judgedLog) add(s *log.Submission) (*log.Entry, log.Verdict) {
	j.t.Helper()
	e, err := log.NewEntry(s, j.now(), testlog.TTL)
	if err != nil {
		j.t.Fatal(err)
	}
	e.Origin = testlog.Origin
	v := log.Judge([]*log.Entry{e}, &j.facts)[0]
	if v.Fate == log.FateAppend {
		e.Leaf = v.Leaf
		j.l.Append(e, nil)
	}
	return e, v
}

// force appends a submission whatever the rule book says, with the given
// violation: a log that breaks its rules.
func (j *judgedLog) force(s *log.Submission, violation string) {
	j.t.Helper()
	e, err := log.NewEntry(s, j.now(), testlog.TTL)
	if err != nil {
		j.t.Fatal(err)
	}
	if violation != "" {
		e.Leaf = log.WithViolation(e.Leaf, violation)
	}
	j.l.Append(e, nil)
}

func (j *judgedLog) decision(id, outcome, extra string) *log.Submission {
	j.t.Helper()
	d, err := log.ParseDecision(fmt.Appendf(nil, `{"id":%q,"outcome":%q,"decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","policy":{"id":"p"}%s}`, id, outcome, extra), j.now())
	if err != nil {
		j.t.Fatal(err)
	}
	return log.DecisionSubmission(d, "control-plane")
}

// allow logs an allow and returns its artifact.
func (j *judgedLog) allow(id, extra string) string {
	j.t.Helper()
	e, v := j.add(j.decision(id, "allow", extra))
	if v.Err != nil {
		j.t.Fatal(v.Err)
	}
	lh := log.LeafHash(e.Leaf)
	c := &log.ArtifactClaims{Issuer: testlog.Origin, Subject: "agent-7", ID: id, IssuedAt: e.LoggedAt.Unix(), NotBefore: e.LoggedAt.Unix(),
		Expiry: e.AuthorizedUntil.Unix(), Action: "deploy",
		Govlog: log.ArtifactBinding{Index: uint64(len(j.l.Entries) - 1), LeafHash: base64.StdEncoding.EncodeToString(lh[:]), TreeSize: uint64(len(j.l.Entries))}}
	payload, err := c.Payload()
	if err != nil {
		j.t.Fatal(err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": j.kid, "typ": log.ArtifactType})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	return input + "." + enc.EncodeToString(ed25519.Sign(j.key, []byte(input)))
}

func (j *judgedLog) report(submitter, id, decisionID, status, artifact, claimID string, at time.Time) *log.Submission {
	j.t.Helper()
	obj := map[string]any{"id": id, "decision_id": decisionID, "status": status, "at": at.Format(time.RFC3339Nano)}
	if artifact != "" {
		obj["artifact"] = artifact
	}
	if claimID != "" {
		obj["claim_id"] = claimID
	}
	body, _ := json.Marshal(obj)
	x, err := log.ParseExecution(body, j.now())
	if err != nil {
		j.t.Fatalf("ParseExecution(%s): %v", body, err)
	}
	return log.ExecutionSubmission(x, submitter)
}

func (j *judgedLog) revocation(id, decisionID string) *log.Submission {
	j.t.Helper()
	r, err := log.ParseRevocation(fmt.Appendf(nil, `{"id":%q,"decision_id":%q,"revoked_at":"2026-11-25T18:00:30Z"}`, id, decisionID), j.now())
	if err != nil {
		j.t.Fatal(err)
	}
	return log.RevocationSubmission(r, "control-plane")
}

// TestAuditEvidence: a log seeded with every violation of the wire
// contract, as the log records them, is replayed through the same rule
// book: each violation is a finding with its code, uses are counted per
// authorization, a report after a revocation is a finding; what the rule
// book would have refused or recorded otherwise is a failure.
func TestAuditEvidence(t *testing.T) {
	j := newJudgedLog(t)
	at := testlog.Start.Add(time.Minute)
	single := j.allow("single", "")
	multi := j.allow("multi", `,"max_executions":2,"executor":"rt"`)
	j.add(j.decision("denied", "deny", ""))
	revoke := j.allow("to-revoke", `,"max_executions":3`)
	other := j.allow("other", "")

	steps := []struct {
		sub  *log.Submission
		want string // the violation the log records
	}{
		{j.report("rt", "c-1", "single", "started", single, "", at), ""},
		{j.report("rt", "c-1-done", "single", "succeeded", "", "c-1", at), ""},
		{j.report("rt", "c-2", "single", "started", single, "", at), log.ViolationUsesExhausted},
		{j.report("rt", "c-3", "nope", "started", single, "", at), log.ViolationUnknownDecision},
		{j.report("rt", "c-4", "denied", "started", single, "", at), log.ViolationNotAuthorized},
		{j.report("rt", "c-5", "multi", "started", "", "", at), log.ViolationArtifactMissing},
		{j.report("rt", "c-6", "multi", "started", other, "", at), log.ViolationArtifactInvalid},
		{j.report("rt", "c-7", "multi", "started", multi, "", testlog.Start.Add(-time.Hour)), log.ViolationBeforeDecision},
		{j.report("rt", "c-8", "multi", "started", multi, "", testlog.Start.Add(305*time.Second)), log.ViolationExpired},
		{j.report("mallory", "c-9", "multi", "started", multi, "", at), log.ViolationWrongExecutor},
		{j.report("rt", "c-10", "multi", "failed", "", "c-1", at), log.ViolationUnknownClaim},
		{j.report("rt", "c-11", "to-revoke", "started", revoke, "", at), ""},
		{j.revocation("r-1", "to-revoke"), ""},
		{j.report("rt", "c-12", "to-revoke", "started", revoke, "", at), log.ViolationRevoked},
		{j.report("rt", "c-11-done", "to-revoke", "succeeded", "", "c-11", at), ""},
	}
	for i, st := range steps {
		_, v := j.add(st.sub)
		if v.Fate != log.FateAppend || v.Err != nil || v.Violation != st.want {
			t.Fatalf("step %d: fate %v err %v violation %q, want %q", i, v.Fate, v.Err, v.Violation, st.want)
		}
	}
	clean := uint64(len(j.l.Entries))
	s := newTiles(j.l)
	rep, _ := s.audit(t, j.l.Checkpoint(clean), nil, nil)
	if !rep.OK {
		t.Fatalf("failures in a log that keeps its rules: %+v", rep.Failures)
	}
	for _, code := range log.Violations {
		n := 0
		for _, p := range problems(rep.Findings, audit.FindingViolation) {
			if p.Violation == code {
				n++
			}
		}
		if n != 1 || rep.Violations[code] != 1 {
			t.Errorf("violation %s: %d findings, counted %d", code, n, rep.Violations[code])
		}
	}
	wantProblem(t, rep.Findings, audit.FindingAfterRevocation, int64(len(j.l.Entries)-1), `was reported after the authorization was revoked`)
	if rep.Totals.Violations != uint64(len(log.Violations)) || rep.Totals.Revocations != 1 || rep.Totals.Keys != 1 {
		t.Errorf("totals %+v", rep.Totals)
	}
	if got := fmt.Sprint(rep.Authorizations); got != "[{single 1 1 1 1 false} {multi 2 2 0 6 false} {to-revoke 4 3 1 1 true}]" {
		t.Errorf("authorizations %s", got)
	}

	// Audited in two parts, split anywhere, the second knowing the first
	// only through the state: the same findings as the full replay, each
	// in the part that holds its entry, with the same evidence (reports
	// on allows of the first part included), and the same uses.
	full := rep
	for split := uint64(1); split < clean; split++ {
		rep1, st := s.audit(t, j.l.Checkpoint(split), nil, nil)
		st = reloadState(t, j.l, st)
		rep2, _ := s.audit(t, j.l.Checkpoint(clean), st, j.l.Consistency(split, clean))
		if !rep1.OK || !rep2.OK {
			t.Fatalf("split at %d: failures %+v %+v", split, rep1.Failures, rep2.Failures)
		}
		if got, want := asJSON(append(rep1.Findings, rep2.Findings...)), asJSON(full.Findings); got != want {
			t.Fatalf("split at %d: findings\n%s\nwant\n%s", split, got, want)
		}
		// The uses, later parts overriding.
		uses := map[string]audit.AuthorizationUse{}
		for _, u := range append(rep1.Authorizations, rep2.Authorizations...) {
			uses[u.DecisionID] = u
		}
		if len(uses) != len(full.Authorizations) {
			t.Fatalf("split at %d: authorizations %v %v", split, rep1.Authorizations, rep2.Authorizations)
		}
		for _, u := range full.Authorizations {
			if uses[u.DecisionID] != u {
				t.Fatalf("split at %d: authorization %v, want %v", split, uses[u.DecisionID], u)
			}
		}
	}

	// The same log, with its rule-breaking entries below, audited in
	// two parts split anywhere, gives the same failures as its full
	// replay.
	defer func() {
		if t.Failed() {
			return
		}
		size := uint64(len(j.l.Entries))
		full, _ := s.audit(t, j.l.Checkpoint(size), nil, nil)
		for split := uint64(1); split < size; split++ {
			rep1, st := s.audit(t, j.l.Checkpoint(split), nil, nil)
			st = reloadState(t, j.l, st)
			rep2, _ := s.audit(t, j.l.Checkpoint(size), st, j.l.Consistency(split, size))
			var got []audit.Problem
			for _, p := range rep2.Failures {
				if !p.Earlier {
					got = append(got, p)
				}
			}
			if g, w := asJSON(append(rep1.Failures, got...)), asJSON(full.Failures); g != w {
				t.Fatalf("split at %d: failures\n%s\nwant\n%s", split, g, w)
			}
			if g, w := asJSON(append(rep1.Findings, rep2.Findings...)), asJSON(full.Findings); g != w {
				t.Fatalf("split at %d: findings\n%s\nwant\n%s", split, g, w)
			}
		}
	}()

	// A log that breaks its rules: a child of a deny and of a revoked
	// allow appended, a claim beyond max_executions without violation, a
	// violation the rule book does not find, a claim on a deny with no
	// violation.
	j.force(j.decision("child-1", "allow", `,"parent_id":"denied"`), "")
	j.force(j.decision("child-2", "allow", `,"parent_id":"to-revoke"`), "")
	j.force(j.report("rt", "c-20", "single", "started", single, "", at), "")
	j.force(j.report("rt", "c-21", "other", "started", other, "", at), log.ViolationExpired)
	j.force(j.report("rt", "c-22", "denied", "started", single, "", at), "")
	j.force(j.revocation("r-2", "denied"), "")
	rep, _ = s.audit(t, j.l.Checkpoint(uint64(len(j.l.Entries))), nil, nil)
	n := int64(clean)
	wantProblem(t, rep.Failures, audit.ProblemParentDenied, n, `names parent "denied"`)
	wantProblem(t, rep.Failures, audit.ProblemParentRevoked, n+1, `names parent "to-revoke"`)
	wantProblem(t, rep.Failures, audit.ProblemViolationMismatch, n+2, `the log recorded violation none, the rule book finds uses_exhausted`)
	wantProblem(t, rep.Failures, audit.ProblemViolationMismatch, n+3, `the log recorded violation expired, the rule book finds none`)
	wantProblem(t, rep.Failures, audit.ProblemUnauthorized, n+4, `a deny`)
	wantProblem(t, rep.Failures, audit.ProblemBadRevocation, n+5, `only an allow can be revoked`)
	if rep.OK || rep.FailureCount != 6 {
		t.Fatalf("%d failures: %+v", rep.FailureCount, rep.Failures)
	}
}

// reloadState marshals a state and reads it back, as a next audit does.
func reloadState(t *testing.T, l *testlog.Log, st *audit.State) *audit.State {
	t.Helper()
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	st, err = audit.UnmarshalState(data, l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestStateVersion: a state of format v1 (no authorizations) is refused
// with ErrStateVersion, never read as if it said everything.
func TestStateVersion(t *testing.T) {
	j := newJudgedLog(t)
	j.allow("a", "")
	_, st := newTiles(j.l).audit(t, j.l.Checkpoint(uint64(len(j.l.Entries))), nil, nil)
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte("govlog-audit-state/v1\n"), data[len("govlog-audit-state/v2\n"):]...)
	if _, err := audit.UnmarshalState(v1, j.l.Verifier); !errors.Is(err, audit.ErrStateVersion) {
		t.Fatalf("a v1 state: %v", err)
	}
	if _, err := audit.UnmarshalState(data, j.l.Verifier); err != nil {
		t.Fatal(err)
	}
}

// TestStateCheckpoint: the checkpoint of a state, v1 or v2, verified.
func TestStateCheckpoint(t *testing.T) {
	j := newJudgedLog(t)
	j.allow("a", "")
	cp := j.l.Checkpoint(uint64(len(j.l.Entries)))
	_, st := newTiles(j.l).audit(t, cp, nil, nil)
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	body := append([]byte("govlog-audit-state/v1\n"), data[len("govlog-audit-state/v2\n"):len(data)-sha256.Size]...)
	sum := sha256.Sum256(body)
	v1 := append(body, sum[:]...)
	for _, d := range [][]byte{data, v1} {
		note, err := audit.StateCheckpoint(d, j.l.Verifier)
		if err != nil || string(note) != string(cp.Note) {
			t.Fatalf("checkpoint %q, %v", note, err)
		}
	}
	v1[30] ^= 1
	if _, err := audit.StateCheckpoint(v1, j.l.Verifier); err == nil {
		t.Fatal("a corrupt state gives a checkpoint")
	}
	if _, err := audit.StateCheckpoint(data, mustOtherKey(t)); err == nil {
		t.Fatal("a state of another log gives a checkpoint")
	}
}

func mustOtherKey(t *testing.T) note.Verifier {
	_, v, _ := testlog.NoteKey(t, testlog.Origin, 9)
	return v
}
