"""Receipts: C2SP tlog-proof with the entry as extra data, and the JSON receipt of the REST API,
verified as the Go package verifier does (verifier.Receipt, verifier.ReceiptJSON)."""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple, Union

from ._bytes import as_bytes, b64_strict, parse_uint64, utf8
from ._crypto import leaf_hash
from .checkpoint import MAX_CHECKPOINT_BYTES, Checkpoint, verify_checkpoint
from .entry import Entry, parse_entry
from .errors import VerificationError
from .jcs import JSONNumber, JSONObject, parse_json
from .merkle import verify_inclusion
from .note import NoteVerifier

MAX_TLOG_PROOF_BYTES = 128 << 10
MAX_RECEIPT_BYTES = 384 << 10
_HEADER = b"c2sp.org/tlog-proof@v1"


class TLogProof(NamedTuple):
    index: int
    hashes: List[bytes]
    checkpoint: bytes
    extra: Optional[bytes]


class Verified(NamedTuple):
    """What a verified receipt proves: the entry leaf is at index in the log whose checkpoint covers it."""

    checkpoint: Checkpoint
    index: int
    leaf_hash: bytes
    leaf: bytes
    entry: Entry
    inclusion_proof: List[bytes]


def _malformed(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("malformed", msg)


def parse_tlog_proof(data: Union[bytes, str]) -> TLogProof:
    """Read a tlog-proof in the canonical form of C2SP tlog-proof:
    the header line, an optional "extra <canonical base64>" line, "index <decimal, no leading
    zeros, below 2^64>", zero or more canonical base64 32-byte hashes, a blank line, and the
    checkpoint note ending in a newline. Raises VerificationError("malformed")."""
    raw = as_bytes(data)
    if len(raw) > MAX_TLOG_PROOF_BYTES:
        _malformed("the tlog-proof is %d bytes, the limit is %d" % (len(raw), MAX_TLOG_PROOF_BYTES))
    pos = 0

    def line() -> str:
        nonlocal pos
        end = raw.find(b"\n", pos)
        if end < 0:
            _malformed("the tlog-proof ends before its checkpoint")
        text = utf8(raw[pos:end])
        if text is None:
            _malformed("the tlog-proof is not valid UTF-8")
        pos = end + 1
        return text

    if line() != _HEADER.decode():
        _malformed("the tlog-proof does not start with the line c2sp.org/tlog-proof@v1")
    ln = line()
    extra = None
    if ln.startswith("extra "):
        extra = b64_strict(ln[6:])
        if extra is None:
            _malformed("the tlog-proof's extra line is not canonical base64")
        ln = line()
    if not ln.startswith("index "):
        _malformed("the tlog-proof has no index line")
    index = parse_uint64(ln[6:])
    if index is None:
        _malformed("the tlog-proof's index is not a canonical decimal below 2^64")
    hashes = []
    while True:
        ln = line()
        if ln == "":
            break
        h = b64_strict(ln)
        if h is None or len(h) != 32:
            _malformed("a tlog-proof hash is not the canonical base64 of 32 bytes")
        hashes.append(h)
    checkpoint = raw[pos:]
    if not checkpoint.endswith(b"\n"):
        _malformed("the tlog-proof's checkpoint does not end in a newline")
    if len(checkpoint) > MAX_CHECKPOINT_BYTES:
        _malformed("the tlog-proof's checkpoint is too large")
    if b"\r" in checkpoint:
        _malformed("the tlog-proof has a carriage return")
    return TLogProof(index, hashes, checkpoint, extra)


def verify_receipt(tlog_proof: Union[bytes, str], log_key: NoteVerifier) -> Verified:
    """Verify a tlog-proof receipt with the log's note verifier key: a canonical tlog-proof with an
    extra line; its checkpoint verifies with the log key; index < size and the RFC 6962 inclusion
    proof of SHA-256(0x00 ‖ extra) leads to the root; the extra data is a valid entry.
    Witness cosignatures are not checked here (see Policy). Raises VerificationError."""
    return _verify(parse_tlog_proof(tlog_proof), log_key)


def verify_leaf(p: TLogProof, log_key: NoteVerifier) -> Tuple[Checkpoint, bytes]:
    """The checks of verify_receipt but the last on a parsed tlog-proof: its extra data (not parsed)
    is proven at its index in the checkpoint signed by the log key. Returns the checkpoint and the
    leaf hash."""
    if p.extra is None:
        _malformed("the tlog-proof has no extra line, so it does not carry the entry")
    cp = verify_checkpoint(p.checkpoint, log_key)
    if p.index >= cp.size:
        raise VerificationError("bad_proof", "index %d is not below the checkpoint size %d" % (p.index, cp.size))
    lh = leaf_hash(p.extra)
    verify_inclusion(p.index, cp.size, lh, p.hashes, cp.root_hash)
    return cp, lh


def _verify(p: TLogProof, log_key: NoteVerifier) -> Verified:
    cp, lh = verify_leaf(p, log_key)
    assert p.extra is not None
    try:
        entry = parse_entry(p.extra)
    except VerificationError as e:
        raise VerificationError("bad_entry", "entry %d: %s" % (p.index, e)) from None
    return Verified(cp, p.index, lh, p.extra, entry, p.hashes)


_FIELDS = ("id", "index", "leaf_hash", "entry", "checkpoint", "inclusion_proof", "tlog_proof")


def verify_receipt_json(body: Union[bytes, str], log_key: NoteVerifier) -> Verified:
    """Verify a JSON receipt of the REST API: strict JSON (valid UTF-8, no duplicate members, no
    null) holding exactly id, index, leaf_hash, entry, checkpoint, inclusion_proof, tlog_proof and
    optionally artifact (a string, not checked here); its tlog_proof verifies as verify_receipt; every
    other member says exactly what the tlog_proof says. Raises VerificationError."""
    id_, p = check_receipt_json(body, True)
    verified = _verify(p, log_key)
    if id_ != verified.entry.id:
        raise VerificationError("mismatch", "the receipt's id %r is not its entry's, %r" % (id_, verified.entry.id))
    return verified


def check_receipt_json(body: Union[bytes, str], artifact: bool) -> Tuple[str, TLogProof]:
    """The checks of verify_receipt_json that need no key: the JSON shape (an artifact member only
    when artifact), and that every member says what the tlog_proof says. Returns the id and the
    parsed tlog_proof, not verified."""
    raw = as_bytes(body)
    if len(raw) > MAX_RECEIPT_BYTES:
        _malformed("the receipt is %d bytes, the limit is %d" % (len(raw), MAX_RECEIPT_BYTES))
    v = parse_json(raw)
    if not isinstance(v, JSONObject):
        _malformed("the receipt is not a JSON object")
    for f in _FIELDS:
        if f not in v:
            _malformed("the receipt has no %s" % f)
    for k, m in v.members:
        if (k != "artifact" or not artifact) and k not in _FIELDS:
            _malformed("the receipt has an unknown member %r" % k)
        if m is None:
            _malformed("the receipt's %s is null" % k)

    def string(k: str) -> str:
        s = v[k]
        if not isinstance(s, str):
            _malformed("the receipt's %s is not a string" % k)
        return s

    id_ = string("id")
    index_v = v["index"]
    index = parse_uint64(index_v.raw) if isinstance(index_v, JSONNumber) else None
    if index is None:
        _malformed("the receipt's index is not an integer below 2^64")
    leaf_hash_text, entry_text, checkpoint_text = string("leaf_hash"), string("entry"), string("checkpoint")
    proof_v = v["inclusion_proof"]
    if not isinstance(proof_v, list) or not all(isinstance(h, str) for h in proof_v):
        _malformed("the receipt's inclusion_proof is not an array of strings")
    tlog_text = string("tlog_proof")
    if "artifact" in v:
        string("artifact")

    p = parse_tlog_proof(tlog_text)
    entry = b64_strict(entry_text)
    if entry is None:
        _malformed("the receipt's entry is not canonical base64")
    lh = b64_strict(leaf_hash_text)
    if lh is None:
        _malformed("the receipt's leaf_hash is not canonical base64")
    if index != p.index:
        raise VerificationError("mismatch", "the receipt's index %d is not the tlog_proof's %d" % (index, p.index))
    if p.extra is None or entry != p.extra:
        raise VerificationError("mismatch", "the receipt's entry is not the tlog_proof's")
    if lh != leaf_hash(entry):
        raise VerificationError("mismatch", "the entry does not hash to leaf_hash")
    if checkpoint_text.encode("utf-8") != p.checkpoint:
        raise VerificationError("mismatch", "the receipt's checkpoint is not the tlog_proof's")
    if len(proof_v) != len(p.hashes):
        raise VerificationError("mismatch", "the receipt's inclusion_proof has %d hashes, the tlog_proof %d" % (len(proof_v), len(p.hashes)))
    for i, s in enumerate(proof_v):
        h = b64_strict(s)
        if h is None:
            _malformed("the receipt's inclusion_proof[%d] is not canonical base64" % i)
        if h != p.hashes[i]:
            raise VerificationError("mismatch", "the receipt's inclusion_proof[%d] is not the tlog_proof's" % i)
    return id_, p


def verify_any_receipt(receipt: Union[bytes, str], log_key: NoteVerifier) -> Verified:
    """Verify a receipt given as a tlog-proof or as a JSON receipt (told apart by a leading "{")."""
    raw = as_bytes(receipt)
    if raw.lstrip(b" \t\r\n").startswith(b"{"):
        return verify_receipt_json(raw, log_key)
    return verify_receipt(raw, log_key)
