package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/internal/testenv"
	"github.com/govlog/govlog/log"
)

const (
	testOrigin   = "example.com/govlog-test"
	testAudience = "runtime.example.com"
)

// faultBackend is the real SQLite backend with fault injection: failing or
// held appends, a failing readiness probe, a panicking lookup.
type faultBackend struct {
	log.Backend
	failAppend  atomic.Bool
	failReady   atomic.Bool
	panicLookup atomic.Bool

	mu      sync.Mutex
	gate    chan struct{} // when non-nil, Append waits for it to close
	entered chan struct{} // gets a value each time an Append waits at the gate
}

func (f *faultBackend) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
		<-gate
	}
	if f.failAppend.Load() {
		return nil, log.Checkpoint{}, fmt.Errorf("%w: injected storage failure", log.ErrUnavailable)
	}
	return f.Backend.Append(ctx, batch, sign)
}

func (f *faultBackend) Ready(ctx context.Context) error {
	if f.failReady.Load() {
		return fmt.Errorf("%w: injected storage failure", log.ErrUnavailable)
	}
	return f.Backend.Ready(ctx)
}

func (f *faultBackend) Lookup(ctx context.Context, kind log.Kind, id string) (uint64, []byte, error) {
	if f.panicLookup.Load() {
		panic("injected panic")
	}
	return f.Backend.Lookup(ctx, kind, id)
}

// hold makes appends wait until release.
func (f *faultBackend) hold() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
}

func (f *faultBackend) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
}

// waitEntered waits until an append is held at the gate.
func (f *faultBackend) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-f.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no append reached the gate")
	}
}

// env is a Server on a real SQLite log behind a real HTTP server.
type env struct {
	t        testing.TB
	srv      *Server
	url      string
	backend  *faultBackend
	keys     *keys.Keys
	verifier note.Verifier
	reg      *prometheus.Registry
	// ttl is the log's artifact lifetime; 0 for the default, 300s.
	ttl time.Duration
}

type envOptions struct {
	maxPending    int
	submitTimeout time.Duration
	// ttl is the log's artifact lifetime; default 300s.
	ttl time.Duration
	// configure, when set, edits the server's configuration last.
	configure func(*Config)
}

func newEnv(t testing.TB, opts envOptions) *env {
	t.Helper()
	ctx := context.Background()
	tl := testenv.NewLog(t, testOrigin)
	k := tl.Keys
	fb := &faultBackend{Backend: tl.Backend, entered: make(chan struct{}, 16)}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lc := tl.Config()
	lc.Backend, lc.MaxPending, lc.OnBatch, lc.ArtifactTTL = fb, opts.maxPending, m.ObserveBatch, opts.ttl
	l, err := log.New(ctx, lc)
	if err != nil {
		tl.Backend.Close()
		t.Fatal(err)
	}
	cfg := Config{
		Log:           l,
		ArtifactKey:   k.Artifact,
		Audience:      testAudience,
		VerifierKey:   k.VerifierKey,
		Registry:      reg,
		Metrics:       m,
		SubmitTimeout: opts.submitTimeout,
	}
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		l.Close(ctx)
		t.Fatal(err)
	}
	hs := testenv.Serve(t, srv)
	// Cleanups run last first: held appends are released before the
	// server closes.
	t.Cleanup(fb.release)
	return &env{t: t, srv: srv, url: hs.URL, backend: fb, keys: k, verifier: k.Verifier, reg: reg, ttl: opts.ttl}
}

// with returns e reporting to t (for subtests).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// response is an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func (e *env) do(method, path, contentType string, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (e *env) get(path string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, "", nil)
}

func (e *env) post(path string, body []byte) response {
	e.t.Helper()
	return e.do(http.MethodPost, path, "application/json", body)
}

// wantError checks an error answer: status, code, a message, and
// Retry-After exactly on 429 and 503.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	var e struct {
		Error struct {
			Code    string        `json:"code"`
			Message string        `json:"message"`
			Details []fieldDetail `json:"details"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q: %s", e.Error, code, r.body)
	}
	// Details list the broken fields of a submission, the first being the
	// message.
	if d := e.Error.Details; len(d) > 0 && (!strings.HasSuffix(e.Error.Message, ": "+d[0].Field+": "+d[0].Reason) || d[0].Field == "") {
		t.Errorf("details %+v do not start with the message %q", d, e.Error.Message)
	}
	retry := r.header.Get("Retry-After")
	if (status == 429 || status == 503) != (retry != "") {
		t.Errorf("status %d with Retry-After %q", status, retry)
	}
	if bytes.Contains(r.body, []byte("artifact")) {
		t.Errorf("error body mentions an artifact: %s", r.body)
	}
}

// decision returns a decision body; fields in extra are added (or, when
// nil, removed).
func decision(id, outcome string, extra map[string]any) []byte {
	d := map[string]any{
		"id":         id,
		"outcome":    outcome,
		"decided_at": time.Now().UTC().Format(time.RFC3339Nano),
		"subject":    "agent-7",
		"action":     "deploy",
		"resource":   "svc/" + id,
		"policy":     map[string]any{"id": "prod-deploy", "version": "7"},
		"context":    map[string]any{"ticket": "OPS-1", "risk": 0.25},
	}
	for k, v := range extra {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func execution(id, decisionID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "decision_id": decisionID, "status": "succeeded",
		"at": time.Now().UTC().Format(time.RFC3339Nano), "runtime": "runner-1",
	})
	return b
}

// claim is the body of a started report that claims an execution of
// decisionID with its artifact.
func claim(id, decisionID, artifact string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "decision_id": decisionID, "status": "started", "artifact": artifact,
		"at": time.Now().UTC().Format(time.RFC3339Nano), "runtime": "runner-1",
	})
	return b
}

// revocation is the body of a revocation; fields override or add members.
func revocation(id, decisionID string, fields map[string]any) []byte {
	m := map[string]any{"id": id, "decision_id": decisionID, "revoked_at": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// receipt is the JSON receipt.
type receipt struct {
	ID             string   `json:"id"`
	Index          uint64   `json:"index"`
	LeafHash       []byte   `json:"leaf_hash"`
	Entry          []byte   `json:"entry"`
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	TLogProof      string   `json:"tlog_proof"`
	Artifact       string   `json:"artifact"`
}

func parseReceipt(t *testing.T, b []byte) *receipt {
	t.Helper()
	var r receipt
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("receipt %s: %v", b, err)
	}
	return &r
}

// verifyReceipt checks a receipt for real: leaf hash, checkpoint signature,
// inclusion proof; it returns the checkpoint.
func (e *env) verifyReceipt(r *receipt, id string) log.Checkpoint {
	e.t.Helper()
	if r.ID != id {
		e.t.Fatalf("receipt id %q, want %q", r.ID, id)
	}
	lh := log.LeafHash(r.Entry)
	if !bytes.Equal(lh[:], r.LeafHash) {
		e.t.Fatalf("leaf_hash is not the hash of entry")
	}
	cp, err := log.OpenCheckpoint([]byte(r.Checkpoint), e.verifier)
	if err != nil {
		e.t.Fatalf("checkpoint: %v", err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, lh[:], r.InclusionProof, cp.Hash[:]); err != nil {
		e.t.Fatalf("inclusion proof: %v", err)
	}
	if _, err := log.ParseEntry(r.Entry); err != nil {
		e.t.Fatalf("entry: %v", err)
	}
	if !strings.Contains(r.TLogProof, "c2sp.org/tlog-proof@v1") || !strings.Contains(r.TLogProof, r.Checkpoint) {
		e.t.Fatalf("tlog_proof %q", r.TLogProof)
	}
	return cp
}

// jwks fetches and parses the published key set.
func (e *env) jwks() jwk.Set {
	e.t.Helper()
	r := e.get(JWKSPath)
	if r.status != 200 {
		e.t.Fatalf("GET jwks: %s", r)
	}
	set, err := jwk.Parse(r.body)
	if err != nil {
		e.t.Fatal(err)
	}
	return set
}

// verifyArtifact verifies an artifact against the JWKS and checks that its
// claims match the receipt and the decision.
func (e *env) verifyArtifact(r *receipt, body []byte) {
	e.t.Helper()
	payload, err := jws.Verify([]byte(r.Artifact), jws.WithKeySet(e.jwks(), jws.WithRequireKid(true)))
	if err != nil {
		e.t.Fatalf("artifact does not verify against the JWKS: %v", err)
	}
	msg, err := jws.Parse([]byte(r.Artifact))
	if err != nil {
		e.t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if h.Type() != log.ArtifactType || h.Algorithm().String() != "EdDSA" || h.KeyID() != e.keys.Artifact.KeyID() {
		e.t.Errorf("artifact header typ %q alg %q kid %q", h.Type(), h.Algorithm(), h.KeyID())
	}
	var c log.ArtifactClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		e.t.Fatal(err)
	}
	entry, err := log.ParseEntry(r.Entry)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := log.ParseDecision(body, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := log.OpenCheckpoint([]byte(r.Checkpoint), e.verifier)
	if err != nil {
		e.t.Fatal(err)
	}
	want := log.ArtifactClaims{
		Issuer: testOrigin, Subject: d.Subject, ID: d.ID,
		IssuedAt: entry.LoggedAt.Unix(), NotBefore: entry.LoggedAt.Unix(), Expiry: entry.AuthorizedUntil.Unix(),
		Audience: cmp.Or(d.Executor, testAudience), Action: d.Action, Resource: d.Resource,
		Govlog: log.ArtifactBinding{
			Index: r.Index, LeafHash: base64.StdEncoding.EncodeToString(r.LeafHash),
			TreeSize: cp.Size, RootHash: base64.StdEncoding.EncodeToString(cp.Hash[:]),
		},
	}
	// govlog.key_index is the index of the signing key's entry, logged
	// before the decision (TestKeys checks that entry).
	if k := e.srv.signer.keyIndex; c.Govlog.KeyIndex == nil || *c.Govlog.KeyIndex != k || k >= r.Index {
		e.t.Errorf("artifact govlog.key_index %v, want %d, before the decision's entry %d", c.Govlog.KeyIndex, k, r.Index)
	}
	c.Govlog.KeyIndex = nil
	if c != want {
		e.t.Errorf("artifact claims\n%+v\nwant\n%+v", c, want)
	}
	ttl := e.ttl
	if ttl == 0 { // an env of another constructor: the default
		ttl = 300 * time.Second
	}
	if want := int64(ttl / time.Second); c.Expiry-c.IssuedAt != want {
		e.t.Errorf("artifact lifetime %ds, want %d", c.Expiry-c.IssuedAt, want)
	}
}
