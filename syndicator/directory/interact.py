"""podcast:socialInteract: an episode's announcement is its comment thread in the feed.

For each channel a feed names (`social_interact`, in priority order; by default every
channel whose kind has an `interact_protocol`, in config order), the first post of the
episode sent there becomes one tag. The kind says what the tag holds
(`ChannelKind.social_interact`); this module never names a network. The first post is the
one kept: a later reshare of the episode on the same channel does not replace it, so an
app that stored the thread's uri keeps finding it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlmodel import Session

from syndicator.config import FeedConfig, Settings
from syndicator.directory.check import bad_scheme
from syndicator.directory.extensions import SocialInteract
from syndicator.directory.rss import xml_text
from syndicator.store import deliveries as store_deliveries

# The outbox's words for a sent post and for the rows that post (announce/outbox.py owns
# them; the directory layer may not import it).
SENT = "sent"
POST_KINDS = ("announce", "reshare")
# uri schemes a root post may have besides http(s) (check.py allows the same)
_URI_SCHEMES = ("at", "nostr")


def _clean(value: Any) -> str:
    return xml_text(value).strip()


def _usable(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://")) or bad_scheme(uri) in _URI_SCHEMES


def social_interacts(
    s: Session, settings: Settings, feed: FeedConfig, episode_ids: Collection[int] | None = None
) -> tuple[dict[int, list[SocialInteract]], list[str]]:
    """Each episode's socialInteract tags (by episode id, in priority order), and the
    problems found (a kind that failed or gave an unusable uri: that tag is left out).
    `episode_ids`: only these episodes (those the feed shows; the kinds cost ~50 µs a post)."""
    channels = settings.social_interact_channels(feed)
    if not channels:
        return {}, []
    from syndicator.plugins import kinds

    found = kinds()
    # channel name -> (priority, its config, its kind, the protocol)
    wanted: dict[str, tuple[int, Any, Any, str]] = {}
    for priority, cfg in enumerate(channels, 1):
        kind = found.get(cfg.type)
        protocol = getattr(kind, "interact_protocol", None)
        if kind is not None and protocol:
            wanted[cfg.name] = (priority, cfg, kind, protocol)
    posts = store_deliveries.first_sent_posts(s, list(wanted), SENT, POST_KINDS)
    out: dict[int, list[SocialInteract]] = {}
    problems: list[str] = []
    for (episode_id, channel), (remote_id, remote_url) in posts.items():
        if episode_ids is not None and episode_id not in episode_ids:
            continue
        priority, cfg, kind, protocol = wanted[channel]
        try:
            got = kind.social_interact(cfg, remote_id, remote_url)
        except Exception as exc:  # a third-party kind can fail in any way
            problems.append(
                f"feed {feed.name!r}: channel {cfg.name!r} could not say the "
                f"socialInteract of episode {episode_id}'s post ({exc}); left out"
            )
            continue
        tag = _tag(protocol, priority, got)
        if tag is None:
            if got:  # None from the kind means "can't be said": nothing to report
                problems.append(
                    f"feed {feed.name!r}: channel {cfg.name!r} gave episode {episode_id}'s "
                    f"post the uri {str(got.get('uri'))[:80]!r}, which is not a URL an "
                    "app can open; its socialInteract is left out"
                )
            continue
        out.setdefault(episode_id, []).append(tag)
    for tags in out.values():
        tags.sort(key=lambda t: t.priority or 0)
    return out, problems


def _tag(protocol: str, priority: int, got: dict[str, str] | None) -> SocialInteract | None:
    """The tag for what the kind said, or None when its uri is missing or unsafe."""
    if not got:
        return None
    uri = _clean(got.get("uri"))
    if not uri or not _usable(uri):
        return None
    account_url = _clean(got.get("accountUrl")) or None
    if account_url and bad_scheme(account_url) is not None:
        account_url = None  # only http(s) profile pages; the tag itself stays
    return SocialInteract(
        protocol=_clean(protocol),
        uri=uri,
        account_id=_clean(got.get("accountId")) or None,
        account_url=account_url,
        priority=priority,
    )
