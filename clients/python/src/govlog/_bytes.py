"""Base64 and decimals, strictly."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Optional

_STD = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
_URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")
_UINT64 = re.compile(r"\A(0|[1-9][0-9]{0,19})\Z")


def b64encode(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4) with padding."""
    return base64.b64encode(data).decode("ascii")


def b64url_encode(data: bytes) -> str:
    """base64url (RFC 4648 §5) without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_lenient(s: str) -> Optional[bytes]:
    """Standard base64 as Go's base64.StdEncoding reads it: padded, skipping
    CR and LF, ignoring the unused bits of the last character."""
    s = s.replace("\r", "").replace("\n", "")
    if len(s) % 4 != 0 or not _STD.match(s) or "=" in s.rstrip("="):
        return None
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


def b64_strict(s: str) -> Optional[bytes]:
    """Canonical standard base64: the one encoding of its bytes."""
    b = b64_lenient(s) if "\r" not in s and "\n" not in s else None
    if b is None or b64encode(b) != s:
        return None
    return b


def b64url_strict(s: str) -> Optional[bytes]:
    """Canonical base64url without padding."""
    if len(s) % 4 == 1 or not _URL.match(s):
        return None
    try:
        b = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        return None
    return b if b64url_encode(b) == s else None


def b64_any(s: str) -> Optional[bytes]:
    """base64 in either alphabet, padded or not (as the Go verifier's JWK library reads key members)."""
    t = s.rstrip("=")
    if re.search(r"[-_]", t) and re.search(r"[+/]", t):
        return None
    t = t.replace("-", "+").replace("_", "/")
    if len(t) % 4 == 1 or not re.match(r"\A[A-Za-z0-9+/]*\Z", t):
        return None
    try:
        return base64.b64decode(t + "=" * (-len(t) % 4))
    except (binascii.Error, ValueError):
        return None


def parse_uint64(s: str) -> Optional[int]:
    """A canonical decimal (no sign, no leading zeros) below 2^64."""
    if not _UINT64.match(s):
        return None
    n = int(s)
    return n if n < 1 << 64 else None


def utf8(data: bytes) -> Optional[str]:
    """data decoded as UTF-8, or None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def as_bytes(data) -> bytes:
    """Evidence given as bytes, or as text (encoded as UTF-8)."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return bytes(data)
