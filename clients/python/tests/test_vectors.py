"""The verification vectors of testdata/verify, which the Go and TypeScript verifiers run too:
every case must get its verdict. And the schema vectors of testdata/decisions, executions, entries."""

from __future__ import annotations

import base64
import json
import os

import pytest

from govlog import (
    JWKS,
    FieldError,
    VerificationError,
    authorize,
    canonical_json,
    leaf_hash,
    parse_cosignature_key,
    parse_decision,
    parse_entry,
    parse_execution,
    parse_note_key,
    parse_policy,
    parse_rfc3339,
    verify_artifact,
    verify_bundle,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_key_bound,
    verify_receipt,
    verify_receipt_json,
    verify_signed_consistency,
)
from govlog._bytes import b64encode

TESTDATA = os.environ.get("GOVLOG_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "testdata")


def read(path: str) -> str:
    with open(os.path.join(TESTDATA, path), encoding="utf-8") as f:
        return f.read()


def _bytes(c: dict, field: str):
    if field in c:
        return c[field].encode("utf-8")
    if field + "_base64" in c:
        return base64.b64decode(c[field + "_base64"])
    return None


PRIMARY = {
    "checkpoints": "checkpoint",
    "policies": "checkpoint",
    "receipts": "receipt",
    "artifacts": "token",
    "key-artifacts": "token",
    "entries": "leaf",
    "jcs": "input",
}


def expand(family: str, c: dict):
    """The case, and one failing case per mangling of its primary input."""
    field = PRIMARY.get(family)
    data = _bytes(c, field) if field else None
    if family in ("artifacts", "key-artifacts") and data is None:
        data = b""  # an empty token is left out of the file
    yield c["name"], c["want"], data, c
    m = c.get("mangle")
    if not m or data is None:
        return
    other = m.get("field")
    if other is not None and (other != "key_receipt" or "key_receipt" not in c):
        raise AssertionError("%s: mangle of unknown field %r" % (c["name"], other))
    target = data if other is None else c["key_receipt"].encode("utf-8")

    def sub(name, b):
        if other is None:
            return name, "fail", b, c
        return name, "fail", data, dict(c, key_receipt=b)  # bytes: a mangled receipt need not be UTF-8

    for i in range(len(target)):
        for x in m["xor"]:
            b = bytearray(target)
            b[i] ^= x
            yield sub("%s: byte %d xor 0x%02x" % (c["name"], i, x), bytes(b))
        if m.get("delete"):
            yield sub("%s: byte %d deleted" % (c["name"], i), target[:i] + target[i + 1 :])


def expect_equal(what, got, want):
    if want is not None and got != want:
        raise AssertionError("%s is %r, want %r" % (what, got, want))


def run_checkpoints(c, data):
    cp = verify_checkpoint(data, parse_note_key(c["log_key"]))
    e = c.get("expect") or {}
    expect_equal("origin", cp.origin, e.get("origin"))
    expect_equal("size", cp.size, e.get("size"))
    expect_equal("root hash", b64encode(cp.root_hash), e.get("root_hash"))


def run_policies(c, data):
    p = parse_policy(c["policy"])
    if data is None:
        return
    verify_checkpoint(data, parse_note_key(c["log_key"]))
    p.check(data)


def run_proofs(c, _):
    proof = [base64.b64decode(h) for h in c.get("proof", [])]
    if c["type"] == "inclusion":
        verify_inclusion(c["index"], c["size"], base64.b64decode(c["leaf_hash"]), proof, base64.b64decode(c["root"]))
    else:
        verify_consistency(c["size1"], c["size2"], proof, base64.b64decode(c["root1"]), base64.b64decode(c["root2"]))


def run_consistency(c, _):
    verify_signed_consistency(c["old"], c["new"], [base64.b64decode(h) for h in c.get("proof", [])], parse_note_key(c["log_key"]))


def run_receipts(c, data):
    key = parse_note_key(c["log_key"])
    v = verify_receipt_json(data, key) if c["format"] == "json" else verify_receipt(data, key)
    e = c.get("expect") or {}
    expect_equal("index", v.index, e.get("index"))
    expect_equal("kind", v.entry.kind, e.get("kind"))
    expect_equal("id", v.entry.id, e.get("id"))
    expect_equal("leaf hash", b64encode(v.leaf_hash), e.get("leaf_hash"))
    expect_equal("size", v.checkpoint.size, e.get("size"))
    expect_equal("root hash", b64encode(v.checkpoint.root_hash), e.get("root_hash"))


def run_artifacts(c, data):
    key = parse_note_key(c["log_key"])
    receipt = verify_receipt(c["receipt"], key) if "receipt" in c else None
    token = data.decode("utf-8", "replace")
    claims = verify_artifact(token, JWKS.parse(c["jwks"]), origin=key.name, audience=c.get("audience", ""), now=c["now"], receipt=receipt)
    if "authorize" in c:
        a = c["authorize"]
        authorize(claims, a["action"], a["resource"], a.get("subject", ""))
    want = (c.get("expect") or {}).get("claims")
    if want is not None:
        payload = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
        expect_equal("claims", payload, want)


def run_key_artifacts(c, data):
    key = parse_note_key(c["log_key"])
    token = data.decode("utf-8", "replace")
    a = c.get("authorize") or {}
    policy = parse_policy(c["policy"]) if "policy" in c else None
    verify_key_bound(token, c.get("key_receipt", ""), key, audience=c.get("audience", ""), now=c["now"], policy=policy,
                     action=a.get("action"), resource=a.get("resource", ""), subject=a.get("subject", ""))
    want = (c.get("expect") or {}).get("claims")
    if want is not None:
        payload = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
        expect_equal("claims", payload, want)


def run_bundles(c, _):
    policy = parse_policy(c["policy"]) if "policy" in c else None
    b = verify_bundle(c["bundle"], parse_note_key(c["log_key"]), policy)
    e = c.get("expect") or {}
    expect_equal("size", b.checkpoint.size, e.get("size"))
    expect_equal("entries", len(b.entries), e.get("entries"))


def run_entries(c, data):
    e = parse_entry(data)
    f = (c.get("expect") or {}).get("fields")
    if not f:
        return
    got = {"kind": e.kind, "id": e.id, "submitter": e.submitter, "logged_at": e.logged_at}
    if e.authorized_until:
        got["authorized_until"] = e.authorized_until
    d = e.decision
    if d:
        got.update(outcome=d.outcome, subject=d.subject, action=d.action, policy_id=d.policy_id, decided_at=d.decided_at)
        if d.resource:
            got["resource"] = d.resource
        if d.parent_id:
            got["parent_id"] = d.parent_id
        if d.executor:
            got["executor"] = d.executor
    x = e.execution
    if x:
        got.update(decision_id=x.decision_id, status=x.status, at=x.at)
        if x.claim_id:
            got["claim_id"] = x.claim_id
    if e.artifact_digest:
        got["artifact_digest"] = e.artifact_digest
    if e.violation:
        got["violation"] = e.violation
    r = e.revocation
    if r:
        got.update(decision_id=r.decision_id, revoked_at=r.revoked_at)
    expect_equal("fields", got, f)


def run_jcs(c, data):
    expect_equal("canonical form", canonical_json(data), c.get("canonical"))


RUN = {
    "checkpoints": run_checkpoints,
    "policies": run_policies,
    "proofs": run_proofs,
    "consistency": run_consistency,
    "receipts": run_receipts,
    "artifacts": run_artifacts,
    "key-artifacts": run_key_artifacts,
    "bundles": run_bundles,
    "entries": run_entries,
    "jcs": run_jcs,
}


#: With GOVLOG_VERDICTS set to a file name, every case's verdict is written there, one
#: "family<TAB>case<TAB>ok|fail" line each, as the Go and TypeScript vector tests do: make
#: test-compare checks that the three are the same.
verdicts = []


@pytest.fixture(scope="module", autouse=True)
def _write_verdicts():
    yield
    path = os.environ.get("GOVLOG_VERDICTS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(verdicts))


@pytest.mark.parametrize("family", list(RUN))
def test_verify_vectors(family):
    cases = json.loads(read("verify/%s.json" % family))["cases"]
    wrong = []
    n = 0
    for c in cases:
        for name, want, data, case in expand(family, c):
            n += 1
            try:
                RUN[family](case, data)
                err = None
            except VerificationError as e:
                err = e
            except Exception as e:  # noqa: BLE001: a crash is a wrong answer, whatever the want
                wrong.append("%s: crashed: %r" % (name, e))
                verdicts.append("%s\t%s\tcrash\n" % (family, name))
                continue
            verdicts.append("%s\t%s\t%s\n" % (family, name, "ok" if err is None else "fail"))
            if want == "ok" and err is not None:
                wrong.append("%s: want ok, got %s" % (name, err))
            if want == "fail" and err is None:
                wrong.append("%s: want fail, verified" % name)
    assert n > 0
    assert wrong == [], "%d of %d cases disagree:\n%s" % (len(wrong), n, "\n".join(wrong[:50]))


NOW = parse_rfc3339("2026-11-25T18:00:00Z")


@pytest.mark.parametrize("kind,parse", [("decisions", parse_decision), ("executions", parse_execution)])
def test_schema_vectors(kind, parse):
    for v in json.loads(read("%s/invalid.json" % kind)):
        body = v["body"].encode("utf-8") if "body" in v else base64.b64decode(v["body_base64"])
        with pytest.raises(VerificationError) as e:
            parse(body, NOW)
        if v.get("want_field"):
            assert isinstance(e.value, FieldError) and e.value.field == v["want_field"], (v["name"], e.value)
    names = sorted(n[: -len(".json")] for n in os.listdir(os.path.join(TESTDATA, kind, "valid")) if n.endswith(".json"))
    assert names
    for name in names:
        assert parse(read("%s/valid/%s.json" % (kind, name)), NOW).canonical == read("%s/valid/%s.canonical" % (kind, name)), name


def test_entry_vectors():
    for v in json.loads(read("entries/valid.json")):
        assert parse_entry(v["leaf"]).kind == v["kind"], v["name"]
        assert leaf_hash(v["leaf"].encode()).hex() == v["leaf_hash"], v["name"]
    for v in json.loads(read("entries/invalid.json")):
        with pytest.raises(VerificationError):
            parse_entry(v["leaf"])


def test_keys():
    k = parse_note_key(read("keys/log.vkey"))
    assert k.name == "example.com/govlog"
    with pytest.raises(VerificationError):
        parse_cosignature_key(read("keys/log.vkey").strip())
