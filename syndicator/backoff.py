"""The one back-off formula: failed feed polls and failed announcements both wait with it.

The wait doubles with each failure after the first, up to a cap; a server's Retry-After
(already parsed and clamped by retry_after.py) can only make it longer.
"""

from __future__ import annotations

import math


def backoff_seconds(
    base: float,
    failures: int,
    cap: float,
    *,
    retry_after: float | None = None,
    max_doublings: int | None = None,
) -> float:
    """`base * 2**(failures - 1)` seconds, at most `cap`, at least `retry_after`.

    `max_doublings` stops the doubling early (the feed poller's historical 16). However
    many failures there are, the power is never computed past the cap, so it cannot
    overflow.
    """
    doublings = max(failures - 1, 0)
    if max_doublings is not None:
        doublings = min(doublings, max_doublings)
    if base <= 0 or cap <= 0:
        doublings = 0  # doubling cannot change min(base * 2**n, cap) then
    else:  # one doubling past the cap is as good as a thousand
        doublings = min(doublings, max(math.ceil(math.log2(cap) - math.log2(base)) + 1, 0))
    try:
        delay = min(math.ldexp(base, doublings), cap)  # base * 2**doublings, exactly
    except OverflowError:  # only near the largest float
        delay = cap
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
