// Package distributor gets a log's checkpoints cosigned by witnesses: it
// pushes each new checkpoint to every witness of a policy with the C2SP
// tlog-witness protocol, collects their cosignatures, and keeps the
// checkpoints whose cosignatures satisfy the policy.
//
// # Rounds
//
// Witnesses cosign at their own pace, but a quorum needs cosignatures on
// the same checkpoint. So the distributor works in rounds: a round takes
// the latest checkpoint and pushes it to every witness in parallel; it ends
// when the cosignatures collected satisfy the policy, or when every witness
// has answered without that happening. The next round starts at once with
// the then latest checkpoint, if it is newer (while the previous round's
// cosigned note is being stored), so one round covers every entry committed
// while the previous one ran: the cost of a witness round trip is shared by
// every batch of that interval, not paid per batch. A
// round that ends unsatisfied is retried (RetryInterval) even without a
// newer checkpoint, so cosigning resumes by itself when witnesses return. A
// slow witness still busy with an old round joins the newest one when it is
// done; its late cosignature is added to the old round's checkpoint.
//
// For each witness the distributor remembers the size that witness last
// cosigned and pushes a consistency proof from there. It starts from 0 and
// learns the witness's size from its 409 answer, then retries at once, at
// most twice a push. A 409 naming a size larger than the log's (a fork, or
// a lie) is logged as an error and believed for that push only.
//
// # The cosigned checkpoints
//
// When a round's cosignatures satisfy the policy, the checkpoint's note with
// the cosignatures it has at that moment is stored (SQLite, synchronous=FULL,
// before anyone is told, in the order the rounds were satisfied) and never
// changes. Sizes only grow from one stored checkpoint to the next. Covering(index) is the first stored checkpoint
// whose size is greater than index: a function of the store, so asking
// again, even after a restart, gives the same note, the same inclusion
// proof and the same artifact. That is what makes a sync-mode resubmission
// return the original receipt unchanged.
//
// The distributor does no signing and trusts no witness beyond the policy:
// a witness's answer is kept only when its cosignature verifies with the
// witness's key on the checkpoint pushed, and is dated within 10 minutes
// of the push.
package distributor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// Source is the log whose checkpoints are distributed. log.Backend is one.
type Source interface {
	// Latest returns the log's latest checkpoint, signed by the log.
	Latest(ctx context.Context) (log.Checkpoint, error)
	// ConsistencyProof returns the RFC 6962 consistency proof between two
	// tree sizes, 0 < from <= to <= the latest size.
	ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error)
}

// Config configures a Distributor. The zero value of each optional field
// selects the default named in its comment.
type Config struct {
	// Source is the log. Required.
	Source Source
	// LogKey is the log's note verifier key: the stored checkpoints must be
	// the log's. Required.
	LogKey note.Verifier
	// Policy names the witnesses and the quorum. Required.
	Policy *verifier.Policy
	// Database is the path of the SQLite store of cosigned checkpoints,
	// created if missing; its directory must exist. Required.
	Database string
	// HTTPClient sends the add-checkpoint requests. Default: a client with
	// keep-alive connections and no overall timeout (PushTimeout bounds
	// each request).
	HTTPClient *http.Client
	// PushTimeout bounds one add-checkpoint request. Default 10s.
	PushTimeout time.Duration
	// RetryInterval is how long after a round that ended unsatisfied the
	// same checkpoint is pushed again (a newer one is pushed at once).
	// Default 1s.
	RetryInterval time.Duration
	// RoundInterval is the least time between the starts of two rounds:
	// checkpoints that come sooner wait, and the round then pushes the
	// newest. 0 (the default) starts a round as soon as the last one ended,
	// which sync mode needs; in async mode an interval bounds the witnesses'
	// load and the store's growth to one checkpoint per interval.
	RoundInterval time.Duration
	// PollInterval is how often the distributor reads the log's latest
	// checkpoint, to find checkpoints nobody reported with Notify (other
	// replicas, a restart). Default 1s.
	PollInterval time.Duration
	// MaxBackoff bounds the wait of a witness worker after failures.
	// Default 2s.
	MaxBackoff time.Duration
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// Registerer, when set, receives the distributor's metrics. Default:
	// none.
	Registerer prometheus.Registerer
}

// ErrNotCosigned: no checkpoint satisfying the policy covers the entry (in
// time).
var ErrNotCosigned = errors.New("no checkpoint that satisfies the witness policy covers the entry")

// cacheSize is how many of the newest cosigned checkpoints are kept in
// memory.
const cacheSize = 4096

// recentRounds is how many finished rounds keep their cosignatures for
// Cosigned.
const recentRounds = 8

// Distributor pushes checkpoints to witnesses. Its methods are safe for
// concurrent use. Create it with New; Close stops it.
type Distributor struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	store   *store
	workers []*worker
	http    *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// wake (capacity 1) tells the coordinator that something changed.
	wake chan struct{}
	// storeWake (capacity 1) tells the storer goroutine that toStore grew.
	storeWake chan struct{}
	// closeOnce makes Close idempotent; closeErr is its result.
	closeOnce sync.Once
	closeErr  error

	// mu guards everything below.
	mu sync.Mutex
	// latest is the newest checkpoint of the log known.
	latest log.Checkpoint
	// round is the current round; rounds[…] are the recent ones, newest
	// last (round is the last one when it is set).
	round  *round
	rounds []*round
	// cosigned are the newest checkpoints that satisfied the policy and
	// are stored, smallest first; complete is true when they are all the
	// store holds.
	cosigned []log.Checkpoint
	complete bool
	// toStore are the satisfied rounds waiting for drainStores, in order;
	// satisfiedSize is the largest size satisfied (stored or queued).
	toStore       []*round
	satisfiedSize uint64
	// progressAt is when the policy was last satisfied, or when the log
	// last got ahead of the cosigned size after being caught up: Ready
	// measures from it how long cosigning has been stuck.
	progressAt time.Time
	// changed is closed and replaced whenever cosigned grows.
	changed chan struct{}
}

// round is one push of one checkpoint to every witness.
type round struct {
	cp      log.Checkpoint
	started time.Time
	// lines are the cosignature lines of each worker (nil when none), and
	// results the result of its push ("" until it answered).
	lines    [][]byte
	results  []string
	reported int
	// satisfied is set once the lines satisfy the policy, with storedNote
	// the note at that moment; stored once that note is in the store;
	// finished once the next round may start (satisfied, or every worker
	// answered without that).
	satisfied, stored, finished bool
	storedNote                  []byte
	finishedAt                  time.Time
}

// note is the round's checkpoint with every cosignature collected, in
// witness order. Called with d.mu held.
func (r *round) note() []byte {
	n := bytes.Clone(r.cp.Note)
	for _, l := range r.lines {
		n = append(n, l...)
	}
	return n
}

// New opens the store, checks it against the log and starts pushing.
func New(ctx context.Context, cfg Config) (*Distributor, error) {
	if cfg.Source == nil || cfg.LogKey == nil || cfg.Policy == nil || cfg.Database == "" {
		return nil, errors.New("failed to create the witness distributor: Source, LogKey, Policy and Database are required")
	}
	if cfg.PushTimeout <= 0 {
		cfg.PushTimeout = 10 * time.Second
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		hc = &http.Client{Transport: tr}
	}
	d := &Distributor{
		cfg:       cfg,
		logger:    logger,
		http:      hc,
		wake:      make(chan struct{}, 1),
		storeWake: make(chan struct{}, 1),
		changed:   make(chan struct{}),
	}
	for i, w := range cfg.Policy.Witnesses() {
		d.workers = append(d.workers, &worker{d: d, idx: i, url: w.URL, key: w.Key, jobs: make(chan *round, 1)})
	}
	var err error
	if d.store, err = openStore(ctx, cfg.Database); err != nil {
		return nil, err
	}
	if err := d.load(ctx); err != nil {
		d.store.close()
		return nil, err
	}
	if d.metrics, err = newMetrics(cfg.Registerer, d); err != nil {
		d.store.close()
		return nil, err
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(2 + len(d.workers))
	go d.coordinate()
	go d.storer()
	for _, w := range d.workers {
		go w.run()
	}
	d.logger.Info("witnessing", "witnesses", len(d.workers), "cosigned_size", d.cosignedSize())
	return d, nil
}

// load reads the newest cosigned checkpoints and checks that they are the
// log's: signed by its key, and consistent with its latest checkpoint.
func (d *Distributor) load(ctx context.Context) error {
	latest, err := d.cfg.Source.Latest(ctx)
	if err != nil {
		return fmt.Errorf("failed to read the log's latest checkpoint: %w", err)
	}
	d.latest = latest
	d.progressAt = time.Now()
	newest, err := d.store.newest(ctx, cacheSize)
	if err != nil {
		return err
	}
	if len(newest) > 0 {
		top := newest[0]
		if _, err := log.OpenCheckpoint(top.Note, d.cfg.LogKey); err != nil {
			return fmt.Errorf("%w: the cosigned checkpoint store %s holds a checkpoint that is not this log's: %w", log.ErrFork, d.cfg.Database, err)
		}
		if err := d.consistent(ctx, top, latest); err != nil {
			return err
		}
	}
	n, err := d.store.count(ctx)
	if err != nil {
		return err
	}
	d.complete = n == len(newest)
	for i := len(newest) - 1; i >= 0; i-- {
		// A checkpoint stored under another policy does not count.
		if d.cfg.Policy.Satisfied(newest[i].Note) {
			d.cosigned = append(d.cosigned, newest[i])
		}
	}
	if len(newest) > 0 {
		// Sizes must keep growing in the store, whatever the policy.
		d.satisfiedSize = newest[0].Size
	}
	return nil
}

// consistent checks that the stored checkpoint old is consistent with the
// log's latest checkpoint.
func (d *Distributor) consistent(ctx context.Context, old, latest log.Checkpoint) error {
	switch {
	case old.Size > latest.Size:
		return fmt.Errorf("%w: a checkpoint of size %d was cosigned, but the log's latest is of size %d", log.ErrFork, old.Size, latest.Size)
	case old.Size == latest.Size:
		if old.Hash != latest.Hash {
			return fmt.Errorf("%w: the cosigned checkpoint of size %d has another root hash than the log's", log.ErrFork, old.Size)
		}
		return nil
	}
	p, err := d.cfg.Source.ConsistencyProof(ctx, old.Size, latest.Size)
	if err != nil {
		return fmt.Errorf("failed to read the consistency proof from the cosigned checkpoint: %w", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, latest.Size, slices32(p), old.Hash[:], latest.Hash[:]); err != nil {
		return fmt.Errorf("%w: the log is not consistent with the checkpoint of size %d its witnesses cosigned: %w", log.ErrFork, old.Size, err)
	}
	return nil
}

// Close stops the pushes and closes the store. Pushes in flight are
// abandoned.
func (d *Distributor) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
		d.metrics.unregister()
		d.closeErr = d.store.close()
	})
	return d.closeErr
}

// Policy is the witness policy.
func (d *Distributor) Policy() *verifier.Policy { return d.cfg.Policy }

// Notify reports a new checkpoint of the log. It never blocks.
func (d *Distributor) Notify(cp log.Checkpoint) {
	d.mu.Lock()
	newer := cp.Size > d.latest.Size
	if newer {
		d.setLatestLocked(cp)
	}
	d.mu.Unlock()
	if newer {
		d.poke()
	}
}

// setLatestLocked records a newer checkpoint of the log. Called with d.mu
// held.
func (d *Distributor) setLatestLocked(cp log.Checkpoint) {
	if d.satisfiedSize >= d.latest.Size {
		d.progressAt = time.Now() // caught up until now
	}
	d.latest = cp
}

// Ready fails when the log has been ahead of the newest checkpoint that
// satisfies the policy for longer than stuck with no round satisfying it
// meanwhile: the witness quorum is not cosigning. Sync mode's readiness.
func (d *Distributor) Ready(stuck time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.satisfiedSize >= d.latest.Size {
		return nil
	}
	if since := time.Since(d.progressAt); since > stuck {
		return fmt.Errorf("%w: the witness quorum has cosigned nothing for %s (cosigned size %d, log size %d)",
			ErrNotCosigned, since.Round(time.Second), d.satisfiedSize, d.latest.Size)
	}
	return nil
}

func (d *Distributor) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Covering returns the first cosigned checkpoint whose size is greater than
// index, and false when none covers index yet.
func (d *Distributor) Covering(ctx context.Context, index uint64) (log.Checkpoint, bool, error) {
	d.mu.Lock()
	k := sort.Search(len(d.cosigned), func(i int) bool { return d.cosigned[i].Size > index })
	switch {
	case k == len(d.cosigned) && (k > 0 || d.complete):
		// Nothing stored is larger than what the memory holds.
		d.mu.Unlock()
		return log.Checkpoint{}, false, nil
	case k > 0 || d.complete:
		cp := d.cosigned[k]
		d.mu.Unlock()
		return cp, true, nil
	}
	d.mu.Unlock()
	// Older than the memory holds: ask the store, skipping checkpoints
	// stored under another policy.
	after := index
	for {
		page, err := d.store.after(ctx, after, 256)
		if err != nil {
			return log.Checkpoint{}, false, err
		}
		for _, cp := range page {
			if d.cfg.Policy.Satisfied(cp.Note) {
				return cp, true, nil
			}
		}
		if len(page) < 256 {
			return log.Checkpoint{}, false, nil
		}
		after = page[len(page)-1].Size
	}
}

// WaitCovering waits until a cosigned checkpoint covers index and returns
// the first one (see Covering). It fails with an error wrapping
// ErrNotCosigned when ctx ends first.
func (d *Distributor) WaitCovering(ctx context.Context, index uint64) (log.Checkpoint, error) {
	for {
		d.mu.Lock()
		changed := d.changed
		d.mu.Unlock()
		cp, ok, err := d.Covering(ctx, index)
		if err != nil {
			return log.Checkpoint{}, err
		}
		if ok {
			return cp, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			d.mu.Lock()
			missing := d.missingLocked(index)
			d.mu.Unlock()
			return log.Checkpoint{}, &NotCosignedError{Index: index, Missing: missing, Err: ctx.Err()}
		}
	}
}

// NotCosignedError is the failure of WaitCovering: no checkpoint that
// satisfies the policy covered the entry in time. It wraps ErrNotCosigned
// and the context's error.
type NotCosignedError struct {
	// Index is the entry's.
	Index uint64
	// Missing names the witnesses whose cosignature the newest round
	// covering the entry lacked, each with the result of its push, such
	// as "witness.example/w1 (unreachable)"; every witness when no round
	// covered the entry yet.
	Missing []string
	Err     error
}

func (e *NotCosignedError) Error() string {
	return fmt.Sprintf("%v: entry %d: no cosignature from %s: %v", ErrNotCosigned, e.Index, strings.Join(e.Missing, ", "), e.Err)
}

func (e *NotCosignedError) Unwrap() []error { return []error{ErrNotCosigned, e.Err} }

// missingLocked names the witnesses whose cosignature the newest round
// covering index lacks, each with the result of its latest push. Called
// with d.mu held.
func (d *Distributor) missingLocked(index uint64) []string {
	var r *round
	for i := len(d.rounds) - 1; i >= 0; i-- {
		if d.rounds[i].cp.Size > index {
			r = d.rounds[i]
			break
		}
	}
	var names []string
	for i, w := range d.workers {
		if r != nil && r.lines[i] != nil {
			continue
		}
		why := "no answer yet"
		if r == nil {
			why = "no checkpoint covering the entry pushed yet"
		}
		for j := len(d.rounds) - 1; j >= 0; j-- {
			if res := d.rounds[j].results[i]; res != "" {
				if res != "cosigned" {
					why = "last push: " + strings.ReplaceAll(res, "_", " ")
				}
				break
			}
		}
		names = append(names, w.key.Name()+" ("+why+")")
	}
	return names
}

// Latest returns the newest cosigned checkpoint, and false when there is
// none.
func (d *Distributor) Latest() (log.Checkpoint, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cosigned) == 0 {
		return log.Checkpoint{}, false
	}
	return d.cosigned[len(d.cosigned)-1], true
}

// Cosigned returns cp's note with every cosignature collected for it: by
// a recent round, or as stored when it satisfied the policy (before a
// restart); cp.Note when there are none.
func (d *Distributor) Cosigned(cp log.Checkpoint) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.rounds) - 1; i >= 0; i-- {
		r := d.rounds[i]
		if r.cp.Size == cp.Size && r.cp.Hash == cp.Hash && bytes.Equal(r.cp.Note, cp.Note) {
			return r.note()
		}
	}
	k := sort.Search(len(d.cosigned), func(i int) bool { return d.cosigned[i].Size >= cp.Size })
	if k < len(d.cosigned) && d.cosigned[k].Size == cp.Size && d.cosigned[k].Hash == cp.Hash &&
		bytes.HasPrefix(d.cosigned[k].Note, cp.Note) {
		return d.cosigned[k].Note
	}
	return cp.Note
}

func (d *Distributor) cosignedSize() uint64 {
	if cp, ok := d.Latest(); ok {
		return cp.Size
	}
	return 0
}

// coordinate is the coordinator goroutine: it starts a round when none is
// running and the latest checkpoint needs one, and polls the log.
func (d *Distributor) coordinate() {
	defer d.wg.Done()
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	d.poke()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-retry.C:
		case <-poll.C:
			ctx, cancel := context.WithTimeout(d.ctx, d.cfg.PushTimeout)
			cp, err := d.cfg.Source.Latest(ctx)
			cancel()
			if err != nil {
				d.logger.Warn("failed to read the log's latest checkpoint", "err", err)
				continue
			}
			d.mu.Lock()
			if cp.Size > d.latest.Size {
				d.setLatestLocked(cp)
			}
			d.mu.Unlock()
		}
		if wait := d.maybeStart(); wait > 0 {
			retry.Reset(wait)
		}
	}
}

// maybeStart starts a round if one is due. It returns how long to wait
// before retrying an unsatisfied checkpoint (0: nothing to wait for).
func (d *Distributor) maybeStart() time.Duration {
	d.mu.Lock()
	wait, drain := d.maybeStartLocked()
	d.mu.Unlock()
	if drain {
		d.pokeStorer()
	}
	return wait
}

func (d *Distributor) maybeStartLocked() (wait time.Duration, drain bool) {
	if d.round != nil && !d.round.finished {
		return 0, false
	}
	cp := d.latest
	if cp.Size == 0 || d.satisfiedSize >= cp.Size {
		return 0, false // nothing to cosign, or already cosigned
	}
	if last := d.round; last != nil && d.cfg.RoundInterval > 0 {
		if wait := d.cfg.RoundInterval - time.Since(last.started); wait > 0 {
			return wait, false
		}
	}
	if last := d.round; last != nil && last.cp.Size == cp.Size {
		// The last round was this checkpoint and it was not cosigned.
		if wait := d.cfg.RetryInterval - time.Since(last.finishedAt); wait > 0 {
			return wait, false
		}
	}
	r := &round{cp: cp, started: time.Now(), lines: make([][]byte, len(d.workers)), results: make([]string, len(d.workers))}
	d.round = r
	d.rounds = append(d.rounds, r)
	if len(d.rounds) > recentRounds {
		d.rounds = d.rounds[len(d.rounds)-recentRounds:]
	}
	if len(d.workers) == 0 {
		// A policy without witnesses ("quorum none") is satisfied by the
		// log's signature alone.
		if d.cfg.Policy.Satisfied(r.note()) {
			d.satisfyLocked(r)
			return 0, true
		}
		d.finishLocked(r)
		return d.cfg.RetryInterval, false
	}
	for _, w := range d.workers {
		// Replace the worker's pending job, if any, with this round.
		select {
		case <-w.jobs:
		default:
		}
		w.jobs <- r
	}
	return 0, false
}

// report records a worker's answer for a round (line is nil on failure)
// and the result of its push.
func (d *Distributor) report(r *round, w *worker, line []byte, result string) {
	d.mu.Lock()
	r.lines[w.idx] = line
	r.results[w.idx] = result
	r.reported++
	newly := false
	switch {
	case r.satisfied:
		// A late cosignature: Cosigned serves it.
	case d.cfg.Policy.Satisfied(r.note()):
		d.satisfyLocked(r)
		newly = true
	case r.reported == len(d.workers):
		d.finishLocked(r)
	}
	d.mu.Unlock()
	if newly {
		d.pokeStorer()
	}
}

// satisfyLocked records that a round's cosignatures satisfy the policy: its
// note is queued for the store, and the round ends, so that the next one
// can start while the note is being stored. Called with d.mu held.
func (d *Distributor) satisfyLocked(r *round) {
	r.satisfied = true
	r.stored = false
	r.storedNote = r.note()
	d.toStore = append(d.toStore, r)
	d.satisfiedSize = max(d.satisfiedSize, r.cp.Size)
	d.progressAt = time.Now()
	d.finishLocked(r)
}

func (d *Distributor) pokeStorer() {
	select {
	case d.storeWake <- struct{}{}:
	default:
	}
}

// storer is the goroutine that stores the satisfied rounds' notes, off the
// workers, so that they push the next round meanwhile.
func (d *Distributor) storer() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.storeWake:
			d.drainStores()
		}
	}
}

// drainStores stores the queued cosigned checkpoints, in the order their
// rounds were satisfied (so sizes only grow), each durably before it is
// published to Covering and its waiters. Only the storer goroutine calls
// it.
func (d *Distributor) drainStores() {
	for {
		if d.ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		if len(d.toStore) == 0 {
			d.mu.Unlock()
			return
		}
		r := d.toStore[0]
		d.toStore = d.toStore[1:]
		cp := r.cp
		cp.Note = r.storedNote
		d.mu.Unlock()

		ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
		err := d.store.add(ctx, cp)
		cancel()

		d.mu.Lock()
		if err != nil {
			d.logger.Error("failed to store a cosigned checkpoint", "size", cp.Size, "err", err)
			// Forget it: a later round cosigns it, or a larger checkpoint.
			d.satisfiedSize = 0
			if n := len(d.cosigned); n > 0 {
				d.satisfiedSize = d.cosigned[n-1].Size
			}
			for _, q := range d.toStore {
				d.satisfiedSize = max(d.satisfiedSize, q.cp.Size)
			}
			d.mu.Unlock()
			d.poke()
			continue
		}
		r.stored = true
		d.cosigned = append(d.cosigned, cp)
		if len(d.cosigned) > cacheSize {
			d.cosigned = append([]log.Checkpoint(nil), d.cosigned[len(d.cosigned)-cacheSize/2:]...)
			d.complete = false
		}
		close(d.changed)
		d.changed = make(chan struct{})
		d.mu.Unlock()
	}
}

// finishLocked ends a round: the next one may start. Called with d.mu held.
func (d *Distributor) finishLocked(r *round) {
	if r.finished {
		return
	}
	r.finished, r.finishedAt = true, time.Now()
	d.metrics.round(r)
	if !r.satisfied {
		var cosigners []string
		for i, l := range r.lines {
			if l != nil {
				cosigners = append(cosigners, d.workers[i].key.Name())
			}
		}
		d.logger.Warn("the witness policy is not satisfied", "size", r.cp.Size, "cosigned_by", cosigners,
			"retry_in", d.cfg.RetryInterval)
	}
	d.poke()
}

func slices32(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
