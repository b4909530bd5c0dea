package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govlog/govlog/internal/opatest"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// toolServer is the tool behind the gate: a real HTTP server that records
// every call it gets.
type toolServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

func newToolServer(t *testing.T) *toolServer {
	ts := &toolServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ts.mu.Lock()
		ts.calls = append(ts.calls, r.Method+" "+r.URL.Path+" claim="+r.Header.Get("Govlog-Claim-Id"))
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ran":%q}`, r.URL.Path)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *toolServer) record() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.calls...)
}

// gateProc is a running govlog-gate.
type gateProc struct {
	url, admin string
	cmd        *exec.Cmd
	out        *lockedBuffer
	exited     chan struct{}
}

// gateServing finds the addresses in govlog-gate's "serving" line.
var gateServing = regexp.MustCompile(`msg="govlog-gate serving" addr=(\S+) admin=(\S+)`)

// startGate runs govlog-gate with the configuration cfg (listen and
// admin_listen are set here) and waits until it is ready.
func startGate(t *testing.T, cfg map[string]any) *gateProc {
	t.Helper()
	cfg["listen"], cfg["admin_listen"] = "127.0.0.1:0", "127.0.0.1:0"
	file := filepath.Join(t.TempDir(), "gate.json")
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateProc{out: &lockedBuffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(filepath.Join(binDir, "govlog-gate"), "--config", file)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(30 * time.Second):
			g.cmd.Process.Kill()
			t.Error("govlog-gate did not exit within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("govlog-gate output:\n%s", g.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-g.exited:
			t.Fatalf("govlog-gate exited:\n%s", g.out.String())
		default:
		}
		if g.admin == "" {
			// Both listeners are on ports the kernel chose: the serving
			// line names them.
			if m := gateServing.FindStringSubmatch(g.out.String()); m != nil {
				g.url, g.admin = "http://"+m[1], "http://"+m[2]
			}
		}
		if g.admin != "" {
			if resp, err := http.Get(g.admin + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return g
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("govlog-gate not ready after 30s:\n%s", g.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send sends a request through the gate and returns status and body.
func (g *gateProc) send(t *testing.T, method, path string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, g.url+path, strings.NewReader(`{"arg":1}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

// wantRefused checks a refusal's status and code.
func wantRefused(t *testing.T, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if status != wantStatus || e["code"] != code {
		t.Fatalf("answer %d %v, want %d %s", status, body, wantStatus, code)
	}
}

// gateConfig is the configuration of a gate in front of tool, logging to
// the daemon d.
func gateConfig(d *daemon, tool *toolServer) map[string]any {
	return map[string]any{
		"upstream": tool.URL,
		"log":      map[string]any{"url": d.url, "log_key_file": filepath.Join(d.data, "log.vkey"), "timeout": "3s"},
		"routes": []map[string]any{
			{"method": "POST", "path": "/tools/{name}", "action": "tool.call", "resource": "tool/{name}"},
		},
	}
}

// allowDecision logs an allow decision and returns its artifact.
func allowDecision(t *testing.T, d *daemon, id, subject, action, resource string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"id": id, "outcome": "allow", "decided_at": time.Now().UTC().Format(time.RFC3339),
		"subject": subject, "action": action, "resource": resource, "policy": map[string]string{"id": "e2e"}})
	status, b, err := postJSON(context.Background(), d.url+"/v1/decisions", body)
	if err != nil || status != 201 {
		t.Fatalf("decision %s: %d %s %v", id, status, b, err)
	}
	var rec struct{ Artifact string }
	json.Unmarshal(b, &rec)
	return rec.Artifact
}

// gatePolicy is the policy of the gate's policy mode: alice may call any
// tool but "delete"; nobody else may call any.
const gatePolicy = `package govlog.gate

default allow := false

allow if {
	input.subject == "alice"
	input.action == "tool.call"
	input.params.name != "delete"
}
`

// TestGate: govlog-gate in front of a tool, in artifact mode and in policy
// mode with a real OPA as the decision point, against a real govlogd. A
// denied request, a request without artifact, with an artifact for another
// action or resource, a replayed artifact, and any request while govlogd
// is down never reach the tool; allowed requests do, once each; every
// allow and deny is in the log and verifies.
func TestGate(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "")
	tool := newToolServer(t)
	o := opatest.Start(t, gatePolicy, "")
	art := startGate(t, gateConfig(d, tool))
	pcfg := gateConfig(d, tool)
	pcfg["mode"] = "policy"
	pcfg["identity"] = map[string]any{"header": "X-Agent"}
	pcfg["opa"] = map[string]any{"url": o.URL, "path": "govlog/gate/allow"}
	pol := startGate(t, pcfg)

	t.Run("policy deny", func(t *testing.T) {
		for _, c := range []struct{ agent, tool string }{{"bob", "search"}, {"alice", "delete"}} {
			status, body := pol.send(t, "POST", "/tools/"+c.tool, map[string]string{"X-Agent": c.agent})
			wantRefused(t, status, body, 403, "policy_denied")
			id, _ := body["decision_id"].(string)
			st, rb, _, err := call(context.Background(), http.MethodGet, d.url+"/v1/decisions/"+id, "", nil)
			if err != nil || st != 200 {
				t.Fatalf("the deny %s is not in the log: %d %v", id, st, err)
			}
			v, err := verifier.ReceiptJSON(rb, d.logKey(t))
			if err != nil || v.Entry.Decision == nil || v.Entry.Decision.Outcome != "deny" || float64(v.Index) != body["index"] {
				t.Fatalf("deny %s: %v %+v", id, err, v)
			}
		}
	})
	t.Run("no identity", func(t *testing.T) {
		status, body := pol.send(t, "POST", "/tools/search", nil)
		wantRefused(t, status, body, 403, "identity_missing")
	})
	t.Run("no artifact", func(t *testing.T) {
		status, body := art.send(t, "POST", "/tools/search", nil)
		wantRefused(t, status, body, 403, "artifact_missing")
		status, body = art.send(t, "POST", "/tools/search", map[string]string{"Authorization": "GovLog not-a-jwt"})
		wantRefused(t, status, body, 403, "artifact_invalid")
	})
	t.Run("another action or resource", func(t *testing.T) {
		other := allowDecision(t, d, "e2e-other-resource", "agent-7", "tool.call", "tool/other")
		status, body := art.send(t, "POST", "/tools/search", map[string]string{"Authorization": "GovLog " + other})
		wantRefused(t, status, body, 403, "not_authorized")
		read := allowDecision(t, d, "e2e-other-action", "agent-7", "file.read", "tool/search")
		status, body = art.send(t, "POST", "/tools/search", map[string]string{"Authorization": "GovLog " + read})
		wantRefused(t, status, body, 403, "not_authorized")
	})
	t.Run("allowed once, replay refused", func(t *testing.T) {
		ok := allowDecision(t, d, "e2e-allow", "agent-7", "tool.call", "tool/search")
		hdr := map[string]string{"Authorization": "GovLog " + ok}
		if status, body := art.send(t, "POST", "/tools/search", hdr); status != 200 || body["ran"] != "/tools/search" {
			t.Fatalf("allowed request: %d %v", status, body)
		}
		status, body := art.send(t, "POST", "/tools/search", hdr)
		wantRefused(t, status, body, 403, "uses_exhausted")
		if _, ok := body["receipt"]; !ok {
			t.Errorf("the violation's answer has no receipt: %v", body)
		}
		if status, body := pol.send(t, "POST", "/tools/search", map[string]string{"X-Agent": "alice"}); status != 200 {
			t.Fatalf("policy allow: %d %v", status, body)
		}
		if n := len(tool.record()); n != 2 {
			t.Fatalf("the tool was called %d times, want 2: %v", n, tool.record())
		}
	})
	t.Run("govlogd down", func(t *testing.T) {
		ok := allowDecision(t, d, "e2e-while-down", "agent-7", "tool.call", "tool/search")
		d.kill()
		status, body := art.send(t, "POST", "/tools/search", map[string]string{"Authorization": "GovLog " + ok})
		wantRefused(t, status, body, 503, "log_unavailable")
		status, body = pol.send(t, "POST", "/tools/search", map[string]string{"X-Agent": "alice"})
		wantRefused(t, status, body, 503, "log_unavailable")
	})
	// Only the allowed requests reached the tool, each with its claim.
	for _, c := range tool.record() {
		if !strings.Contains(c, "claim=gate-") {
			t.Errorf("the tool got a call without a claim: %s", c)
		}
	}
	// The refusals are counted on the admin listener.
	_, metrics, _, err := call(context.Background(), http.MethodGet, pol.admin+"/metrics", "", nil)
	if err != nil || !strings.Contains(string(metrics), `govlog_gate_refused_total{reason="policy_denied"} 2`) {
		t.Errorf("gate metrics: %v\n%s", err, metrics)
	}
}

// TestGateExpired: an artifact past its expiry (and the verifier's clock
// leeway) never reaches the tool.
func TestGateExpired(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, t.TempDir(), "", "--artifact-ttl", "1s")
	tool := newToolServer(t)
	g := startGate(t, gateConfig(d, tool))
	tok := allowDecision(t, d, "e2e-expiring", "agent-7", "tool.call", "tool/search")
	time.Sleep(artifact.DefaultLeeway + 2*time.Second)
	status, body := g.send(t, "POST", "/tools/search", map[string]string{"Authorization": "GovLog " + tok})
	wantRefused(t, status, body, 403, "artifact_invalid")
	if n := len(tool.record()); n != 0 {
		t.Fatalf("an expired artifact reached the tool: %v", tool.record())
	}
}
