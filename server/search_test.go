package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

type searchAnswer struct {
	Results []log.SearchResult `json:"results"`
	Next    string             `json:"next"`
}

func (e *env) search(t *testing.T, params url.Values) searchAnswer {
	t.Helper()
	r := e.get("/v1/search?" + params.Encode())
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/search?%s: %s", params.Encode(), r)
	}
	var a searchAnswer
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("search answer %s: %v", r.body, err)
	}
	return a
}

// searchAll pages through a search with the given page size.
func (e *env) searchAll(t *testing.T, params url.Values, limit int, between func()) []log.SearchResult {
	t.Helper()
	var out []log.SearchResult
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("limit", fmt.Sprint(limit))
	for {
		a := e.search(t, p)
		if len(a.Results) > limit {
			t.Fatalf("a page of %d results, limit %d", len(a.Results), limit)
		}
		out = append(out, a.Results...)
		if a.Next == "" {
			return out
		}
		if len(a.Results) != limit {
			t.Fatalf("a page of %d results with a next cursor, limit %d", len(a.Results), limit)
		}
		if between != nil {
			between()
		}
		p.Set("after", a.Next)
	}
}

func TestSearch(t *testing.T) {
	e := newEnv(t, envOptions{})
	start := time.Now().UTC()
	for i := range 30 {
		outcome := "allow"
		if i%3 == 0 {
			outcome = "deny"
		}
		r := e.post("/v1/decisions", decision(fmt.Sprintf("d-%d", i), outcome, map[string]any{
			"subject": fmt.Sprintf("agent-%d", i%5), "action": []string{"deploy", "read"}[i%2],
		}))
		if r.status != http.StatusCreated {
			t.Fatalf("submit: %s", r)
		}
	}
	if r := e.post("/v1/executions", execution("x-1", "d-1")); r.status != http.StatusCreated && r.status != http.StatusConflict {
		t.Fatalf("execution: %s", r)
	}

	t.Run("filters", func(t *testing.T) {
		a := e.search(t, url.Values{"subject": {"agent-2"}, "outcome": {"deny"}})
		// i = 12, 27 (i%5 == 2 and i%3 == 0)
		if len(a.Results) != 2 || a.Results[0].ID != "d-12" || a.Results[1].ID != "d-27" || a.Next != "" {
			t.Fatalf("subject agent-2, deny: %+v", a)
		}
		r := a.Results[0]
		if r.Kind != "decision" || r.Outcome != "deny" || r.Subject != "agent-2" || r.Action != "deploy" || r.Resource != "svc/d-12" {
			t.Fatalf("result %+v", r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.LoggedAt); err != nil {
			t.Fatalf("logged_at %q: %v", r.LoggedAt, err)
		}
		if a := e.search(t, url.Values{"decision_id": {"d-1"}}); len(a.Results) != 1 || a.Results[0].Kind != "execution" || a.Results[0].ID != "x-1" || a.Results[0].Status != "succeeded" {
			t.Fatalf("decision_id d-1: %+v", a)
		}
		if a := e.search(t, url.Values{"kind": {"execution"}}); len(a.Results) != 1 {
			t.Fatalf("kind execution: %+v", a)
		}
		if a := e.search(t, url.Values{"action": {"read"}, "policy_id": {"prod-deploy"}, "kind": {"decision"}}); len(a.Results) != 15 {
			t.Fatalf("action read: %d results", len(a.Results))
		}
		if a := e.search(t, url.Values{"from": {start.Add(-time.Minute).Format(time.RFC3339)}, "to": {time.Now().Add(time.Minute).Format(time.RFC3339)}}); len(a.Results) != 32 {
			// 30 decisions, an execution report and the log's artifact key.
			t.Fatalf("time range: %d results", len(a.Results))
		}
		if a := e.search(t, url.Values{"to": {start.Add(-time.Minute).Format(time.RFC3339)}}); len(a.Results) != 0 {
			t.Fatalf("before the log: %+v", a)
		}
		if a := e.search(t, url.Values{"subject": {"nobody"}}); a.Results == nil || len(a.Results) != 0 {
			t.Fatalf("no match must be an empty array: %+v", a)
		}
	})

	t.Run("pages while appending", func(t *testing.T) {
		// Pages of 4 over agent-1's entries while more of agent-1's are
		// appended between pages: no gap, no repeat, index order, and the
		// new entries appear at the end.
		n := 100
		got := e.searchAll(t, url.Values{"subject": {"agent-1"}}, 4, func() {
			n++
			if r := e.post("/v1/decisions", decision(fmt.Sprintf("late-%d", n), "allow", map[string]any{"subject": "agent-1"})); r.status != http.StatusCreated {
				t.Fatalf("submit: %s", r)
			}
		})
		seen := map[string]bool{}
		for i, r := range got {
			if seen[r.ID] {
				t.Fatalf("%s repeated", r.ID)
			}
			seen[r.ID] = true
			if i > 0 && r.Index <= got[i-1].Index {
				t.Fatalf("not in index order: %d after %d", r.Index, got[i-1].Index)
			}
		}
		for _, id := range []string{"d-1", "d-6", "d-11", "d-16", "d-21", "d-26"} {
			if !seen[id] {
				t.Fatalf("%s missing from the pages", id)
			}
		}
		if len(got) != 6+n-100 {
			t.Fatalf("%d results, want %d (6 + %d appended while paging)", len(got), 6+n-100, n-100)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, q := range []string{
			"nope=1", "subject=", "limit=0", "limit=1001", "limit=-1", "limit=01", "after=xyz", "after=AAAAAAAAAAAA", "after=AAAAAAAAAAB",
			"after=" + encodeCursor(1<<40), "kind=decisions", "outcome=maybe", "violation=Bad-Code",
			"from=yesterday", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "subject=a&subject=b",
			"decision_id=" + string(make([]byte, 0)) + fmt.Sprintf("%0129d", 0),
		} {
			wantError(t, e.get("/v1/search?"+q), http.StatusBadRequest, "invalid_request")
		}
	})
}
