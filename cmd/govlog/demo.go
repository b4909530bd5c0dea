package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// errDemoFailed: the log did not behave as the story says it must.
var errDemoFailed = errors.New("the demo did not go as it must")

// demo plays the governed-execution story against a running govlogd.
func demo(ctx context.Context, args []string, _ io.Reader, stdout io.Writer) error {
	f := newFlags("demo", "[flags]",
		"Play the governed-execution story against a running govlogd: an allow and its one execution, a deny whose tool is "+
			"never called, a reuse and a claim after a revocation recorded as violations, a child of a deny refused, then the "+
			"auditor's proof of all of it. Each step prints the command that verifies it.")
	sf := addServerFlags(f)
	keyArg := f.String("log-key", "", "the log's note verifier `key` (a file or the key text); default: the one GET /v1/log "+
		"serves, which proves nothing about that log (a demo only)")
	out := f.String("out", "govlog-demo", "save the receipts (in DIR/receipts), the artifacts, the key list and the log key in `DIR`")
	f.Example("govlog demo --url http://127.0.0.1:8080 --log-key data/log.vkey", "against make run's server")
	if err := sf.parse(f, args, stdout); err != nil {
		return err
	}
	if f.NArg() != 0 {
		return f.usagef("unexpected argument %q", f.Arg(0))
	}
	token, err := sf.token()
	if err != nil {
		return err
	}
	base, err := url.Parse(*sf.url)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return f.usagef("--url: %q is not an http(s) URL", *sf.url)
	}
	d := &demoRun{ctx: ctx, w: stdout, base: base, token: token, dir: *out, http: &http.Client{Timeout: 30 * time.Second}}
	if err := os.MkdirAll(filepath.Join(d.dir, "receipts"), 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", d.dir, err)
	}
	var key note.Verifier
	if *keyArg != "" {
		if key, err = readVerifierKey(*keyArg); err != nil {
			return f.usagef("--log-key: %v", err)
		}
	}
	if err := d.setKey(*keyArg, key); err != nil {
		return err
	}
	return d.play()
}

// demoRun is one run of the story.
type demoRun struct {
	ctx   context.Context
	w     io.Writer
	base  *url.URL
	token string
	dir   string
	http  *http.Client

	key     note.Verifier
	keyFile string
	// keys is the GET /v1/keys answer, saved as keys.json.
	keys   []byte
	prefix string
	// tool is the tool the runtime guards: it counts its calls.
	tool atomic.Int64
	// failed counts the steps that did not go as they must.
	failed int
	// receipts are the tlog-proof files saved, to verify at the end.
	receipts []string
}

// setKey sets the log key from --log-key (key, read from arg), or from
// GET /v1/log.
func (d *demoRun) setKey(arg string, key note.Verifier) error {
	d.keyFile = filepath.Join(d.dir, "log.vkey")
	if key != nil {
		d.key = key
		if _, err := os.Stat(arg); err == nil {
			d.keyFile = arg
			return nil
		}
		return os.WriteFile(d.keyFile, []byte(arg+"\n"), 0o644)
	}
	status, body, err := d.call(http.MethodGet, "/v1/log", nil)
	if err != nil || status != 200 {
		return fmt.Errorf("failed to read GET /v1/log: %d %w", status, err)
	}
	var info struct {
		VerifierKey string `json:"verifier_key"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return fmt.Errorf("failed to read GET /v1/log: %w", err)
	}
	k, err := note.NewVerifier(info.VerifierKey)
	if err != nil {
		return fmt.Errorf("GET /v1/log: the verifier key: %w", err)
	}
	d.key = k
	return os.WriteFile(d.keyFile, []byte(info.VerifierKey+"\n"), 0o644)
}

// call sends one request and returns the status and body.
func (d *demoRun) call(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(d.ctx, method, d.base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// answer is what a submission got: the status, the error code, the
// receipt (of the entry, or of the recorded violation) and the artifact.
type answer struct {
	status   int
	code     string
	message  string
	receipt  json.RawMessage
	index    uint64
	artifact string
}

// post submits a JSON object to path.
func (d *demoRun) post(path string, obj map[string]any) answer {
	body, _ := json.Marshal(obj)
	status, resp, err := d.call(http.MethodPost, path, body)
	if err != nil {
		d.fail("POST %s: %v", path, err)
		return answer{}
	}
	a := answer{status: status}
	var r struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Receipt  json.RawMessage `json:"receipt"`
		Index    uint64          `json:"index"`
		Artifact string          `json:"artifact"`
	}
	if err := json.Unmarshal(resp, &r); err != nil {
		d.fail("POST %s: the answer is not JSON: %.200q", path, resp)
		return a
	}
	switch {
	case r.Error != nil:
		a.code, a.message, a.receipt = r.Error.Code, r.Error.Message, r.Receipt
		if len(r.Receipt) > 0 {
			var rr struct {
				Index uint64 `json:"index"`
			}
			_ = json.Unmarshal(r.Receipt, &rr)
			a.index = rr.Index
		}
	default:
		a.receipt, a.index, a.artifact = resp, r.Index, r.Artifact
	}
	return a
}

func (d *demoRun) say(format string, args ...any) { fmt.Fprintf(d.w, format+"\n", args...) }

// fail records a step that did not go as it must.
func (d *demoRun) fail(format string, args ...any) {
	d.failed++
	fmt.Fprintf(d.w, "   FAILED: %s\n", escapeText(fmt.Sprintf(format, args...)))
}

// want checks a submission's answer: the status, and the error code
// when one is expected.
func (d *demoRun) want(what string, a answer, status int, code string) bool {
	if a.status == status && a.code == code {
		return true
	}
	d.fail("%s: got %d %s %s, want %d %s", what, a.status, a.code, a.message, status, code)
	return false
}

// save writes a receipt as ID.receipt.json and ID.tlog-proof, checks it
// offline, and prints the command that verifies it.
func (d *demoRun) save(id string, receipt json.RawMessage) {
	if len(receipt) == 0 {
		d.fail("no receipt for %s", id)
		return
	}
	v, err := verifier.ReceiptJSON(receipt, d.key)
	if err != nil {
		d.fail("the receipt of %s does not verify: %v", id, err)
		return
	}
	var r struct {
		TLogProof string `json:"tlog_proof"`
	}
	_ = json.Unmarshal(receipt, &r)
	var clean bytes.Buffer
	_ = json.Indent(&clean, receipt, "", "  ")
	proof := filepath.Join(d.dir, "receipts", id+".tlog-proof")
	if err := os.WriteFile(filepath.Join(d.dir, "receipts", id+".receipt.json"), append(clean.Bytes(), '\n'), 0o644); err != nil {
		d.fail("%v", err)
	}
	if err := os.WriteFile(proof, []byte(r.TLogProof), 0o644); err != nil {
		d.fail("%v", err)
	}
	d.receipts = append(d.receipts, proof)
	what := v.Entry.Kind.String()
	if vi := v.Entry.Violation; vi != "" {
		what += ", violation " + vi
	}
	d.say("   receipt: entry %d (%s), verified offline", v.Index, what)
	d.say("   verify:  govlog verify --log-key %s %s", d.keyFile, proof)
}

func (d *demoRun) now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func (d *demoRun) decision(id, outcome, resource string, extra map[string]any) map[string]any {
	obj := map[string]any{"id": id, "outcome": outcome, "decided_at": d.now(), "subject": "agent-7", "action": "deploy",
		"resource": resource, "policy": map[string]any{"id": "prod-deploy", "version": "1"}}
	for k, v := range extra {
		obj[k] = v
	}
	return obj
}

// runtime is the runtime of the story: before it calls the tool it checks
// the artifact offline against the log key and claims the execution; it
// calls the tool only after a 201, and reports the result.
// A rogue runtime (rogue) skips the checks and claims whatever it holds.
func (d *demoRun) runtime(runID, decisionID, art, resource string, wantCode string, rogue bool) {
	if !rogue {
		c, vk, err := artifact.VerifyWithKeys(art, d.keys, d.key, artifact.KeyBoundOptions{
			Options: artifact.Options{Origin: d.key.Name()},
			Expect:  &artifact.Expected{Action: "deploy", Resource: resource, Subject: "agent-7"}})
		if err != nil {
			d.fail("the artifact does not verify: %v", err)
			return
		}
		d.say("   runtime: the artifact verifies offline (decision %s, key %s logged at entry %d, valid until %s)",
			field(c.ID), field(vk.Key.KID), vk.Index, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	claim := map[string]any{"id": runID, "decision_id": decisionID, "status": "started", "at": d.now(), "runtime": "demo-runtime"}
	if art != "" {
		claim["artifact"] = art
	}
	a := d.post("/v1/executions", claim)
	if wantCode != "" {
		if d.want("the claim "+runID, a, http.StatusConflict, wantCode) {
			d.say("   POST /v1/executions %s (started) → 409 %s: recorded, the runtime must not run the tool", runID, a.code)
			d.save(runID, a.receipt)
		}
		d.say("   the tool is not called (calls so far: %d)", d.tool.Load())
		return
	}
	if !d.want("the claim "+runID, a, http.StatusCreated, "") {
		return
	}
	d.say("   POST /v1/executions %s (started, with the artifact) → 201: the claim uses the authorization", runID)
	d.save(runID, a.receipt)
	result := fmt.Sprintf("deployed %s, call %d", resource, d.tool.Add(1))
	sum := sha256.Sum256([]byte(result))
	d.say("   the tool runs: %q (calls so far: %d)", result, d.tool.Load())
	done := d.post("/v1/executions", map[string]any{"id": runID + "-done", "decision_id": decisionID, "status": "succeeded",
		"at": d.now(), "claim_id": runID, "result_digest": "sha256:" + hex.EncodeToString(sum[:])})
	if d.want("the report "+runID+"-done", done, http.StatusCreated, "") {
		d.say("   POST /v1/executions %s-done (succeeded, claim_id %s, result digest) → 201", runID, runID)
		d.save(runID+"-done", done.receipt)
	}
}

// authorization checks GET /v1/authorizations/{id}: the status, and every
// receipt it carries, verified offline against the one checkpoint.
func (d *demoRun) authorization(id, want string) {
	status, body, err := d.call(http.MethodGet, "/v1/authorizations/"+url.PathEscape(id), nil)
	if err != nil || status != 200 {
		d.fail("GET /v1/authorizations/%s: %d %v", id, status, err)
		return
	}
	var a struct {
		Status   string            `json:"status"`
		Uses     int               `json:"uses"`
		Max      int               `json:"max_executions"`
		Receipts []json.RawMessage `json:"receipts"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		d.fail("GET /v1/authorizations/%s: %v", id, err)
		return
	}
	if a.Status != want {
		d.fail("GET /v1/authorizations/%s: status %q, want %q", id, a.Status, want)
	}
	for _, r := range a.Receipts {
		if _, err := verifier.ReceiptJSON(r, d.key); err != nil {
			d.fail("GET /v1/authorizations/%s: a receipt does not verify: %v", id, err)
		}
	}
	d.say("   GET /v1/authorizations/%s → %s, %d of %d uses, %d receipts that verify offline", id, a.Status, a.Uses, a.Max, len(a.Receipts))
}

// treeSize returns the size of the log's latest checkpoint.
func (d *demoRun) treeSize() uint64 {
	status, body, err := d.call(http.MethodGet, "/v1/checkpoint", nil)
	if err != nil || status != 200 {
		d.fail("GET /v1/checkpoint: %d %v", status, err)
		return 0
	}
	cp, err := verifier.Checkpoint(body, d.key)
	if err != nil {
		d.fail("the checkpoint does not verify: %v", err)
		return 0
	}
	return cp.Size
}

func (d *demoRun) play() error {
	var nonce [3]byte
	_, _ = rand.Read(nonce[:])
	d.prefix = fmt.Sprintf("demo-%d-%x", time.Now().Unix(), nonce)
	p := d.prefix
	d.say("govlog demo: governed execution against %s (the log %s)", field(d.base.String()), field(d.key.Name()))
	d.say("evidence is saved in %s/; the log's verifier key is %s", d.dir, d.keyFile)
	d.say("")

	// The keys the artifacts are signed with, each proven in the log.
	status, keys, err := d.call(http.MethodGet, "/v1/keys", nil)
	if err != nil || status != 200 {
		d.fail("GET /v1/keys: %d %v", status, err)
		return d.result()
	}
	d.keys = keys
	keysFile := filepath.Join(d.dir, "keys.json")
	if err := os.WriteFile(keysFile, keys, 0o644); err != nil {
		return err
	}

	d.say("1. The control plane allows agent-7 to deploy svc/%s-api, once (max_executions 1).", p)
	allowID, resource := p+"-allow", "svc/"+p+"-api"
	a := d.post("/v1/decisions", d.decision(allowID, "allow", resource, nil))
	var allowArtifact string
	if d.want("the allow", a, http.StatusCreated, "") {
		d.say("   POST /v1/decisions %s → 201, with an authorization artifact bound to entry %d", allowID, a.index)
		d.save(allowID, a.receipt)
		allowArtifact = a.artifact
		jwt := filepath.Join(d.dir, allowID+".jwt")
		if err := os.WriteFile(jwt, []byte(allowArtifact+"\n"), 0o600); err != nil {
			return err
		}
		d.say("   verify:  govlog verify-artifact --log-key %s --keys %s --action deploy --resource %s --subject agent-7 --at %s %s",
			d.keyFile, keysFile, resource, time.Now().UTC().Format(time.RFC3339), jwt)
	}
	d.say("")

	d.say("2. The runtime executes it, once: it checks the artifact, claims the execution, runs the tool, reports the result.")
	if allowArtifact != "" {
		d.runtime(p+"-run", allowID, allowArtifact, resource, "", false)
	}
	d.say("")

	d.say("3. The control plane denies agent-7 to deploy svc/%s-db. A deny carries no artifact: the runtime never calls the tool.", p)
	denyID := p + "-deny"
	a = d.post("/v1/decisions", d.decision(denyID, "deny", "svc/"+p+"-db", map[string]any{"reasons": []string{"change freeze"}}))
	if d.want("the deny", a, http.StatusCreated, "") {
		if a.artifact != "" {
			d.fail("the deny came with an artifact")
		}
		d.say("   POST /v1/decisions %s → 201, no artifact", denyID)
		d.save(denyID, a.receipt)
	}
	before := d.tool.Load()
	d.say("   a rogue runtime skips the checks and claims the deny anyway, with the artifact of the allow:")
	d.runtime(p+"-rogue", denyID, allowArtifact, "", log.ViolationNotAuthorized, true)
	if d.tool.Load() != before {
		d.fail("the tool was called on a deny")
	}
	d.say("")

	d.say("4. The runtime tries to execute the allow a second time (its one use is spent).")
	if allowArtifact != "" {
		d.runtime(p+"-reuse", allowID, allowArtifact, resource, log.ViolationUsesExhausted, false)
	}
	d.say("")

	d.say("5. A second allow, then trust degrades: the control plane revokes it before it is used.")
	revokeID, resource2 := p+"-allow2", "svc/"+p+"-cache"
	a = d.post("/v1/decisions", d.decision(revokeID, "allow", resource2, map[string]any{"max_executions": 3}))
	var art2 string
	if d.want("the second allow", a, http.StatusCreated, "") {
		d.say("   POST /v1/decisions %s → 201 (max_executions 3)", revokeID)
		d.save(revokeID, a.receipt)
		art2 = a.artifact
	}
	r := d.post("/v1/revocations", map[string]any{"id": p + "-revoke", "decision_id": revokeID, "revoked_at": d.now(), "reason": "credentials leaked"})
	if d.want("the revocation", r, http.StatusCreated, "") {
		d.say("   POST /v1/revocations %s-revoke → 201", p)
		d.save(p+"-revoke", r.receipt)
	}
	if art2 != "" {
		d.say("   the runtime, holding a still unexpired artifact, claims it:")
		d.runtime(p+"-late", revokeID, art2, resource2, log.ViolationRevoked, false)
	}
	d.authorization(revokeID, "revoked")
	d.say("   verify:  curl -s %s", d.base.JoinPath("/v1/authorizations", revokeID))
	d.say("")

	d.say("6. A decision that names the deny as its parent is refused: lineage stops at a deny, nothing is logged.")
	size := d.treeSize()
	c := d.post("/v1/decisions", d.decision(p+"-child", "allow", "svc/"+p+"-db", map[string]any{"parent_id": denyID}))
	if d.want("the child of the deny", c, http.StatusConflict, "parent_denied") {
		d.say("   POST /v1/decisions %s-child (parent_id %s) → 409 parent_denied", p, denyID)
	}
	if after := d.treeSize(); after != size {
		d.fail("the log grew from %d to %d entries on a refused decision", size, after)
	} else {
		d.say("   the log still has %d entries", size)
	}
	d.say("")

	d.say("7. The auditor's proof: replay the whole log with nothing but its verifier key.")
	d.audit()
	d.say("   verify:  govlog audit --url %s --log-key %s", d.base.String(), d.keyFile)
	d.say("   verify:  govlog verify --log-key %s %s", d.keyFile, filepath.Join(d.dir, "receipts"))
	d.say("")
	d.say("The tool was called %d time(s): only for the allow, once.", d.tool.Load())
	if d.tool.Load() != 1 {
		d.fail("the tool was called %d times, want 1", d.tool.Load())
	}
	return d.result()
}

// audit runs the audit in-process and prints what it proves of the story.
func (d *demoRun) audit() {
	opts := []client.Option{client.WithLogKey(d.key)}
	if d.token != "" {
		opts = append(opts, client.WithBearerToken(d.token))
	}
	c, err := client.New(d.base.String(), opts...)
	if err != nil {
		d.fail("%v", err)
		return
	}
	rep, _, err := c.Audit(d.ctx, client.AuditOptions{})
	if err != nil {
		d.fail("the audit: %v", err)
		return
	}
	if !rep.OK {
		d.fail("the log failed the audit: %s, the first: %s", counted(rep.FailureCount, "failure", "failures"), rep.Failures[0].Message)
		return
	}
	d.say("   the log hashes to its signed checkpoint: %s", totalsText(rep.Totals))
	mine := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Code == "violation" && strings.HasPrefix(f.ID, d.prefix+"-") {
			d.say("   recorded violation %s: execution %s (entry %d)", f.Violation, field(f.ID), *f.Index)
			mine[f.Violation] = true
		}
	}
	for _, v := range []string{log.ViolationNotAuthorized, log.ViolationUsesExhausted, log.ViolationRevoked} {
		if !mine[v] {
			d.fail("the audit does not report the %s violation", v)
		}
	}
	for _, u := range rep.Authorizations {
		if strings.HasPrefix(u.DecisionID, d.prefix+"-") {
			d.say("   authorization %s: %s", field(u.DecisionID), useText(u))
		}
	}
	rv := verifier.NewReceiptVerifier(d.key)
	for _, path := range d.receipts {
		data, err := os.ReadFile(path)
		if err == nil {
			_, err = rv.Receipt(data)
		}
		if err != nil {
			d.fail("%s: %v", path, err)
		}
	}
	d.say("   every receipt saved (%d) verifies offline", len(d.receipts))
}

func (d *demoRun) result() error {
	if d.failed > 0 {
		d.say("result: FAILED, %d steps did not go as they must", d.failed)
		return fmt.Errorf("%w: %d steps", errDemoFailed, d.failed)
	}
	d.say("result: OK, every step went as it must, and every one is evidence")
	return nil
}
