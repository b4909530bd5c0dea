"""govlog entries, decisions and execution reports: the schema of the wire contract, checked as
the Go package log checks it (log.ParseEntry, log.ParseDecision, log.ParseExecution)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import List, NamedTuple, Optional, Tuple, Union

from ._bytes import as_bytes, b64url_strict, utf8
from .errors import FieldError, VerificationError
from .jcs import JSONNumber, JSONObject, canonicalize, parse_json
from .timefmt import Instant, parse_rfc3339, parse_utc

MAX_SUBMISSION_BYTES = 64 << 10
MAX_CONTEXT_BYTES = 16 << 10
MAX_ENTRY_BYTES = 65535
MAX_FUTURE_SKEW_SECONDS = 300
MAX_SEQUENCE = 2**53 - 1
MAX_REASONS = 32

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*\Z")
# A key entry's kid: an id's characters, any of them first (an RFC 7638
# thumbprint in base64url may start with "-" or "_"), 1 to 128 of them.
_KID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")


class Decision(NamedTuple):
    """A validated decision; optional members are "" (or 0) when absent."""

    id: str
    outcome: str
    decided_at: str  # as written
    decided_at_instant: Instant
    subject: str
    action: str
    resource: str
    policy_id: str
    policy_version: str
    policy_digest: str
    input_digest: str
    reasons: Tuple[str, ...]
    parent_id: str
    sequence: int
    canonical: str  # the decision as accepted: its RFC 8785 form
    max_executions: int = 0  # an allow's max_executions, 0 when absent (the log then allows 1)
    executor: str = ""  # an allow's executor, "" when absent


class Execution(NamedTuple):
    id: str
    decision_id: str
    status: str
    at: str  # as written
    at_instant: Instant
    runtime: str
    result_digest: str
    canonical: str  # the report as accepted: its RFC 8785 form, without artifact
    claim_id: str = ""  # a terminal report's claim_id
    artifact: str = ""  # a submitted report's artifact; never in an entry


class Revocation(NamedTuple):
    """A validated revocation (wire contract §2c)."""

    id: str
    decision_id: str
    revoked_at: str  # as written
    reason: str
    canonical: str


class KeyContent(NamedTuple):
    """The content of a key entry: an artifact signing key (wire contract §2e)."""

    kid: str
    public_key: bytes  # the 32-byte Ed25519 public key of the jwk


#: The violations the log records in an execution report's entry (wire contract §2b).
VIOLATIONS = ("unknown_decision", "not_authorized", "artifact_missing", "artifact_invalid", "before_decision", "revoked",
              "expired", "wrong_executor", "uses_exhausted", "unknown_claim")


class Entry(NamedTuple):
    """A parsed and validated entry (a leaf of the log)."""

    kind: str  # "decision", "execution", "revocation" or "key"
    id: str  # the decision's, report's or revocation's id, or the key's kid
    submitter: str
    logged_at: str  # as written: UTC, 9 fractional digits
    authorized_until: str  # an allow's, else ""
    decision: Optional[Decision]
    execution: Optional[Execution]
    revocation: Optional[Revocation] = None
    key: Optional[KeyContent] = None
    artifact_digest: str = ""  # an execution entry's artifact_digest
    violation: str = ""  # the violation the log recorded in an execution entry


def _unsafe_integer(n: JSONNumber) -> bool:
    """A number, as written, whose value or nearest double is an integer beyond ±2^53."""
    f = n.value
    if abs(f) > 2**53:
        return True
    if abs(f) < 2**52:
        return False
    r = Fraction(n.raw)
    return r.denominator == 1 and abs(r.numerator) > 2**53


class _Validator:
    def __init__(self, kind: str, obj: JSONObject, prefix: str = "") -> None:
        self.kind, self.obj, self.prefix = kind, obj, prefix
        self.err: Optional[FieldError] = None

    def fail(self, field: str, reason: str) -> None:
        if self.err is None:
            if len(field) > 64:
                field = field[:64] + "…"
            self.err = FieldError(self.kind, self.prefix + field, reason)

    def adopt(self, o: "_Validator") -> None:
        if self.err is None and o.err is not None:
            self.err = o.err

    def allow_only(self, *fields: str) -> None:
        for k, _ in self.obj.members:
            if k not in fields:
                self.fail(k, "unknown field")
                return

    _ABSENT = object()

    def raw(self, field: str, required: bool):
        if field not in self.obj:
            if required:
                self.fail(field, "is required")
            return self._ABSENT
        return self.obj[field]

    def str(self, field: str, required: bool, maximum: int) -> str:
        r = self.raw(field, required)
        if r is self._ABSENT:
            return ""
        if not isinstance(r, str):
            self.fail(field, "must be a string")
            return ""
        if not 1 <= len(r) <= maximum:
            self.fail(field, "must be 1 to %d characters, got %d" % (maximum, len(r)))
        return r

    def id(self, field: str, required: bool) -> str:
        s = self.str(field, required, 128)
        if s == "":
            return ""
        if not _ID.match(s):
            self.fail(field, "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$")
        elif s == "batch":
            self.fail(field, '"batch" is reserved')
        return s

    def enum(self, field: str, allowed: Tuple[str, ...]) -> str:
        s = self.str(field, True, 64)
        if s == "":
            return ""
        if s in allowed:
            return s
        self.fail(field, "must be one of %s" % ", ".join(allowed))
        return ""

    def digest(self, field: str) -> str:
        s = self.str(field, False, 71)
        if s and not _DIGEST.match(s):
            self.fail(field, 'must be "sha256:" and 64 lowercase hex digits')
        return s

    def timestamp(self, field: str, now: Instant) -> Tuple[str, Instant]:
        s = self.str(field, True, 64)
        if s == "":
            return "", (0, 0)
        t = parse_rfc3339(s)
        if t is None:
            self.fail(field, "must be an RFC 3339 timestamp")
            return "", (0, 0)
        if t > (now[0] + MAX_FUTURE_SKEW_SECONDS, now[1]):
            self.fail(field, "is more than 5m0s in the future")
        return s, t

    def object(self, field: str, required: bool) -> Optional[JSONObject]:
        r = self.raw(field, required)
        if r is self._ABSENT:
            return None
        if not isinstance(r, JSONObject):
            self.fail(field, "must be an object")
            return None
        return r

    def reasons(self, field: str) -> Tuple[str, ...]:
        r = self.raw(field, False)
        if r is self._ABSENT:
            return ()
        if not isinstance(r, list):
            self.fail(field, "must be an array of strings")
            return ()
        if len(r) > MAX_REASONS:
            self.fail(field, "must have at most %d items, got %d" % (MAX_REASONS, len(r)))
            return ()
        for i, item in enumerate(r):
            if not isinstance(item, str):
                self.fail("%s[%d]" % (field, i), "must be a string")
                return ()
            if not 1 <= len(item) <= 1024:
                self.fail("%s[%d]" % (field, i), "must be 1 to 1024 characters, got %d" % len(item))
                return ()
        return tuple(r)

    def context(self, field: str) -> None:
        r = self.raw(field, False)
        if r is self._ABSENT:
            return
        if not isinstance(r, JSONObject):
            self.fail(field, "must be an object")
            return
        size = len(canonicalize(r).encode("utf-8"))
        if size > MAX_CONTEXT_BYTES:
            self.fail(field, "is %d bytes once canonicalized, the limit is %d" % (size, MAX_CONTEXT_BYTES))
            return
        work: List[object] = [r]
        while work:
            v = work.pop()
            if isinstance(v, JSONNumber):
                if _unsafe_integer(v):
                    self.fail(field, "holds %s, an integer beyond ±2^53 that RFC 8785 cannot represent exactly" % v.raw)
                    return
            elif isinstance(v, list):
                work.extend(v)
            elif isinstance(v, JSONObject):
                work.extend(m for _, m in v.members)

    def integer(self, field: str, maximum: int) -> int:
        r = self.raw(field, False)
        if r is self._ABSENT:
            return 0
        if not isinstance(r, JSONNumber) or not re.match(r"[1-9][0-9]*\Z", r.raw) or int(r.raw) > maximum:
            self.fail(field, "must be an integer from 1 to %d" % maximum)
            return 0
        return int(r.raw)

    def compact_jws(self, field: str) -> str:
        s = self.str(field, False, 8 << 10)
        if s == "":
            return ""
        if not re.match(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\Z", s):
            self.fail(field, "must be a JWS in compact serialization: three base64url parts separated by dots")
            return ""
        return s

    def sequence(self, field: str) -> int:
        r = self.raw(field, False)
        if r is self._ABSENT:
            return 0
        if not isinstance(r, JSONNumber) or not re.match(r"[1-9][0-9]*\Z", r.raw) or int(r.raw) > MAX_SEQUENCE:
            self.fail(field, "must be an integer from 1 to %d" % MAX_SEQUENCE)
            return 0
        return int(r.raw)


def _parse_object(body: Union[bytes, str], kind: str, omit: str = "") -> Tuple[JSONObject, str]:
    raw = as_bytes(body)
    if len(raw) > MAX_SUBMISSION_BYTES:
        raise VerificationError("bad_entry", "invalid %s: the body is %d bytes, the limit is %d" % (kind, len(raw), MAX_SUBMISSION_BYTES))
    v = parse_json(raw)
    if not isinstance(v, JSONObject):
        raise VerificationError("malformed", "JSON: the body must be a JSON object")
    if omit and omit in v:
        c = JSONObject([(k, m) for k, m in v.members if k != omit])
        return v, canonicalize(c)
    return v, canonicalize(v)


def parse_decision(body: Union[bytes, str], now: Instant) -> Decision:
    """Validate a decision (a request body, or the decision of an entry) against the schema; now is
    the reference of the 5-minute future limit of decided_at. Raises VerificationError ("malformed"
    for JSON that is not strict) or a FieldError naming the field that breaks the schema."""
    obj, canonical = _parse_object(body, "decision")
    return _decision(obj, canonical, now)


def _decision(obj: JSONObject, canonical: str, now: Instant) -> Decision:
    v = _Validator("decision", obj)
    v.allow_only("id", "outcome", "decided_at", "subject", "action", "resource", "policy", "input_digest", "reasons", "parent_id",
                 "max_executions", "executor", "context", "sequence")
    id_ = v.id("id", True)
    outcome = v.enum("outcome", ("allow", "deny"))
    decided_at, decided_at_instant = v.timestamp("decided_at", now)
    subject = v.str("subject", True, 256)
    action = v.str("action", True, 256)
    resource = v.str("resource", False, 1024)
    policy_id = policy_version = policy_digest = ""
    pol = v.object("policy", True)
    if pol is not None:
        pv = _Validator("decision", pol, "policy.")
        pv.allow_only("id", "version", "digest")
        policy_id = pv.str("id", True, 256)
        policy_version = pv.str("version", False, 256)
        policy_digest = pv.digest("digest")
        v.adopt(pv)
    input_digest = v.digest("input_digest")
    reasons = v.reasons("reasons")
    parent_id = v.id("parent_id", False)
    max_executions = v.integer("max_executions", 1000)
    executor = v.str("executor", False, 256)
    if outcome == "deny":
        for f in ("max_executions", "executor"):
            if f in obj:
                v.fail(f, "is only for allow decisions")
    v.context("context")
    sequence = v.sequence("sequence")
    if v.err is not None:
        raise v.err
    return Decision(id_, outcome, decided_at, decided_at_instant, subject, action, resource, policy_id, policy_version,
                    policy_digest, input_digest, reasons, parent_id, sequence, canonical, max_executions, executor)


def parse_execution(body: Union[bytes, str], now: Instant) -> Execution:
    """Validate an execution report, as parse_decision a decision."""
    obj, canonical = _parse_object(body, "execution", "artifact")
    return _execution(obj, canonical, now)


def _execution(obj: JSONObject, canonical: str, now: Instant) -> Execution:
    v = _Validator("execution", obj)
    v.allow_only("id", "decision_id", "status", "at", "runtime", "result_digest", "context", "artifact", "claim_id")
    id_ = v.id("id", True)
    decision_id = v.id("decision_id", True)
    status = v.enum("status", ("started", "succeeded", "failed", "aborted"))
    at, at_instant = v.timestamp("at", now)
    runtime = v.str("runtime", False, 256)
    result_digest = v.digest("result_digest")
    v.context("context")
    artifact = v.compact_jws("artifact")
    claim_id = v.id("claim_id", False)
    if claim_id and status == "started":
        v.fail("claim_id", "is only for a terminal report (succeeded, failed or aborted)")
    if v.err is not None:
        raise v.err
    return Execution(id_, decision_id, status, at, at_instant, runtime, result_digest, canonical, claim_id, artifact)


def parse_revocation(body: Union[bytes, str], now: Instant) -> Revocation:
    """Validate a revocation, as parse_decision a decision."""
    obj, canonical = _parse_object(body, "revocation")
    return _revocation(obj, canonical, now)


def _revocation(obj: JSONObject, canonical: str, now: Instant) -> Revocation:
    v = _Validator("revocation", obj)
    v.allow_only("id", "decision_id", "revoked_at", "reason")
    id_ = v.id("id", True)
    decision_id = v.id("decision_id", True)
    revoked_at, _ = v.timestamp("revoked_at", now)
    reason = v.str("reason", False, 1024)
    if v.err is not None:
        raise v.err
    return Revocation(id_, decision_id, revoked_at, reason, canonical)


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


def _key(key) -> KeyContent:
    """A key entry's content: exactly {"jwk":{"crv":"Ed25519","kty":"OKP","x":X},"kid":K}."""
    k = _exact(key, ("jwk", "kid"), "the entry's key")
    kid = k["kid"]
    if not isinstance(kid, str) or not _KID.match(kid):
        _bad("the entry's kid is not 1 to 128 characters of A-Z a-z 0-9 . _ : -")
    jwk = _exact(k["jwk"], ("crv", "kty", "x"), "the entry's jwk")
    if jwk["kty"] != "OKP" or jwk["crv"] != "Ed25519":
        _bad("the entry's jwk is not an Ed25519 OKP key")
    x = b64url_strict(jwk["x"]) if isinstance(jwk["x"], str) else None
    if x is None or len(x) != 32:
        _bad("the entry's jwk x is not the unpadded base64url of a 32-byte key")
    return KeyContent(kid, x)


_ENTRY_MEMBERS = ("artifact_digest", "authorized_until", "decision", "execution", "key", "logged_at", "revocation", "submitter", "v",
                  "violation")
_CONTENTS = ("decision", "execution", "revocation", "key")


def _bad(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("bad_entry", msg)


def parse_entry(leaf: Union[bytes, str]) -> Entry:
    """Parse and validate an entry, as the Go log.ParseEntry: at most 65,535 bytes of RFC 8785
    canonical JSON, exactly the members of the entry shape, v 1, logged_at in UTC with 9
    fractional digits, a non-empty submitter, exactly one of decision and execution (valid, dated
    at most 5 minutes after logged_at), authorized_until (UTC, whole seconds) exactly for an allow.
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
    if not isinstance(v, JSONObject):
        _bad("the entry is not a JSON object")
    for k, _ in v.members:
        if k not in _ENTRY_MEMBERS:
            _bad("the entry has an unknown member %r" % k)
    ver = v.get("v")
    if not isinstance(ver, JSONNumber) or ver.raw != "1":
        _bad("the entry's v is not 1")
    logged_at = v.get("logged_at")
    logged = parse_utc(logged_at, True) if isinstance(logged_at, str) else None
    if logged is None:
        _bad("the entry has a bad logged_at")
    submitter = v.get("submitter")
    if not isinstance(submitter, str) or submitter == "":
        _bad("the entry has no submitter")
    if sum(1 for k, _ in v.members if k in _CONTENTS) != 1:
        _bad("the entry must hold exactly one of decision, execution, revocation and key")
    if "execution" not in v and ("artifact_digest" in v or "violation" in v):
        _bad("only an execution entry has artifact_digest or violation")
    if "decision" not in v and "authorized_until" in v:
        _bad("only an allow decision has authorized_until")
    until = v.get("authorized_until")
    if "decision" in v:
        d = v["decision"]
        if not isinstance(d, JSONObject):
            _bad("the entry's decision is not an object")
        dec = _wrap(lambda: _decision(d, canonicalize(d), logged))
        allow = dec.outcome == "allow"
        if allow != ("authorized_until" in v):
            _bad("the entry must have authorized_until exactly when the outcome is allow")
        if allow and (not isinstance(until, str) or parse_utc(until, False) is None):
            _bad("the entry has a bad authorized_until")
        return Entry("decision", dec.id, submitter, logged_at, until if allow else "", dec, None)
    if "execution" in v:
        x = v["execution"]
        if not isinstance(x, JSONObject):
            _bad("the entry's execution is not an object")
        ex = _wrap(lambda: _execution(x, canonicalize(x), logged))
        if ex.artifact:
            _bad("an execution entry holds no artifact")
        digest = v.get("artifact_digest", "")
        if "artifact_digest" in v and (not isinstance(digest, str) or not _DIGEST.match(digest)):
            _bad("the entry has a bad artifact_digest")
        violation = v.get("violation", "")
        if "violation" in v and violation not in VIOLATIONS:
            _bad("the entry has an unknown violation")
        return Entry("execution", ex.id, submitter, logged_at, "", None, ex, artifact_digest=digest, violation=violation)
    if "revocation" in v:
        r = v["revocation"]
        if not isinstance(r, JSONObject):
            _bad("the entry's revocation is not an object")
        rev = _wrap(lambda: _revocation(r, canonicalize(r), logged))
        return Entry("revocation", rev.id, submitter, logged_at, "", None, None, revocation=rev)
    key = _key(v["key"])
    return Entry("key", key.kid, submitter, logged_at, "", None, None, key=key)


def _wrap(f):
    try:
        return f()
    except FieldError:
        raise
    except VerificationError as e:
        _bad("the entry holds an invalid content: %s" % e)
