package trillian

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"

	"github.com/govlog/govlog/internal/cputime"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
)

// BenchmarkTrillian measures, in one run on the same servers, raw Trillian
// and govlog on it:
//
//   - QueueLeaf: clients (32, and 64 like Submit's submitters) queue
//     leaves as fast as they can (each QueueLeaf waits for its database
//     commit, not for integration), while a watcher reads each new tree
//     head and its leaves; latency is from calling QueueLeaf to the first
//     tree head that contains the leaf.
//   - QueueLeafWait: raw Trillian in a closed loop, as govlog's submitters
//     are: each client queues a leaf, then waits until it is integrated
//     and has an inclusion proof against a tree head before it queues the
//     next. One watcher polls the tree head every 5 ms and reads the new
//     leaves (as a Backend does); the client then calls GetInclusionProof
//     at that tree head and verifies it. Latency is from calling QueueLeaf
//     to the verified proof.
//   - Submit: submitters call log.Log.Submit on a Backend, each waiting for
//     its receipt (inclusion proof against a signed checkpoint) before it
//     submits again; latency is that of Submit.
//
// Submit runs with one replica (a log.Log on a Backend) and with two on
// the same tree, and with more submitters. b.N is the number of leaves or
// submissions. Run it with, for example,
//
//	go test -run '^$' -bench Trillian -benchtime 3000x ./log/trillian/
//
// It reports throughput (leaves/s), p50 and p99 latency (ms), the CPU
// time per leaf of the benchmark's process and of the Trillian servers
// (µs; on Linux), and for Submit the mean batch size, Append time and the
// time of each of its steps (reserve, queue, integrate, checkpoint).
func BenchmarkTrillian(b *testing.B) {
	e := need(b)
	for _, clients := range []int{32, 64} {
		b.Run(fmt.Sprintf("QueueLeaf/clients=%d", clients), func(b *testing.B) {
			benchQueueLeaf(b, e, clients)
		})
	}
	for _, clients := range []int{32, 64} {
		b.Run(fmt.Sprintf("QueueLeafWait/clients=%d", clients), func(b *testing.B) {
			benchQueueLeafWait(b, e, clients, true)
		})
	}
	for _, c := range []struct{ replicas, submitters int }{{1, 64}, {2, 64}, {1, 128}, {1, 256}} {
		b.Run(fmt.Sprintf("Submit/replicas=%d/submitters=%d", c.replicas, c.submitters), func(b *testing.B) {
			benchSubmit(b, e, c.replicas, c.submitters)
		})
	}
}

// BenchmarkBaseline runs, in one run, raw Trillian open loop
// (QueueLeaf), raw Trillian closed loop (QueueLeafWait), the same with
// clients that only wait for their leaf to be in a tree head and ask for
// no proof (closed-noproof), and govlog (Submit, one replica), 64 clients
// or submitters each, in rounds whose order reverses from one round to
// the next, so that their ratios can be taken round by round:
//
//	go test -run '^$' -bench Baseline -benchtime 3000x ./log/trillian/
func BenchmarkBaseline(b *testing.B) {
	e := need(b)
	runs := []struct {
		name  string
		bench func(*testing.B)
	}{
		{"open", func(b *testing.B) { benchQueueLeaf(b, e, 64) }},
		{"closed-noproof", func(b *testing.B) { benchQueueLeafWait(b, e, 64, false) }},
		{"closed", func(b *testing.B) { benchQueueLeafWait(b, e, 64, true) }},
		{"govlog", func(b *testing.B) { benchSubmit(b, e, 1, 64) }},
	}
	for round := range 4 {
		for i := range runs {
			r := runs[i]
			if round%2 == 1 {
				r = runs[len(runs)-1-i]
			}
			b.Run(fmt.Sprintf("%s/round=%d", r.name, round), r.bench)
		}
	}
}

// BenchmarkIndexedSize measures what keeping govlog_search_indexed up to
// date costs an Append (one UPDATE in the checkpoint's transaction): the
// Submit benchmark with it and without it, alternating, in one run:
//
//	go test -run '^$' -bench IndexedSize -benchtime 3000x ./log/trillian/
func BenchmarkIndexedSize(b *testing.B) {
	e := need(b)
	for round := range 2 {
		for _, skip := range []bool{false, true} {
			name := fmt.Sprintf("with/round=%d", round)
			if skip {
				name = fmt.Sprintf("without/round=%d", round)
			}
			b.Run(name, func(b *testing.B) {
				benchSubmit(b, e, 1, 64, func(c *Config) { c.hooks.noIndexedSize = skip })
			})
		}
	}
}

// reportLatencies reports throughput and percentiles.
func reportLatencies(b *testing.B, lat []time.Duration, took time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(len(lat))/took.Seconds(), "leaves/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
}

func benchQueueLeaf(b *testing.B, e *testEnv, clients int) {
	tree := e.newTree(b)
	client := trillian.NewTrillianLogClient(e.conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var queuedAt sync.Map // identity hash -> time.Time
	latencies := make(chan time.Duration, b.N)
	watchDone := make(chan error, 1)
	start := time.Now()
	var last atomic.Int64 // unix nanos of the last integration seen
	go func() {
		watchDone <- watch(ctx, client, tree, b.N, func(l *trillian.LogLeaf, _ root, at time.Time) {
			if t, ok := queuedAt.Load([32]byte(l.GetLeafIdentityHash())); ok {
				latencies <- at.Sub(t.(time.Time))
				last.Store(at.UnixNano())
			}
		})
	}()

	b.ResetTimer()
	cpu := startCPU(e)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range clients {
		g.Go(func() error {
			for next.Add(1) <= int64(b.N) {
				leaf := make([]byte, 600)
				rand.Read(leaf)
				id := sha256.Sum256(leaf)
				queuedAt.Store(id, time.Now())
				_, err := client.QueueLeaf(gctx, &trillian.QueueLeafRequest{
					LogId: tree, Leaf: &trillian.LogLeaf{LeafValue: leaf, LeafIdentityHash: id[:]},
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := <-watchDone; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	close(latencies)
	var lat []time.Duration
	for l := range latencies {
		lat = append(lat, l)
	}
	if len(lat) != b.N {
		b.Fatalf("saw %d of %d leaves integrated", len(lat), b.N)
	}
	reportLatencies(b, lat, time.Unix(0, last.Load()).Sub(start))
	cpu.report(b)
}

// integrated is where a leaf is in a tree head, as the watcher saw it.
type integrated struct {
	index int64
	root  root
}

// benchQueueLeafWait is raw Trillian in a closed loop: each client waits
// for an inclusion proof of its leaf before it queues the next one, or,
// without proofs, only until a tree head holds its leaf (to tell the cost
// of the proofs from that of the closed loop).
func benchQueueLeafWait(b *testing.B, e *testEnv, clients int, proofs bool) {
	tree := e.newTree(b)
	client := trillian.NewTrillianLogClient(e.conn)

	b.ResetTimer()
	cpu := startCPU(e)
	start := time.Now()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var waiting sync.Map // identity hash -> chan integrated
	g, gctx := errgroup.WithContext(context.Background())
	g.Go(func() error {
		return watch(gctx, client, tree, b.N, func(l *trillian.LogLeaf, r root, _ time.Time) {
			if c, ok := waiting.LoadAndDelete([32]byte(l.GetLeafIdentityHash())); ok {
				c.(chan integrated) <- integrated{l.GetLeafIndex(), r}
			}
		})
	})
	for range clients {
		g.Go(func() error {
			done := make(chan integrated, 1)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return nil
				}
				leaf := make([]byte, 600)
				rand.Read(leaf)
				id := sha256.Sum256(leaf)
				t := time.Now()
				waiting.Store(id, done)
				_, err := client.QueueLeaf(gctx, &trillian.QueueLeafRequest{
					LogId: tree, Leaf: &trillian.LogLeaf{LeafValue: leaf, LeafIdentityHash: id[:]},
				})
				if err != nil {
					return err
				}
				var in integrated
				select {
				case in = <-done:
				case <-gctx.Done():
					return gctx.Err()
				}
				if !proofs {
					lat[i] = time.Since(t)
					continue
				}
				resp, err := client.GetInclusionProof(gctx, &trillian.GetInclusionProofRequest{
					LogId: tree, LeafIndex: in.index, TreeSize: int64(in.root.size),
				})
				if err != nil {
					return err
				}
				lh := rfc6962.DefaultHasher.HashLeaf(leaf)
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(in.index), in.root.size, lh, resp.GetProof().GetHashes(), in.root.hash[:]); err != nil {
					return fmt.Errorf("leaf %d in tree head of size %d: %w", in.index, in.root.size, err)
				}
				lat[i] = time.Since(t)
			}
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	reportLatencies(b, lat, took)
	cpu.report(b)
}

// cpuStart is the CPU time used so far by the benchmark's process and by
// the Trillian servers.
type cpuStart struct {
	e                 *testEnv
	process, trillian time.Duration
}

func startCPU(e *testEnv) cpuStart {
	return cpuStart{e, cputime.Process(), e.Servers.CPU()}
}

// report reports the CPU time per leaf since start, in µs: of this
// process (the clients, or govlog with its submitters) and of
// trillian_log_server and trillian_log_signer together. The database's
// is not included.
func (c cpuStart) report(b *testing.B) {
	b.ReportMetric(float64(cputime.Process()-c.process)/float64(b.N)/1e3, "cpu_us/leaf")
	b.ReportMetric(float64(c.e.Servers.CPU()-c.trillian)/float64(b.N)/1e3, "trillian_cpu_us/leaf")
}

// watch polls the tree head of tree until it has n leaves, calling seen for
// every new leaf with the tree head that holds it and the time it was read.
func watch(ctx context.Context, client trillian.TrillianLogClient, tree int64, n int, seen func(*trillian.LogLeaf, root, time.Time)) error {
	var size uint64
	deadline := time.Now().Add(10 * time.Minute)
	for size < uint64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d leaves integrated", size, n)
		}
		time.Sleep(5 * time.Millisecond)
		resp, err := client.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: tree})
		if err != nil {
			return err
		}
		at := time.Now()
		r, err := parseRoot(resp.GetSignedLogRoot())
		if err != nil {
			return err
		}
		for size < r.size {
			count := min(r.size-size, leavesPerCall)
			lr, err := client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: tree, StartIndex: int64(size), Count: int64(count)})
			if err != nil {
				return err
			}
			if len(lr.GetLeaves()) == 0 {
				return fmt.Errorf("no leaves from %d", size)
			}
			for _, l := range lr.GetLeaves() {
				seen(l, r, at)
			}
			size += uint64(len(lr.GetLeaves()))
		}
	}
	return nil
}

// benchSubmit runs submitters spread over replicas: each replica is a
// log.Log on a Backend of its own, on one tree, as govlogd replicas are.
// Each log.Log lingers as govlogd's does on this backend (Linger).
func benchSubmit(b *testing.B, e *testEnv, replicas, submitters int, tweak ...func(*Config)) {
	benchSubmitLinger(b, e, replicas, submitters, Linger, tweak...)
}

// BenchmarkLinger alternates, in one run, the Submit benchmark with 64
// submitters with the sequencer lingering (log.Config.Linger = Linger)
// and without (natural batching only):
//
//	go test -run '^$' -bench Linger -benchtime 3000x ./log/trillian/
func BenchmarkLinger(b *testing.B) {
	e := need(b)
	for round := range 4 {
		for i := range 2 {
			linger := Linger
			if (i+round)%2 == 1 {
				linger = 0
			}
			b.Run(fmt.Sprintf("linger=%v/round=%d", linger, round), func(b *testing.B) {
				benchSubmitLinger(b, e, 1, 64, linger)
			})
		}
	}
}

func benchSubmitLinger(b *testing.B, e *testEnv, replicas, submitters int, linger time.Duration, tweak ...func(*Config)) {
	tree := e.newTree(b)
	phases := &phaseTimes{sums: make(map[string]time.Duration)}
	signer, verifier := logtest.Keys(b)
	var (
		mu               sync.Mutex
		batches, entries int
		appendTimes      []time.Duration
	)
	logs := make([]*log.Log, replicas)
	for i := range logs {
		backend := e.open(b, tree, append([]func(*Config){func(c *Config) { c.Logger = slog.New(phases) }}, tweak...)...)
		l, err := log.New(context.Background(), log.Config{
			Backend: backend, Signer: signer, Verifier: verifier, Linger: linger,
			OnBatch: func(n int, took time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				batches++
				entries += n
				appendTimes = append(appendTimes, took)
				if err != nil {
					b.Errorf("batch of %d failed: %v", n, err)
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		logs[i] = l
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := l.Close(ctx); err != nil {
				b.Error(err)
			}
		}()
	}
	now := time.Now()
	subs := make([]*log.Submission, b.N)
	for i := range subs {
		body := fmt.Sprintf(`{"id":"bench-%d","outcome":"allow","decided_at":%q,"subject":"agent-7","action":"deploy",`+
			`"resource":"svc/payments/%d","policy":{"id":"prod-deploy","version":"7"},"reasons":["change ticket approved","within window"],`+
			`"context":{"ticket":"OPS-%d","risk":0.25}}`, i, now.UTC().Format(time.RFC3339), i, i)
		d, err := log.ParseDecision([]byte(body), now)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = log.DecisionSubmission(d, "bench")
	}

	b.ResetTimer()
	cpu := startCPU(e)
	start := time.Now()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	g, ctx := errgroup.WithContext(context.Background())
	for s := range submitters {
		l := logs[s%replicas]
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return nil
				}
				t := time.Now()
				if _, err := l.Submit(ctx, subs[i]); err != nil {
					return err
				}
				lat[i] = time.Since(t)
			}
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	reportLatencies(b, lat, took)
	cpu.report(b)
	mu.Lock()
	defer mu.Unlock()
	if batches > 0 {
		b.ReportMetric(float64(entries)/float64(batches), "entries/batch")
		var sum time.Duration
		for _, d := range appendTimes {
			sum += d
		}
		slices.Sort(appendTimes)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(sum)/float64(batches), "append_ms")
		b.ReportMetric(ms(appendTimes[len(appendTimes)/2]), "append_p50_ms")
		b.ReportMetric(ms(appendTimes[min(len(appendTimes)-1, len(appendTimes)*99/100)]), "append_p99_ms")
	}
	phases.report(b)
}

// phaseTimes is a slog.Handler that sums the step durations of the
// Backend's "appended a batch" debug records.
type phaseTimes struct {
	mu      sync.Mutex
	sums    map[string]time.Duration
	batches int
}

func (p *phaseTimes) Enabled(context.Context, slog.Level) bool { return true }
func (p *phaseTimes) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *phaseTimes) WithGroup(string) slog.Handler            { return p }

func (p *phaseTimes) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "appended a batch" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches++
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindDuration {
			p.sums[a.Key] += a.Value.Duration()
		}
		return true
	})
	return nil
}

// report reports the mean time of each step, in ms.
func (p *phaseTimes) report(b *testing.B) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.batches == 0 {
		return
	}
	for k, d := range p.sums {
		b.ReportMetric(float64(d)/float64(p.batches)/float64(time.Millisecond), k+"_ms")
	}
}

// BenchmarkSequencer measures what other sequencers than log.Log's would
// reach on one Backend: one that keeps depth Appends in flight, and one
// that, when a batch is less than half the previous one, lingers up to
// linger for more submissions. log.Log calls Append one batch at a time
// and never lingers, so this is an experiment, not govlog's write path.
// Each submitter gets its receipt as log.Log builds it (Covering, then
// InclusionProof).
func BenchmarkSequencer(b *testing.B) {
	e := need(b)
	for _, c := range []struct {
		depth      int
		linger     time.Duration
		submitters int
	}{{1, 0, 64}, {2, 0, 64}, {1, 10 * time.Millisecond, 64}, {1, 0, 256}, {2, 0, 256}} {
		b.Run(fmt.Sprintf("depth=%d/linger=%v/submitters=%d", c.depth, c.linger, c.submitters), func(b *testing.B) {
			benchSequencer(b, e, c.depth, c.linger, c.submitters)
		})
	}
}

type pipelineReq struct {
	sub  *log.Submission
	done chan struct{}
	res  log.AppendResult
	err  error
}

func benchSequencer(b *testing.B, e *testEnv, depth int, linger time.Duration, submitters int) {
	tree := e.newTree(b)
	backend := e.open(b, tree)
	defer backend.Close()
	signer, _ := logtest.Keys(b)
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
	ctx := context.Background()
	if _, _, err := backend.Append(ctx, nil, sign); err != nil {
		b.Fatal(err)
	}
	reqs := make(chan *pipelineReq, 4096)
	var batches, entries atomic.Int64
	go func() {
		slots := make(chan struct{}, depth)
		prev := 0
		for {
			// Like log.Log: a batch is whatever waits once a slot is free.
			slots <- struct{}{}
			r, ok := <-reqs
			if !ok {
				return
			}
			batch := []*pipelineReq{r}
		fill:
			for len(batch) < 1024 {
				select {
				case r, ok := <-reqs:
					if !ok {
						break fill
					}
					batch = append(batch, r)
				default:
					break fill
				}
			}
			deadline := time.Now().Add(linger)
		wait:
			for len(batch) < prev/2 && time.Now().Before(deadline) {
				select {
				case r, ok := <-reqs:
					if !ok {
						break wait
					}
					batch = append(batch, r)
				case <-time.After(time.Until(deadline)):
				}
			}
			prev = len(batch)
			go func() {
				defer func() { <-slots }()
				es := make([]*log.Entry, len(batch))
				for i, r := range batch {
					var err error
					if es[i], err = log.NewEntry(r.sub, time.Now(), 300*time.Second); err != nil {
						b.Error(err)
					}
				}
				res, _, err := backend.Append(ctx, es, sign)
				batches.Add(1)
				entries.Add(int64(len(batch)))
				for i, r := range batch {
					if err != nil {
						r.err = err
					} else {
						r.res = res[i]
					}
					close(r.done)
				}
			}()
		}
	}()
	defer close(reqs)
	now := time.Now()
	subs := make([]*log.Submission, b.N)
	for i := range subs {
		d, err := log.ParseDecision([]byte(fmt.Sprintf(`{"id":"p-%d","outcome":"allow","decided_at":%q,"subject":"agent-7","action":"deploy","policy":{"id":"prod"}}`,
			i, now.UTC().Format(time.RFC3339))), now)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = log.DecisionSubmission(d, "bench")
	}
	b.ResetTimer()
	start := time.Now()
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range submitters {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return nil
				}
				t := time.Now()
				r := &pipelineReq{sub: subs[i], done: make(chan struct{})}
				reqs <- r
				<-r.done
				if r.err != nil {
					return r.err
				}
				cp, err := backend.Covering(gctx, r.res.Index)
				if err != nil {
					return err
				}
				if _, err := backend.InclusionProof(gctx, r.res.Index, cp.Size); err != nil {
					return err
				}
				lat[i] = time.Since(t)
			}
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	reportLatencies(b, lat, took)
	b.ReportMetric(float64(entries.Load())/float64(batches.Load()), "entries/batch")
}
