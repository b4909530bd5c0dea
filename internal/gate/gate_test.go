package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/internal/testenv"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
)

const testOrigin = "gate.govlog.test/log"

// tool is the upstream: a real HTTP server that records every call.
type tool struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []*http.Request
	bodies [][]byte
}

func newTool(t testing.TB) *tool {
	tl := &tool{}
	tl.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tl.mu.Lock()
		tl.calls = append(tl.calls, r)
		tl.bodies = append(tl.bodies, body)
		tl.mu.Unlock()
		switch r.URL.Path {
		case "/tools/big":
			// A chunked response of 3 MiB.
			w.Header().Set("Content-Type", "application/octet-stream")
			chunk := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
			for range 3 {
				w.Write(chunk)
				w.(http.Flusher).Flush()
			}
		case "/tools/fail":
			http.Error(w, "tool failure", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"tool":%q,"got":%d}`, r.URL.Path, len(body))
		}
	}))
	t.Cleanup(tl.srv.Close)
	return tl
}

func (tl *tool) count() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.calls)
}

// fixture is a gate in front of a tool, with a real govlog server on a
// real SQLite log.
type fixture struct {
	t      testing.TB
	logSrv *httptest.Server
	log    *client.Client // no log key: submits as a control plane
	tool   *tool
	gate   *Gate
	url    string
	reg    *prometheus.Registry
	dir    string
	claims *reportRecorder
}

func newFixture(t testing.TB, edit func(*Config)) *fixture {
	t.Helper()
	tl := testenv.NewLog(t, testOrigin)
	dir, k := tl.Dir, tl.Keys
	l, err := log.New(context.Background(), tl.Config())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, ArtifactKey: k.Artifact, VerifierKey: k.VerifierKey})
	if err != nil {
		t.Fatal(err)
	}
	logSrv := testenv.Serve(t, srv)
	f := &fixture{t: t, logSrv: logSrv, tool: newTool(t), dir: dir, reg: prometheus.NewRegistry()}
	if f.log, err = client.New(logSrv.URL); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{
		Upstream: f.tool.srv.URL,
		Log:      LogConfig{URL: logSrv.URL, LogKeyFile: filepath.Join(dir, keys.VerifierFile)},
		Routes: []Route{
			{Method: "POST", Path: "/tools/{name}", Action: "tool.call", Resource: "tool/{name}"},
			{Method: "GET", Path: "/files/{path...}", Action: "file.read", Resource: "file/{path}"},
		},
	}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.gate, err = New(cfg, Options{Registry: f.reg}); err != nil {
		t.Fatal(err)
	}
	f.claims = &reportRecorder{log: f.log}
	f.gate.submitExecution = f.claims.submit
	gs := httptest.NewServer(f.gate)
	t.Cleanup(gs.Close)
	f.url = gs.URL
	return f
}

// reportRecorder keeps every execution report the gate sends to the log,
// and sends it on unchanged: the log judges the claims (a second claim on
// a single-use authorization is a recorded 409 uses_exhausted).
type reportRecorder struct {
	log  *client.Client
	mu   sync.Mutex
	sent []map[string]any // every report, as the gate sent it
}

func (s *reportRecorder) submit(ctx context.Context, body []byte) (*log.Receipt, bool, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	return s.log.SubmitExecution(ctx, body)
}

func (s *reportRecorder) reports() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.sent...)
}

// allow logs an allow decision and returns its artifact.
func (f *fixture) allow(id, subject, action, resource string) string {
	f.t.Helper()
	d, _ := json.Marshal(map[string]any{
		"id": id, "outcome": "allow", "decided_at": time.Now().UTC().Format(time.RFC3339),
		"subject": subject, "action": action, "resource": resource, "policy": map[string]string{"id": "test"},
	})
	rec, _, err := f.log.Submit(context.Background(), d)
	if err != nil {
		f.t.Fatal(err)
	}
	if rec.Artifact == "" {
		f.t.Fatal("no artifact")
	}
	return rec.Artifact
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(method, path, artifact string, body io.Reader, hdr map[string]string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if artifact != "" {
		req.Header.Set("Authorization", "GovLog "+artifact)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// refused checks a refusal: status, JSON error code, and the metric.
func (f *fixture) refused(a answer, status int, code string) map[string]any {
	f.t.Helper()
	var body map[string]any
	if err := json.Unmarshal(a.body, &body); err != nil || a.header.Get("Content-Type") != "application/json" {
		f.t.Fatalf("refusal %d %s: not a JSON body", a.status, a.body)
	}
	e, _ := body["error"].(map[string]any)
	if a.status != status || e["code"] != code || e["message"] == "" {
		f.t.Fatalf("answer %d %s, want %d %s", a.status, a.body, status, code)
	}
	if got := value(f.gate.metrics.refused.WithLabelValues(code)); got < 1 {
		f.t.Errorf("refused{reason=%q} = %v", code, got)
	}
	return body
}

func (f *fixture) waitReports() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.gate.Wait(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// resultDigest is the documented result_digest of a response.
func resultDigest(status int, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%03d\n", status)
	h.Write(body)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func TestArtifactMode(t *testing.T) {
	f := newFixture(t, nil)
	art := f.allow("d-1", "agent-7", "tool.call", "tool/echo")
	a := f.do("POST", "/tools/echo?x=1", art, strings.NewReader(`{"q":"hello"}`), nil)
	if a.status != 200 || string(a.body) != `{"tool":"/tools/echo","got":13}` {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
	if f.tool.count() != 1 {
		t.Fatalf("the tool was called %d times", f.tool.count())
	}
	call := f.tool.calls[0]
	if call.Header.Get("Authorization") != "" || call.URL.RawQuery != "x=1" || call.Header.Get(HeaderDecisionID) != "d-1" {
		t.Errorf("the tool got Authorization %q, query %q, decision %q", call.Header.Get("Authorization"), call.URL.RawQuery, call.Header.Get(HeaderDecisionID))
	}
	claimID := call.Header.Get(HeaderClaimID)

	// The same artifact again: the log refuses a second claim; the tool
	// is not called.
	a = f.do("POST", "/tools/echo", art, strings.NewReader(`{}`), nil)
	f.refused(a, 403, "uses_exhausted")
	if f.tool.count() != 1 {
		t.Fatalf("a replayed artifact reached the tool")
	}

	f.waitReports()
	reps := f.claims.reports()
	if len(reps) != 3 {
		t.Fatalf("reports %v", reps)
	}
	claim, result := reps[0], reps[1]
	if result["status"] == "started" {
		result = reps[2]
	}
	if claim["id"] != claimID || claim["status"] != "started" || claim["artifact"] != art || claim["decision_id"] != "d-1" {
		t.Errorf("claim %v", claim)
	}
	want := resultDigest(200, []byte(`{"tool":"/tools/echo","got":13}`))
	if result["claim_id"] != claimID || result["status"] != "succeeded" || result["result_digest"] != want || result["artifact"] != nil {
		t.Errorf("terminal report %v, want digest %s", result, want)
	}
	// Both are in the log.
	for _, id := range []string{claimID, claimID + "-result"} {
		if _, err := f.log.Execution(context.Background(), id); err != nil {
			t.Errorf("execution %s: %v", id, err)
		}
	}
	if got := value(f.gate.metrics.allowed); got != 1 {
		t.Errorf("allowed = %v", got)
	}
	if got := value(f.gate.metrics.reports.WithLabelValues("logged")); got != 1 {
		t.Errorf("reports logged = %v", got)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, nil)
	other := f.allow("d-other", "agent-7", "tool.call", "tool/other")
	read := f.allow("d-read", "agent-7", "file.read", "file/a/b.txt")
	// Another signature: its first character changed (six bits of the
	// signature, never padding). Its last four set to "AAAA" were the
	// same artifact when they already were (about one run in 10^6).
	dot := strings.LastIndexByte(other, '.') + 1
	forged := other[:dot] + map[bool]string{true: "B", false: "A"}[other[dot] == 'A'] + other[dot+1:]
	for _, c := range []struct {
		name, method, path, artifact string
		hdr                          map[string]string
		status                       int
		code                         string
	}{
		{"no artifact", "POST", "/tools/echo", "", nil, 403, "artifact_missing"},
		{"another scheme", "POST", "/tools/echo", "", map[string]string{"Authorization": "Bearer " + other}, 403, "artifact_missing"},
		{"garbage", "POST", "/tools/echo", "not.a.jwt", nil, 403, "artifact_invalid"},
		{"forged signature", "POST", "/tools/other", forged, nil, 403, "artifact_invalid"},
		{"another resource", "POST", "/tools/echo", other, nil, 403, "not_authorized"},
		{"another action", "POST", "/tools/b.txt", read, nil, 403, "not_authorized"},
		{"no route", "GET", "/tools/other", other, nil, 403, "no_route"},
		{"unknown path", "POST", "/admin", other, nil, 403, "no_route"},
		{"too large", "POST", "/tools/other", other, map[string]string{"Content-Length": "999999999"}, 413, "too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var body io.Reader
			if c.hdr["Content-Length"] != "" {
				body = io.LimitReader(neverEnding{}, 999999999)
			}
			req, _ := http.NewRequest(c.method, f.url+c.path, body)
			if c.hdr["Content-Length"] != "" {
				req.ContentLength = 999999999
			}
			if c.artifact != "" {
				req.Header.Set("Authorization", "GovLog "+c.artifact)
			}
			for k, v := range c.hdr {
				if k != "Content-Length" {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			f.refused(answer{resp.StatusCode, resp.Header, b}, c.status, c.code)
		})
	}
	// The file route's {path...} wildcard: the right artifact passes.
	f.t = t
	if a := f.do("GET", "/files/a/b.txt", read, nil, nil); a.status != 200 {
		t.Errorf("file read: %d %s", a.status, a.body)
	}
	if n := f.tool.count(); n != 1 {
		t.Errorf("the tool was called %d times, want once (the file read)", n)
	}
	f.waitReports()
	if reps := f.claims.reports(); len(reps) != 2 || reps[0]["decision_id"] != "d-read" {
		t.Errorf("claims were made for refused requests: %v", reps)
	}
}

// value is a counter's value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) { return len(p), nil }

func TestExpiredAndSubject(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Identity.Header = "X-Agent" })
	art := f.allow("d-1", "agent-7", "tool.call", "tool/echo")
	f.refused(f.do("POST", "/tools/echo", art, nil, nil), 403, "identity_missing")
	f.refused(f.do("POST", "/tools/echo", art, nil, map[string]string{"X-Agent": "agent-8"}), 403, "not_authorized")
	// An hour later the artifact has expired.
	f.gate.clock = func() time.Time { return time.Now().Add(time.Hour) }
	f.refused(f.do("POST", "/tools/echo", art, nil, map[string]string{"X-Agent": "agent-7"}), 403, "artifact_invalid")
	f.gate.clock = time.Now
	if a := f.do("POST", "/tools/echo", art, nil, map[string]string{"X-Agent": "agent-7"}); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if f.tool.count() != 1 {
		t.Errorf("the tool was called %d times", f.tool.count())
	}
}

// TestLogDown: without the log nothing passes, even with a valid artifact
// whose keys the gate already holds.
func TestLogDown(t *testing.T) {
	f := newFixture(t, nil)
	art := f.allow("d-1", "agent-7", "tool.call", "tool/echo")
	art2 := f.allow("d-2", "agent-7", "tool.call", "tool/echo")
	if a := f.do("POST", "/tools/echo", art, nil, nil); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	f.waitReports()
	f.gate.submitExecution = f.gate.log.SubmitExecution // the real client, to a log that is gone
	f.logSrv.Close()
	a := f.do("POST", "/tools/echo", art2, nil, nil)
	f.refused(a, 503, "log_unavailable")
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if f.tool.count() != 1 {
		t.Errorf("the tool was called %d times, want once", f.tool.count())
	}
}

// TestStreaming: bodies are relayed whole in both directions, digested as
// documented, and cut at the limits.
func TestStreaming(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.MaxRequestBytes = 4 << 20; c.Limits.MaxResponseBytes = 4 << 20 })
	// 3 MiB up, chunked (no Content-Length), and 3 MiB down, chunked.
	up := bytes.Repeat([]byte("x"), 3<<20)
	art := f.allow("d-up", "agent-7", "tool.call", "tool/echo")
	if a := f.do("POST", "/tools/echo", art, io.MultiReader(bytes.NewReader(up)), nil); a.status != 200 || string(a.body) != `{"tool":"/tools/echo","got":3145728}` {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	art = f.allow("d-big", "agent-7", "tool.call", "tool/big")
	a := f.do("POST", "/tools/big", art, nil, nil)
	if a.status != 200 || len(a.body) != 3<<20 {
		t.Fatalf("download: %d, %d bytes", a.status, len(a.body))
	}
	// A tool failure is relayed and reported failed, with its digest.
	art = f.allow("d-fail", "agent-7", "tool.call", "tool/fail")
	fail := f.do("POST", "/tools/fail", art, nil, nil)
	if fail.status != 500 {
		t.Fatalf("failure: %d %s", fail.status, fail.body)
	}
	// Over the request limit without Content-Length: cut, 413, reported failed.
	art = f.allow("d-over", "agent-7", "tool.call", "tool/echo")
	over := f.do("POST", "/tools/echo", art, io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), 5<<20))), nil)
	if over.status != 413 {
		t.Fatalf("over the limit: %d %s", over.status, over.body)
	}
	f.waitReports()
	results := map[string]map[string]any{}
	for _, r := range f.claims.reports() {
		if r["status"] != "started" {
			results[r["decision_id"].(string)] = r
		}
	}
	for id, want := range map[string]struct {
		status, digest string
	}{
		"d-up":   {"succeeded", resultDigest(200, []byte(`{"tool":"/tools/echo","got":3145728}`))},
		"d-big":  {"succeeded", resultDigest(200, a.body)},
		"d-fail": {"failed", resultDigest(500, fail.body)},
		"d-over": {"failed", ""},
	} {
		r := results[id]
		if r == nil || r["status"] != want.status || (r["result_digest"] != nil) != (want.digest != "") || (want.digest != "" && r["result_digest"] != want.digest) {
			t.Errorf("%s: terminal report %v, want %s %s", id, r, want.status, want.digest)
		}
	}
}

// TestResponseLimit: a response longer than the limit is cut and reported
// failed, without a digest.
func TestResponseLimit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limits.MaxResponseBytes = 1 << 20 })
	art := f.allow("d-big", "agent-7", "tool.call", "tool/big")
	req, _ := http.NewRequest("POST", f.url+"/tools/big", nil)
	req.Header.Set("Authorization", "GovLog "+art)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		n, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("a response over the limit was relayed whole (%d bytes)", n)
		}
	}
	f.waitReports()
	reps := f.claims.reports()
	if last := reps[len(reps)-1]; last["status"] != "failed" || last["result_digest"] != nil {
		t.Errorf("terminal report %v", last)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "log.vkey"), []byte("x"), 0o600)
	good := `{"upstream":"http://127.0.0.1:9000","log":{"url":"http://127.0.0.1:8080","log_key_file":"log.vkey","timeout":"3s"},
	  "routes":[{"method":"POST","path":"/tools/{name}","action":"tool.call","resource":"tool/{name}"}]}`
	p := filepath.Join(dir, "gate.json")
	os.WriteFile(p, []byte(good), 0o600)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Log.LogKeyFile != filepath.Join(dir, "log.vkey") || cfg.Mode != ModeArtifact || cfg.Listen != DefaultListen || time.Duration(cfg.Log.Timeout) != 3*time.Second {
		t.Errorf("config %+v", cfg)
	}
	for _, c := range []struct{ name, edit, want string }{
		{"unknown member", `"extra":1`, "unknown field"},
		{"bad mode", `"mode":"audit"`, "mode"},
		{"policy without opa", `"mode":"policy"`, "opa"},
		{"policy without identity", `"mode":"policy","opa":{"url":"http://o","path":"a/b"}`, "identity"},
		{"bad duration", `"limits":{"upstream_timeout":5}`, "duration"},
		{"no upstream", `"upstream":""`, "upstream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]json.RawMessage
			json.Unmarshal([]byte(good), &m)
			var extra map[string]json.RawMessage
			if err := json.Unmarshal([]byte("{"+c.edit+"}"), &extra); err != nil {
				t.Fatal(err)
			}
			for k, v := range extra {
				m[k] = v
			}
			b, _ := json.Marshal(m)
			cfg, err := ParseConfig(b)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one about %q", err, c.want)
			}
		})
	}
	for _, rt := range []Route{
		{Path: "tools", Action: "a"},
		{Path: "/tools/{name}", Action: ""},
		{Path: "/tools/{name}", Action: "a", Resource: "tool/{other}"},
	} {
		if err := rt.validate(); err == nil {
			t.Errorf("route %+v accepted", rt)
		}
	}
}

// FuzzParseConfig: a configuration file that parses encodes to one that
// parses to the same configuration.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"upstream":"http://127.0.0.1:9000","log":{"url":"http://x","log_key_file":"k","timeout":"3s"},"routes":[{"method":"POST","path":"/t/{n}","action":"a","resource":"r/{n}"}]}`))
	f.Add([]byte(`{"mode":"policy","opa":{"url":"http://o","path":"a/b","headers":["X"],"timeout":"1m"},"identity":{"mtls":true},"limits":{"upstream_timeout":"0s"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		enc, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(enc)
		if err != nil {
			t.Fatalf("re-encoded %s: %v", enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s\nbecame\n%s", enc, enc2)
		}
		again.Validate() // never panics
	})
}
