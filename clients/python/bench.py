"""Verification time of one receipt in CPython: python3 bench.py. Each iteration verifies a
receipt completely: the checkpoint's Ed25519 signature, the inclusion proof and the entry."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "src"))

from govlog import JWKS, parse_note_key, verify_artifact, verify_bundle, verify_key_bound, verify_receipt, verify_receipt_json  # noqa: E402

TESTDATA = os.environ.get("GOVLOG_TESTDATA") or os.path.join(os.path.dirname(__file__), "..", "..", "testdata")


def read(path: str) -> str:
    with open(os.path.join(TESTDATA, path), encoding="utf-8") as f:
        return f.read()


def bench(name: str, f) -> None:
    for _ in range(200):
        f()
    runs = []
    for _ in range(5):
        n = 1000
        t = time.perf_counter()
        for _ in range(n):
            f()
        runs.append((time.perf_counter() - t) / n * 1e6)
    runs.sort()
    print("%-52s median %5.0f µs  (best %.0f, worst %.0f)" % (name, runs[2], runs[0], runs[4]))


def main() -> None:
    key = parse_note_key(read("keys/log.vkey"))
    small = read("receipts/allow.tlog-proof").encode()
    small_json = read("receipts/allow.json").encode()
    big = next(c for c in json.loads(read("verify/receipts.json"))["cases"] if c["name"] == "entry 777 of 1000")["receipt"].encode()
    art = next(c for c in json.loads(read("verify/artifacts.json"))["cases"] if c["name"] == "allow")
    jwks = JWKS.parse(art["jwks"])
    bound = verify_receipt(art["receipt"], key)
    print("%s %s" % (platform.python_implementation(), platform.python_version()))
    bench("tlog-proof, 8-entry log (3 proof hashes)", lambda: verify_receipt(small, key))
    bench("tlog-proof, 1000-entry log (10 proof hashes)", lambda: verify_receipt(big, key))
    bench("JSON receipt, 8-entry log", lambda: verify_receipt_json(small_json, key))
    bench("artifact, bound to its verified receipt", lambda: verify_artifact(art["token"], jwks, receipt=bound, audience=art["audience"], now=art["now"]))
    kb = next(c for c in json.loads(read("verify/key-artifacts.json"))["cases"] if c["name"] == "good")
    bench("artifact, with only the log key (key receipt + JWT)", lambda: verify_key_bound(
        kb["token"], kb["key_receipt"], key, audience=kb["audience"], now=kb["now"], action="deploy"))
    bundle = next(c for c in json.loads(read("verify/bundles.json"))["cases"] if c["name"] == "good")["bundle"]
    bench("evidence bundle of 5 entries and 1 key", lambda: verify_bundle(bundle, key))


if __name__ == "__main__":
    main()
