"""Threads, the kind: config, secrets, length as Meta counts it, handles.

The channel that talks to the Threads API is `client.py`, imported by `build()` only, so a
pass that sends nothing to Threads never loads it; grapheme and emoji are loaded the first
time a text is counted.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from syndicator.channels import _net
from syndicator.channels.kind import ChannelKind
from syndicator.channels.registry import ConfigurationError
from syndicator.channels.threads.shared import DEFAULT_API_URL, DEFAULT_LIMIT, UNKNOWN_POLICY
from syndicator.config import ChannelConfig, secret

if TYPE_CHECKING:
    from syndicator.channels.threads.client import ThreadsChannel


# Threads usernames are Instagram's: letters, digits, "." and "_", at most 30.
_USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")
_PROFILE_URL = re.compile(
    r"^https?://(?:www\.)?threads\.(?:net|com)/@([A-Za-z0-9._]{1,30})/?(?:[?#].*)?$",
    re.IGNORECASE,
)


def threads_handle(value: Any) -> str:
    """ "@name", "name" or a profile URL (threads.net or threads.com) -> "name"; else ""."""
    v = str(value or "").strip()
    m = _PROFILE_URL.match(v)
    v = (m.group(1) if m else v.lstrip("@")).lower()
    if not _USERNAME.fullmatch(v) or v.startswith(".") or v.endswith(".") or ".." in v:
        return ""
    return v


def threads_count(text: str) -> int:
    """Threads' length: characters (grapheme clusters), an emoji as its UTF-8 bytes."""
    if text.isascii() and "\r" not in text:
        return len(text)  # no emoji and one cluster per character (see grapheme_length)
    import emoji  # only once a text is counted
    import grapheme

    return sum(
        len(g.encode("utf-8")) if emoji.emoji_count(g) else 1 for g in grapheme.graphemes(text)
    )


class ThreadsConfig(ChannelConfig):
    type: Literal["threads"]
    api_url: str = DEFAULT_API_URL
    user_id: str = ""  # the Threads user id (digits) the token belongs to

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, v: str) -> str:
        v = v.strip()
        if v and not (v.isdigit() or v == "me"):
            raise ValueError(
                f"user_id {v!r} is not a Threads user id: use the digits that "
                'GET /me?fields=id answers with the token (or "me")'
            )
        return v

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        return _net.http_url(v, DEFAULT_API_URL)


class ThreadsKind(ChannelKind):
    """Threads: 500 characters, an emoji counted as its UTF-8 bytes (Meta's rule)."""

    name = "threads"
    config = ThreadsConfig
    secrets = ("ACCESS_TOKEN",)
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    # Threads is no podcast:socialInteract protocol, and the API tells no ActivityPub id
    # for a post (fediverse sharing is the account's choice): no comment thread to name.
    interact_protocol = None
    threads = True  # reply_to_id when creating the container

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        return None

    def count(self, text: str) -> int:
        return threads_count(text)

    def source_handle(self, value: str) -> str:
        m = _PROFILE_URL.match(value.strip())
        return (m.group(1) if m else value.strip()).lstrip("@")

    def handle(self, value: Any) -> str:
        return threads_handle(value)

    def check(self, cfg: Any) -> None:
        if not cfg.user_id:
            raise ConfigurationError(
                f"channel {cfg.name!r} (threads) needs `user_id`, the Threads user id the "
                'access token belongs to, e.g. user_id = "17841400000000000" '
                "(GET /me?fields=id with the token tells it)"
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> ThreadsChannel:
        from syndicator.channels.threads.client import ThreadsChannel

        return ThreadsChannel(
            cfg.name,
            user_id=cfg.user_id,
            access_token=secrets["ACCESS_TOKEN"],
            api_url=cfg.api_url or DEFAULT_API_URL,
            timeout=timeout,
            limit=cfg.limit,
        )

    def endpoint(self, cfg: Any) -> str:
        return f"{cfg.api_url} as user {cfg.user_id}" if cfg.user_id else cfg.api_url

    def account(self, cfg: Any) -> str | None:
        # The numeric user id names the account (tokens are renewed every 60 days);
        # "me" does not, so then the token does.
        if cfg.user_id and cfg.user_id != "me":
            return f"{cfg.api_url.rstrip('/')}|{cfg.user_id}"
        token = secret(cfg.name, "access_token")
        return token and f"{cfg.api_url.rstrip('/')}|{token}"
