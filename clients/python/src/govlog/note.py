"""C2SP signed notes (https://c2sp.org/signed-note), read exactly as
golang.org/x/mod/sumdb/note reads them, and their keys."""

from __future__ import annotations

import re
import struct
from typing import List, NamedTuple, Optional, Sequence, Union

from ._bytes import as_bytes, b64_lenient, utf8
from ._crypto import ed25519_verify, sha256
from .errors import VerificationError

KEY_ED25519 = 0x01
KEY_COSIGNATURE_V1 = 0x04

# Unicode White_Space, which Go's unicode.IsSpace reports.
_SPACE = re.compile("[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def is_space(c: str) -> bool:
    return _SPACE.match(c) is not None


def is_valid_name(name: str) -> bool:
    """A key name: non-empty, no Unicode space, no "+"."""
    return name != "" and _SPACE.search(name) is None and "+" not in name


def key_id(name: str, typed_key: bytes) -> int:
    """The C2SP signed-note key ID: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ type ‖ public key)."""
    return struct.unpack(">I", sha256(name.encode("utf-8") + b"\n" + typed_key)[:4])[0]


class NoteVerifier:
    """A key that verifies note signatures: a log's note key or a witness's cosignature key."""

    def __init__(self, name: str, key_id: int, key_type: int, public_key: bytes, text: str) -> None:
        self.name = name
        self.key_id = key_id
        self.type = key_type
        self.public_key = public_key
        self.text = text

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether sig (without the key ID) is a valid signature of the note text msg."""
        if self.type == KEY_ED25519:
            return ed25519_verify(self.public_key, msg, sig)
        return _verify_cosignature_v1(self.public_key, msg, sig)

    def __repr__(self) -> str:
        return "NoteVerifier(%s)" % self.text


def _cut(s: str, sep: str):
    a, found, b = s.partition(sep)
    return a, b


def parse_note_key(vkey: str) -> NoteVerifier:
    """A log's note verifier key "<name>+<key ID, 8 hex digits>+<base64 of 0x01 ‖ Ed25519 key>",
    read as golang.org/x/mod/sumdb/note.NewVerifier reads it. Raises VerificationError("bad_key")."""
    name, rest = _cut(vkey, "+")
    id16, key64 = _cut(rest, "+")
    key = b64_lenient(key64)
    if not re.match(r"[0-9a-fA-F]{8}\Z", id16) or not key or not is_valid_name(name):
        raise VerificationError("bad_key", "malformed note verifier key %r" % vkey)
    kid = key_id(name, key)
    if int(id16, 16) != kid:
        raise VerificationError("bad_key", "the key ID of %r is not its key's" % vkey)
    if key[0] != KEY_ED25519 or len(key) != 33:
        raise VerificationError("bad_key", "%r is not an Ed25519 note key (type 0x01)" % vkey)
    return NoteVerifier(name, kid, KEY_ED25519, key[1:], vkey)


def parse_cosignature_key(vkey: str) -> NoteVerifier:
    """A witness's cosignature/v1 verifier key (type 0x04), whose written key ID must be
    exactly the key's, in lower-case hex. Raises VerificationError("bad_key")."""
    name, rest = _cut(vkey, "+")
    id16, key64 = _cut(rest, "+")
    key = b64_lenient(key64)
    if len(id16) != 8 or not key or not is_valid_name(name):
        raise VerificationError("bad_key", "malformed cosignature verifier key %r" % vkey)
    if key[0] != KEY_COSIGNATURE_V1 or len(key) != 33:
        raise VerificationError("bad_key", "%r is not a cosignature/v1 key (type 0x04)" % vkey)
    kid = key_id(name, key)
    if id16 != "%08x" % kid:
        raise VerificationError("bad_key", "the key ID of %r is not its key's (%08x)" % (vkey, kid))
    return NoteVerifier(name, kid, KEY_COSIGNATURE_V1, key[1:], vkey)


def _verify_cosignature_v1(public_key: bytes, msg: bytes, sig: bytes) -> bool:
    """A C2SP tlog-cosignature: 8 bytes of big-endian timestamp, then the Ed25519
    signature of "cosignature/v1\\ntime <timestamp>\\n" ‖ the note text."""
    if len(sig) != 8 + 64 or msg.count(b"\n") < 2:
        return False
    (ts,) = struct.unpack(">Q", sig[:8])
    return ed25519_verify(public_key, b"cosignature/v1\ntime %d\n" % ts + msg, sig[8:])


def cosignature_time(b64: str) -> Optional[int]:
    """The timestamp (Unix seconds) of a cosignature/v1 signature line's base64."""
    raw = b64_lenient(b64)
    if raw is None or len(raw) != 4 + 8 + 64:
        return None
    return struct.unpack(">Q", raw[4:12])[0]


class NoteSignature(NamedTuple):
    name: str
    key_id: int
    base64: str


class Note(NamedTuple):
    text: str
    sigs: List[NoteSignature]
    unverified: List[NoteSignature]


MAX_SIGNATURES = 100
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def open_note(data: Union[bytes, str], verifiers: Sequence[NoteVerifier]) -> Note:
    """Open a signed note with the given verifiers, as golang.org/x/mod/sumdb/note.Open does:
    valid UTF-8 without control characters but newline; the text ends at the last blank line and is
    followed by 1 to 100 lines "— <name> <base64 of key ID ‖ signature>" (valid names, base64 of at
    least 5 bytes); a line of a known key must verify (a repeated line of that key after the first is
    ignored unverified), others are kept unverified; at least one verifies.
    Raises VerificationError: "malformed", or "bad_signature"."""
    msg = utf8(as_bytes(data))
    if msg is None:
        raise VerificationError("malformed", "the note is not valid UTF-8")
    if _CONTROL.search(msg):
        raise VerificationError("malformed", "the note has a control character")
    split = msg.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed", "the note has no signature block")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise VerificationError("malformed", "the note's signature block does not end in a newline")
    text_bytes = text.encode("utf-8")
    note = Note(text, [], [])
    seen = set()
    seen_unverified = set()
    for count, line in enumerate(sigs[:-1].split("\n"), 1):
        if not line.startswith("\u2014 "):
            raise VerificationError("malformed", "a signature line does not start with an em dash and a space")
        name, _, b64 = line[2:].partition(" ")
        sig = b64_lenient(b64)
        if sig is None or not is_valid_name(name) or b64 == "" or len(sig) < 5:
            raise VerificationError("malformed", "malformed signature line")
        (kid,) = struct.unpack(">I", sig[:4])
        if count > MAX_SIGNATURES:
            raise VerificationError("malformed", "the note has more than %d signatures" % MAX_SIGNATURES)
        matches = [v for v in verifiers if v.name == name and v.key_id == kid]
        if not matches:
            if line not in seen_unverified:
                seen_unverified.add(line)
                note.unverified.append(NoteSignature(name, kid, b64))
            continue
        if len(matches) > 1:
            raise VerificationError("bad_key", "ambiguous key %s+%08x" % (name, kid))
        if (name, kid) in seen:
            continue
        seen.add((name, kid))
        if not matches[0].verify(text_bytes, sig[4:]):
            raise VerificationError("bad_signature", "invalid signature for key %s+%08x" % (name, kid))
        note.sigs.append(NoteSignature(name, kid, b64))
    if not note.sigs:
        raise VerificationError("bad_signature", "the note is not signed by %s" % ", ".join(v.name for v in verifiers))
    return note

