package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// Witnessing configures witness cosigning (see docs/witness.md).
//
// The distributor pushes every new checkpoint to the witnesses of its
// policy and keeps the checkpoints whose cosignatures satisfy it. The
// server tells it about each checkpoint a submission gets, serves GET
// /v1/checkpoint with every cosignature collected, and GET /v1/log's
// witness_policy is the policy text.
//
// In async mode (Sync false) a submission is answered as soon as its entry
// is durable, with a receipt on the log-signed checkpoint; GET
// /v1/decisions/{id} returns a receipt on the newest checkpoint that
// satisfies the policy once one covers the entry.
//
// In sync mode a submission is answered only with a receipt (and an
// artifact) on the first checkpoint that satisfies the policy and covers
// its entry, waiting up to Timeout for it; otherwise it gets 503
// log_unavailable and nothing else. The entry stays in the log: a later
// checkpoint covers it, and resubmitting it returns the receipt on that
// first cosigned checkpoint, the same every time. GET receipts of entries
// no cosigned checkpoint covers yet are 503 in sync mode.
type Witnessing struct {
	// Distributor pushes the checkpoints and holds the cosigned ones.
	// Required. The Server owns it from New on: Close closes it.
	Distributor Distributor
	// Sync selects sync mode. Default: async.
	Sync bool
	// Timeout bounds how long a sync-mode submission waits for the quorum.
	// Default 10s.
	Timeout time.Duration
}

// Distributor pushes the log's checkpoints to the witnesses of a policy
// and keeps those whose cosignatures satisfy it (govlogd's is
// internal/distributor). Its methods are safe for concurrent use.
type Distributor interface {
	// Notify hands over a new checkpoint of the log. It never blocks.
	Notify(cp log.Checkpoint)
	// WaitCovering waits until a checkpoint that satisfies the policy
	// covers index, and returns the first one; it fails when ctx ends
	// first.
	WaitCovering(ctx context.Context, index uint64) (log.Checkpoint, error)
	// Latest returns the newest checkpoint that satisfies the policy, and
	// false when there is none.
	Latest() (log.Checkpoint, bool)
	// Cosigned returns cp's note with every cosignature collected for it.
	Cosigned(cp log.Checkpoint) []byte
	// Policy is the witness policy.
	Policy() *verifier.Policy
	// Ready fails when the log has been ahead of the newest checkpoint
	// that satisfies the policy for longer than stuck.
	Ready(stuck time.Duration) error
	// Close stops it.
	Close() error
}

// errNotCosigned is why a sync-mode GET receipt is 503.
var errNotCosigned = errors.New("no checkpoint that satisfies the witness policy covers it")

// errNoQuorum is the reason of a sync-mode 503.
var errNoQuorum = errors.New("the witness quorum did not cosign a checkpoint covering the entry in time")

// witnessTimeout is the sync-mode wait.
func (s *Server) witnessTimeout() time.Duration {
	if t := s.cfg.Witnessing.Timeout; t > 0 {
		return t
	}
	return 10 * time.Second
}

// acknowledge runs after the log acknowledged a submission with res: it
// hands the new checkpoint to the distributor and, in sync mode, waits for
// the first checkpoint that satisfies the witness policy and covers the
// entry and returns res on that checkpoint.
func (s *Server) acknowledge(ctx context.Context, res *log.Result) (*log.Result, error) {
	w := s.cfg.Witnessing
	if w == nil {
		return res, nil
	}
	w.Distributor.Notify(res.Checkpoint)
	if !w.Sync {
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.witnessTimeout())
	defer cancel()
	cp, err := w.Distributor.WaitCovering(ctx, res.Receipt.Index)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", log.ErrUnavailable, errNoQuorum, err)
	}
	return s.rebase(ctx, res, cp)
}

// witnessedReceipt turns the receipt of GET /v1/{decisions,executions}/{id}
// (res, on the log's latest checkpoint) into one on the newest checkpoint
// that satisfies the witness policy, when that one covers the entry. In
// async mode, an entry no cosigned checkpoint covers yet keeps res, with
// the cosignatures collected for its checkpoint so far; in sync mode it is
// not acknowledged (503).
func (s *Server) witnessedReceipt(ctx context.Context, res *log.Result) (*log.Result, error) {
	w := s.cfg.Witnessing
	if w == nil {
		return res, nil
	}
	if cp, ok := w.Distributor.Latest(); ok && cp.Size > res.Receipt.Index {
		return s.rebase(ctx, res, cp)
	}
	if w.Sync {
		return nil, fmt.Errorf("%w: entry %d is logged but %w yet", log.ErrUnavailable, res.Receipt.Index, errNotCosigned)
	}
	cp := res.Checkpoint
	cp.Note = w.Distributor.Cosigned(cp)
	return s.rebase(ctx, res, cp)
}

// rebase returns res with its receipt on the checkpoint cp, which covers
// the entry.
func (s *Server) rebase(ctx context.Context, res *log.Result, cp log.Checkpoint) (*log.Result, error) {
	r := res.Receipt
	if cp.Size == res.Checkpoint.Size && string(cp.Note) == string(res.Checkpoint.Note) {
		return res, nil
	}
	var proof [][32]byte
	if cp.Size == res.Checkpoint.Size && cp.Hash == res.Checkpoint.Hash {
		// The same tree (usually: the round cosigned the entry's own
		// batch): the same inclusion proof.
		proof = make([][32]byte, len(r.InclusionProof))
		for i, h := range r.InclusionProof {
			proof[i] = [32]byte(h)
		}
	} else {
		var err error
		if proof, err = s.log.Backend().InclusionProof(ctx, r.Index, cp.Size); err != nil {
			return nil, fmt.Errorf("%w: failed to build the inclusion proof of entry %d in the cosigned checkpoint of size %d: %w",
				log.ErrUnavailable, r.Index, cp.Size, err)
		}
	}
	out := *res
	out.Receipt = log.NewReceipt(r.ID, r.Index, r.Entry, cp, proof)
	out.Receipt.Artifact = r.Artifact
	out.Checkpoint = cp
	return &out, nil
}

// cosignedNote is the note of the log's checkpoint cp with every
// cosignature collected for it.
func (s *Server) cosignedNote(cp log.Checkpoint) []byte {
	if s.cfg.Witnessing == nil {
		return cp.Note
	}
	return s.cfg.Witnessing.Distributor.Cosigned(cp)
}

// witnessPolicy is the policy text of GET /v1/log ("" when none).
func (s *Server) witnessPolicy() string {
	if s.cfg.Witnessing == nil {
		return ""
	}
	return string(s.cfg.Witnessing.Distributor.Policy().Text())
}

// closeWitnessing stops the distributor. Close calls it once every request
// is answered, before the log closes.
func (s *Server) closeWitnessing() error {
	if s.cfg.Witnessing == nil {
		return nil
	}
	if err := s.cfg.Witnessing.Distributor.Close(); err != nil {
		return fmt.Errorf("failed to stop the witness distributor: %w", err)
	}
	return nil
}
