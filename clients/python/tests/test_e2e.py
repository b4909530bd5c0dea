"""End to end: the client, the verifiers and python -m govlog against a real govlogd (the binary of
GOVLOGD, or the repository's bin/govlogd from make build)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import re
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest

from govlog import (APIError, Client, VerificationError, ViolationError, parse_note_key, verify_artifact, verify_receipt,
                    verify_bundle, verify_receipt_json, verify_with_keys)
from govlog.cli import run

BINARY = os.environ.get("GOVLOGD") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "bin", "govlogd")
AUDIENCE = "runtime.e2e.test"

# CI must run these tests, not skip them; locally, build the binary with make build.
pytestmark = pytest.mark.skipif(not os.path.exists(BINARY) and os.environ.get("CI") != "true", reason="no govlogd at %s (make build)" % BINARY)


@pytest.fixture(scope="module")
def log():
    tmp = tempfile.mkdtemp(prefix="govlog-py-e2e-")
    data = os.path.join(tmp, "log")
    # A port the kernel chooses, read from govlogd's "serving" line: a port
    # found free and given up before govlogd takes it could be taken by
    # another process in between.
    log_file = open(os.path.join(tmp, "govlogd.log"), "wb")
    p = subprocess.Popen(
        [BINARY, "--listen", "127.0.0.1:0", "--data", data, "--origin", "e2e.govlog.test/py",
         "--artifact-audience", AUDIENCE],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    url = None
    deadline = time.time() + 60
    try:
        while True:
            with open(log_file.name, "rb") as f:
                output = f.read().decode(errors="replace")
            if p.poll() is not None:
                raise RuntimeError("govlogd exited:\n%s" % output)
            m = re.search(r'msg="govlogd serving" addr=(\S+)', output)
            if m:
                url = "http://" + m.group(1)
                try:
                    if urllib.request.urlopen(url + "/readyz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
            if time.time() > deadline:
                raise RuntimeError("govlogd not ready after 60s:\n%s" % output)
            time.sleep(0.05)
        with open(os.path.join(data, "log.vkey")) as f:
            vkey = f.read().strip()
        yield url, vkey, data
    finally:
        p.kill()
        p.wait()
        log_file.close()
        shutil.rmtree(tmp, ignore_errors=True)


def decision(id_, outcome):
    return {
        "id": id_, "outcome": outcome, "decided_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "subject": "agent-7", "action": "deploy", "resource": "svc/payments", "policy": {"id": "prod-deploy", "version": "7"},
        "context": {"ticket": "OPS-1", "replicas": 3, "ratio": 0.25},
    }


def mangled(data: bytes):
    for i in range(len(data)):
        b = bytearray(data)
        b[i] ^= 1
        yield i, bytes(b)


def test_live_allow(log):
    url, vkey, data = log
    key = parse_note_key(vkey)
    c = Client(url, log_key=key, audience=AUDIENCE)
    d = decision("py-allow-1", "allow")
    got = c.submit_decision(d)
    assert got.created and got.verified.entry.decision.outcome == "allow"
    artifact = got.receipt["artifact"]
    v = verify_receipt(got.receipt["tlog_proof"], key)
    assert v.entry.id == "py-allow-1"
    verify_receipt_json(got.body, key)
    claims = c.verify_artifact(artifact, "deploy", "svc/payments", "agent-7", receipt=got.receipt["tlog_proof"])
    assert claims.jti == "py-allow-1"
    with pytest.raises(VerificationError) as e:
        c.verify_artifact(artifact, "delete", "svc/payments")
    assert e.value.code == "not_authorized"

    # Every byte matters.
    for i, m in mangled(got.receipt["tlog_proof"].encode()):
        with pytest.raises(VerificationError):
            verify_receipt(m, key)
    jwks = c.jwks()
    for i, m in mangled(artifact.encode()):
        with pytest.raises(VerificationError):
            verify_artifact(m.decode("utf-8", "replace"), jwks, receipt=v, audience=AUDIENCE)

    # A resubmission gets the original receipt; the same id with other content is refused.
    again = c.submit_decision(d)
    assert not again.created and again.body == got.body
    with pytest.raises(Exception) as e:
        c.submit_decision(dict(d, action="delete"))
    assert getattr(e.value, "code", "") == "id_conflict"

    # python -m govlog, on the live evidence.
    with tempfile.TemporaryDirectory() as tmp:
        proof = os.path.join(tmp, "allow.tlog-proof")
        with open(proof, "w") as f:
            f.write(got.receipt["tlog_proof"])
        receipt = os.path.join(tmp, "allow.receipt.json")
        with open(receipt, "wb") as f:
            f.write(got.body)
        out, err = io.StringIO(), io.StringIO()
        assert run(["verify", "--log-key", os.path.join(data, "log.vkey"), proof], stdout=out, stderr=err) == 0, err.getvalue()
        assert "id: py-allow-1\n" in out.getvalue() and "outcome: allow\n" in out.getvalue()
        jwks_file = os.path.join(tmp, "jwks.json")
        with open(jwks_file, "wb") as f:
            f.write(urllib.request.urlopen(url + "/.well-known/jwks.json").read())
        args = ["verify-artifact", "--log-key", vkey, "--jwks", jwks_file, "--audience", AUDIENCE, "--receipt", receipt,
                "--action", "deploy", "--resource", "svc/payments", "--subject", "agent-7", artifact]
        assert run(args, stdout=io.StringIO(), stderr=err) == 0, err.getvalue()
        assert run(args[:-5] + ["--action", "delete", artifact], stdout=io.StringIO(), stderr=io.StringIO()) == 1
        assert run(["verify-artifact", "--log-key", vkey, "--url", url, "--audience", AUDIENCE, artifact], stdout=io.StringIO(), stderr=err) == 0, err.getvalue()


def test_live_deny_and_lookups(log):
    url, vkey, _ = log
    c = Client(url, log_key=parse_note_key(vkey), audience=AUDIENCE)
    deny = c.submit_decision(decision("py-deny-1", "deny"))
    assert "artifact" not in deny.receipt and deny.verified.entry.decision.outcome == "deny"
    allow = c.submit_decision(decision("py-allow-2", "allow"))
    fetched = c.get_decision("py-allow-2")
    assert fetched.verified.entry.id == "py-allow-2" and "artifact" not in fetched.receipt
    assert fetched.verified.checkpoint.size >= allow.verified.checkpoint.size
    assert c.checkpoint().size >= 3
    with pytest.raises(Exception) as e:
        c.get_decision("no-such-decision")
    assert getattr(e.value, "status", 0) == 404
    json.dumps(fetched.receipt)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def test_live_execution_evidence(log):
    """The artifact checked with only the log key, a claim, a violation with its receipt, the
    status, a revocation."""
    url, vkey, _ = log
    c = Client(url, log_key=parse_note_key(vkey), audience=AUDIENCE)
    try:
        keys = c.keys()
    except APIError as e:
        if e.status == 404:
            pytest.skip("this govlogd serves no GET /v1/keys (no execution evidence yet)")
        raise
    allow = c.submit_decision(decision("py-allow-3", "allow"))
    token = allow.receipt["artifact"]
    claims, _ = verify_with_keys(token, keys, parse_note_key(vkey), audience=AUDIENCE, action="deploy", resource="svc/payments", subject="agent-7")
    assert claims.jti == "py-allow-3"
    # The same from a shell: python -m govlog verify-artifact --url, keys from GET /v1/keys.
    out, err = io.StringIO(), io.StringIO()
    code = run(["verify-artifact", "--log-key", vkey, "--url", url, "--audience", AUDIENCE, "--action", "deploy",
                "--resource", "svc/payments", token], stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == 0 and "key: " in out.getvalue(), err.getvalue()
    code = run(["verify-artifact", "--log-key", vkey, "--url", url, "--audience", AUDIENCE, "--action", "delete", token],
               stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 1
    claim = c.claim({"id": "py-exec-1", "decision_id": "py-allow-3", "status": "started", "at": _now(), "runtime": "py-e2e", "artifact": token})
    assert claim.created and claim.verified.entry.violation == "" and claim.verified.entry.artifact_digest.startswith("sha256:")
    # One execution is authorized: a second claim is recorded as a violation, with its receipt.
    with pytest.raises(ViolationError) as e:
        c.claim({"id": "py-exec-2", "decision_id": "py-allow-3", "status": "started", "at": _now(), "artifact": token})
    assert e.value.code == "uses_exhausted" and e.value.verified.entry.id == "py-exec-2"
    st = c.authorization("py-allow-3")
    assert st["status"] == "exhausted" and [v.entry.id for v in st["verified"]] == ["py-allow-3", "py-exec-1"]  # the decision, its accepted claim
    allow4 = c.submit_decision(decision("py-allow-4", "allow"))
    rev = c.revoke({"id": "py-rev-1", "decision_id": "py-allow-4", "revoked_at": _now()})
    assert rev.verified.entry.kind == "revocation"
    with pytest.raises(ViolationError) as e:
        c.claim({"id": "py-exec-3", "decision_id": "py-allow-4", "status": "started", "at": _now(), "artifact": allow4.receipt["artifact"]})
    assert e.value.code == "revoked"
    # An evidence bundle of all that (GET /v1/export) verifies; a flipped byte of any proof hash does not.
    try:
        bundle = urllib.request.urlopen(url + "/v1/export?decision_id=py-allow-3").read()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return
        raise
    b = verify_bundle(bundle, parse_note_key(vkey))
    assert [x.entry.id for x in b.entries] == ["py-exec-1", "py-exec-2"] and b.keys
    h = re.search(rb'"inclusion_proof":\["([^"]+)"', bundle).group(1)
    flipped = h[:5] + (b"B" if h[5:6] == b"A" else b"A") + h[6:]
    with pytest.raises(VerificationError):
        verify_bundle(bundle.replace(h, flipped), parse_note_key(vkey))
