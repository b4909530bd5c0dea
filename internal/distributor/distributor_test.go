package distributor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/sqlite"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/witness"
)

// testLog is a real log (log.Log on the SQLite backend).
type testLog struct {
	t    testing.TB
	log  *log.Log
	key  note.Verifier
	vkey string
	n    int
}

func newTestLog(t testing.TB, dir string) *testLog {
	t.Helper()
	ctx := context.Background()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/govlog")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	b, err := sqlite.Open(ctx, filepath.Join(dir, "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := log.New(ctx, log.Config{Backend: b, Signer: signer, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return &testLog{t: t, log: l, key: v, vkey: vkey}
}

// add logs k decisions and returns the index of the last one and the
// checkpoint of its batch.
func (l *testLog) add(k int) (uint64, log.Checkpoint) {
	l.t.Helper()
	var (
		mu   sync.Mutex
		last *log.Result
		wg   sync.WaitGroup
	)
	for range k {
		l.n++
		id := fmt.Sprintf("d-%d", l.n)
		wg.Go(func() {
			d, err := log.ParseDecision(fmt.Appendf(nil, `{"id":%q,"outcome":"deny","decided_at":"2026-01-01T00:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`, id), time.Now())
			if err != nil {
				l.t.Error(err)
				return
			}
			res, err := l.log.Submit(context.Background(), log.DecisionSubmission(d, "anonymous"))
			if err != nil {
				l.t.Error(err)
				return
			}
			mu.Lock()
			if last == nil || res.Receipt.Index > last.Receipt.Index {
				last = res
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if last == nil {
		l.t.Fatal("nothing logged")
	}
	cp, err := l.log.Latest(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	return last.Receipt.Index, cp
}

// testWitness is a witness of this package's sibling, behind a switch.
type testWitness struct {
	w    *witness.Witness
	vkey string
	srv  *httptest.Server
	// down makes the witness answer 503 (or, when drop, close the
	// connection).
	down, drop atomic.Bool
	// requests counts add-checkpoint requests.
	requests atomic.Int64
	// replay, when set, is the answer to every request.
	replay atomic.Pointer[[]byte]
}

func newTestWitness(t testing.TB, name string, logKeys ...string) *testWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(context.Background(), witness.Config{Key: skey, Logs: logKeys, Database: filepath.Join(t.TempDir(), "w.db")})
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{w: w, vkey: vkey}
	h := w.Handler()
	tw.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		tw.requests.Add(1)
		if tw.drop.Load() {
			hj, _ := rw.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		if tw.down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		if b := tw.replay.Load(); b != nil {
			rw.Write(*b)
			return
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() { tw.srv.Close(); w.Close() })
	return tw
}

func policyFor(t testing.TB, quorum string, ws ...*testWitness) *verifier.Policy {
	t.Helper()
	var b strings.Builder
	var names []string
	for i, w := range ws {
		fmt.Fprintf(&b, "witness w%d %s %s\n", i, w.vkey, w.srv.URL)
		names = append(names, fmt.Sprintf("w%d", i))
	}
	fmt.Fprintf(&b, "group g %s %s\nquorum g\n", quorum, strings.Join(names, " "))
	p, err := verifier.ParsePolicy([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newDistributor(t testing.TB, l *testLog, p *verifier.Policy, db string, reg prometheus.Registerer) *Distributor {
	t.Helper()
	d, err := New(context.Background(), Config{
		Source:        l.log.Backend(),
		LogKey:        l.key,
		Policy:        p,
		Database:      db,
		RetryInterval: 50 * time.Millisecond,
		PollInterval:  50 * time.Millisecond,
		MaxBackoff:    100 * time.Millisecond,
		PushTimeout:   5 * time.Second,
		Registerer:    reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitCovering(t testing.TB, d *Distributor, index uint64, within time.Duration) (log.Checkpoint, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return d.WaitCovering(ctx, index)
}

func TestCosigning(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, dir)
	ws := []*testWitness{
		newTestWitness(t, "witness.test/w0", l.vkey),
		newTestWitness(t, "witness.test/w1", l.vkey),
		newTestWitness(t, "witness.test/w2", l.vkey),
	}
	p := policyFor(t, "2", ws...)
	db := filepath.Join(dir, "cosigned.db")
	reg := prometheus.NewRegistry()
	d := newDistributor(t, l, p, db, reg)

	var firsts []log.Checkpoint
	for round := range 5 {
		index, cp := l.add(20)
		d.Notify(cp)
		got, err := waitCovering(t, d, index, 10*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got.Size <= index {
			t.Fatalf("round %d: checkpoint of size %d does not cover %d", round, got.Size, index)
		}
		if _, err := verifier.Checkpoint(got.Note, l.key); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := p.Check(got.Note); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		firsts = append(firsts, got)
	}
	// Covering is the first cosigned checkpoint, every time.
	for _, cp := range firsts {
		again, ok, err := d.Covering(context.Background(), cp.Size-1)
		if err != nil || !ok || !bytes.Equal(again.Note, cp.Note) {
			t.Fatalf("Covering(%d) = %v %v, not the first cosigned checkpoint", cp.Size-1, ok, err)
		}
	}
	// Eventually all three cosign the latest checkpoint, and Cosigned
	// serves it with every cosignature.
	latest, _ := l.log.Latest(context.Background())
	deadline := time.Now().Add(10 * time.Second)
	for countCosigs(d.Cosigned(latest)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the latest checkpoint has %d cosignatures:\n%s", countCosigs(d.Cosigned(latest)), d.Cosigned(latest))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := metricValue(t, reg, "govlog_witness_rounds_total", "result", "satisfied"); n < 5 {
		t.Fatalf("%v satisfied rounds", n)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the same checkpoints cover the same entries; the
	// workers learn the witnesses' sizes from 409s.
	d = newDistributor(t, l, p, db, reg)
	defer d.Close()
	for _, cp := range firsts {
		again, ok, err := d.Covering(context.Background(), cp.Size-1)
		if err != nil || !ok || !bytes.Equal(again.Note, cp.Note) {
			t.Fatalf("after restart, Covering(%d) = %v %v, not the first cosigned checkpoint", cp.Size-1, ok, err)
		}
	}
	index, cp := l.add(5)
	d.Notify(cp)
	if _, err := waitCovering(t, d, index, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(t, reg, "govlog_witness_pushes_total", "result", "conflict"); n < 2 {
		t.Fatalf("%v conflicts after a restart, want the 409s that taught the sizes", n)
	}
	if n := metricValue(t, reg, "govlog_witness_rounds_total", "result", "satisfied"); n < 1 {
		t.Fatalf("%v satisfied rounds", n)
	}
}

// TestQuorumDown: with one witness of an all-of-two policy down, nothing is
// cosigned; once it is back, cosigning resumes by itself, and the first
// checkpoint cosigned covers what was logged meanwhile.
func TestQuorumDown(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			dir := t.TempDir()
			l := newTestLog(t, dir)
			k := l.vkey
			ws := []*testWitness{newTestWitness(t, "witness.test/w0", k), newTestWitness(t, "witness.test/w1", k)}
			d := newDistributor(t, l, policyFor(t, "all", ws...), filepath.Join(dir, "c.db"), nil)
			defer d.Close()
			index, cp := l.add(3)
			d.Notify(cp)
			if _, err := waitCovering(t, d, index, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if drop {
				ws[1].drop.Store(true)
			} else {
				ws[1].down.Store(true)
			}
			index, cp = l.add(3)
			d.Notify(cp)
			_, err := waitCovering(t, d, index, 300*time.Millisecond)
			var nce *NotCosignedError
			if !errors.Is(err, ErrNotCosigned) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &nce) {
				t.Fatalf("with the quorum down: %v", err)
			}
			// The error names the witness that did not cosign, and only it.
			if len(nce.Missing) != 1 || !strings.HasPrefix(nce.Missing[0], "witness.test/w1 (") || nce.Index != index {
				t.Fatalf("NotCosignedError %+v", nce)
			}
			// Sync mode's readiness: stuck for longer than asked.
			if err := d.Ready(time.Hour); err != nil {
				t.Fatalf("Ready(1h) with the quorum down for a moment: %v", err)
			}
			if err := d.Ready(100 * time.Millisecond); !errors.Is(err, ErrNotCosigned) {
				t.Fatalf("Ready(100ms) with the quorum down for 300ms: %v", err)
			}
			before := ws[1].requests.Load()
			time.Sleep(300 * time.Millisecond)
			if ws[1].requests.Load() == before {
				t.Fatal("the witness that is down is not retried")
			}
			ws[1].drop.Store(false)
			ws[1].down.Store(false)
			got, err := waitCovering(t, d, index, 10*time.Second)
			if err != nil {
				t.Fatalf("after the witness came back: %v", err)
			}
			if got.Size != cp.Size {
				t.Fatalf("cosigned size %d, want %d", got.Size, cp.Size)
			}
			if err := d.Ready(0); err != nil {
				t.Fatalf("Ready once cosigning caught up: %v", err)
			}
		})
	}
}

// TestBadWitness: answers that are not a valid cosignature by the
// witness's key on the checkpoint pushed never count.
func TestBadWitness(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, dir)
	good := newTestWitness(t, "witness.test/good", l.vkey)
	// liar answers with cosignatures by another key of its name.
	impostor := newTestWitness(t, "witness.test/liar", l.vkey)
	_, liarKey, err := witness.GenerateKey("witness.test/liar")
	if err != nil {
		t.Fatal(err)
	}
	liar := &testWitness{vkey: liarKey, srv: impostor.srv}
	// stale answers with its real cosignature of an older checkpoint.
	stale := newTestWitness(t, "witness.test/stale", l.vkey)
	_, cp := l.add(2)
	resp, err := http.Post(stale.srv.URL+"/add-checkpoint", "", bytes.NewReader(fmt.Appendf(nil, "old 0\n\n%s", cp.Note)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	c := body.Bytes()
	stale.replay.Store(&c)

	d := newDistributor(t, l, policyFor(t, "2", good, liar, stale), filepath.Join(dir, "c.db"), nil)
	defer d.Close()
	index, cp := l.add(2)
	d.Notify(cp)
	if got, err := waitCovering(t, d, index, time.Second); !errors.Is(err, ErrNotCosigned) {
		t.Fatalf("cosigned by one good witness only: %v\n%s", err, got.Note)
	}
	if n := countCosigs(d.Cosigned(cp)); n != 1 {
		t.Fatalf("%d cosignatures kept, want good's only:\n%s", n, d.Cosigned(cp))
	}
	// With the stale witness honest again, the quorum is reached.
	stale.replay.Store(nil)
	if _, err := waitCovering(t, d, index, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStoreOfAnotherLog(t *testing.T) {
	dir := t.TempDir()
	a := newTestLog(t, filepath.Join(mkdir(t, dir, "a")))
	b := newTestLog(t, filepath.Join(mkdir(t, dir, "b")))
	w := newTestWitness(t, "witness.test/w0", a.vkey)
	db := filepath.Join(dir, "c.db")
	d := newDistributor(t, a, policyFor(t, "any", w), db, nil)
	index, cp := a.add(3)
	d.Notify(cp)
	if _, err := waitCovering(t, d, index, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	d.Close()
	b.add(5)
	_, err := New(context.Background(), Config{Source: b.log.Backend(), LogKey: b.key, Policy: policyFor(t, "any", w), Database: db})
	if !errors.Is(err, log.ErrFork) {
		t.Fatalf("New on another log's store: %v", err)
	}
}

func mkdir(t *testing.T, dir, name string) string {
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func countCosigs(n []byte) int {
	return bytes.Count(n, []byte("\n— witness.test/"))
}

// metricValue sums the samples of a counter or gauge of reg that have the
// given label pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	for _, m := range gathered(t, reg, name, labels...) {
		sum += value(m)
	}
	return sum
}

// gathered returns the samples of reg's metric name that have the given
// label pairs.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestPolicyChange: checkpoints stored under an earlier policy do not cover
// entries under a new one; the next checkpoint the new quorum cosigns does.
func TestPolicyChange(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, dir)
	w0 := newTestWitness(t, "witness.test/w0", l.vkey)
	w1 := newTestWitness(t, "witness.test/w1", l.vkey)
	db := filepath.Join(dir, "c.db")
	d := newDistributor(t, l, policyFor(t, "any", w0), db, nil)
	index, cp := l.add(4)
	d.Notify(cp)
	first, err := waitCovering(t, d, index, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	p1 := policyFor(t, "any", w1)
	d = newDistributor(t, l, p1, db, nil)
	defer d.Close()
	if _, ok, err := d.Covering(context.Background(), index); ok || err != nil {
		t.Fatalf("a checkpoint of the old policy covers entry %d under the new one: %v", index, err)
	}
	_, cp = l.add(1)
	d.Notify(cp)
	got, err := waitCovering(t, d, index, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size <= first.Size || p1.Check(got.Note) != nil {
		t.Fatalf("covered by size %d (first was %d): %v", got.Size, first.Size, p1.Check(got.Note))
	}
}

// TestRoundInterval: with a RoundInterval, checkpoints that come faster
// than it are not each pushed: rounds start at most once per interval, and
// the newest checkpoint is still cosigned.
func TestRoundInterval(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, dir)
	w := newTestWitness(t, "witness.test/w0", l.vkey)
	const interval = 300 * time.Millisecond
	d, err := New(context.Background(), Config{
		Source:        l.log.Backend(),
		LogKey:        l.key,
		Policy:        policyFor(t, "1", w),
		Database:      filepath.Join(dir, "c.db"),
		RoundInterval: interval,
		RetryInterval: 50 * time.Millisecond,
		PollInterval:  50 * time.Millisecond,
		PushTimeout:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	var index uint64
	var cp log.Checkpoint
	for range 40 {
		index, cp = l.add(1)
		d.Notify(cp)
		time.Sleep(25 * time.Millisecond)
	}
	got, err := waitCovering(t, d, index, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != cp.Size {
		t.Fatalf("cosigned size %d, want the newest, %d", got.Size, cp.Size)
	}
	// At most one round per interval, plus the first.
	most := int64(time.Since(start)/interval) + 1
	if n := w.requests.Load(); n > most || n < 2 {
		t.Fatalf("%d pushes in %v at one round per %v: want 2 to %d", n, time.Since(start).Round(time.Millisecond), interval, most)
	}
}
