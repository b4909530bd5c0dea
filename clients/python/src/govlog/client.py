"""A thin client of the govlog REST API (wire contract §4), with the retry rules of the Go SDK:
submissions are idempotent by id, so every request is retried on 429, 502, 503 and 504 and when no
answer came, honouring Retry-After, within a bounded number of attempts."""

from __future__ import annotations

import email.utils
import json
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from ._bytes import as_bytes, utf8
from .artifact import JWKS, ArtifactClaims, authorize, verify_artifact
from .checkpoint import Checkpoint, verify_checkpoint
from .entry import parse_decision, parse_execution, parse_revocation
from .jcs import JSONNumber, JSONObject, canonicalize, parse_json
from .errors import VerificationError
from .note import NoteVerifier
from .receipt import Verified, verify_any_receipt, verify_receipt_json
from .timefmt import parse_utc

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RETRY_WAIT = 60.0
_BACKOFF_BASE = 0.2
_BACKOFF_MAX = 5.0
_MAX_RESPONSE_BYTES = 1 << 20
_JWKS_TTL = 300.0
_JWKS_MIN_REFRESH = 30.0


class APIError(Exception):
    """An error answer of the API: its status and the code and message of its JSON error body."""

    def __init__(self, status: int, code: str, message: str, retry_after: float, body: bytes = b"") -> None:
        super().__init__("govlog API: %d %s: %s" % (status, code, message) if code else "govlog API: %d: %s" % (status, message))
        self.status = status
        self.code = code  # "" when the body was not a JSON error
        self.message = message
        self.retry_after = retry_after  # seconds, 0 when absent
        self.body = body


class ViolationError(APIError):
    """The answer 409 to an execution report that breaks a rule of the authorization (wire contract
    §2b): the log recorded it with code as its violation, and receipt is the receipt of that entry
    (receipt_body as received: keep it, it is the evidence; verified with the log key). A runtime
    that gets it must not execute."""

    def __init__(self, err: APIError, receipt: Dict[str, Any], receipt_body: bytes, verified: Optional[Verified]) -> None:
        super().__init__(err.status, err.code, err.message, err.retry_after, err.body)
        self.receipt = receipt
        self.receipt_body = receipt_body
        self.verified = verified


class TransportError(Exception):
    """A request that got no answer."""


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> float:
    """A Retry-After header (delay seconds or an HTTP date) in seconds, 0 when absent or invalid."""
    if not value:
        return 0.0
    if value.isdigit() and len(value) <= 10:
        s = int(value)
        return float(s) if s <= 0xFFFFFFFF else 0.0
    try:
        t = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0
    now = time.time() if now is None else now
    return t - now if t > now else 0.0


def backoff(attempt: int) -> float:
    """The wait before attempt+1 without Retry-After: exponential from 200 ms, capped at 5 s, jittered."""
    d = min(_BACKOFF_BASE * 2 ** min(attempt - 1, 16), _BACKOFF_MAX)
    return d / 2 + random.random() * d / 2


def _retryable(err: Exception) -> bool:
    if isinstance(err, TransportError):
        return not isinstance(err.__cause__, ssl.SSLCertVerificationError)
    return isinstance(err, APIError) and err.status in (429, 502, 503, 504)


class Submitted(NamedTuple):
    """The answer to a submission or a lookup."""

    receipt: Dict[str, Any]  # the JSON receipt, decoded
    body: bytes  # the JSON receipt as received: keep it, it is the evidence
    created: bool  # False for a resubmission, which gets the original receipt
    verified: Optional[Verified]  # when the client has the log key


class Client:
    """A client of one govlog server.

    base_url is e.g. "https://govlog.example.com" or "http://127.0.0.1:8080/prefix". With log_key,
    every receipt and checkpoint is verified before it is returned."""

    def __init__(
        self,
        base_url: str,
        token: str = "",
        log_key: Optional[NoteVerifier] = None,
        audience: str = "",
        jwks: Optional[JWKS] = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise ValueError("the server URL %r is not http(s)://host" % base_url)
        if u.query or u.fragment:
            raise ValueError("the server URL %r must have no query or fragment" % base_url)
        self.base = base_url.rstrip("/")
        self.token = token
        self.log_key = log_key
        self.audience = audience
        self._jwks_pinned = jwks
        self._jwks: Optional[Tuple[JWKS, float]] = None
        self.max_attempts = max(max_attempts, 1)
        self.max_retry_wait = max_retry_wait
        self.timeout = timeout
        self._sleep = sleep

    def _request(self, method: str, path: str, body: Optional[bytes] = None) -> Tuple[int, bytes]:
        """Send a request until a 2xx answer, a final error (APIError), or out of attempts."""
        attempt = 1
        while True:
            try:
                return self._attempt(method, path, body)
            except (APIError, TransportError) as err:
                if not _retryable(err):
                    raise
                if attempt >= self.max_attempts:
                    raise TransportError("gave up after %d attempts: %s" % (attempt, err)) from err
                wait = (err.retry_after if isinstance(err, APIError) else 0) or backoff(attempt)
                if wait > self.max_retry_wait:
                    raise TransportError("the server asks to retry after %gs, longer than %gs: %s" % (wait, self.max_retry_wait, err)) from err
                self._sleep(wait)
                attempt += 1

    def _attempt(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        headers = {"Accept": "application/json, text/plain"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = resp.read(_MAX_RESPONSE_BYTES + 1)
                status = resp.status
        except urllib.error.HTTPError as e:
            data = e.read(_MAX_RESPONSE_BYTES + 1)
            code, message = "", (utf8(data) or "").strip()[:200] or "(no body)"
            try:
                err = json.loads(data)["error"]
                if isinstance(err.get("code"), str) and err["code"]:
                    code, message = err["code"], str(err.get("message", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
            raise APIError(e.code, code, message, parse_retry_after(e.headers.get("Retry-After")), data) from None
        except urllib.error.URLError as e:
            raise TransportError("govlog request failed: %s" % e.reason) from e.reason if isinstance(e.reason, Exception) else e
        except (OSError, ValueError) as e:
            raise TransportError("govlog request failed: %s" % e) from e
        if len(data) > _MAX_RESPONSE_BYTES:
            raise TransportError("the response is larger than %d bytes" % _MAX_RESPONSE_BYTES)
        return status, data

    def _receipt(self, data: bytes) -> Tuple[Dict[str, Any], Optional[Verified]]:
        r = json.loads(data)
        if self.log_key is None:
            return r, None
        return r, verify_receipt_json(data, self.log_key)

    def _submit(self, kind: str, body: Union[dict, bytes, str]) -> Submitted:
        raw = json.dumps(body).encode("utf-8") if isinstance(body, dict) else as_bytes(body)
        try:
            status, data = self._request("POST", "/v1/%ss" % kind, raw)
        except APIError as e:
            if kind == "execution" and e.status == 409:
                self._violation(e, raw)
            raise
        if status not in (200, 201):
            raise TransportError("unexpected status %d" % status)
        r, v = self._receipt(data)
        if v is not None:
            self._holds(v, kind, raw)
        return Submitted(r, data, status == 201, v)

    def _holds(self, v: Verified, kind: str, raw: bytes, violation: str = "") -> None:
        """The verified entry must hold exactly the submission, canonicalized as the log does."""
        at = parse_utc(v.entry.logged_at, True)
        try:
            canonical = {"decision": parse_decision, "execution": parse_execution, "revocation": parse_revocation}[kind](raw, at).canonical
        except VerificationError:
            canonical = ""
        content = {"decision": v.entry.decision, "execution": v.entry.execution, "revocation": v.entry.revocation}[kind]
        if v.entry.kind != kind or not canonical or content is None or content.canonical != canonical or v.entry.violation != violation:
            raise VerificationError("mismatch", "the receipt's entry %d does not hold the submitted %s%s"
                                    % (v.index, kind, " with the violation " + violation if violation else ""))

    def _violation(self, err: APIError, raw: bytes) -> None:
        """Turn a 409 that carries the receipt of a recorded report into a ViolationError."""
        try:
            body = parse_json(err.body)
        except VerificationError:
            return
        r = body.get("receipt") if isinstance(body, JSONObject) else None
        if not isinstance(r, JSONObject):
            return  # a conflict (id_conflict), not a recorded violation
        text = canonicalize(r).encode("utf-8")
        v = None
        if self.log_key is not None:
            v = verify_receipt_json(text, self.log_key)
            self._holds(v, "execution", raw, err.code)
        raise ViolationError(err, json.loads(text), text, v) from None

    def submit_decision(self, decision: Union[dict, bytes, str]) -> Submitted:
        """Log a decision (a dict, or its JSON) and return its receipt (with an artifact for an allow)."""
        return self._submit("decision", decision)

    def report_execution(self, report: Union[dict, bytes, str]) -> Submitted:
        """Log an execution report and return its receipt. A claim (started, or terminal without
        claim_id) carries the decision's artifact. A report that breaks a rule is recorded and answered
        409: ViolationError, carrying the receipt of the recorded entry (do not execute)."""
        return self._submit("execution", report)

    def claim(self, report: Union[dict, bytes, str]) -> Submitted:
        """Report that an execution starts (status started, with the artifact): see report_execution."""
        return self._submit("execution", report)

    def revoke(self, revocation: Union[dict, bytes, str]) -> Submitted:
        """Log a revocation of an allow (wire contract §2c) and return its receipt."""
        return self._submit("revocation", revocation)

    def submit_decisions(self, decisions: List[Union[dict, bytes, str]]) -> List[Union[Submitted, Dict[str, str]]]:
        """Log up to 1000 decisions in one request (POST /v1/decisions/batch): one result per
        decision, in order: its Submitted receipt (verified with the log key), or its error
        ({"code", "message"}). Retried like one submission: items are idempotent by id."""
        items = [json.dumps(d).encode("utf-8") if isinstance(d, dict) else as_bytes(d) for d in decisions]
        _, data = self._request("POST", "/v1/decisions/batch", b'{"decisions":[' + b",".join(items) + b"]}")
        v = parse_json(data)
        results = v.get("results") if isinstance(v, JSONObject) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise VerificationError("malformed", "the batch answer does not have %d results" % len(items))
        out: List[Union[Submitted, Dict[str, str]]] = []
        for i, r in enumerate(results):
            if not isinstance(r, JSONObject):
                raise VerificationError("malformed", "batch result %d is not an object" % i)
            e = r.get("error")
            if isinstance(e, JSONObject):
                out.append({"code": str(e.get("code", "")), "message": str(e.get("message", ""))})
                continue
            text = canonicalize(r).encode("utf-8")
            rr, verified = self._receipt(text)
            if verified is not None:
                self._holds(verified, "decision", items[i])
            out.append(Submitted(rr, text, True, verified))
        return out

    def authorization(self, decision_id: str) -> Dict[str, Any]:
        """The status of an authorization (wire contract §2d), as a dict. With the log key, its
        checkpoint and every receipt are verified, each against that checkpoint, the first being the
        decision's and the others about it; they are under "verified"."""
        _, data = self._request("GET", "/v1/authorizations/%s" % urllib.parse.quote(decision_id, safe=""))
        v = parse_json(data)
        if not isinstance(v, JSONObject) or not isinstance(v.get("receipts"), list) or not isinstance(v.get("checkpoint"), str):
            raise VerificationError("malformed", "the authorization status has no checkpoint or receipts")
        status = json.loads(data)
        if self.log_key is None:
            return status
        verify_checkpoint(v["checkpoint"], self.log_key)
        verified = []
        for r in v["receipts"]:
            one = verify_receipt_json(canonicalize(r), self.log_key)
            if one.checkpoint.note != v["checkpoint"].encode("utf-8"):
                raise VerificationError("mismatch", "the receipt of entry %d is not against the status's checkpoint" % one.index)
            verified.append(one)
        if not verified or verified[0].entry.kind != "decision" or verified[0].entry.id != decision_id:
            raise VerificationError("mismatch", "the first receipt is not the decision %s's" % decision_id)
        for x in verified[1:]:
            about = x.entry.execution.decision_id if x.entry.execution else x.entry.revocation.decision_id if x.entry.revocation else None
            if about != decision_id:
                raise VerificationError("mismatch", "the receipt of entry %d is not about the decision %s" % (x.index, decision_id))
        status["verified"] = verified
        return status

    def _lookup(self, kind: str, id_: str) -> Submitted:
        _, data = self._request("GET", "/v1/%ss/%s" % (kind, urllib.parse.quote(id_, safe="")))
        r, v = self._receipt(data)
        if v is not None and (v.entry.kind != kind or v.entry.id != id_):
            raise VerificationError("mismatch", "the server sent the receipt of %s %s" % (v.entry.kind, v.entry.id))
        return Submitted(r, data, False, v)

    def get_decision(self, id_: str) -> Submitted:
        """The receipt of a logged decision against the latest checkpoint (no artifact); 404 is an APIError."""
        return self._lookup("decision", id_)

    def get_execution(self, id_: str) -> Submitted:
        return self._lookup("execution", id_)

    def checkpoint(self) -> Checkpoint:
        """The latest checkpoint, verified with the log key."""
        if self.log_key is None:
            raise ValueError("checkpoint needs the log key")
        _, data = self._request("GET", "/v1/checkpoint")
        return verify_checkpoint(data, self.log_key)

    def keys(self) -> bytes:
        """The answer of GET /v1/keys: the logged artifact keys with their receipts (API §2e), as
        bytes for key_receipt_for / verify_with_keys. With the log key, every key's receipt is
        verified first: a key entry of that kid at that index."""
        _, data = self._request("GET", "/v1/keys")
        if self.log_key is not None:
            from .keys import verify_key_receipt

            v = parse_json(data)
            lst = v.get("keys") if isinstance(v, JSONObject) else None
            if not isinstance(lst, list):
                raise VerificationError("malformed", 'the key list has no "keys" array')
            for k in lst:
                kid, index = (k.get("kid"), k.get("index")) if isinstance(k, JSONObject) else (None, None)
                if not isinstance(kid, str) or not isinstance(index, JSONNumber) or "receipt" not in k:
                    raise VerificationError("malformed", "a key of the list has no kid, index or receipt")
                vk = verify_key_receipt(canonicalize(k["receipt"]), self.log_key)
                if vk.key.kid != kid or str(vk.index) != index.raw:
                    raise VerificationError("mismatch", "the receipt of key %s is of another key" % kid)
        return data

    def jwks(self, refresh: bool = False) -> JWKS:
        """The artifact keys: pinned, cached (5 minutes), or fetched."""
        if self._jwks_pinned is not None:
            return self._jwks_pinned
        if self._jwks is not None:
            age = time.monotonic() - self._jwks[1]
            if (not refresh and age < _JWKS_TTL) or (refresh and age < _JWKS_MIN_REFRESH):
                return self._jwks[0]
        _, data = self._request("GET", "/.well-known/jwks.json")
        keys = JWKS.parse(data)
        self._jwks = (keys, time.monotonic())
        return keys

    def verify_artifact(
        self, token: str, action: str, resource: str = "", subject: str = "", receipt: Union[None, bytes, str] = None, now=None
    ) -> ArtifactClaims:
        """What a runtime calls before it executes an action: verify the artifact against the log's
        artifact keys, origin (the log key's name), the audience and the time, bound to its receipt
        when given, and check that it authorizes exactly this action, resource and subject."""
        if self.log_key is None:
            raise ValueError("verify_artifact needs the log key")
        bound = verify_any_receipt(receipt, self.log_key) if receipt is not None else None
        keys = self.jwks()
        try:
            claims = verify_artifact(token, keys, origin=self.log_key.name, audience=self.audience, now=now, receipt=bound)
        except VerificationError as e:
            # Perhaps a key the cached set does not have yet.
            if self._jwks_pinned is not None or e.code != "bad_signature":
                raise
            fresh = self.jwks(refresh=True)
            if fresh is keys:
                raise
            claims = verify_artifact(token, fresh, origin=self.log_key.name, audience=self.audience, now=now, receipt=bound)
        authorize(claims, action, resource, subject)
        return claims
