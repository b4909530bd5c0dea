"""Authorization artifacts: the EdDSA JWT an allow decision gets (wire contract §5), verified as
the Go package verifier does (verifier.Artifact) and checked against what a runtime is about to
do (client.VerifyArtifact)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import List, NamedTuple, Optional, Union

from ._bytes import b64_any, b64encode, b64url_strict, utf8
from ._crypto import ed25519_verify
from .errors import VerificationError
from .jcs import JSONNumber, JSONObject, parse_json, quote_jcs
from .receipt import Verified
from .timefmt import parse_utc

ARTIFACT_TYPE = "govlog-authz+jwt"
DEFAULT_LEEWAY_SECONDS = 30
MAX_ARTIFACT_BYTES = 8 << 10


class Binding(NamedTuple):
    index: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    key_index: Optional[int] = None  # the signing key's key entry (API §2e); None when not named


class ArtifactClaims(NamedTuple):
    iss: str  # the log's origin
    sub: str  # the decision's subject
    jti: str  # the decision's id
    iat: int
    nbf: int
    exp: int  # the entry's authorized_until
    aud: str  # "" when absent
    action: str
    resource: str  # "" when absent
    govlog: Binding


class JWKS:
    """A JSON Web Key Set: its keys by kid, first one winning."""

    def __init__(self, keys: List[JSONObject]) -> None:
        self._keys = keys

    @classmethod
    def parse(cls, text: Union[bytes, str]) -> "JWKS":
        """Read a JWKS (RFC 7517): an object whose "keys" is an array of JWKs, each an object with
        a string kty (EC, OKP, RSA or oct). Raises VerificationError("bad_key")."""
        try:
            v = parse_json(text)
        except VerificationError as e:
            raise VerificationError("bad_key", "the JWKS is not JSON: %s" % e) from None
        keys = v.get("keys") if isinstance(v, JSONObject) else None
        if not isinstance(keys, list):
            raise VerificationError("bad_key", 'the JWKS has no "keys" array')
        for k in keys:
            if not isinstance(k, JSONObject) or k.get("kty") not in ("EC", "OKP", "RSA", "oct"):
                raise VerificationError("bad_key", "a JWK of the set has no valid kty")
        return cls(keys)

    def ed25519_key(self, kid: str) -> bytes:
        """The Ed25519 public key of the first JWK of kid, usable for EdDSA signatures (kty OKP,
        crv Ed25519, x of 32 bytes, alg absent or EdDSA, use absent or sig). Raises "bad_signature"."""
        k = next((k for k in self._keys if k.get("kid") == kid), None)
        if k is None:
            raise VerificationError("bad_signature", "the JWKS has no key %r" % kid)
        if k.get("alg") not in (None, "", "EdDSA"):
            raise VerificationError("bad_signature", "JWKS key %r is for %s, not EdDSA" % (kid, k.get("alg")))
        if k.get("use") not in (None, "", "sig"):
            raise VerificationError("bad_signature", "JWKS key %r is not for signatures" % kid)
        x = k.get("x")
        pub = b64_any(x) if k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and isinstance(x, str) else None
        if pub is None:
            raise VerificationError("bad_signature", "JWKS key %r is not an Ed25519 key" % kid)
        if len(pub) != 32:
            raise VerificationError("bad_signature", "JWKS key %r is %d bytes, an Ed25519 key is 32" % (kid, len(pub)))
        return pub


def _bad(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("bad_artifact", msg)


_CLAIMS = ("action", "aud", "exp", "govlog", "iat", "iss", "jti", "nbf", "resource", "sub")
_REQUIRED = ("iss", "sub", "jti", "iat", "nbf", "exp", "action", "govlog")
_BINDING = ("index", "key_index", "leaf_hash", "tree_size", "root_hash")


def _int(v, name: str, signed: bool) -> int:
    if not isinstance(v, JSONNumber) or not re.match(r"-?(0|[1-9][0-9]*)\Z" if signed else r"(0|[1-9][0-9]*)\Z", v.raw):
        _bad("the artifact's %s is not an integer" % name)
    n = int(v.raw)
    if (signed and not -(2**63) <= n < 2**63) or (not signed and n >= 2**64):
        _bad("the artifact's %s is out of range" % name)
    return n


def payload_of(c: ArtifactClaims) -> str:
    """The JWT payload of claims as govlog writes it (the Go log.ArtifactClaims.Payload): RFC 8785
    canonical JSON, aud and resource only when set, integers exactly."""
    return (
        '{"action":' + quote_jcs(c.action)
        + (',"aud":' + quote_jcs(c.aud) if c.aud else "")
        + ',"exp":%d,"govlog":{"index":%d' % (c.exp, c.govlog.index)
        + (',"key_index":%d' % c.govlog.key_index if c.govlog.key_index is not None else "")
        + ',"leaf_hash":%s,"root_hash":%s,"tree_size":%d}'
        % (quote_jcs(c.govlog.leaf_hash), quote_jcs(c.govlog.root_hash), c.govlog.tree_size)
        + ',"iat":%d,"iss":%s,"jti":%s,"nbf":%d' % (c.iat, quote_jcs(c.iss), quote_jcs(c.jti), c.nbf)
        + (',"resource":' + quote_jcs(c.resource) if c.resource else "")
        + ',"sub":' + quote_jcs(c.sub) + "}"
    )


def _claims(payload: bytes) -> ArtifactClaims:
    try:
        v = parse_json(payload)
    except VerificationError as e:
        _bad("the artifact's claims: %s" % e)
    if not isinstance(v, JSONObject):
        _bad("the artifact's claims are not a JSON object")
    for k, _ in v.members:
        if k not in _CLAIMS:
            _bad("the artifact has an unknown claim %r" % k)
    for k in _REQUIRED:
        if k not in v:
            _bad("the artifact has no %s claim" % k)

    def string(o: JSONObject, k: str, prefix: str = "") -> str:
        s = o.get(k, "")
        if not isinstance(s, str):
            _bad("the artifact's %s%s is not a string" % (prefix, k))
        return s

    g = v["govlog"]
    if not isinstance(g, JSONObject):
        _bad("the artifact's govlog claim is not an object")
    for k, _ in g.members:
        if k not in _BINDING:
            _bad("the artifact's govlog claim has an unknown member %r" % k)
    c = ArtifactClaims(
        iss=string(v, "iss"),
        sub=string(v, "sub"),
        jti=string(v, "jti"),
        iat=_int(v["iat"], "iat", True),
        nbf=_int(v["nbf"], "nbf", True),
        exp=_int(v["exp"], "exp", True),
        aud=string(v, "aud"),
        action=string(v, "action"),
        resource=string(v, "resource"),
        govlog=Binding(
            index=_int(g["index"], "govlog.index", False) if "index" in g else 0,
            leaf_hash=string(g, "leaf_hash", "govlog."),
            tree_size=_int(g["tree_size"], "govlog.tree_size", False) if "tree_size" in g else 0,
            root_hash=string(g, "root_hash", "govlog."),
            key_index=_int(g["key_index"], "govlog.key_index", False) if "key_index" in g else None,
        ),
    )
    # One artifact, one encoding, read alike by every JSON parser.
    if utf8(payload) != payload_of(c):
        _bad("the artifact's claims are not the canonical JSON of govlog claims")
    return c


def _unix(s: str) -> int:
    return parse_utc(s, "." in s)[0]


def verify_artifact(
    token: str,
    jwks: JWKS,
    origin: str = "",
    audience: str = "",
    now: Union[None, int, float, datetime] = None,
    leeway_seconds: int = 0,
    receipt: Optional[Verified] = None,
) -> ArtifactClaims:
    """Verify an authorization artifact and return its claims: at most 8 KiB, three parts of
    canonical unpadded base64url; a header with exactly alg "EdDSA", typ "govlog-authz+jwt" and a
    kid; the signature verifies with that kid's Ed25519 key in jwks; the payload is the RFC 8785
    canonical JSON of the claims, iss the origin (default: the receipt's), aud the audience (none
    when ""), nbf - leeway <= now < exp + leeway (leeway 0: 30 s; negative: none); with a receipt,
    bound to it. Raises VerificationError ("bad_artifact", "bad_signature" or "binding")."""
    if receipt is not None:
        if origin == "":
            origin = receipt.checkpoint.origin
        elif origin != receipt.checkpoint.origin:
            raise VerificationError("binding", "the receipt is from log %s, not %s" % (receipt.checkpoint.origin, origin))
    if origin == "":
        raise ValueError("verify_artifact needs an origin or a receipt")
    if len(token) > MAX_ARTIFACT_BYTES:
        _bad("the artifact is %d bytes, the limit is %d" % (len(token), MAX_ARTIFACT_BYTES))
    parts = token.split(".")
    if len(parts) != 3:
        _bad("the artifact is not a compact JWS of three parts")
    segs = []
    for i, p in enumerate(parts):
        b = b64url_strict(p)
        if b is None:
            _bad("artifact part %d is not canonical unpadded base64url" % (i + 1))
        segs.append(b)
    try:
        hdr = parse_json(segs[0])
    except VerificationError as e:
        _bad("the artifact header: %s" % e)
    if not isinstance(hdr, JSONObject):
        _bad("the artifact header is not a JSON object")
    for k, m in hdr.members:
        if k not in ("alg", "kid", "typ"):
            _bad("the artifact header has members other than alg, kid and typ")
        if not isinstance(m, str):
            _bad("the artifact header's %s is not a string" % k)
    if hdr.get("alg") != "EdDSA":
        _bad("the artifact algorithm is %r, only EdDSA is accepted" % hdr.get("alg", ""))
    if hdr.get("typ") != ARTIFACT_TYPE:
        _bad("the artifact typ is %r, want %s" % (hdr.get("typ", ""), ARTIFACT_TYPE))
    kid = hdr.get("kid", "")
    if not kid:
        _bad("the artifact header has no kid")
    pub = jwks.ed25519_key(kid)
    if not ed25519_verify(pub, token[: token.rfind(".")].encode("ascii"), segs[2]):
        raise VerificationError("bad_signature", "the artifact signature does not verify with key %r" % kid)
    c = _claims(segs[1])
    if c.iss != origin:
        _bad("the artifact issuer is %r, want %r" % (c.iss, origin))
    if c.aud != audience:
        _bad("the artifact is for audience %r, and no audience is configured" % c.aud if not audience else "the artifact audience is %r, want %r" % (c.aud, audience))
    if now is None:
        now = time.time()
    elif isinstance(now, datetime):
        now = now.timestamp()
    leeway = DEFAULT_LEEWAY_SECONDS if leeway_seconds == 0 else max(0, leeway_seconds)
    if not now < c.exp + leeway:
        _bad("the artifact expired at %d" % c.exp)
    if now < c.nbf - leeway:
        _bad("the artifact is not valid before %d" % c.nbf)
    if receipt is not None:
        _check_binding(c, receipt)
    return c


def _check_binding(c: ArtifactClaims, v: Verified) -> None:
    d = v.entry.decision
    if v.entry.kind != "decision" or d is None or d.outcome != "allow":
        raise VerificationError("binding", "the receipt's entry is not an allow decision")
    for name, got, want in (
        ("jti", c.jti, d.id),
        ("sub", c.sub, d.subject),
        ("action", c.action, d.action),
        ("resource", c.resource, d.resource),
        ("exp", c.exp, _unix(v.entry.authorized_until)),
        ("iat", c.iat, _unix(v.entry.logged_at)),
        ("nbf", c.nbf, _unix(v.entry.logged_at)),
        ("govlog.index", c.govlog.index, v.index),
        ("govlog.leaf_hash", c.govlog.leaf_hash, b64encode(v.leaf_hash)),
        ("govlog.tree_size", c.govlog.tree_size, v.checkpoint.size),
        ("govlog.root_hash", c.govlog.root_hash, b64encode(v.checkpoint.root_hash)),
    ):
        if got != want:
            raise VerificationError("binding", "the artifact's %s is %s, the receipt says %s" % (name, got, want))


def authorize(claims: ArtifactClaims, action: str, resource: str = "", subject: str = "") -> None:
    """Check that verified claims authorize exactly this action and resource ("" for none), and
    this subject when given (as the Go client.VerifyArtifact). Raises "not_authorized"."""
    if not action:
        raise ValueError("authorize needs an action")
    if claims.action != action:
        raise VerificationError("not_authorized", "the artifact authorizes action %r, not %r" % (claims.action, action))
    if claims.resource != resource:
        raise VerificationError("not_authorized", "the artifact authorizes resource %r, not %r" % (claims.resource, resource))
    if subject and claims.sub != subject:
        raise VerificationError("not_authorized", "the artifact authorizes subject %r, not %r" % (claims.sub, subject))
