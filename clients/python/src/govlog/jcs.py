"""Strict JSON and RFC 8785 (JCS) canonical form.

The parser reads exactly what the Go verifier's RFC 8785 implementation
(github.com/gowebpki/jcs) reads: RFC 8259 JSON, valid UTF-8, no duplicate
member names, no lone surrogates, numbers within the range of a double, at
most 10,000 levels of nesting. It keeps each number as written (JSONNumber),
because govlog's schema looks at the literal. Objects are JSONObject: their
members in document order, and a dict by name.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, List, Tuple, Union

from ._bytes import as_bytes, utf8
from .errors import VerificationError

#: The deepest nesting of arrays and objects accepted.
MAX_DEPTH = 10000

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\Z")


class JSONNumber:
    """A JSON number: the literal as written, and its value as a double."""

    __slots__ = ("raw", "value")

    def __init__(self, raw: str) -> None:
        value = float(raw)
        if math.isinf(value):
            raise VerificationError("malformed", "JSON: number out of range: %.32s" % raw)
        self.raw = raw
        self.value = value

    def __repr__(self) -> str:
        return "JSONNumber(%s)" % self.raw


class JSONObject(dict):
    """A JSON object: a dict, and its members in document order."""

    __slots__ = ("members",)

    def __init__(self, members: List[Tuple[str, Any]]) -> None:
        super().__init__(members)
        self.members = members


JSONValue = Union[None, bool, str, JSONNumber, List[Any], JSONObject]


def _surrogate(s: str) -> bool:
    return not s.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _pairs(members: List[Tuple[str, Any]]) -> JSONObject:
    obj = JSONObject(members)
    if len(obj) != len(members):
        seen = set()
        for k, _ in members:
            if k in seen:
                raise VerificationError("malformed", "JSON: duplicate member %s" % json.dumps(k))
            seen.add(k)
    return obj


def _constant(name: str) -> Any:
    raise VerificationError("malformed", "JSON: invalid literal %s" % name)


def _lone_surrogates(v: Any) -> bool:
    """Whether a parsed value holds a string (or member name) with a lone surrogate."""
    work = [v]
    while work:
        x = work.pop()
        if isinstance(x, str):
            if _surrogate(x):
                return True
        elif isinstance(x, list):
            work.extend(x)
        elif isinstance(x, JSONObject):
            for k, m in x.members:
                if _surrogate(k):
                    return True
                work.append(m)
    return False


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json(data: Union[bytes, str]) -> JSONValue:
    """Parse strict JSON (bytes must be valid UTF-8); raise VerificationError("malformed")."""
    text = data if isinstance(data, str) else utf8(as_bytes(data))
    if text is None:
        raise VerificationError("malformed", "JSON: invalid UTF-8")
    try:
        v = json.loads(text, object_pairs_hook=_pairs, parse_float=JSONNumber, parse_int=JSONNumber, parse_constant=_constant)
    except RecursionError:
        # Deeper than json.loads goes (about 1,000 levels), perhaps within
        # MAX_DEPTH: the iterative parser decides.
        return _Parser(text).document()
    except VerificationError:
        raise
    except ValueError as e:
        raise VerificationError("malformed", "JSON: %s" % e) from None
    if (isinstance(data, str) or _SURROGATE_ESCAPE.search(text)) and _lone_surrogates(v):
        raise VerificationError("malformed", "JSON: lone surrogate")
    return v


class _Parser:
    """An iterative parser of the same grammar, for input nested deeper than json.loads goes."""

    _WS = " \t\n\r"

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def err(self, msg: str) -> "NoReturn":  # noqa: F821
        raise VerificationError("malformed", "JSON: %s at offset %d" % (msg, self.i))

    def ws(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i] in self._WS:
            i += 1
        self.i = i

    def peek(self) -> str:
        self.ws()
        if self.i >= len(self.s):
            self.err("unexpected end")
        return self.s[self.i]

    def document(self) -> JSONValue:
        v = self.value()
        self.ws()
        if self.i != len(self.s):
            self.err("data after the value")
        return v

    def value(self) -> JSONValue:
        stack: List[list] = []  # [kind, container, key or members]
        while True:
            c = self.peek()
            if c in "[{":
                self.i += 1
                if len(stack) >= MAX_DEPTH:
                    self.err("more than %d levels of nesting" % MAX_DEPTH)
                if c == "[":
                    if self.peek() == "]":
                        self.i += 1
                        v: Any = []
                    else:
                        stack.append(["a", []])
                        continue
                else:
                    if self.peek() == "}":
                        self.i += 1
                        v = JSONObject([])
                    else:
                        stack.append(["o", [], self.key()])
                        continue
            elif c == '"':
                self.i += 1
                v = self.string()
            else:
                v = self.scalar()
            while True:
                if not stack:
                    return v
                top = stack[-1]
                if top[0] == "a":
                    top[1].append(v)
                else:
                    top[1].append((top[2], v))
                d = self.peek()
                self.i += 1
                if d == ",":
                    if top[0] == "o":
                        top[2] = self.key()
                    break
                if top[0] == "a" and d == "]":
                    stack.pop()
                    v = top[1]
                    continue
                if top[0] == "o" and d == "}":
                    stack.pop()
                    v = _pairs(top[1])
                    continue
                self.i -= 1
                self.err("expected , or the end of the container")

    def key(self) -> str:
        if self.peek() != '"':
            self.err("expected a member name")
        self.i += 1
        k = self.string()
        if self.peek() != ":":
            self.err("expected :")
        self.i += 1
        return k

    def string(self) -> str:
        start = self.i - 1
        s = self.s
        i = self.i
        while True:
            if i >= len(s):
                self.err("unterminated string")
            c = s[i]
            if c == '"':
                break
            if c == "\\":
                i += 2
                continue
            i += 1
        self.i = i + 1
        try:
            out = json.loads(s[start : i + 1])
        except ValueError:
            self.err("invalid string")
        if _surrogate(out):
            self.err("lone surrogate")
        return out

    def scalar(self) -> JSONValue:
        s = self.s
        start = self.i
        i = start
        while i < len(s) and s[i] not in ",]} \t\n\r":
            i += 1
        tok = s[start:i]
        self.i = i
        if tok == "true":
            return True
        if tok == "false":
            return False
        if tok == "null":
            return None
        if not _NUMBER.match(tok):
            self.i = start
            self.err("missing value" if tok == "" else "invalid literal or number")
        return JSONNumber(tok)


def number_to_jcs(v: float) -> str:
    """The RFC 8785 form of a double: ECMAScript's Number::toString."""
    if math.isnan(v) or math.isinf(v):
        raise VerificationError("malformed", "JSON: a number is not finite")
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    r = repr(abs(v))  # the shortest digits that read back as v
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    e10 = (int(exp) if exp else 0) - len(fp)
    stripped = digits.rstrip("0")
    e10 += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + e10
    if k <= n <= 21:
        out = digits + "0" * (n - k)
    elif 0 < n <= 21:
        out = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + out


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def quote_jcs(s: str) -> str:
    """The RFC 8785 form of a string."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(0)) or "\\u%04x" % ord(m.group(0)), s) + '"'


def _utf16(k: str) -> bytes:
    return k.encode("utf-16-be")


def canonicalize(value: JSONValue) -> str:
    """A parsed value in RFC 8785 canonical form (iteratively)."""
    parts: List[str] = []
    work: List[Any] = [value]
    while work:
        v = work.pop()
        if isinstance(v, _Text):
            parts.append(v.text)
        elif v is None:
            parts.append("null")
        elif v is True:
            parts.append("true")
        elif v is False:
            parts.append("false")
        elif isinstance(v, str):
            parts.append(quote_jcs(v))
        elif isinstance(v, JSONNumber):
            parts.append(number_to_jcs(v.value))
        elif isinstance(v, float) or isinstance(v, int):
            parts.append(number_to_jcs(float(v)))
        elif isinstance(v, list):
            parts.append("[")
            work.append(_Text("]"))
            for i in range(len(v) - 1, -1, -1):
                work.append(v[i])
                if i > 0:
                    work.append(_Text(","))
        elif isinstance(v, dict):
            parts.append("{")
            work.append(_Text("}"))
            members = sorted(v.items(), key=lambda m: _utf16(m[0]))
            for i in range(len(members) - 1, -1, -1):
                work.append(members[i][1])
                work.append(_Text(("," if i > 0 else "") + quote_jcs(members[i][0]) + ":"))
        else:
            raise TypeError("not a JSON value: %r" % (v,))
    return "".join(parts)


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def canonical_json(data: Union[bytes, str]) -> str:
    """Parse strict JSON and return its RFC 8785 canonical form."""
    return canonicalize(parse_json(data))

