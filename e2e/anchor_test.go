package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyKeys copies a data directory's keys (the log's note key, its
// verifier key, the artifact key) into a new data directory.
func copyKeys(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"log.key", "log.vkey", "artifact.jwk"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, name), b, fi.Mode().Perm())
	}
	return to
}

// submitReceipt logs a decision and saves its JSON receipt as dir/id.json.
func submitReceipt(t *testing.T, url, dir string, body []byte, id string) string {
	t.Helper()
	status, resp, err := postJSON(context.Background(), url+"/v1/decisions", body)
	if err != nil || status != 201 {
		t.Fatalf("POST %s: %d %v %s", id, status, err, resp)
	}
	return writeFile(t, filepath.Join(dir, id+".json"), resp, 0o644)
}

// TestAuditRebuiltLog is the attack an unanchored audit cannot see: the
// log is rebuilt from scratch with the same keys, a deny left out. An
// audit with no saved state says UNANCHORED (not OK) and --require-anchor
// fails it; anchored by the state of an audit of the real log, or by a
// receipt of it, the audit finds the fork; verify --against finds that an
// old receipt is no longer in the log.
func TestAuditRebuiltLog(t *testing.T) {
	work := t.TempDir()
	realData := filepath.Join(t.TempDir(), "data")
	real := startDaemon(t, realData, "")
	vkey := filepath.Join(realData, "log.vkey")
	bodies := map[string][]byte{}
	ids := []string{"r-0", "r-1", "r-2", "r-3", "r-4", "r-5"}
	receipts := map[string]string{}
	for i, id := range ids {
		outcome := "allow"
		if i == 2 {
			outcome = "deny"
		}
		bodies[id] = decision(id, outcome, "", 0)
		receipts[id] = submitReceipt(t, real.url, work, bodies[id], id)
	}
	state := filepath.Join(work, "audit.state")
	if code, out := govlog(t, work, nil, "audit", "--url", real.url, "--log-key", vkey, "--state", state); code != 0 || !strings.Contains(out, "result      UNANCHORED") {
		t.Fatalf("first audit of the real log: exit %d\n%s", code, out)
	}
	if code, out := govlog(t, work, nil, "verify", "--log-key", vkey, "--against", real.url, receipts["r-2"]); code != 0 ||
		!regexp.MustCompile(`(?m)^still_in_log: yes, its checkpoint is consistent with the latest of "?http://[^ ]+"? \(size \d+\)$`).MatchString(out) {
		t.Fatalf("verify --against the real log: exit %d\n%s", code, out)
	}
	real.kill()

	// The same keys, the same decisions but the deny, and a few more.
	fake := startDaemon(t, copyKeys(t, realData), "")
	for _, id := range ids {
		if id != "r-2" {
			submitReceipt(t, fake.url, t.TempDir(), bodies[id], id)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("f-%d", i)
		submitReceipt(t, fake.url, t.TempDir(), decision(id, "allow", "", 0), id)
	}

	// Nothing anchors the audit: it passes, and says it proves little.
	code, out := govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey)
	if code != 0 || !strings.Contains(out, "result      UNANCHORED: no failure, but nothing vouches that this is the log seen before") || strings.Contains(out, "result      OK") {
		t.Fatalf("unanchored audit of the rebuilt log: exit %d\n%s", code, out)
	}
	code, out = govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey, "--json")
	if code != 0 || !strings.Contains(out, `"anchored": false`) || !strings.Contains(out, `"anchors": []`) {
		t.Fatalf("unanchored audit of the rebuilt log, JSON: exit %d\n%s", code, out)
	}
	if code, out := govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey, "--require-anchor"); code != 1 || !strings.Contains(out, "the audit is unanchored (--require-anchor)") {
		t.Fatalf("--require-anchor: exit %d\n%s", code, out)
	}

	// The state of the real log's audit anchors it: a fork.
	code, out = govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey, "--state", state)
	if code != 1 || !strings.Contains(out, "FAIL        [inconsistent]") || !strings.Contains(out, "EVIDENCE") || !strings.Contains(out, "result      FAILED") {
		t.Fatalf("audit of the rebuilt log with the state: exit %d\n%s", code, out)
	}
	// So does a receipt of the real log.
	code, out = govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey, "--trusted-checkpoint", receipts["r-5"])
	if code != 1 || !strings.Contains(out, "FAIL        [inconsistent]") || !strings.Contains(out, "is not consistent with the trusted checkpoint") {
		t.Fatalf("audit of the rebuilt log with a trusted receipt: exit %d\n%s", code, out)
	}
	// The receipt of the deny still verifies offline, but it is no longer
	// in the log.
	code, out = govlog(t, work, nil, "verify", "--log-key", vkey, "--against", fake.url, receipts["r-2"])
	if code != 1 || !strings.Contains(out, "is NOT in the log today") {
		t.Fatalf("verify --against the rebuilt log: exit %d\n%s", code, out)
	}
	code, out = govlog(t, work, nil, "verify", "--log-key", vkey, "--against", fake.url, "--json", receipts["r-2"], receipts["r-0"])
	if code != 1 || strings.Count(out, "is NOT in the log today") != 2 {
		t.Fatalf("verify --against the rebuilt log, two receipts: exit %d\n%s", code, out)
	}
}

// TestAuditWitnessTimes: a witness's cosignature anchors an audit and
// gives it a time; govlog verify prints the time bounds of a receipt.
func TestAuditWitnessTimes(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	data := logKeys(t)
	vkey := filepath.Join(data, "log.vkey")
	wdata := filepath.Join(dir, "w1")
	w := startGovlogWitness(t, wdata, "", "witness.e2e.test/w1", vkey)
	policy := writePolicy(t, dir, fmt.Sprintf("witness w1 %s %s\nquorum w1\n", witnessVKey(t, wdata), w.url))
	d := startDaemon(t, data, "", "--witness-policy", policy, "--witness-mode", "sync", "--witness-timeout", "5s")
	var receipt string
	for i := range 5 {
		receipt = submitReceipt(t, d.url, work, decision(fmt.Sprintf("w-%d", i), "allow", "", 0), fmt.Sprintf("w-%d", i))
	}
	stamp := `20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ`
	code, out := govlog(t, work, nil, "verify", "--log-key", vkey, "--witness-policy", policy, "--against", d.url, receipt)
	if code != 0 || !regexp.MustCompile(`(?m)^cosigned: by "?witness.e2e.test/w1"? at `+stamp+`$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^in_log_by: `+stamp+` \(the earliest cosignature`).MatchString(out) || !strings.Contains(out, "still_in_log: yes") {
		t.Fatalf("verify with the witness policy: exit %d\n%s", code, out)
	}
	code, out = govlog(t, work, nil, "verify", "--log-key", vkey, "--witness-policy", policy, "--json", receipt)
	if code != 0 || !regexp.MustCompile(`"cosignatures":\[\{"witness":"witness.e2e.test/w1","time":"`+stamp+`"\}\]`).MatchString(out) {
		t.Fatalf("verify --json with the witness policy: exit %d\n%s", code, out)
	}
	code, out = govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--witness-policy", policy, "--require-anchor")
	if code != 0 || !strings.Contains(out, "anchored    by the witness policy") ||
		!regexp.MustCompile(`(?m)^cosigned +by "?witness.e2e.test/w1"? at `+stamp+`: every entry audited was in the log then$`).MatchString(out) ||
		!strings.Contains(out, "result      OK") {
		t.Fatalf("audit with the witness policy: exit %d\n%s", code, out)
	}

	// The log rebuilt with the same keys, one decision fewer: the witness
	// cosigns none of its checkpoints, so an audit anchored by the policy
	// fails it.
	d.kill()
	fake := startDaemon(t, copyKeys(t, data), "", "--witness-policy", policy)
	for i := range 4 {
		submitReceipt(t, fake.url, t.TempDir(), decision(fmt.Sprintf("w-%d", i), "allow", "", 0), fmt.Sprintf("w-%d", i))
	}
	code, out = govlog(t, work, nil, "audit", "--url", fake.url, "--log-key", vkey, "--witness-policy", policy)
	if code != 1 || !strings.Contains(out, "FAIL        [witness_policy]") || strings.Contains(out, "anchored    ") {
		t.Fatalf("audit of the rebuilt log with the witness policy: exit %d\n%s", code, out)
	}
}
