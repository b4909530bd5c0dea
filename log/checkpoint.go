package log

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// EmptyRoot is the RFC 6962 root hash of the empty tree: SHA-256("").
var EmptyRoot = sha256.Sum256(nil)

// Checkpoint is a signed tree head: the C2SP checkpoint body for Size and
// Hash, and the signed note that carries it (possibly with cosignatures).
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   [32]byte
	// Note is the signed note text.
	Note []byte
}

// SignCheckpoint signs the C2SP checkpoint of a tree of size with root
// hash. The signer's name must be the origin. Ed25519 is deterministic, so
// signing the same tree head twice yields the same note.
func SignCheckpoint(signer note.Signer, size uint64, hash [32]byte) (Checkpoint, error) {
	cp := Checkpoint{Origin: signer.Name(), Size: size, Hash: hash}
	body := flog.Checkpoint{Origin: cp.Origin, Size: size, Hash: hash[:]}.Marshal()
	n, err := note.Sign(&note.Note{Text: string(body)}, signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("failed to sign checkpoint: %w", err)
	}
	cp.Note = n
	return cp, nil
}

// OpenCheckpoint verifies a checkpoint note signed by the log key v (whose
// name is the origin) and parses it. Signatures by other keys, such as
// witness cosignatures, are ignored here; the note keeps them.
func OpenCheckpoint(text []byte, v note.Verifier) (Checkpoint, error) {
	cp, extra, n, err := flog.ParseCheckpoint(text, v.Name(), v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: %w", err)
	}
	if len(extra) != 0 {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: unexpected extension lines")
	}
	if len(cp.Hash) != 32 {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: root hash is %d bytes, want 32", len(cp.Hash))
	}
	if cp.Size == 0 && !bytes.Equal(cp.Hash, EmptyRoot[:]) {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: an empty tree must have root SHA-256(\"\")")
	}
	// One tree head, one text: no leading zeros in the size, no stray bits
	// in the base64 of the root hash.
	if n.Text != string(cp.Marshal()) {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: the checkpoint body is not in canonical form")
	}
	return Checkpoint{Origin: cp.Origin, Size: cp.Size, Hash: [32]byte(cp.Hash), Note: text}, nil
}

// Body returns the checkpoint's signed text (origin, size, root hash).
func (c Checkpoint) Body() []byte {
	return flog.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash[:]}.Marshal()
}

// ParseStoredCheckpoint parses a checkpoint note without verifying its
// signature: for a backend reading back notes it stored itself. The Log
// verifies the latest one with the log's key (OpenCheckpoint) when it opens.
func ParseStoredCheckpoint(text []byte) (Checkpoint, error) {
	_, err := note.Open(text, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return Checkpoint{}, fmt.Errorf("failed to parse the checkpoint note: %w", err)
	}
	var c flog.Checkpoint
	if _, err := c.Unmarshal([]byte(unverified.Note.Text)); err != nil {
		return Checkpoint{}, fmt.Errorf("failed to parse the checkpoint: %w", err)
	}
	if len(c.Hash) != sha256.Size {
		return Checkpoint{}, fmt.Errorf("failed to parse the checkpoint: root hash is %d bytes", len(c.Hash))
	}
	return Checkpoint{Origin: c.Origin, Size: c.Size, Hash: [32]byte(c.Hash), Note: text}, nil
}
