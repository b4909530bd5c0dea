"""Evidence bundles (GET /v1/export, format govlog-evidence/v1): entries of a log with their inclusion
proofs against one checkpoint, and the log's artifact keys with their receipts, verified as the Go
verifier.Bundle does."""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Union

from ._bytes import as_bytes, b64_strict
from ._crypto import leaf_hash
from .checkpoint import Checkpoint, verify_checkpoint
from .entry import Entry, parse_entry
from .errors import VerificationError
from .jcs import JSONNumber, JSONObject, canonicalize, parse_json
from .merkle import verify_inclusion
from .note import NoteVerifier, parse_note_key
from .policy import Policy
from .receipt import verify_receipt_json

BUNDLE_FORMAT = "govlog-evidence/v1"
MAX_BUNDLE_ENTRIES = 100_000
_MEMBERS = ["format", "origin", "verifier_key", "checkpoint", "query", "entries", "keys"]


class BundleEntry(NamedTuple):
    index: int
    leaf_hash: bytes
    entry: Entry


class BundleKey(NamedTuple):
    kid: str
    index: int


class VerifiedBundle(NamedTuple):
    origin: str
    checkpoint: Checkpoint
    query: Dict[str, str]  # what was asked: reported, not evidence
    entries: List[BundleEntry]
    keys: List[BundleKey]


def _malformed(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("malformed", "evidence bundle: " + msg)


def _item(v, names, what: str) -> JSONObject:
    if not isinstance(v, JSONObject):
        _malformed("%s is not an object" % what)
    for k, _ in v.members:
        if k not in names:
            _malformed("%s has an unknown member %r" % (what, k))
    for n in names:
        if n not in v:
            _malformed("%s has no %s" % (what, n))
    return v


def _index(v, what: str) -> int:
    if not isinstance(v, JSONNumber) or not re.match(r"(0|[1-9][0-9]*)\Z", v.raw) or int(v.raw) >= 2**64:
        _malformed("%s: index is not a canonical index" % what)
    return int(v.raw)


def verify_bundle(bundle: Union[bytes, str], log_key: NoteVerifier, policy: Optional[Policy] = None) -> VerifiedBundle:
    """Verify an evidence bundle with nothing but the log's note verifier key (and, given one, the
    witness policy its checkpoint must satisfy): a JSON object with exactly the members format
    (govlog-evidence/v1), origin (the log key's name), verifier_key (the log key), checkpoint
    (verified), query (an object of strings, not evidence), entries and keys, in this order; entries
    (at most 100,000) of exactly index (canonical, increasing, below the checkpoint's size), entry
    (canonical base64 of a valid entry) and inclusion_proof (at most 64 hashes) leading to the
    checkpoint's root; keys (at most 1,000) of exactly kid, jwk, index and receipt, a JSON receipt of
    the key entry of kid at index whose jwk is jwk. Raises VerificationError."""
    try:
        v = parse_json(as_bytes(bundle))
    except VerificationError as e:
        _malformed(str(e))
    if not isinstance(v, JSONObject):
        _malformed("not a JSON object")
    if [k for k, _ in v.members] != _MEMBERS:
        _malformed("the members are not exactly %s, in this order" % ", ".join(_MEMBERS))

    def string(k: str) -> str:
        s = v[k]
        if not isinstance(s, str):
            _malformed("%s must be a string" % k)
        return s

    if string("format") != BUNDLE_FORMAT:
        _malformed("format is %r, want %s" % (string("format"), BUNDLE_FORMAT))
    origin = string("origin")
    if origin != log_key.name:
        raise VerificationError("mismatch", "evidence bundle of the log %r, the key given is of %r" % (origin, log_key.name))
    try:
        vkey = parse_note_key(string("verifier_key"))
    except VerificationError:
        _malformed("verifier_key is not a note verifier key")
    if vkey.name != log_key.name or vkey.key_id != log_key.key_id:
        raise VerificationError("mismatch", "the bundle's verifier_key is not the key given")
    cp_text = string("checkpoint")
    cp = verify_checkpoint(cp_text, log_key)
    if policy is not None:
        policy.check(cp_text)
    q = v["query"]
    if not isinstance(q, JSONObject) or any(not isinstance(m, str) for _, m in q.members):
        _malformed("query must be an object of strings")

    lst = v["entries"]
    if not isinstance(lst, list):
        _malformed("entries is not an array")
    if len(lst) > MAX_BUNDLE_ENTRIES:
        _malformed("more than %d entries" % MAX_BUNDLE_ENTRIES)
    entries: List[BundleEntry] = []
    last = -1
    for n, raw in enumerate(lst):
        e = _item(raw, ("index", "entry", "inclusion_proof"), "entry %d" % n)
        idx = _index(e["index"], "entry %d" % n)
        if idx <= last:
            _malformed("entry %d: index %d does not follow %d" % (n, idx, last))
        if idx >= cp.size:
            raise VerificationError("bad_proof", "entry %d is not in the checkpoint of size %d" % (idx, cp.size))
        b64 = e["entry"]
        leaf = b64_strict(b64) if isinstance(b64, str) and b64 else None
        if leaf is None:
            _malformed("entry %d: entry is not canonical base64" % idx)
        proof = e["inclusion_proof"]
        if not isinstance(proof, list) or len(proof) > 64:
            _malformed("entry %d: inclusion_proof is not an array of at most 64 hashes" % idx)
        hashes = []
        for i, h in enumerate(proof):
            d = b64_strict(h) if isinstance(h, str) else None
            if d is None or len(d) != 32:
                _malformed("entry %d: proof hash %d is not the canonical base64 of 32 bytes" % (idx, i))
            hashes.append(d)
        lh = leaf_hash(leaf)
        verify_inclusion(idx, cp.size, lh, hashes, cp.root_hash)
        try:
            entry = parse_entry(leaf)
        except VerificationError as err:
            raise VerificationError("bad_entry", "entry %d: %s" % (idx, err)) from None
        entries.append(BundleEntry(idx, lh, entry))
        last = idx

    key_list = v["keys"]
    if not isinstance(key_list, list):
        _malformed("keys is not an array")
    if len(key_list) > 1000:
        _malformed("more than 1000 keys")
    keys: List[BundleKey] = []
    for n, raw in enumerate(key_list):
        k = _item(raw, ("kid", "jwk", "index", "receipt"), "key %d" % n)
        kid = k["kid"]
        if not isinstance(kid, str) or kid == "":
            _malformed("key %d: kid is not a string" % n)
        idx = _index(k["index"], "key %d" % n)
        r = verify_receipt_json(canonicalize(k["receipt"]), log_key)
        if r.index != idx:
            raise VerificationError("mismatch", "key %r: its receipt is of entry %d, not %d" % (kid, r.index, idx))
        if r.entry.kind != "key" or r.entry.id != kid:
            raise VerificationError("mismatch", "key %r: its receipt is not of the key entry %r" % (kid, kid))
        if canonicalize(k["jwk"]) != canonicalize(parse_json(r.leaf)["key"]["jwk"]):
            raise VerificationError("mismatch", "key %r: the jwk is not the logged one" % kid)
        keys.append(BundleKey(kid, idx))
    return VerifiedBundle(origin, cp, dict(q.members), entries, keys)
