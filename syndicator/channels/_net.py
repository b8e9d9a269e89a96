"""Shared by the channels: reading rate-limit headers and sorting transport failures.

The one question every failure must answer is "could the server have received it?".
A refused or unresolvable connection, or a connect timeout, means the request never
left: retrying is safe (TransientError). A read timeout, a reset or a dropped answer
after the request was written means it may have been acted on (UnknownOutcome).
"""

from __future__ import annotations

import html
import math
import re
import time
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from syndicator.channels.base import SendError, TransientError, UnknownOutcome
from syndicator.retry_after import clamp_wait, parse_retry_after

# Headers that carry "when may I try again", most specific first.
_RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")


def http_url(value: str, example: str) -> str:
    """A configured API base URL, stripped; ValueError (naming `example`) unless http(s)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"api_url {value!r} is not an http(s) URL, e.g. {example!r}")
    return value.strip()


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _reset_seconds(value: str, now: float) -> float | None:
    """A reset header: epoch seconds (X, Bluesky), an ISO time (Mastodon) or delta seconds."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp() - now
    if not math.isfinite(number):
        return None
    # Epoch seconds are huge; a small number is already a delay (some servers send that).
    return number - now if number > 1_000_000_000 else number


def retry_after(headers: Mapping[str, Any] | None, now: float | None = None) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or a rate-limit reset header."""
    if not headers:
        return None
    now = time.time() if now is None else now
    value = _header(headers, "retry-after")
    if value is not None:
        seconds = parse_retry_after(value, datetime.fromtimestamp(now, UTC))
        if seconds is not None:
            return seconds
    for name in _RESET_HEADERS:
        value = _header(headers, name)
        if value is not None:
            try:
                seconds = _reset_seconds(value, now)
            except (OverflowError, ValueError):  # a reset time beyond datetime's range
                seconds = None
            if seconds is not None:
                return clamp_wait(seconds)
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the reasons urllib3 wraps inside args."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if any(e is s for s in seen) or len(seen) > 20:
            continue
        seen.append(e)
        for nxt in (e.__cause__, e.__context__, getattr(e, "reason", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
    return seen


def _not_sent() -> tuple[type[BaseException], ...]:
    # requests is imported here, on a failure: the kinds' configs use this module on
    # every pass, and only the clients (imported to send) need requests
    import requests
    import urllib3.exceptions

    return (
        requests.exceptions.ConnectTimeout,
        requests.exceptions.SSLError,  # the TLS handshake failed: no request was written
        urllib3.exceptions.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError)
        urllib3.exceptions.ConnectTimeoutError,
        ConnectionRefusedError,
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
    )


def never_sent(exc: BaseException) -> bool:
    """True when the failure happened before a byte of the request could reach the server."""
    not_sent = _not_sent()
    return any(isinstance(e, not_sent) for e in _chain(exc))


def describe(exc: BaseException) -> str:
    """A short, human reason for a transport failure."""
    import requests
    import urllib3.exceptions

    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ConnectionRefusedError | urllib3.exceptions.NewConnectionError):
            return "connection refused or host unreachable"
    for e in chain:
        if isinstance(
            e, requests.exceptions.ConnectTimeout | httpx.ConnectTimeout | httpx.PoolTimeout
        ):
            return "timed out connecting"
    for e in chain:
        if isinstance(e, requests.exceptions.ReadTimeout | httpx.ReadTimeout | TimeoutError):
            return "timed out waiting for the answer"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def transport_error(exc: BaseException, what: str) -> SendError:
    """Map a transport failure during a write: Transient if it never left, else Unknown."""
    reason = describe(exc)
    if never_sent(exc):
        return TransientError(f"{what}: {reason} (nothing was sent; will retry)")
    return UnknownOutcome(f"{what}: {reason} (the request may have been received)")


def read_error(err: SendError) -> SendError:
    """A failure while only reading (counts): nothing can have been posted twice, so an
    "unknown" outcome is simply a temporary failure."""
    if isinstance(err, UnknownOutcome):
        return TransientError(err.message, status=err.status)
    return err


def count(value: Any) -> int:
    """A count from an API answer: a non-negative int (a missing or odd value is 0)."""
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(n, 0)


# ---- reading a post back ----------------------------------------------------------------

_URL = re.compile(r"https?://\S+")
# Mastodon shows a mention of a local account without its domain: "@ann@example.social" -> "@ann".
_MENTION_DOMAIN = re.compile(r"(@\w[\w.]*)@[\w.-]*\w")


def normalize(text: str) -> str:
    """Text as compared with the timeline: no links (X shows t.co), unescaped, spaces folded."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = _MENTION_DOMAIN.sub(r"\1", _URL.sub(" ", text))
    return " ".join(text.split()).casefold()


def same_text(posted: str, timeline: str) -> bool:
    """Whether a post read back is the frozen text (X may end a long one with "…")."""
    a, b = normalize(posted), normalize(timeline)
    if a == b:
        return True
    if b.endswith("…"):
        head = b[:-1].rstrip()
        return len(head) >= 20 and a.startswith(head)
    return False
