package verifier

import (
	"bytes"
	"fmt"

	"github.com/govlog/govlog/log"
	"golang.org/x/mod/sumdb/note"
)

// VerifiedKey is what a verified key receipt proves: the artifact signing
// key Key was logged at Index in the log whose signed Checkpoint covers it.
type VerifiedKey struct {
	*Verified
	// Key is the key entry's content: kid and Ed25519 public key.
	Key *log.KeyContent
}

// KeyReceipt verifies the receipt of a key entry (wire contract §2e)
// against the log's note verifier key: a C2SP tlog-proof whose extra line
// is the entry (as Receipt), or a JSON receipt of the REST API, as GET
// /v1/keys serves them (as ReceiptJSON: its id is the kid). The entry must
// be a key entry.
func KeyReceipt(receipt []byte, logKey note.Verifier) (*VerifiedKey, error) {
	var v *Verified
	var err error
	if bytes.HasPrefix(receipt, []byte("{")) {
		v, err = ReceiptJSON(receipt, logKey)
	} else {
		v, err = Receipt(receipt, logKey)
	}
	if err != nil {
		return nil, err
	}
	if v.Entry.Kind != log.KindKey || v.Entry.Key == nil {
		return nil, fmt.Errorf("%w: entry %d is a %v entry, not a key", ErrBadEntry, v.Index, v.Entry.Kind)
	}
	return &VerifiedKey{Verified: v, Key: v.Entry.Key}, nil
}
