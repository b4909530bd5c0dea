package verifier

import (
	"errors"
	"fmt"

	"github.com/govlog/govlog/log"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// InconsistencyError is the evidence that a log is inconsistent: two
// checkpoints, both signed by the log key, and the consistency proof
// between them that does not verify. It wraps ErrInconsistent.
//
// When Old and New have the same size, they prove a fork by themselves.
// Otherwise Proof is evidence when the log served it for these checkpoints.
type InconsistencyError struct {
	// Old and New are the checkpoints; their Note fields are the signed
	// notes as received.
	Old, New log.Checkpoint
	// Proof is the consistency proof from Old.Size to New.Size.
	Proof [][]byte
	// Reason says what failed.
	Reason string
}

func (e *InconsistencyError) Error() string {
	return fmt.Sprintf("%v: checkpoint of size %d is not consistent with checkpoint of size %d: %s",
		ErrInconsistent, e.Old.Size, e.New.Size, e.Reason)
}

func (e *InconsistencyError) Unwrap() error { return ErrInconsistent }

// Consistency verifies two checkpoint notes signed by the log key and the
// RFC 6962 consistency proof from the older (smaller) to the newer one. It
// returns both checkpoints, parsed. When the checkpoints disagree (the same
// size with different roots, or a proof that does not verify), the error is
// an *InconsistencyError holding the evidence.
//
// Consistency fails with ErrMalformed when the new checkpoint is smaller
// than the old one (the arguments are in the wrong order, or the log rolled
// back), or when a proof hash is not 32 bytes, and with ErrBadProof when
// checkpoints of the same size come with a non-empty proof.
func Consistency(oldNote, newNote []byte, hashes [][]byte, logKey note.Verifier) (oldCp, newCp log.Checkpoint, err error) {
	if oldCp, err = Checkpoint(oldNote, logKey); err != nil {
		return log.Checkpoint{}, log.Checkpoint{}, fmt.Errorf("old checkpoint: %w", err)
	}
	if newCp, err = Checkpoint(newNote, logKey); err != nil {
		return log.Checkpoint{}, log.Checkpoint{}, fmt.Errorf("new checkpoint: %w", err)
	}
	if oldCp.Size > newCp.Size {
		return log.Checkpoint{}, log.Checkpoint{}, fmt.Errorf("%w: the new checkpoint (size %d) is smaller than the old one (size %d)",
			ErrMalformed, newCp.Size, oldCp.Size)
	}
	for i, h := range hashes {
		if len(h) != 32 {
			return log.Checkpoint{}, log.Checkpoint{}, fmt.Errorf("%w: consistency proof hash %d is %d bytes, want 32", ErrMalformed, i, len(h))
		}
	}
	fail := func(reason string) (log.Checkpoint, log.Checkpoint, error) {
		return log.Checkpoint{}, log.Checkpoint{}, &InconsistencyError{Old: oldCp, New: newCp, Proof: hashes, Reason: reason}
	}
	if oldCp.Size == newCp.Size {
		if oldCp.Hash != newCp.Hash {
			return fail("two checkpoints of the same size have different root hashes")
		}
		if len(hashes) != 0 {
			return log.Checkpoint{}, log.Checkpoint{}, fmt.Errorf("%w: the consistency proof between checkpoints of the same size must be empty, it has %d hashes", ErrBadProof, len(hashes))
		}
		return oldCp, newCp, nil
	}
	err = mproof.VerifyConsistency(rfc6962.DefaultHasher, oldCp.Size, newCp.Size, hashes, oldCp.Hash[:], newCp.Hash[:])
	var mismatch mproof.RootMismatchError
	switch {
	case errors.As(err, &mismatch):
		return fail("the consistency proof does not lead to the checkpoint roots")
	case err != nil:
		return fail(fmt.Sprintf("the consistency proof is malformed: %v", err))
	}
	return oldCp, newCp, nil
}
