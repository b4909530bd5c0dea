package log_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// ruleTime is decided_at and at of the rule book's test entries.
var ruleTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// ruleEntry builds the entry of a decision or execution report written as
// compact JSON members (without braces), submitted by submitter.
func ruleEntry(t *testing.T, submitter, members string) *log.Entry {
	t.Helper()
	body := []byte("{" + members + "}")
	var s *log.Submission
	if strings.Contains(members, `"revoked_at"`) {
		r, err := log.ParseRevocation(body, ruleTime)
		if err != nil {
			t.Fatalf("ParseRevocation(%s): %v", body, err)
		}
		s = log.RevocationSubmission(r, submitter)
	} else if strings.Contains(members, `"decision_id"`) {
		x, err := log.ParseExecution(body, ruleTime)
		if err != nil {
			t.Fatalf("ParseExecution(%s): %v", body, err)
		}
		s = log.ExecutionSubmission(x, submitter)
	} else {
		d, err := log.ParseDecision(body, ruleTime)
		if err != nil {
			t.Fatalf("ParseDecision(%s): %v", body, err)
		}
		s = log.DecisionSubmission(d, submitter)
	}
	e, err := log.NewEntry(s, ruleTime.Add(time.Second), 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The entries of the table: decisions by alice unless said otherwise, and
// execution reports.
func dec(id, outcome, extra string) string {
	return fmt.Sprintf(`"id":%q,"outcome":%q,"decided_at":%q,"subject":"agent-7","action":"deploy","policy":{"id":"p"}%s`,
		id, outcome, ruleTime.Format(time.RFC3339), extra)
}

func exe(id, decisionID string) string {
	return fmt.Sprintf(`"id":%q,"decision_id":%q,"status":"started","at":%q`, id, decisionID, ruleTime.Format(time.RFC3339))
}

// fin is a terminal report of claim (not a claim itself) at the given
// offset from ruleTime.
func fin(id, decisionID, claim string, offset time.Duration) string {
	return fmt.Sprintf(`"id":%q,"decision_id":%q,"status":"succeeded","at":%q,"claim_id":%q`, id, decisionID, ruleTime.Add(offset).Format(time.RFC3339), claim)
}

func rev(id, decisionID string) string {
	return fmt.Sprintf(`"id":%q,"decision_id":%q,"revoked_at":%q`, id, decisionID, ruleTime.Format(time.RFC3339))
}

// ruleSub is one entry of a table case: its submitter and members.
type ruleSub struct{ who, members string }

func by(who, members string) ruleSub { return ruleSub{who, members} }
func alice(members string) ruleSub   { return ruleSub{"alice", members} }

// verdict is the expected judgment of one entry: "append", "existing N"
// (N the batch position it repeats, -1 for a stored one) or the error it
// is refused with.
type verdict struct {
	fate      log.Fate
	of        int
	err       error
	violation string
}

var (
	appended = verdict{fate: log.FateAppend, of: -1}
	stored   = verdict{fate: log.FateExisting, of: -1}
)

// violated is an appended execution report that records a violation.
func violated(code string) verdict { return verdict{fate: log.FateAppend, of: -1, violation: code} }

func existing(of int) verdict { return verdict{fate: log.FateExisting, of: of} }
func refused(err error) verdict {
	return verdict{fate: log.FateRefused, of: -1, err: err}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		// logged are appended before, one by one: what storage holds.
		logged []ruleSub
		// noLeaves drops the stored leaves from the facts, as an
		// auditor's state holds none.
		noLeaves bool
		// sequences are (alice, n) pairs storage holds besides those of
		// logged.
		sequences []uint64
		batch     []ruleSub
		want      []verdict
	}{
		{name: "empty batch"},
		{name: "new decision",
			batch: []ruleSub{alice(dec("d-1", "allow", ""))},
			want:  []verdict{appended}},
		{name: "identical resubmission of a stored entry",
			logged: []ruleSub{alice(dec("d-1", "allow", ""))},
			batch:  []ruleSub{alice(dec("d-1", "allow", ""))},
			want:   []verdict{stored}},
		{name: "stored id, other content",
			logged: []ruleSub{alice(dec("d-1", "allow", ""))},
			batch:  []ruleSub{alice(dec("d-1", "deny", ""))},
			want:   []verdict{refused(log.ErrIDConflict)}},
		{name: "stored id, other submitter",
			logged: []ruleSub{alice(dec("d-1", "allow", ""))},
			batch:  []ruleSub{by("bob", dec("d-1", "allow", ""))},
			want:   []verdict{refused(log.ErrIDConflict)}},
		{name: "stored id without its leaf is a repeat, never a resubmission",
			logged: []ruleSub{alice(dec("d-1", "allow", ""))}, noLeaves: true,
			batch: []ruleSub{alice(dec("d-1", "allow", ""))},
			want:  []verdict{refused(log.ErrIDConflict)}},
		{name: "a repeated id later in the batch is a resubmission",
			batch: []ruleSub{alice(dec("d-0", "deny", "")), alice(dec("d-1", "allow", "")), alice(dec("d-1", "allow", ""))},
			want:  []verdict{appended, appended, existing(1)}},
		{name: "a repeated id later in the batch with other content",
			batch: []ruleSub{alice(dec("d-1", "allow", "")), alice(dec("d-1", "deny", "")), alice(dec("d-1", "allow", ""))},
			want:  []verdict{appended, refused(log.ErrIDConflict), existing(0)}},
		{name: "a refused entry takes no id",
			batch: []ruleSub{alice(dec("d-1", "allow", `,"parent_id":"nope"`)), alice(dec("d-1", "deny", ""))},
			want:  []verdict{refused(log.ErrUnknownParent), appended}},
		{name: "stored sequence",
			sequences: []uint64{7},
			batch:     []ruleSub{alice(dec("d-1", "allow", `,"sequence":7`)), alice(dec("d-2", "allow", `,"sequence":8`))},
			want:      []verdict{refused(log.ErrSequenceConflict), appended}},
		{name: "sequences are per submitter",
			logged: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`))},
			batch:  []ruleSub{by("bob", dec("d-2", "allow", `,"sequence":1`)), alice(dec("d-3", "allow", `,"sequence":1`))},
			want:   []verdict{appended, refused(log.ErrSequenceConflict)}},
		{name: "a sequence used earlier in the batch",
			batch: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`)), alice(dec("d-2", "allow", `,"sequence":1`))},
			want:  []verdict{appended, refused(log.ErrSequenceConflict)}},
		{name: "a refused entry takes no sequence",
			batch: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1,"parent_id":"nope"`)), alice(dec("d-2", "allow", `,"sequence":1`))},
			want:  []verdict{refused(log.ErrUnknownParent), appended}},
		{name: "a resubmission with its own sequence is a resubmission",
			logged: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`))},
			batch:  []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`))},
			want:   []verdict{stored}},
		{name: "an id conflict comes before a sequence conflict",
			logged: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`))},
			batch:  []ruleSub{alice(dec("d-1", "deny", `,"sequence":1`))},
			want:   []verdict{refused(log.ErrIDConflict)}},
		{name: "a sequence conflict comes before an unknown parent",
			logged: []ruleSub{alice(dec("d-1", "allow", `,"sequence":1`))},
			batch:  []ruleSub{alice(dec("d-2", "allow", `,"sequence":1,"parent_id":"nope"`))},
			want:   []verdict{refused(log.ErrSequenceConflict)}},
		{name: "parents",
			logged: []ruleSub{alice(dec("p-1", "deny", "")), alice(dec("p-0", "allow", "")), alice(exe("e-1", "p-0"))},
			batch: []ruleSub{
				alice(dec("c-1", "allow", `,"parent_id":"p-1"`)),  // stored
				alice(dec("c-2", "allow", `,"parent_id":"c-1"`)),  // earlier in the batch
				alice(dec("c-3", "allow", `,"parent_id":"c-4"`)),  // later in the batch
				alice(dec("c-4", "allow", "")),                    //
				alice(dec("c-5", "allow", `,"parent_id":"e-1"`)),  // an execution id
				alice(dec("c-6", "allow", `,"parent_id":"nope"`)), // nothing
				alice(dec("c-7", "allow", `,"parent_id":"c-6"`)),  // a refused decision
			},
			want: []verdict{refused(log.ErrParentDenied), refused(log.ErrUnknownParent), refused(log.ErrUnknownParent), appended,
				refused(log.ErrUnknownParent), refused(log.ErrUnknownParent), refused(log.ErrUnknownParent)}},
		{name: "lineage stops at a deny or a revoked allow",
			logged: []ruleSub{alice(dec("p-0", "allow", "")), alice(dec("p-1", "deny", "")), alice(dec("p-2", "allow", "")), alice(rev("r-0", "p-2"))},
			batch: []ruleSub{
				alice(dec("c-0", "allow", `,"parent_id":"p-0"`)),
				alice(dec("c-1", "allow", `,"parent_id":"p-1"`)),
				alice(dec("c-2", "allow", `,"parent_id":"p-2"`)),
				alice(rev("r-1", "p-0")),
				alice(dec("c-3", "allow", `,"parent_id":"p-0"`)), // revoked earlier in the batch
				alice(dec("c-4", "deny", `,"parent_id":"c-0"`)),
				alice(dec("c-5", "allow", `,"parent_id":"c-4"`)), // a deny earlier in the batch
			},
			want: []verdict{appended, refused(log.ErrParentDenied), refused(log.ErrParentRevoked), appended,
				refused(log.ErrParentRevoked), appended, refused(log.ErrParentDenied)}},
		{name: "revocations",
			logged: []ruleSub{alice(dec("a-1", "allow", "")), alice(dec("n-1", "deny", "")), alice(rev("r-1", "a-1"))},
			batch: []ruleSub{
				alice(rev("r-1", "a-1")),  // a resubmission
				alice(rev("r-2", "a-1")),  // again, another id: logged
				alice(rev("r-3", "n-1")),  // a deny
				alice(rev("r-4", "nope")), // nothing
				alice(rev("a-1", "a-1")),  // its own namespace
			},
			want: []verdict{stored, appended, refused(log.ErrNotRevocable), refused(log.ErrUnknownDecision), appended}},
		{name: "report violations without artifact",
			logged: []ruleSub{alice(dec("a-1", "allow", `,"executor":"rt"`)), alice(dec("a-2", "allow", ""))},
			batch: []ruleSub{
				by("rt", fin("f-1", "a-1", "nope", -time.Second)), // dated before its decision
				by("mallory", fin("f-2", "a-1", "nope", 0)),       // another identity than the executor
				by("anonymous", fin("f-3", "a-1", "nope", 0)),     // unauthenticated: the executor binds nothing
				by("mallory", fin("f-4", "a-2", "nope", 0)),       // no executor
				by("rt", exe("s-1", "a-1")),                       // a claim without artifact
				by("rt", fin("f-5", "a-1", "s-1", 0)),             // ends a started report
				by("rt", fin("f-6", "a-2", "s-1", 0)),             // a started report of another decision
				by("rt", fin("f-7", "a-1", "f-5", 0)),             // not a started report
				by("rt", fin("f-8", "n-1", "s-1", -time.Second)),  // an unknown decision first
			},
			want: []verdict{violated(log.ViolationBeforeDecision), violated(log.ViolationWrongExecutor),
				violated(log.ViolationUnknownClaim), violated(log.ViolationUnknownClaim), violated(log.ViolationArtifactMissing),
				appended, violated(log.ViolationUnknownClaim), violated(log.ViolationUnknownClaim), violated(log.ViolationUnknownDecision)}},
		{name: "execution reports",
			logged: []ruleSub{alice(dec("a-1", "allow", "")), alice(dec("n-1", "deny", "")), alice(exe("x-1", "a-1"))},
			batch: []ruleSub{
				by("rt", exe("e-1", "a-1")),  // a stored allow
				by("rt", exe("e-2", "n-1")),  // a stored deny
				by("rt", exe("e-3", "nope")), // nothing
				by("rt", exe("e-4", "x-1")),  // an execution id
				alice(dec("a-2", "allow", "")),
				alice(dec("n-2", "deny", "")),
				by("rt", exe("e-5", "a-2")), // an allow earlier in the batch
				by("rt", exe("e-6", "n-2")), // a deny earlier in the batch
				by("rt", exe("e-7", "a-3")), // an allow later in the batch
				alice(dec("a-3", "allow", "")),
				by("rt", exe("e-1", "a-1")), // a repeat
				by("rt", exe("e-2", "a-1")), // the id of a report recorded with a violation
			},
			want: []verdict{violated(log.ViolationArtifactMissing), violated(log.ViolationNotAuthorized),
				violated(log.ViolationUnknownDecision), violated(log.ViolationUnknownDecision),
				appended, appended, violated(log.ViolationArtifactMissing), violated(log.ViolationNotAuthorized),
				violated(log.ViolationUnknownDecision), appended, existing(0), refused(log.ErrIDConflict)}},
		{name: "an id conflict comes before the decision's checks",
			logged: []ruleSub{alice(dec("a-1", "allow", "")), by("rt", exe("e-1", "a-1"))},
			batch:  []ruleSub{by("rt", exe("e-1", "nope"))},
			want:   []verdict{refused(log.ErrIDConflict)}},
		{name: "decisions and executions have their own namespaces",
			logged: []ruleSub{alice(dec("x", "allow", ""))},
			batch:  []ruleSub{by("rt", exe("x", "x")), alice(dec("y", "allow", "")), by("rt", exe("y", "y"))},
			want:   []verdict{violated(log.ViolationArtifactMissing), appended, violated(log.ViolationArtifactMissing)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What storage holds: the logged entries, judged one by one.
			facts := log.Facts{IDs: map[log.EntryID]log.Stored{}, Sequences: map[log.SequenceKey]bool{},
				Authorizations: map[string]*log.Authorization{}}
			for _, s := range tt.logged {
				v := log.Judge([]*log.Entry{ruleEntry(t, s.who, s.members)}, &facts)
				if v[0].Fate != log.FateAppend {
					t.Fatalf("logging %s: %v %v", s.members, v[0].Fate, v[0].Err)
				}
			}
			if tt.noLeaves {
				for k, s := range facts.IDs {
					s.Leaf = nil
					facts.IDs[k] = s
				}
			}
			for _, n := range tt.sequences {
				facts.Sequences[log.SequenceKey{Submitter: "alice", Sequence: n}] = true
			}
			batch := make([]*log.Entry, len(tt.batch))
			for i, s := range tt.batch {
				batch[i] = ruleEntry(t, s.who, s.members)
			}
			// Storage hands Judge exactly what it holds of the batch's
			// names.
			names := log.NamesOf(batch)
			held := log.Facts{IDs: map[log.EntryID]log.Stored{}, Sequences: map[log.SequenceKey]bool{},
				Authorizations: map[string]*log.Authorization{}}
			for _, id := range names.Authorizations {
				if a, ok := facts.Authorizations[id]; ok {
					c := *a
					c.Dirty = false
					held.Authorizations[id] = &c
				}
			}
			for _, k := range names.IDs {
				if s, ok := facts.IDs[k]; ok {
					held.IDs[k] = s
				}
			}
			for _, k := range names.Sequences {
				if facts.Sequences[k] {
					held.Sequences[k] = true
				}
			}
			got := log.Judge(batch, &held)
			if len(got) != len(batch) {
				t.Fatalf("Judge returned %d verdicts for %d entries", len(got), len(batch))
			}
			for i, v := range got {
				w := tt.want[i]
				if v.Fate != w.fate || v.Of != w.of || !errors.Is(v.Err, w.err) || (w.err == nil) != (v.Err == nil) || v.Violation != w.violation {
					t.Errorf("entry %d (%s): got %v of %d err %v violation %q, want %v of %d err %v violation %q",
						i, tt.batch[i].members, v.Fate, v.Of, v.Err, v.Violation, w.fate, w.of, w.err, w.violation)
				}
				want := batch[i].Leaf
				if v.Violation != "" {
					want = log.WithViolation(want, v.Violation)
					if log.LeafViolation(v.Leaf) != v.Violation {
						t.Errorf("entry %d: LeafViolation of the verdict's leaf is %q, want %q", i, log.LeafViolation(v.Leaf), v.Violation)
					}
					if _, err := log.ParseEntry(v.Leaf); err != nil {
						t.Errorf("entry %d: the leaf with its violation does not parse: %v", i, err)
					}
				}
				switch {
				case v.Fate == log.FateAppend && string(v.Leaf) != string(want):
					t.Errorf("entry %d: the verdict's leaf is not the entry's", i)
				case v.Fate != log.FateAppend && v.Leaf != nil:
					t.Errorf("entry %d: %v with a leaf", i, v.Fate)
				}
				// SPEC (issue #19): a refusal says what conflicts, not
				// where it is.
				if v.Err != nil && strings.Contains(v.Err.Error(), "index") {
					t.Errorf("entry %d: the refusal %q names an index", i, v.Err)
				}
				// The facts now hold exactly the entries appended.
				s, ok := held.IDs[batch[i].EntryID()]
				if v.Fate == log.FateAppend && (!ok || string(s.Leaf) != string(want)) {
					t.Errorf("entry %d: appended, but the facts do not hold its leaf", i)
				}
			}
		})
	}
}

func TestNamesOf(t *testing.T) {
	batch := []*log.Entry{
		ruleEntry(t, "alice", dec("d-1", "allow", `,"sequence":1`)),
		ruleEntry(t, "alice", dec("d-2", "allow", `,"sequence":2,"parent_id":"d-1"`)),
		ruleEntry(t, "rt", exe("e-1", "d-0")),
		ruleEntry(t, "rt", exe("d-1", "d-1")),
		ruleEntry(t, "bob", dec("d-1", "deny", `,"sequence":1,"parent_id":"p"`)),
		ruleEntry(t, "alice", dec("d-3", "allow", `,"sequence":1`)),
	}
	got := log.NamesOf(batch)
	d := func(id string) log.EntryID { return log.EntryID{Kind: log.KindDecision, ID: id} }
	x := func(id string) log.EntryID { return log.EntryID{Kind: log.KindExecution, ID: id} }
	want := log.Names{
		IDs: []log.EntryID{d("d-1"), d("d-2"), x("e-1"), d("d-0"), x("d-1"), d("p"), d("d-3")},
		Sequences: []log.SequenceKey{{Submitter: "alice", Sequence: 1}, {Submitter: "alice", Sequence: 2},
			{Submitter: "bob", Sequence: 1}},
		Authorizations: []string{"d-1", "d-0", "p"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("NamesOf = %+v\nwant %+v", got, want)
	}
	// A large batch finds its repeats in sets, a small one in slices:
	// the same names either way.
	if got := log.NamesOf(slices.Concat(batch, batch, batch)); !reflect.DeepEqual(got, want) {
		t.Fatalf("NamesOf of the batch three times = %+v\nwant %+v", got, want)
	}
	if n := log.NamesOf(nil); n.IDs != nil || n.Sequences != nil {
		t.Fatalf("NamesOf(nil) = %+v", n)
	}
}

func TestRefs(t *testing.T) {
	for _, tt := range []struct {
		members string
		want    []log.EntryID
	}{
		{dec("d-1", "allow", ""), nil},
		{dec("d-1", "allow", `,"parent_id":"p"`), []log.EntryID{{Kind: log.KindDecision, ID: "p"}}},
		{exe("e-1", "d-1"), []log.EntryID{{Kind: log.KindDecision, ID: "d-1"}}},
		{fin("e-2", "d-1", "c-1", 0), []log.EntryID{{Kind: log.KindDecision, ID: "d-1"}, {Kind: log.KindExecution, ID: "c-1"}}},
		{rev("r-1", "d-1"), []log.EntryID{{Kind: log.KindDecision, ID: "d-1"}}},
	} {
		e := ruleEntry(t, "alice", tt.members)
		if got := e.Refs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Refs of %s = %v, want %v", tt.members, got, tt.want)
		}
		got, err := log.LeafRefs(e.Leaf)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LeafRefs of %s = %v, %v, want %v", tt.members, got, err, tt.want)
		}
		p, err := log.ParseEntry(e.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if s := p.Submission(); !reflect.DeepEqual(s, e.Submission) {
			t.Errorf("ParsedEntry.Submission of %s = %+v, want %+v", tt.members, s, e.Submission)
		}
	}
	if _, err := log.LeafRefs([]byte(`{}`)); err == nil {
		t.Error("LeafRefs of a leaf that is no entry succeeded")
	}
}
