"""python -m govlog: the offline checks of the govlog CLI.

    python -m govlog verify --log-key VKEY [--witness-policy FILE] [--json] RECEIPT...|BUNDLE
    python -m govlog verify-artifact --log-key VKEY (--keys FILE | --key-receipt FILE | --jwks FILE | --url URL)
        [--witness-policy FILE] [--audience AUD] [--receipt RECEIPT] [--action A --resource R --subject S]
        [--at TIME] ARTIFACT

With --keys (a GET /v1/keys answer) or --key-receipt (the receipt of the signing key's key entry),
or --url when the artifact names its key entry (govlog.key_index), the artifact is checked with
nothing but the log key: the key's log receipt, then the JWT with that key.

Exit status, as govlog's: 0 when everything verifies, 1 when anything does not (or an input cannot
be read), 2 on a usage error (a missing or unreadable key, policy or key set included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, NamedTuple, Optional, Sequence, TextIO

from ._bytes import b64encode
from .artifact import JWKS, authorize, verify_artifact
from .errors import VerificationError
from .bundle import verify_bundle
from .keys import key_index_of, key_receipt_for, verify_key_bound
from .note import NoteVerifier, parse_note_key
from .policy import MAX_POLICY_BYTES, Policy
from .receipt import MAX_RECEIPT_BYTES, Verified, verify_any_receipt
from .timefmt import parse_rfc3339

_MAX_BUNDLE_BYTES = 1 << 30


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> "NoReturn":  # noqa: F821
        raise UsageError(message)


def _read(path: str, limit: int, stdin) -> bytes:
    if path == "-":
        data = stdin.buffer.read(limit + 1) if hasattr(stdin, "buffer") else stdin.read(limit + 1).encode()
    else:
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise OSError("failed to read the input: %s" % e) from None
    if len(data) > limit:
        raise OSError("%s is larger than %d bytes" % (path, limit))
    return data


def _log_key(arg: str) -> NoteVerifier:
    try:
        return parse_note_key(arg)
    except VerificationError:
        pass
    if not os.path.exists(arg):
        raise UsageError("--log-key: %r is neither a note verifier key nor a file" % arg)
    try:
        with open(arg, encoding="utf-8") as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError("--log-key: failed to read the key file: %s" % e) from None
    try:
        return parse_note_key(text)
    except VerificationError:
        raise UsageError("--log-key: %s does not hold a note verifier key" % arg) from None


def _print_verified(out: TextIO, v: Verified) -> None:
    e = v.entry
    out.write("OK: entry %d is in the log %s (checkpoint of size %d)\n" % (v.index, v.checkpoint.origin, v.checkpoint.size))

    def line(name: str, value) -> None:
        if value != "" and value is not None:
            out.write("%s: %s\n" % (name, value))

    line("index", v.index)
    line("kind", e.kind)
    line("id", e.id)
    if e.decision is not None:
        d = e.decision
        line("outcome", d.outcome)
        line("subject", d.subject)
        line("action", d.action)
        line("resource", d.resource)
        line("policy", d.policy_id)
        line("decided_at", d.decided_at)
        line("parent_id", d.parent_id)
    if e.execution is not None:
        x = e.execution
        line("decision_id", x.decision_id)
        line("status", x.status)
        line("at", x.at)
    line("submitter", e.submitter)
    line("logged_at", e.logged_at)
    line("authorized_until", e.authorized_until)
    line("leaf_hash", b64encode(v.leaf_hash))
    line("checkpoint", str(v.checkpoint))


class _Item(NamedTuple):
    name: str
    data: Optional[bytes]
    error: str


def _value_end(data: bytes, i: int) -> int:
    """The end of the JSON value starting at data[i] (strings, and brackets outside strings)."""
    if i >= len(data):
        raise ValueError("unexpected end")
    depth, in_string, j = 0, False, i
    while j < len(data):
        c = data[j : j + 1]
        if in_string:
            if c == b"\\":
                j += 1
            elif c == b'"':
                in_string = False
                if depth == 0:
                    return j + 1
        elif c == b'"':
            in_string = True
        elif c in (b"{", b"["):
            depth += 1
        elif c in (b"}", b"]"):
            if depth == 0:
                if j == i:
                    raise ValueError("unexpected %s at byte %d" % (c.decode(), j))
                return j
            depth -= 1
            if depth == 0:
                return j + 1
        elif depth == 0 and c in (b",", b" ", b"\t", b"\n", b"\r"):
            if j == i:
                raise ValueError("unexpected %r at byte %d" % (c, j))
            return j
        j += 1
    if depth or in_string:
        raise ValueError("unexpected end")
    return len(data)


def _bundle(name: str, data: bytes) -> List[_Item]:
    """A receipt bundle: a JSON array of JSON receipts (objects, verified from their own bytes)
    and tlog-proofs (strings), as govlog verify reads it."""

    def bad(why: str) -> List[_Item]:
        return [_Item(name, None, "malformed evidence: not a receipt bundle (a JSON array of receipts): %s" % why)]

    i = 0

    def ws() -> None:
        nonlocal i
        while i < len(data) and data[i : i + 1] in (b" ", b"\t", b"\n", b"\r"):
            i += 1

    ws()
    if data[i : i + 1] != b"[":
        return bad("it does not start with [")
    i += 1
    items: List[_Item] = []
    while True:
        ws()
        if data[i : i + 1] == b"]" and not items:
            i += 1
            break
        n = "%s[%d]" % (name, len(items))
        try:
            end = _value_end(data, i)
        except ValueError as e:
            return bad(str(e))
        c = data[i : i + 1]
        if c == b"{":
            items.append(_Item(n, data[i:end], ""))
        elif c == b'"':
            try:
                s = json.loads(data[i:end])
                items.append(_Item(n, s.encode("utf-8"), ""))
            except (ValueError, UnicodeEncodeError) as e:
                items.append(_Item(n, None, "malformed evidence: %s" % e))
        else:
            items.append(_Item(n, None, "malformed evidence: a bundle item must be a JSON receipt or a tlog-proof string"))
        i = end
        ws()
        if data[i : i + 1] == b",":
            i += 1
            continue
        if data[i : i + 1] == b"]":
            i += 1
            break
        return bad("expected , or ] at byte %d" % i)
    ws()
    if i != len(data):
        return bad("data after the array at byte %d" % i)
    return items


def _is_bundle(data: bytes) -> bool:
    return data.lstrip(b" \t\r\n").startswith(b"[")


def _collect(path: str, stdin) -> List[_Item]:
    if path != "-" and os.path.isdir(path):
        items = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                p = os.path.join(root, f)
                if f.endswith(".tlog-proof"):
                    try:
                        items.append(_Item(p, _read(p, MAX_RECEIPT_BYTES, stdin), ""))
                    except OSError as e:
                        items.append(_Item(p, None, str(e)))
                elif f.endswith(".json"):
                    try:
                        data = _read(p, _MAX_BUNDLE_BYTES, stdin)
                    except OSError as e:
                        items.append(_Item(p, None, str(e)))
                        continue
                    items.extend(_bundle(p, data) if _is_bundle(data) else [_Item(p, data, "")])
        return items
    data = _read(path, _MAX_BUNDLE_BYTES, stdin)
    return _bundle(path, data) if _is_bundle(data) else [_Item(path, data, "")]


def _is_evidence_bundle(path: str) -> bool:
    """Whether the file at path starts like an evidence bundle: a JSON object whose first member is
    "format" (as govlog verify tells them)."""
    if path == "-" or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b" \t\r\n")
    return head.startswith(b"{") and head[1:].lstrip(b" \t\r\n").startswith(b'"format"')


def _verify_evidence_bundle(path: str, key: NoteVerifier, policy: Optional[Policy], as_json: bool, stdin, stdout: TextIO) -> int:
    """Verify an evidence bundle (GET /v1/export) and print what it holds."""
    try:
        b = verify_bundle(_read(path, _MAX_BUNDLE_BYTES, stdin), key, policy)
    except VerificationError as e:
        if as_json:
            stdout.write(json.dumps({"verified": False, "file": path, "error": str(e)}, ensure_ascii=False) + "\n")
        raise VerificationError(e.code, "%s does NOT verify: %s" % (path, e)) from None
    kinds: dict = {}
    for e in b.entries:
        kinds[e.entry.kind] = kinds.get(e.entry.kind, 0) + 1
    root = b64encode(b.checkpoint.root_hash)
    if as_json:
        stdout.write(json.dumps({"verified": True, "file": path, "origin": b.origin, "tree_size": b.checkpoint.size, "root_hash": root,
                                 "entries": len(b.entries), "kinds": kinds, "query": b.query, "keys": [k.kid for k in b.keys],
                                 "witness_policy_checked": policy is not None}, ensure_ascii=False) + "\n")
        return 0
    stdout.write("OK: evidence bundle %s: %d entries of the log %s, each proven in its checkpoint of size %d (root %s)\n"
                 % (path, len(b.entries), b.origin, b.checkpoint.size, root))
    if policy is not None:
        stdout.write("witness_policy: satisfied (%s)\n" % ", ".join(sorted(w.key.name for w in policy.cosigners(b.checkpoint.note))))
    stdout.write("query: %s\n" % (" ".join("%s=%s" % (k, b.query[k]) for k in sorted(b.query)) or "(everything)"))
    if b.keys:
        stdout.write("artifact keys: %s (each with a verified receipt)\n" % ", ".join(k.kid for k in b.keys))
    for kind in sorted(kinds):
        stdout.write("%s: %d\n" % (kind, kinds[kind]))
    return 0


def verify(args: Sequence[str], stdin, stdout: TextIO) -> int:
    p = _Parser(prog="python -m govlog verify", description="Verify receipts offline (files, directories, bundles, - for stdin).")
    p.add_argument("--log-key", required=True, help="the log's note verifier key: a file holding it, or the key text")
    p.add_argument("--witness-policy", help="a witness policy file: checkpoints must carry the cosignatures it requires")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("receipts", nargs="*")
    a = p.parse_args(args)
    if not a.receipts:
        raise UsageError("want receipt files, bundles or directories, got 0 arguments")
    key = _log_key(a.log_key)
    policy = None
    if a.witness_policy:
        try:
            policy = Policy.parse(_read(a.witness_policy, MAX_POLICY_BYTES, stdin))
        except (OSError, VerificationError) as e:
            raise UsageError("--witness-policy: %s" % e) from None
    if len(a.receipts) == 1 and _is_evidence_bundle(a.receipts[0]):
        return _verify_evidence_bundle(a.receipts[0], key, policy, a.json, stdin, stdout)
    many = a.json or len(a.receipts) > 1 or os.path.isdir(a.receipts[0])
    if not many:
        data = _read(a.receipts[0], _MAX_BUNDLE_BYTES, stdin)
        many = _is_bundle(data)
    if not many:
        try:
            v = verify_any_receipt(data, key)
            if policy is not None:
                policy.check(v.checkpoint.note)
        except VerificationError as e:
            raise VerificationError(e.code, "%s does NOT verify: %s" % (a.receipts[0], e)) from None
        _print_verified(stdout, v)
        if policy is not None:
            names = sorted(w.key.name for w in policy.cosigners(v.checkpoint.note))
            stdout.write("witness_policy: satisfied (%s)\n" % ", ".join(names))
        return 0
    items: List[_Item] = []
    for r in a.receipts:
        items.extend(_collect(r, stdin))
    if not items:
        raise OSError("no receipt found in %s" % ", ".join(a.receipts))
    results = []
    for it in items:
        res = {"name": it.name, "ok": False}
        try:
            if it.data is None:
                raise VerificationError("malformed", it.error)
            v = verify_any_receipt(it.data, key)
            if policy is not None:
                policy.check(v.checkpoint.note)
        except VerificationError as e:
            res["error"] = str(e)
            results.append(res)
            continue
        res.update(ok=True, index=v.index, kind=v.entry.kind, id=v.entry.id)
        if v.entry.decision is not None:
            res["outcome"] = v.entry.decision.outcome
        res.update(leaf_hash=b64encode(v.leaf_hash), checkpoint_size=v.checkpoint.size, root_hash=b64encode(v.checkpoint.root_hash))
        results.append(res)
    failed = sum(1 for r in results if not r["ok"])
    if a.json:
        stdout.write(json.dumps({"ok": failed == 0, "verified": len(results) - failed, "failed": failed, "receipts": results}, ensure_ascii=False) + "\n")
    else:
        for r in results:
            if r["ok"]:
                outcome = " (%s)" % r["outcome"] if "outcome" in r else ""
                stdout.write("OK   %s: entry %d, %s %s%s, checkpoint of size %d\n" % (r["name"], r["index"], r["kind"], r["id"], outcome, r["checkpoint_size"]))
            else:
                stdout.write("FAIL %s: %s\n" % (r["name"], r["error"]))
        stdout.write("%d receipts: %d verified, %d failed\n" % (len(results), len(results) - failed, failed))
    if failed:
        raise VerificationError("malformed", "%d of %d receipts do NOT verify" % (failed, len(results)))
    return 0


def verify_artifact_cmd(args: Sequence[str], stdin, stdout: TextIO) -> int:
    p = _Parser(prog="python -m govlog verify-artifact", description="Check an authorization artifact offline.")
    p.add_argument("--log-key", required=True, help="the log's note verifier key: a file holding it, or the key text")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--jwks", help="the log's artifact keys: a JWKS file (GET /.well-known/jwks.json)")
    g.add_argument("--url", help="the log's URL: its artifact keys are fetched once")
    g.add_argument("--keys", help="the log's artifact keys with their log receipts: a GET /v1/keys answer")
    g.add_argument("--key-receipt", help="the receipt of the artifact's signing key entry (tlog-proof or JSON)")
    p.add_argument("--witness-policy", help="with --keys, --key-receipt or --url: the key receipt's checkpoint must satisfy this policy")
    p.add_argument("--audience", default="", help="the audience the artifact must name (none by default)")
    p.add_argument("--receipt", help="the receipt the artifact came with: the artifact must be bound to it")
    p.add_argument("--action", help="the action about to be executed: the artifact's must be exactly this")
    p.add_argument("--resource", default="", help="the resource it acts on (none by default)")
    p.add_argument("--subject", default="", help="the subject about to act, when it must be checked")
    p.add_argument("--at", help="check the artifact's validity at this RFC 3339 time instead of now")
    p.add_argument("artifact", help="the artifact (a JWT), a file holding it, or - for stdin")
    a = p.parse_args(args)
    key = _log_key(a.log_key)
    policy = None
    if a.witness_policy:
        try:
            policy = Policy.parse(_read(a.witness_policy, MAX_POLICY_BYTES, stdin))
        except (OSError, VerificationError) as e:
            raise UsageError("--witness-policy: %s" % e) from None
    if a.artifact == "-" or os.path.isfile(a.artifact):
        token = _read(a.artifact, 1 << 20, stdin).decode("utf-8", "replace").strip()
    else:
        token = a.artifact
    now = None
    if a.at:
        t = parse_rfc3339(a.at)
        if t is None:
            raise UsageError("--at: %r is not an RFC 3339 time" % a.at)
        now = t[0] + t[1] / 1e9
    key_receipt = None
    if a.keys or a.key_receipt:
        try:
            data = _read(a.keys or a.key_receipt, _MAX_BUNDLE_BYTES, stdin)
        except OSError as e:
            raise UsageError("--%s: %s" % ("keys" if a.keys else "key-receipt", e)) from None
        if a.keys:
            index = key_index_of(token)
            if index is None:
                raise VerificationError("bad_artifact", "the artifact does NOT verify: it names no govlog.key_index")
            try:
                key_receipt = key_receipt_for(data, index)
            except VerificationError as e:
                raise VerificationError(e.code, "the artifact does NOT verify: %s" % e) from None
        else:
            key_receipt = data
    elif a.url and key_index_of(token) is not None:
        from .client import Client

        try:
            key_receipt = key_receipt_for(Client(a.url, log_key=key).keys(), key_index_of(token) or 0)
        except ValueError as e:
            raise UsageError("--url: %s" % e) from None
    if key_receipt is not None:
        if a.receipt:
            raise UsageError("--receipt is for artifacts checked with --jwks or a JWKS from --url")
        try:
            claims, vk = verify_key_bound(token, key_receipt, key, audience=a.audience, now=now, policy=policy,
                                          action=a.action or None, resource=a.resource, subject=a.subject)
        except VerificationError as e:
            raise VerificationError(e.code, "the artifact does NOT verify: %s" % e) from None
        _print_claims(stdout, claims)
        stdout.write("key: %s, logged at index %d (checkpoint size %d)\n" % (vk.key.kid, vk.index, vk.checkpoint.size))
        return 0
    if a.jwks:
        try:
            jwks = JWKS.parse(_read(a.jwks, 1 << 20, stdin))
        except (OSError, VerificationError) as e:
            raise UsageError("--jwks: %s" % e) from None
    else:
        from .client import Client

        try:
            jwks = Client(a.url, log_key=key).jwks()
        except (ValueError, VerificationError) as e:
            raise UsageError("--url: %s" % e) from None
    receipt = None
    if a.receipt:
        receipt = verify_any_receipt(_read(a.receipt, _MAX_BUNDLE_BYTES, stdin), key)
    try:
        claims = verify_artifact(token, jwks, origin=key.name, audience=a.audience, now=now, receipt=receipt)
        if a.action:
            authorize(claims, a.action, a.resource, a.subject)
    except VerificationError as e:
        raise VerificationError(e.code, "the artifact does NOT verify: %s" % e) from None
    _print_claims(stdout, claims)
    return 0


def _print_claims(stdout: TextIO, claims) -> None:
    stdout.write("OK: artifact of decision %s, valid until %d, signed by the log %s\n" % (claims.jti, claims.exp, claims.iss))
    for name in ("sub", "action", "resource", "aud"):
        if getattr(claims, name):
            stdout.write("%s: %s\n" % (name, getattr(claims, name)))
    stdout.write("index: %d\n" % claims.govlog.index)


_COMMANDS = {"verify": verify, "verify-artifact": verify_artifact_cmd}


def run(argv: Sequence[str], stdin=None, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if not argv or argv[0] not in _COMMANDS:
        if argv and argv[0] in ("-h", "--help", "help"):
            stdout.write(__doc__)
            return 0
        stderr.write("usage: python -m govlog verify|verify-artifact [flags] [arguments]\n")
        return 2
    name = argv[0]
    try:
        return _COMMANDS[name](argv[1:], stdin, stdout)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except UsageError as e:
        stderr.write("govlog %s: %s\n" % (name, e))
        return 2
    except (VerificationError, OSError) as e:
        stderr.write("govlog %s: %s\n" % (name, e))
        return 1
    except Exception as e:  # the network of --url, mostly
        stderr.write("govlog %s: %s\n" % (name, e))
        return 1


def main() -> None:
    sys.exit(run(sys.argv[1:]))
