package log

import (
	"fmt"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		leaf string
		want Summary
		err  bool
	}{
		{"allow", `{"authorized_until":"2026-11-25T18:05:00Z","decision":{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"allow","policy":{"id":"prod-deploy"},"resource":"svc/a","subject":"agent-7"},"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"anonymous","v":1}`,
			Summary{Kind: "decision", ID: "d-1", LoggedAt: at, Outcome: "allow", Subject: "agent-7", Action: "deploy", Resource: "svc/a", PolicyID: "prod-deploy"}, false},
		{"child", `{"decision":{"action":"read","decided_at":"2026-11-25T18:00:00Z","id":"d-2","outcome":"deny","parent_id":"d-1","policy":{"id":"p"},"subject":"agent-7"},"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"anonymous","v":1}`,
			Summary{Kind: "decision", ID: "d-2", LoggedAt: at, Outcome: "deny", Subject: "agent-7", Action: "read", PolicyID: "p", ParentID: "d-1"}, false},
		{"execution with violation", `{"execution":{"at":"2026-11-25T18:00:00Z","decision_id":"d-1","id":"x-1","status":"started"},"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"rt","v":1,"violation":"artifact_missing"}`,
			Summary{Kind: "execution", ID: "x-1", LoggedAt: at, DecisionID: "d-1", Status: "started", Violation: "artifact_missing"}, false},
		{"revocation", `{"logged_at":"2026-11-25T18:00:00.123456789Z","revocation":{"decision_id":"d-1","id":"r-1","revoked_at":"2026-11-25T18:00:00Z"},"submitter":"cp","v":1}`,
			Summary{Kind: "revocation", ID: "r-1", LoggedAt: at, DecisionID: "d-1"}, false},
		{"key", `{"key":{"jwk":{},"kid":"k-1"},"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"govlog","v":1}`,
			Summary{Kind: "key", ID: "k-1", LoggedAt: at}, false},
		{"two kinds", `{"decision":{"id":"d"},"execution":{"id":"x"},"logged_at":"2026-11-25T18:00:00.123456789Z"}`, Summary{}, true},
		{"no kind", `{"logged_at":"2026-11-25T18:00:00.123456789Z"}`, Summary{}, true},
		{"no id", `{"decision":{},"logged_at":"2026-11-25T18:00:00.123456789Z"}`, Summary{}, true},
		{"bad time", `{"decision":{"id":"d"},"logged_at":"yesterday"}`, Summary{}, true},
		{"not an object", `[]`, Summary{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Summarize([]byte(tt.leaf))
			if (err != nil) != tt.err {
				t.Fatalf("Summarize: err = %v, want error %v", err, tt.err)
			}
			if !tt.err && got != tt.want {
				t.Fatalf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestQueryMatch(t *testing.T) {
	at := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	d := Summary{Kind: "decision", ID: "d-1", LoggedAt: at, Outcome: "deny", Subject: "agent-7", Action: "deploy", Resource: "svc/a", PolicyID: "p"}
	c := Summary{Kind: "decision", ID: "d-2", LoggedAt: at, Outcome: "allow", Subject: "agent-7", Action: "read", PolicyID: "p", ParentID: "d-1"}
	x := Summary{Kind: "execution", ID: "x-1", LoggedAt: at, DecisionID: "d-1", Status: "started", Violation: "revoked"}
	tests := []struct {
		name   string
		q      Query
		s      Summary
		want   bool
		driven bool // the plan has a term to drive with
	}{
		{"empty", Query{}, d, true, false},
		{"subject", Query{Subject: "agent-7"}, d, true, true},
		{"other subject", Query{Subject: "agent-8"}, d, false, true},
		{"subject is exact", Query{Subject: "agent"}, d, false, true},
		{"outcome", Query{Outcome: "deny"}, d, true, true},
		{"kind", Query{Kind: "execution"}, d, false, true},
		{"decision_id", Query{DecisionID: "d-1"}, x, true, true},
		{"decision_id not on the decision", Query{DecisionID: "d-1"}, d, false, true},
		{"parent_id", Query{ParentID: "d-1"}, c, true, true},
		{"parent_id and outcome", Query{ParentID: "d-1", Outcome: "allow"}, c, true, true},
		{"other parent_id", Query{ParentID: "d-9"}, c, false, true},
		{"parent_id not on the parent", Query{ParentID: "d-1"}, d, false, true},
		{"parent_id is not decision_id", Query{ParentID: "d-1"}, x, false, true},
		{"decision_id is not parent_id", Query{DecisionID: "d-1"}, c, false, true},
		{"violation any", Query{Violation: ViolationAny}, x, true, true},
		{"violation any, none", Query{Violation: ViolationAny}, d, false, true},
		{"violation code", Query{Violation: "revoked"}, x, true, true},
		{"other violation", Query{Violation: "expired"}, x, false, true},
		{"from inclusive", Query{From: at}, d, true, false},
		{"to exclusive", Query{To: at}, d, false, false},
		{"in range", Query{From: at.Add(-time.Hour), To: at.Add(time.Second)}, d, true, true},
		{"minutes then hours then minutes", Query{From: at.Add(-150 * time.Minute).Add(17 * time.Second), To: at.Add(30 * time.Minute)}, d, true, true},
		{"within one minute", Query{From: at.Add(-time.Second), To: at.Add(time.Second)}, d, true, true},
		{"range too wide to drive", Query{From: at.Add(-1000 * time.Hour), To: at.Add(time.Second)}, d, true, false},
		{"all", Query{Kind: "decision", Subject: "agent-7", Action: "deploy", Resource: "svc/a", Outcome: "deny", PolicyID: "p", From: at, To: at.Add(1)}, d, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Match(&tt.s); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
			p := tt.q.Plan()
			if driven := len(p.All)+len(p.Any) > 0; driven != tt.driven {
				t.Fatalf("Plan = %+v, driven %v, want %v", p, driven, tt.driven)
			}
			// Whatever matches is indexed under every term of the plan
			// (All), or some term of it (Any).
			if tt.want {
				terms := map[Term]bool{}
				for _, term := range tt.s.Terms() {
					terms[term] = true
				}
				for _, term := range p.All {
					if !terms[term] {
						t.Fatalf("a matching entry lacks the plan's term %d", term)
					}
				}
				if len(p.Any) > 0 {
					some := false
					for _, term := range p.Any {
						some = some || terms[term]
					}
					if !some {
						t.Fatal("a matching entry has none of the plan's hour terms")
					}
				}
			}
		})
	}
}

func TestTermsDistinct(t *testing.T) {
	s := Summary{Kind: "decision", ID: "d", Subject: "x", Action: "x", Resource: "x", Outcome: "allow", PolicyID: "x", LoggedAt: time.Unix(0, 0)}
	terms := s.Terms()
	if len(terms) != 8 {
		t.Fatalf("Terms = %v, want 8 distinct terms (the field is part of the hash; a decision's kind is not indexed)", terms)
	}
	// A child's parent_id is a term of its own, apart from the
	// decision_id of an execution naming the same decision.
	c := s
	c.ParentID = "d-1"
	x := Summary{Kind: "execution", ID: "x", DecisionID: "d-1", LoggedAt: time.Unix(0, 0)}
	ct := c.Terms()
	if len(ct) != 9 {
		t.Fatalf("Terms of a child = %v, want 9 distinct terms", ct)
	}
	for _, a := range ct {
		for _, b := range x.Terms()[:2] { // kind, decision_id
			if a == b {
				t.Fatalf("a child's term %d is also an execution's (kind or decision_id)", a)
			}
		}
	}
	for _, term := range terms {
		if term < 0 || term >= 1<<31 {
			t.Fatalf("term %d is not a 31-bit non-negative integer", term)
		}
	}
}

func TestMergeFound(t *testing.T) {
	f := func(idx ...uint64) []Found {
		var out []Found
		for _, i := range idx {
			out = append(out, Found{Index: i})
		}
		return out
	}
	tests := []struct {
		a, b []Found
		n    int
		want []uint64
	}{
		{nil, nil, 5, nil},
		{f(1, 3, 5), f(2, 4), 10, []uint64{1, 2, 3, 4, 5}},
		{f(1, 3, 5), f(2, 4), 3, []uint64{1, 2, 3}},
		{f(1, 2), f(2, 3), 10, []uint64{1, 2, 3}},
		{nil, f(7), 1, []uint64{7}},
	}
	for _, tt := range tests {
		var got []uint64
		for _, x := range MergeFound(tt.a, tt.b, tt.n) {
			got = append(got, x.Index)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("MergeFound(%v, %v, %d) = %v, want %v", tt.a, tt.b, tt.n, got, tt.want)
		}
	}
}

// TestPlanBuckets: the hour, minute and second buckets of a time-only plan cover
// every instant of the range, in as few terms as whole hours allow.
func TestPlanBuckets(t *testing.T) {
	base := time.Date(2026, 3, 4, 2, 30, 17, 5, time.UTC)
	tests := []struct {
		from, to time.Time
		terms    int
	}{
		{base, base.Add(3 * time.Hour), 43 + 29 + 2 + 30 + 18}, // 02:30:17-59, 02:31-59, 03, 04, 05:00-29, 05:30:00-17
		{base.Truncate(time.Hour), base.Truncate(time.Hour).Add(2 * time.Hour), 2},
		{base, base.Add(time.Second), 2},
		{base, base.Add(10 * time.Minute), 43 + 9 + 18},
	}
	for _, tt := range tests {
		p := (&Query{From: tt.from, To: tt.to}).Plan()
		if len(p.All) != 0 || len(p.Any) != tt.terms {
			t.Errorf("Plan(%v, %v): %d terms, want %d", tt.from, tt.to, len(p.Any), tt.terms)
		}
		any := map[Term]bool{}
		for _, term := range p.Any {
			any[term] = true
		}
		for at := tt.from; at.Before(tt.to); at = at.Add(700 * time.Millisecond) {
			s := Summary{Kind: "decision", ID: "d", LoggedAt: at}
			found := false
			for _, term := range s.Terms() {
				found = found || any[term]
			}
			if !found {
				t.Fatalf("Plan(%v, %v) has no bucket of %v", tt.from, tt.to, at)
			}
		}
	}
}
