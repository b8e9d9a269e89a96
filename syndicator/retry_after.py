"""The one Retry-After parser: remote feeds, channels and directory pings all use it.

A server's Retry-After is advice, and hostile or broken servers send anything: "1e400",
"-5", "NaN", a date in the year 9999, a 40-digit number. Every value becomes either None
(ignored: not a Retry-After we can read) or a number of seconds in [0, MAX_RETRY_AFTER],
so no caller ever builds a timedelta or a datetime from an absurd number.
"""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime

MAX_RETRY_AFTER = 24 * 3600.0  # a day: longer "come back later" advice is not followed
# RFC 9110 10.2.3 says delta-seconds is digits; a fraction is tolerated, signs and
# exponents ("1e400", "-5", "inf", "nan") are not.
_SECONDS = re.compile(r"\d{1,40}(?:\.\d{1,9})?")


def clamp_wait(seconds: float | None) -> float | None:
    """A wait in seconds held to [0, MAX_RETRY_AFTER]; None for None or NaN."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date, clamped; else None."""
    if not value:
        return None
    raw = value.strip()[:100]
    if _SECONDS.fullmatch(raw):
        return clamp_wait(float(raw))
    try:
        when = email.utils.parsedate_to_datetime(raw)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        secs = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return clamp_wait(secs)
