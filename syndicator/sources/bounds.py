"""Sane bounds for the numbers sources read, checked before anything reaches the store.

One validator for Jekyll posts and remote feeds: a number past these bounds is a
problem naming its file or item, never a row the database refuses (PostgreSQL's
`integer` is 32 bits, SQLite's 64) nor an absurd `<itunes:duration>`.
"""

from __future__ import annotations

import math

MAX_EPISODE_NUMBER = 2_147_483_647  # episodes.number is a 32-bit integer on PostgreSQL
MAX_DURATION_SECONDS = 7 * 24 * 3600  # a week: longer than any episode, far below int4
MAX_ENCLOSURE_BYTES = 1 << 40  # 1 TiB: no audio or video file comes near it
MAX_TAGS = 100  # tags kept per episode; the rest are dropped with a problem

_MAX_DIGITS = 30  # a longer run of digits is out of every bound above: not parsed at all


class OutOfRange(ValueError):
    """A number that is not finite, negative, or past its bound; the message says which."""


def _shown(value: object) -> str:
    text = str(value) if not isinstance(value, str) else value.strip()
    return text if len(text) <= 32 else f"{text[:24]}… ({len(text)} characters)"


def bounded(value: int | float | str, what: str, high: int, hint: str = "") -> int:
    """`value` as a whole number in 0..high, else OutOfRange saying what, why and the bound.

    Strings are digits only (the caller decides what a valid spelling is); a very long
    run of digits is refused before it is converted, so it costs nothing.
    """
    if isinstance(value, str):
        digits = value.strip()
        if len(digits) > _MAX_DIGITS:
            raise OutOfRange(f"{what} {_shown(value)} is out of range: at most {high:,}{hint}")
        value = int(digits)
    if isinstance(value, float) and not math.isfinite(value):
        raise OutOfRange(f"{what} {value!r} is not a finite number")
    if value < 0:
        raise OutOfRange(f"{what} {_shown(value)} is negative")
    if value > high:
        raise OutOfRange(f"{what} {_shown(value)} is out of range: at most {high:,}{hint}")
    return int(value)


def episode_number(value: int | str) -> int:
    return bounded(value, "episode number", MAX_EPISODE_NUMBER)


def duration_seconds(value: int | float | str) -> int:
    return bounded(value, "duration", MAX_DURATION_SECONDS, " seconds (a week)")


def enclosure_bytes(value: int | str) -> int:
    return bounded(value, "audio file size", MAX_ENCLOSURE_BYTES, " bytes (1 TiB)")
