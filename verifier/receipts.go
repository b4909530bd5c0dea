package verifier

import (
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// ReceiptVerifier verifies many receipts of one log, as Receipt and
// ReceiptJSON do, faster: the signature of a checkpoint that several
// receipts share is checked once (receipts of one batch, or fetched
// against the same latest checkpoint, all share theirs), and both
// open (verify and parse) each distinct checkpoint note once. It is
// safe for concurrent use.
type ReceiptVerifier struct {
	key *cachingVerifier
	cps *checkpointCache
}

// NewReceiptVerifier returns a ReceiptVerifier for the log whose note
// verifier key is logKey.
func NewReceiptVerifier(logKey note.Verifier) *ReceiptVerifier {
	return &ReceiptVerifier{key: &cachingVerifier{Verifier: logKey, seen: make(map[string]bool)},
		cps: &checkpointCache{opened: make(map[string]log.Checkpoint)}}
}

// Receipt verifies a C2SP tlog-proof receipt, as the function Receipt.
func (r *ReceiptVerifier) Receipt(tlogProof []byte) (*Verified, error) {
	return receipt(tlogProof, r.key, r.cps)
}

// ReceiptJSON verifies a JSON receipt of the REST API, as the function
// ReceiptJSON.
func (r *ReceiptVerifier) ReceiptJSON(body []byte) (*Verified, error) {
	return verifyReceiptJSON(body, r.key, r.cps)
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

// checkpointCache remembers the checkpoint notes Checkpoint accepted, by
// their whole text: the same text is the same checkpoint, verified and
// parsed the same way, so a receipt against one of them skips the note's
// parsing as well as its signature. Refused notes are not remembered.
type checkpointCache struct {
	mu     sync.RWMutex
	opened map[string]log.Checkpoint // without Note
}

// open is Checkpoint(text, logKey), once per distinct text. A nil cache
// remembers nothing.
func (c *checkpointCache) open(text []byte, logKey note.Verifier) (log.Checkpoint, error) {
	if c == nil {
		return Checkpoint(text, logKey)
	}
	c.mu.RLock()
	cp, ok := c.opened[string(text)]
	c.mu.RUnlock()
	if ok {
		cp.Note = text // the caller's own bytes, as Checkpoint returns them
		return cp, nil
	}
	cp, err := Checkpoint(text, logKey)
	if err != nil {
		return cp, err
	}
	c.mu.Lock()
	if len(c.opened) >= maxCachedSignatures {
		clear(c.opened)
	}
	c.opened[string(text)] = log.Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: cp.Hash}
	c.mu.Unlock()
	return cp, nil
}
