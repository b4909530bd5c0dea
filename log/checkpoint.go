package log

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// CheckpointRules say how strictly ParseCheckpoint reads a checkpoint
// note: each caller asks for what it must accept and nothing more.
type CheckpointRules struct {
	// Verifiers, when set, must verify the note: note.Open's rules (a
	// valid signature by at least one key it knows, no invalid one by a
	// key it knows; other signatures, such as witness cosignatures, are
	// kept unverified), and the origin must be the name of a key that
	// signed. Nil: signatures are not verified, for a backend reading back
	// a note it signed and stored itself.
	Verifiers note.Verifiers
	// Extensions allows extension lines after the root hash, each
	// non-empty, as C2SP tlog-checkpoint does: a witness must accept them.
	// govlog's own checkpoints have none.
	Extensions bool
}

// ParseCheckpoint parses a checkpoint note by rules. Whatever the rules,
// the note is a C2SP signed note and its text a C2SP tlog-checkpoint in
// its one canonical encoding: the size in decimal without leading zeros,
// and the 32-byte root hash in canonical base64. With
// Verifiers, every signature line must be canonical base64 too. It returns the
// checkpoint, whose Note is text, and the opened note. A note without a
// valid signature by Verifiers wraps note.Open's *note.UnverifiedNoteError
// or *note.InvalidSignatureError (test with errors.As); one that is not a
// well-formed note wraps ErrMalformedNote; any other error is about the
// checkpoint body.
//
// It does not check that an empty tree has the empty root: OpenCheckpoint
// does, and a witness answers that case with its own status.
func ParseCheckpoint(text []byte, rules CheckpointRules) (Checkpoint, *note.Note, error) {
	verifiers := rules.Verifiers
	if verifiers == nil {
		verifiers = note.VerifierList()
	}
	n, err := note.Open(text, verifiers)
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case rules.Verifiers == nil && errors.As(err, &unverified):
		n = unverified.Note
	case errors.As(err, &unverified) || errors.As(err, &invalid):
		return Checkpoint{}, nil, fmt.Errorf("failed to verify the checkpoint note: %w", err)
	case err != nil:
		return Checkpoint{}, nil, fmt.Errorf("%w: %w", ErrMalformedNote, err)
	}
	// base64 decoding ignores the unused low bits of a final character;
	// evidence must be the one encoding the signer wrote.
	if rules.Verifiers != nil {
		for _, s := range slices.Concat(n.Sigs, n.UnverifiedSigs) {
			if _, err := DecodeBase64(base64.StdEncoding, s.Base64); err != nil {
				return Checkpoint{}, nil, fmt.Errorf("%w: the signature by %s is not canonical base64", ErrMalformedNote, s.Name)
			}
		}
	}
	var c flog.Checkpoint
	rest, err := c.Unmarshal([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: %w", err)
	}
	if len(c.Hash) != sha256.Size {
		return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: the root hash is %d bytes, want 32", len(c.Hash))
	}
	// One tree head, one text: no leading zeros in the size, no stray
	// bits in the base64 of the root hash.
	if !strings.HasPrefix(n.Text, string(c.Marshal())) {
		return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: the checkpoint body is not in canonical form")
	}
	if len(rest) != 0 {
		if !rules.Extensions {
			return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: unexpected extension lines")
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n") {
			if line == "" {
				return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: an empty extension line")
			}
		}
	}
	if rules.Verifiers != nil && !slices.ContainsFunc(n.Sigs, func(s note.Signature) bool { return s.Name == c.Origin }) {
		return Checkpoint{}, nil, fmt.Errorf("failed to parse the checkpoint: its origin %q is not the name of a key that signed it", c.Origin)
	}
	return Checkpoint{Origin: c.Origin, Size: c.Size, Hash: [32]byte(c.Hash), Note: text}, n, nil
}

// OpenCheckpoint verifies a checkpoint note signed by the log key v (whose
// name is the origin) and parses it: ParseCheckpoint without extension
// lines, and an empty tree must have the empty root. Signatures by other
// keys, such as witness cosignatures, are ignored here; the note keeps
// them.
func OpenCheckpoint(text []byte, v note.Verifier) (Checkpoint, error) {
	cp, _, err := ParseCheckpoint(text, CheckpointRules{Verifiers: note.VerifierList(v)})
	if err != nil {
		return Checkpoint{}, err
	}
	if cp.Size == 0 && cp.Hash != EmptyRoot {
		return Checkpoint{}, fmt.Errorf("failed to open checkpoint: an empty tree must have root SHA-256(\"\")")
	}
	return cp, nil
}

// Body returns the checkpoint's signed text (origin, size, root hash).
func (c Checkpoint) Body() []byte {
	return flog.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash[:]}.Marshal()
}

// DecodeBase64 decodes s, which must be the one encoding of its bytes in
// enc: Go's strict decoders refuse stray padding bits but still skip CR
// and LF, so that "AAAA\nAAAA" would read as "AAAAAAAA", and evidence must
// have one encoding.
func DecodeBase64(enc *base64.Encoding, s string) ([]byte, error) {
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if enc.EncodedLen(len(b)) != len(s) {
		return nil, errors.New("not canonical base64: it holds line breaks")
	}
	return b, nil
}
