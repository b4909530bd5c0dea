package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad timestamp %q: %v", s, err)
	}
	return tm
}

// TestDecisionsEndToEnd submits hundreds of concurrent decisions with lineage
// links and execution reports to the real binary and checks every receipt,
// artifact, checkpoint and consistency proof, then replays the whole log.
func TestDecisionsEndToEnd(t *testing.T) {
	testDecisionsEndToEnd(t, startDaemon(t, t.TempDir(), ""))
}

// testDecisionsEndToEnd is TestDecisionsEndToEnd on a daemon serving a new,
// empty log.
func testDecisionsEndToEnd(t *testing.T, d *daemon) {
	v := d.logKey(t)
	jwks := fetchJWKS(t, d.url)
	ctx := context.Background()

	var info struct {
		Origin             string `json:"origin"`
		VerifierKey        string `json:"verifier_key"`
		TreeSize           uint64 `json:"tree_size"`
		WitnessPolicy      string `json:"witness_policy"`
		JWKSURI            string `json:"jwks_uri"`
		ArtifactTTLSeconds int64  `json:"artifact_ttl_seconds"`
	}
	if st := getJSON(t, d.url+"/v1/log", &info); st != 200 {
		t.Fatalf("GET /v1/log: %d", st)
	}
	vkey, _ := os.ReadFile(filepath.Join(d.data, "log.vkey"))
	if info.Origin != v.Name() || info.VerifierKey != strings.TrimSpace(string(vkey)) || info.ArtifactTTLSeconds != 300 || info.JWKSURI == "" {
		t.Fatalf("GET /v1/log = %+v", info)
	}

	const workers, perWorker = 16, 25
	type logged struct {
		body    []byte
		receipt []byte
		outcome string
	}
	var (
		mu          sync.Mutex
		byID        = map[string]logged{}
		checkpoints []checkpoint
		seq         atomic.Uint64
		wg          sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			parent := ""
			for i := range perWorker {
				id := fmt.Sprintf("dec-%02d-%03d", w, i)
				outcome := "allow"
				if rng.IntN(4) == 0 {
					outcome = "deny"
				}
				p := ""
				if parent != "" && rng.IntN(3) == 0 {
					p = parent // lineage: an allow acknowledged earlier
				}
				var s uint64
				if rng.IntN(2) == 0 {
					s = seq.Add(1)
				}
				body := decision(id, outcome, p, s)
				status, resp, err := postJSON(ctx, d.url+"/v1/decisions", body)
				if err != nil || status != http.StatusCreated {
					t.Errorf("POST %s: %d %v %s", id, status, err, resp)
					return
				}
				r, cp, e := checkReceipt(t, resp, v, body)
				if outcome == "allow" {
					checkArtifact(t, jwks, info.Origin, r, cp, e)
				} else if r.Artifact != "" {
					t.Errorf("deny %s got an artifact", id)
				}
				mu.Lock()
				byID[id] = logged{body, resp, outcome}
				checkpoints = append(checkpoints, cp)
				mu.Unlock()
				if outcome == "allow" {
					parent = id // lineage stops at a deny: only an allow may be a parent
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// An identical resubmission gets the original receipt, byte for byte.
	for id, l := range byID {
		if !strings.HasSuffix(id, "3") {
			continue
		}
		status, resp, err := postJSON(ctx, d.url+"/v1/decisions", l.body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("resubmit %s: %d %v %s", id, status, err, resp)
		}
		if !bytes.Equal(resp, l.receipt) {
			t.Fatalf("resubmit %s: receipt changed:\n%s\nwas\n%s", id, resp, l.receipt)
		}
		// The same id with other content is a conflict.
		other := bytes.Replace(l.body, []byte(`"deploy"`), []byte(`"delete"`), 1)
		status, resp, _ = postJSON(ctx, d.url+"/v1/decisions", other)
		if status != http.StatusConflict || errorCode(t, resp) != "id_conflict" {
			t.Fatalf("conflicting resubmit %s: %d %s", id, status, resp)
		}
	}

	// Execution reports: for an allow, for a deny, for nothing.
	var allowID, denyID string
	for id, l := range byID {
		if l.outcome == "allow" && allowID == "" {
			allowID = id
		}
		if l.outcome == "deny" && denyID == "" {
			denyID = id
		}
	}
	var allowRec receipt
	json.Unmarshal(byID[allowID].receipt, &allowRec)
	exec := func(id, decisionID string) []byte {
		// A report that only says it completed: it is its own claim, and
		// carries the artifact.
		return []byte(fmt.Sprintf(`{"id":%q,"decision_id":%q,"status":"succeeded","at":%q,"runtime":"rt-1","result_digest":"sha256:%s","artifact":%q}`,
			id, decisionID, time.Now().UTC().Format(time.RFC3339Nano), strings.Repeat("0", 64), allowRec.Artifact))
	}
	body := exec("exec-1", allowID)
	status, resp, _ := postJSON(ctx, d.url+"/v1/executions", body)
	if status != http.StatusCreated {
		t.Fatalf("execution: %d %s", status, resp)
	}
	// The entry holds the report without its artifact (checked below).
	r, _, e := checkReceipt(t, resp, v, nil)
	if r.Artifact != "" || e.Execution == nil || e.AuthorizedUntil != "" || bytes.Contains(r.Entry, []byte(allowRec.Artifact)) ||
		!bytes.Contains(r.Entry, []byte(`"artifact_digest":"sha256:`)) {
		t.Fatalf("execution receipt: artifact %q entry %s", r.Artifact, r.Entry)
	}
	if status, resp, _ = postJSON(ctx, d.url+"/v1/executions", exec("exec-2", denyID)); status != http.StatusConflict || errorCode(t, resp) != "not_authorized" {
		t.Fatalf("execution of a deny: %d %s", status, resp)
	}
	// Reports on a deny or on nothing are logged with their violation.
	if status, resp, _ = postJSON(ctx, d.url+"/v1/executions", exec("exec-3", "no-such-decision")); status != http.StatusConflict || errorCode(t, resp) != "unknown_decision" {
		t.Fatalf("execution of nothing: %d %s", status, resp)
	}
	if status, resp, _ = postJSON(ctx, d.url+"/v1/decisions", decision("orphan-1", "allow", "no-such-parent", 0)); status != http.StatusUnprocessableEntity || errorCode(t, resp) != "unknown_parent" {
		t.Fatalf("unknown parent: %d %s", status, resp)
	}
	if status, resp, _ = postJSON(ctx, d.url+"/v1/decisions", decision("seq-dup-1", "allow", "", 1)); status != http.StatusConflict || errorCode(t, resp) != "sequence_conflict" {
		t.Fatalf("repeated sequence: %d %s", status, resp)
	}

	// Every checkpoint ever returned is consistent with the latest, and the
	// entries replay to its root.
	cur := latest(t, d.url, v)
	// The decisions, the artifact key's entry and three execution reports.
	if want := uint64(workers*perWorker + 4); cur.Size != want {
		t.Fatalf("tree size %d, want %d", cur.Size, want)
	}
	for _, cp := range checkpoints {
		checkConsistent(t, d.url, cp, cur)
	}
	leaves := replay(t, d.url, cur)
	ids := map[string]bool{}
	for i, leaf := range leaves {
		var e entry
		json.Unmarshal(leaf, &e)
		var x struct {
			ID       string `json:"id"`
			ParentID string `json:"parent_id"`
		}
		if e.Decision != nil {
			json.Unmarshal(e.Decision, &x)
			if x.ParentID != "" && !ids[x.ParentID] {
				t.Fatalf("entry %d: parent %q is not earlier in the log", i, x.ParentID)
			}
			ids[x.ID] = true
		}
	}

	// Lookups return a receipt against the latest checkpoint, no artifact.
	for id := range byID {
		var body json.RawMessage
		if st := getJSON(t, d.url+"/v1/decisions/"+id, &body); st != 200 {
			t.Fatalf("GET decision %s: %d", id, st)
		}
		r, cp, _ := checkReceipt(t, body, v, byID[id].body)
		if r.Artifact != "" || cp.Size != cur.Size {
			t.Fatalf("GET decision %s: artifact %q, checkpoint size %d (latest %d)", id, r.Artifact, cp.Size, cur.Size)
		}
		break
	}
	var lookup json.RawMessage
	if st := getJSON(t, d.url+"/v1/executions/exec-1", &lookup); st != 200 {
		t.Fatalf("GET execution: %d", st)
	}
	if st := getJSON(t, d.url+"/v1/decisions/exec-1", nil); st != 404 {
		t.Fatalf("GET decision with an execution id: %d, want 404 (separate namespaces)", st)
	}
}

// TestBatchEndToEnd submits through the batch endpoint with in-batch lineage
// and a repeated id.
func TestBatchEndToEnd(t *testing.T) {
	testBatchEndToEnd(t, startDaemon(t, t.TempDir(), ""))
}

// testBatchEndToEnd is TestBatchEndToEnd on a daemon serving a new, empty
// log.
func testBatchEndToEnd(t *testing.T, d *daemon) {
	v := d.logKey(t)
	items := [][]byte{
		decision("b-root-1", "allow", "", 0),
		decision("b-child-2", "deny", "b-root-1", 0),
		[]byte(`{"id":"b-bad-3"}`),
		decision("b-root-1", "allow", "", 0),
		decision("b-orphan-5", "allow", "b-nothing-0", 0),
	}
	items[3] = items[0] // the identical resubmission, later in the batch
	body := []byte(`{"decisions":[` + string(bytes.Join(items, []byte(","))) + `]}`)
	status, resp, err := postJSON(context.Background(), d.url+"/v1/decisions/batch", body)
	if err != nil || status != 200 {
		t.Fatalf("batch: %d %v %s", status, err, resp)
	}
	var out struct{ Results []json.RawMessage }
	if err := json.Unmarshal(resp, &out); err != nil || len(out.Results) != len(items) {
		t.Fatalf("batch results: %v %s", err, resp)
	}
	r0, _, _ := checkReceipt(t, out.Results[0], v, items[0])
	r1, _, _ := checkReceipt(t, out.Results[1], v, items[1])
	if r0.Artifact == "" || r1.Artifact != "" || r1.Index <= r0.Index {
		t.Fatalf("batch receipts: %d %d artifacts %q %q", r0.Index, r1.Index, r0.Artifact, r1.Artifact)
	}
	if c := errorCode(t, out.Results[2]); c != "invalid_decision" {
		t.Fatalf("item 2: %s", c)
	}
	r3, _, _ := checkReceipt(t, out.Results[3], v, items[3])
	if r3.Index != r0.Index || r3.Artifact != r0.Artifact {
		t.Fatalf("repeated id in batch: index %d artifact differs=%v", r3.Index, r3.Artifact != r0.Artifact)
	}
	if c := errorCode(t, out.Results[4]); c != "unknown_parent" {
		t.Fatalf("item 4: %s", c)
	}
}

// TestMalformedInput sends bad input of every kind: each gets the documented
// 4xx and JSON error code, never a 5xx.
func TestMalformedInput(t *testing.T) {
	testMalformedInput(t, startDaemon(t, t.TempDir(), ""))
}

// testMalformedInput is TestMalformedInput on a daemon serving a new, empty
// log.
func testMalformedInput(t *testing.T, d *daemon) {
	ok := string(decision("ok-1", "allow", "", 0))
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"not json", "POST", "/v1/decisions", "application/json", `{"id":`, 400, "invalid_json"},
		{"duplicate key", "POST", "/v1/decisions", "application/json", `{"id":"a","id":"b"}`, 400, "invalid_json"},
		{"lone surrogate", "POST", "/v1/decisions", "application/json", `{"id":"\ud800"}`, 400, "invalid_json"},
		{"invalid utf-8", "POST", "/v1/decisions", "application/json", "{\"id\":\"\xff\"}", 400, "invalid_json"},
		{"array", "POST", "/v1/decisions", "application/json", `[1]`, 400, "invalid_json"},
		{"missing fields", "POST", "/v1/decisions", "application/json", `{"id":"x-1"}`, 400, "invalid_decision"},
		{"unknown field", "POST", "/v1/decisions", "application/json", strings.Replace(ok, `{`, `{"extra":1,`, 1), 400, "invalid_decision"},
		{"reserved id", "POST", "/v1/decisions", "application/json", strings.Replace(ok, `"ok-1"`, `"batch"`, 1), 400, "invalid_decision"},
		{"future decided_at", "POST", "/v1/decisions", "application/json", fmt.Sprintf(`{"id":"f-1","outcome":"allow","decided_at":%q,"subject":"s","action":"a","policy":{"id":"p"}}`, future), 400, "invalid_decision"},
		{"big context integer", "POST", "/v1/decisions", "application/json", strings.Replace(ok, `"n":12`, `"n":123456789012345678901`, 1), 400, "invalid_decision"},
		{"fractional sequence", "POST", "/v1/decisions", "application/json", strings.Replace(ok, `{`, `{"sequence":1.0,`, 1), 400, "invalid_decision"},
		{"no content type", "POST", "/v1/decisions", "", ok, 415, "unsupported_media_type"},
		{"text content type", "POST", "/v1/decisions", "text/plain", ok, 415, "unsupported_media_type"},
		{"too large", "POST", "/v1/decisions", "application/json", `{"id":"` + strings.Repeat("a", 70000) + `"}`, 413, "too_large"},
		{"bad execution", "POST", "/v1/executions", "application/json", `{"id":"e-1","status":"done"}`, 400, "invalid_execution"},
		{"batch not wrapped", "POST", "/v1/decisions/batch", "application/json", `[` + ok + `]`, 400, "invalid_request"},
		{"batch too many", "POST", "/v1/decisions/batch", "application/json", `{"decisions":[` + strings.TrimSuffix(strings.Repeat(`{},`, 1001), ",") + `]}`, 400, "invalid_request"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, "not_found"},
		{"unknown decision", "GET", "/v1/decisions/nope-1", "", "", 404, "not_found"},
		{"wrong method", "DELETE", "/v1/decisions", "", "", 405, "method_not_allowed"},
		{"proof index beyond", "GET", "/v1/proofs/inclusion?index=5&tree_size=1", "", "", 400, "invalid_request"},
		{"proof index and hash", "GET", "/v1/proofs/inclusion?index=0&leaf_hash=AAAA", "", "", 400, "invalid_request"},
		{"proof unknown hash", "GET", "/v1/proofs/inclusion?leaf_hash=" + strings.Repeat("A", 43), "", "", 404, "not_found"},
		{"proof bad index", "GET", "/v1/proofs/inclusion?index=-1", "", "", 400, "invalid_request"},
		{"consistency zero", "GET", "/v1/proofs/consistency?from=0&to=1", "", "", 400, "invalid_request"},
		{"consistency beyond", "GET", "/v1/proofs/consistency?from=1&to=99", "", "", 400, "invalid_request"},
		{"entries count zero", "GET", "/v1/entries?start=0&count=0", "", "", 400, "invalid_request"},
		{"entries start beyond", "GET", "/v1/entries?start=99", "", "", 400, "invalid_request"},
		{"entries bad start", "GET", "/v1/entries?start=x", "", "", 400, "invalid_request"},
	}
	// One entry, so that size-1 requests are in range.
	if st, resp, _ := postJSON(context.Background(), d.url+"/v1/decisions", []byte(ok)); st != 201 {
		t.Fatalf("seed: %d %s", st, resp)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, hdr, err := call(context.Background(), c.method, d.url+c.path, c.ctype, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("error Content-Type %q", hdr.Get("Content-Type"))
			}
			if code := errorCode(t, body); code != c.code {
				t.Fatalf("code %q, want %q (%s)", code, c.code, body)
			}
		})
	}
}
