"""Key-bound artifacts (wire contract §2e): every artifact signing key is logged as a key entry, so a
verifier holding only the log's note verifier key checks an artifact by verifying its key's receipt,
then the JWT with that key. As the Go package verifier/artifact (VerifyKeyBound) and
verifier.KeyReceipt."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple, Optional, Tuple, Union

from ._bytes import as_bytes, b64url_strict, utf8
from .artifact import JWKS, ArtifactClaims, authorize, verify_artifact
from .checkpoint import Checkpoint
from .errors import VerificationError
from .jcs import JSONNumber, JSONObject, canonicalize, parse_json, quote_jcs
from .note import NoteVerifier
from .policy import Policy
from .receipt import check_receipt_json, parse_tlog_proof, verify_leaf
from .timefmt import parse_utc

MAX_ENTRY_BYTES = 65535


class KeyEntry(NamedTuple):
    """An artifact signing key the log published before using it."""

    kid: str
    jwk: str  # the public JWK, RFC 8785 canonical, as in the entry
    public_key: bytes  # the 32-byte Ed25519 public key
    logged_at: str
    submitter: str


class VerifiedKey(NamedTuple):
    """What a verified key receipt proves: the key entry is at index in the log whose checkpoint
    covers it."""

    checkpoint: Checkpoint
    index: int
    leaf_hash: bytes
    leaf: bytes
    key: KeyEntry


def _bad(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("bad_entry", msg)


def _exact(o, names: Tuple[str, ...], what: str) -> JSONObject:
    if not isinstance(o, JSONObject):
        _bad("%s is not a JSON object" % what)
    for k, _ in o.members:
        if k not in names:
            _bad("%s has an unknown member %r" % (what, k))
    for n in names:
        if n not in o:
            _bad("%s has no %s" % (what, n))
    return o


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*\Z")


def parse_key_entry(leaf: Union[bytes, str]) -> KeyEntry:
    """Parse and validate the leaf of a key entry, as the Go log.ParseEntry does: RFC 8785 canonical
    JSON with exactly the members key, logged_at (UTC, 9 fractional digits), submitter (non-empty)
    and v (1); key is exactly {"jwk":{"crv":"Ed25519","kty":"OKP","x":X},"kid":K} with X the
    canonical unpadded base64url of 32 bytes and K with the syntax of an id.
    Raises VerificationError("bad_entry")."""
    raw = as_bytes(leaf)
    if len(raw) > MAX_ENTRY_BYTES:
        _bad("the entry is %d bytes, the limit is %d" % (len(raw), MAX_ENTRY_BYTES))
    try:
        v = parse_json(raw)
    except VerificationError as e:
        _bad("the entry is not valid JSON: %s" % e)
    if canonicalize(v) != utf8(raw):
        _bad("the entry is not in RFC 8785 canonical form")
    e = _exact(v, ("key", "logged_at", "submitter", "v"), "the key entry")
    ver = e["v"]
    if not isinstance(ver, JSONNumber) or ver.raw != "1":
        _bad("the entry's v is not 1")
    logged_at = e["logged_at"]
    if not isinstance(logged_at, str) or parse_utc(logged_at, True) is None:
        _bad("the entry has a bad logged_at")
    submitter = e["submitter"]
    if not isinstance(submitter, str) or submitter == "":
        _bad("the entry has no submitter")
    key = _exact(e["key"], ("jwk", "kid"), "the entry's key")
    kid = key["kid"]
    if not isinstance(kid, str) or not _ID.match(kid):
        _bad("the entry's kid is not an id")
    jwk = _exact(key["jwk"], ("crv", "kty", "x"), "the entry's jwk")
    if jwk["kty"] != "OKP" or jwk["crv"] != "Ed25519":
        _bad("the entry's jwk is not an Ed25519 OKP key")
    x = b64url_strict(jwk["x"]) if isinstance(jwk["x"], str) else None
    if x is None or len(x) != 32:
        _bad("the entry's jwk x is not the unpadded base64url of a 32-byte key")
    return KeyEntry(kid, canonicalize(jwk), x, logged_at, submitter)


def verify_key_receipt(receipt: Union[bytes, str], log_key: NoteVerifier) -> VerifiedKey:
    """Verify the receipt of a key entry with the log's note verifier key: a tlog-proof, or a JSON
    receipt (as GET /v1/keys serves them) whose id is the kid. Every check of
    verify_receipt is made, except that the entry must be a key entry (parse_key_entry).
    Raises VerificationError."""
    raw = as_bytes(receipt)
    id_: Optional[str] = None
    if raw.startswith(b"{"):
        id_, p = check_receipt_json(raw, True)
    else:
        p = parse_tlog_proof(raw)
    cp, lh = verify_leaf(p, log_key)
    assert p.extra is not None
    try:
        key = parse_key_entry(p.extra)
    except VerificationError as e:
        raise VerificationError("bad_entry", "entry %d: %s" % (p.index, e)) from None
    if id_ is not None and id_ != key.kid:
        raise VerificationError("mismatch", "the receipt's id %r is not the kid of its key entry, %r" % (id_, key.kid))
    return VerifiedKey(cp, p.index, lh, p.extra, key)


def verify_key_bound(
    token: str,
    key_receipt: Union[bytes, str],
    log_key: NoteVerifier,
    audience: str = "",
    now: Union[None, int, float, datetime] = None,
    leeway_seconds: int = 0,
    policy: Optional[Policy] = None,
    action: Optional[str] = None,
    resource: str = "",
    subject: str = "",
) -> Tuple[ArtifactClaims, VerifiedKey]:
    """Verify an authorization artifact with nothing but the log's note verifier key:

    1. key_receipt verifies (verify_key_receipt) and, given a policy, its checkpoint satisfies it;
    2. the artifact's header kid is the key entry's kid and the artifact verifies with the entry's
       key (verify_artifact: alg, typ, signature, claims, iss = the log key's name, aud, exp, nbf);
    3. its govlog.key_index is present and is the key receipt's index;
    4. given action, it authorizes exactly that action and resource, and subject when set.

    Returns the claims and the verified key. Raises VerificationError."""
    key = verify_key_receipt(key_receipt, log_key)
    if policy is not None:
        policy.check(key.checkpoint.note)
    x = re.search(r'"x":("[^"]*")', key.key.jwk).group(1)  # type: ignore[union-attr]
    jwks = JWKS.parse('{"keys":[{"crv":"Ed25519","kid":%s,"kty":"OKP","x":%s}]}' % (quote_jcs(key.key.kid), x))
    claims = verify_artifact(token, jwks, origin=log_key.name, audience=audience, now=now, leeway_seconds=leeway_seconds)
    ki = claims.govlog.key_index
    if ki is None:
        raise VerificationError("binding", "the artifact has no govlog.key_index: it names no logged key")
    if ki != key.index:
        raise VerificationError("binding", "the artifact's govlog.key_index is %d, the key receipt's index %d" % (ki, key.index))
    if action is not None:
        authorize(claims, action, resource, subject)
    return claims, key


def key_receipt_for(keys: Union[bytes, str], index: int) -> str:
    """The receipt (JSON text, not verified) of the key entry at index in a GET /v1/keys answer.
    Raises VerificationError ("binding" when there is none)."""
    v = parse_json(keys)
    lst = v.get("keys") if isinstance(v, JSONObject) else None
    if not isinstance(lst, list):
        raise VerificationError("malformed", 'the key list has no "keys" array')
    for k in lst:
        i = k.get("index") if isinstance(k, JSONObject) else None
        if isinstance(i, JSONNumber) and i.raw == str(index):
            r = k.get("receipt")
            if r is None:
                raise VerificationError("malformed", "the key at index %d has no receipt" % index)
            return canonicalize(r)
    raise VerificationError("binding", "the key list has no key at index %d" % index)


def key_index_of(token: str) -> Optional[int]:
    """The govlog.key_index an artifact names, read without verifying anything; None if none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        c = parse_json(b64url_strict(parts[1]) or b"")
    except VerificationError:
        return None
    g = c.get("govlog") if isinstance(c, JSONObject) else None
    i = g.get("key_index") if isinstance(g, JSONObject) else None
    return int(i.raw) if isinstance(i, JSONNumber) and re.fullmatch(r"0|[1-9][0-9]*", i.raw) else None


def verify_with_keys(token: str, keys: Union[bytes, str], log_key: NoteVerifier, **opts) -> Tuple[ArtifactClaims, VerifiedKey]:
    """verify_key_bound with the key receipt taken from a GET /v1/keys answer."""
    i = key_index_of(token)
    if i is None:
        raise VerificationError("bad_artifact", "the artifact names no govlog.key_index")
    return verify_key_bound(token, key_receipt_for(keys, i), log_key, **opts)
