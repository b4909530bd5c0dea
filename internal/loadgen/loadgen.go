// Package loadgen is the load generator behind `govlog bench`: it submits
// realistic decisions to a govlog server from many concurrent clients,
// verifies every receipt it gets (a fast but wrong log scores zero), and
// reports throughput and latency percentiles.
package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// Config configures a run.
type Config struct {
	// URL is the server's base URL. Required.
	URL string
	// N is the number of decisions to submit. Required unless Duration is
	// set; with both, the run ends at whichever limit comes first.
	N int
	// Duration, when set, ends the run after this long (open loop: the
	// schedule covers Rate × Duration decisions).
	Duration time.Duration
	// Rate, when > 0, runs open loop: decisions are due at a fixed rate of
	// Rate per second (request k is due at start + k × Batch / Rate) and
	// each latency is measured from the request's due time, not from when
	// it was sent, so a slow server cannot hide latency by slowing the
	// generator down (coordinated omission). At most Concurrency requests
	// are in flight; a request that finds them all busy is sent late and
	// counted in Report.Late. Default: closed loop, each client sending its
	// next request as soon as the previous one is answered.
	Rate float64
	// Concurrency is the number of concurrent clients (open loop: the
	// maximum number of requests in flight). Default 64.
	Concurrency int
	// Batch, when > 1, submits through the batch endpoint, Batch decisions
	// per request. Default: single submissions.
	Batch int
	// LogKey verifies checkpoints. Default: the key the server publishes in
	// GET /v1/log (fine for load tests; an auditor gets the key out of band).
	LogKey note.Verifier
	// Claims, when set, makes every operation a governed execution: an
	// allow decision, then a claim of it (a started execution report
	// carrying the decision's artifact), each submitted alone and its
	// receipt verified. Acknowledged then counts accepted claims, and
	// ServerCPUPerDecision is the CPU of one allow and its claim.
	// Batch must be 1 and Rate 0.
	Claims bool
	// Token, when set, is sent as the bearer token of every request.
	Token string
	// Prefix makes decision ids unique across runs. Default: random.
	Prefix string
	// Client sends the requests. Default: a client with keep-alive
	// connections for every worker.
	Client *http.Client
	// Done, when set, counts the decisions (or proof lookups) answered so
	// far, acknowledged or not, for a progress display. Default: none.
	Done *atomic.Int64
}

// Report is the outcome of a run. Latencies are per request.
type Report struct {
	// Mode is "closed" or "open" (loop).
	Mode string `json:"mode"`
	// TargetRate is the open-loop arrival rate in decisions/s.
	TargetRate float64 `json:"target_rate,omitempty"`
	// Late counts open-loop requests that no client could take until more
	// than LateAfter after their due time because every client was busy;
	// their latency still counts from the due time.
	Late           int            `json:"late,omitempty"`
	Decisions      int            `json:"decisions"`
	Acknowledged   int            `json:"acknowledged"`
	Requests       int            `json:"requests"`
	Errors         map[string]int `json:"errors"`
	VerifyFailures int            `json:"verify_failures"`
	Seconds        float64        `json:"seconds"`
	PerSecond      float64        `json:"decisions_per_second"`
	LatencyMS      Percentiles    `json:"latency_ms"`
	FirstVerifyErr string         `json:"first_verify_error,omitempty"`
	// ServerCPUSeconds is the CPU time (user and system) the server
	// process used during the run: its process_cpu_seconds_total (GET
	// /metrics) after the run less before. ServerCPUPerDecision divides it
	// by Acknowledged, in µs (RunProofs: per verified proof). Both are 0,
	// and ServerCPUError says why, when the server does not export it.
	// Unlike throughput and latency, this figure hardly moves with what
	// else the machine runs: it is the one to compare between versions.
	ServerCPUSeconds     float64 `json:"server_cpu_seconds"`
	ServerCPUPerDecision float64 `json:"server_cpu_us_per_decision"`
	ServerCPUError       string  `json:"server_cpu_error,omitempty"`
	// ClientCPUSeconds is the CPU time (user and system, every thread)
	// the load generator's own process used over the same span
	// (getrusage before and after), and ClientCPUPerDecision divides it
	// by Acknowledged, in µs. Generator and server share the machine's
	// cores, so the throughput a run can show is bounded by their sum.
	// It counts whatever else the process did meanwhile (a CPU profile,
	// a progress display).
	ClientCPUSeconds     float64 `json:"client_cpu_seconds"`
	ClientCPUPerDecision float64 `json:"client_cpu_us_per_decision"`
	// Latencies holds every request latency, sorted, for plotting.
	Latencies []time.Duration `json:"-"`
}

// Percentiles of request latency, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Run submits cfg.N decisions (or runs for cfg.Duration), closed or open
// loop, and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r, err := prepare(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Rate > 0 {
		return r.runOpen(ctx)
	}
	r.rep.Mode = "closed"
	total := cfg.N
	requests := (total + cfg.Batch - 1) / cfg.Batch
	if total == 0 {
		requests = math.MaxInt
	}
	var deadline time.Time
	var next atomic.Int64
	var wg sync.WaitGroup
	r.startCPU(ctx)
	start := time.Now()
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := newGenerator(cfg.Prefix, w)
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				n := cfg.Batch
				if total > 0 {
					n = min(n, total-i*cfg.Batch)
				}
				r.request(ctx, gen, n, time.Time{})
			}
		}()
	}
	wg.Wait()
	return r.finish(time.Since(start)), ctx.Err()
}

// finish completes the report of a run that took elapsed.
func (r *runner) finish(elapsed time.Duration) *Report {
	r.endCPU()
	r.rep.Seconds = elapsed.Seconds()
	r.rep.PerSecond = float64(r.rep.Acknowledged) / elapsed.Seconds()
	slices.Sort(r.latencies)
	r.rep.LatencyMS = percentiles(r.latencies)
	r.rep.Latencies = r.latencies
	return &r.rep
}

// prepare fills in cfg's defaults and makes the runner.
func prepare(ctx context.Context, cfg *Config) (*runner, error) {
	if cfg.URL == "" || cfg.N < 0 || cfg.Duration < 0 || cfg.Rate < 0 || (cfg.N == 0 && cfg.Duration == 0) {
		return nil, errors.New("loadgen: URL and N or Duration are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("bench-%x", rand.Uint64()&0xffffffffff)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency},
		}
	}
	if cfg.LogKey == nil {
		v, err := fetchKey(ctx, cfg.Client, cfg.URL)
		if err != nil {
			return nil, err
		}
		cfg.LogKey = v
	}
	return &runner{cfg: *cfg, cps: map[string]log.Checkpoint{}, rep: Report{Errors: map[string]int{}}}, nil
}

type runner struct {
	cfg       Config
	mu        sync.Mutex
	rep       Report
	latencies []time.Duration
	cpMu      sync.RWMutex
	cps       map[string]log.Checkpoint // verified checkpoint notes
	cpu0      float64                   // the server's CPU seconds at the start
	client0   time.Duration             // this process's CPU time at the start
	cpuErr    error                     // why the server's CPU time is unknown
}

// request submits n decisions (n > 1: in one batch request) and verifies
// the receipts. Its latency counts from due, or from the send if due is
// zero.
func (r *runner) request(ctx context.Context, gen *generator, n int, due time.Time) {
	if r.cfg.Claims {
		r.claim(ctx, gen)
		return
	}
	path, body := "/v1/decisions", gen.decision()
	var bodies [][]byte
	if r.cfg.Batch > 1 {
		bodies = make([][]byte, n)
		bodies[0] = body
		for i := 1; i < n; i++ {
			bodies[i] = gen.decision()
		}
		path, body = "/v1/decisions/batch", []byte(`{"decisions":[`+string(bytes.Join(bodies, []byte(",")))+`]}`)
	}
	start := due
	if start.IsZero() {
		start = time.Now()
	}
	status, resp, err := post(ctx, r.cfg.Client, r.cfg.URL+path, r.cfg.Token, body)
	took := time.Since(start)
	r.mu.Lock()
	r.rep.Requests++
	r.rep.Decisions += n
	r.latencies = append(r.latencies, took)
	r.mu.Unlock()
	if err != nil {
		r.fail("transport", n)
		return
	}
	if status != http.StatusCreated && status != http.StatusOK {
		r.fail(errorCode(status, resp), n)
		return
	}
	if r.cfg.Batch <= 1 {
		var rc receipt
		r.check(&rc, json.Unmarshal(resp, &rc), gen)
		return
	}
	// One pass over the whole answer: decoding item by item would scan
	// every byte twice.
	var out struct {
		Results []struct {
			receipt
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || len(out.Results) != n {
		r.fail("bad_batch_response", n)
		return
	}
	for i := range out.Results {
		if e := out.Results[i].Error; e != nil {
			r.fail(e.Code, 1)
			continue
		}
		r.check(&out.Results[i].receipt, nil, gen)
	}
}

// claim submits an allow, then a claim of it with its artifact, and
// verifies both receipts; the latency is the pair's.
func (r *runner) claim(ctx context.Context, gen *generator) {
	start := time.Now()
	status, resp, err := post(ctx, r.cfg.Client, r.cfg.URL+"/v1/decisions", r.cfg.Token, gen.allow())
	if err != nil {
		r.count(time.Since(start))
		r.fail("transport", 1)
		return
	}
	if status != http.StatusCreated {
		r.count(time.Since(start))
		r.fail(errorCode(status, resp), 1)
		return
	}
	var d struct {
		receipt
		Artifact string `json:"artifact"`
	}
	if err = json.Unmarshal(resp, &d); err == nil {
		err = r.verify(&d.receipt)
	}
	if err != nil || d.Artifact == "" {
		r.count(time.Since(start))
		r.check(&d.receipt, cmp.Or(err, errors.New("an allow without artifact")), gen)
		return
	}
	body, _ := json.Marshal(map[string]string{"id": d.ID + "-run", "decision_id": d.ID, "status": "started",
		"at": time.Now().UTC().Format(time.RFC3339Nano), "artifact": d.Artifact})
	status, resp, err = post(ctx, r.cfg.Client, r.cfg.URL+"/v1/executions", r.cfg.Token, body)
	r.count(time.Since(start))
	if err != nil {
		r.fail("transport", 1)
		return
	}
	if status != http.StatusCreated {
		r.fail(errorCode(status, resp), 1)
		return
	}
	var rc receipt
	r.check(&rc, json.Unmarshal(resp, &rc), gen)
}

// count records one operation of a claims run.
func (r *runner) count(took time.Duration) {
	r.mu.Lock()
	r.rep.Requests += 2
	r.rep.Decisions++
	r.latencies = append(r.latencies, took)
	r.mu.Unlock()
}

func (r *runner) fail(code string, n int) {
	r.mu.Lock()
	r.rep.Errors[code] += n
	r.mu.Unlock()
	r.answered(n)
}

// answered counts n answered decisions in Config.Done.
func (r *runner) answered(n int) {
	if r.cfg.Done != nil {
		r.cfg.Done.Add(int64(n))
	}
}

// check verifies one decoded receipt (err is the decoding error): the
// checkpoint signature (once per distinct checkpoint), the leaf hash and the
// inclusion proof of the tlog-proof.
func (r *runner) check(rc *receipt, err error, gen *generator) {
	if err == nil {
		err = r.verify(rc)
	}
	r.answered(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.rep.VerifyFailures++
		if r.rep.FirstVerifyErr == "" {
			r.rep.FirstVerifyErr = err.Error()
		}
		return
	}
	r.rep.Acknowledged++
	gen.acked(rc.ID)
}

// receipt holds the fields of a receipt that check reads: the tlog-proof
// carries the entry, the proof and the checkpoint.
type receipt struct {
	ID        string `json:"id"`
	Index     uint64 `json:"index"`
	LeafHash  []byte `json:"leaf_hash"`
	TLogProof string `json:"tlog_proof"`
}

func (r *runner) verify(rc *receipt) error {
	var tp tproof.TLogProof
	if err := tp.Unmarshal([]byte(rc.TLogProof)); err != nil {
		return fmt.Errorf("failed to parse tlog_proof: %w", err)
	}
	key := string(tp.Checkpoint)
	r.cpMu.RLock()
	cp, ok := r.cps[key]
	r.cpMu.RUnlock()
	if !ok {
		var err error
		if cp, err = log.OpenCheckpoint(tp.Checkpoint, r.cfg.LogKey); err != nil {
			return err
		}
		r.cpMu.Lock()
		r.cps[key] = cp
		r.cpMu.Unlock()
	}
	lh := log.LeafHash(tp.ExtraData)
	if !bytes.Equal(lh[:], rc.LeafHash) || tp.Index != rc.Index {
		return errors.New("tlog_proof does not match the receipt")
	}
	hashes := make([][]byte, len(tp.Hashes))
	for i := range tp.Hashes {
		hashes[i] = tp.Hashes[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, tp.Index, cp.Size, lh[:], hashes, cp.Hash[:]); err != nil {
		return fmt.Errorf("failed to verify inclusion of %s: %w", rc.ID, err)
	}
	return nil
}

func post(ctx context.Context, c *http.Client, url, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func errorCode(status int, body []byte) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	return fmt.Sprintf("http_%d", status)
}

func fetchKey(ctx context.Context, c *http.Client, url string) (note.Verifier, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/log", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch the log key: %w", err)
	}
	defer resp.Body.Close()
	var info struct {
		VerifierKey string `json:"verifier_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("failed to decode /v1/log: %w", err)
	}
	v, err := note.NewVerifier(info.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the log key: %w", err)
	}
	return v, nil
}

// percentiles of the sorted latencies d, by the nearest-rank method: the
// q-quantile is the smallest latency that at least q of all requests did
// not exceed.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	at := func(q float64) float64 {
		return float64(Quantile(d, q).Microseconds()) / 1000
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: at(1)}
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1) of the sorted
// durations d: the smallest d[i] with at least ⌈q·len(d)⌉ values ≤ d[i].
// It returns 0 for an empty d.
func Quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	// The epsilon keeps q·n that is whole in exact arithmetic (0.9 × 10)
	// from rounding up through floating-point error.
	rank := int(math.Ceil(q*float64(len(d)) - 1e-9))
	return d[min(max(rank, 1), len(d))-1]
}

// generator makes realistic decisions: a mix of sizes, 70% allow, 10% with
// a lineage link to an allow this worker had acknowledged (lineage stops
// at a deny: the log refuses a deny as parent).
type generator struct {
	prefix string
	worker int
	n      int
	rng    *rand.Rand
	last   string          // last acknowledged allow id
	allows map[string]bool // allows submitted, not yet acknowledged
}

// A generator belongs to one worker goroutine.

func newGenerator(prefix string, worker int) *generator {
	return &generator{prefix: prefix, worker: worker, rng: rand.New(rand.NewPCG(uint64(worker), 42)), allows: map[string]bool{}}
}

func (g *generator) acked(id string) {
	if g.allows[id] {
		g.last = id
	}
	delete(g.allows, id)
}

// allow returns an allow decision without lineage (Config.Claims).
func (g *generator) allow() []byte {
	for {
		b := g.decision()
		if bytes.Contains(b, []byte(`"outcome":"allow"`)) && !bytes.Contains(b, []byte(`"parent_id"`)) {
			return b
		}
	}
}

var actions = []string{"deploy", "read", "write", "delete", "escalate", "invoke-tool", "send-email", "transfer-funds"}

// benchDecision is a decision as the generator submits it.
type benchDecision struct {
	ID          string        `json:"id"`
	Outcome     string        `json:"outcome"`
	DecidedAt   string        `json:"decided_at"`
	Subject     string        `json:"subject"`
	Action      string        `json:"action"`
	Resource    string        `json:"resource"`
	Policy      benchPolicy   `json:"policy"`
	InputDigest string        `json:"input_digest"`
	Reasons     []string      `json:"reasons,omitempty"`
	ParentID    string        `json:"parent_id,omitempty"`
	Context     *benchContext `json:"context,omitempty"`
}

type benchPolicy struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

type benchContext struct {
	Session string  `json:"session"`
	Risk    float64 `json:"risk"`
	Tool    string  `json:"tool"`
	Args    string  `json:"args"`
}

var denyReasons = []string{"action not permitted for this subject outside the change window", "risk score above threshold"}

func (g *generator) decision() []byte {
	g.n++
	d := benchDecision{
		ID:          fmt.Sprintf("%s-%03d-%07d", g.prefix, g.worker, g.n),
		Outcome:     "allow",
		DecidedAt:   time.Now().UTC().Format(time.RFC3339Nano),
		Subject:     fmt.Sprintf("spiffe://prod.example/ns/agents/sa/agent-%d", g.rng.IntN(500)),
		Action:      actions[g.rng.IntN(len(actions))],
		Resource:    fmt.Sprintf("arn:example:service/%s/item-%d", strings.Repeat("x", g.rng.IntN(64)), g.rng.IntN(1e6)),
		Policy:      benchPolicy{ID: "agent-guardrails", Version: "2026.11.3", Digest: fmt.Sprintf("sha256:%064x", g.rng.Uint64())},
		InputDigest: fmt.Sprintf("sha256:%064x", g.rng.Uint64()),
	}
	if g.rng.IntN(10) < 3 {
		d.Outcome, d.Reasons = "deny", denyReasons
	}
	if g.rng.IntN(10) == 0 {
		d.ParentID = g.last
	}
	if d.Outcome == "allow" {
		g.allows[d.ID] = true
	}
	if g.rng.IntN(2) == 0 {
		d.Context = &benchContext{Session: fmt.Sprintf("s-%d", g.rng.Uint32()), Risk: g.rng.Float64(), Tool: "kubectl", Args: strings.Repeat("a", g.rng.IntN(300))}
	}
	b, _ := json.Marshal(d)
	return b
}

// Sample returns the first n decisions a run's client submits (ids
// prefix-000-…; 70% allows and 30% denies, without lineage since none is
// acknowledged): realistic bodies for tools that need some.
func Sample(prefix string, n int) [][]byte {
	g := newGenerator(prefix, 0)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.decision()
	}
	return out
}
