"""Timestamps as govlog's Go code reads them: an instant is (Unix seconds, nanoseconds)."""

from __future__ import annotations

import re
from typing import Optional, Tuple

Instant = Tuple[int, int]

# What Go's time.Parse(time.RFC3339Nano, s) accepts: its RFC 3339 fast path
# and, when that fails, the general layout parser, which also takes a
# one-digit hour, a comma before the fraction, and zone offsets up to
# ±24:60. A fraction may have any number of digits; the tenth and later are
# ignored.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{9})?Z\Z")


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _leap(year) else 28
    return (31, 0, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= 1 if m <= 2 else 0
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339(s: str) -> Optional[Instant]:
    """A timestamp as Go's time.Parse(time.RFC3339Nano) reads it, or None."""
    m = _RFC3339.match(s)
    if not m:
        return None
    year, month, day, hour, minute, sec = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and 1 <= day <= _days_in(month, year) and hour <= 23 and minute <= 59 and sec <= 59):
        return None
    offset = 0
    if m.group(8):
        oh, om = int(m.group(9)), int(m.group(10))
        if oh > 24 or om > 60:
            return None
        offset = (oh * 60 + om) * 60 * (-1 if m.group(8) == "-" else 1)
    frac = m.group(7) or ""
    nsec = int((frac[:9]).ljust(9, "0"))
    return (_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec - offset, nsec)


def parse_utc(s: str, fraction: bool) -> Optional[Instant]:
    """A UTC timestamp written exactly with 9 fractional digits (fraction) or none."""
    m = _UTC.match(s)
    if not m or (m.group(1) is not None) != fraction:
        return None
    return parse_rfc3339(s)
