// Package loadgen is the load generator behind `govlog bench`: it submits
// realistic decisions to a govlog server from many concurrent clients,
// verifies every receipt it gets with the verifier package (a fast but
// wrong log scores zero), and reports throughput, latency percentiles and
// the CPU per decision of the server and of the generator itself.
package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/verifier"
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
	// Done, when set, counts the decisions (or proof lookups) answered so
	// far, acknowledged or not, for a progress display. Default: none.
	Done *atomic.Int64
	// Replayed accepts a receipt that verifies but is of another entry
	// than the one submitted: internal/floor answers every submission
	// with receipts it took from a real log. Default: a receipt counts as
	// verified only if its entry is the one the request submitted (its
	// id), so a server cannot pass the load with receipts of other
	// decisions.
	Replayed bool
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
	Late int `json:"late,omitempty"`
	// SendLagMS (open loop only) is how long after its due time each
	// request was written to its connection: a client busy with an
	// earlier request past the due time (Late), or the generator's own
	// timer or scheduling running late. It is part of the latency, and
	// what of it is not the server's (a lag while clients were free) is
	// the generator's.
	SendLagMS *Percentiles `json:"send_lag_ms,omitempty"`
	// FromSendMS (open loop only) is each request's latency counted from
	// when it was written to its connection instead of from its due time:
	// the round trip without the send lag.
	FromSendMS     *Percentiles   `json:"latency_from_send_ms,omitempty"`
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
			gen, c := newGenerator(cfg.Prefix, w), r.ep.conn(ctx, requestTimeout)
			defer c.close()
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				n := cfg.Batch
				if total > 0 {
					n = min(n, total-i*cfg.Batch)
				}
				r.request(c, gen, n, time.Time{})
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
	if r.rep.Mode == "open" {
		slices.Sort(r.sendLags)
		slices.Sort(r.fromSend)
		lag, fromSend := percentiles(r.sendLags), percentiles(r.fromSend)
		r.rep.SendLagMS, r.rep.FromSendMS = &lag, &fromSend
	}
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
	ep, err := newEndpoint(cfg.URL, cfg.Token)
	if err != nil {
		return nil, err
	}
	if cfg.LogKey == nil {
		v, err := fetchKey(ep.conn(ctx, setupTimeout))
		if err != nil {
			return nil, err
		}
		cfg.LogKey = v
	}
	return &runner{cfg: *cfg, ep: ep, receipts: verifier.NewReceiptVerifier(cfg.LogKey), rep: Report{Errors: map[string]int{}}}, nil
}

// The longest a request of the load and one of the setup (the log's key,
// the server's CPU time, the checkpoint and entries a run of proof lookups
// samples) may take.
const (
	requestTimeout = 60 * time.Second
	setupTimeout   = 10 * time.Second
)

type runner struct {
	cfg       Config
	ep        *endpoint
	mu        sync.Mutex
	rep       Report
	latencies []time.Duration
	sendLags  []time.Duration // open loop: each request's send time less its due time
	fromSend  []time.Duration // open loop: each request's latency from its send time
	// receipts verifies the receipts, each distinct checkpoint's
	// signature once.
	receipts *verifier.ReceiptVerifier
	cpu0     float64       // the server's CPU seconds at the start
	client0  time.Duration // this process's CPU time at the start
	cpuErr   error         // why the server's CPU time is unknown
}

// request submits n decisions (n > 1: in one batch request) and verifies
// the receipts. Its latency counts from due, or from the send if due is
// zero.
func (r *runner) request(c *conn, gen *generator, n int, due time.Time) {
	if r.cfg.Claims {
		r.claim(c, gen)
		return
	}
	gen.sent = gen.sent[:0]
	path, body := "/v1/decisions", gen.decision()
	if r.cfg.Batch > 1 {
		body = append(append(make([]byte, 0, n*1024), `{"decisions":[`...), body...)
		for range n - 1 {
			body = gen.appendDecision(append(body, ','))
		}
		path, body = "/v1/decisions/batch", append(body, "]}"...)
	}
	start, sent := due, time.Now()
	if start.IsZero() {
		start = sent
	}
	status, resp, err := c.do(http.MethodPost, path, body, &gen.resp)
	took := time.Since(start)
	r.mu.Lock()
	r.rep.Requests++
	r.rep.Decisions += n
	r.latencies = append(r.latencies, took)
	if !due.IsZero() {
		r.sendLags = append(r.sendLags, sent.Sub(due))
		r.fromSend = append(r.fromSend, took-sent.Sub(due))
	}
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
		r.check(&rc, decodeReceipt(resp, &rc), gen, gen.sent[0])
		return
	}
	results, err := decodeBatch(resp)
	if err != nil || len(results) != n {
		r.fail("bad_batch_response", n)
		return
	}
	for i := range results {
		if e := results[i].Error; e != nil {
			r.fail(e.Code, 1)
			continue
		}
		r.check(&results[i].receipt, nil, gen, gen.sent[i])
	}
}

// claim submits an allow, then a claim of it with its artifact, and
// verifies both receipts; the latency is the pair's.
func (r *runner) claim(c *conn, gen *generator) {
	start := time.Now()
	allow := gen.allow()
	id := gen.sent[len(gen.sent)-1]
	status, resp, err := c.do(http.MethodPost, "/v1/decisions", allow, &gen.resp)
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
	var d receipt
	if err = decodeReceipt(resp, &d); err == nil {
		err = r.verify(&d, id)
	}
	if err != nil || d.Artifact == "" {
		r.count(time.Since(start))
		r.check(&d, cmp.Or(err, errors.New("an allow without artifact")), gen, id)
		return
	}
	body, _ := json.Marshal(map[string]string{"id": d.ID + "-run", "decision_id": d.ID, "status": "started",
		"at": time.Now().UTC().Format(time.RFC3339Nano), "artifact": d.Artifact})
	status, resp, err = c.do(http.MethodPost, "/v1/executions", body, &gen.resp)
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
	r.check(&rc, decodeReceipt(resp, &rc), gen, id+"-run")
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
// checkpoint signature (once per distinct checkpoint), the entry, its leaf
// hash and inclusion proof of the tlog-proof (verify).
func (r *runner) check(rc *receipt, err error, gen *generator, id string) {
	if err == nil {
		err = r.verify(rc, id)
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

// verify verifies a receipt's tlog_proof with the verifier package, as
// `govlog verify` does (the checkpoint's signature, the inclusion of the
// entry's leaf hash, the entry itself), and that the receipt's index and
// leaf hash are the proof's, and that its entry is id, the one submitted
// (unless Config.Replayed).
func (r *runner) verify(rc *receipt, id string) error {
	v, err := r.receipts.Receipt(rc.TLogProof)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", rc.ID, err)
	}
	if !bytes.Equal(v.LeafHash[:], rc.LeafHash) || v.Index != rc.Index {
		return errors.New("tlog_proof does not match the receipt")
	}
	if !r.cfg.Replayed && (v.Entry.ID != id || rc.ID != id) {
		return fmt.Errorf("receipt of entry %q (id %q in the answer), not of %q, the one submitted", v.Entry.ID, rc.ID, id)
	}
	return nil
}

// readBody reads the body of resp into *buf (its capacity kept for the
// next answer) and returns it: at most limit bytes of it when limit > 0.
func readBody(resp *http.Response, limit int64, buf *[]byte) ([]byte, error) {
	out := bytes.NewBuffer((*buf)[:0])
	if resp.ContentLength > 0 && resp.ContentLength < 64<<20 {
		out.Grow(int(resp.ContentLength) + bytes.MinRead) // ReadFrom wants MinRead free to see the end
	}
	var body io.Reader = resp.Body
	if limit > 0 {
		body = io.LimitReader(body, limit)
	}
	_, err := out.ReadFrom(body)
	*buf = out.Bytes()
	return *buf, err
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

// fetchKey reads the log's verifier key from GET /v1/log.
func fetchKey(c *conn) (note.Verifier, error) {
	defer c.close()
	var buf []byte
	body, err := c.get("/v1/log", &buf)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch the log key: %w", err)
	}
	var info struct {
		VerifierKey string `json:"verifier_key"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
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
// at a deny: the log refuses a deny as parent). A generator belongs to one
// worker goroutine, and so does its response buffer.
type generator struct {
	prefix string // PREFIX-WORKER-, the ids' first part
	n      int
	rng    *rand.Rand
	last   string          // last acknowledged allow id
	allows map[string]bool // allows submitted, not yet acknowledged
	sent   []string        // the ids of the decisions of the request being built
	now    func() time.Time
	// resp holds the worker's last answer: what is kept of a receipt
	// is copied out of it (decodeReceipt), so it is reused.
	resp []byte
}

func newGenerator(prefix string, worker int) *generator {
	return &generator{prefix: string(appendPadded([]byte(prefix+"-"), uint64(worker), 3)) + "-",
		rng: rand.New(rand.NewPCG(uint64(worker), 42)), allows: map[string]bool{}, now: time.Now}
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
		g.sent = g.sent[:0]
		b := g.decision()
		if bytes.Contains(b, []byte(`"outcome":"allow"`)) && !bytes.Contains(b, []byte(`"parent_id"`)) {
			return b
		}
	}
}

var actions = []string{"deploy", "read", "write", "delete", "escalate", "invoke-tool", "send-email", "transfer-funds"}

const denyReasons = `["action not permitted for this subject outside the change window","risk score above threshold"]`

// The longest resource padding and context arguments a decision gets.
var (
	xs = strings.Repeat("x", 63)
	as = strings.Repeat("a", 299)
)

// decision returns a new decision's JSON.
func (g *generator) decision() []byte { return g.appendDecision(make([]byte, 0, 1024)) }

// appendDecision appends a new decision's JSON to b: its members in the
// order and form encoding/json writes them (the tests hold it to
// json.Marshal), without the reflection and formatting.
func (g *generator) appendDecision(b []byte) []byte {
	g.n++
	id := string(appendPadded([]byte(g.prefix), uint64(g.n), 7))
	g.sent = append(g.sent, id)
	b = appendString(append(b, `{"id":`...), id)
	b = append(b, `,"outcome":"`...)
	// The random draws in the order they always were: a seed makes the
	// same decisions.
	subject := g.rng.IntN(500)
	action := actions[g.rng.IntN(len(actions))]
	xn, item := g.rng.IntN(64), g.rng.IntN(1e6)
	policyDigest, inputDigest := g.rng.Uint64(), g.rng.Uint64()
	deny := g.rng.IntN(10) < 3
	parent := g.rng.IntN(10) == 0 && g.last != ""
	if deny {
		b = append(b, "deny"...)
	} else {
		b = append(b, "allow"...)
		g.allows[id] = true
	}
	b = append(b, `","decided_at":"`...)
	b = g.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","subject":"spiffe://prod.example/ns/agents/sa/agent-`...)
	b = strconv.AppendInt(b, int64(subject), 10)
	b = append(append(append(b, `","action":"`...), action...), `","resource":"arn:example:service/`...)
	b = append(append(b, xs[:xn]...), "/item-"...)
	b = strconv.AppendInt(b, int64(item), 10)
	b = append(b, `","policy":{"id":"agent-guardrails","version":"2026.11.3","digest":"sha256:`...)
	b = appendHex64(b, policyDigest)
	b = append(b, `"},"input_digest":"sha256:`...)
	b = appendHex64(b, inputDigest)
	b = append(b, '"')
	if deny {
		b = append(append(b, `,"reasons":`...), denyReasons...)
	}
	if parent {
		b = appendString(append(b, `,"parent_id":`...), g.last)
	}
	if g.rng.IntN(2) == 0 {
		session, risk, args := g.rng.Uint32(), g.rng.Float64(), g.rng.IntN(300)
		b = append(b, `,"context":{"session":"s-`...)
		b = strconv.AppendUint(b, uint64(session), 10)
		b = append(b, `","risk":`...)
		b = appendFloat(b, risk)
		b = append(append(append(b, `,"tool":"kubectl","args":"`...), as[:args]...), `"}`...)
	}
	return append(b, '}')
}

// appendString appends s as encoding/json writes a string.
func appendString(b []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v uint64, width int) []byte {
	var d [20]byte
	n := len(strconv.AppendUint(d[:0], v, 10))
	for ; n < width; n++ {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, v, 10)
}

// appendHex64 appends v as 64 hexadecimal digits (%064x).
func appendHex64(b []byte, v uint64) []byte {
	b = append(b, "000000000000000000000000000000000000000000000000"...) // 48
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], v)
	return hex.AppendEncode(b, h[:])
}

// appendFloat appends f as encoding/json writes a float64.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
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
