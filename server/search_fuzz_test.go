package server

import (
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// FuzzSearchQuery: whatever the query string, parsing it for /v1/search
// either refuses it (400, never a panic) or yields a query whose filters
// are exactly the parameters given; a cursor that parses re-encodes to
// itself (one encoding per index).
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{
		"", "subject=agent-7&outcome=deny", "kind=execution&decision_id=d-1&violation=any",
		"from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&limit=10", "after=AAAAAAAAAAE", "after=AAAAAAAAAAB",
		"resource=svc%2Fa&policy_id=p&action=x", "subject=&limit=0", "nope=1", "from=2026-01-01T00:00:00%2B01:00",
		"parent_id=d-1&outcome=allow", "parent_id=-d", "parent_id=a%2Fb",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, append(append([]string{}, searchFilters...), "after", "limit")...)
		if err != nil {
			return
		}
		lq, err := parseSearchQuery(q)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("a refusal that is not a 400: %v", err)
			}
			return
		}
		for name, got := range map[string]string{"kind": lq.Kind, "subject": lq.Subject, "action": lq.Action, "resource": lq.Resource,
			"outcome": lq.Outcome, "policy_id": lq.PolicyID, "decision_id": lq.DecisionID, "parent_id": lq.ParentID, "violation": lq.Violation} {
			if got != q[name] {
				t.Fatalf("%s: parsed %q from %q", name, got, q[name])
			}
		}
		for name, got := range map[string]time.Time{"from": lq.From, "to": lq.To} {
			if _, ok := q[name]; ok != !got.IsZero() {
				t.Fatalf("%s given %v, parsed %v", name, ok, got)
			}
		}
		if c, ok := q["after"]; ok {
			if n, err := decodeCursor(c); err == nil && encodeCursor(n) != c {
				t.Fatalf("cursor %q decodes to %d, which encodes as %q", c, n, encodeCursor(n))
			}
		}
		// What parses, matches: an entry with exactly these fields matches.
		s := log.Summary{Kind: lq.Kind, Subject: lq.Subject, Action: lq.Action, Resource: lq.Resource, Outcome: lq.Outcome,
			PolicyID: lq.PolicyID, DecisionID: lq.DecisionID, ParentID: lq.ParentID, Violation: lq.Violation, LoggedAt: lq.From}
		if lq.Violation == log.ViolationAny {
			s.Violation = "expired"
		}
		if lq.From.IsZero() && !lq.To.IsZero() {
			s.LoggedAt = lq.To.Add(-time.Nanosecond)
		}
		if !lq.Match(&s) {
			t.Fatalf("%+v does not match its own fields %+v", lq, s)
		}
	})
}
