"""python -m govlog: what it prints, and its exit status (0 verified, 1 not, 2 usage)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from datetime import datetime, timezone

from govlog.cli import run

TESTDATA = os.environ.get("GOVLOG_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "testdata")
KEY = os.path.join(TESTDATA, "keys", "log.vkey")
OTHER = os.path.join(TESTDATA, "keys", "other.vkey")


def r(path):
    return os.path.join(TESTDATA, "receipts", path)


def govlog(*args, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_verify_one():
    code, out, err = govlog("verify", "--log-key", KEY, r("allow-full.tlog-proof"))
    assert code == 0, err
    assert out.splitlines()[0] == "OK: entry 2 is in the log example.com/govlog (checkpoint of size 8)"
    for line in ("id: d-3", "outcome: allow", "subject: spiffe://example.org/agent-7", "parent_id: d-1",
                 "decided_at: 2026-11-25T19:00:00+01:00", "authorized_until: 2026-11-25T18:05:01Z",
                 "logged_at: 2026-11-25T18:00:01.000000000Z", "submitter: spiffe://example.org/control-plane"):
        assert line in out.splitlines(), (line, out)
    code, out, _ = govlog("verify", "--log-key", open(KEY).read().strip(), r("execution.json"))
    assert code == 0 and "kind: execution" in out and "status: started" in out


def test_verify_fails():
    code, out, err = govlog("verify", "--log-key", OTHER, r("allow.tlog-proof"))
    assert (code, out) == (1, "") and "does NOT verify" in err and "not signed" in err
    code, _, err = govlog("verify", "--log-key", KEY, "no-such.tlog-proof")
    assert code == 1 and "failed to read the input" in err


@pytest.mark.parametrize("args,want", [
    (["verify", r("allow.tlog-proof")], "log-key"),
    (["verify", "--log-key", KEY], "0 arguments"),
    (["verify", "--log-key", "no-such-file", r("allow.tlog-proof")], "neither a note verifier key nor a file"),
    (["verify", "--log-key", KEY, "--witness-policy", "no-such-policy", r("allow.tlog-proof")], "witness-policy"),
    (["verify-artifact", "--log-key", KEY, "x.y.z"], "jwks"),
    (["frobnicate"], "usage"),
])
def test_usage_errors(args, want):
    code, _, err = govlog(*args)
    assert code == 2 and want in err, err


def test_verify_many(tmp_path):
    d = tmp_path / "receipts"
    shutil.copytree(os.path.join(TESTDATA, "receipts"), d)
    (d / "bad.tlog-proof").write_text(open(r("deny.tlog-proof")).read().replace("index 1", "index 2"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps([json.loads(open(r("allow.json")).read()), open(r("deny.tlog-proof")).read(), 7]))
    code, out, err = govlog("verify", "--log-key", KEY, str(d), str(bundle))
    lines = out.splitlines()
    assert code == 1 and "do NOT verify" in err
    assert lines[-1] == "20 receipts: 18 verified, 2 failed"
    assert "OK   %s[0]: entry 0, decision d-1 (allow), checkpoint of size 8" % bundle in lines
    assert any(l.startswith("FAIL %s/bad.tlog-proof: " % d) for l in lines)
    assert any(l.startswith("FAIL %s[2]: " % bundle) for l in lines)
    code, out, _ = govlog("verify", "--log-key", KEY, "--json", r("deny.json"), r("execution.tlog-proof"))
    rep = json.loads(out)
    assert code == 0 and rep["ok"] and rep["verified"] == 2 and rep["receipts"][0]["outcome"] == "deny"
    assert rep["receipts"][1] == {"name": r("execution.tlog-proof"), "ok": True, "index": 3, "kind": "execution", "id": "e-1",
                                  "leaf_hash": rep["receipts"][1]["leaf_hash"], "checkpoint_size": 8, "root_hash": rep["receipts"][1]["root_hash"]}


def test_verify_stdin_and_policy(tmp_path):
    code, out, _ = govlog("verify", "--log-key", KEY, "-", stdin=open(r("deny.tlog-proof")).read())
    assert code == 0 and "id: d-2" in out
    policy = tmp_path / "policy"
    policy.write_text("quorum none\n")
    code, out, _ = govlog("verify", "--log-key", KEY, "--witness-policy", str(policy), r("deny.tlog-proof"))
    assert code == 0 and "witness_policy: satisfied ()" in out
    cases = json.load(open(os.path.join(TESTDATA, "verify", "policies.json")))["cases"]
    two = next(c for c in cases if c["name"] == "2 of 4, cosigned by 2")
    policy.write_text(two["policy"])
    code, _, err = govlog("verify", "--log-key", KEY, "--witness-policy", str(policy), r("deny.tlog-proof"))
    assert code == 1 and "witness policy not satisfied" in err or "no valid cosignature" in err


def test_verify_artifact(tmp_path):
    cases = json.load(open(os.path.join(TESTDATA, "verify", "artifacts.json")))["cases"]
    c = next(c for c in cases if c["name"] == "allow-full")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(c["jwks"])
    receipt = tmp_path / "r.tlog-proof"
    receipt.write_text(c["receipt"])
    a = c["authorize"]
    base = ["verify-artifact", "--log-key", KEY, "--jwks", str(jwks), "--audience", c["audience"], "--receipt", str(receipt),
            "--at", "2026-11-25T18:00:10Z", "--action", a["action"], "--resource", a["resource"], "--subject", a["subject"]]
    code, out, err = govlog(*base, c["token"])
    assert code == 0 and out.startswith("OK: artifact of decision d-3"), err
    assert govlog(*base[:-2], "--subject", "agent-8", c["token"])[0] == 1
    assert govlog(*base[:9], "--at", "2026-11-25T19:00:00Z", c["token"])[0] == 1  # expired
    assert govlog(*base, c["token"][:-2] + "AA")[0] == 1
    assert govlog(*base[:9], "--at", "yesterday", c["token"])[0] == 2


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "..", "src"))
    p = subprocess.run([sys.executable, "-m", "govlog", "verify", "--log-key", KEY, r("deny.tlog-proof")], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "outcome: deny" in p.stdout, p.stderr
    p = subprocess.run([sys.executable, "-m", "govlog", "verify", r("deny.tlog-proof")], capture_output=True, text=True, env=env)
    assert p.returncode == 2


def _key_case(name):
    for c in json.load(open(os.path.join(TESTDATA, "verify", "key-artifacts.json")))["cases"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def test_verify_artifact_key_bound(tmp_path):
    c = _key_case("good")
    at = datetime.fromtimestamp(c["now"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "key.tlog-proof").write_text(c["key_receipt"])
    (tmp_path / "artifact.jwt").write_text(c["token"])
    a = c["authorize"]
    base = ["verify-artifact", "--log-key", KEY, "--audience", c["audience"], "--at", at]
    code, out, err = govlog(*base, "--key-receipt", str(tmp_path / "key.tlog-proof"), "--action", a["action"],
                            "--subject", a["subject"], str(tmp_path / "artifact.jwt"))
    assert code == 0, err
    assert out.startswith("OK: artifact of decision d-1") and "key: test-artifact-1, logged at index 0" in out, out
    # A GET /v1/keys answer holding the JSON receipt of the key.
    j = json.loads(_key_case("a JSON key receipt")["key_receipt"])
    keys = {"keys": [{"kid": "test-artifact-1", "jwk": {}, "index": 0, "receipt": j}]}
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    code, out, err = govlog(*base, "--keys", str(tmp_path / "keys.json"), c["token"])
    assert code == 0, err
    # Not verified: exit 1.
    code, out, err = govlog(*base, "--keys", str(tmp_path / "keys.json"), "--action", "delete", c["token"])
    assert (code, out) == (1, "") and "does NOT verify" in err
    bad = _key_case("wrong key index")
    code, out, err = govlog(*base, "--key-receipt", str(tmp_path / "key.tlog-proof"), bad["token"])
    assert (code, out) == (1, "") and "key_index" in err, err
    code, out, err = govlog(*base, "--keys", str(tmp_path / "keys.json"), bad["token"])
    assert code == 1 and "no key at index 1" in err, err
    # Usage: exit 2.
    code, _, err = govlog(*base, "--key-receipt", "no-such-file", c["token"])
    assert code == 2, err
    code, _, err = govlog(*base, "--keys", str(tmp_path / "keys.json"), "--witness-policy", "no-such-policy", c["token"])
    assert code == 2 and "witness-policy" in err, err


def test_verify_evidence_bundle(tmp_path):
    cases = {c["name"]: c for c in json.load(open(os.path.join(TESTDATA, "verify", "bundles.json")))["cases"]}
    (tmp_path / "good.json").write_text(cases["good"]["bundle"])
    code, out, err = govlog("verify", "--log-key", KEY, str(tmp_path / "good.json"))
    assert code == 0, err
    assert out.splitlines()[0].startswith("OK: evidence bundle") and "5 entries of the log example.com/govlog" in out
    assert "artifact keys: test-artifact-1 (each with a verified receipt)" in out and "key: 1" in out, out
    code, out, err = govlog("verify", "--log-key", KEY, "--json", str(tmp_path / "good.json"))
    assert code == 0 and json.loads(out)["entries"] == 5
    (tmp_path / "bad.json").write_text(cases["proof: a hash changed"]["bundle"])
    code, out, err = govlog("verify", "--log-key", KEY, str(tmp_path / "bad.json"))
    assert (code, out) == (1, "") and "does NOT verify" in err
    code, out, err = govlog("verify", "--log-key", OTHER, str(tmp_path / "good.json"))
    assert code == 1 and "does NOT verify" in err
