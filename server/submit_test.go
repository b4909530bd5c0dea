package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDecisionAllow(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := decision("d-1", "allow", nil)
	r := e.post("/v1/decisions", body)
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %s", r)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	rec := parseReceipt(t, r.body)
	cp := e.verifyReceipt(rec, "d-1")
	// Entry 0 is the artifact key's.
	if cp.Size != 2 || rec.Index != 1 {
		t.Errorf("index %d in tree %d, want 1 in 2", rec.Index, cp.Size)
	}
	if rec.Artifact == "" {
		t.Fatal("an allow got no artifact")
	}
	e.verifyArtifact(rec, body)
	var entry map[string]json.RawMessage
	if err := json.Unmarshal(rec.Entry, &entry); err != nil {
		t.Fatal(err)
	}
	if string(entry["submitter"]) != `"anonymous"` {
		t.Errorf("submitter %s", entry["submitter"])
	}

	// The log grows; an identical resubmission still gets the original
	// receipt and artifact, byte for byte.
	if r2 := e.post("/v1/decisions", decision("d-2", "deny", nil)); r2.status != http.StatusCreated {
		t.Fatalf("POST d-2: %s", r2)
	}
	again := e.post("/v1/decisions", body)
	if again.status != http.StatusOK {
		t.Fatalf("resubmission: %s", again)
	}
	if !bytes.Equal(again.body, r.body) {
		t.Errorf("resubmission is not byte-identical:\n%s\n%s", r.body, again.body)
	}
	// The same decision written differently is the same canonical decision.
	var m map[string]any
	json.Unmarshal(body, &m)
	spaced, _ := json.MarshalIndent(m, "", "    ")
	if again := e.post("/v1/decisions", spaced); again.status != http.StatusOK || !bytes.Equal(again.body, r.body) {
		t.Errorf("re-encoded resubmission: %s", again)
	}

	// GET: the receipt against the latest checkpoint, without artifact.
	g := e.get("/v1/decisions/d-1")
	if g.status != http.StatusOK {
		t.Fatalf("GET: %s", g)
	}
	if bytes.Contains(g.body, []byte(`"artifact"`)) {
		t.Errorf("GET returned an artifact: %s", g.body)
	}
	grec := parseReceipt(t, g.body)
	gcp := e.verifyReceipt(grec, "d-1")
	if gcp.Size != 3 || grec.Index != 1 || !bytes.Equal(grec.Entry, rec.Entry) {
		t.Errorf("GET receipt index %d in tree %d", grec.Index, gcp.Size)
	}
}

func TestDecisionDeny(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := decision("d-deny", "deny", map[string]any{"reasons": []string{"outside the change window"}})
	r := e.post("/v1/decisions", body)
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %s", r)
	}
	if bytes.Contains(r.body, []byte(`"artifact"`)) {
		t.Fatalf("a deny got an artifact: %s", r.body)
	}
	rec := parseReceipt(t, r.body)
	e.verifyReceipt(rec, "d-deny")
	if again := e.post("/v1/decisions", body); again.status != http.StatusOK || !bytes.Equal(again.body, r.body) {
		t.Errorf("resubmission: %s", again)
	}
}

func TestSubmissionErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	if r := e.post("/v1/decisions", decision("p-1", "allow", map[string]any{"sequence": 7})); r.status != http.StatusCreated {
		t.Fatalf("setup: %s", r)
	}
	if r := e.post("/v1/decisions", decision("deny-1", "deny", nil)); r.status != http.StatusCreated {
		t.Fatalf("setup: %s", r)
	}
	huge := decision("huge", "allow", map[string]any{"context": map[string]any{"pad": strings.Repeat("x", 70<<10)}})
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		code       string
	}{
		{"not JSON", "/v1/decisions", []byte(`{"id":`), 400, "invalid_json"},
		{"duplicate key", "/v1/decisions", []byte(`{"id":"a","id":"b"}`), 400, "invalid_json"},
		{"invalid UTF-8", "/v1/decisions", []byte("{\"id\":\"\xff\"}"), 400, "invalid_json"},
		{"lone surrogate", "/v1/decisions", []byte(`{"id":"\ud800"}`), 400, "invalid_json"},
		{"array", "/v1/decisions", []byte(`[]`), 400, "invalid_json"},
		{"empty body", "/v1/decisions", nil, 400, "invalid_json"},
		{"missing field", "/v1/decisions", decision("m-1", "allow", map[string]any{"subject": nil}), 400, "invalid_decision"},
		{"unknown field", "/v1/decisions", decision("m-2", "allow", map[string]any{"extra": 1}), 400, "invalid_decision"},
		{"bad outcome", "/v1/decisions", decision("m-3", "maybe", nil), 400, "invalid_decision"},
		{"reserved id", "/v1/decisions", decision("batch", "allow", nil), 400, "invalid_decision"},
		{"future", "/v1/decisions", decision("m-4", "allow", map[string]any{"decided_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}), 400, "invalid_decision"},
		{"too large", "/v1/decisions", huge, 413, "too_large"},
		{"id conflict", "/v1/decisions", decision("p-1", "deny", nil), 409, "id_conflict"},
		{"sequence conflict", "/v1/decisions", decision("s-2", "allow", map[string]any{"sequence": 7}), 409, "sequence_conflict"},
		{"unknown parent", "/v1/decisions", decision("c-1", "allow", map[string]any{"parent_id": "nope"}), 422, "unknown_parent"},
		{"execution not JSON", "/v1/executions", []byte(`nope`), 400, "invalid_json"},
		{"execution invalid", "/v1/executions", []byte(`{"id":"x-1"}`), 400, "invalid_execution"},
		{"parent is a deny", "/v1/decisions", decision("c-2", "allow", map[string]any{"parent_id": "deny-1"}), 409, "parent_denied"},
		{"revocation not JSON", "/v1/revocations", []byte(`[`), 400, "invalid_json"},
		{"revocation invalid", "/v1/revocations", []byte(`{"id":"r-1"}`), 400, "invalid_revocation"},
		{"revocation with a violation member", "/v1/revocations", revocation("r-1", "p-1", map[string]any{"extra": 1}), 400, "invalid_revocation"},
		{"revocation of a deny", "/v1/revocations", revocation("r-2", "deny-1", nil), 409, "not_revocable"},
		{"revocation of an unknown decision", "/v1/revocations", revocation("r-3", "nope", nil), 422, "unknown_decision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			r := e.post(tc.path, tc.body)
			wantError(t, r, tc.status, tc.code)
			// A refusal names what conflicts, never where it is: a writer
			// may not have the read permission.
			if bytes.Contains(r.body, []byte("index")) || bytes.Contains(r.body, []byte("at entry")) {
				t.Errorf("the refusal reveals where the other entry is: %s", r.body)
			}
		})
	}
	// Nothing refused was logged.
	var info logInfo
	if err := json.Unmarshal(e.get("/v1/log").body, &info); err != nil || info.TreeSize != 3 {
		t.Errorf("tree size %d after refusals (%v), want 3 (the key and two decisions)", info.TreeSize, err)
	}
}

// TestFieldErrorDetails checks that a submission with several broken
// fields gets all of them in one answer, single or in a batch.
func TestFieldErrorDetails(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := []byte(`{"outcome":"maybe","policy":{},"extra":1}`)
	want := `{"error":{"code":"invalid_decision","message":"invalid decision: extra: unknown field","details":[` +
		`{"field":"extra","reason":"unknown field"},{"field":"id","reason":"is required"},` +
		`{"field":"outcome","reason":"must be one of [\"allow\" \"deny\"]"},{"field":"decided_at","reason":"is required"},` +
		`{"field":"subject","reason":"is required"},{"field":"action","reason":"is required"},{"field":"policy.id","reason":"is required"}]}}`
	r := e.post("/v1/decisions", body)
	wantError(t, r, http.StatusBadRequest, "invalid_decision")
	if got := strings.TrimSpace(string(r.body)); got != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}
	b := e.post("/v1/decisions/batch", []byte(`{"decisions":[`+string(body)+`]}`))
	if b.status != http.StatusOK || !strings.Contains(string(b.body), `{"results":[`+want+`]}`) {
		t.Fatalf("batch: %s", b)
	}
	// A single broken field is listed too; other errors have no details.
	r = e.post("/v1/decisions", decision("x-1", "allow", map[string]any{"subject": nil}))
	if !strings.Contains(string(r.body), `"details":[{"field":"subject","reason":"is required"}]`) {
		t.Fatalf("one field: %s", r)
	}
	if r := e.post("/v1/decisions", []byte(`{"id":"a","id":"a"}`)); strings.Contains(string(r.body), "details") {
		t.Fatalf("invalid JSON with details: %s", r)
	}
	// Thousands of unknown fields: the list is bounded.
	many := ""
	for i := range 3000 {
		many += fmt.Sprintf(`"u%d":1,`, i)
	}
	r = e.post("/v1/decisions", []byte(`{`+many+`"v":1}`))
	wantError(t, r, http.StatusBadRequest, "invalid_decision")
	var eb struct {
		Error struct{ Details []fieldDetail } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &eb); err != nil || len(eb.Error.Details) != maxDetails {
		t.Fatalf("%d details (%v), want %d", len(eb.Error.Details), err, maxDetails)
	}
}

func TestExecution(t *testing.T) {
	e := newEnv(t, envOptions{})
	d := e.post("/v1/decisions", decision("d-1", "allow", map[string]any{"max_executions": 2}))
	if d.status != http.StatusCreated {
		t.Fatalf("setup: %s", d)
	}
	artifact := parseReceipt(t, d.body).Artifact
	body := claim("x-1", "d-1", artifact)
	r := e.post("/v1/executions", body)
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %s", r)
	}
	if bytes.Contains(r.body, []byte(`"artifact"`)) {
		t.Fatalf("an execution got an artifact: %s", r.body)
	}
	rec := parseReceipt(t, r.body)
	e.verifyReceipt(rec, "x-1")
	if again := e.post("/v1/executions", body); again.status != http.StatusOK || !bytes.Equal(again.body, r.body) {
		t.Errorf("resubmission: %s", again)
	}
	// Executions have their own namespace.
	if r := e.post("/v1/executions", claim("d-1", "d-1", artifact)); r.status != http.StatusCreated {
		t.Errorf("execution with a decision's id: %s", r)
	}
	g := e.get("/v1/executions/x-1")
	if g.status != http.StatusOK {
		t.Fatalf("GET: %s", g)
	}
	e.verifyReceipt(parseReceipt(t, g.body), "x-1")
	wantError(t, e.get("/v1/executions/nope"), 404, "not_found")
	wantError(t, e.get("/v1/decisions/x-1"), 404, "not_found")
}

func TestContentType(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i, tc := range []struct {
		ct   string
		want int
	}{
		{"application/json", 201},
		{"application/json; charset=utf-8", 201},
		{"Application/JSON; charset=UTF-8", 201},
		{"", 415},
		{"text/plain", 415},
		{"application/json; charset=latin1", 415},
		{"application/jsonx", 415},
		{"application/x-www-form-urlencoded", 415},
		{"garbage;;", 415},
	} {
		t.Run(tc.ct, func(t *testing.T) {
			e := e.with(t)
			for _, path := range []string{"/v1/decisions", "/v1/executions", "/v1/decisions/batch"} {
				body := decision("ct-"+string(rune('a'+i)), "deny", nil)
				switch path {
				case "/v1/executions":
					continue // checked with 415 below; a valid one needs a decision
				case "/v1/decisions/batch":
					body = []byte(`{"decisions":[]}`)
				}
				r := e.do(http.MethodPost, path, tc.ct, body)
				want := tc.want
				if want == 201 && path == "/v1/decisions/batch" {
					want = 200
				}
				if want == 415 {
					wantError(t, r, 415, "unsupported_media_type")
				} else if r.status != want {
					t.Errorf("%s with %q: %s", path, tc.ct, r)
				}
			}
			if tc.want == 415 {
				wantError(t, e.do(http.MethodPost, "/v1/executions", tc.ct, execution("x", "d")), 415, "unsupported_media_type")
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	big := func(n int) []byte { return bytes.Repeat([]byte(" "), n) }
	for _, tc := range []struct {
		name    string
		path    string
		body    []byte
		chunked bool
		status  int
	}{
		{"single over 64 KiB", "/v1/decisions", big(64<<10 + 1), false, 413},
		{"single over 64 KiB chunked", "/v1/decisions", big(64<<10 + 1), true, 413},
		{"execution over 64 KiB chunked", "/v1/executions", big(64<<10 + 1), true, 413},
		{"single at 64 KiB", "/v1/decisions", big(64 << 10), true, 400},
		{"batch over 4 MiB chunked", "/v1/decisions/batch", big(4<<20 + 1), true, 413},
		{"batch over 4 MiB", "/v1/decisions/batch", big(4<<20 + 1), false, 413},
		{"batch at 4 MiB", "/v1/decisions/batch", big(4 << 20), true, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			var rd = bytes.NewReader(tc.body)
			req, err := http.NewRequest(http.MethodPost, e.url+tc.path, struct{ *bytes.Reader }{rd})
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if !tc.chunked {
				req.ContentLength = int64(len(tc.body))
			}
			r := e.send(req)
			switch tc.status {
			case 413:
				wantError(t, r, 413, "too_large")
			case 400:
				if r.status != 400 {
					t.Fatalf("status %s", r)
				}
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"GET", "/v1", 404, "not_found"},
		{"GET", "/v1/decisions/a/b", 404, "not_found"},
		{"GET", "/v1/decisions/bad%20id", 404, "not_found"},
		{"GET", "/v1/decisions/" + strings.Repeat("a", 129), 404, "not_found"},
		{"GET", "/tile/0/000", 404, "not_found"}, // the log is empty
		{"GET", "/tile/entries/000", 404, "not_found"},
		{"GET", "/tile/0/0", 404, "not_found"},
		{"POST", "/checkpoint", 405, "method_not_allowed"},
		{"POST", "/tile/0/000", 405, "method_not_allowed"},
		{"POST", "/nope", 404, "not_found"},
		{"GET", "/v1/decisions", 405, "method_not_allowed"},
		{"PUT", "/v1/decisions", 405, "method_not_allowed"},
		{"DELETE", "/v1/decisions/d-1", 405, "method_not_allowed"},
		{"POST", "/v1/checkpoint", 405, "method_not_allowed"},
		{"POST", "/v1/decisions/d-1", 405, "method_not_allowed"},
		{"PATCH", "/v1/executions", 405, "method_not_allowed"},
		{"POST", "/healthz", 405, "method_not_allowed"},
		{"POST", "/metrics", 405, "method_not_allowed"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := e.with(t)
			r := e.do(tc.method, tc.path, "application/json", nil)
			wantError(t, r, tc.status, tc.code)
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	// GET on the batch path is not a lookup of the reserved id "batch".
	if r := e.get("/v1/decisions/batch"); r.status != 404 && r.status != 405 {
		t.Errorf("GET /v1/decisions/batch: %s", r)
	}
}

func TestQueryOnSubmission(t *testing.T) {
	e := newEnv(t, envOptions{})
	wantError(t, e.post("/v1/decisions?x=1", decision("q-1", "deny", nil)), 400, "invalid_request")
	wantError(t, e.get("/healthz?verbose=1"), 400, "invalid_request")
	wantError(t, e.get("/v1/checkpoint?a"), 400, "invalid_request")
}
