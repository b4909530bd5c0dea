package log

import (
	"context"
)

// SignFunc signs the checkpoint of a tree head. The Backend calls it from
// Append for each new tree head it is about to make durable.
type SignFunc func(size uint64, hash [32]byte) (Checkpoint, error)

// AppendResult is the outcome of one entry of an Append batch.
type AppendResult struct {
	// Index is the entry's index in the log: the new index, or the index of
	// the identical entry already logged when Existing.
	Index uint64
	// Existing is true when an identical submission (same kind, id,
	// canonical content and submitter) was already in the log, or earlier in
	// the same batch; nothing was appended for it.
	Existing bool
	// Leaf is the stored leaf: the new entry's, or the original's when
	// Existing.
	Leaf []byte
	// LeafHash, when not nil, is the leaf hash of Leaf, the Verdict's
	// (saves the Log hashing the leaf again for the receipt). A Backend
	// MAY leave it nil.
	LeafHash []byte
	// Err is non-nil when the entry was refused and nothing was appended for
	// it: the error of its Verdict (see Judge).
	Err error
	// Proof is the RFC 6962 inclusion proof of Index in the checkpoint
	// Append returned, when that checkpoint is the first stored one to
	// cover Index: the entry's receipt, with nothing more to read. It is
	// set for every entry the batch appended (and for an Existing result
	// whose original was appended by the same batch), except that a
	// Backend whose storage has other writers MAY leave it nil when
	// another writer stored a checkpoint covering the entry first; the
	// Log then reads the receipt as it does for a resubmission of an
	// entry logged earlier (Covering, InclusionProof). It MUST be nil for
	// every other result: the receipt of an entry logged before the batch
	// is its original one, on the first checkpoint that covered it.
	Proof [][32]byte
}

// Backend is durable storage of one Merkle log. The Log sequencer is its only
// writer; readers (proofs, lookups, entries) come from any goroutine.
//
// Durability: when Append returns without error, every entry it appended,
// and the checkpoint it signed for them, MUST be durable: they survive a
// crash of the process (kill -9) and, as far as fsync allows, of the
// machine. When Append returns an error, nothing it was given may have been
// acknowledged; the batch MAY be partially or wholly durable only if a later
// Append or Open treats those entries exactly as if they had been appended
// (their ids are then Existing for an identical resubmission).
//
// Consistency: a Backend MUST NOT sign, store or return two checkpoints of
// the same size with different root hashes, and every checkpoint it stores
// MUST be consistent with every earlier one. Opening storage whose content
// does not match its latest stored checkpoint MUST fail with ErrFork.
//
// Concurrency: Append is called by one goroutine at a time. Every other
// method MUST be safe for concurrent use, including concurrently with
// Append, and MUST see either all or none of an Append batch: readers MUST
// NOT observe an entry whose covering checkpoint is not yet stored.
type Backend interface {
	// Append appends every entry of the batch that is neither a
	// resubmission nor refused, then signs one checkpoint for the new tree
	// head with sign and stores it, atomically with the entries when the
	// storage allows. It returns one result per entry, in batch order, and
	// the latest checkpoint (the new one, or the previous one when nothing
	// was appended), which covers every result's Index. The results of
	// appended entries carry their inclusion proofs in that checkpoint,
	// computed from the tree the Append just extended (see Prover), not
	// read back from storage. On a log that has
	// no checkpoint yet, Append signs and stores one even when nothing is
	// appended (an empty batch creates the size-0 checkpoint).
	//
	// Order: every appended entry gets an index of its own, and the
	// indices MUST be consistent with the batch's dependencies: an entry
	// that names (Submission.Refs) an entry appended earlier in the same
	// batch gets a higher index than that entry. Beyond that a Backend MAY give the entries of one batch
	// their indices in any order (the Trillian backend queues independent
	// entries concurrently); the embedded backend keeps batch order. The
	// new tree head MAY also hold entries appended by other writers of the
	// same storage (other replicas), or by an earlier Append that failed.
	//
	// Per-entry checks: what each entry becomes is the rule book's, not
	// the Backend's. Inside its transaction, Append reads what it holds of
	// NamesOf(batch) into Facts, calls Judge(batch, facts) and does what
	// the verdicts say: FateAppend appends the verdict's leaf, with the
	// entry's id (and sequence, if any) recorded for later lookups and
	// later Judges; FateExisting is an identical resubmission (its result
	// carries the original's index and leaf); FateRefused appends nothing
	// and the result's Err is the verdict's.
	//
	// An error means the batch failed as a whole (storage unavailable); it
	// wraps ErrUnavailable, or ErrFork.
	Append(ctx context.Context, batch []*Entry, sign SignFunc) ([]AppendResult, Checkpoint, error)

	// Latest returns the latest stored checkpoint, or ErrNotFound when none
	// was ever stored.
	Latest(ctx context.Context) (Checkpoint, error)

	// Covering returns the first stored checkpoint whose size is greater than
	// index: the one that was returned when the entry was first appended.
	// ErrNotFound if none.
	Covering(ctx context.Context, index uint64) (Checkpoint, error)

	// InclusionProof returns the RFC 6962 inclusion proof of the leaf at
	// index in the tree of the given size. index < size <= the latest
	// checkpoint's size, else ErrOutOfRange.
	InclusionProof(ctx context.Context, index, size uint64) ([][32]byte, error)

	// ConsistencyProof returns the RFC 6962 consistency proof between two
	// tree sizes, 0 < from <= to <= the latest size, else ErrOutOfRange.
	ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error)

	// Entries returns up to count leaves from start, stopping at the
	// latest checkpoint's size. start >= size is ErrOutOfRange.
	Entries(ctx context.Context, start uint64, count int) ([][]byte, error)

	// Lookup returns the index and leaf of the entry with this kind and id,
	// or ErrNotFound.
	Lookup(ctx context.Context, kind Kind, id string) (uint64, []byte, error)

	// Authorization returns the stored authorization of an allow (what
	// Judge marked Dirty for it, as last written), or ErrNotFound when
	// there is none (a deny, an unknown decision, an allow logged before
	// authorizations were kept, or one a backend did not store because
	// it is as it started, never claimed nor revoked: the caller reads
	// that one from the decision's leaf). Its Entries may name entries
	// not yet covered by the latest checkpoint.
	Authorization(ctx context.Context, decisionID string) (*Authorization, error)

	// LookupHash returns the index of the first leaf with this RFC 6962 leaf
	// hash, or ErrNotFound.
	LookupHash(ctx context.Context, leafHash [32]byte) (uint64, error)

	// Search is the search index (see Searcher): entries in index order
	// that match a query, only ones a stored checkpoint covers. A Backend
	// writes an entry's postings (Summary.Terms) with the entry, so that
	// a crash never leaves a covered entry unindexed.
	Searcher

	// Ready returns nil when Append can be expected to succeed now, else an
	// error wrapping ErrUnavailable. It may probe the storage.
	Ready(ctx context.Context) error

	// Close releases the storage. No method may be called after it.
	Close() error
}
