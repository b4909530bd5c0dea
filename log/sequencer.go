package log

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// DefaultArtifactTTL is the authorization lifetime of allow entries (and
// of their artifacts) when Config.ArtifactTTL is zero: wire contract §5.
const DefaultArtifactTTL = 300 * time.Second

// Config configures a Log. The zero value of each optional field selects
// the default named in its comment.
type Config struct {
	// Backend is the log's storage. Required. The Log owns it from New on
	// and closes it in Close.
	Backend Backend
	// Signer signs checkpoints; its name is the log origin. Required.
	Signer note.Signer
	// Verifier is the signer's verifier key; New refuses storage whose
	// checkpoints it does not verify (a log's key is its identity). Required.
	Verifier note.Verifier
	// ArtifactTTL is the authorization lifetime written into allow entries
	// as authorized_until, rounded down to whole seconds, at least one.
	// Default DefaultArtifactTTL.
	ArtifactTTL time.Duration
	// MaxBatch is the most entries committed in one batch. Default 1024.
	MaxBatch int
	// MaxPending is the most submissions waiting for the sequencer; beyond
	// it Submit and SubmitAll return ErrPushback at once (a SubmitAll of
	// more is taken only when nothing else waits). Default 65536.
	MaxPending int
	// Linger, when positive, is the longest the sequencer waits for more
	// submissions when the batch it took holds less than half as many as
	// the previous one: it appends once the batch is as large as the
	// previous one, or Linger has passed. For a backend whose Append has a
	// large fixed cost (the Trillian backend waits for Trillian's signer:
	// see trillian.Linger), where natural batching would otherwise settle
	// into a large batch and a batch of stragglers that costs as much.
	// Default 0: never wait.
	Linger time.Duration
	// CommitTimeout bounds one Append of the backend. Default 30s.
	CommitTimeout time.Duration
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// OnBatch, when set, is called by the sequencer after each commit with
	// the number of entries in the batch, how long the commit took and its
	// error.
	OnBatch func(entries int, took time.Duration, err error)
}

// Log sequences submissions into a Backend: one goroutine (the sequencer)
// takes every submission waiting, stamps the batch with one logged_at,
// appends it with one Backend.Append (one transaction, one checkpoint
// signature), then resolves each waiter's future with what Append
// returned: its entry's index, leaf and inclusion proof in the new
// checkpoint. Waiters assemble their receipts concurrently, off the
// sequencer, without reading storage again (except for a resubmission
// of an entry logged before its batch, whose receipt is the original
// one).
type Log struct {
	cfg     Config
	backend Backend
	logger  *slog.Logger

	// mu guards closed against the close of queue: SubmitAll holds it
	// shared while it enqueues, Close exclusively while it closes.
	mu     sync.RWMutex
	closed bool
	queue  chan *group
	// queued counts the submissions of the groups in queue: SubmitAll
	// adds, the sequencer subtracts as it takes a group.
	queued atomic.Int64
	done   chan struct{}
	// inflight counts the SubmitAll calls whose group was queued and that
	// have not returned: they may read the backend to build receipts, so
	// Close waits for them before it closes the backend. Add happens in
	// enqueue, under mu shared while closed is false, so every Add
	// happens before Close's Wait.
	inflight sync.WaitGroup

	// keys caches the key entries artifacts name, kid → loggedKey, read
	// in submitters' goroutines to verify artifacts before the sequencer
	// (a logged key entry never changes); nkeys bounds it.
	keys  sync.Map
	nkeys atomic.Int64
	// issued are the artifacts this Log signed (SignArtifact).
	issued issuedArtifacts

	// lastLoggedAt is owned by the sequencer goroutine (set in New before it
	// starts): logged_at never goes backwards, even when the clock does.
	lastLoggedAt time.Time
}

// group is a future: the submissions of one Submit or SubmitAll, which
// the sequencer appends together, in order, in one Append. It fills every
// item, then closes done.
type group struct {
	items []pending
	done  chan struct{}
}

// pending is one submission of a group.
type pending struct {
	sub   *Submission
	entry *Entry // the entry built for sub; its times are those of a new one
	res   AppendResult
	cp    Checkpoint // the checkpoint Append returned
	err   error
}

// Result is a logged submission.
type Result struct {
	Receipt *Receipt
	// Created is false for an identical resubmission, which gets the
	// original receipt.
	Created bool
	// Checkpoint is the checkpoint the receipt is against.
	Checkpoint Checkpoint
	// LoggedAt and AuthorizedUntil are the entry's (AuthorizedUntil is zero
	// unless an allow decision).
	LoggedAt, AuthorizedUntil time.Time
	// Violation is the violation the log recorded in an execution
	// report's entry, "" when none: the report is logged, and its
	// submitter must not execute.
	Violation string
}

// New opens a Log on cfg.Backend, checks that the backend's latest
// checkpoint was signed by cfg.Signer's key (creating the size-0 checkpoint
// of a new log), and starts the sequencer.
func New(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Backend == nil || cfg.Signer == nil || cfg.Verifier == nil {
		return nil, errors.New("failed to create log: Backend, Signer and Verifier are required")
	}
	if cfg.Signer.Name() != cfg.Verifier.Name() || cfg.Signer.KeyHash() != cfg.Verifier.KeyHash() {
		return nil, errors.New("failed to create log: Signer and Verifier are not one key pair")
	}
	if cfg.ArtifactTTL == 0 {
		cfg.ArtifactTTL = DefaultArtifactTTL
	}
	if cfg.ArtifactTTL < time.Second {
		return nil, fmt.Errorf("failed to create log: ArtifactTTL %v is shorter than one second", cfg.ArtifactTTL)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 65536
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	l := &Log{
		cfg:     cfg,
		backend: cfg.Backend,
		logger:  cfg.Logger,
		queue:   make(chan *group, cfg.MaxPending),
		done:    make(chan struct{}),
	}
	if l.logger == nil {
		l.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cp, err := l.backend.Latest(ctx)
	if errors.Is(err, ErrNotFound) {
		_, cp, err = l.backend.Append(ctx, nil, l.sign)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read the latest checkpoint: %w", err)
	}
	opened, err := OpenCheckpoint(cp.Note, cfg.Verifier)
	if err != nil {
		return nil, fmt.Errorf("%w: the latest stored checkpoint is not signed by this log's key (a log's key is its identity): %w", ErrFork, err)
	}
	if opened.Size != cp.Size || opened.Hash != cp.Hash {
		return nil, fmt.Errorf("%w: the stored checkpoint note says size %d, storage says %d", ErrFork, opened.Size, cp.Size)
	}
	if cp.Size > 0 {
		leaves, err := l.backend.Entries(ctx, cp.Size-1, 1)
		if err != nil {
			return nil, fmt.Errorf("failed to read the last entry: %w", err)
		}
		if l.lastLoggedAt, _, err = entryTimes(leaves[0]); err != nil {
			return nil, fmt.Errorf("failed to read the last entry: %w", err)
		}
	}
	go l.run()
	return l, nil
}

func (l *Log) sign(size uint64, hash [32]byte) (Checkpoint, error) {
	return SignCheckpoint(l.cfg.Signer, size, hash)
}

// Origin is the log's origin: its checkpoints' first line and key name.
func (l *Log) Origin() string { return l.cfg.Signer.Name() }

// ArtifactTTL is the authorization lifetime the Log writes into allow
// entries (authorized_until = logged_at truncated to the second + it): a
// whole number of seconds.
func (l *Log) ArtifactTTL() time.Duration { return l.cfg.ArtifactTTL.Truncate(time.Second) }

// Submit logs a submission and returns its receipt once the entry is durable
// and covered by a signed checkpoint. An identical resubmission returns the
// original receipt with Created false. Errors: ErrPushback when too much is
// waiting, ErrUnavailable when the log cannot append (nothing was
// acknowledged), a refusal of the rule book (see Judge), ErrTooLarge, or
// ctx's error (the entry may still be logged; resubmitting is safe).
func (l *Log) Submit(ctx context.Context, s *Submission) (*Result, error) {
	out, err := l.SubmitAll(ctx, []*Submission{s})
	if err != nil {
		return nil, err
	}
	return out[0].Result, out[0].Err
}

// Submitted is the outcome of one submission of SubmitAll: its Result, or
// the error Submit would have returned for it.
type Submitted struct {
	Result *Result
	Err    error
}

// SubmitAll logs submissions together: they are appended in one
// Backend.Append, contiguous and in order, so that the rule book judges
// them as if they came one by one (a repeated id later in the list is a
// resubmission, a parent earlier in the list counts). It returns one
// outcome per submission, in order. Its error is ErrPushback when too
// much is waiting, ErrUnavailable when the log is closing, or ctx's
// error; nothing was acknowledged then (though entries may be logged:
// resubmitting is safe).
func (l *Log) SubmitAll(ctx context.Context, subs []*Submission) ([]Submitted, error) {
	if len(subs) == 0 {
		return []Submitted{}, nil
	}
	g := &group{items: make([]pending, len(subs)), done: make(chan struct{})}
	for i, s := range subs {
		g.items[i].sub = s
		if s.Kind == KindExecution && s.Artifact != "" {
			s.verified = verifyArtifact(s.Artifact, func(kid string) (ed25519.PublicKey, []byte) {
				return l.loggedKey(ctx, kid)
			}, l.signedHere)
		}
	}
	if err := l.enqueue(g); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	select {
	case <-g.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("failed to wait for the sequencer: %w", ctx.Err())
	}
	out := make([]Submitted, len(subs))
	for i := range g.items {
		out[i].Result, out[i].Err = l.result(ctx, &g.items[i])
	}
	return out, nil
}

// maxCachedKeys bounds Log.keys: artifact keys are few (one per rotation).
const maxCachedKeys = 1024

type loggedKey struct {
	key  ed25519.PublicKey
	leaf []byte
}

// loggedKey returns the key of the logged key entry kid with its leaf,
// nil when none is logged (or it cannot be read now: the rule book then
// verifies the artifact itself).
func (l *Log) loggedKey(ctx context.Context, kid string) (ed25519.PublicKey, []byte) {
	if k, ok := l.keys.Load(kid); ok {
		return k.(loggedKey).key, k.(loggedKey).leaf
	}
	_, leaf, err := l.backend.Lookup(ctx, KindKey, kid)
	if err != nil {
		return nil, nil
	}
	key := Stored{Leaf: leaf}.key()
	if key == nil {
		return nil, nil
	}
	if l.nkeys.Load() < maxCachedKeys {
		if _, loaded := l.keys.LoadOrStore(kid, loggedKey{key, leaf}); !loaded {
			l.nkeys.Add(1)
		}
	}
	return key, leaf
}

func (l *Log) enqueue(g *group) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	n := int64(len(g.items))
	if q := l.queued.Add(n); q > int64(l.cfg.MaxPending) && q != n {
		l.queued.Add(-n)
		return ErrPushback
	}
	select {
	case l.queue <- g:
		l.inflight.Add(1)
		return nil
	default:
		l.queued.Add(-n)
		return ErrPushback
	}
}

// result builds the Result of one submission the sequencer resolved.
func (l *Log) result(ctx context.Context, p *pending) (*Result, error) {
	switch {
	case p.err != nil:
		return nil, p.err
	case p.res.Err != nil:
		return nil, p.res.Err
	}
	var e *Entry
	if !p.res.Existing {
		e = p.entry
	}
	var res *Result
	var err error
	if p.res.Proof != nil {
		// Appended by this batch: the receipt came out of the commit.
		res, err = l.receipt(ctx, p.sub.ID, p.res.Index, p.res.Leaf, p.res.LeafHash, &p.cp, p.res.Proof, e)
	} else {
		// Logged before: the original receipt.
		res, err = l.receipt(ctx, p.sub.ID, p.res.Index, p.res.Leaf, nil, nil, nil, e)
	}
	if err != nil {
		return nil, err
	}
	res.Created = !p.res.Existing
	return res, nil
}

// receipt builds the receipt of the leaf at index against cp, or, when cp
// is nil, against the checkpoint that first covered it. leafHash, when
// not nil, is the leaf's hash; proof, when known, its inclusion proof in
// cp; e, when known, the leaf's entry (saves parsing its times out of
// leaf).
func (l *Log) receipt(ctx context.Context, id string, index uint64, leaf, leafHash []byte, cp *Checkpoint, proof [][32]byte, e *Entry) (*Result, error) {
	if cp == nil {
		c, err := l.backend.Covering(ctx, index)
		if err != nil {
			return nil, fmt.Errorf("failed to find the checkpoint covering entry %d: %w", index, err)
		}
		cp = &c
	}
	if proof == nil {
		var err error
		if proof, err = l.backend.InclusionProof(ctx, index, cp.Size); err != nil {
			return nil, fmt.Errorf("failed to build the inclusion proof of entry %d: %w", index, err)
		}
	}
	var lh [32]byte
	if len(leafHash) == len(lh) {
		lh = [32]byte(leafHash)
	} else {
		lh = LeafHash(leaf)
	}
	res := &Result{Receipt: newReceipt(id, index, leaf, lh, *cp, proof), Checkpoint: *cp, Violation: LeafViolation(leaf)}
	if e != nil {
		res.LoggedAt, res.AuthorizedUntil = e.LoggedAt, e.AuthorizedUntil
	} else {
		var err error
		if res.LoggedAt, res.AuthorizedUntil, err = entryTimes(leaf); err != nil {
			return nil, fmt.Errorf("failed to read entry %d: %w", index, err)
		}
	}
	return res, nil
}

// Lookup returns the receipt of a logged entry against the latest
// checkpoint (without artifact), or ErrNotFound.
func (l *Log) Lookup(ctx context.Context, kind Kind, id string) (*Result, error) {
	index, leaf, err := l.backend.Lookup(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	cp, err := l.backend.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to read the latest checkpoint: %w", ErrUnavailable, err)
	}
	return l.receipt(ctx, id, index, leaf, nil, &cp, nil, nil)
}

// Latest returns the latest checkpoint.
func (l *Log) Latest(ctx context.Context) (Checkpoint, error) { return l.backend.Latest(ctx) }

// Backend returns the log's storage, for reads (proofs, entries).
func (l *Log) Backend() Backend { return l.backend }

// Ready returns nil when the log can append now.
func (l *Log) Ready(ctx context.Context) error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	return l.backend.Ready(ctx)
}

// Close stops accepting submissions (they get ErrUnavailable), lets the
// sequencer commit everything already queued and answer every waiter, waits
// for those waiters to read their receipts, then closes the backend. It
// returns ctx's error if that is not done in time (the backend is then left
// open).
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("failed to drain the sequencer: %w", ctx.Err())
	}
	answered := make(chan struct{})
	go func() {
		l.inflight.Wait()
		close(answered)
	}()
	select {
	case <-answered:
	case <-ctx.Done():
		return fmt.Errorf("failed to wait for submitters to read their receipts: %w", ctx.Err())
	}
	return l.backend.Close()
}

// run is the sequencer goroutine: natural batching, one commit at a time.
// Whatever arrives during a commit is the next batch: whole groups, up to
// MaxBatch submissions (a group is never split; one larger than MaxBatch
// is a batch of its own). With Config.Linger, a batch much smaller than
// the previous one waits a little for the rest.
func (l *Log) run() {
	defer close(l.done)
	var next *group // taken from the queue, for the next batch
	prev := 0       // the number of submissions of the previous batch
	for {
		g := next
		if g == nil {
			var ok bool
			if g, ok = <-l.queue; !ok {
				return
			}
			l.queued.Add(-int64(len(g.items)))
		}
		var (
			batch []*group
			n     int
		)
		batch, n, next = l.fill([]*group{g}, len(g.items), l.cfg.MaxBatch, nil)
		if l.cfg.Linger > 0 && next == nil && n < prev/2 {
			timer := time.NewTimer(l.cfg.Linger)
			batch, n, next = l.fill(batch, n, min(prev, l.cfg.MaxBatch), timer.C)
			timer.Stop()
		}
		prev = n
		l.commit(batch)
		// The commit readied its submitters on this goroutine's P: let
		// them answer before the next commit takes the P (and holds it
		// through its cgo calls).
		runtime.Gosched()
	}
}

// fill adds to batch (n submissions) the groups waiting in the queue
// until it holds want submissions (at most MaxBatch); with wait not nil,
// also those that arrive until wait fires. A group that does not fit in
// MaxBatch is returned as next.
func (l *Log) fill(batch []*group, n, want int, wait <-chan time.Time) ([]*group, int, *group) {
	for n < want {
		var (
			g  *group
			ok bool
		)
		if wait == nil {
			select {
			case g, ok = <-l.queue:
			default:
				return batch, n, nil
			}
		} else {
			select {
			case g, ok = <-l.queue:
			case <-wait:
				return batch, n, nil
			}
		}
		if !ok {
			return batch, n, nil
		}
		l.queued.Add(-int64(len(g.items)))
		if n+len(g.items) > l.cfg.MaxBatch {
			return batch, n, g
		}
		batch, n = append(batch, g), n+len(g.items)
	}
	return batch, n, nil
}

// commit appends one batch and resolves its futures. Runs on the sequencer.
func (l *Log) commit(batch []*group) {
	defer func() {
		for _, g := range batch {
			close(g.done)
		}
	}()
	now := l.cfg.Clock().UTC()
	if now.Before(l.lastLoggedAt) {
		// The clock went backwards: keep logged_at monotonic.
		l.logger.Warn("clock is behind the last logged_at; holding logged_at", "clock", now, "last", l.lastLoggedAt)
		now = l.lastLoggedAt
	}
	var (
		entries []*Entry
		waiting []*pending
	)
	for _, g := range batch {
		for i := range g.items {
			p := &g.items[i]
			e, err := NewEntry(p.sub, now, l.cfg.ArtifactTTL)
			if err != nil {
				p.err = err
				continue
			}
			e.Origin = l.Origin()
			p.entry = e
			entries = append(entries, e)
			waiting = append(waiting, p)
		}
	}
	if len(entries) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CommitTimeout)
	results, cp, err := l.backend.Append(ctx, entries, l.sign)
	cancel()
	if l.cfg.OnBatch != nil {
		l.cfg.OnBatch(len(entries), time.Since(start), err)
	}
	if err == nil && len(results) != len(entries) {
		err = fmt.Errorf("%w: backend returned %d results for %d entries", ErrUnavailable, len(results), len(entries))
	}
	if err != nil {
		l.logger.Error("failed to append batch", "entries", len(entries), "err", err)
		if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrFork) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		for _, p := range waiting {
			p.err = err
		}
		return
	}
	l.lastLoggedAt = now
	for i, p := range waiting {
		p.res, p.cp = results[i], cp
	}
}

// entryTimes reads logged_at and authorized_until of a leaf.
func entryTimes(leaf []byte) (loggedAt, authorizedUntil time.Time, err error) {
	var j entryJSON
	if err := json.Unmarshal(leaf, &j); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("failed to decode entry: %w", err)
	}
	if loggedAt, err = time.Parse(LoggedAtLayout, j.LoggedAt); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("failed to parse logged_at: %w", err)
	}
	if j.AuthorizedUntil != nil {
		if authorizedUntil, err = time.Parse(AuthorizedUntilLayout, *j.AuthorizedUntil); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("failed to parse authorized_until: %w", err)
		}
	}
	return loggedAt, authorizedUntil, nil
}
