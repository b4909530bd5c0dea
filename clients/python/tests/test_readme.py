"""The README's script that checks an artifact before calling a tool, run as written: with a log key
file, a GET /v1/keys answer and a fresh artifact signed with the test artifact key (whose key entry
the key-artifacts vectors log at index 0)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = os.path.dirname(__file__)
TESTDATA = os.environ.get("GOVLOG_TESTDATA") or os.path.join(HERE, "..", "..", "..", "testdata")


def _script() -> str:
    readme = open(os.path.join(HERE, "..", "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Check an artifact before calling a tool"):]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "the README has the script"
    assert len(m.group(1).rstrip().splitlines()) <= 15, "the script is at most 15 lines"
    return m.group(1)


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _fresh_artifact() -> str:
    """The "good" vector's artifact (deploy, by agent-7), reissued now for svc/payments."""
    cases = json.load(open(os.path.join(TESTDATA, "verify", "key-artifacts.json")))["cases"]
    header, payload, _ = next(c for c in cases if c["name"] == "good")["token"].split(".")
    now = int(time.time())
    claims = base64.urlsafe_b64decode(payload + "==").decode()
    claims = re.sub(r'"exp":\d+', '"exp":%d' % (now + 300), claims)
    claims = re.sub(r'"iat":\d+', '"iat":%d' % now, claims)
    claims = re.sub(r'"nbf":\d+', '"nbf":%d,"resource":"svc/payments"' % now, claims)
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"govlog test key: artifact-1").digest())
    signing_input = header + "." + _b64url(claims.encode())
    return signing_input + "." + _b64url(key.sign(signing_input.encode()))


def test_readme_artifact_check(tmp_path):
    cases = json.load(open(os.path.join(TESTDATA, "verify", "key-artifacts.json")))["cases"]
    receipt = json.loads(next(c for c in cases if c["name"] == "a JSON key receipt")["key_receipt"])
    (tmp_path / "keys.json").write_text(json.dumps({"keys": [{"kid": "test-artifact-1", "jwk": {}, "index": 0, "receipt": receipt}]}))
    (tmp_path / "log.vkey").write_bytes(open(os.path.join(TESTDATA, "keys", "log.vkey"), "rb").read())
    script = tmp_path / "check.py"
    script.write_text("def call_tool(*a):\n    print('called', *a)\n\n" + _script())
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "..", "src"))
    token = _fresh_artifact()
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=dict(env, GOVLOG_ARTIFACT=token),
                         capture_output=True, text=True)
    assert (out.returncode, out.stdout.strip()) == (0, "called deploy svc/payments"), out.stderr
    # A signature changed (its first character, which carries six bits of the
    # signature and never padding): the script raises before the tool is called.
    dot = token.rindex(".") + 1
    bad = token[:dot] + ("B" if token[dot] == "A" else "A") + token[dot + 1:]
    assert bad != token
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=dict(env, GOVLOG_ARTIFACT=bad),
                         capture_output=True, text=True)
    assert out.returncode != 0 and out.stdout == "" and "VerificationError" in out.stderr, out
