package verifier

import (
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// ReceiptVerifier verifies many receipts of one log, as Receipt and
// ReceiptJSON do, faster: the signature of a checkpoint that several
// receipts share is checked once (receipts of one batch, or fetched
// against the same latest checkpoint, all share theirs). It is safe for
// concurrent use.
type ReceiptVerifier struct {
	key *cachingVerifier
}

// NewReceiptVerifier returns a ReceiptVerifier for the log whose note
// verifier key is logKey.
func NewReceiptVerifier(logKey note.Verifier) *ReceiptVerifier {
	return &ReceiptVerifier{key: &cachingVerifier{Verifier: logKey, seen: make(map[string]bool)}}
}

// Receipt verifies a C2SP tlog-proof receipt, as the function Receipt.
func (r *ReceiptVerifier) Receipt(tlogProof []byte) (*Verified, error) {
	return Receipt(tlogProof, r.key)
}

// ReceiptJSON verifies a JSON receipt of the REST API, as the function
// ReceiptJSON.
func (r *ReceiptVerifier) ReceiptJSON(body []byte) (*Verified, error) {
	return ReceiptJSON(body, r.key)
}

// maxCachedSignatures bounds the signature cache; it is emptied when full.
const maxCachedSignatures = 4096

// cachingVerifier is a note.Verifier that remembers the outcome of each
// (message, signature) pair it checked: Ed25519 verification is
// deterministic, so the answer is the same.
type cachingVerifier struct {
	note.Verifier
	mu   sync.Mutex
	seen map[string]bool
}

func (c *cachingVerifier) Verify(msg, sig []byte) bool {
	k := string(sig) + "\x00" + string(msg)
	c.mu.Lock()
	ok, hit := c.seen[k]
	c.mu.Unlock()
	if hit {
		return ok
	}
	ok = c.Verifier.Verify(msg, sig)
	c.mu.Lock()
	if len(c.seen) >= maxCachedSignatures {
		clear(c.seen)
	}
	c.seen[k] = ok
	c.mu.Unlock()
	return ok
}
