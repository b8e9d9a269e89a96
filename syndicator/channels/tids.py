"""AT Protocol TIDs ("timestamp identifiers"), used as Bluesky record keys.

A TID is a 64-bit integer written as 13 characters of the sortable base32 alphabet
"234567abcdefghijklmnopqrstuvwxyz": the top bit is 0, then 53 bits of microseconds
since the Unix epoch, then a 10-bit clock id. The same (time, clock id) always gives
the same TID, which is what makes a frozen record key safe to retry with putRecord.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MICROS = 2**53 - 1
_MAX_CLOCK = 2**10 - 1
# The syntax the atproto spec gives for a TID (the first character carries the top bit).
_TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def _aware(dt: datetime) -> datetime:
    # The store hands back naive datetimes that are UTC by convention.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def make_tid(dt: datetime, clock_id: int) -> str:
    """The TID for this instant and clock id (0-1023). Naive datetimes are taken as UTC."""
    if not 0 <= clock_id <= _MAX_CLOCK:
        raise ValueError(f"clock_id must be 0..{_MAX_CLOCK}, got {clock_id}")
    micros = (_aware(dt) - _EPOCH) // timedelta(microseconds=1)
    if not 0 <= micros <= _MAX_MICROS:
        raise ValueError(f"{dt.isoformat()} cannot be written as a TID (before 1970 or too late)")
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def parse_tid(tid: str) -> tuple[datetime, int]:
    """(instant, clock id) of a TID; raises ValueError when it isn't one."""
    if not is_valid_tid(tid):
        raise ValueError(f"{tid!r} is not a valid TID")
    value = 0
    for c in tid:
        value = (value << 5) | _INDEX[c]
    micros, clock = value >> 10, value & _MAX_CLOCK
    return _EPOCH + timedelta(microseconds=micros), clock


def is_valid_tid(s: object) -> bool:
    """True for a 13-character TID with the top bit clear."""
    if not isinstance(s, str) or not _TID_RE.match(s):
        return False
    # The regex allows a first character up to "j"; a 64-bit value with the top bit
    # clear needs the first character's value below 8.
    return _INDEX[s[0]] < 8
