"""C2SP tlog-checkpoint in a signed note, verified as the Go package verifier does."""

from __future__ import annotations

from typing import NamedTuple, Sequence, Tuple, Union

from ._bytes import as_bytes, b64_strict, b64encode, parse_uint64
from ._crypto import sha256
from .errors import VerificationError
from .merkle import verify_consistency
from .note import Note, NoteVerifier, open_note

#: A checkpoint note with its cosignatures is at most 16 KiB.
MAX_CHECKPOINT_BYTES = 16 << 10
#: The root hash of the empty tree.
EMPTY_ROOT = sha256(b"")


class Checkpoint(NamedTuple):
    """A verified checkpoint."""

    origin: str
    size: int
    root_hash: bytes
    #: The signed note as received, cosignatures included.
    note: bytes
    #: The note as opened with the log key.
    opened: Note

    def __str__(self) -> str:
        return "%s %d %s" % (self.origin, self.size, b64encode(self.root_hash))


def verify_checkpoint(data: Union[bytes, str], log_key: NoteVerifier) -> Checkpoint:
    """Verify a checkpoint note signed by the log key (whose name is the origin):
    at most 16 KiB; it opens with the log key (open_note) and every signature line, checked or
    not, is canonical base64; its text is exactly "<origin>\\n<size>\\n<root hash>\\n" with the key's
    name, a decimal without leading zeros below 2^64, the canonical base64 of 32 bytes
    (SHA-256("") for size 0), no extension lines.
    Raises VerificationError: "malformed", "bad_signature" or "bad_checkpoint"."""
    note = as_bytes(data)
    if len(note) > MAX_CHECKPOINT_BYTES:
        raise VerificationError("malformed", "the checkpoint is %d bytes, the limit is %d" % (len(note), MAX_CHECKPOINT_BYTES))
    opened = open_note(note, [log_key])
    for s in opened.sigs + opened.unverified:
        if b64_strict(s.base64) is None:
            raise VerificationError("malformed", "the checkpoint signature by %s is not canonical base64" % s.name)
    lines = opened.text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise VerificationError("bad_checkpoint", "the checkpoint is not three lines (extension lines are not allowed)")
    origin, size_text, root_text = lines[:3]
    if origin != log_key.name:
        raise VerificationError("bad_checkpoint", "the checkpoint's origin is %r, not %r" % (origin, log_key.name))
    size = parse_uint64(size_text)
    if size is None:
        raise VerificationError("bad_checkpoint", "the checkpoint's size is not a canonical decimal below 2^64")
    root = b64_strict(root_text)
    if root is None or len(root) != 32:
        raise VerificationError("bad_checkpoint", "the checkpoint's root hash is not the canonical base64 of 32 bytes")
    if size == 0 and root != EMPTY_ROOT:
        raise VerificationError("bad_checkpoint", 'an empty tree has root SHA-256("")')
    return Checkpoint(origin, size, root, note, opened)


def verify_signed_consistency(
    old_note: Union[bytes, str], new_note: Union[bytes, str], proof: Sequence[bytes], log_key: NoteVerifier
) -> Tuple[Checkpoint, Checkpoint]:
    """Verify two checkpoints signed by the log key and the RFC 6962 consistency proof between them
    (as the Go verifier.Consistency). "inconsistent" is evidence that the log forked: keep both notes."""
    older = verify_checkpoint(old_note, log_key)
    newer = verify_checkpoint(new_note, log_key)
    if older.size > newer.size:
        raise VerificationError("malformed", "the new checkpoint (size %d) is smaller than the old one (size %d)" % (newer.size, older.size))
    for i, h in enumerate(proof):
        if len(h) != 32:
            raise VerificationError("malformed", "consistency proof hash %d is %d bytes, want 32" % (i, len(h)))
    if older.size == newer.size and proof:
        raise VerificationError("bad_proof", "the consistency proof between checkpoints of the same size must be empty")
    verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    return older, newer
