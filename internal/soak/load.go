package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/internal/loadgen"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/audit"
)

// load runs the background parts of the mixed load (batches, executions,
// reads, audits) and counts what they did since the last sample. The
// single decisions run in the sampling loop (see soak.singles).
type load struct {
	o      options
	url    string
	hc     *http.Client
	logKey note.Verifier
	// c verifies every receipt and checkpoint it gets; mon also keeps a
	// trusted checkpoint and checks every checkpoint it sees against it
	// with the log's consistency proofs.
	c, mon *client.Client
	prefix string
	work   string
	logger *slog.Logger

	latest atomic.Pointer[log.Checkpoint] // newest verified checkpoint
	known  leafPool
	// auditState is the state of the last audit (one audit at a time).
	auditState *audit.State

	mu  sync.Mutex
	cur counts // since the last sample
	all counts // the whole run
}

// counts is what the load did over a period.
type counts struct {
	Batches, BatchDecisions int
	Executions              int
	Reads                   map[string]int
	ReadSkipped             int
	readLat                 []time.Duration
	// Errors are answers that are not the expected success, by "what:
	// code"; VerifyFailures are successes whose content did not verify.
	Errors         map[string]int
	ErrorExamples  map[string]string
	VerifyFailures int
	FirstVerifyErr string
	Audits         []auditRun
}

// auditRun is one incremental audit.
type auditRun struct {
	Seconds    float64
	Entries    uint64 // replayed by this audit
	TreeSize   uint64
	StateBytes int
	Failure    string // the first failure, when the audit failed
	Findings   uint64
}

func newCounts() counts {
	return counts{Reads: map[string]int{}, Errors: map[string]int{}, ErrorExamples: map[string]string{}}
}

func (c *counts) add(o *counts) {
	c.Batches += o.Batches
	c.BatchDecisions += o.BatchDecisions
	c.Executions += o.Executions
	for k, v := range o.Reads {
		c.Reads[k] += v
	}
	c.ReadSkipped += o.ReadSkipped
	for k, v := range o.Errors {
		c.Errors[k] += v
	}
	for k, v := range o.ErrorExamples {
		if _, ok := c.ErrorExamples[k]; !ok {
			c.ErrorExamples[k] = v
		}
	}
	c.VerifyFailures += o.VerifyFailures
	if c.FirstVerifyErr == "" {
		c.FirstVerifyErr = o.FirstVerifyErr
	}
	c.Audits = append(c.Audits, o.Audits...)
}

func (c *counts) errorCount() int {
	n := 0
	for _, v := range c.Errors {
		n += v
	}
	return n
}

// connCap is the most connections the load opens to one process: one for
// each of the single decisions' clients (the load generator's own), the
// readers, the audit's workers and the rest (the batches' one among them).
func connCap(o options) int { return o.clients + maxReads + auditWorkers + 16 }

// auditWorkers is the number of bundles an audit fetches at once.
const auditWorkers = 4

func newLoad(o options, url string, logKey note.Verifier, work string, logger *slog.Logger) (*load, error) {
	hc := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxConnsPerHost:     connCap(o),
			MaxIdleConnsPerHost: connCap(o),
			IdleConnTimeout:     90 * time.Second,
		},
	}
	// One attempt: an answer the client would retry (429, 503) is an
	// error of the soak, not something to hide.
	c, err := client.New(url, client.WithLogKey(logKey), client.WithHTTPClient(hc), client.WithMaxAttempts(1))
	if err != nil {
		return nil, err
	}
	mon, err := client.New(url, client.WithLogKey(logKey), client.WithHTTPClient(hc), client.WithMaxAttempts(1),
		client.WithTrustedState(filepath.Join(work, "trusted-checkpoint")))
	if err != nil {
		return nil, err
	}
	l := &load{o: o, url: url, hc: hc, logKey: logKey, c: c, mon: mon, work: work, logger: logger,
		prefix: fmt.Sprintf("soak-%x", rand.Uint32()), cur: newCounts(), all: newCounts()}
	l.latest.Store(&log.Checkpoint{})
	return l, nil
}

// take returns the counts since the last call and starts new ones.
func (l *load) take() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.cur
	l.cur = newCounts()
	l.all.add(&c)
	return c
}

// loadgenReport adds a loadgen run's errors and verification failures.
func (l *load) loadgenReport(what string, rep *loadgen.Report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for code, n := range rep.Errors {
		l.cur.Errors[what+": "+code] += n
	}
	l.cur.VerifyFailures += rep.VerifyFailures
	if l.cur.FirstVerifyErr == "" && rep.FirstVerifyErr != "" {
		l.cur.FirstVerifyErr = what + ": " + rep.FirstVerifyErr
	}
}

// wrongAnswer is an answer that arrived but does not verify.
type wrongAnswer struct{ err error }

func (e *wrongAnswer) Error() string { return e.err.Error() }

// failed counts err, from what, unless ctx is done (an interrupted request
// is not the log's fault). An *APIError or non-200 answer counts as an
// error with its code, a transport failure as "transport", anything else
// (a receipt, proof or checkpoint that does not verify) as a verification
// failure.
func (l *load) failed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	var ae *client.APIError
	var se *statusError
	var ne net.Error
	var wa *wrongAnswer
	var ie *verifier.InconsistencyError
	code := ""
	switch {
	case errors.As(err, &wa), errors.As(err, &ie):
	case errors.As(err, &ae):
		code = ae.Code
		if code == "" {
			code = fmt.Sprintf("http_%d", ae.Status)
		}
	case errors.As(err, &se):
		code = se.code()
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		code = "transport"
	case strings.Contains(err.Error(), "unexpected status"):
		code = "unexpected_status"
	}
	if code != "" {
		l.count(ctx, what, code, err.Error())
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.VerifyFailures++
	if l.cur.FirstVerifyErr == "" {
		l.cur.FirstVerifyErr = what + ": " + err.Error()
	}
}

// count counts an error of what with code, unless ctx is done.
func (l *load) count(ctx context.Context, what, code, example string) {
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	key := what + ": " + code
	l.cur.Errors[key]++
	if _, ok := l.cur.ErrorExamples[key]; !ok {
		l.cur.ErrorExamples[key] = example
	}
}

// every calls f every period until ctx is done.
func every(ctx context.Context, period time.Duration, f func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// run runs the background load until ctx is done.
func (l *load) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { l.refreshCheckpoint(ctx) })
	wg.Go(func() {
		n := 0
		every(ctx, l.o.batchEvery, func() { n++; l.batch(ctx, n) })
	})
	if l.o.execRate > 0 {
		wg.Go(func() {
			n := 0
			every(ctx, time.Duration(float64(time.Second)/l.o.execRate), func() { n++; l.execution(ctx, n) })
		})
	}
	if l.o.readRate > 0 {
		wg.Go(func() { l.reads(ctx) })
	}
	wg.Go(func() { every(ctx, l.o.auditEvery, func() { l.audit(ctx) }) })
	wg.Wait()
}

// refreshCheckpoint fetches the first checkpoint, for the reads.
func (l *load) refreshCheckpoint(ctx context.Context) {
	if cp, err := l.mon.Checkpoint(ctx); err == nil {
		l.observed(cp)
	} else {
		l.failed(ctx, "read checkpoint", err)
	}
}

func (l *load) observed(cp log.Checkpoint) {
	for {
		old := l.latest.Load()
		if cp.Size <= old.Size || l.latest.CompareAndSwap(old, &cp) {
			return
		}
	}
}

// batch submits one batch through the batch endpoint, every receipt
// verified by loadgen.
func (l *load) batch(ctx context.Context, n int) {
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: l.url, N: l.o.batchSize, Batch: l.o.batchSize, Concurrency: 1,
		LogKey: l.logKey, Prefix: fmt.Sprintf("%s-b%06d", l.prefix, n)})
	if err != nil || ctx.Err() != nil {
		return
	}
	l.loadgenReport("batch", rep)
	l.mu.Lock()
	l.cur.Batches++
	l.cur.BatchDecisions += rep.Acknowledged
	l.mu.Unlock()
}

// execution logs an allow decision, then the claim of its execution with
// the artifact, then the report that ends it; the client verifies every
// receipt and that it holds what was sent.
func (l *load) execution(ctx context.Context, n int) {
	id := fmt.Sprintf("%s-x%07d", l.prefix, n)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	d, _ := json.Marshal(map[string]any{
		"id": id, "outcome": "allow", "decided_at": now, "subject": "spiffe://soak.example/agent-" + fmt.Sprint(n%50),
		"action": "invoke-tool", "resource": "tool/kubectl", "policy": map[string]string{"id": "soak-policy", "version": "1"},
	})
	r, _, err := l.c.Submit(ctx, d)
	if err != nil {
		l.failed(ctx, "execution decision", err)
		return
	}
	if len(r.LeafHash) == 32 {
		l.known.add(known{index: r.Index, id: id, hash: [32]byte(r.LeafHash)})
	}
	x, _ := json.Marshal(map[string]any{"id": id + "-run", "decision_id": id, "status": "started", "at": now, "runtime": "soak",
		"artifact": r.Artifact})
	if _, _, err := l.c.SubmitExecution(ctx, x); err != nil {
		l.failed(ctx, "execution claim", err)
		return
	}
	x, _ = json.Marshal(map[string]any{"id": id + "-done", "decision_id": id, "status": "succeeded", "at": now, "runtime": "soak",
		"claim_id": id + "-run"})
	if _, _, err := l.c.SubmitExecution(ctx, x); err != nil {
		l.failed(ctx, "execution report", err)
		return
	}
	l.mu.Lock()
	l.cur.Executions++
	l.mu.Unlock()
}

// Reads: a weighted mix, at most maxReads in flight.
const maxReads = 8

var readMix = []struct {
	kind   string
	weight int
}{{"checkpoint", 15}, {"inclusion proof", 35}, {"entries", 15}, {"tiles", 15}, {"receipt", 20}}

func (l *load) reads(ctx context.Context) {
	sem := make(chan struct{}, maxReads)
	var wg sync.WaitGroup
	defer wg.Wait()
	total := 0
	for _, m := range readMix {
		total += m.weight
	}
	every(ctx, time.Duration(float64(time.Second)/l.o.readRate), func() {
		select {
		case sem <- struct{}{}:
		default:
			l.mu.Lock()
			l.cur.ReadSkipped++
			l.mu.Unlock()
			return
		}
		pick := rand.IntN(total)
		kind := readMix[0].kind
		for _, m := range readMix {
			if pick < m.weight {
				kind = m.kind
				break
			}
			pick -= m.weight
		}
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			kind, err := l.read(ctx, kind)
			took := time.Since(start)
			if err != nil {
				l.failed(ctx, "read "+kind, err)
				return
			}
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.cur.Reads[kind]++
			l.cur.readLat = append(l.cur.readLat, took)
			l.mu.Unlock()
		})
	})
}

// read does one read of kind and verifies its answer; it returns the kind
// it did (a read that needs known entries or a larger log falls back to
// one that does not).
func (l *load) read(ctx context.Context, kind string) (string, error) {
	cp := *l.latest.Load()
	var k known
	switch {
	case cp.Size == 0:
		kind = "checkpoint"
	case kind == "inclusion proof" || kind == "receipt":
		var ok bool
		if k, ok = l.known.pick(cp.Size, kind == "receipt"); !ok {
			kind = "entries"
		}
	}
	switch kind {
	case "checkpoint":
		// Alternately the REST and the tiles checkpoint; either way
		// checked consistent with every checkpoint seen before.
		var got log.Checkpoint
		var err error
		if rand.IntN(2) == 0 {
			got, err = l.mon.Checkpoint(ctx)
		} else {
			var n []byte
			if n, err = l.mon.TilesCheckpoint(ctx); err == nil {
				got, err = l.mon.Observe(ctx, n)
			}
		}
		if err == nil {
			l.observed(got)
		}
		return kind, err
	case "inclusion proof":
		return kind, l.inclusionProof(ctx, cp, k)
	case "receipt":
		_, err := l.c.Decision(ctx, k.id)
		return kind, err
	case "entries":
		return kind, l.entries(ctx, cp)
	default:
		return kind, l.tiles(ctx, cp)
	}
}

// inclusionProof fetches the proof of k in cp's tree, by index or by leaf
// hash, and verifies it against cp.
func (l *load) inclusionProof(ctx context.Context, cp log.Checkpoint, k known) error {
	q := fmt.Sprintf("index=%d", k.index)
	if rand.IntN(4) == 0 {
		q = "leaf_hash=" + base64.RawURLEncoding.EncodeToString(k.hash[:])
	}
	body, err := get(ctx, l.hc, fmt.Sprintf("%s/v1/proofs/inclusion?%s&tree_size=%d", l.url, q, cp.Size))
	if err != nil {
		return err
	}
	var p struct {
		Index    uint64   `json:"index"`
		TreeSize uint64   `json:"tree_size"`
		Hashes   [][]byte `json:"hashes"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return &wrongAnswer{fmt.Errorf("failed to decode the inclusion proof of entry %d: %w", k.index, err)}
	}
	if p.Index != k.index || p.TreeSize != cp.Size {
		return &wrongAnswer{fmt.Errorf("asked for the proof of entry %d in tree %d, got %d in %d", k.index, cp.Size, p.Index, p.TreeSize)}
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, k.index, cp.Size, k.hash[:], p.Hashes, cp.Hash[:]); err != nil {
		return &wrongAnswer{fmt.Errorf("the inclusion proof of entry %d in tree %d does not verify: %w", k.index, cp.Size, err)}
	}
	return nil
}

// entries reads a page of entries at a random place and remembers a few
// (their hashes are proven by later inclusion proofs).
func (l *load) entries(ctx context.Context, cp log.Checkpoint) error {
	const count = 32
	start := rand.Uint64N(cp.Size)
	body, err := get(ctx, l.hc, fmt.Sprintf("%s/v1/entries?start=%d&count=%d", l.url, start, count))
	if err != nil {
		return err
	}
	var page struct {
		Entries []struct {
			Index uint64 `json:"index"`
			Entry []byte `json:"entry"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return &wrongAnswer{fmt.Errorf("failed to decode entries from %d: %w", start, err)}
	}
	if len(page.Entries) == 0 || len(page.Entries) > count {
		return &wrongAnswer{fmt.Errorf("asked for %d entries from %d of a log of %d, got %d", count, start, cp.Size, len(page.Entries))}
	}
	for i, e := range page.Entries {
		if e.Index != start+uint64(i) || len(e.Entry) == 0 {
			return &wrongAnswer{fmt.Errorf("entries from %d: item %d is entry %d (%d bytes)", start, i, e.Index, len(e.Entry))}
		}
		if i%8 == 0 {
			var ent struct {
				Decision *struct {
					ID string `json:"id"`
				} `json:"decision"`
			}
			k := known{index: e.Index, hash: log.LeafHash(e.Entry)}
			if json.Unmarshal(e.Entry, &ent) == nil && ent.Decision != nil {
				k.id = ent.Decision.ID
			}
			l.known.add(k)
		}
	}
	return nil
}

// tiles reads an entry bundle and its level-0 hash tile (partial at the
// right edge of cp's tree) and checks that the tile holds the hashes of
// the bundle's entries.
func (l *load) tiles(ctx context.Context, cp log.Checkpoint) error {
	index := rand.Uint64N((cp.Size-1)/log.TileWidth + 1)
	width := log.TileHashes(cp.Size, 0, index)
	bundle, err := l.c.EntryBundle(ctx, index, width)
	if err != nil {
		return err
	}
	tile, err := l.c.Tile(ctx, 0, index, width)
	if err != nil {
		return err
	}
	entries, err := log.ParseEntryBundle(bundle, width)
	if err != nil {
		return &wrongAnswer{fmt.Errorf("entry bundle %d (width %d): %w", index, width, err)}
	}
	for i, e := range entries {
		if h := log.LeafHash(e); string(h[:]) != string(tile[32*i:32*i+32]) {
			return &wrongAnswer{fmt.Errorf("entry %d of bundle %d does not hash to its level-0 tile hash", i, index)}
		}
	}
	return nil
}

// audit replays what was logged since the previous audit with
// client.Audit, as govlog audit --state does: the state is saved to a file
// and read back between audits. It fails only when ctx is done; the
// audit's outcome is in the counts.
func (l *load) audit(ctx context.Context) error {
	start := time.Now()
	rep, st, err := l.c.Audit(ctx, client.AuditOptions{State: l.auditState, Workers: auditWorkers})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	run := auditRun{Seconds: time.Since(start).Seconds(), Entries: rep.Audited.Entries, Findings: rep.FindingCount}
	if rep.Checkpoint != nil {
		run.TreeSize = rep.Checkpoint.Size
	}
	if !rep.OK || st == nil {
		run.Failure = "the log failed the audit"
		if len(rep.Failures) > 0 {
			f := rep.Failures[0]
			run.Failure = fmt.Sprintf("%s: %s (%d failures)", f.Code, f.Message, rep.FailureCount)
		}
	} else {
		data, err := st.MarshalBinary()
		path := filepath.Join(l.work, "audit.state")
		if err == nil {
			err = client.WriteFileAtomic(path, data)
		}
		if err == nil {
			data, err = os.ReadFile(path)
		}
		var next *audit.State
		if err == nil {
			next, err = audit.UnmarshalState(data, l.logKey)
		}
		if err != nil {
			run.Failure = "failed to save and reload the audit state: " + err.Error()
		} else {
			l.auditState = next
			run.StateBytes = len(data)
		}
	}
	l.mu.Lock()
	l.cur.Audits = append(l.cur.Audits, run)
	l.mu.Unlock()
	if run.Failure != "" {
		l.logger.Error("audit failed", "err", run.Failure)
	}
	return nil
}

// known is an entry whose leaf hash is known: from a receipt the client
// verified or from a page of entries; id is set for decisions.
type known struct {
	index uint64
	hash  [32]byte
	id    string
}

// leafPool holds up to poolSize known entries.
type leafPool struct {
	mu    sync.Mutex
	items []known
}

const poolSize = 4096

func (p *leafPool) add(k known) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.items) < poolSize {
		p.items = append(p.items, k)
		return
	}
	p.items[rand.IntN(len(p.items))] = k
}

// pick returns a random known entry below size (a decision if decision).
func (p *leafPool) pick(size uint64, decision bool) (known, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 16 {
		if len(p.items) == 0 {
			break
		}
		k := p.items[rand.IntN(len(p.items))]
		if k.index < size && (!decision || k.id != "") {
			return k, true
		}
	}
	return known{}, false
}

// percentile returns the nearest-rank q-quantile of d in milliseconds,
// sorting d.
func percentileMS(d []time.Duration, q float64) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(loadgen.Quantile(d, q).Microseconds()) / 1000
}
