"""Mastodon, the kind: config, secrets, length as Mastodon counts it, handles, socialInteract.

The channel that talks to the server (Mastodon.py) is `client.py`, imported by `build()`
only, so a pass that sends nothing to Mastodon never loads it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from syndicator.channels.kind import ChannelKind
from syndicator.channels.mastodon.shared import DEFAULT_LIMIT, UNKNOWN_POLICY
from syndicator.channels.registry import ConfigurationError
from syndicator.config import ChannelConfig, secret
from syndicator.textutil import grapheme_length

if TYPE_CHECKING:
    from syndicator.channels.mastodon.client import MastodonChannel


# Mastodon counts every link as this many characters, whatever its real length.
URL_LENGTH = 23
# Mastodon extracts only links with a scheme; what may precede one follows twitter-text.
_COUNT_URL = re.compile(r"(?<![A-Za-z0-9@$#＃＠])https?://[^\s<>\"]+", re.IGNORECASE)
# Account::MENTION_RE: `@user` with an optional `@domain`, not inside a word or a URL path.
_COUNT_MENTION = re.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?", re.IGNORECASE
)
_MASTO_USER = r"[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*"
_MASTO_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}"
_HANDLE = re.compile(rf"@?({_MASTO_USER})@({_MASTO_DOMAIN})")
_PROFILE_URL = re.compile(rf"^https?://({_MASTO_DOMAIN})/@({_MASTO_USER})/?$", re.IGNORECASE)
# A status's page (/@user/<id>) or its ActivityPub URI (/users/user/statuses/<id>).
_STATUS_PATH = re.compile(rf"^/(?:@({_MASTO_USER})|users/({_MASTO_USER})/statuses)/[^/]+/?$")


def mastodon_countable(text: str) -> str:
    """The text Mastodon measures: URLs as 23 placeholders, mentions without their domain."""
    from syndicator.textutil import trim_url

    spans: list[tuple[int, int, str]] = []
    for m in _COUNT_URL.finditer(text):
        url = trim_url(m.group(0))
        if "://" in url and len(url) > url.index("://") + 3:
            spans.append((m.start(), m.start() + len(url), "x" * URL_LENGTH))
    for m in _COUNT_MENTION.finditer(text):
        if any(s < m.end() and m.start() < e for s, e, _ in spans):
            continue  # overlapping entities: the earlier (the URL) wins
        spans.append((m.start(), m.end(), "@" + m.group(1)))
    spans.sort()
    out: list[str] = []
    pos = 0
    for start, end, repl in spans:
        out.append(text[pos:start])
        out.append(repl)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mastodon_handle(value: Any) -> str:
    """ "user@instance", "@user@instance" or a profile URL -> "@user@instance".

    A name without an instance is not a Mastodon mention: "".
    """
    v = str(value or "").strip()
    m = _PROFILE_URL.match(v)
    if m:
        return f"@{m.group(2)}@{m.group(1).lower()}"
    m = _HANDLE.fullmatch(v)
    return f"@{m.group(1)}@{m.group(2).lower()}" if m else ""


class MastodonConfig(ChannelConfig):
    type: Literal["mastodon"]
    instance: str = ""  # the server's URL, e.g. "https://mastodon.social"


def status_interact(remote_url: str | None) -> dict[str, str] | None:
    """podcast:socialInteract for a status: its URL as the uri, the poster as
    `@user@host` and their profile page (from the URL's path); None without a URL."""
    url = (remote_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    out = {"uri": url}
    m = _STATUS_PATH.match(parts.path)
    if m:
        user = m.group(1) or m.group(2)
        out["accountId"] = f"@{user}@{parts.netloc.lower()}"
        out["accountUrl"] = f"{parts.scheme}://{parts.netloc}/@{user}"
    return out


class MastodonKind(ChannelKind):
    """Grapheme clusters, every http(s) URL 23, a mention `@user@domain` counts as `@user`
    (Mastodon's StatusLengthValidator)."""

    name = "mastodon"
    interact_protocol = "activitypub"
    threads = True  # in_reply_to_id
    config = MastodonConfig
    secrets = ("ACCESS_TOKEN",)
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    hashed_when_absent = True  # a Guest field before handles were a map

    def count(self, text: str) -> int:
        return grapheme_length(mastodon_countable(text))

    def handle(self, value: Any) -> str:
        return mastodon_handle(value)

    def mention(self, handle: str) -> str:
        return handle  # already "@user@instance"

    def check(self, cfg: Any) -> None:
        if not cfg.instance:
            raise ConfigurationError(
                f"channel {cfg.name!r} (mastodon) needs `instance`, the server's URL, "
                'e.g. instance = "https://mastodon.social"'
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> MastodonChannel:
        from syndicator.channels.mastodon.client import MastodonChannel

        return MastodonChannel(
            cfg.name,
            instance=cfg.instance,
            access_token=secrets["ACCESS_TOKEN"],
            timeout=timeout,
            limit=cfg.limit,
        )

    def endpoint(self, cfg: Any) -> str:
        return cfg.instance

    def account(self, cfg: Any) -> str | None:
        token = secret(cfg.name, "access_token")
        return token and f"{cfg.instance.rstrip('/')}|{token}"

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        # send() stores the status's url (else its uri): either is a valid root post
        return status_interact(remote_url)
