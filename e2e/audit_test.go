package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/govlog/govlog/log/trillian/trilliantest"
)

// fillBatch logs n decisions named prefix-i through the batch endpoint
// (every third a deny, every other one with the sequence number i+1 of
// its submitter) and returns the ids of the allows.
func fillBatch(t *testing.T, url, prefix string, n int) []string {
	t.Helper()
	allows, _ := fillBatchArtifacts(t, url, prefix, n)
	return allows
}

// fillBatchArtifacts is fillBatch, returning the allows' artifacts too.
func fillBatchArtifacts(t *testing.T, url, prefix string, n int) ([]string, map[string]string) {
	t.Helper()
	var allows []string
	artifacts := map[string]string{}
	for done := 0; done < n; {
		k := min(n-done, 500)
		items := make([]json.RawMessage, k)
		for i := range items {
			id := fmt.Sprintf("%s-%d", prefix, done+i)
			outcome := "allow"
			if (done+i)%3 == 2 {
				outcome = "deny"
			} else {
				allows = append(allows, id)
			}
			items[i] = decision(id, outcome, "", 0)
		}
		body, _ := json.Marshal(map[string]any{"decisions": items})
		status, resp, err := postJSON(context.Background(), url+"/v1/decisions/batch", body)
		if err != nil || status != 200 || strings.Contains(string(resp), `"error"`) {
			t.Fatalf("batch: %d %v %.300s", status, err, resp)
		}
		var res struct {
			Results []struct {
				ID       string `json:"id"`
				Artifact string `json:"artifact"`
			} `json:"results"`
		}
		if err := json.Unmarshal(resp, &res); err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Results {
			if r.Artifact != "" {
				artifacts[r.ID] = r.Artifact
			}
		}
		done += k
	}
	return allows, artifacts
}

// TestAuditEndToEnd runs govlog audit, monitor and verify, the real
// binaries, against a real govlogd, then changes one byte of one stored
// entry in its database: the audit fails and names the entry.
func TestAuditEndToEnd(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, data, "")
	vkey := filepath.Join(data, "log.vkey")
	allows, artifacts := fillBatchArtifacts(t, d.url, "a", 600)
	// Execution reports of some allows: each a claim, with its artifact.
	for i, id := range allows[:20] {
		body := fmt.Appendf(nil, `{"id":"x-%d","decision_id":%q,"status":"succeeded","at":%q,"artifact":%q}`, i, id, time.Now().UTC().Format(time.RFC3339Nano), artifacts[id])
		if status, resp, err := postJSON(context.Background(), d.url+"/v1/executions", body); err != nil || status != 201 {
			t.Fatalf("execution: %d %v %s", status, err, resp)
		}
	}

	// The tiles API of the binary: immutable full tiles.
	status, _, hdr, err := call(context.Background(), http.MethodGet, d.url+"/tile/0/000", "", nil)
	if err != nil || status != 200 || hdr.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("GET /tile/0/000: %d %v %v", status, err, hdr)
	}

	// A first audit, saving its state.
	state := filepath.Join(work, "audit.state")
	code, out := govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--state", state)
	if code != 0 || !strings.Contains(out, "result      UNANCHORED: ") || !strings.Contains(out, "state saved to") || !strings.Contains(out, "621 entries: 600 decisions (400 allow, 200 deny), 20 execution reports, 0 revocations, 1 artifact key\n") {
		t.Fatalf("audit: exit %d\n%s", code, out)
	}
	// An incremental one.
	fillBatch(t, d.url, "b", 300)
	code, out = govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--state", state, "--json")
	var rep struct {
		OK      bool   `json:"ok"`
		Start   uint64 `json:"start"`
		Audited struct {
			Entries uint64 `json:"entries"`
		} `json:"audited"`
		Failures []struct {
			Code  string  `json:"code"`
			Index *uint64 `json:"index"`
		} `json:"failures"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.OK || rep.Start != 621 || rep.Audited.Entries != 300 {
		t.Fatalf("incremental audit: exit %d, %v\n%s", code, err, out)
	}

	// The monitor prints what matches, once.
	code, out = govlog(t, work, nil, "monitor", "--url", d.url, "--log-key", vkey, "--state", filepath.Join(work, "m.state"), "--once", "--subject", "agent-7")
	if code != 0 || !regexp.MustCompile(`(?m)^#\d+ \S+ decision a-7 allow subject="agent-7"`).MatchString(out) || strings.Contains(out, `subject="agent-6"`) {
		t.Fatalf("monitor: exit %d\n%s", code, out)
	}

	// Receipts saved by govlog submit verify offline, many at once.
	receipts := filepath.Join(work, "receipts")
	if err := os.Mkdir(receipts, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if code, out := govlog(t, receipts, decision(fmt.Sprintf("r-%d", i), "allow", "", 0), "submit", "--url", d.url, "--log-key", vkey, "-"); code != 0 {
			t.Fatalf("submit: %d %s", code, out)
		}
	}
	code, out = govlog(t, work, nil, "verify", "--log-key", vkey, receipts)
	if code != 0 || !strings.Contains(out, "6 receipts: 6 verified, 0 failed") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}

	// One byte of one stored entry, changed in the database of the
	// running log.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`UPDATE entries SET leaf = CAST(replace(CAST(leaf AS TEXT), '"deploy"', '"dEploy"') AS BLOB) WHERE idx = 123`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%d rows changed", n)
	}
	code, out = govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--json")
	rep.Failures = nil
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	named := false
	for _, f := range rep.Failures {
		if f.Code == "leaf_hash_mismatch" && f.Index != nil && *f.Index == 123 {
			named = true
		}
	}
	if code != 1 || rep.OK || !named {
		t.Fatalf("audit of a tampered database: exit %d\n%s", code, out)
	}
	code, out = govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey)
	if code != 1 || !strings.Contains(out, "[leaf_hash_mismatch] entry 123: entry 123 does not hash to its leaf hash in tile tile/0/000") {
		t.Fatalf("audit of a tampered database: exit %d\n%s", code, out)
	}
}

// TestAuditTrillian audits a log on Trillian through the tiles API, whose
// tiles govlogd derives from Trillian's leaves and proofs.
func TestAuditTrillian(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.Options{})
	data, work := t.TempDir(), t.TempDir()
	d := startTrillianDaemon(t, env, trillianTree(t, env), data)
	vkey := filepath.Join(data, "log.vkey")
	fillBatch(t, d.url, "t", 300)
	state := filepath.Join(work, "audit.state")
	code, out := govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--state", state)
	if code != 0 || !strings.Contains(out, "301 entries: 300 decisions") || !strings.Contains(out, "result      UNANCHORED") {
		t.Fatalf("audit on Trillian: exit %d\n%s", code, out)
	}
	fillBatch(t, d.url, "u", 20)
	code, out = govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--state", state, "--require-anchor")
	if code != 0 || !strings.Contains(out, "replayed    entries 301 to 320 (20)") || !strings.Contains(out, "anchored    by the saved state") {
		t.Fatalf("incremental audit on Trillian: exit %d\n%s", code, out)
	}
}
