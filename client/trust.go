package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// extras is the client's state beyond requests: the trusted checkpoint
// store and the artifact key cache. It is embedded in Client.
type extras struct {
	// stateFile is the trusted state file ("" when none). stateMu guards
	// trusted (the file's checkpoint, loaded on first use, nil before) and
	// known (checkpoints proven consistent with it, by size, so that a
	// checkpoint seen again costs no proof).
	stateFile string
	stateMu   sync.Mutex
	trusted   *log.Checkpoint
	known     map[uint64]log.Checkpoint

	// audience is the "aud" artifacts must name.
	audience string
	jwks     jwksCache
}

// WithTrustedState makes the client keep, in the file at path, the latest
// checkpoint of the log it has verified, and check every checkpoint it
// sees (GET /v1/checkpoint, the checkpoint of every receipt it gets from
// the log, and those given to Observe) against it: a checkpoint must be
// consistent with the trusted one, as the log's consistency proof shows,
// and a larger one replaces it. So a log that shows this client two
// histories is caught, with evidence (*verifier.InconsistencyError).
//
// The file holds the signed checkpoint note, written atomically; it is
// created on the first checkpoint seen. It needs the log key
// (WithLogKey). One process should use a file at a time.
func WithTrustedState(path string) Option { return func(c *Client) { c.stateFile = path } }

// TrustedCheckpoint returns the checkpoint the trusted state holds; ok is
// false when there is none yet.
func (c *Client) TrustedCheckpoint() (cp log.Checkpoint, ok bool, err error) {
	if c.stateFile == "" {
		return log.Checkpoint{}, false, errors.New("failed to read the trusted checkpoint: no trusted state file (WithTrustedState)")
	}
	if c.logKey == nil {
		return log.Checkpoint{}, false, fmt.Errorf("failed to read the trusted checkpoint: %w", ErrNoLogKey)
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.trusted != nil {
		return *c.trusted, true, nil
	}
	return c.readTrusted()
}

func (c *Client) readTrusted() (log.Checkpoint, bool, error) {
	data, err := os.ReadFile(c.stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return log.Checkpoint{}, false, nil
	}
	if err != nil {
		return log.Checkpoint{}, false, fmt.Errorf("failed to read the trusted checkpoint: %w", err)
	}
	cp, err := verifier.Checkpoint(data, c.logKey)
	if err != nil {
		return log.Checkpoint{}, false, fmt.Errorf("failed to read the trusted checkpoint in %s: %w", c.stateFile, err)
	}
	return cp, true, nil
}

// Observe checks a checkpoint note against the trusted state (see
// WithTrustedState) and returns it, verified. When it is larger than the
// trusted one and consistent with it, it becomes the trusted one. When
// the log's consistency proof shows that the two are not consistent (or
// they have the same size and different roots), the error is a
// *verifier.InconsistencyError carrying both signed checkpoints and the
// proof: portable evidence of a split view. Without a trusted state file
// Observe only verifies the note.
func (c *Client) Observe(ctx context.Context, note []byte) (log.Checkpoint, error) {
	if c.logKey == nil {
		return log.Checkpoint{}, fmt.Errorf("failed to check the checkpoint: %w", ErrNoLogKey)
	}
	cp, err := verifier.Checkpoint(note, c.logKey)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to verify the checkpoint: %w", err)
	}
	if err := c.observe(ctx, cp); err != nil {
		return log.Checkpoint{}, err
	}
	return cp, nil
}

// maxKnown bounds the checkpoints remembered as consistent with the
// trusted one.
const maxKnown = 1024

// observe checks a verified checkpoint against the trusted state, if any.
// The trusted checkpoint is read from the file once, then kept in memory;
// the file is rewritten (and synced) each time it advances.
func (c *Client) observe(ctx context.Context, cp log.Checkpoint) error {
	if c.stateFile == "" {
		return nil
	}
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if c.trusted == nil {
		t, ok, err := c.readTrusted()
		if err != nil {
			return err
		}
		if !ok {
			if err := c.writeTrusted(cp); err != nil {
				return err
			}
			t = cp
		}
		c.trusted = &t
		c.known = map[uint64]log.Checkpoint{t.Size: t}
	}
	trusted := *c.trusted
	if k, ok := c.known[cp.Size]; ok {
		if k.Hash != cp.Hash {
			return &verifier.InconsistencyError{Old: k, New: cp, Reason: "two checkpoints of the same size have different root hashes"}
		}
		return nil
	}
	older, newer := trusted, cp
	if cp.Size < trusted.Size {
		older, newer = cp, trusted
	}
	if older.Size > 0 {
		proof, err := c.ConsistencyProof(ctx, older.Size, newer.Size)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && cp.Size < trusted.Size {
			// The log's tree is smaller than one it signed before.
			return fmt.Errorf("the log serves a tree smaller than the trusted one: %w", &verifier.InconsistencyError{Old: trusted, New: cp,
				Reason: fmt.Sprintf("the log cannot prove the trusted checkpoint of size %d consistent with its checkpoint of size %d: it rolled back or forked (%v)", trusted.Size, cp.Size, ae)})
		}
		if err != nil {
			return fmt.Errorf("failed to check the checkpoint of size %d against the trusted one of size %d: %w", cp.Size, trusted.Size, err)
		}
		if _, _, err := verifier.Consistency(older.Note, newer.Note, proof, c.logKey); err != nil {
			return fmt.Errorf("the checkpoint of size %d is not consistent with the trusted one of size %d: %w", cp.Size, trusted.Size, err)
		}
	}
	if len(c.known) >= maxKnown {
		clear(c.known)
		c.known[trusted.Size] = trusted
	}
	c.known[cp.Size] = cp
	if cp.Size > trusted.Size {
		if err := c.writeTrusted(cp); err != nil {
			return err
		}
		c.trusted = &cp
	}
	return nil
}

// writeTrusted replaces the trusted state file atomically: a temporary
// file in the same directory, synced, then renamed over it.
func (c *Client) writeTrusted(cp log.Checkpoint) error {
	if err := writeFileAtomic(c.stateFile, cp.Note); err != nil {
		return fmt.Errorf("failed to save the trusted checkpoint: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that path always holds either its old or its new content.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// WriteFileAtomic writes data to path so that path always holds either
// its old or its new content, even across a crash: for state files.
func WriteFileAtomic(path string, data []byte) error {
	if err := writeFileAtomic(path, data); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// jwksCache is the cached artifact key set.
type jwksCache struct {
	mu sync.Mutex
	// pinned is set by WithJWKS: never fetched.
	pinned  jwk.Set
	set     jwk.Set
	fetched time.Time
	ttl     time.Duration
	url     string
}
