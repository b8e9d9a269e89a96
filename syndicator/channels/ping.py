"""The "ping" channel kind: telling directories that a feed changed (WebSub publish and
Podcast Index pubnotify).

Pings are outbox rows of the implicit "directory" channel (kind "ping"), one per target
URL, planned by the outbox after `publish_feeds` reports a changed feed
(`ping_targets` below):

    for target in ping_targets(feed_cfg, outcome.url):  # full URLs
        ... a Delivery(kind="ping", channel="directory", target=target, ...)

`PingChannel.send(post)` then calls `post.target` for `post.feed_url`:

- a WebSub hub (a target without the feed in its query): POST form
  `hub.mode=publish&hub.url=<feed>`;
- a notify endpoint whose query already names the feed (`...?url=<feed>`, as
  `ping_targets` builds Podcast Index's `hub/pubnotify`): GET.

Podping (`podping = true` on the feed) is a notify too: `GET {podping_url}?url=<feed>
&reason=update&medium=<podcast:medium>` with the publisher token from
SYNDICATOR_PODPING_TOKEN as the `Authorization` header (never stored: the row's target
holds only the URL). `reason` is always "update": the feeds syndicator writes have no
podcast:liveItem, so there is no live/liveEnd change to announce.

`ping_kind(target, feed_url)` tells which. A ping is safe to repeat, so there is
no UnknownOutcome: 2xx -> Sent; 408/429/5xx, timeouts and connection errors ->
TransientError; other 4xx -> PermanentError with the endpoint's own message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

import syndicator
from syndicator.channels.base import PermanentError, Post, Sent, TransientError
from syndicator.channels.kind import ChannelKind
from syndicator.config import FeedConfig, secret
from syndicator.retry_after import parse_retry_after

PingKind = Literal["websub", "notify"]


def notify_url(endpoint: str, feed_url: str) -> str:
    """`endpoint` with `url=<feed>` added to its query (keeping any query it has)."""
    parts = urlsplit(endpoint)
    query = parts.query + ("&" if parts.query else "") + urlencode({"url": feed_url})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# podping's reason for a changed feed; "live"/"liveEnd" are for podcast:liveItem changes,
# which the feeds written here never carry
PODPING_REASON = "update"
PODPING_TOKEN = ("podping", "token")  # SYNDICATOR_PODPING_TOKEN


def podping_target(feed_cfg: FeedConfig, feed_url: str) -> str:
    """The podping request for `feed_url`: the endpoint with url, reason and medium."""
    parts = urlsplit(feed_cfg.podping_url.strip())
    params = {"url": feed_url, "reason": PODPING_REASON, "medium": feed_cfg.medium or "podcast"}
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _base(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path or "/"


def ping_targets(feed_cfg: FeedConfig, feed_url: str) -> list[str]:
    """The URLs to call after `feed_url` changed, in order, without duplicates:
    each of `feed_cfg.hubs` (WebSub), then Podcast Index's pubnotify with ?url=<feed>
    when `feed_cfg.podcast_index` is on, then podping when `feed_cfg.podping` is on."""
    out: list[str] = []
    for hub in feed_cfg.hubs:
        hub = hub.strip()
        if hub and hub not in out:
            out.append(hub)
    if feed_cfg.podcast_index and feed_cfg.podcast_index_url.strip():
        out.append(notify_url(feed_cfg.podcast_index_url.strip(), feed_url))
    if feed_cfg.podping and feed_cfg.podping_url.strip():
        out.append(podping_target(feed_cfg, feed_url))
    return out


def ping_kind(target: str, feed_url: str | None = None) -> PingKind:
    """The kind of ping: "notify" when the target's query already carries the feed (`url=`),
    else "websub"."""
    values = parse_qs(urlsplit(target).query).get("url", [])
    if values and (feed_url is None or feed_url in values):
        return "notify"
    return "websub"


def _message(resp: httpx.Response) -> str:
    """The endpoint's own words: a JSON description/message/error, else the body's start."""
    text = resp.text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("description", "message", "error", "detail"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()
    return " ".join(text.split())[:300] or resp.reason_phrase or "no message"


class PingChannel:
    """The "directory" channel: sends ping rows (implements channels.base.Channel)."""

    type = "ping"
    unknown_policy = "idempotent"  # a repeated ping is harmless

    def __init__(
        self,
        name: str = "directory",
        *,
        timeout: float | timedelta = 10.0,
        user_agent: str = "",
        client: httpx.Client | None = None,
        podping_endpoints: Sequence[str] = (),
        podping_token: str | None = None,
    ) -> None:
        self.name = name
        # targets at these endpoints carry the podping token (the feeds' podping_url)
        self._podping = {_base(e) for e in podping_endpoints if e.strip()}
        self._podping_token = podping_token
        secs = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(secs),
            follow_redirects=True,
            headers={
                "User-Agent": user_agent
                or f"syndicator/{getattr(syndicator, '__version__', '0')} (podcast feed ping)"
            },
        )

    def limit(self) -> int:
        return 1_000_000  # pings carry no text

    def send(self, post: Post) -> Sent:
        target = (post.target or "").strip()
        if not target or urlsplit(target).scheme not in ("http", "https"):
            raise PermanentError(f"ping row has no usable target URL ({post.target!r})")
        feed = (post.feed_url or "").strip()
        kind = ping_kind(target, feed or None)
        if kind == "websub" and not feed:
            raise PermanentError(f"ping to {target} has no feed URL (post.feed_url is empty)")
        what = "pubnotify" if kind == "notify" else "WebSub publish"
        headers: dict[str, str] = {}
        if kind == "notify" and _base(target) in self._podping:
            what = "podping"
            if not self._podping_token:
                raise PermanentError(
                    f"podping to {target} needs the publisher token: export "
                    "SYNDICATOR_PODPING_TOKEN=... (from podping.cloud), then "
                    "`syndicator delivery retry ID` for this row"
                )
            headers["Authorization"] = self._podping_token
        try:
            if kind == "notify":
                resp = self._client.get(target, headers=headers)
            else:
                resp = self._client.post(target, data={"hub.mode": "publish", "hub.url": feed})
        except httpx.TimeoutException as exc:
            raise TransientError(f"{what} to {target} timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            # refused, reset, DNS, TLS...: a ping is safe to repeat, so retry later
            raise TransientError(f"{what} to {target} failed: {exc or type(exc).__name__}") from exc
        status = resp.status_code
        if 200 <= status < 300:
            return Sent(remote_id=None, remote_url=None)
        detail = f"{what} to {target}: HTTP {status}: {_message(resp)}"
        if status in (408, 425, 429) or status >= 500:
            raise TransientError(
                detail,
                retry_after=parse_retry_after(resp.headers.get("retry-after")),
                status=status,
            )
        raise PermanentError(
            detail + " (check the hub/endpoint URL and that the feed URL is public)", status=status
        )

    def reconcile(self, post: Post) -> Sent | None:
        return None  # nothing to look up; resending a ping is safe

    def close(self) -> None:
        if self._own_client:
            self._client.close()


class DirectoryPingKind(ChannelKind):
    """Feed pings: no [[channels]] entry; the implicit channel "directory" exists when
    the config publishes feeds."""

    name = "ping"
    config = None
    default_limit = 1_000_000  # pings carry no text
    unknown_policy = PingChannel.unknown_policy
    implicit_channel = "directory"
    implicit_purpose = "the feed pings' outbox"

    def implicit(self, settings: Any, timeout: float) -> PingChannel | None:
        if not settings.feeds:
            return None
        return PingChannel(
            self.implicit_channel or "directory",
            timeout=timeout,
            podping_endpoints=[f.podping_url for f in settings.feeds if f.podping],
            podping_token=secret(*PODPING_TOKEN),
        )
