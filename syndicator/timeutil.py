"""Durations, UTC helpers and ISO 8601 parsing.

Time is explicit everywhere: stored in UTC, shown in the podcast's zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s|ms)", re.IGNORECASE)
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str | int | float) -> timedelta:
    """Parse "30m", "14d", "1h30m", "45s" or a number of seconds."""
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    raw = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return timedelta(seconds=float(raw))
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(raw):
        if raw[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos == 0 or raw[pos:].strip():
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit, e.g. 45s, 30m, 2h, 14d or 1h30m"
        )
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    secs = int(delta.total_seconds())
    if secs == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs >= size:
            parts.append(f"{secs // size}{unit}")
            secs %= size
    return "".join(parts)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime, tz: ZoneInfo | None = None) -> datetime:
    """Attach `tz` (default UTC) to a naive datetime and convert to UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or UTC)
    return value.astimezone(UTC)


def parse_iso(text: str, tz: ZoneInfo | None = None) -> datetime:
    """Parse ISO 8601 (naive values are taken in `tz`, default UTC)."""
    raw = text.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    return as_utc(datetime.fromisoformat(raw), tz)


def parse_clock(text: str) -> int:
    """Parse "H:MM:SS", "MM:SS" or "SS" into seconds."""
    return int(clock_seconds(text))


def clock_seconds(text: str, *, fractional: bool = False) -> float:
    """The one clock-time parser: "H:MM:SS", "MM:SS" or "SS" -> seconds.

    Whole numbers only, unless `fractional` (feeds write "1:02:03.5" and "3723.5"); a
    negative or NaN part is refused either way. Raises ValueError for anything else.
    """
    parts = text.strip().split(":")
    error = ValueError(f"invalid duration {text!r}: expected H:MM:SS, MM:SS or seconds")
    if not 1 <= len(parts) <= 3:
        raise error
    nums: list[float]
    if fractional:
        try:
            nums = [float(p) for p in parts]
        except ValueError:
            raise error from None
        if any(x < 0 or x != x for x in nums):
            raise error
    elif all(p.strip().isdigit() for p in parts):
        nums = [int(p) for p in parts]  # whole: exact however large
    else:
        raise error
    secs: float = 0
    for x in nums:
        secs = secs * 60 + x
    return secs
