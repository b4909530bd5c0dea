package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

// errNotInLog: a receipt verifies offline, but the log it came from no
// longer holds it (its checkpoint is not consistent with today's).
var errNotInLog = errors.New("is NOT in the log today")

// against checks that receipts are still in today's log: the checkpoint
// each receipt is against must be consistent with the latest checkpoint
// the log serves (an RFC 6962 consistency proof, fetched from the log,
// verified here). A log rebuilt with the same key, or one that dropped or
// changed an entry, cannot produce that proof.
type against struct {
	ctx    context.Context
	url    string
	c      *client.Client
	key    note.Verifier
	latest log.Checkpoint

	mu   sync.Mutex
	done map[checkpointID]error
}

type checkpointID struct {
	size uint64
	hash [32]byte
}

// newAgainst fetches and verifies the latest checkpoint of the log at url.
func newAgainst(ctx context.Context, url, token string, key note.Verifier) (*against, error) {
	opts := []client.Option{client.WithLogKey(key)}
	if token != "" {
		opts = append(opts, client.WithBearerToken(token))
	}
	c, err := client.New(url, opts...)
	if err != nil {
		return nil, err
	}
	latest, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("--against %s: %w", url, err)
	}
	return &against{ctx: ctx, url: url, c: c, key: key, latest: latest, done: map[checkpointID]error{}}, nil
}

// check returns nil when cp is consistent with the latest checkpoint, and
// an error wrapping errNotInLog (with the verifier's evidence) when it is
// not. Each checkpoint is checked once.
func (a *against) check(cp log.Checkpoint) error {
	id := checkpointID{cp.Size, cp.Hash}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err, ok := a.done[id]; ok {
		return err
	}
	err := a.consistent(cp)
	a.done[id] = err
	return err
}

func (a *against) consistent(cp log.Checkpoint) error {
	if cp.Size > a.latest.Size {
		return fmt.Errorf("%w: the latest checkpoint of %s has size %d, smaller than the receipt's checkpoint (size %d): the log rolled back or forked",
			errNotInLog, a.url, a.latest.Size, cp.Size)
	}
	var proof [][]byte
	if cp.Size < a.latest.Size {
		var err error
		if proof, err = a.c.ConsistencyProof(a.ctx, cp.Size, a.latest.Size); err != nil {
			return fmt.Errorf("failed to check the receipt against %s: %w", a.url, err)
		}
	}
	if _, _, err := verifier.Consistency(cp.Note, a.latest.Note, proof, a.key); err != nil {
		var ie *verifier.InconsistencyError
		if errors.As(err, &ie) {
			return fmt.Errorf("%w: its checkpoint (size %d) is not consistent with the latest checkpoint of %s (size %d): %s",
				errNotInLog, cp.Size, a.url, a.latest.Size, ie.Reason)
		}
		return fmt.Errorf("%w: the consistency proof from size %d to %d that %s serves does not verify: %w", errNotInLog, cp.Size, a.latest.Size, a.url, err)
	}
	return nil
}
