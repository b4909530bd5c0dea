"""Witness policies: the text format of github.com/transparency-dev/formats/witness, with the
stricter rules of the Go package verifier (verifier.ParsePolicy)."""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Set, Union

from ._bytes import as_bytes
from .checkpoint import MAX_CHECKPOINT_BYTES
from .errors import VerificationError
from .note import NoteVerifier, is_space, open_note, parse_cosignature_key

MAX_POLICY_BYTES = 64 << 10

_KEYWORDS = {"witness", "group", "any", "all", "none", "quorum", "log"}


class PolicyWitness(NamedTuple):
    name: str
    key: NoteVerifier
    #: Where it accepts checkpoints: the policy's URL with /add-checkpoint appended.
    url: str


class _Group(NamedTuple):
    n: int
    members: list


def _fields(line: str) -> List[str]:
    """line split at Unicode spaces, as Go's strings.Fields."""
    out, cur = [], ""
    for c in line:
        if is_space(c):
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        out.append(cur)
    return out


def _bad(msg: str) -> "NoReturn":  # noqa: F821
    raise VerificationError("malformed", "witness policy: " + msg)


class Policy:
    """A parsed witness policy."""

    def __init__(self, text: str, quorum, witnesses: List[PolicyWitness]) -> None:
        self.text = text
        self._quorum = quorum
        self.witnesses = witnesses

    @classmethod
    def parse(cls, data: Union[bytes, str]) -> "Policy":
        """Read a witness policy: lines "witness NAME VKEY URL", "group NAME N|any|all MEMBER…",
        "quorum NAME|none", "log …" (ignored), "#" comments. As strict as the Go
        verifier.ParsePolicy: names defined before use, once, not keywords; witness keys
        cosignature/v1 (type 0x04) with their own key ID, no two alike; a group needs 1 to all of
        its members (a number is 1 to 255), each named once; exactly one quorum line.
        Raises VerificationError("malformed")."""
        raw = as_bytes(data)
        if len(raw) > MAX_POLICY_BYTES:
            _bad("the policy is %d bytes, the limit is %d" % (len(raw), MAX_POLICY_BYTES))
        text = raw.decode("utf-8", "replace")
        components: Dict[str, object] = {}
        keys: Set[tuple] = set()
        witnesses: List[PolicyWitness] = []
        quorum = None
        quorums = 0
        for line in text.split("\n"):
            line = line.split("#", 1)[0]
            f = _fields(line)
            if not f:
                continue
            kw = f[0]
            if kw == "log":
                continue
            if kw == "witness":
                if len(f) != 4:
                    _bad("invalid witness definition: %r" % line)
                _, name, vkey, url = f
                if name in _KEYWORDS:
                    _bad("invalid witness name %r" % name)
                if name in components:
                    _bad("duplicate component name %r" % name)
                if not _url_ok(url):
                    _bad("invalid witness URL %r" % url)
                try:
                    key = parse_cosignature_key(vkey)
                except VerificationError as e:
                    _bad("witness %r: %s" % (name, e))
                if (key.name, key.key_id) in keys:
                    _bad("two witnesses have the key %s" % vkey)
                keys.add((key.name, key.key_id))
                w = PolicyWitness(name, key, url.rstrip("/") + "/add-checkpoint")
                witnesses.append(w)
                components[name] = w
            elif kw == "group":
                if len(f) < 3:
                    _bad("invalid group definition: %r" % line)
                name, threshold, members = f[1], f[2], f[3:]
                if name in _KEYWORDS:
                    _bad("invalid group name %r" % name)
                if name in components:
                    _bad("duplicate component name %r" % name)
                if not members:
                    _bad("group %r has no members" % name)
                if threshold == "any":
                    n = 1
                elif threshold == "all":
                    n = len(members)
                elif re.match(r"[0-9]+\Z", threshold) and int(threshold) <= 255:
                    n = int(threshold)
                else:
                    _bad("invalid threshold %r for group %r" % (threshold, name))
                if n == 0:
                    _bad('group %r needs none of its members: use "quorum none" to require no cosignature' % name)
                if n > len(members):
                    _bad("group with %d members cannot have threshold %d" % (len(members), n))
                children = []
                for i, m in enumerate(members):
                    if m in _KEYWORDS:
                        _bad("invalid component name %r" % m)
                    if m in members[:i]:
                        _bad("group %r names %r twice" % (name, m))
                    if m not in components:
                        _bad("unknown component %r in group definition" % m)
                    children.append(components[m])
                components[name] = _Group(n, children)
            elif kw == "quorum":
                if len(f) != 2:
                    _bad("invalid quorum definition: %r" % line)
                quorums += 1
                if quorums > 1:
                    _bad("more than one quorum line")
                quorum = f[1]
            else:
                _bad("unknown keyword %r" % kw)
        if quorum is None:
            _bad("a policy must define a quorum")
        if quorum == "none":
            q = _Group(0, [])
        else:
            if quorum in _KEYWORDS:
                _bad("invalid quorum name %r" % quorum)
            if quorum not in components:
                _bad("quorum component %r not found" % quorum)
            c = components[quorum]
            q = c if isinstance(c, _Group) else _Group(1, [c])
        return cls(text, q, witnesses)

    def cosigners(self, checkpoint: Union[bytes, str]) -> List[PolicyWitness]:
        """The witnesses whose valid cosignature the checkpoint note carries (the note opens with its
        key alone: a line of its key that does not verify, before one that does, counts as none)."""
        note = as_bytes(checkpoint)
        if len(note) > MAX_CHECKPOINT_BYTES:
            return []
        out = []
        for w in self.witnesses:
            try:
                open_note(note, [w.key])
                out.append(w)
            except VerificationError:
                pass
        return out

    def satisfied(self, checkpoint: Union[bytes, str]) -> bool:
        """Whether the checkpoint's cosignatures satisfy the quorum (check its log signature first)."""
        have = {w.name for w in self.cosigners(checkpoint)}

        def sat(c) -> bool:
            if isinstance(c, PolicyWitness):
                return c.name in have
            if c.n <= 0:
                return True
            return sum(1 for m in c.members if sat(m)) >= c.n

        return sat(self._quorum)

    def check(self, checkpoint: Union[bytes, str]) -> None:
        """Raise VerificationError("policy") unless the checkpoint satisfies the policy."""
        if self.satisfied(checkpoint):
            return
        have = [w.key.name for w in self.cosigners(checkpoint)]
        if not have:
            raise VerificationError("policy", "the checkpoint has no valid cosignature by a witness of the policy")
        raise VerificationError("policy", "the checkpoint is cosigned by %s only" % ", ".join(have))


def parse_policy(data: Union[bytes, str]) -> Policy:
    return Policy.parse(data)


_HOST_CHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]<>\"]\Z")


def _escapes_ok(s: str) -> bool:
    for i, c in enumerate(s):
        if c == "%" and not re.match(r"[0-9A-Fa-f]{2}\Z", s[i + 1 : i + 3]):
            return False
    return True


def _host_ok(scheme: str, host: str) -> bool:
    open_ = host.rfind("[")
    if open_ > 0:
        return False
    if open_ == 0:
        close = host.rfind("]")
        if close < 0 or not re.match(r"(:[0-9]*)?\Z", host[close + 1 :]):
            return False
        inner = host[1:close]
        return re.match(r"[0-9A-Fa-f:.]+(%25.*)?\Z", inner) is not None and ":" in inner
    i = host.find(":")
    if i >= 0:
        j = i if scheme in ("http", "https") or host.rfind(":") == i else host.rfind(":")
        if not re.match(r":[0-9]*\Z", host[j:]):
            return False
    j = 0
    while j < len(host):
        c = host[j]
        if c == "%":
            h = host[j + 1 : j + 3]
            if not re.match(r"[0-9A-Fa-f]{2}\Z", h) or (int(h[0], 16) < 8 and host[j : j + 3] != "%25"):
                return False
            j += 3
            continue
        if ord(c) < 0x80 and not _HOST_CHAR.match(c):
            return False
        j += 1
    return True


def _url_ok(raw: str) -> bool:
    """Whether Go's net/url.Parse accepts a witness URL: no control characters, well-formed
    %-escapes, a scheme when the first segment has a colon, and for "scheme://host" a valid host
    and port."""
    if re.search("[\x00-\x1f\x7f]", raw):
        return False
    rest, sep, frag = raw.partition("#")
    if sep and not _escapes_ok(frag):
        return False
    if rest.startswith(":"):
        return False
    scheme = ""
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", rest)
    if m:
        scheme = m.group(1).lower()
        rest = rest[m.end() :]
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return True
        if ":" in rest.partition("/")[0]:
            return False
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        userinfo, at, host = authority.rpartition("@")
        if at and (not re.match(r"[A-Za-z0-9\-._:~!$&'()*+,;=%@]*\Z", userinfo) or not _escapes_ok(userinfo)):
            return False
        if not _host_ok(scheme, host):
            return False
        return _escapes_ok(slash + path)
    return _escapes_ok(rest)
