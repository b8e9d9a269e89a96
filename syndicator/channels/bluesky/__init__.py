"""Bluesky, the kind: config, secrets, length in graphemes, handles, socialInteract.

The channel that talks to the PDS (the atproto SDK) is `client.py`, imported by `build()`
only, so a pass that sends nothing to Bluesky never loads the SDK; grapheme and the SDK's
at:// URI parser are loaded the first time they are needed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from syndicator.channels.bluesky.shared import DEFAULT_LIMIT, UNKNOWN_POLICY
from syndicator.channels.kind import ChannelKind
from syndicator.channels.registry import ConfigurationError, env_var
from syndicator.config import ChannelConfig
from syndicator.textutil import grapheme_length

if TYPE_CHECKING:
    from syndicator.channels.bluesky.client import BlueskyChannel


_PROFILE_URL = re.compile(r"^https?://(?:www\.)?bsky\.app/profile/([^/?#\s]+)", re.IGNORECASE)
_SOURCE_URL = re.compile(r"^https?://(?:www\.)?bsky\.app/profile/([^/?#]+)")
_HANDLE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]")


def bluesky_handle(value: Any) -> str:
    """ "@name.bsky.social", "name.bsky.social" or a profile URL -> "name.bsky.social".

    Bluesky handles are domain names; anything else (a bare name, a DID) is "".
    """
    v = str(value or "").strip()
    m = _PROFILE_URL.match(v)
    v = (m.group(1) if m else v.lstrip("@")).lower()
    return v if _HANDLE.fullmatch(v) and len(v) <= 253 else ""


class BlueskyConfig(ChannelConfig):
    type: Literal["bluesky"]
    service: str = "https://bsky.social"
    handle: str = ""  # the login handle (password from SYNDICATOR_<NAME>_APP_PASSWORD)


def post_interact(cfg: Any, remote_id: str | None, remote_url: str | None) -> dict[str, str] | None:
    """podcast:socialInteract for a post: its at:// URI, the author's DID (from that URI)
    and their bsky.app profile (the handle of the post's URL, else the configured one)."""
    from atproto_core.exceptions import InvalidAtUriError
    from atproto_core.uri import AtUri  # ~0.1 s of imports: only when a feed is written

    raw = (remote_id or "").strip()
    try:
        uri = AtUri.from_str(raw) if raw.startswith("at://") else None
    except (InvalidAtUriError, ValueError):
        uri = None
    if uri is None or not (uri.host and uri.collection and uri.rkey):
        return None  # the SDK parses leniently: a post's URI has all three parts
    out = {"uri": str(uri), "accountId": uri.host}
    m = _PROFILE_URL.match(remote_url or "")
    handle = m.group(1) if m else bluesky_handle(getattr(cfg, "handle", ""))
    if handle:
        out["accountUrl"] = f"https://bsky.app/profile/{handle}"
    return out


class BlueskyKind(ChannelKind):
    """Grapheme clusters of the whole text (links count in full)."""

    name = "bluesky"
    interact_protocol = "atproto"
    threads = True  # a `reply` ref with root and parent (uri + cid)
    config = BlueskyConfig
    secrets = ("APP_PASSWORD",)
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    hashed_when_absent = True  # a Guest field before handles were a map
    card_size = (1200, 630)  # the link card's 1.91:1 picture

    def count(self, text: str) -> int:
        return grapheme_length(text)

    def source_handle(self, value: str) -> str:
        m = _SOURCE_URL.match(value)
        return (m.group(1) if m else value).lstrip("@")

    def handle(self, value: Any) -> str:
        return bluesky_handle(value)

    def check(self, cfg: Any) -> None:
        if not cfg.handle:
            raise ConfigurationError(
                f"channel {cfg.name!r} (bluesky) needs `handle`, the account to log in as, "
                'e.g. handle = "mypodcast.bsky.social"'
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> BlueskyChannel:
        from syndicator.channels.bluesky.client import BlueskyChannel

        return BlueskyChannel(
            cfg.name,
            handle=cfg.handle.lstrip("@"),
            app_password=secrets["APP_PASSWORD"],
            service=cfg.service or "https://bsky.social",
            timeout=timeout,
            limit=cfg.limit,
            password_env=env_var(cfg.name, "APP_PASSWORD"),
        )

    def endpoint(self, cfg: Any) -> str:
        return cfg.service + (f" as {cfg.handle}" if cfg.handle else "")

    def account(self, cfg: Any) -> str | None:
        return cfg.handle and f"{cfg.service.rstrip('/')}|{cfg.handle.lower()}"

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        return post_interact(cfg, remote_id, remote_url)
