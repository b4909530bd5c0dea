package log

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

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
	// as authorized_until, rounded down to whole seconds. Default 300s.
	ArtifactTTL time.Duration
	// MaxBatch is the most entries committed in one batch. Default 1024.
	MaxBatch int
	// MaxPending is the most submissions waiting for the sequencer; beyond
	// it Submit returns ErrPushback at once. Default 65536.
	MaxPending int
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
// signature), then resolves each waiter's future. Waiters build their own
// receipts (the proof reads) concurrently, off the sequencer.
type Log struct {
	cfg     Config
	backend Backend
	logger  *slog.Logger

	// mu guards closed against the close of queue: Submit holds it shared
	// while it enqueues, Close exclusively while it closes.
	mu     sync.RWMutex
	closed bool
	queue  chan *pending
	done   chan struct{}
	// inflight counts the Submit calls whose submission was queued and
	// that have not returned: they read the backend to build their
	// receipts, so Close waits for them before it closes the backend.
	// Add happens in enqueue, under mu shared while closed is false, so
	// every Add happens before Close's Wait.
	inflight sync.WaitGroup

	// lastLoggedAt is owned by the sequencer goroutine (set in New before it
	// starts): logged_at never goes backwards, even when the clock does.
	lastLoggedAt time.Time
}

// pending is a future: the sequencer fills res or err, then closes done.
type pending struct {
	sub   *Submission
	done  chan struct{}
	entry *Entry // the entry built for sub; its times are those of a new one
	res   AppendResult
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
		cfg.ArtifactTTL = 300 * time.Second
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
		queue:   make(chan *pending, cfg.MaxPending),
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

// Submit logs a submission and returns its receipt once the entry is durable
// and covered by a signed checkpoint. An identical resubmission returns the
// original receipt with Created false. Errors: ErrPushback when too much is
// waiting, ErrUnavailable when the log cannot append (nothing was
// acknowledged), a per-entry error of Backend.Append, ErrTooLarge, or ctx's
// error (the entry may still be logged; resubmitting is safe).
func (l *Log) Submit(ctx context.Context, s *Submission) (*Result, error) {
	p := &pending{sub: s, done: make(chan struct{})}
	if err := l.enqueue(p); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("failed to wait for the sequencer: %w", ctx.Err())
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.res.Err != nil {
		return nil, p.res.Err
	}
	var e *Entry
	if !p.res.Existing {
		e = p.entry
	}
	res, err := l.receipt(ctx, s.ID, p.res.Index, p.res.Leaf, nil, e)
	if err != nil {
		return nil, err
	}
	res.Created = !p.res.Existing
	return res, nil
}

func (l *Log) enqueue(p *pending) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	select {
	case l.queue <- p:
		l.inflight.Add(1)
		return nil
	default:
		return ErrPushback
	}
}

// receipt builds the receipt of the leaf at index against cp, or, when cp
// is nil, against the checkpoint that first covered it. e, when known, is
// the leaf's entry (saves parsing its times out of leaf).
func (l *Log) receipt(ctx context.Context, id string, index uint64, leaf []byte, cp *Checkpoint, e *Entry) (*Result, error) {
	if cp == nil {
		c, err := l.backend.Covering(ctx, index)
		if err != nil {
			return nil, fmt.Errorf("failed to find the checkpoint covering entry %d: %w", index, err)
		}
		cp = &c
	}
	proof, err := l.backend.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("failed to build the inclusion proof of entry %d: %w", index, err)
	}
	res := &Result{Receipt: NewReceipt(id, index, leaf, *cp, proof), Checkpoint: *cp}
	if e != nil {
		res.LoggedAt, res.AuthorizedUntil = e.LoggedAt, e.AuthorizedUntil
	} else if res.LoggedAt, res.AuthorizedUntil, err = entryTimes(leaf); err != nil {
		return nil, fmt.Errorf("failed to read entry %d: %w", index, err)
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
	return l.receipt(ctx, id, index, leaf, &cp, nil)
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
// Whatever arrives during a commit is the next batch.
func (l *Log) run() {
	defer close(l.done)
	for p := range l.queue {
		batch := []*pending{p}
	fill:
		for len(batch) < l.cfg.MaxBatch {
			select {
			case p, ok := <-l.queue:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		l.commit(batch)
	}
}

// commit appends one batch and resolves its futures. Runs on the sequencer.
func (l *Log) commit(batch []*pending) {
	now := l.cfg.Clock().UTC()
	if now.Before(l.lastLoggedAt) {
		// The clock went backwards: keep logged_at monotonic.
		l.logger.Warn("clock is behind the last logged_at; holding logged_at", "clock", now, "last", l.lastLoggedAt)
		now = l.lastLoggedAt
	}
	entries := make([]*Entry, 0, len(batch))
	waiting := make([]*pending, 0, len(batch))
	for _, p := range batch {
		e, err := NewEntry(p.sub, now, l.cfg.ArtifactTTL)
		if err != nil {
			p.err = err
			close(p.done)
			continue
		}
		p.entry = e
		entries = append(entries, e)
		waiting = append(waiting, p)
	}
	if len(entries) == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.CommitTimeout)
	results, _, err := l.backend.Append(ctx, entries, l.sign)
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
			close(p.done)
		}
		return
	}
	l.lastLoggedAt = now
	for i, p := range waiting {
		p.res = results[i]
		close(p.done)
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
