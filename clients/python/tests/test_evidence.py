"""The client's calls of execution evidence (wire contract §2b-§2e) against a local HTTP server that
answers with receipts of a real log of the evidence entries of testdata/verify/entries.json, signed
with the test log key: a claim recorded with a violation (409 and its receipt), a revocation, a
batch, an authorization's status and the keys."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from govlog import Client, VerificationError, ViolationError, verify_with_keys

from test_client import LOG_KEY, Server, read

NAMES = ["evidence: an allow with max_executions and executor", "evidence: a claim with a violation",
         "evidence: a revocation", "evidence: a key entry"]
IDS = ["d-1", "e-1", "r-1", "test-artifact-1"]


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _root(hs):
    if len(hs) == 1:
        return hs[0]
    k = 1
    while k * 2 < len(hs):
        k *= 2
    return _h(b"\x01", _root(hs[:k]), _root(hs[k:]))


def _proof(i, hs):
    if len(hs) == 1:
        return []
    k = 1
    while k * 2 < len(hs):
        k *= 2
    return _proof(i, hs[:k]) + [_root(hs[k:])] if i < k else _proof(i - k, hs[k:]) + [_root(hs[:k])]


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _log():
    cases = {c["name"]: c for c in json.loads(read("verify/entries.json"))["cases"]}
    leaves = [cases[n]["leaf"].encode() for n in NAMES]
    skey = read("keys/log.key").decode().strip().split("+")
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(skey[4])[1:])
    hs = [_h(b"\x00", l) for l in leaves]
    body = "example.com/govlog\n%d\n%s\n" % (len(leaves), _b64(_root(hs)))
    checkpoint = body + "\n\u2014 example.com/govlog " + _b64(bytes.fromhex(skey[3]) + key.sign(body.encode())) + "\n"
    receipts = []
    for i, l in enumerate(leaves):
        p = [_b64(x) for x in _proof(i, hs)]
        tlog = "c2sp.org/tlog-proof@v1\nextra %s\nindex %d\n%s\n%s" % (_b64(l), i, "".join(x + "\n" for x in p), checkpoint)
        receipts.append({"id": IDS[i], "index": i, "leaf_hash": _b64(hs[i]), "entry": _b64(l), "checkpoint": checkpoint,
                         "inclusion_proof": p, "tlog_proof": tlog})
    return leaves, checkpoint, receipts


@pytest.fixture
def evidence_server():
    leaves, checkpoint, rs = _log()

    def answer(method, path, body):
        def js(status, v):
            return status, {"Content-Type": "application/json"}, json.dumps(v).encode()

        if (method, path) == ("POST", "/v1/executions"):
            return js(409, {"error": {"code": "uses_exhausted", "message": "the authorization permits 3 executions"}, "receipt": rs[1]})
        if (method, path) == ("POST", "/v1/revocations"):
            return js(201, rs[2])
        if (method, path) == ("POST", "/v1/decisions/batch"):
            return js(200, {"results": [rs[0], {"error": {"code": "invalid_decision", "message": "subject: is required"}}]})
        if (method, path) == ("GET", "/v1/authorizations/d-1"):
            return js(200, {"decision_id": "d-1", "status": "revoked", "authorized_until": "2026-11-25T18:05:00Z", "max_executions": 3,
                            "uses": 0, "checkpoint": checkpoint, "receipts": rs[:3]})
        if (method, path) == ("GET", "/v1/authorizations/d-2"):
            return js(200, {"decision_id": "d-2", "status": "revoked", "checkpoint": checkpoint, "receipts": rs[:1]})
        if (method, path) == ("GET", "/v1/keys"):
            return js(200, {"keys": [{"kid": "test-artifact-1", "jwk": {}, "index": 3, "receipt": rs[3]}]})
        return js(404, {"error": {"code": "not_found", "message": "no"}})

    s = Server(answer)
    try:
        yield s, leaves
    finally:
        s.close()


def test_evidence_calls(evidence_server):
    s, leaves = evidence_server
    c = Client(s.url, log_key=LOG_KEY)
    report = dict(json.loads(leaves[1])["execution"], artifact="eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJkLTEifQ.c2ln")
    with pytest.raises(ViolationError) as e:
        c.claim(report)
    assert (e.value.status, e.value.code, e.value.receipt["index"]) == (409, "uses_exhausted", 1)
    assert e.value.verified.entry.violation == "uses_exhausted"
    # The receipt must hold the submitted report: another one is a lie.
    with pytest.raises(VerificationError) as e:
        c.claim(dict(report, id="e-9"))
    assert e.value.code == "mismatch" and not isinstance(e.value, ViolationError)

    r = c.revoke(json.loads(leaves[2])["revocation"])
    assert r.verified.entry.kind == "revocation" and r.verified.entry.revocation.decision_id == "d-1"

    batch = c.submit_decisions([json.loads(leaves[0])["decision"], {"id": "d-2"}])
    assert batch[0].verified.entry.decision.max_executions == 3
    assert batch[1] == {"code": "invalid_decision", "message": "subject: is required"}

    st = c.authorization("d-1")
    assert st["status"] == "revoked" and [v.entry.kind for v in st["verified"]] == ["decision", "execution", "revocation"]
    with pytest.raises(VerificationError):
        c.authorization("d-2")

    keys = c.keys()
    with pytest.raises(VerificationError):
        verify_with_keys("a.b.c", keys, LOG_KEY)
