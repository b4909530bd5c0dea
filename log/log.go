// Package log is govlog's data model and the one contract the rest of the
// system codes against.
//
// A control plane submits a decision (an "allow" or a "deny" of an action by
// an agent) as JSON. ParseDecision validates it against the schema of the
// wire contract and returns its RFC 8785 (JCS) canonical form. The Log
// sequencer stamps it with logged_at, wraps it in an entry and appends the
// entry as one leaf of an RFC 6962 Merkle tree held by a Backend. A batch of
// entries is committed in one storage transaction and covered by one signed
// C2SP checkpoint; every waiter then gets a Receipt: its entry, an inclusion
// proof and the checkpoint, also packaged as a C2SP tlog-proof that verifies
// offline with nothing but the log's note verifier key. The proofs come out
// of the commit: the Backend computes them from the compact range it just
// extended (Prover), without reading storage again.
//
// # The rule book
//
// What each entry of a batch becomes (appended, an identical resubmission of
// an entry already logged, or refused with ErrIDConflict,
// ErrSequenceConflict, ErrUnknownParent, ErrUnknownDecision or
// ErrNotAuthorized) is decided in one place: Judge, a pure function of the
// batch and the Facts storage holds about the names the batch uses
// (NamesOf). Backends gather the facts inside their transaction and store
// what the verdicts say; they hold no rules. The auditor replays a log
// through the same Judge (rules.go).
//
// # The entry
//
// The leaf bytes are the RFC 8785 canonical JSON of
//
//	{"authorized_until":"2026-11-25T18:05:00Z",
//	 "decision":{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1",
//	             "outcome":"allow","policy":{"id":"prod-deploy"},"subject":"agent-7"},
//	 "logged_at":"2026-11-25T18:00:00.123456789Z",
//	 "submitter":"anonymous",
//	 "v":1}
//
// (on one line, without the white space). authorized_until appears for allow
// decisions only: it is logged_at truncated to the second plus the artifact
// lifetime. An execution report is logged as {"execution":…,"logged_at",
// "submitter","v"}. The leaf hash is SHA-256(0x00 ‖ leaf bytes).
//
// # The checkpoint
//
// A checkpoint is a C2SP tlog-checkpoint in a C2SP signed note, signed with
// the log's Ed25519 note key, whose name is the log origin. The checkpoint of
// the golden test log of eight entries (testdata/checkpoints/golden.note):
//
//	example.com/govlog
//	8
//	4bl4vT3b3QT+v+Bgihj1Hk0j4LnMmZLMsUHNGg0fbD8=
//
//	— example.com/govlog 8qgb67i0EcXnuZOZSfyn44ZAyT3IdtAbh+fayiB2af+3RIrFWRdvlgEqwuxsp1Wo5MkFrKCJ9q+8wJHmDsMaKQwGLgM=
//
// This package does no I/O: storage is behind Backend, and the network is
// the caller's business.
package log

import (
	"errors"
	"fmt"
)

// Errors returned by parsing, validation and the Backend contract. The server
// maps each to one HTTP status and error code; test for them with errors.Is.
var (
	// ErrInvalidJSON: the body is not strict JSON (syntax, duplicate keys,
	// invalid UTF-8, lone surrogates).
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrInvalidDecision: a decision breaks the schema; see FieldError.
	ErrInvalidDecision = errors.New("invalid decision")
	// ErrInvalidExecution: an execution report breaks the schema.
	ErrInvalidExecution = errors.New("invalid execution")
	// ErrInvalidRevocation: a revocation breaks the schema.
	ErrInvalidRevocation = errors.New("invalid revocation")
	// ErrTooLarge: the submission, or the entry it would make, is too large.
	ErrTooLarge = errors.New("too large")
	// ErrIDConflict: the id is already logged with other content or by
	// another submitter.
	ErrIDConflict = errors.New("id already logged with different content")
	// ErrSequenceConflict: the submitter already logged this sequence number.
	ErrSequenceConflict = errors.New("sequence number already used by this submitter")
	// ErrUnknownParent: parent_id names no decision in the log.
	ErrUnknownParent = errors.New("parent_id names no decision in the log")
	// ErrUnknownDecision: an execution's decision_id names no decision in
	// the log.
	ErrUnknownDecision = errors.New("decision_id names no decision in the log")
	// ErrNotAuthorized: an execution's decision_id names a deny. (The log
	// records such a report with the violation not_authorized; the error
	// is for clients and auditors.)
	ErrNotAuthorized = errors.New("decision_id names a deny decision")
	// ErrParentDenied: a decision's parent_id names a deny: lineage stops
	// there.
	ErrParentDenied = errors.New("parent_id names a deny decision")
	// ErrParentRevoked: a decision's parent_id names a revoked allow.
	ErrParentRevoked = errors.New("parent_id names a revoked allow")
	// ErrNotRevocable: a revocation names a deny: only an allow can be
	// revoked.
	ErrNotRevocable = errors.New("only an allow can be revoked")
	// ErrNotFound: no such entry, id, leaf hash or checkpoint.
	ErrNotFound = errors.New("not found")
	// ErrPushback: too many submissions are waiting; retry later.
	ErrPushback = errors.New("too many pending submissions")
	// ErrUnavailable: the log cannot append or acknowledge now (storage
	// failure, shutting down, quorum not reached). Nothing was acknowledged.
	ErrUnavailable = errors.New("log unavailable")
	// ErrOutOfRange: an index or tree size beyond the log.
	ErrOutOfRange = errors.New("index or size out of range")
	// ErrMalformedNote: a checkpoint is not a well-formed C2SP signed
	// note, or (when verified) a signature line is not canonical base64.
	ErrMalformedNote = errors.New("malformed signed note")
	// ErrFork: storage disagrees with a checkpoint the log already signed.
	// The log must not serve writes until an operator intervenes.
	ErrFork = errors.New("storage does not match a signed checkpoint")
)

// FieldError reports which field of a decision or execution report breaks
// the schema, and why. It wraps ErrInvalidDecision or ErrInvalidExecution.
type FieldError struct {
	Err    error  // ErrInvalidDecision or ErrInvalidExecution
	Field  string // dotted path, e.g. "policy.digest"
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("%v: %s: %s", e.Err, e.Field, e.Reason)
}

func (e *FieldError) Unwrap() error { return e.Err }
