"""Key-bound artifacts (wire contract §2e): every artifact signing key is logged as a key entry, so a
verifier holding only the log's note verifier key checks an artifact by verifying its key's receipt,
then the JWT with that key. As the Go package verifier/artifact (VerifyKeyBound) and
verifier.KeyReceipt."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple, Optional, Tuple, Union

from ._bytes import as_bytes, b64url_encode, b64url_strict
from .artifact import JWKS, ArtifactClaims, authorize, verify_artifact
from .checkpoint import Checkpoint
from .entry import KeyContent
from .errors import VerificationError
from .jcs import JSONNumber, JSONObject, canonicalize, parse_json, quote_jcs
from .note import NoteVerifier
from .policy import Policy
from .receipt import Verified, verify_receipt, verify_receipt_json

class VerifiedKey(NamedTuple):
    """What a verified key receipt proves: the key entry is at index in the log whose checkpoint
    covers it."""

    verified: Verified
    key: KeyContent

    @property
    def index(self) -> int:
        return self.verified.index

    @property
    def checkpoint(self) -> Checkpoint:
        return self.verified.checkpoint


def verify_key_receipt(receipt: Union[bytes, str], log_key: NoteVerifier) -> VerifiedKey:
    """Verify the receipt of a key entry with the log's note verifier key: a tlog-proof
    (verify_receipt), or a JSON receipt as GET /v1/keys serves them (verify_receipt_json: its id is
    the kid). The entry must be a key entry. Raises VerificationError."""
    raw = as_bytes(receipt)
    v = verify_receipt_json(raw, log_key) if raw.startswith(b"{") else verify_receipt(raw, log_key)
    if v.entry.kind != "key" or v.entry.key is None:
        raise VerificationError("bad_entry", "entry %d is a %s entry, not a key" % (v.index, v.entry.kind))
    return VerifiedKey(v, v.entry.key)


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
    x = b64url_encode(key.key.public_key)
    jwks = JWKS.parse('{"keys":[{"crv":"Ed25519","kid":%s,"kty":"OKP","x":"%s"}]}' % (quote_jcs(key.key.kid), x))
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
