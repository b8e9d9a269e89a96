"""X (Twitter), the kind: config, secrets, weighted length, handles, socialInteract.

The channel that talks to X (tweepy) is `client.py`, imported by `build()` only: a pass
that sends nothing to X never loads tweepy, and twitter_text is loaded the first time a
text is counted (rendering happens only when something is planned).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from syndicator.channels.kind import ChannelKind
from syndicator.channels.twitter.shared import DEFAULT_LIMIT, UNKNOWN_POLICY
from syndicator.config import ChannelConfig, secret

if TYPE_CHECKING:
    from syndicator.channels.twitter.client import TwitterChannel


_TWITTER_URL = re.compile(
    r"^(?:https?://)?(?:www\.|mobile\.)?(?:twitter|x)\.com/@?([A-Za-z0-9_]+)", re.IGNORECASE
)
_TWITTER = re.compile(r"[A-Za-z0-9_]{1,15}")
_PROFILE_URL = re.compile(r"^https?://(?:www\.)?(?:twitter\.com|x\.com)/([^/?#]+)")
# a tweet's page: https://x.com/<name>/status/<id> (or /i/web/status/<id>)
_TWEET_URL = re.compile(
    r"^(https?://(?:www\.)?(?:twitter\.com|x\.com))/([^/?#]+)/(?:web/)?status/\d+"
)


def twitter_handle(value: Any) -> str:
    """ "@name", "name" or a profile URL -> "name"; "" when it is not a valid X handle."""
    v = str(value or "").strip()
    m = _TWITTER_URL.match(v)
    v = m.group(1) if m else v.lstrip("@")
    return v if _TWITTER.fullmatch(v) else ""


class TwitterConfig(ChannelConfig):
    type: Literal["twitter"]
    api_url: str = "https://api.x.com"
    # the account's @name: tweets are linked as x.com/<username>/status/<id> and the feed's
    # podcast:socialInteract names the account. Unset: x.com/i/web/status/<id> and no
    # account (learning it costs an API call that X's free tier counts)
    username: str | None = None

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = twitter_handle(value)
        if not name:
            raise ValueError(
                f"username {value!r} is not an X user name (1-15 letters, digits or _, "
                'e.g. "@podbot" or "https://x.com/podbot")'
            )
        return name


def tweet_interact(
    remote_id: str | None, remote_url: str | None, username: str | None = None
) -> dict[str, str] | None:
    """podcast:socialInteract for a tweet: its URL as the uri (made from the id when none
    was stored, with the channel's `username` when it has one), the account as `@name` and
    its profile page when the URL names it."""
    url = (remote_url or "").strip()
    tid = (remote_id or "").strip()
    if username and tid.isdigit() and (not url or "/i/web/status/" in url):
        url = f"https://x.com/{username}/status/{tid}"
    if not url and tid.isdigit():
        url = f"https://x.com/i/web/status/{tid}"
    m = _TWEET_URL.match(url)
    if not m:
        return None
    out = {"uri": url}
    user = m.group(2)
    if user.lower() != "i" and _TWITTER.fullmatch(user):  # /i/web/status/: no account named
        out["accountId"] = "@" + user
        out["accountUrl"] = f"{m.group(1)}/{user}"
    return out


class TwitterKind(ChannelKind):
    """X: twitter-text v3 weighted length (URLs 23, CJK and emoji 2)."""

    name = "twitter"
    config = TwitterConfig
    secrets = ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET")
    default_limit = DEFAULT_LIMIT
    unknown_policy = UNKNOWN_POLICY
    has_handles = True
    hashed_when_absent = True  # a Guest field before handles were a map
    aliases = ("x",)
    interact_protocol = "twitter"
    threads = True  # in_reply_to_tweet_id

    def count(self, text: str) -> int:
        from twitter_text import parse_tweet  # ~0.5 s of imports: only once a text is counted

        return parse_tweet(text).weightedLength

    def source_handle(self, value: str) -> str:
        m = _PROFILE_URL.match(value)
        return (m.group(1) if m else value).lstrip("@")

    def handle(self, value: Any) -> str:
        return twitter_handle(value)

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> TwitterChannel:
        from syndicator.channels.twitter.client import TwitterChannel

        return TwitterChannel(
            cfg.name,
            api_key=secrets["API_KEY"],
            api_secret=secrets["API_SECRET"],
            access_token=secrets["ACCESS_TOKEN"],
            access_token_secret=secrets["ACCESS_TOKEN_SECRET"],
            api_url=cfg.api_url or "https://api.x.com",
            timeout=timeout,
            limit=cfg.limit,
            username=cfg.username,
        )

    def endpoint(self, cfg: Any) -> str:
        return cfg.api_url

    def account(self, cfg: Any) -> str | None:
        token = secret(cfg.name, "access_token")
        return token and f"{cfg.api_url.rstrip('/')}|{token}"

    def social_interact(
        self, cfg: Any, remote_id: str | None, remote_url: str | None
    ) -> dict[str, str] | None:
        return tweet_interact(remote_id, remote_url, getattr(cfg, "username", None))
