package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// The tests in this file go through the log.Log sequencer, as the server
// does.

// clock is a settable Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// gated holds the sequencer inside Append while closed is not: it lets a
// test fill the queue deterministically.
type gated struct {
	log.Backend
	mu      sync.Mutex
	gate    chan struct{} // nil: Append goes through
	entered chan struct{} // one value each time Append starts waiting
	// slowReads delays Covering, as a loaded storage would.
	slowReads time.Duration
}

func (g *gated) Covering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	g.mu.Lock()
	d := g.slowReads
	g.mu.Unlock()
	time.Sleep(d)
	return g.Backend.Covering(ctx, index)
}

func newGated(b log.Backend) *gated {
	return &gated{Backend: b, entered: make(chan struct{}, 1000)}
}

func (g *gated) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
	return g.Backend.Append(ctx, batch, sign)
}

func (g *gated) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

func (g *gated) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// faulty injects storage failures into Append: fail refuses the batch
// before the backend sees it; lose lets the backend append it, then reports
// a failure (the acknowledgement was lost).
type faulty struct {
	log.Backend
	mu         sync.Mutex
	fail, lose error
}

func (f *faulty) set(fail, lose error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.lose = fail, lose
}

func (f *faulty) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	f.mu.Lock()
	fail, lose := f.fail, f.lose
	f.mu.Unlock()
	if fail != nil {
		return nil, log.Checkpoint{}, fail
	}
	res, cp, err := f.Backend.Append(ctx, batch, sign)
	if err == nil && lose != nil {
		return nil, log.Checkpoint{}, lose
	}
	return res, cp, err
}

// newLog starts a Log on b with the test key. The Log is closed when the
// test ends, unless it already was.
func (h *harness) newLog(t *testing.T, b log.Backend, cfg log.Config) *log.Log {
	t.Helper()
	cfg.Backend, cfg.Signer, cfg.Verifier = b, h.signer, h.verifier
	l, err := log.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("log.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("failed to close the log: %v", err)
		}
	})
	return l
}

// submit submits and checks the receipt; it fails the test on an error.
func (h *harness) submit(t *testing.T, l *log.Log, s *log.Submission) *log.Result {
	t.Helper()
	res, err := l.Submit(context.Background(), s)
	if err != nil {
		t.Fatalf("Submit(%s %q): %v", s.Kind, s.ID, err)
	}
	h.checkResult(t, res, s)
	return res
}

// checkResult checks a Result of Submit or Lookup for s.
func (h *harness) checkResult(t *testing.T, res *log.Result, s *log.Submission) {
	t.Helper()
	cp := h.verifyReceipt(t, res.Receipt)
	if !bytes.Equal(cp.Note, res.Checkpoint.Note) || cp.Size != res.Checkpoint.Size || cp.Hash != res.Checkpoint.Hash {
		t.Fatalf("Result.Checkpoint is not the receipt's checkpoint")
	}
	if res.Receipt.ID != s.ID || res.Receipt.Artifact != "" {
		t.Fatalf("receipt id %q artifact %q; want id %q and no artifact", res.Receipt.ID, res.Receipt.Artifact, s.ID)
	}
	p, err := log.ParseEntry(res.Receipt.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != s.Kind || p.Submitter != s.Submitter || !bytes.Equal(p.Content, s.Content) || !log.SameSubmission(res.Receipt.Entry, s) {
		t.Fatalf("receipt %q holds another submission", s.ID)
	}
	if !p.LoggedAt.Equal(res.LoggedAt) || !p.AuthorizedUntil.Equal(res.AuthorizedUntil) {
		t.Fatalf("Result times %v, %v differ from the entry's %v, %v", res.LoggedAt, res.AuthorizedUntil, p.LoggedAt, p.AuthorizedUntil)
	}
	if s.Allow != !res.AuthorizedUntil.IsZero() {
		t.Fatalf("AuthorizedUntil %v for Allow=%v", res.AuthorizedUntil, s.Allow)
	}
}

func testLogSubmit(t *testing.T, h *harness) {
	clk := &clock{now: time.Date(2026, 1, 2, 4, 4, 5, 987654321, time.FixedZone("CET", 3600))}
	l := h.newLog(t, h.backend(t), log.Config{Clock: clk.Now, ArtifactTTL: 90*time.Second + 500*time.Millisecond})
	if l.Origin() != "example.com/govlog" {
		t.Fatalf("Origin() = %q", l.Origin())
	}
	ctx := context.Background()
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	cp0, err := l.Latest(ctx)
	if err != nil || cp0.Size != 0 {
		t.Fatalf("Latest of a new Log: size %d, %v; want the size-0 checkpoint", cp0.Size, err)
	}
	h.checkpoint(t, cp0)

	a := h.submit(t, l, allow(t, "d-1"))
	wantLogged := clk.Now().UTC()
	if !a.Created || a.Receipt.Index != 0 || !a.LoggedAt.Equal(wantLogged) || a.LoggedAt.Location() != time.UTC {
		t.Fatalf("allow: Created %v index %d logged_at %v; want a new entry 0 logged at %v UTC", a.Created, a.Receipt.Index, a.LoggedAt, wantLogged)
	}
	// authorized_until = logged_at truncated to the second + the TTL in
	// whole seconds.
	if want := time.Date(2026, 1, 2, 3, 5, 35, 0, time.UTC); !a.AuthorizedUntil.Equal(want) {
		t.Fatalf("authorized_until %v, want %v", a.AuthorizedUntil, want)
	}
	if !bytes.Contains(a.Receipt.Entry, []byte(`"authorized_until":"2026-01-02T03:05:35Z"`)) ||
		!bytes.Contains(a.Receipt.Entry, []byte(`"logged_at":"2026-01-02T03:04:05.987654321Z"`)) {
		t.Fatalf("entry does not carry the expected times: %s", a.Receipt.Entry)
	}
	p, err := log.ParseEntry(a.Receipt.Entry)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := log.NewArtifactClaims(l.Origin(), "", p.Decision, a)
	if err != nil {
		t.Fatalf("NewArtifactClaims: %v", err)
	}
	if claims.Govlog.Index != 0 || claims.Govlog.TreeSize != a.Checkpoint.Size || claims.Expiry != a.AuthorizedUntil.Unix() || claims.IssuedAt != wantLogged.Unix() {
		t.Fatalf("artifact claims do not match the receipt: %+v", claims)
	}

	d := h.submit(t, l, deny(t, "d-2"))
	if !d.Created || d.Receipt.Index != 1 || !d.AuthorizedUntil.IsZero() {
		t.Fatalf("deny: Created %v index %d authorized_until %v", d.Created, d.Receipt.Index, d.AuthorizedUntil)
	}
	if _, err := log.NewArtifactClaims(l.Origin(), "", decisionOf(t, d), d); err == nil {
		t.Fatal("NewArtifactClaims accepted a deny")
	}
	e := h.submit(t, l, execution(t, "rt", "e-1", "d-1", "succeeded"))
	if !e.Created || e.Receipt.Index != 2 {
		t.Fatalf("execution: Created %v index %d", e.Created, e.Receipt.Index)
	}
	latest, err := l.Latest(ctx)
	if err != nil || latest.Size != 3 {
		t.Fatalf("Latest: size %d, %v; want 3", latest.Size, err)
	}
	if l.Backend() == nil {
		t.Fatal("Backend() is nil")
	}
}

func decisionOf(t *testing.T, r *log.Result) *log.Decision {
	t.Helper()
	p, err := log.ParseEntry(r.Receipt.Entry)
	if err != nil || p.Decision == nil {
		t.Fatalf("receipt %q holds no decision: %v", r.Receipt.ID, err)
	}
	return p.Decision
}

func testLogResubmission(t *testing.T, h *harness) {
	clk := &clock{now: baseTime()}
	l := h.newLog(t, h.backend(t), log.Config{Clock: clk.Now})
	first := h.submit(t, l, allow(t, "d-1"))
	exec := h.submit(t, l, execution(t, "rt", "e-1", "d-1", "started"))
	for i := range 5 {
		clk.Set(baseTime().Add(time.Duration(i+1) * time.Minute))
		h.submit(t, l, deny(t, fmt.Sprintf("other-%d", i)))
	}
	for _, c := range []struct {
		sub  *log.Submission
		orig *log.Result
	}{{allow(t, "d-1"), first}, {execution(t, "rt", "e-1", "d-1", "started"), exec}} {
		again := h.submit(t, l, c.sub)
		if again.Created {
			t.Fatalf("resubmission of %q: Created", c.sub.ID)
		}
		// The original receipt, unchanged: same checkpoint, proof and
		// times, even though the log grew and the clock moved on.
		if !reflect.DeepEqual(again.Receipt, c.orig.Receipt) || !again.LoggedAt.Equal(c.orig.LoggedAt) || !again.AuthorizedUntil.Equal(c.orig.AuthorizedUntil) {
			t.Fatalf("resubmission of %q did not return the original receipt:\n%+v\nwant\n%+v", c.sub.ID, again.Receipt, c.orig.Receipt)
		}
	}
	_, err := l.Submit(context.Background(), deny(t, "d-1"))
	wantErr(t, "Submit of another decision with a logged id", err, log.ErrIDConflict)
}

func testLogSubmitAll(t *testing.T, h *harness) {
	ctx := context.Background()
	var mu sync.Mutex
	var batches []int
	// MaxBatch 2: a group is appended whole all the same.
	l := h.newLog(t, h.backend(t), log.Config{MaxBatch: 2, OnBatch: func(entries int, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			batches = append(batches, entries)
		}
	}})
	if out, err := l.SubmitAll(ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("SubmitAll of nothing: %v, %v", out, err)
	}
	h.submit(t, l, allow(t, "before"))
	subs := []*log.Submission{
		allow(t, "a-1"),
		decision(t, "anonymous", "c-1", log.OutcomeAllow, map[string]any{"parent_id": "a-1"}), // a parent earlier in the group
		allow(t, "a-1"), // a repeat: a resubmission of the first
		deny(t, "a-1"),  // the same id, other content
		decision(t, "anonymous", "c-2", log.OutcomeAllow, map[string]any{"parent_id": "later"}), // a parent later in the group
		allow(t, "later"),
		execution(t, "rt", "e-1", "c-1", "started"), // a decision earlier in the group
		allow(t, "before"),                          // a resubmission of an entry logged before
	}
	out, err := l.SubmitAll(ctx, subs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(subs) {
		t.Fatalf("%d outcomes for %d submissions", len(out), len(subs))
	}
	wantErrs := map[int]error{3: log.ErrIDConflict, 4: log.ErrUnknownParent}
	for i, o := range out {
		if want, ok := wantErrs[i]; ok {
			wantErr(t, fmt.Sprintf("submission %d (%q)", i, subs[i].ID), o.Err, want)
			continue
		}
		if o.Err != nil {
			t.Fatalf("submission %d (%q): %v", i, subs[i].ID, o.Err)
		}
		h.checkResult(t, o.Result, subs[i])
		if created := i != 2 && i != 7; o.Result.Created != created {
			t.Errorf("submission %d (%q): Created %v, want %v", i, subs[i].ID, o.Result.Created, created)
		}
	}
	// The group was one Append, whatever MaxBatch says.
	mu.Lock()
	if last := batches[len(batches)-1]; last != len(subs) {
		t.Errorf("the group of %d was appended in batches of %v", len(subs), batches)
	}
	mu.Unlock()
	// The repeat got the first one's receipt; the entries it appended are
	// all in the one checkpoint, each after what it names.
	if !reflect.DeepEqual(out[2].Result.Receipt, out[0].Result.Receipt) {
		t.Errorf("the repeat got another receipt than the first:\n%+v\n%+v", out[2].Result.Receipt, out[0].Result.Receipt)
	}
	for _, i := range []int{0, 1, 5, 6} {
		if out[i].Result.Receipt.Checkpoint != out[0].Result.Receipt.Checkpoint {
			t.Errorf("submission %d is not on the group's checkpoint", i)
		}
	}
	if idx := func(i int) uint64 { return out[i].Result.Receipt.Index }; idx(1) <= idx(0) || idx(6) <= idx(1) {
		t.Errorf("indices %d, %d, %d: an entry before what it names", idx(0), idx(1), idx(6))
	}
	cp, err := l.Latest(ctx)
	if err != nil || cp.Size != 5 {
		t.Fatalf("size %d, %v; want the entry before and the 4 the group appended", cp.Size, err)
	}
}

func testLogRefusals(t *testing.T, h *harness) {
	l := h.newLog(t, h.backend(t), log.Config{})
	h.submit(t, l, allow(t, "ok"))
	h.submit(t, l, deny(t, "no"))
	h.submit(t, l, decision(t, "alice", "s-1", log.OutcomeAllow, map[string]any{"sequence": 1}))
	tests := []struct {
		name string
		sub  *log.Submission
		want error
	}{
		{"id conflict", decision(t, "mallory", "ok", log.OutcomeAllow, nil), log.ErrIDConflict},
		{"sequence conflict", decision(t, "alice", "s-2", log.OutcomeAllow, map[string]any{"sequence": 1}), log.ErrSequenceConflict},
		{"unknown parent", decision(t, "alice", "c-1", log.OutcomeAllow, map[string]any{"parent_id": "nope"}), log.ErrUnknownParent},
		{"parent denied", decision(t, "alice", "c-2", log.OutcomeAllow, map[string]any{"parent_id": "no"}), log.ErrParentDenied},
		{"revocation of a deny", revocation(t, "anonymous", "r-1", "no"), log.ErrNotRevocable},
		{"revocation of an unknown decision", revocation(t, "anonymous", "r-2", "nope"), log.ErrUnknownDecision},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Submit(context.Background(), tt.sub)
			wantErr(t, "Submit", err, tt.want)
		})
	}
	cp, err := l.Latest(context.Background())
	if err != nil || cp.Size != 3 {
		t.Fatalf("refused submissions were appended: size %d, %v; want 3", cp.Size, err)
	}
}

func testLogLookup(t *testing.T, h *harness) {
	ctx := context.Background()
	l := h.newLog(t, h.backend(t), log.Config{})
	subs := []*log.Submission{allow(t, "x"), deny(t, "y"), execution(t, "rt", "x", "x", "started")}
	var orig []*log.Result
	for _, s := range subs {
		orig = append(orig, h.submit(t, l, s))
	}
	h.submit(t, l, allow(t, "z"))
	latest, _ := l.Latest(ctx)
	for i, s := range subs {
		res, err := l.Lookup(ctx, s.Kind, s.ID)
		if err != nil {
			t.Fatalf("Lookup(%s %q): %v", s.Kind, s.ID, err)
		}
		h.checkResult(t, res, s)
		if res.Receipt.Index != orig[i].Receipt.Index || !bytes.Equal(res.Receipt.Entry, orig[i].Receipt.Entry) {
			t.Fatalf("Lookup(%s %q) returned entry %d, want %d", s.Kind, s.ID, res.Receipt.Index, orig[i].Receipt.Index)
		}
		if !bytes.Equal(res.Checkpoint.Note, latest.Note) {
			t.Fatalf("Lookup(%s %q) is against size %d, want the latest (%d)", s.Kind, s.ID, res.Checkpoint.Size, latest.Size)
		}
	}
	_, err := l.Lookup(ctx, log.KindDecision, "nope")
	wantErr(t, "Lookup(nope)", err, log.ErrNotFound)
	_, err = l.Lookup(ctx, log.KindExecution, "y")
	wantErr(t, "Lookup(execution y)", err, log.ErrNotFound)
}

func testLogConcurrent(t *testing.T, h *harness) {
	const writers, each = 16, 12
	ctx := context.Background()
	var batches sync.Map
	l := h.newLog(t, h.backend(t), log.Config{
		MaxBatch: 16,
		OnBatch: func(entries int, took time.Duration, err error) {
			batches.Store(entries, true)
		},
	})
	type got struct {
		sub *log.Submission
		res *log.Result
	}
	results := make(chan got, writers*each)
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		submitter := fmt.Sprintf("writer-%d", w)
		wg.Go(func() {
			for i := range each {
				var s *log.Submission
				switch {
				case i%3 == 2: // an execution of the allow just logged
					s = execution(t, submitter, fmt.Sprintf("w%d-e%d", w, i), fmt.Sprintf("w%d-%d", w, i-2), "succeeded")
				case i%3 == 1:
					s = decision(t, submitter, fmt.Sprintf("w%d-%d", w, i), log.OutcomeDeny, map[string]any{"sequence": i + 1})
				default:
					s = decision(t, submitter, fmt.Sprintf("w%d-%d", w, i), log.OutcomeAllow, map[string]any{"sequence": i + 1})
				}
				res, err := l.Submit(ctx, s)
				if err != nil {
					errs <- fmt.Errorf("Submit(%q): %w", s.ID, err)
					return
				}
				results <- got{s, res}
			}
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	latest, err := l.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.checkpoint(t, latest)
	seen := make(map[uint64]string)
	for g := range results {
		h.checkResult(t, g.res, g.sub)
		if !g.res.Created {
			t.Fatalf("%q: not Created", g.sub.ID)
		}
		if other, ok := seen[g.res.Receipt.Index]; ok {
			t.Fatalf("%q and %q both got index %d", other, g.sub.ID, g.res.Receipt.Index)
		}
		seen[g.res.Receipt.Index] = g.sub.ID
		if g.res.Checkpoint.Size > latest.Size {
			t.Fatalf("a receipt's checkpoint (size %d) is beyond the latest (%d)", g.res.Checkpoint.Size, latest.Size)
		}
		verifyConsistency(t, l.Backend(), g.res.Checkpoint.Size, latest.Size, g.res.Checkpoint.Hash, latest.Hash)
	}
	if len(seen) != writers*each || latest.Size != writers*each {
		t.Fatalf("%d distinct indices, tree size %d; want %d", len(seen), latest.Size, writers*each)
	}
	batches.Range(func(k, _ any) bool {
		if n := k.(int); n < 1 || n > 16 {
			t.Errorf("a batch of %d entries; MaxBatch is 16", n)
		}
		return true
	})
}

func testLogReopen(t *testing.T, h *harness) {
	ctx := context.Background()
	l := h.newLog(t, h.backend(t), log.Config{})
	subs := []*log.Submission{allow(t, "a"), deny(t, "b"), execution(t, "rt", "c", "a", "failed")}
	var orig []*log.Result
	for _, s := range subs {
		orig = append(orig, h.submit(t, l, s))
	}
	before, _ := l.Latest(ctx)
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	l = h.newLog(t, h.backend(t), log.Config{})
	latest, err := l.Latest(ctx)
	if err != nil || !bytes.Equal(latest.Note, before.Note) {
		t.Fatalf("Latest after reopen: %v; want the checkpoint before close", err)
	}
	for i, s := range subs {
		res, err := l.Lookup(ctx, s.Kind, s.ID)
		if err != nil {
			t.Fatalf("Lookup(%q) after reopen: %v", s.ID, err)
		}
		h.checkResult(t, res, s)
		again := h.submit(t, l, s)
		if again.Created || !reflect.DeepEqual(again.Receipt, orig[i].Receipt) {
			t.Fatalf("resubmission of %q after reopen did not return the original receipt", s.ID)
		}
	}
	next := h.submit(t, l, allow(t, "d"))
	if !next.Created || next.Receipt.Index != 3 {
		t.Fatalf("first entry after reopen: index %d, want 3", next.Receipt.Index)
	}
	verifyConsistency(t, l.Backend(), before.Size, next.Checkpoint.Size, before.Hash, next.Checkpoint.Hash)
}

func testLogWrongKey(t *testing.T, h *harness) {
	ctx := context.Background()
	l := h.newLog(t, h.backend(t), log.Config{})
	h.submit(t, l, allow(t, "a"))
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	other, otherV := OtherKeys(t)
	b := h.backend(t)
	_, err := log.New(ctx, log.Config{Backend: b, Signer: other, Verifier: otherV})
	wantErr(t, "log.New with another key on an existing log", err, log.ErrFork)
	_, err = log.New(ctx, log.Config{Backend: b, Signer: h.signer, Verifier: otherV})
	if err == nil {
		t.Fatal("log.New accepted a Verifier that is not the Signer's")
	}
	// The storage is untouched: the right key still opens it.
	l = h.newLog(t, b, log.Config{})
	if cp, err := l.Latest(ctx); err != nil || cp.Size != 1 {
		t.Fatalf("Latest: size %d, %v; want 1", cp.Size, err)
	}
}

func testLogClockBackwards(t *testing.T, h *harness) {
	ctx := context.Background()
	t0 := baseTime().Add(123456789)
	clk := &clock{now: t0}
	l := h.newLog(t, h.backend(t), log.Config{Clock: clk.Now, ArtifactTTL: 60 * time.Second})
	check := func(r *log.Result, want time.Time) {
		t.Helper()
		if !r.LoggedAt.Equal(want) {
			t.Fatalf("%q logged at %v, want %v", r.Receipt.ID, r.LoggedAt, want)
		}
		if wantUntil := want.Truncate(time.Second).Add(time.Minute); !r.AuthorizedUntil.Equal(wantUntil) {
			t.Fatalf("%q authorized until %v, want %v", r.Receipt.ID, r.AuthorizedUntil, wantUntil)
		}
	}
	check(h.submit(t, l, allow(t, "a")), t0)
	clk.Set(t0.Add(-time.Hour))
	check(h.submit(t, l, allow(t, "b")), t0) // held
	t1 := t0.Add(2 * time.Second)
	clk.Set(t1)
	check(h.submit(t, l, allow(t, "c")), t1)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A restarted log holds logged_at at its last entry's.
	clk.Set(t0.Add(-24 * time.Hour))
	l = h.newLog(t, h.backend(t), log.Config{Clock: clk.Now, ArtifactTTL: 60 * time.Second})
	check(h.submit(t, l, allow(t, "d")), t1)
}

// submitted is the outcome of a background Submit.
type submitted struct {
	sub *log.Submission
	res *log.Result
	err error
}

// submitAsync submits in the background and reports to out.
func submitAsync(l *log.Log, s *log.Submission, out chan<- submitted) {
	go func() {
		res, err := l.Submit(context.Background(), s)
		out <- submitted{s, res, err}
	}()
}

// fillQueue starts submissions in the background, one at a time, until one
// is refused with ErrPushback: the queue is then full, since the sequencer
// is held in Append (and it holds exactly MaxPending submissions). The
// outcomes of the others, except further ErrPushback refusals, go to out.
func fillQueue(t *testing.T, l *log.Log, next func() *log.Submission, out chan<- submitted) {
	t.Helper()
	all := make(chan submitted, 1000)
	for started := 1; started < 1000; started++ {
		submitAsync(l, next(), all)
		select {
		case o := <-all:
			if !errors.Is(o.err, log.ErrPushback) {
				t.Fatalf("Submit(%q) returned while the sequencer is held: %v", o.sub.ID, o.err)
			}
			go func() {
				for range started - 1 {
					if o := <-all; !errors.Is(o.err, log.ErrPushback) {
						out <- o
					}
				}
			}()
			return
		case <-time.After(20 * time.Millisecond):
			// Queued, or refused late: then the next round sees it.
		}
	}
	t.Fatal("the queue never filled")
}

func testLogPushback(t *testing.T, h *harness) {
	ctx := context.Background()
	g := newGated(h.backend(t))
	l := h.newLog(t, g, log.Config{MaxPending: 2})
	g.hold()
	out := make(chan submitted, 100)
	n := 0
	next := func() *log.Submission {
		n++
		return allow(t, fmt.Sprintf("p-%d", n))
	}
	submitAsync(l, next(), out)
	<-g.entered // the sequencer holds the first submission
	fillQueue(t, l, next, out)
	// The queue is full: Submit refuses at once rather than waiting.
	start := time.Now()
	_, err := l.Submit(ctx, next())
	wantErr(t, "Submit on a full queue", err, log.ErrPushback)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Submit on a full queue took %v", took)
	}
	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready while pushing back: %v", err)
	}
	g.release()
	// The held submission and the two queued ones are logged.
	for range 3 {
		o := <-out
		if o.err != nil {
			t.Fatalf("queued submission %q failed: %v", o.sub.ID, o.err)
		}
		h.checkResult(t, o.res, o.sub)
	}
	cp, err := l.Latest(ctx)
	if err != nil || cp.Size != 3 {
		t.Fatalf("size %d, %v; want the held and the 2 queued submissions", cp.Size, err)
	}
	h.submit(t, l, allow(t, "after"))
	// A group larger than MaxPending is taken when nothing else waits.
	group, err := l.SubmitAll(ctx, []*log.Submission{next(), next(), next()})
	if err != nil {
		t.Fatalf("SubmitAll of 3 with MaxPending 2 on an empty queue: %v", err)
	}
	for i, o := range group {
		if o.Err != nil {
			t.Fatalf("SubmitAll item %d: %v", i, o.Err)
		}
	}
}

func testLogCloseDrains(t *testing.T, h *harness) {
	ctx := context.Background()
	g := newGated(h.backend(t))
	l := h.newLog(t, g, log.Config{MaxPending: 3})
	g.hold()
	g.mu.Lock()
	g.slowReads = 20 * time.Millisecond // Close must wait for the receipts
	g.mu.Unlock()
	out := make(chan submitted, 100)
	n := 0
	next := func() *log.Submission {
		n++
		return allow(t, fmt.Sprintf("q-%d", n))
	}
	submitAsync(l, next(), out)
	<-g.entered
	fillQueue(t, l, next, out)
	const queued = 3 // MaxPending

	closed := make(chan error, 1)
	go func() { closed <- l.Close(ctx) }()
	// Close refuses new submissions at once, and says so in Ready.
	deadline := time.Now().Add(5 * time.Second)
	for l.Ready(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready still nil 5s after Close started")
		}
		time.Sleep(time.Millisecond)
	}
	wantErr(t, "Ready during Close", l.Ready(ctx), log.ErrUnavailable)
	_, err := l.Submit(ctx, allow(t, "late"))
	wantErr(t, "Submit during Close", err, log.ErrUnavailable)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the held batch was committed", err)
	default:
	}

	g.release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Every submission taken before Close was logged and answered with a
	// valid receipt.
	for range 1 + queued {
		o := <-out
		if o.err != nil {
			t.Fatalf("submission %q, taken before Close, failed: %v", o.sub.ID, o.err)
		}
		h.checkResult(t, o.res, o.sub)
	}
	b := h.backend(t)
	cp, err := b.Latest(ctx)
	if err != nil || cp.Size != 1+uint64(queued) {
		t.Fatalf("after Close: size %d, %v; want %d", cp.Size, err, 1+queued)
	}
	if _, _, err := b.Lookup(ctx, log.KindDecision, "late"); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("a submission refused during Close was logged: %v", err)
	}
}

func testLogTooLarge(t *testing.T, h *harness) {
	ctx := context.Background()
	g := newGated(h.backend(t))
	l := h.newLog(t, g, log.Config{MaxPending: 2})
	small := allow(t, "small")
	e, err := log.NewEntry(small, baseTime(), 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	overhead := len(e.Leaf) - len(small.Content)
	largest := bigDecision(t, "largest", log.MaxEntryBytes-overhead)
	tooLarge := bigDecision(t, "too-large", log.MaxEntryBytes-overhead+1)

	// The oversized entry is refused alone: the entries of its batch are
	// logged.
	g.hold()
	out := make(chan submitted, 10)
	submitAsync(l, small, out)
	<-g.entered
	queue := []*log.Submission{tooLarge, largest}
	n := 0
	fillQueue(t, l, func() *log.Submission {
		if len(queue) == 0 {
			n++
			return allow(t, fmt.Sprintf("filler-%d", n))
		}
		s := queue[0]
		queue = queue[1:]
		return s
	}, out)
	g.release()
	for range 3 {
		o := <-out
		switch o.sub.ID {
		case "too-large":
			wantErr(t, "an entry one byte over the limit", o.err, log.ErrTooLarge)
		case "largest":
			if o.err != nil {
				t.Fatalf("an entry of exactly %d bytes: %v", log.MaxEntryBytes, o.err)
			}
			if len(o.res.Receipt.Entry) != log.MaxEntryBytes {
				t.Fatalf("the largest entry is %d bytes, want %d", len(o.res.Receipt.Entry), log.MaxEntryBytes)
			}
			h.checkResult(t, o.res, o.sub)
		default:
			if o.err != nil {
				t.Fatalf("%q: %v", o.sub.ID, o.err)
			}
		}
	}
	if _, err := l.Lookup(ctx, log.KindDecision, "too-large"); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("the oversized entry was logged: %v", err)
	}
}

func testLogConfig(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	other, otherV := OtherKeys(t)
	tests := []struct {
		name string
		cfg  log.Config
	}{
		{"no backend", log.Config{Signer: h.signer, Verifier: h.verifier}},
		{"no signer", log.Config{Backend: b, Verifier: h.verifier}},
		{"no verifier", log.Config{Backend: b, Signer: h.signer}},
		{"verifier of another key", log.Config{Backend: b, Signer: h.signer, Verifier: otherV}},
		{"signer of another key", log.Config{Backend: b, Signer: other, Verifier: h.verifier}},
		{"TTL under a second", log.Config{Backend: b, Signer: h.signer, Verifier: h.verifier, ArtifactTTL: 999 * time.Millisecond}},
		{"negative TTL", log.Config{Backend: b, Signer: h.signer, Verifier: h.verifier, ArtifactTTL: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := log.New(ctx, tt.cfg); err == nil {
				_ = l.Close(ctx)
				t.Fatal("log.New accepted the config")
			}
		})
	}
	// None of them touched the storage.
	if _, err := b.Latest(ctx); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("a refused config wrote to the storage: %v", err)
	}
	// The defaults: a 300 s TTL.
	l := h.newLog(t, b, log.Config{})
	r := h.submit(t, l, allow(t, "a"))
	if got := r.AuthorizedUntil.Sub(r.LoggedAt.Truncate(time.Second)); got != 300*time.Second {
		t.Fatalf("default TTL %v, want 300s", got)
	}
}

func testLogAppendFailure(t *testing.T, h *harness) {
	ctx := context.Background()
	f := &faulty{Backend: h.backend(t)}
	var batchErrs []error
	var mu sync.Mutex
	l := h.newLog(t, f, log.Config{OnBatch: func(_ int, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		batchErrs = append(batchErrs, err)
	}})
	h.submit(t, l, allow(t, "before"))

	// Storage refuses the batch: nothing is acknowledged.
	f.set(errors.New("disk full"), nil)
	_, err := l.Submit(ctx, allow(t, "a"))
	wantErr(t, "Submit while storage fails", err, log.ErrUnavailable)
	// A fork is reported as such.
	f.set(fmt.Errorf("%w: injected", log.ErrFork), nil)
	_, err = l.Submit(ctx, allow(t, "a"))
	wantErr(t, "Submit while storage reports a fork", err, log.ErrFork)
	f.set(nil, nil)
	r := h.submit(t, l, allow(t, "a"))
	if !r.Created || r.Receipt.Index != 1 {
		t.Fatalf("after recovery: Created %v index %d; want a new entry at 1", r.Created, r.Receipt.Index)
	}

	// The batch is durable but its acknowledgement is lost: the waiter
	// gets ErrUnavailable, and a resubmission the entry as logged.
	f.set(nil, errors.New("connection reset during COMMIT"))
	_, err = l.Submit(ctx, allow(t, "b"))
	wantErr(t, "Submit whose acknowledgement is lost", err, log.ErrUnavailable)
	f.set(nil, nil)
	r = h.submit(t, l, allow(t, "b"))
	if r.Created || r.Receipt.Index != 2 {
		t.Fatalf("resubmission after a lost acknowledgement: Created %v index %d; want the existing entry 2", r.Created, r.Receipt.Index)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batchErrs) != 6 || batchErrs[0] != nil || batchErrs[1] == nil || batchErrs[2] == nil || batchErrs[3] != nil || batchErrs[4] == nil || batchErrs[5] != nil {
		t.Fatalf("OnBatch saw %v", batchErrs)
	}
}
