"""Which directories to tell that a feed changed: `ping_targets(feed_cfg, feed_url)`.

The pings themselves are rows of the "ping" channel kind (syndicator.channels.ping), under
its implicit channel "directory"; the names below are kept here for callers.
"""

from __future__ import annotations

from syndicator.channels.ping import PingChannel, notify_url, ping_kind
from syndicator.config import FeedConfig

__all__ = ["PingChannel", "notify_url", "ping_kind", "ping_targets"]


def ping_targets(feed_cfg: FeedConfig, feed_url: str) -> list[str]:
    """The URLs to call after `feed_url` changed, in order, without duplicates:
    each of `feed_cfg.hubs` (WebSub), then Podcast Index's pubnotify with ?url=<feed>
    when `feed_cfg.podcast_index` is on."""
    out: list[str] = []
    for hub in feed_cfg.hubs:
        hub = hub.strip()
        if hub and hub not in out:
            out.append(hub)
    if feed_cfg.podcast_index and feed_cfg.podcast_index_url.strip():
        out.append(notify_url(feed_cfg.podcast_index_url.strip(), feed_url))
    return out
