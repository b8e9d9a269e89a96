"""LinkedIn, the kind: config, secrets, length of the "little text", mentions.

The channel that talks to the Posts API (linkedin-api-client) is `client.py`, imported by
`build()` only, so a pass that sends nothing to LinkedIn never loads it. The little-text
rules are here because counting needs them: `count` is the length of the escaped text in
UTF-16 code units (see client.py for how it is sent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import field_validator

from syndicator.channels import _net
from syndicator.channels.kind import ChannelKind
from syndicator.channels.linkedin.shared import (
    _AUTHOR,
    _VERSION,
    DEFAULT_API_URL,
    DEFAULT_LIMIT,
    DEFAULT_VERSION,
    UNKNOWN_POLICY,
    little_text,
    utf16_length,
)
from syndicator.channels.registry import ConfigurationError, env_var
from syndicator.config import ChannelConfig

if TYPE_CHECKING:
    from syndicator.channels.linkedin.client import LinkedInChannel


class LinkedInConfig(ChannelConfig):
    type: Literal["linkedin"]
    author: str = ""  # "urn:li:person:…" or "urn:li:organization:…"
    api_url: str = DEFAULT_API_URL
    version: str = DEFAULT_VERSION  # LinkedIn-Version, YYYYMM

    @field_validator("author")
    @classmethod
    def _author(cls, v: str) -> str:
        v = v.strip()
        if v and not _AUTHOR.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a LinkedIn person or organization URN: use "
                '"urn:li:person:<id>" (the member\'s id from /v2/userinfo `sub`) or '
                '"urn:li:organization:<id>" (the number in the page\'s admin URL)'
            )
        return v

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        v = v.strip()
        if not _VERSION.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a LinkedIn API version: use the month as YYYYMM "
                f'(e.g. "{DEFAULT_VERSION}") or YYYYMM.RR'
            )
        return v

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        return _net.http_url(v, DEFAULT_API_URL)


class LinkedInKind(ChannelKind):
    """Little text in UTF-16 code units (reserved characters escaped, #tags as templates)."""

    name = "linkedin"
    config = LinkedInConfig
    secrets = ("ACCESS_TOKEN",)
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    # podcast:socialInteract has no protocol for LinkedIn posts.
    interact_protocol: ClassVar[str | None] = None
    # No reply threads: the Posts API makes posts, not replies; a comment (socialActions)
    # is another resource with its own permission and is not shown as a thread.
    threads = False

    def count(self, text: str) -> int:
        return utf16_length(little_text(text))

    def handle(self, value: Any) -> str:
        """A person or organization URN; anything else (a profile URL, a vanity name)
        can't be mentioned through the API, so the guest's plain name is shown."""
        v = str(value or "").strip()
        return v if _AUTHOR.fullmatch(v) else ""

    def mention_for(self, handle: str, name: str) -> str:
        # The Posts API's mention element needs the entity's name as well as its URN.
        name = " ".join(name.split())
        if not handle or not name or any(c in "[]()\\" for c in name):
            return ""
        return f"@[{name}]({handle})"

    def mention(self, handle: str) -> str:
        return ""  # a URN alone is no readable mention; see mention_for

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        return None  # no podcast:socialInteract protocol covers LinkedIn

    def check(self, cfg: Any) -> None:
        if not cfg.author:
            raise ConfigurationError(
                f"channel {cfg.name!r} (linkedin) needs `author`, who posts: "
                'author = "urn:li:person:<id>" or "urn:li:organization:<id>"'
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> LinkedInChannel:
        from syndicator.channels.linkedin.client import LinkedInChannel

        return LinkedInChannel(
            cfg.name,
            author=cfg.author,
            access_token=secrets["ACCESS_TOKEN"],
            api_url=cfg.api_url or DEFAULT_API_URL,
            version=cfg.version,
            timeout=timeout,
            limit=cfg.limit,
            token_env=env_var(cfg.name, "ACCESS_TOKEN"),
        )

    def endpoint(self, cfg: Any) -> str:
        return cfg.api_url + (f" as {cfg.author}" if cfg.author else "")

    def account(self, cfg: Any) -> str | None:
        # The author URN is the account; a refreshed token (every 60 days) is the same one.
        return cfg.author and f"{cfg.api_url.rstrip('/')}|{cfg.author}"
