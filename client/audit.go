package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/audit"
)

// AuditOptions configures Client.Audit. The zero value audits the whole
// log.
type AuditOptions struct {
	// State is the state saved by the previous audit of this log, nil for
	// a first audit: only the entries logged since are fetched and
	// checked.
	State *audit.State
	// Workers is the number of entry bundles fetched and checked at once.
	// Default: twice the number of CPUs, plus 2.
	Workers int
	// Progress, when set, is called after each bundle with the number of
	// entries replayed so far and the number to replay.
	Progress func(done, total uint64)
	// OnBundle, when set, is called with each bundle once it is applied,
	// in log order. What it holds is proven only if the audit finishes
	// without failures.
	OnBundle func(*audit.Bundle)
	// Checkpoint, when set, is the checkpoint note to audit up to, instead
	// of the one the log serves at GET /checkpoint.
	Checkpoint []byte
	// WitnessPolicy, when set, must be satisfied by the audited
	// checkpoint's cosignatures (audit.Audit.CheckWitnesses): it anchors
	// the audit, and the report lists the cosignatures' times.
	WitnessPolicy *verifier.Policy
	// Trusted, when set, is a checkpoint note signed by the log key, held
	// from elsewhere, that the audited checkpoint must be consistent with
	// (audit.Audit.CheckTrusted): it anchors the audit.
	Trusted []byte
}

// Audit fetches the log through the C2SP tlog-tiles API (its checkpoint,
// every entry bundle and hash tile not yet audited) and checks it with
// audit.Audit: every hash, the checkpoint and its consistency with
// opts.State, every entry and every lineage link. It needs the log key
// (WithLogKey).
//
// Everything wrong with the log, including a resource it fails to serve,
// is a failure in the report; the state is nil unless the log's tree
// verified. The error is for the audit itself not running: no log key, or
// ctx done.
func (c *Client) Audit(ctx context.Context, opts AuditOptions) (*audit.Report, *audit.State, error) {
	if c.logKey == nil {
		return nil, nil, fmt.Errorf("failed to audit: %w", ErrNoLogKey)
	}
	a, err := audit.New(c.logKey, opts.State)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to audit: %w", err)
	}
	if err := c.audit(ctx, a, opts); err != nil && ctx.Err() != nil {
		return nil, nil, fmt.Errorf("failed to audit: %w", ctx.Err())
	}
	rep, st := a.Finish()
	return rep, st, nil
}

// audit runs the audit; an error means it stopped (the reason is in a's
// report).
func (c *Client) audit(ctx context.Context, a *audit.Audit, opts AuditOptions) error {
	note := opts.Checkpoint
	if note == nil {
		var err error
		if note, err = c.TilesCheckpoint(ctx); err != nil {
			a.Fail(audit.ProblemFetch, err.Error())
			return err
		}
	}
	var proof [][]byte
	if prev := opts.State; prev != nil && prev.Checkpoint().Size > 0 {
		// The log's own consistency proof is the portable evidence of a
		// fork; the replay checks consistency even without it.
		if cp, err := verifier.Checkpoint(note, c.logKey); err == nil && cp.Size > prev.Checkpoint().Size {
			proof, err = c.ConsistencyProof(ctx, prev.Checkpoint().Size, cp.Size)
			var ae *APIError
			switch {
			case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
				proof = nil
			case err != nil:
				a.Fail(audit.ProblemFetch, err.Error())
				return err
			}
		}
	}
	if err := a.Begin(note, proof); err != nil {
		return err
	}
	if opts.WitnessPolicy != nil {
		a.CheckWitnesses(opts.WitnessPolicy)
	}
	if opts.Trusted != nil {
		var tproof [][]byte
		if t, err := verifier.Checkpoint(opts.Trusted, c.logKey); err == nil && t.Size > 0 && t.Size < a.Checkpoint().Size {
			if tproof, err = c.ConsistencyProof(ctx, t.Size, a.Checkpoint().Size); err != nil {
				a.Fail(audit.ProblemFetch, err.Error())
				return err
			}
		}
		if err := a.CheckTrusted(opts.Trusted, tproof); err != nil {
			return err
		}
	}
	size := a.Checkpoint().Size
	if err := c.replay(ctx, a, size, opts); err != nil {
		return err
	}
	for _, t := range a.PendingTiles() {
		data, err := c.Tile(ctx, t.Level, t.Index, t.Width)
		if err != nil {
			a.Fail(audit.ProblemFetch, err.Error())
			return err
		}
		a.CheckTile(t, data)
	}
	return nil
}

// fetched is a bundle fetched and scanned, or why not.
type fetched struct {
	b   *audit.Bundle
	err error
}

// replay fetches and scans bundles concurrently, and applies them in order.
func (c *Client) replay(ctx context.Context, a *audit.Audit, size uint64, opts AuditOptions) error {
	start := a.Next()
	if start >= size {
		return nil
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 2*runtime.GOMAXPROCS(0) + 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first, last := start/log.TileWidth, (size-1)/log.TileWidth
	sem := make(chan struct{}, workers)
	var queue []chan fetched
	next := first
	launch := func() {
		index := next
		next++
		ch := make(chan fetched, 1)
		queue = append(queue, ch)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ch <- c.fetchBundle(ctx, a, index, log.TileHashes(size, 0, index))
		}()
	}
	for len(queue) < 2*workers && next <= last {
		launch()
	}
	total := size - start
	for len(queue) > 0 {
		r := <-queue[0]
		queue = queue[1:]
		if next <= last {
			launch()
		}
		if r.err != nil {
			a.Fail(audit.ProblemFetch, r.err.Error())
			return r.err
		}
		if err := a.Apply(r.b); err != nil {
			return err
		}
		if opts.OnBundle != nil {
			opts.OnBundle(r.b)
		}
		if opts.Progress != nil {
			opts.Progress(a.Next()-start, total)
		}
	}
	return nil
}

// fetchBundle fetches entry bundle index and its level-0 tile, and scans
// them.
func (c *Client) fetchBundle(ctx context.Context, a *audit.Audit, index uint64, width int) fetched {
	bundle, err := c.EntryBundle(ctx, index, width)
	if err != nil {
		return fetched{err: fmt.Errorf("the log did not serve entries %d to %d: %w", index*log.TileWidth, index*log.TileWidth+uint64(width)-1, err)}
	}
	tile, err := c.Tile(ctx, 0, index, width)
	if err != nil {
		return fetched{err: fmt.Errorf("the log did not serve the leaf hashes of entries %d to %d: %w", index*log.TileWidth, index*log.TileWidth+uint64(width)-1, err)}
	}
	return fetched{b: a.Scan(index, width, bundle, tile)}
}
