"""Chat and mail targets through Apprise: Discord, Slack, Telegram, Matrix, e-mail, webhooks...

Apprise answers only "sent" or "not sent". Why it failed is in its log, which Apprise
(2.x) captures per call: `notify(..., log_level=DEBUG)` returns a result carrying the
plugin's messages. The plugins log an HTTP failure as "... error=<status>." with the
body in "Response Details", and a transport failure as "Socket Exception: <requests
error>"; those are read to tell:

- 429, 408/409/425, connection refused, DNS, connect timeout -> TransientError
- 5xx, read timeout, reset, or a failure we cannot read       -> UnknownOutcome
- any other 4xx                                                -> PermanentError

Webhooks have no idempotency key and no way to read a post back (unknown_policy "none"):
an `unknown` row is held for a person unless the channel says on_unknown = "resend".

Timeouts: Apprise URLs take `cto` (connect) and `rto` (read) seconds; the channel adds
them unless the URL sets its own. Endpoints: an Apprise plugin's fixed service host
(e.g. discord.com) is replaced by `api_base` when one is given (tests, proxies).

The kind (config) is the package, `syndicator.channels.apprise`; this module is
imported by its `build()` only.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import apprise

from syndicator.channels.apprise.shared import DISCORD_LIMIT, UNKNOWN_POLICY
from syndicator.channels.base import (
    PermanentError,
    Post,
    SendError,
    Sent,
    TransientError,
    UnknownOutcome,
)

_STATUS = re.compile(r"error=(\d{3})\b")
_DETAILS = re.compile(r"^Response Details:\s*(.*)$", re.S)
_SOCKET = re.compile(r"^(?:Socket|I/O) Exception:\s*(.*)$", re.S)
# requests/urllib3 wording for failures before the request left this machine
_NOT_SENT = re.compile(
    r"Connection refused|Failed to establish a new connection|NameResolutionError|"
    r"Name or service not known|nodename nor servname|getaddrinfo failed|"
    r"Temporary failure in name resolution|No route to host|Network is unreachable|"
    r"ConnectTimeoutError|connect timeout|timed out\. \(connect timeout",
    re.I,
)

_log_lock = threading.Lock()
_log_users = 0
_log_saved: tuple[int, bool] = (logging.NOTSET, True)


@contextmanager
def _apprise_debug_log() -> Iterator[None]:
    """Let Apprise emit DEBUG records (the transport error's text is only logged there).

    The records go to Apprise's own per-call capture; propagation is off meanwhile so
    the application's log isn't flooded with Apprise's payload dumps.
    """
    global _log_users, _log_saved
    lg = logging.getLogger("apprise")
    with _log_lock:
        if _log_users == 0:
            _log_saved = (lg.level, lg.propagate)
            lg.setLevel(logging.DEBUG)
            lg.propagate = False
        _log_users += 1
    try:
        yield
    finally:
        with _log_lock:
            _log_users -= 1
            if _log_users == 0:
                lg.setLevel(_log_saved[0])
                lg.propagate = _log_saved[1]


def with_timeouts(url: str, timeout: float) -> str:
    """The Apprise URL with cto/rto set to `timeout` unless it has its own."""
    query = url.split("?", 1)[1] if "?" in url else ""
    keys = {p.split("=", 1)[0].lower() for p in query.split("&") if p}
    extra = [f"{k}={timeout:g}" for k in ("cto", "rto") if k not in keys]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def _response_text(raw: str) -> str:
    """The body from Apprise's "Response Details" line (a bytes repr), readable."""
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    except (ValueError, SyntaxError):
        text = raw
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(data, dict):
        for key in ("message", "error_description", "description", "error", "detail"):
            if isinstance(data.get(key), str) and data[key]:
                return data[key][:300]
    return " ".join(text.split())[:300]


class AppriseChannel:
    type = "apprise"
    unknown_policy = UNKNOWN_POLICY

    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout: float = 20.0,
        limit: int | None = None,
        api_base: str | None = None,
    ) -> None:
        self.name = name
        self._limit = limit
        self._apprise = apprise.Apprise()
        with _apprise_debug_log():  # Apprise logs a URL it cannot parse, token and all
            added = self._apprise.add(with_timeouts(url, timeout))
        if not added:
            scheme = url.split("://", 1)[0] if "://" in url else url[:12]
            raise PermanentError(
                f"channel {name!r}: Apprise cannot use this URL (scheme {scheme!r}); "
                "see https://github.com/caronc/apprise/wiki for the URL forms"
            )
        self.plugin: Any = self._apprise[0]
        if api_base:
            self._rebase(api_base)
        # Shown and stored instead of the URL: Apprise's privacy form, path masked too (a
        # webhook's token usually lives in the path, which e.g. json:// does not mask).
        self.where = _mask_path(self.plugin.url(privacy=True).split("?", 1)[0])
        self._secrets = _secrets(url, self.plugin.url(privacy=True))

    def _rebase(self, api_base: str) -> None:
        """Point a plugin with a fixed service URL (Discord's discord.com...) elsewhere."""
        fixed = getattr(self.plugin, "notify_url", None)
        if not isinstance(fixed, str) or "://" not in fixed:
            return
        path = urlsplit(fixed).path
        self.plugin.notify_url = api_base.rstrip("/") + path

    @property
    def is_discord(self) -> bool:
        return type(self.plugin).__name__ == "NotifyDiscord"

    def limit(self) -> int:
        if self._limit:
            return self._limit
        if self.is_discord:
            return DISCORD_LIMIT
        maxlen = getattr(self.plugin, "body_maxlen", 0)
        return int(maxlen) if isinstance(maxlen, int) and maxlen > 0 else DISCORD_LIMIT

    def close(self) -> None:
        self._apprise.clear()

    def send(self, post: Post) -> Sent:
        if not post.text.strip():
            raise PermanentError("the announcement text is empty; nothing to send")
        with _apprise_debug_log():
            result = self._apprise.notify(
                body=post.text,
                title=str(post.extra.get("title") or ""),
                body_format=apprise.NotifyFormat.TEXT,
                log_level=logging.DEBUG,
                # the frozen image (checked against its sha256 by the sender) as an
                # attachment; targets that take none ignore it
                attach=apprise.AppriseAttachment(post.image_file) if post.image_file else None,
            )
        if result:
            return Sent(remote_id=None, remote_url=None)
        raise self._error(result)

    def reconcile(self, post: Post) -> Sent | None:
        raise UnknownOutcome(
            "a webhook cannot be read back: check the target, then mark the delivery "
            'sent or not sent (or set on_unknown = "resend" for this channel)'
        )

    # ---- reading Apprise's log -----------------------------------------------------------

    def scrub(self, text: str) -> str:
        """`text` with every secret part of the channel's URL masked."""
        for secret in self._secrets:
            text = text.replace(secret, _mask(secret))
        return text

    def _error(self, result: Any) -> SendError:
        where = self.where
        # Apprise's and requests' words can quote the URL (a socket error names the path):
        # everything read from the log is scrubbed before it goes into an error.
        logs = [(e.level, self.scrub(e.message)) for e in result.logs()]
        messages = [m for _, m in logs]
        warnings = [m for level, m in logs if level in ("WARNING", "ERROR", "CRITICAL")]
        said = "; ".join(warnings) or "Apprise reported a failure"
        if getattr(result.status, "name", "") == "TIMEOUT":
            return UnknownOutcome(f"{where}: Apprise gave up waiting ({said})")
        status: int | None = None
        for m in warnings:  # not the DEBUG payload dump, which holds the user's own text
            found = _STATUS.search(m)
            if found:
                status = int(found.group(1))
        details = next(
            (_response_text(d.group(1)) for m in messages if (d := _DETAILS.match(m))), ""
        )
        if status is not None:
            text = f"{where}: HTTP {status}" + (f": {details}" if details else f" ({said})")
            if status == 429:
                return TransientError(text, retry_after=self._discord_wait(), status=429)
            if status in (408, 409, 425):
                return TransientError(text, status=status)
            if status >= 500:
                return UnknownOutcome(text, status=status)
            return PermanentError(text, status=status)
        socket = next((s.group(1) for m in messages if (s := _SOCKET.match(m))), None)
        if socket is not None:
            if _NOT_SENT.search(socket):
                return TransientError(f"{where}: {_short(socket)} (nothing was sent; will retry)")
            return UnknownOutcome(f"{where}: {_short(socket)} (the target may have received it)")
        if any(m.startswith("Could not prepare the notification") for m in messages):
            return PermanentError(f"{where}: {said}")  # refused before any request was made
        return UnknownOutcome(f"{where}: {said}")

    def _discord_wait(self) -> float | None:
        """Discord's X-RateLimit-Reset, which the plugin keeps after a 429."""
        reset = getattr(self.plugin, "ratelimit_reset", None)
        if not self.is_discord or not isinstance(reset, datetime):
            return None
        reset = reset.replace(tzinfo=UTC) if reset.tzinfo is None else reset
        return max((reset - datetime.now(UTC)).total_seconds(), 0.0)


def _mask(value: str) -> str:
    """A secret as Apprise shows it in privacy mode: first and last character only."""
    return f"{value[0]}...{value[-1]}" if len(value) > 2 else "..."


def _mask_path(url: str) -> str:
    """The URL with every path segment masked (Apprise leaves some plugins' paths as is)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not sep or not slash:
        return url
    segments = [seg if not seg or "..." in seg else _mask(unquote(seg)) for seg in path.split("/")]
    return f"{scheme}://{host}/" + "/".join(segments)


def _secrets(url: str, privacy_url: str) -> list[str]:
    """The parts of an Apprise URL that may be secret, longest first.

    Every path segment and the password; the host and query values when Apprise's own
    privacy form hides them (a Telegram bot token is the "host"; ?token=... is dropped).
    """
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        host, password = parts.hostname or "", parts.password or ""
    except ValueError:  # a URL urllib cannot split: hide all of it after the scheme
        return [url.split("://", 1)[-1]]
    found.update(unquote(seg) for seg in parts.path.split("/"))
    found.add(unquote(password))
    if host and host not in privacy_url:
        found.add(host)
    for _key, value in parse_qsl(parts.query):
        if value not in privacy_url:
            found.add(value)
    found = {f for f in found if len(f) >= 4}
    # each secret also as it appears percent-encoded in a request line
    found |= {quote(f, safe="") for f in found}
    return sorted(found, key=len, reverse=True)


def _short(text: str) -> str:
    text = " ".join(text.split())
    for pattern in (r"Connection refused", r"Read timed out", r"RemoteDisconnected\([^)]*\)"):
        m = re.search(pattern, text)
        if m:
            return m.group(0)
    return text if len(text) <= 240 else text[:237] + "..."
