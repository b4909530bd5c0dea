package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAuditSeededViolations seeds a real govlogd (static bearer tokens:
// a control plane, the executor rt and another identity) with each of the
// ten violations of the wire contract, each answered 409 with the
// receipt of its recorded entry; govlog audit lists every one by code,
// and exits 1 with --fail-on-findings.
func TestAuditSeededViolations(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	tokens := map[string]string{"cp": "tok-control-plane", "rt": "tok-runtime", "mallory": "tok-mallory"}
	var lines []string
	for id, tok := range tokens {
		lines = append(lines, fmt.Sprintf("%s %s *", id, tokenHash(tok)))
	}
	tokFile := writeFile(t, filepath.Join(work, "tokens"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	d := startDaemon(t, data, "", "--auth-tokens", tokFile, "--artifact-ttl", "60s")
	vkey := filepath.Join(data, "log.vkey")
	c := &http.Client{Timeout: 30 * time.Second}
	now := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	post := func(who, path string, obj map[string]any) (int, map[string]json.RawMessage) {
		t.Helper()
		body, _ := json.Marshal(obj)
		status, resp, _ := request(t, c, http.MethodPost, d.url+path, tokens[who], body)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(resp, &m); err != nil {
			t.Fatalf("POST %s: %d %s", path, status, resp)
		}
		return status, m
	}
	decide := func(id, outcome string, extra map[string]any) string {
		t.Helper()
		obj := map[string]any{"id": id, "outcome": outcome, "decided_at": now(-time.Minute), "subject": "agent-7", "action": "deploy",
			"resource": "svc/" + id, "policy": map[string]any{"id": "prod-deploy"}}
		for k, v := range extra {
			obj[k] = v
		}
		status, m := post("cp", "/v1/decisions", obj)
		if status != 201 {
			t.Fatalf("decision %s: %d %v", id, status, m)
		}
		var art string
		_ = json.Unmarshal(m["artifact"], &art)
		return art
	}
	claim := func(who, id, decision, status, art, claimID, at string, want int, code string) {
		t.Helper()
		obj := map[string]any{"id": id, "decision_id": decision, "status": status, "at": at}
		if art != "" {
			obj["artifact"] = art
		}
		if claimID != "" {
			obj["claim_id"] = claimID
		}
		got, m := post(who, "/v1/executions", obj)
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(m["error"], &e)
		if got != want || e.Code != code || (want == 409 && len(m["receipt"]) == 0) {
			t.Fatalf("report %s: %d %s %v, want %d %s", id, got, e.Code, m, want, code)
		}
		if want == 409 {
			f := writeFile(t, filepath.Join(work, id+".receipt.json"), m["receipt"], 0o644)
			if code, out := govlog(t, work, nil, "verify", "--log-key", vkey, f); code != 0 {
				t.Fatalf("the receipt of the recorded violation %s does not verify: %s", id, out)
			}
		}
	}

	single := decide("single", "allow", map[string]any{"executor": "rt"})
	decide("denied", "deny", nil)
	revoked := decide("to-revoke", "allow", nil)
	claim("rt", "c-ok", "single", "started", single, "", now(0), 201, "")
	claim("rt", "c-ok-done", "single", "succeeded", "", "c-ok", now(0), 201, "")
	claim("rt", "v-unknown", "nope", "started", single, "", now(0), 409, "unknown_decision")
	claim("rt", "v-deny", "denied", "started", single, "", now(0), 409, "not_authorized")
	claim("rt", "v-missing", "single", "started", "", "", now(0), 409, "artifact_missing")
	forged := single[:len(single)-2] + map[bool]string{true: "AA", false: "BA"}[strings.HasSuffix(single, "BA")]
	claim("rt", "v-invalid", "single", "started", forged, "", now(0), 409, "artifact_invalid")
	claim("rt", "v-before", "single", "started", single, "", now(-time.Hour), 409, "before_decision")
	claim("rt", "v-expired", "single", "started", single, "", now(2*time.Minute), 409, "expired")
	claim("mallory", "v-executor", "single", "started", single, "", now(0), 409, "wrong_executor")
	claim("rt", "v-reuse", "single", "started", single, "", now(0), 409, "uses_exhausted")
	claim("rt", "v-claim", "single", "failed", "", "nope", now(0), 409, "unknown_claim")
	if status, m := post("cp", "/v1/revocations", map[string]any{"id": "r-1", "decision_id": "to-revoke", "revoked_at": now(0)}); status != 201 {
		t.Fatalf("revocation: %d %v", status, m)
	}
	claim("rt", "v-revoked", "to-revoke", "started", revoked, "", now(0), 409, "revoked")
	if status, m := post("cp", "/v1/decisions", map[string]any{"id": "child", "outcome": "allow", "decided_at": now(0), "subject": "s", "action": "a",
		"policy": map[string]any{"id": "p"}, "parent_id": "denied"}); status != 409 {
		t.Fatalf("child of a deny: %d %v", status, m)
	}

	code, out := govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey)
	if code != 0 {
		t.Fatalf("audit: exit %d\n%s", code, out)
	}
	for id, v := range map[string]string{"v-unknown": "unknown_decision", "v-deny": "not_authorized", "v-missing": "artifact_missing",
		"v-invalid": "artifact_invalid", "v-before": "before_decision", "v-expired": "expired", "v-executor": "wrong_executor",
		"v-reuse": "uses_exhausted", "v-claim": "unknown_claim", "v-revoked": "revoked"} {
		if !regexp.MustCompile(`(?m)^FINDING +\[violation ` + v + `\] entry \d+: execution "` + id + `" \(`).MatchString(out) {
			t.Errorf("the audit does not list %s (%s)", v, id)
		}
	}
	if !strings.Contains(out, "violations  10 recorded by the log: ") ||
		!regexp.MustCompile(`(?m)^authorized +single \(entry \d+\): 1 of 1 executions used, 7 violations$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^authorized +to-revoke \(entry \d+\): 0 of 1 executions used, 1 violation, revoked$`).MatchString(out) {
		t.Errorf("audit summary:\n%s", out)
	}
	if t.Failed() {
		t.Fatalf("audit output:\n%s", out)
	}
	if code, out := govlog(t, work, nil, "audit", "--url", d.url, "--log-key", vkey, "--fail-on-findings"); code != 1 || !strings.Contains(out, "--fail-on-findings") {
		t.Fatalf("--fail-on-findings: exit %d\n%s", code, out)
	}
}

// TestDemo runs govlog demo against a real govlogd, twice (fresh ids each
// run), and make demo's script with its own govlogd.
func TestDemo(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, data, "")
	vkey := filepath.Join(data, "log.vkey")
	for run := range 2 {
		code, out := govlog(t, work, nil, "demo", "--url", d.url, "--log-key", vkey, "--out", "demo")
		for _, want := range []string{
			"→ 201, with an authorization artifact bound to entry",
			"runtime: the artifact verifies offline",
			"the tool runs: ",
			"→ 409 not_authorized: recorded, the runtime must not run the tool",
			"→ 409 uses_exhausted: recorded",
			"→ 409 revoked: recorded",
			"→ 409 parent_denied",
			"recorded violation not_authorized: execution ",
			"recorded violation uses_exhausted: execution ",
			"recorded violation revoked: execution ",
			"The tool was called 1 time(s): only for the allow, once.",
			"result: OK, every step went as it must",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: no %q", run, want)
			}
		}
		if code != 0 || strings.Contains(out, "FAILED") || t.Failed() {
			t.Fatalf("run %d: exit %d\n%s", run, code, out)
		}
		// Every verify: line runs as printed.
		for _, line := range regexp.MustCompile(`(?m)^   verify:  (govlog .*)$`).FindAllStringSubmatch(out, -1) {
			args := strings.Fields(line[1])[1:]
			if code, out := govlog(t, work, nil, args...); code != 0 {
				t.Errorf("%s: exit %d\n%s", line[1], code, out)
			}
		}
	}

	// make demo's script, with the binaries of this test run.
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join("..", "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "BIN="+binDir, "DEMO_LISTEN="+freeAddr(t), "DEMO_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "result: OK") {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "evidence", "keys.json")); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyArtifactEndToEnd checks an allow's artifact from a real
// govlogd with govlog verify-artifact: its key's receipt fetched from GET
// /v1/keys, or from a saved key list, bound to its receipt; a changed
// signature, another action or a key list of another log fail it.
func TestVerifyArtifactEndToEnd(t *testing.T) {
	data, work := t.TempDir(), t.TempDir()
	d := startDaemon(t, data, "")
	vkey := filepath.Join(data, "log.vkey")
	status, body, err := postJSON(t.Context(), d.url+"/v1/decisions", decision("va-1", "allow", "", 0))
	if err != nil || status != 201 {
		t.Fatalf("POST: %d %v %s", status, err, body)
	}
	var r struct {
		Artifact string `json:"artifact"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Artifact == "" {
		t.Fatalf("no artifact: %s", body)
	}
	receipt := writeFile(t, filepath.Join(work, "va-1.receipt.json"), body, 0o644)
	jwt := writeFile(t, filepath.Join(work, "va-1.jwt"), []byte(r.Artifact+"\n"), 0o644)
	_, keys, _, err := call(t.Context(), http.MethodGet, d.url+"/v1/keys", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	keysFile := writeFile(t, filepath.Join(work, "keys.json"), keys, 0o644)

	ok := [][]string{
		{"--url", d.url, "--action", "deploy", "--resource", "svc/va-1", "--subject", "agent-1", r.Artifact},
		{"--keys", keysFile, "--receipt", receipt, "--action", "deploy", "--resource", "svc/va-1", jwt},
		{"--keys", keysFile, "--json", jwt},
	}
	for _, args := range ok {
		code, out := govlog(t, work, nil, append([]string{"verify-artifact", "--log-key", vkey}, args...)...)
		if code != 0 || !(strings.Contains(out, "OK: artifact of decision va-1") || strings.Contains(out, `"ok": true`)) {
			t.Fatalf("%q: exit %d\n%s", args, code, out)
		}
	}
	forged := r.Artifact[:len(r.Artifact)-4] + map[bool]string{true: "AAAA", false: "BBBB"}[strings.HasSuffix(r.Artifact, "BBBB")]
	other := logKeys(t) // another log's key
	bad := [][]string{
		{"--keys", keysFile, forged},
		{"--keys", keysFile, "--action", "delete", "--resource", "svc/va-1", jwt},
		{"--keys", keysFile, "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), jwt},
	}
	for _, args := range bad {
		if code, out := govlog(t, work, nil, append([]string{"verify-artifact", "--log-key", vkey}, args...)...); code != 1 || !strings.Contains(out, "does NOT verify") {
			t.Fatalf("%q: exit %d\n%s", args, code, out)
		}
	}
	if code, out := govlog(t, work, nil, "verify-artifact", "--log-key", filepath.Join(other, "log.vkey"), "--keys", keysFile, jwt); code != 1 {
		t.Fatalf("another log's key: exit %d\n%s", code, out)
	}
}
