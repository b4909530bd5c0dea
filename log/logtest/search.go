package logtest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// testSearch checks the search index (log.Searcher): every filter, pages,
// the end bound, and that the answers are exactly what Query.Match says of
// every entry, in index order.
func testSearch(t *testing.T, h *harness) {
	b := h.backend(t)
	s := log.Searcher(b)
	ctx := context.Background()
	var subs []*log.Submission
	for i := range 24 {
		outcome := log.OutcomeAllow
		if i%3 == 0 {
			outcome = log.OutcomeDeny
		}
		fields := map[string]any{
			"subject":  fmt.Sprintf("agent-%d", i%4),
			"action":   []string{"deploy", "read"}[i%2],
			"resource": fmt.Sprintf("repo/%d", i%5),
			"policy":   map[string]any{"id": []string{"p-a", "p-b", "p-c"}[i%3]},
		}
		// Lineage: s-7, s-9 (a deny) and s-13 are children of s-1, which
		// executions x-1 and x-2 also name; s-20 is a child of s-13,
		// earlier in its batch.
		switch i {
		case 7, 9, 13:
			fields["parent_id"] = "s-1"
		case 20:
			fields["parent_id"] = "s-13"
		}
		subs = append(subs, decision(t, "anonymous", fmt.Sprintf("s-%d", i), outcome, fields))
	}
	h.append(t, b, subs[:10]...)
	h.append(t, b, subs[10:]...)
	// Claims without an artifact: recorded with the violation
	// artifact_missing; one names no decision (unknown_decision).
	h.append(t, b, execution(t, "anonymous", "x-1", "s-1", "started"), execution(t, "anonymous", "x-2", "s-1", "succeeded"),
		execution(t, "anonymous", "x-3", "nope", "started"))
	h.append(t, b, revocation(t, "anonymous", "r-1", "s-2"), newArtifactKey("k-1").submission(t, h.signer.Name()))
	_, cp := h.append(t, b, allow(t, "s-last"))

	leaves, err := b.Entries(ctx, 0, int(cp.Size))
	if err != nil {
		t.Fatal(err)
	}
	sums := make([]log.Summary, len(leaves))
	for i, leaf := range leaves {
		if sums[i], err = log.Summarize(leaf); err != nil {
			t.Fatalf("Summarize(entry %d): %v", i, err)
		}
	}
	at := func(n int) time.Time { return sums[n].LoggedAt }
	queries := []struct {
		name string
		q    log.Query
		want int // how many entries match, as a check on the fixture
	}{
		{"all", log.Query{}, 30},
		{"subject", log.Query{Subject: "agent-1"}, 6},
		{"subject+outcome", log.Query{Subject: "agent-0", Outcome: log.OutcomeDeny}, 2},
		{"action", log.Query{Action: "read"}, 12},
		{"resource", log.Query{Resource: "repo/3"}, 5},
		{"policy", log.Query{PolicyID: "p-b"}, 8},
		{"kind execution", log.Query{Kind: log.SearchExecution}, 3},
		{"kind decision", log.Query{Kind: log.SearchDecision}, 25},
		{"decision_id", log.Query{DecisionID: "s-1"}, 2},
		{"parent_id", log.Query{ParentID: "s-1"}, 3},
		{"parent_id+outcome", log.Query{ParentID: "s-1", Outcome: log.OutcomeDeny}, 1},
		{"parent_id of a child", log.Query{ParentID: "s-13"}, 1},
		{"parent_id without children", log.Query{ParentID: "s-7"}, 0},
		{"revocation of a decision", log.Query{DecisionID: "s-2"}, 1},
		{"kind revocation", log.Query{Kind: log.SearchRevocation}, 1},
		{"kind key", log.Query{Kind: log.SearchKey}, 1},
		{"violation any", log.Query{Violation: log.ViolationAny}, 3},
		{"violation code", log.Query{Violation: log.ViolationUnknownDecision}, 1},
		{"violation and decision", log.Query{Violation: log.ViolationAny, DecisionID: "s-1"}, 2},
		{"nothing", log.Query{Subject: "nobody"}, 0},
		// A backend may order a batch's entries otherwise than their
		// logged_at: the time bounds pick whatever they pick (-1).
		{"time", log.Query{From: at(5), To: at(9)}, -1},
		{"time+subject", log.Query{From: at(5), To: at(20), Subject: "agent-2"}, -1},
		{"from", log.Query{From: at(26)}, -1},
		{"all filters", log.Query{Kind: log.SearchDecision, Subject: "agent-1", Action: "read", Resource: "repo/0", Outcome: log.OutcomeAllow, PolicyID: "p-c"}, 1},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64
			for i := range sums {
				if tt.q.Match(&sums[i]) {
					want = append(want, uint64(i))
				}
			}
			if tt.want >= 0 && len(want) != tt.want {
				t.Fatalf("the fixture has %d matches, the test expects %d", len(want), tt.want)
			}
			got := indices(t, s, &tt.q, 0, 0, 1000)
			if !slices.Equal(got, want) {
				t.Fatalf("Search = %v, want %v", got, want)
			}
			// Pages of 2, each starting after the last index of the one
			// before, give the same answer.
			var paged []uint64
			for start := uint64(0); ; {
				page := indices(t, s, &tt.q, start, 0, 2)
				paged = append(paged, page...)
				if len(page) < 2 {
					break
				}
				start = page[len(page)-1] + 1
			}
			if !slices.Equal(paged, want) {
				t.Fatalf("Search in pages of 2 = %v, want %v", paged, want)
			}
			// end bounds the answer.
			var below []uint64
			for _, i := range want {
				if i < 12 {
					below = append(below, i)
				}
			}
			if got := indices(t, s, &tt.q, 0, 12, 1000); !slices.Equal(got, below) {
				t.Fatalf("Search with end 12 = %v, want %v", got, below)
			}
		})
	}
	// An end beyond the log is the log's size; a start beyond it finds nothing.
	if got := indices(t, s, &log.Query{}, 0, cp.Size+100, 1000); len(got) != int(cp.Size) {
		t.Fatalf("Search with end beyond the log found %d entries, want %d", len(got), cp.Size)
	}
	if got := indices(t, s, &log.Query{}, cp.Size+5, 0, 10); len(got) != 0 {
		t.Fatalf("Search from beyond the log found %v", got)
	}
	// The index survives a reopen.
	b = h.backend(t)
	if got := indices(t, b, &log.Query{Subject: "agent-3"}, 0, 0, 100); len(got) != 6 {
		t.Fatalf("after reopening, Search(subject agent-3) found %v, want 6 entries", got)
	}
}

func indices(t *testing.T, s log.Searcher, q *log.Query, start, end uint64, limit int) []uint64 {
	t.Helper()
	found, err := s.Search(context.Background(), q, start, end, limit)
	if err != nil {
		t.Fatalf("Search(%+v, %d, %d, %d): %v", q, start, end, limit, err)
	}
	if len(found) > limit {
		t.Fatalf("Search returned %d entries, limit %d", len(found), limit)
	}
	out := []uint64{}
	for _, f := range found {
		s, err := log.Summarize(f.Leaf)
		if err != nil || !q.Match(&s) {
			t.Fatalf("Search returned entry %d, which does not match (%v)", f.Index, err)
		}
		out = append(out, f.Index)
	}
	if out == nil {
		return []uint64{}
	}
	return out
}
