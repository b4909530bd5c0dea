package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// batchResults posts a batch and returns its results, each a receipt or an
// error body.
func (e *env) batch(items ...[]byte) (response, []json.RawMessage) {
	e.t.Helper()
	body := append([]byte(`{"decisions":[`), bytes.Join(items, []byte(","))...)
	body = append(body, "]}"...)
	r := e.post("/v1/decisions/batch", body)
	if r.status != http.StatusOK {
		return r, nil
	}
	var out struct {
		Results []json.RawMessage `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		e.t.Fatalf("batch answer %s: %v", r.body, err)
	}
	if len(out.Results) != len(items) {
		e.t.Fatalf("%d results for %d items", len(out.Results), len(items))
	}
	return r, out.Results
}

func itemError(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	if e.Error == nil {
		return ""
	}
	if e.Error.Message == "" {
		t.Errorf("item error without message: %s", raw)
	}
	return e.Error.Code
}

func TestBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	if r := e.post("/v1/decisions", decision("old-1", "allow", map[string]any{"sequence": 1})); r.status != http.StatusCreated {
		t.Fatalf("setup: %s", r)
	}
	huge := decision("b-huge", "allow", map[string]any{"context": map[string]any{"pad": strings.Repeat("x", 70<<10)}})
	items := [][]byte{
		decision("b-1", "allow", nil),                               // 0: ok
		decision("b-2", "deny", map[string]any{"parent_id": "b-1"}), // 1: parent earlier in the batch
		[]byte(`{"id":"dup","id":"dup"}`),                           // 2: invalid_json
		decision("b-3", "allow", map[string]any{"subject": nil}),    // 3: invalid_decision
		huge,                           // 4: too_large
		decision("b-1", "allow", nil),  // 5: repeat of 0: resubmission
		decision("old-1", "deny", nil), // 6: id_conflict with the log
		decision("b-4", "allow", map[string]any{"parent_id": "b-9"}),   // 7: unknown_parent (b-9 comes later)
		decision("b-9", "deny", nil),                                   // 8: ok
		decision("b-5", "allow", map[string]any{"sequence": 1}),        // 9: sequence_conflict
		decision("b-2", "allow", nil),                                  // 10: repeat of 1 with other content: id_conflict
		decision("b-6", "allow", map[string]any{"parent_id": "old-1"}), // 11: parent in the log
		[]byte(`17`), // 12: invalid_json
		decision("b-7", "allow", map[string]any{"parent_id": "b-2"}), // 13: parent_denied: b-2 is a deny
		decision("b-8", "allow", map[string]any{"sequence": 2}),      // 14: ok
		decision("b-10", "deny", map[string]any{"sequence": 2}),      // 15: sequence_conflict with 14
	}
	items[5] = items[0]
	r, results := e.batch(items...)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %s", r)
	}
	wantCodes := map[int]string{2: "invalid_json", 3: "invalid_decision", 4: "too_large", 6: "id_conflict",
		7: "unknown_parent", 9: "sequence_conflict", 10: "id_conflict", 12: "invalid_json", 13: "parent_denied", 15: "sequence_conflict"}
	receipts := map[int]*receipt{}
	for i, raw := range results {
		code := itemError(t, raw)
		if code != wantCodes[i] {
			t.Errorf("item %d: code %q, want %q: %s", i, code, wantCodes[i], raw)
		}
		if code != "" {
			continue
		}
		rec := parseReceipt(t, raw)
		var d struct {
			ID      string `json:"id"`
			Outcome string `json:"outcome"`
		}
		json.Unmarshal(items[i], &d)
		e.verifyReceipt(rec, d.ID)
		if d.Outcome == "allow" {
			e.verifyArtifact(rec, items[i])
		} else if rec.Artifact != "" {
			t.Errorf("item %d: a deny got an artifact", i)
		}
		receipts[i] = rec
	}
	// The repeated id got the original receipt, artifact included.
	if a, b := receipts[0], receipts[5]; a == nil || b == nil || !bytes.Equal(results[0], results[5]) {
		t.Errorf("repeated id: %s\nvs %s", results[0], results[5])
	}
	// Lineage: a parent is logged before its children.
	if receipts[1].Index <= receipts[0].Index {
		t.Errorf("lineage order: b-1 at %d, b-2 at %d", receipts[0].Index, receipts[1].Index)
	}
	// A single resubmission of a batch item gets its receipt, byte for byte.
	single := e.post("/v1/decisions", items[0])
	if single.status != http.StatusOK {
		t.Fatalf("resubmission: %s", single)
	}
	if !bytes.Equal(bytes.TrimSpace(single.body), results[0]) {
		t.Errorf("single resubmission differs from the batch receipt:\n%s\n%s", single.body, results[0])
	}
	// Resubmitting the whole batch: the same answers.
	_, again := e.batch(items...)
	for i := range results {
		if !bytes.Equal(results[i], again[i]) && wantCodes[i] == "" {
			t.Errorf("item %d differs on resubmission:\n%s\n%s", i, results[i], again[i])
		}
	}
}

func TestBatchLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	var max [][]byte
	for i := range MaxBatchItems {
		max = append(max, decision(fmt.Sprintf("m-%d", i), "deny", nil))
	}
	r, results := e.batch(max...)
	if r.status != http.StatusOK {
		t.Fatalf("batch of %d: %s", MaxBatchItems, r)
	}
	for i, raw := range results {
		if code := itemError(t, raw); code != "" {
			t.Fatalf("item %d: %s", i, raw)
		}
	}
	// They shared group commits: far fewer commits than items.
	if n := metricValue(t, e, "govlog_commit_entries_count"); n > MaxBatchItems/4 {
		t.Errorf("%v group commits for %d items", n, MaxBatchItems)
	}
	over := append(max, decision("m-x", "deny", nil))
	r, _ = e.batch(over...)
	wantError(t, r, 400, "invalid_request")

	for _, tc := range []struct{ name, body string }{
		{"not an object", `[]`},
		{"not JSON", `{"decisions":[`},
		{"broken item", `{"decisions":[{"id":}]}`},
		{"missing", `{}`},
		{"null", `{"decisions":null}`},
		{"object", `{"decisions":{}}`},
		{"unknown member", `{"decisions":[],"x":1}`},
		{"duplicate member", `{"decisions":[],"decisions":[]}`},
		{"trailing data", `{"decisions":[]} {}`},
		{"trailing garbage", `{"decisions":[]}x`},
		{"empty", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.with(t).post("/v1/decisions/batch", []byte(tc.body)), 400, "invalid_request")
		})
	}
	t.Run("empty batch", func(t *testing.T) {
		r := e.with(t).post("/v1/decisions/batch", []byte(` {"decisions":[]} `))
		if r.status != 200 || string(bytes.TrimSpace(r.body)) != `{"results":[]}` {
			t.Fatalf("empty batch: %s", r)
		}
	})
	t.Run("only errors", func(t *testing.T) {
		r, results := e.with(t).batch([]byte(`{}`), []byte(`"x"`))
		if r.status != 200 || itemError(t, results[0]) != "invalid_decision" || itemError(t, results[1]) != "invalid_json" {
			t.Fatalf("batch of invalid items: %s", r)
		}
	})
}
