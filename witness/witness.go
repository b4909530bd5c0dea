// Package witness is a cosigning witness for transparency logs: the C2SP
// tlog-witness protocol (c2sp.org/tlog-witness) with Ed25519 cosignature/v1
// cosignatures (c2sp.org/tlog-cosignature).
//
// A witness is configured with the note verifier keys of the logs it
// follows; a log's origin is its key's name. It remembers, for each log,
// the latest checkpoint it cosigned, and cosigns a new checkpoint only when
// a consistency proof shows that it extends that one. A log that shows two
// different histories to two parties cannot get both cosigned by the same
// witness, so a client that requires cosignatures from a quorum of
// witnesses cannot be shown a split view.
//
// # The protocol
//
// A log submits a checkpoint with POST /add-checkpoint. The body is the
// size of the checkpoint the witness last cosigned for it ("old"), the RFC
// 6962 consistency proof from that size, an empty line and the checkpoint.
// For example (the vectors of ExampleWitness_Update: the log of the leaves
// "leaf 0" … "leaf 4" whose key is
// example.com/govlog+7f05e4cd+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c),
// from size 3 to size 5:
//
//	old 3
//	qze6NNHf4pAV3nF6bVdkqPsCnDp6D1tkuTtUNRiFv3w=
//	WL0UluFoSqySAcLmh+565PUclqiw2B7zWDYouT0800U=
//	/F9riP+FVPdbsvnm85wxsZNtRLaSdu33sSBalVuXYeM=
//	gxFfiUeVX6/cKifn9MCFS72Nonuxs+NAXbVxya+Nvho=
//
//	example.com/govlog
//	5
//	NBUVmC1lDiNSDb1U1/zwr6G3DMOhakEdRk3JwayWwwE=
//
//	— example.com/govlog fwXkzTvrtWmTOuwL2VqVZKmV/MVa6hphA1P65OwojdqZBHQYiMR0DWTUABdiEJtFM7ifV3xdJZyyBI3iMsjupYea2AM=
//
// The witness whose key is
// witness.example/w1+df1c0a35+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU
// answers, at 2026-11-25T18:00:00Z, with the line to append to the note:
//
//	— witness.example/w1 3xwKNQAAAABrByIg2aGm0gTRz2ui+YaOPjsZljrImSEDr3nLDbPW+xGXlU3bU+BIFniomNqPXbtZOjUCQjzOPYVX28xBreqbJxKWDg==
//
// A cosignature line carries the witness key's 4-byte key ID, then the
// timestamped_signature of tlog-cosignature: an 8-byte big-endian POSIX
// timestamp (never zero) and an Ed25519 signature of
//
//	cosignature/v1
//	time <timestamp>
//	<the checkpoint body: origin, size, root hash and any extension lines>
//
// Update answers, status for status (the HTTP adapter maps its errors):
//
//	400 Bad Request           the body or the checkpoint is malformed, or old > the checkpoint size
//	403 Forbidden             no valid signature by a key the witness trusts for the origin
//	404 Not Found             the origin is not a log this witness follows
//	409 Conflict              old is not the size the witness last cosigned; the body is that
//	                          size and a newline (Content-Type: text/x.tlog.size)
//	413 Content Too Large     the body is larger than MaxBodyBytes
//	422 Unprocessable Entity  the consistency proof does not verify; a checkpoint of the size
//	                          last cosigned has another root hash (a fork); a size-0 checkpoint
//	                          whose root is not SHA-256 of the empty string; old 0 with a proof
//	200 OK                    the cosignature lines
//
// These are the rules of tlog-witness v1.0.0 with the stricter ones of its
// current draft: v1.0.0 answered 409 to a same-size fork, which is now 422.
//
// # State
//
// The state is one SQLite row per log (WAL, synchronous=FULL): the size,
// root hash and note of the latest cosigned checkpoint. Update checks a
// request against the row it read, signs, then stores the new checkpoint
// with a compare-and-swap, UPDATE … WHERE origin = ? AND size = ? AND hash
// = ?, before it answers. When two requests race, the swap of the first
// makes the second's fail, and the second gets 409 with the new size: the
// state never moves backwards, and a cosignature is only returned once its
// checkpoint is durable.
//
// # Reads
//
// GET / describes the witness as JSON, {"name", "verifier_key", "logs":
// [{"origin", "verifier_key", "tree_size"}]}, and GET
// /<lowercase hex SHA-256 of an origin>/checkpoint serves the latest
// checkpoint the witness cosigned for that log, with the log signatures it
// verified and its own cosignature (the monitor retrieval API of the
// tlog-witness draft).
package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// Errors of Update. Each maps to one HTTP status (see the package
// documentation); test for them with errors.Is.
var (
	// ErrMalformed: the request or the checkpoint cannot be parsed (400).
	ErrMalformed = errors.New("malformed request")
	// ErrOldSize: the old size is larger than the checkpoint size (400).
	ErrOldSize = errors.New("old size is larger than the checkpoint size")
	// ErrUnknownLog: the checkpoint's origin is not a log the witness
	// follows (404).
	ErrUnknownLog = errors.New("unknown log")
	// ErrNoSignature: the checkpoint has no valid signature by a key the
	// witness trusts for its origin, or a signature by such a key does not
	// verify (403).
	ErrNoSignature = errors.New("no valid signature by a trusted log key")
	// ErrConflict: the old size is not the size of the checkpoint the
	// witness last cosigned (409). The error is a *ConflictError.
	ErrConflict = errors.New("old size is not the size the witness last cosigned")
	// ErrInconsistent: the checkpoint is not consistent with the one the
	// witness last cosigned, or cannot be checked to be (422).
	ErrInconsistent = errors.New("checkpoint is not consistent")
	// ErrUnavailable: the witness state cannot be read or written now.
	ErrUnavailable = errors.New("witness state unavailable")
)

// ConflictError is a 409: Size is the size of the latest checkpoint the
// witness cosigned for the log. It wraps ErrConflict.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: it last cosigned size %d", ErrConflict, e.Size)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Limits of a request.
const (
	// MaxBodyBytes bounds an add-checkpoint request body.
	MaxBodyBytes = 64 << 10
	// MaxProofHashes is the most consistency proof lines a request may
	// carry.
	MaxProofHashes = 63
)

// Config configures a Witness. The zero value of each optional field
// selects the default named in its comment.
type Config struct {
	// Key is the witness's private key, a note signer key
	// (PRIVATE+KEY+<name>+<key ID>+<base64>) of type Ed25519 cosignature/v1
	// (0x04), as GenerateKey writes, or plain Ed25519 (0x01). Its name is
	// the witness name. Required.
	Key string
	// Logs are the note verifier keys of the logs to follow. A log's origin
	// is its key's name; several keys with one name are all trusted for
	// that origin (key rotation). Ed25519 (0x01), ECDSA (0x02) and RFC 6962
	// STH (0x05) keys are accepted. Required: at least one.
	Logs []string
	// Database is the path of the SQLite state database, created if
	// missing; its directory must exist. Required.
	Database string
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// Registerer, when set, receives the witness's metrics:
	// govlog_witness_updates_total{origin,result},
	// govlog_witness_update_duration_seconds and
	// govlog_witness_tree_size{origin} (metrics.go). Default: none.
	Registerer prometheus.Registerer
}

// Witness is a cosigning witness. Its methods are safe for concurrent use.
// Create it with New.
type Witness struct {
	signer      note.Signer
	name        string
	verifierKey string
	// logs maps each origin to its trusted keys; fixed after New.
	logs    map[string]*logKeys
	origins []string // sorted
	store   *store
	logger  *slog.Logger
	metrics *metrics

	// beforeSwap, when set (tests only), runs after a request passed every
	// check and was signed, just before its compare-and-swap.
	beforeSwap func()
}

// logKeys are the keys trusted for one origin.
type logKeys struct {
	verifiers note.Verifiers
	keys      []string // the vkeys, as configured
}

// New opens (or creates) the state database and returns the witness. It
// does not mutate cfg.
func New(ctx context.Context, cfg Config) (*Witness, error) {
	signer, vkey, err := parseKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("failed to create witness: %w", err)
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("failed to create witness: no log keys (Logs)")
	}
	if cfg.Database == "" {
		return nil, errors.New("failed to create witness: Database is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w := &Witness{
		signer:      signer,
		name:        signer.Name(),
		verifierKey: vkey,
		logs:        make(map[string]*logKeys),
		logger:      logger,
	}
	verifiers := make(map[string][]note.Verifier)
	for _, k := range cfg.Logs {
		v, err := parseLogKey(k)
		if err != nil {
			return nil, fmt.Errorf("failed to create witness: log key %q: %w", k, err)
		}
		origin := v.Name()
		if _, ok := w.logs[origin]; !ok {
			w.logs[origin] = &logKeys{}
			w.origins = append(w.origins, origin)
		}
		lk := w.logs[origin]
		for _, have := range lk.keys {
			if have == k {
				return nil, fmt.Errorf("failed to create witness: log key %q given twice", k)
			}
		}
		lk.keys = append(lk.keys, k)
		verifiers[origin] = append(verifiers[origin], v)
	}
	sort.Strings(w.origins)
	for origin, vs := range verifiers {
		w.logs[origin].verifiers = note.VerifierList(vs...)
	}
	if w.store, err = openStore(ctx, cfg.Database, w.origins); err != nil {
		return nil, err
	}
	if w.metrics, err = newMetrics(cfg.Registerer, w); err != nil {
		w.store.close()
		return nil, err
	}
	return w, nil
}

// Close closes the state database. No method may be called after it.
func (w *Witness) Close() error {
	if w.metrics != nil {
		w.metrics.unregister()
	}
	return w.store.close()
}

// Name is the witness's name: its key's name and the name of its
// cosignature lines.
func (w *Witness) Name() string { return w.name }

// VerifierKey is the witness's cosignature/v1 note verifier key (type 0x04).
func (w *Witness) VerifierKey() string { return w.verifierKey }

// Update is the add-checkpoint call without HTTP: it checks checkpoint (a
// signed note) against the latest checkpoint the witness cosigned for its
// origin, given the size of that one (oldSize) and the consistency proof
// from it, and returns the witness's cosignature lines ("— <name>
// <base64>\n") once the checkpoint is stored as the latest. Errors wrap
// one of the package's sentinel errors; a conflict is a *ConflictError.
func (w *Witness) Update(ctx context.Context, oldSize uint64, checkpoint []byte, consistency [][]byte) ([]byte, error) {
	start := time.Now()
	origin, size, cosig, err := w.update(ctx, oldSize, checkpoint, consistency)
	w.metrics.observe(origin, err, time.Since(start), size)
	return cosig, err
}

// update is Update; it also returns the origin (when known) and size of the
// checkpoint, for the metrics.
func (w *Witness) update(ctx context.Context, oldSize uint64, checkpoint []byte, consistency [][]byte) (string, uint64, []byte, error) {
	first, _, ok := bytes.Cut(checkpoint, []byte("\n"))
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: the checkpoint has no origin line", ErrMalformed)
	}
	// SPEC: "If the checkpoint origin is unknown, the witness MUST respond
	// with a "404 Not Found" HTTP status code."
	keys, ok := w.logs[string(first)]
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: %q", ErrUnknownLog, clip(string(first)))
	}
	origin := string(first)
	fail := func(err error) (string, uint64, []byte, error) { return origin, 0, nil, err }

	// SPEC: "The witness MUST verify the checkpoint signature against the
	// public key(s) it trusts for the checkpoint origin, and it MUST ignore
	// signatures from unknown keys." and "The witness MUST respond with a
	// "403 Forbidden" HTTP status code if either no signature from a
	// trusted key for the origin is present, or a signature line's key name
	// and ID match a trusted key but the signature itself fails to verify".
	//
	// The checkpoint body is parsed strictly (canonical decimal size,
	// canonical base64 of a 32-byte hash), with extension lines allowed
	// but not empty ones.
	cp, n, err := log.ParseCheckpoint(checkpoint, log.CheckpointRules{Verifiers: keys.verifiers, Extensions: true})
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		return fail(fmt.Errorf("%w: no signature by a key trusted for %s", ErrNoSignature, origin))
	case errors.As(err, &invalid):
		return fail(fmt.Errorf("%w: the signature by %s+%08x does not verify", ErrNoSignature, invalid.Name, invalid.Hash))
	case err != nil:
		return fail(fmt.Errorf("%w: %w", ErrMalformed, err))
	case cp.Size > math.MaxInt64:
		// The state stores sizes as SQLite integers.
		return fail(fmt.Errorf("%w: the tree size %d is beyond 2^63-1", ErrMalformed, cp.Size))
	}

	// SPEC: "The old size MUST be equal to or lower than the checkpoint
	// size. Otherwise, the witness MUST respond with a "400 Bad Request"
	// HTTP status code."
	if oldSize > cp.Size {
		return fail(fmt.Errorf("%w: old %d, checkpoint %d", ErrOldSize, oldSize, cp.Size))
	}
	// SPEC: "A checkpoint of size zero MUST have the root hash of the empty
	// tree, which [RFC 6962], Section 2.1 defines as the hash of the empty
	// string. Otherwise, the witness MUST respond with a "422 Unprocessable
	// Entity" HTTP status code."
	if cp.Size == 0 && cp.Hash != log.EmptyRoot {
		return fail(fmt.Errorf("%w: a checkpoint of size 0 must have the root SHA-256(\"\")", ErrInconsistent))
	}
	// SPEC: "If the old size is zero, the consistency proof MUST be empty,
	// because the empty tree is consistent with any tree, so no proof is
	// necessary." and "If the proof is not empty when the old size is zero
	// [...] the witness MUST respond with a "422 Unprocessable Entity" HTTP
	// status code."
	if oldSize == 0 && len(consistency) != 0 {
		return fail(fmt.Errorf("%w: old size 0 needs an empty consistency proof, got %d hashes", ErrInconsistent, len(consistency)))
	}

	prev, err := w.store.get(ctx, origin)
	if err != nil {
		return fail(err)
	}
	// SPEC: "The witness MUST check that the old size matches the size of
	// the latest checkpoint it cosigned for the checkpoint's origin (or
	// zero if it never cosigned a checkpoint for that origin). If it
	// doesn't match, the witness MUST respond with a "409 Conflict" HTTP
	// status code."
	if oldSize != prev.size {
		return fail(&ConflictError{Size: prev.size})
	}
	switch {
	case cp.Size == prev.size:
		// SPEC: "If the old size matches the checkpoint size, the witness
		// MUST check that the root hashes are also identical. If they
		// don't match, the witness MUST respond with a "422 Unprocessable
		// Entity" HTTP status code."
		//
		// SPEC: "If the origin is known, and the signature is valid, the
		// witness MAY log the request even if the checkpoint fails one of
		// the consistency checks above (but MUST NOT cosign the
		// checkpoint), as it might be proof of log misbehavior."
		if cp.Hash != prev.hash {
			w.logger.Error("FORK: a validly signed checkpoint has the size of the one last cosigned but another root hash",
				"origin", origin, "size", cp.Size, "cosigned_checkpoint", string(prev.checkpoint),
				"submitted_checkpoint", string(checkpoint))
			return fail(&inconsistencyError{"fork", fmt.Errorf("%w: the checkpoint of size %d has another root hash than the one cosigned (a fork)", ErrInconsistent, cp.Size)})
		}
		if len(consistency) != 0 {
			return fail(fmt.Errorf("%w: the consistency proof between trees of the same size must be empty", ErrInconsistent))
		}
	case oldSize == 0:
		// Trust on first use: the empty tree is consistent with any tree.
	default:
		// SPEC: "the consistency proof lines MUST encode a Merkle
		// Consistency Proof from the old size to the checkpoint size
		// according to [RFC 6962], Section 2.1.2." and "if a Merkle
		// Consistency Proof doesn't verify, the witness MUST respond with a
		// "422 Unprocessable Entity" HTTP status code."
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prev.size, cp.Size, consistency, prev.hash[:], cp.Hash[:]); err != nil {
			w.logger.Warn("refused a checkpoint whose consistency proof does not verify",
				"origin", origin, "old", prev.size, "size", cp.Size, "cosigned_checkpoint", string(prev.checkpoint),
				"submitted_checkpoint", string(checkpoint), "proof", b64List(consistency), "err", err)
			return fail(&inconsistencyError{"bad_proof", fmt.Errorf("%w: the consistency proof from size %d to %d does not verify: %w", ErrInconsistent, prev.size, cp.Size, err)})
		}
	}

	cosig, stored, err := w.cosign(n)
	if err != nil {
		return fail(err)
	}
	if w.beforeSwap != nil {
		w.beforeSwap()
	}
	// SPEC: "The witness MUST persist the new checkpoint before responding.
	// Note that checking the old size against the latest checkpoint and
	// persisting the new checkpoint must be performed atomically" — here,
	// a compare-and-swap on the (size, hash) read above.
	swapped, err := w.store.swap(ctx, origin, prev, cp.Size, cp.Hash, stored)
	if err != nil {
		return fail(err)
	}
	if !swapped {
		now, err := w.store.get(ctx, origin)
		if err != nil {
			return fail(err)
		}
		w.logger.Info("lost a race: another request updated the log first", "origin", origin, "old", oldSize, "size", cp.Size, "now", now.size)
		return fail(&ConflictError{Size: now.size})
	}
	w.logger.Debug("cosigned", "origin", origin, "old", oldSize, "size", cp.Size)
	return origin, cp.Size, cosig, nil
}

// cosign signs the checkpoint text. It returns the cosignature line and the
// note to store: the text with the log signatures the witness verified and
// its own cosignature.
//
// SPEC: "The signatures MUST be [cosignatures] from the witness key(s) on
// the checkpoint." and "The cosignature MUST NOT omit the timestamp, i.e.
// the timestamp MUST NOT be zero." — the cosignature/v1 signer stamps the
// current time.
func (w *Witness) cosign(n *note.Note) (cosig, stored []byte, err error) {
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to cosign: %w", err)
	}
	cosig = signed[len(n.Text)+1:]
	logSigned, err := note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to serialize the checkpoint: %w", err)
	}
	return cosig, append(logSigned, cosig...), nil
}

// LogState is what the witness knows of one log.
type LogState struct {
	// Origin is the log's origin.
	Origin string `json:"origin"`
	// VerifierKeys are the log keys the witness trusts for it.
	VerifierKeys []string `json:"-"`
	// Size is the size of the latest checkpoint the witness cosigned (0
	// when none).
	Size uint64 `json:"tree_size"`
	// Hash is that checkpoint's root hash.
	Hash [32]byte `json:"-"`
	// Checkpoint is the cosigned checkpoint note; nil when none.
	Checkpoint []byte `json:"-"`
}

// Logs returns the state of every log the witness follows, by origin.
func (w *Witness) Logs(ctx context.Context) ([]LogState, error) {
	out := make([]LogState, 0, len(w.origins))
	for _, origin := range w.origins {
		st, err := w.store.get(ctx, origin)
		if err != nil {
			return nil, err
		}
		out = append(out, LogState{
			Origin:       origin,
			VerifierKeys: append([]string(nil), w.logs[origin].keys...),
			Size:         st.size,
			Hash:         st.hash,
			Checkpoint:   st.checkpoint,
		})
	}
	return out, nil
}

// Checkpoint returns the latest checkpoint the witness cosigned for a log,
// with the log signatures it verified and its cosignature. ErrUnknownLog if
// it does not follow the log or never cosigned one of its checkpoints.
func (w *Witness) Checkpoint(ctx context.Context, origin string) ([]byte, error) {
	if _, ok := w.logs[origin]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, clip(origin))
	}
	st, err := w.store.get(ctx, origin)
	if err != nil {
		return nil, err
	}
	if st.checkpoint == nil {
		return nil, fmt.Errorf("%w: no checkpoint of %s was cosigned yet", ErrUnknownLog, origin)
	}
	return st.checkpoint, nil
}

// originByHash finds a followed origin by the lowercase hex SHA-256 of its
// name.
func (w *Witness) originByHash(h string) (string, bool) {
	for _, origin := range w.origins {
		sum := sha256.Sum256([]byte(origin))
		if hex.EncodeToString(sum[:]) == h {
			return origin, true
		}
	}
	return "", false
}

// parseLogKey parses a log's note verifier key. Cosignature keys are not
// log keys.
func parseLogKey(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) == 3 {
		if raw, err := base64.StdEncoding.DecodeString(parts[2]); err == nil && len(raw) > 0 {
			switch raw[0] {
			case 0x01, 0x02, 0x05:
			default:
				return nil, fmt.Errorf("key type 0x%02x is not a log signature type (want Ed25519 0x01, ECDSA 0x02 or RFC 6962 0x05)", raw[0])
			}
		}
	}
	v, err := fnote.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("not a note verifier key: %w", err)
	}
	return v, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func b64List(hashes [][]byte) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = b64(h)
	}
	return out
}

// clip shortens untrusted text quoted in errors and logs.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
