package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/opatest"
	"github.com/govlog/govlog/verifier"
)

// opaPolicy is the policy OPA decides with in the decision-log test.
const opaPolicy = `package authz

default allow := false

allow if input.subject == "alice"
`

// opaDecisionLogConfig points OPA's decision_logs plugin, unmodified, at
// govlogd: a services entry and the endpoint's path as the resource; it
// uploads every second.
func opaDecisionLogConfig(govlogURL string) string {
	return fmt.Sprintf(`services:
  govlog:
    url: %s
decision_logs:
  service: govlog
  resource: /v1/opa/decision-logs
  reporting:
    min_delay_seconds: 1
    max_delay_seconds: 1
`, govlogURL)
}

// queryOPA asks OPA for authz/allow and returns the decision id it logs.
func queryOPA(t *testing.T, o *opatest.OPA, subject string, i int) string {
	t.Helper()
	body := fmt.Sprintf(`{"input":{"subject":%q,"action":"read","resource":"doc/%d"}}`, subject, i)
	resp, err := http.Post(o.URL+"/v1/data/authz/allow", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		DecisionID string `json:"decision_id"`
		Result     bool   `json:"result"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &ans) != nil || ans.DecisionID == "" || ans.Result != (subject == "alice") {
		t.Fatalf("OPA answered %d %s", resp.StatusCode, b)
	}
	return ans.DecisionID
}

// waitTreeSize waits until the log holds n entries besides the artifact
// key's entry (entry 0), and fails if it holds more.
func waitTreeSize(t *testing.T, url string, n uint64, limit time.Duration) {
	t.Helper()
	n++ // the artifact key's entry
	deadline := time.Now().Add(limit)
	for {
		var info struct {
			TreeSize uint64 `json:"tree_size"`
		}
		getJSON(t, url+"/v1/log", &info)
		if info.TreeSize > n {
			t.Fatalf("the log holds %d entries, want %d", info.TreeSize, n)
		}
		if info.TreeSize == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log holds %d entries after %v, want %d", info.TreeSize, limit, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOPADecisionLogs: OPA's own decision_logs plugin, configured by a
// file and unmodified, uploads to govlogd: N decisions make exactly N
// entries, each one the decision OPA made; decisions made while govlogd
// is down are uploaded again by OPA once it is back, each logged once.
func TestOPADecisionLogs(t *testing.T) {
	data := t.TempDir()
	// An address of freeAddr, which no listener on port 0 gets: govlogd
	// starts again on it after 2.5 s down.
	d := startDaemon(t, data, freeAddr(t))
	o := opatest.Start(t, opaPolicy, opaDecisionLogConfig(d.url))

	want := map[string]string{} // decision id → outcome
	const n = 40
	for i := range n {
		subject := []string{"alice", "bob"}[i%2]
		want[queryOPA(t, o, subject, i)] = map[bool]string{true: "allow", false: "deny"}[subject == "alice"]
	}
	waitTreeSize(t, d.url, n, 30*time.Second)

	// govlogd goes down; OPA keeps deciding and fails to upload.
	addr := d.addr
	d.kill()
	for i := n; i < n+20; i++ {
		want[queryOPA(t, o, "alice", i)] = "allow"
	}
	time.Sleep(2500 * time.Millisecond) // at least two failed uploads
	d = startDaemon(t, data, addr)
	waitTreeSize(t, d.url, n+20, 60*time.Second)
	// A second longer: nothing more comes (no event is logged twice).
	time.Sleep(2 * time.Second)
	waitTreeSize(t, d.url, n+20, time.Second)

	logKey := d.logKey(t)
	for id, outcome := range want {
		status, body, _, err := call(context.Background(), http.MethodGet, d.url+"/v1/decisions/"+id, "", nil)
		if err != nil || status != 200 {
			t.Fatalf("decision %s: %d %v", id, status, err)
		}
		v, err := verifier.ReceiptJSON(body, logKey)
		if err != nil {
			t.Fatalf("decision %s: %v", id, err)
		}
		var dec struct {
			Outcome, Subject, Action, Resource string
			InputDigest                        string `json:"input_digest"`
			Policy                             struct{ ID string }
		}
		if err := json.Unmarshal(v.Entry.Content, &dec); err != nil {
			t.Fatal(err)
		}
		if dec.Outcome != outcome || dec.Action != "read" || dec.Policy.ID != "authz/allow" || dec.InputDigest == "" {
			t.Errorf("decision %s: %+v, want %s", id, dec, outcome)
		}
		if bytes.Contains(v.Entry.Content, []byte(`"input"`)) {
			t.Errorf("decision %s holds the raw input: %s", id, v.Entry.Content)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, body, _, err := call(ctx, http.MethodGet, d.url+"/metrics", "", nil)
	if err != nil || status != 200 || !bytes.Contains(body, []byte(`govlog_opa_events_total{result="logged"}`)) {
		t.Errorf("metrics: %d %v", status, err)
	}
}
