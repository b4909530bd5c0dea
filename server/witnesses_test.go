package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/internal/distributor"
	"github.com/govlog/govlog/internal/testenv"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/witness"
)

// testWitness is a real witness behind an HTTP server that can be turned
// off (503).
type testWitness struct {
	vkey string
	url  string
	down atomic.Bool
}

func newTestWitness(t *testing.T, name, logKey string) *testWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(context.Background(), witness.Config{Key: skey, Logs: []string{logKey}, Database: filepath.Join(t.TempDir(), "w.db")})
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{vkey: vkey}
	h := w.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if tw.down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(rw, r)
	}))
	tw.url = srv.URL
	t.Cleanup(func() { srv.Close(); w.Close() })
	return tw
}

// witnessEnv is an env whose server pushes its checkpoints to two witnesses
// with an all-of-two policy.
type witnessEnv struct {
	*env
	ws     []*testWitness
	policy *verifier.Policy
}

func newWitnessEnv(t *testing.T, sync bool) *witnessEnv {
	t.Helper()
	ctx := context.Background()
	tl := testenv.NewLog(t, testOrigin)
	dir, k := tl.Dir, tl.Keys
	ws := []*testWitness{
		newTestWitness(t, "witness.test/w1", k.VerifierKey),
		newTestWitness(t, "witness.test/w2", k.VerifierKey),
	}
	text := fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup both all w1 w2\nquorum both\n", ws[0].vkey, ws[0].url, ws[1].vkey, ws[1].url)
	policy, err := verifier.ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	fb := &faultBackend{Backend: tl.Backend, entered: make(chan struct{}, 16)}
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	lc := tl.Config()
	lc.Backend, lc.OnBatch = fb, m.ObserveBatch
	l, err := log.New(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(ctx, distributor.Config{
		Source:        fb,
		LogKey:        k.Verifier,
		Policy:        policy,
		Database:      filepath.Join(dir, "cosigned.db"),
		RetryInterval: 50 * time.Millisecond,
		PollInterval:  50 * time.Millisecond,
		MaxBackoff:    100 * time.Millisecond,
		Registerer:    reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{
		Log:         l,
		ArtifactKey: k.Artifact,
		Audience:    testAudience,
		VerifierKey: k.VerifierKey,
		Registry:    reg,
		Metrics:     m,
		// Long enough for a witness round on a loaded machine under the
		// race detector (500 ms was not); the quorum-down case waits it out.
		Witnessing: &Witnessing{Distributor: d, Sync: sync, Timeout: 3 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := testenv.Serve(t, srv)
	e := &env{t: t, srv: srv, url: hs.URL, backend: fb, keys: k, verifier: k.Verifier, reg: reg}
	return &witnessEnv{env: e, ws: ws, policy: policy}
}

// cosigned checks that a JSON receipt verifies and that its checkpoint
// satisfies the policy.
func (e *witnessEnv) cosigned(t *testing.T, body []byte) *verifier.Verified {
	t.Helper()
	v, err := verifier.ReceiptJSON(body, e.verifier)
	if err != nil {
		t.Fatalf("receipt: %v\n%s", err, body)
	}
	if err := e.policy.Check(v.Checkpoint.Note); err != nil {
		t.Fatalf("receipt checkpoint: %v\n%s", err, v.Checkpoint.Note)
	}
	return v
}

func (e *witnessEnv) setDown(down bool) {
	for _, w := range e.ws {
		w.down.Store(down)
	}
}

func TestWitnessSync(t *testing.T) {
	e := newWitnessEnv(t, true)

	// A decision, its resubmission, an execution report.
	body := decision("sync-1", "allow", nil)
	r := e.post("/v1/decisions", body)
	if r.status != 201 {
		t.Fatalf("POST: %s", r)
	}
	e.cosigned(t, r.body)
	rec := parseReceipt(t, r.body)
	e.verifyArtifact(rec, body) // the artifact's tree_size is the cosigned checkpoint's
	again := e.post("/v1/decisions", body)
	if again.status != 200 || !bytes.Equal(again.body, r.body) {
		t.Fatalf("resubmission: %d, same body %v", again.status, bytes.Equal(again.body, r.body))
	}
	x := e.post("/v1/executions", claim("x-1", "sync-1", rec.Artifact))
	if x.status != 201 {
		t.Fatalf("POST execution: %s", x)
	}
	e.cosigned(t, x.body)

	// Concurrent submissions and a batch: every receipt is cosigned.
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			r := e.post("/v1/decisions", decision(fmt.Sprintf("par-%d", i), "deny", nil))
			if r.status != 201 {
				t.Errorf("POST: %s", r)
				return
			}
			if v, err := verifier.ReceiptJSON(r.body, e.verifier); err != nil || e.policy.Check(v.Checkpoint.Note) != nil {
				t.Errorf("receipt par-%d is not cosigned: %v", i, err)
			}
		})
	}
	var items []json.RawMessage
	for i := range 20 {
		items = append(items, decision(fmt.Sprintf("batch-%d", i), "allow", nil))
	}
	batch, _ := json.Marshal(map[string]any{"decisions": items})
	br := e.post("/v1/decisions/batch", batch)
	wg.Wait()
	var results struct {
		Results []json.RawMessage `json:"results"`
	}
	if br.status != 200 || json.Unmarshal(br.body, &results) != nil || len(results.Results) != 20 {
		t.Fatalf("batch: %s", br)
	}
	for _, res := range results.Results {
		e.cosigned(t, res)
	}

	// GET: receipts and the checkpoint carry the cosignatures; /v1/log
	// names the policy.
	g := e.get("/v1/decisions/sync-1")
	if g.status != 200 {
		t.Fatalf("GET: %s", g)
	}
	e.cosigned(t, g.body)
	var info struct {
		WitnessPolicy string `json:"witness_policy"`
	}
	if json.Unmarshal(e.get("/v1/log").body, &info); info.WitnessPolicy != string(e.policy.Text()) {
		t.Fatalf("witness_policy %q", info.WitnessPolicy)
	}
	waitFor(t, func() bool { return e.policy.Satisfied(e.get("/v1/checkpoint").body) }, "GET /v1/checkpoint to be cosigned")

	// The quorum is down: 503, no receipt, no artifact; GET is 503 too.
	e.setDown(true)
	down := decision("while-down", "allow", nil)
	r = e.post("/v1/decisions", down)
	wantError(t, r, 503, "log_unavailable")
	// The message names the witnesses that did not cosign, and why.
	for _, w := range []string{"witness.test/w1 (", "witness.test/w2 ("} {
		if !bytes.Contains(r.body, []byte("in time: no cosignature from ")) || !bytes.Contains(r.body, []byte(w)) {
			t.Errorf("the 503 does not name %s: %s", w, r.body)
		}
	}
	wantError(t, e.get("/v1/decisions/while-down"), 503, "log_unavailable")
	wantError(t, e.post("/v1/decisions", down), 503, "log_unavailable")

	// Back: the resubmission is acknowledged (200: the entry was logged
	// by the first attempt), on a cosigned checkpoint, and stays the same.
	e.setDown(false)
	var first response
	waitFor(t, func() bool { first = e.post("/v1/decisions", down); return first.status == 200 }, "the resubmission to be acknowledged")
	e.cosigned(t, first.body)
	e.verifyArtifact(parseReceipt(t, first.body), down)
	if again := e.post("/v1/decisions", down); again.status != 200 || !bytes.Equal(again.body, first.body) {
		t.Fatalf("second resubmission differs: %s", again)
	}
	e.cosigned(t, e.get("/v1/decisions/while-down").body)
}

func TestWitnessAsync(t *testing.T) {
	e := newWitnessEnv(t, false)
	e.setDown(true)
	body := decision("async-1", "allow", nil)
	r := e.post("/v1/decisions", body)
	if r.status != 201 {
		t.Fatalf("POST with the witnesses down: %s", r)
	}
	v, err := verifier.ReceiptJSON(r.body, e.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if e.policy.Satisfied(v.Checkpoint.Note) {
		t.Fatal("cosigned with the witnesses down")
	}
	e.verifyArtifact(parseReceipt(t, r.body), body)
	if g := e.get("/v1/decisions/async-1"); g.status != 200 {
		t.Fatalf("GET with the witnesses down: %s", g)
	}

	// Witnesses back: GET returns a receipt on a cosigned checkpoint; the
	// POST resubmission still returns the original receipt.
	e.setDown(false)
	waitFor(t, func() bool {
		g := e.get("/v1/decisions/async-1")
		v, err := verifier.ReceiptJSON(g.body, e.verifier)
		return err == nil && e.policy.Satisfied(v.Checkpoint.Note)
	}, "GET to return a cosigned receipt")
	if again := e.post("/v1/decisions", body); again.status != 200 || !bytes.Equal(again.body, r.body) {
		t.Fatalf("resubmission: %s", again)
	}
	waitFor(t, func() bool { return e.policy.Satisfied(e.get("/v1/checkpoint").body) }, "GET /v1/checkpoint to be cosigned")
	if !strings.Contains(e.get("/metrics").string(), `govlog_witness_rounds_total{result="satisfied"}`) {
		t.Fatal("no witness metrics")
	}
}

func (r response) string() string { return string(r.body) }

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
