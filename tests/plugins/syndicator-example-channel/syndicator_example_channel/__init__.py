"""An example channel kind for syndicator: POSTs each announcement as JSON to `endpoint`.

    [[channels]]
    name = "team"
    type = "example"
    endpoint = "https://hooks.example.org/announce"
    # secret: SYNDICATOR_TEAM_TOKEN, sent as `Authorization: Bearer <token>`

Guests' handles come from front matter `guest_example: "@ann"` (or `guest_2_example`) and
from the config's [handles] table (`"Ann Lee" = { example = "ann" }`); templates mention
them as `@ann@example`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import httpx

from syndicator.channels.base import (
    PermanentError,
    Post,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.kind import ChannelKind
from syndicator.config import ChannelConfig


class ExampleConfig(ChannelConfig):
    """The keys of an `example` channel, beside the common ones (filters, pacing...)."""

    type: Literal["example"]
    endpoint: str = ""  # where announcements are POSTed


class ExampleChannel:
    """Implements syndicator.channels.base.Channel."""

    type = "example"
    unknown_policy = "none"  # no idempotency key, no read-back: a person decides

    def __init__(self, name: str, *, endpoint: str, token: str, timeout: float, limit: int):
        self.name = name
        self._endpoint = endpoint
        self._limit = limit
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {token}"})

    def limit(self) -> int:
        return self._limit

    def send(self, post: Post) -> Sent:
        try:
            resp = self._client.post(
                self._endpoint, json={"text": post.text, "url": post.url, "kind": post.kind}
            )
        except httpx.ConnectError as exc:  # nothing was sent
            raise TransientError(f"{self._endpoint}: {exc}") from exc
        except httpx.HTTPError as exc:  # it may have arrived
            raise UnknownOutcome(f"{self._endpoint}: {exc}") from exc
        if resp.status_code == 429:
            raise TransientError("rate limited", status=429)
        if resp.status_code >= 500:
            raise UnknownOutcome(f"HTTP {resp.status_code}", status=resp.status_code)
        if resp.status_code >= 400:
            raise PermanentError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        return Sent(remote_id=resp.headers.get("x-post-id"))

    def reconcile(self, post: Post) -> Sent | None:
        raise UnknownOutcome("this endpoint can't be asked whether a post arrived")

    def close(self) -> None:
        self._client.close()


class ExampleKind(ChannelKind):
    name = "example"
    config = ExampleConfig
    secrets = ("TOKEN",)  # SYNDICATOR_<CHANNEL>_TOKEN
    default_limit = 200  # code points (the default `count`)
    unknown_policy = ExampleChannel.unknown_policy
    has_handles = True
    templates = Path(__file__).parent / "templates"  # example.j2

    def handle(self, value: Any) -> str:
        v = str(value or "").strip().lstrip("@").lower()
        return v if v.isidentifier() else ""

    def mention(self, handle: str) -> str:
        return f"@{handle}@example" if handle else ""

    def check(self, cfg: Any) -> None:
        from syndicator.channels.registry import ConfigurationError

        if not cfg.endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"channel {cfg.name!r} (example) needs `endpoint`, an http(s) URL"
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> ExampleChannel:
        return ExampleChannel(
            cfg.name,
            endpoint=cfg.endpoint,
            token=secrets["TOKEN"],
            timeout=timeout,
            limit=cfg.limit or self.default_limit,
        )

    def endpoint(self, cfg: Any) -> str:
        return cfg.endpoint

    def account(self, cfg: Any) -> str | None:
        return cfg.endpoint or None
