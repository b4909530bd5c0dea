// Package verifier checks govlog evidence offline: receipts, checkpoints,
// consistency between checkpoints, and witness policies. It does no network
// and no storage I/O; its only inputs are the bytes of the evidence and the
// keys the caller trusts. It is meant to be read, audited and vendored by
// third parties, so it stays small: it depends on the standard library,
// golang.org/x/mod, transparency-dev/merkle and formats (and package log)
// only.
//
// Two packages build on it: verifier/artifact checks authorization
// artifacts (it needs a JWKS implementation, which brings net/http), and
// verifier/audit replays a whole log.
//
// # Receipts
//
// A receipt's offline form is a C2SP tlog-proof (c2sp.org/tlog-proof@v1)
// whose extra line carries the entry bytes:
//
//	c2sp.org/tlog-proof@v1
//	extra <base64 of the entry: the leaf bytes>
//	index <decimal leaf index>
//	<base64 inclusion proof hash, one a line, leaf to root>
//
//	<the checkpoint: a C2SP signed note>
//
// For example, the receipt of decision d-1, entry 1 of a log of three
// entries (the vector of ExampleReceipt), whose note verifier key is
//
//	example.com/govlog+7f05e4cd+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c
//
// is
//
//	c2sp.org/tlog-proof@v1
//	extra eyJhdXRob3JpemVkX3VudGlsIjoiMjAyNi0xMS0yNVQxODowNjowMFoiLCJkZWNpc2lvbiI6eyJhY3Rpb24iOiJkZXBsb3kiLCJkZWNpZGVkX2F0IjoiMjAyNi0xMS0yNVQxODowMDowMFoiLCJpZCI6ImQtMSIsIm91dGNvbWUiOiJhbGxvdyIsInBvbGljeSI6eyJpZCI6InByb2QtZGVwbG95In0sInJlc291cmNlIjoic3ZjL2FwaSIsInN1YmplY3QiOiJhZ2VudC03In0sImxvZ2dlZF9hdCI6IjIwMjYtMTEtMjVUMTg6MDE6MDAuMTIzNDU2Nzg5WiIsInN1Ym1pdHRlciI6ImNvbnRyb2wtcGxhbmUtMSIsInYiOjF9
//	index 1
//	uXo5bnWRbya3ZLYWlWQZSE3hO57riCusPoj0b5yyrPQ=
//	0TnOAxIpyO8gVE0kQ2zsVv3Tvv/Y1jkvRuLAneATTWA=
//
//	example.com/govlog
//	3
//	E+KMQJwv8RpWkkBJ80Itp8JCfKRyrxPkMQIFnxKvSZ8=
//
//	— example.com/govlog fwXkzTYQf1xXfkAsrJhwRhlqX8NDfvZCapxKR1MsNVRiSUQouXCJYvbT8Tr+JjRBHtjtzcxIRPGGHAB4UIPNC9JAKgQ=
//
// Receipt accepts a tlog-proof if and only if all of the following hold:
//
//  1. It is exactly the canonical encoding of what it says: parsing it and
//     encoding the result again gives the same bytes (no carriage returns,
//     no missing final newline, canonical base64, no leading zeros).
//  2. It has an extra line: the entry.
//  3. The checkpoint is a signed note whose every signature line is
//     canonical base64, carrying a valid Ed25519 signature by the log key;
//     its body is a C2SP tlog-checkpoint whose origin is the log key's name,
//     without extension lines. Other signatures (witness cosignatures) are
//     not checked here.
//  4. index < the checkpoint's size, and the RFC 6962 inclusion proof of
//     the leaf hash SHA-256(0x00 ‖ entry) at index leads to the
//     checkpoint's root hash.
//  5. The entry is a valid govlog entry (log.ParseEntry): canonical JSON of
//     the entry shape, holding a decision or execution report that obeys
//     the schema.
//
// Together these make every byte of an accepted tlog-proof significant,
// except the signature lines of keys other than the log's, which are left
// to a witness policy: changing any other byte breaks the encoding, the
// signature, or (short of a SHA-256 collision) the proof.
//
// The JSON receipt of the REST API (ReceiptJSON) carries the same evidence
// twice: as separate fields and as tlog_proof. It is accepted when its
// tlog_proof is, and every other field (id, index, leaf_hash, entry,
// checkpoint, inclusion_proof) says exactly what the tlog_proof says.
//
// # Consistency
//
// Consistency checks two checkpoints signed by the log key and the RFC
// 6962 consistency proof between them. When they disagree, the error is an
// *InconsistencyError holding both signed checkpoints and the proof: two
// checkpoints of the same size with different roots prove by themselves
// that the log forked; for different sizes, the failing proof is evidence
// when the log served it.
//
// ReceiptVerifier verifies many receipts of one log, checking each shared
// checkpoint's signature once (and opening its note once).
package verifier

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/internal/fastentry"
	"github.com/govlog/govlog/verifier/internal/strictjson"
	"github.com/transparency-dev/formats/proof"
	mproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Errors of the verifier. Every error it returns wraps exactly one of them;
// test with errors.Is.
var (
	// ErrMalformed: the evidence cannot be parsed, or is not in canonical
	// form.
	ErrMalformed = errors.New("malformed evidence")
	// ErrBadSignature: a checkpoint or artifact is not signed by the
	// trusted key.
	ErrBadSignature = errors.New("bad signature")
	// ErrBadCheckpoint: a checkpoint is signed by the log key but its body
	// is not a valid checkpoint of that log.
	ErrBadCheckpoint = errors.New("bad checkpoint")
	// ErrBadProof: an inclusion proof does not verify.
	ErrBadProof = errors.New("bad proof")
	// ErrBadEntry: the entry is not a valid govlog entry, or does not hash
	// to the leaf hash.
	ErrBadEntry = errors.New("bad entry")
	// ErrMismatch: two parts of the evidence that must agree do not (the
	// fields of a JSON receipt and its tlog_proof).
	ErrMismatch = errors.New("evidence does not agree with itself")
	// ErrInconsistent: two checkpoints of the log are not consistent; the
	// error is an *InconsistencyError.
	ErrInconsistent = errors.New("log is inconsistent")
)

// Size limits of the evidence this package reads.
const (
	// MaxTLogProofBytes bounds a tlog-proof: the base64 of the largest entry
	// (87,380 bytes), a 64-hash proof and a checkpoint with cosignatures.
	MaxTLogProofBytes = 128 << 10
	// MaxReceiptBytes bounds a JSON receipt, which holds the entry, proof
	// and checkpoint twice, plus an artifact.
	MaxReceiptBytes = 384 << 10
	// MaxCheckpointBytes bounds a checkpoint note with its cosignatures.
	MaxCheckpointBytes = 16 << 10
)

const tlogProofHeader = "c2sp.org/tlog-proof@v1"

// Verified is what a verified receipt proves: the entry Leaf is at Index in
// the log whose signed Checkpoint covers it.
type Verified struct {
	// Checkpoint is the checkpoint the receipt is against, verified with the
	// log key. Its Note is the signed note as received.
	Checkpoint log.Checkpoint
	// Index is the entry's index in the log.
	Index uint64
	// LeafHash is the RFC 6962 leaf hash of Leaf.
	LeafHash [32]byte
	// Leaf is the entry bytes.
	Leaf []byte
	// Entry is Leaf parsed and validated.
	Entry *log.ParsedEntry
	// InclusionProof is the inclusion proof of Leaf into Checkpoint.
	InclusionProof [][32]byte
}

// Receipt verifies a C2SP tlog-proof receipt against the log's note
// verifier key, whose name is the log origin. See the package
// documentation for exactly what is checked.
func Receipt(tlogProof []byte, logKey note.Verifier) (*Verified, error) {
	return receipt(tlogProof, logKey, nil)
}

// receipt is Receipt, taking the checkpoints cps opened before from it
// (nil: none).
func receipt(tlogProof []byte, logKey note.Verifier, cps *checkpointCache) (*Verified, error) {
	p, err := parseTLogProof(tlogProof)
	if err != nil {
		return nil, err
	}
	return verifyTLogProof(p, logKey, cps)
}

// verifyTLogProof is receipt of a parsed tlog-proof.
func verifyTLogProof(p *proof.TLogProof, logKey note.Verifier, cps *checkpointCache) (*Verified, error) {
	if p.ExtraData == nil {
		return nil, fmt.Errorf("%w: tlog-proof has no extra line, so it does not carry the entry", ErrMalformed)
	}
	cp, err := cps.open(p.Checkpoint, logKey)
	if err != nil {
		return nil, err
	}
	if p.Index >= cp.Size {
		return nil, fmt.Errorf("%w: index %d is not below the checkpoint size %d", ErrBadProof, p.Index, cp.Size)
	}
	// SPEC: "Appications MUST NOT implicitly trust the extra data, as it is
	// not authenticated." Here it is the entry itself: it is trusted only
	// because its leaf hash is proven included in the signed tree.
	leafHash := log.LeafHash(p.ExtraData)
	if err := verifyInclusion(p.Index, leafHash, p.Hashes, cp); err != nil {
		return nil, err
	}
	entry, err := fastentry.Parse(p.ExtraData) // log.ParseEntry, fast
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", ErrBadEntry, p.Index, err)
	}
	return &Verified{
		Checkpoint:     cp,
		Index:          p.Index,
		LeafHash:       leafHash,
		Leaf:           p.ExtraData,
		Entry:          entry,
		InclusionProof: p.Hashes,
	}, nil
}

// verifyInclusion checks the RFC 6962 inclusion proof of leafHash at index
// against the checkpoint's root.
func verifyInclusion(index uint64, leafHash [32]byte, hashes [][32]byte, cp log.Checkpoint) error {
	err := mproof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leafHash[:], sliceHashes(hashes), cp.Hash[:])
	var mismatch mproof.RootMismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w: inclusion proof does not lead to the checkpoint root", ErrBadProof)
	default:
		return fmt.Errorf("%w: inclusion proof of index %d in a tree of size %d is malformed: %w", ErrBadProof, index, cp.Size, err)
	}
}

func sliceHashes(hashes [][32]byte) [][]byte {
	out := make([][]byte, len(hashes))
	for i := range hashes {
		out[i] = hashes[i][:]
	}
	return out
}

// parseTLogProof parses a tlog-proof and requires it to be in canonical
// form.
func parseTLogProof(data []byte) (*proof.TLogProof, error) {
	if len(data) > MaxTLogProofBytes {
		return nil, fmt.Errorf("%w: tlog-proof is %d bytes, the limit is %d", ErrMalformed, len(data), MaxTLogProofBytes)
	}
	if p, ok := fastTLogProof(data); ok { // the canonical form, fast (tlogproof_fast.go)
		return p, nil
	}
	// The formats parser reads lines with a bufio.Scanner, whose 64 KiB
	// line limit is shorter than the extra line of an entry near
	// log.MaxEntryBytes (87,386 bytes). So the extra line is taken out
	// here, decoded with strict base64, and the rest parsed by formats.
	//
	// SPEC: "The first line MUST be the string `c2sp.org/tlog-proof@v1`."
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok || string(header) != tlogProofHeader {
		return nil, fmt.Errorf("%w: tlog-proof does not start with the line %q", ErrMalformed, tlogProofHeader)
	}
	var extra []byte
	if b64, after, ok := bytes.Cut(rest, []byte("\n")); ok && bytes.HasPrefix(b64, []byte("extra ")) {
		var err error
		if extra, err = base64.StdEncoding.Strict().DecodeString(string(b64[len("extra "):])); err != nil {
			return nil, fmt.Errorf("%w: tlog-proof extra line is not base64: %w", ErrMalformed, err)
		}
		rest = after
	}
	var p proof.TLogProof
	if err := p.Unmarshal(append([]byte(tlogProofHeader+"\n"), rest...)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	p.ExtraData = extra
	// SPEC: the index is "an ASCII decimal with no leading zeroes (unless
	// the index is `0`)". Re-encoding enforces that, canonical base64, and
	// newline-only line ends: no two encodings of one proof are accepted.
	if !bytes.Equal(p.Marshal(), data) {
		return nil, fmt.Errorf("%w: tlog-proof is not in canonical form", ErrMalformed)
	}
	return &p, nil
}

// Checkpoint verifies a checkpoint note signed by the log key (whose name is
// the origin) and returns it parsed. Every signature line must be canonical
// base64; signatures by keys other than the log key are not checked.
func Checkpoint(text []byte, logKey note.Verifier) (log.Checkpoint, error) {
	origin := logKey.Name()
	if len(text) > MaxCheckpointBytes {
		return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is %d bytes, the limit is %d", ErrMalformed, len(text), MaxCheckpointBytes)
	}
	cp, err := log.OpenCheckpoint(text, logKey)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case err == nil:
	case errors.As(err, &unverified):
		for _, sig := range unverified.Note.UnverifiedSigs {
			if sig.Name == origin {
				return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is not signed by %s: it is signed by a key of that name "+
					"with key ID %08x, the key given has key ID %08x: the key differs", ErrBadSignature, origin, sig.Hash, logKey.KeyHash())
			}
		}
		return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is not signed by %s", ErrBadSignature, origin)
	case errors.As(err, &invalid):
		return log.Checkpoint{}, fmt.Errorf("%w: checkpoint signature by %s is invalid", ErrBadSignature, origin)
	case errors.Is(err, log.ErrMalformedNote):
		return log.Checkpoint{}, fmt.Errorf("%w: checkpoint is not a signed note: %w", ErrMalformed, err)
	default:
		return log.Checkpoint{}, fmt.Errorf("%w: checkpoint signed by %s: %w", ErrBadCheckpoint, origin, err)
	}
	return cp, nil
}

// receiptJSON is the JSON receipt of the REST API, with the byte fields as
// strings so that their base64 can be checked strictly.
type receiptJSON struct {
	ID             string   `json:"id"`
	Index          uint64   `json:"index"`
	LeafHash       string   `json:"leaf_hash"`
	Entry          string   `json:"entry"`
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof []string `json:"inclusion_proof"`
	TLogProof      string   `json:"tlog_proof"`
	Artifact       string   `json:"artifact"`
}

var receiptFields = []string{"id", "index", "leaf_hash", "entry", "checkpoint", "inclusion_proof", "tlog_proof"}

// ReceiptJSON verifies a JSON receipt of the REST API: its tlog_proof as
// Receipt does, and that each of its other fields (id, index, leaf_hash,
// entry, checkpoint, inclusion_proof) says exactly what the tlog_proof
// says. The JSON must have all of these fields, each once, and no unknown
// field. The artifact, when present, is not checked here: pass it to
// Artifact with the returned *Verified.
func ReceiptJSON(body []byte, logKey note.Verifier) (*Verified, error) {
	return verifyReceiptJSON(body, logKey, nil)
}

// verifyReceiptJSON is ReceiptJSON, taking the checkpoints cps opened before
// from it (nil: none).
func verifyReceiptJSON(body []byte, logKey note.Verifier, cps *checkpointCache) (*Verified, error) {
	if len(body) > MaxReceiptBytes {
		return nil, fmt.Errorf("%w: receipt is %d bytes, the limit is %d", ErrMalformed, len(body), MaxReceiptBytes)
	}
	keys, err := strictjson.ObjectKeys(body)
	if err != nil {
		return nil, fmt.Errorf("%w: receipt: %w", ErrMalformed, err)
	}
	for _, f := range receiptFields {
		if !slices.Contains(keys, f) {
			return nil, fmt.Errorf("%w: receipt has no %s", ErrMalformed, f)
		}
	}
	// encoding/json matches member names without regard to case: "ID"
	// would be read as id.
	for _, k := range keys {
		if k != "artifact" && !slices.Contains(receiptFields, k) {
			return nil, fmt.Errorf("%w: receipt has an unknown member %q", ErrMalformed, k)
		}
	}
	var r receiptJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: receipt: %w", ErrMalformed, err)
	}
	// The fields are compared with the parsed tlog_proof first, which is
	// cheap, then the tlog_proof is verified.
	p, err := parseTLogProof([]byte(r.TLogProof))
	if err != nil {
		return nil, fmt.Errorf("tlog_proof: %w", err)
	}
	entry, err := log.DecodeBase64(base64.StdEncoding, r.Entry)
	if err != nil {
		return nil, fmt.Errorf("%w: receipt entry is not base64", ErrMalformed)
	}
	leafHash, err := log.DecodeBase64(base64.StdEncoding, r.LeafHash)
	if err != nil {
		return nil, fmt.Errorf("%w: receipt leaf_hash is not base64", ErrMalformed)
	}
	switch lh := log.LeafHash(entry); {
	case r.Index != p.Index:
		return nil, fmt.Errorf("%w: receipt index %d is not the tlog_proof index %d", ErrMismatch, r.Index, p.Index)
	case !bytes.Equal(entry, p.ExtraData):
		return nil, fmt.Errorf("%w: receipt entry is not the tlog_proof entry", ErrMismatch)
	case !bytes.Equal(leafHash, lh[:]):
		return nil, fmt.Errorf("%w: entry does not hash to leaf_hash", ErrMismatch)
	case r.Checkpoint != string(p.Checkpoint):
		return nil, fmt.Errorf("%w: receipt checkpoint is not the tlog_proof checkpoint", ErrMismatch)
	case len(r.InclusionProof) != len(p.Hashes):
		return nil, fmt.Errorf("%w: receipt inclusion_proof has %d hashes, the tlog_proof %d", ErrMismatch, len(r.InclusionProof), len(p.Hashes))
	}
	for i, s := range r.InclusionProof {
		h, err := log.DecodeBase64(base64.StdEncoding, s)
		if err != nil {
			return nil, fmt.Errorf("%w: receipt inclusion_proof[%d] is not base64", ErrMalformed, i)
		}
		if !bytes.Equal(h, p.Hashes[i][:]) {
			return nil, fmt.Errorf("%w: receipt inclusion_proof[%d] is not the tlog_proof hash", ErrMismatch, i)
		}
	}
	v, err := verifyTLogProof(p, logKey, cps)
	if err != nil {
		return nil, fmt.Errorf("tlog_proof: %w", err)
	}
	if r.ID != v.Entry.ID {
		return nil, fmt.Errorf("%w: receipt id %q is not the id of its entry, %q", ErrMismatch, r.ID, v.Entry.ID)
	}
	return v, nil
}
