package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/opa"
	"github.com/govlog/govlog/log"
)

// opaEvent is a decision-log event as OPA's plugin writes it.
func opaEvent(id string, result any, extra map[string]any) map[string]any {
	ev := map[string]any{
		"labels":       map[string]any{"id": "opa-test", "version": "1.22.4"},
		"decision_id":  id,
		"bundles":      map[string]any{"authz": map[string]any{"revision": "r42"}},
		"path":         "authz/allow",
		"input":        map[string]any{"subject": "agent-7", "action": "tool.call", "resource": "tool/" + id, "n": 1.50},
		"result":       result,
		"requested_by": "127.0.0.1:41234",
		"timestamp":    time.Now().UTC().Format(time.RFC3339Nano),
		"metrics":      map[string]any{"timer_server_handler_ns": 12345},
		"req_id":       3,
	}
	for k, v := range extra {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	return ev
}

func gzipJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	return buf.Bytes()
}

// upload posts an upload the way OPA does.
func (e *env) upload(body []byte, encoding string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+OPADecisionLogsPath, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	return e.send(req)
}

func parseOPAAnswer(t *testing.T, r response) opaAnswer {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("upload: %s", r)
	}
	var a opaAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	return a
}

func TestOPADecisionLogs(t *testing.T) {
	e := newEnv(t, envOptions{})
	events := []any{
		opaEvent("4ca636c1-55e4-417a-b1d8-4aceb67960d1", true, nil),
		opaEvent("5ca636c1-55e4-417a-b1d8-4aceb67960d2", false, nil),
		opaEvent("6ca636c1-55e4-417a-b1d8-4aceb67960d3", map[string]any{"allow": true, "reasons": []string{"x"}}, nil),
		// Another input shape: the defaults fall back to requested_by and the path.
		opaEvent("7ca636c1-55e4-417a-b1d8-4aceb67960d4", false, map[string]any{"input": map[string]any{"user": "u"}}),
	}
	body := gzipJSON(t, events)
	a := parseOPAAnswer(t, e.upload(body, "gzip"))
	if a.Acknowledged != 4 || len(a.Refused) != 0 {
		t.Fatalf("answer %+v, want 4 acknowledged", a)
	}
	if got := e.treeSize(); got != 4 {
		t.Fatalf("tree size %d, want 4", got)
	}

	want := []struct{ outcome, subject, action, resource string }{
		{"allow", "agent-7", "tool.call", "tool/4ca636c1-55e4-417a-b1d8-4aceb67960d1"},
		{"deny", "agent-7", "tool.call", "tool/5ca636c1-55e4-417a-b1d8-4aceb67960d2"},
		{"allow", "agent-7", "tool.call", "tool/6ca636c1-55e4-417a-b1d8-4aceb67960d3"},
		{"deny", "127.0.0.1", "authz/allow", ""},
	}
	for i, ev := range events {
		m := ev.(map[string]any)
		id := m["decision_id"].(string)
		r := e.get("/v1/decisions/" + id)
		if r.status != 200 {
			t.Fatalf("GET decision %s: %s", id, r)
		}
		rec := parseReceipt(t, r.body)
		e.verifyReceipt(rec, id)
		entry, err := log.ParseEntry(rec.Entry)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Outcome, Subject, Action, Resource string
			DecidedAt                          string `json:"decided_at"`
			InputDigest                        string `json:"input_digest"`
			Policy                             struct{ ID, Version string }
			Context                            map[string]map[string]any
		}
		if err := json.Unmarshal(entry.Content, &d); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if d.Outcome != w.outcome || d.Subject != w.subject || d.Action != w.action || d.Resource != w.resource {
			t.Errorf("%s: decision %+v, want %+v", id, d, w)
		}
		input, _ := json.Marshal(m["input"])
		digest, _ := opa.InputDigest(input)
		if d.InputDigest != digest || d.Policy.ID != "authz/allow" || d.Policy.Version != "r42" || d.DecidedAt != m["timestamp"] {
			t.Errorf("%s: decision %+v", id, d)
		}
		if d.Context["opa"]["labels"] == nil || d.Context["opa"]["input"] != nil {
			t.Errorf("%s: context %v: want the labels and no input", id, d.Context)
		}
		if bytes.Contains(entry.Content, []byte(`"n"`)) {
			t.Errorf("%s: the raw input is in the entry: %s", id, entry.Content)
		}
	}

	// OPA uploads a chunk again when it did not get a 2xx: nothing new.
	a = parseOPAAnswer(t, e.upload(body, "gzip"))
	if a.Acknowledged != 4 || e.treeSize() != 4 {
		t.Fatalf("re-upload: answer %+v, tree size %d; want 4 acknowledged and no new entry", a, e.treeSize())
	}
	// Plain JSON (curl) is accepted too.
	raw, _ := json.Marshal([]any{opaEvent("8ca636c1-55e4-417a-b1d8-4aceb67960d5", true, nil)})
	if a := parseOPAAnswer(t, e.upload(raw, "")); a.Acknowledged != 1 {
		t.Fatalf("plain upload: %+v", a)
	}
	if got := metricValue(t, e, `govlog_opa_events_total{result="logged"}`); got != 9 {
		t.Errorf("logged events metric %v, want 9", got)
	}
}

// TestOPADecisionLogsRefused: events that can never be logged are left
// out, listed and counted, and the rest of the upload is logged.
func TestOPADecisionLogsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	first := opaEvent("a1", true, nil)
	if a := parseOPAAnswer(t, e.upload(gzipJSON(t, []any{first}), "gzip")); a.Acknowledged != 1 {
		t.Fatalf("%+v", a)
	}
	cases := []struct {
		event any
		code  string
	}{
		{opaEvent("b1", "maybe", nil), "invalid_decision"},
		{opaEvent("b2", map[string]any{"decision": true}, nil), "invalid_decision"},
		{opaEvent("b3", nil, map[string]any{"result": nil}), "invalid_decision"},
		{opaEvent("b4", nil, map[string]any{"result": nil, "error": map[string]any{"code": "eval_error"}}), "invalid_decision"},
		{opaEvent("b5", true, map[string]any{"path": nil, "query": "data.x = true"}), "invalid_decision"},
		{opaEvent("b6", true, map[string]any{"input": map[string]any{"subject": 7}}), "invalid_decision"},
		{opaEvent("-bad id", true, nil), "invalid_decision"},
		{opaEvent("b8", true, map[string]any{"timestamp": "yesterday"}), "invalid_decision"},
		{opaEvent("a1", false, nil), "id_conflict"}, // another decision under a1's id
		{"not an object", "invalid_decision"},
	}
	events := []any{opaEvent("ok-1", true, nil)}
	for _, c := range cases {
		events = append(events, c.event)
	}
	events = append(events, opaEvent("ok-2", false, nil))
	a := parseOPAAnswer(t, e.upload(gzipJSON(t, events), "gzip"))
	if a.Acknowledged != 2 || len(a.Refused) != len(cases) {
		t.Fatalf("answer %+v: want 2 acknowledged and %d refused", a, len(cases))
	}
	for i, r := range a.Refused {
		if r.Error.Code != cases[i].code || r.Error.Message == "" {
			t.Errorf("refusal %d: %+v, want code %s", i, r, cases[i].code)
		}
	}
	if got := e.treeSize(); got != 3 {
		t.Errorf("tree size %d, want 3", got)
	}
	if got := metricValue(t, e, `govlog_opa_events_total{result="refused"}`); got != float64(len(cases)) {
		t.Errorf("refused events metric %v, want %d", got, len(cases))
	}
}

func TestOPADecisionLogsBadUploads(t *testing.T) {
	e := newEnv(t, envOptions{})
	ok := gzipJSON(t, []any{opaEvent("x1", true, nil)})
	for _, c := range []struct {
		name, contentType, encoding string
		body                        []byte
		status                      int
		code                        string
	}{
		{"not gzip", "application/json", "gzip", []byte(`[{}]`), 400, "invalid_request"},
		{"truncated gzip", "application/json", "gzip", ok[:len(ok)-6], 400, "invalid_request"},
		{"not an array", "application/json", "gzip", gzipJSON(t, map[string]any{"decision_id": "x"}), 400, "invalid_request"},
		{"trailing data", "application/json", "", []byte(`[] []`), 400, "invalid_request"},
		{"broken JSON", "application/json", "", []byte(`[{"decision_id":`), 400, "invalid_request"},
		{"other encoding", "application/json", "br", ok, 415, "unsupported_media_type"},
		{"no content type", "", "gzip", ok, 415, "unsupported_media_type"},
		{"too large", "application/json", "", []byte("[" + strings.Repeat(" ", DefaultOPAMaxUploadBytes) + "]"), 413, "too_large"},
		{"gzip bomb", "application/json", "gzip", gzipJSON(t, []string{strings.Repeat("a", DefaultOPAMaxUploadBytes)}), 413, "too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url+OPADecisionLogsPath, bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			wantError(t, e.with(t).send(req), c.status, c.code)
		})
	}
	if got := e.treeSize(); got != 0 {
		t.Errorf("tree size %d after bad uploads", got)
	}
	// An empty upload is a valid one.
	if a := parseOPAAnswer(t, e.upload(gzipJSON(t, []any{}), "gzip")); a.Acknowledged != 0 || len(a.Refused) != 0 {
		t.Errorf("empty upload: %+v", a)
	}
}

// TestOPADecisionLogsUnavailable: when the log cannot acknowledge, the
// whole upload is 503 (OPA keeps the chunk and sends it again), and the
// retry logs each event once.
func TestOPADecisionLogsUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := gzipJSON(t, []any{opaEvent("u1", true, nil), opaEvent("u2", false, nil)})
	e.backend.failAppend.Store(true)
	wantError(t, e.upload(body, "gzip"), 503, "log_unavailable")
	e.backend.failAppend.Store(false)
	if a := parseOPAAnswer(t, e.upload(body, "gzip")); a.Acknowledged != 2 {
		t.Fatalf("%+v", a)
	}
	if got := e.treeSize(); got != 2 {
		t.Errorf("tree size %d, want 2", got)
	}
}

// FuzzParseOPAEvents: an upload is refused, or split into events that,
// joined again into an array, split the same way.
func FuzzParseOPAEvents(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"decision_id":"a","result":true}, 1, "x", null]`))
	f.Add([]byte(` [ {"a":[1,{"b":2}]} ] `))
	f.Add([]byte(`[{}] []`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := parseOPAEvents(body)
		if err != nil {
			if ae, ok := err.(*apiError); !ok || ae.Code != codeInvalidRequest {
				t.Fatalf("error %v is not invalid_request", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		joined := append([]byte("["), bytes.Join(func() [][]byte {
			var b [][]byte
			for _, e := range events {
				b = append(b, e)
			}
			return b
		}(), []byte(","))...)
		joined = append(joined, ']')
		again, err := parseOPAEvents(joined)
		if err != nil || len(again) != len(events) {
			t.Fatalf("re-joined upload %q: %v", joined, err)
		}
		for i := range events {
			if !bytes.Equal(again[i], events[i]) {
				t.Fatalf("event %d: %q, then %q", i, events[i], again[i])
			}
		}
	})
}
