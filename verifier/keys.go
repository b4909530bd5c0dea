package verifier

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/internal/strictjson"
	"golang.org/x/mod/sumdb/note"
)

// VerifiedKey is what a verified key receipt proves: the artifact signing
// key Key was logged at Index in the log whose signed Checkpoint covers it.
type VerifiedKey struct {
	Checkpoint     log.Checkpoint
	Index          uint64
	LeafHash       [32]byte
	Leaf           []byte
	Key            *log.KeyEntry
	InclusionProof [][32]byte
}

// KeyReceipt verifies the receipt of a key entry (wire contract §2e)
// against the log's note verifier key: a C2SP tlog-proof whose extra line
// is the entry, or a JSON receipt of the REST API (as GET /v1/keys serves
// them) whose fields all agree with its tlog_proof. Every check of Receipt
// is made, except that the entry must be a key entry (log.ParseKeyEntry)
// instead of a decision or execution report.
func KeyReceipt(receipt []byte, logKey note.Verifier) (*VerifiedKey, error) {
	if bytes.HasPrefix(receipt, []byte("{")) {
		return keyReceiptJSON(receipt, logKey)
	}
	p, err := parseTLogProof(receipt)
	if err != nil {
		return nil, err
	}
	if p.ExtraData == nil {
		return nil, fmt.Errorf("%w: tlog-proof has no extra line, so it does not carry the entry", ErrMalformed)
	}
	cp, err := Checkpoint(p.Checkpoint, logKey)
	if err != nil {
		return nil, err
	}
	if p.Index >= cp.Size {
		return nil, fmt.Errorf("%w: index %d is not below the checkpoint size %d", ErrBadProof, p.Index, cp.Size)
	}
	// SPEC: "Appications MUST NOT implicitly trust the extra data, as it is
	// not authenticated." It is trusted only once its leaf hash is proven
	// included in the signed tree.
	leafHash := log.LeafHash(p.ExtraData)
	if err := verifyInclusion(p.Index, leafHash, p.Hashes, cp); err != nil {
		return nil, err
	}
	key, err := log.ParseKeyEntry(p.ExtraData)
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", ErrBadEntry, p.Index, err)
	}
	return &VerifiedKey{Checkpoint: cp, Index: p.Index, LeafHash: leafHash, Leaf: p.ExtraData, Key: key, InclusionProof: p.Hashes}, nil
}

// keyReceiptJSON verifies a JSON receipt of a key entry as ReceiptJSON
// does a decision's: its id is the key's kid.
func keyReceiptJSON(body []byte, logKey note.Verifier) (*VerifiedKey, error) {
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
	for _, k := range keys {
		if !slices.Contains(receiptFields, k) {
			return nil, fmt.Errorf("%w: key receipt has an unknown member %q", ErrMalformed, k)
		}
	}
	var r receiptJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: receipt: %w", ErrMalformed, err)
	}
	v, err := KeyReceipt([]byte(r.TLogProof), logKey)
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
	switch {
	case r.Index != v.Index:
		return nil, fmt.Errorf("%w: receipt index %d is not the tlog_proof index %d", ErrMismatch, r.Index, v.Index)
	case !bytes.Equal(entry, v.Leaf):
		return nil, fmt.Errorf("%w: receipt entry is not the tlog_proof entry", ErrMismatch)
	case !bytes.Equal(leafHash, v.LeafHash[:]):
		return nil, fmt.Errorf("%w: entry does not hash to leaf_hash", ErrMismatch)
	case r.Checkpoint != string(v.Checkpoint.Note):
		return nil, fmt.Errorf("%w: receipt checkpoint is not the tlog_proof checkpoint", ErrMismatch)
	case len(r.InclusionProof) != len(v.InclusionProof):
		return nil, fmt.Errorf("%w: receipt inclusion_proof has %d hashes, the tlog_proof %d", ErrMismatch, len(r.InclusionProof), len(v.InclusionProof))
	case r.ID != v.Key.Kid:
		return nil, fmt.Errorf("%w: receipt id %q is not the kid of its key entry, %q", ErrMismatch, r.ID, v.Key.Kid)
	}
	for i, s := range r.InclusionProof {
		h, err := log.DecodeBase64(base64.StdEncoding, s)
		if err != nil {
			return nil, fmt.Errorf("%w: receipt inclusion_proof[%d] is not base64", ErrMalformed, i)
		}
		if !bytes.Equal(h, v.InclusionProof[i][:]) {
			return nil, fmt.Errorf("%w: receipt inclusion_proof[%d] is not the tlog_proof hash", ErrMismatch, i)
		}
	}
	return v, nil
}
