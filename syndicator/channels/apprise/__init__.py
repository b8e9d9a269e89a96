"""Apprise, the kind: chat and mail targets (Discord, Slack, Telegram, e-mail...) config.

The channel that sends through Apprise is `client.py`, imported by `build()` only: Apprise
loads every one of its plugins when imported, which a pass that sends nothing skips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from syndicator.channels.apprise.shared import DISCORD_LIMIT, UNKNOWN_POLICY
from syndicator.channels.kind import ChannelKind
from syndicator.config import ChannelConfig

if TYPE_CHECKING:
    from syndicator.channels.apprise.client import AppriseChannel


class AppriseConfig(ChannelConfig):
    type: Literal["apprise"]
    url: str = ""  # the Apprise URL when it holds no secret; else SYNDICATOR_<NAME>_URL
    api_url: str | None = None  # send a plugin's requests to this host instead (tests, proxies)


class AppriseKind(ChannelKind):
    """Chat and mail through Apprise: code points; a person decides an `unknown` row."""

    name = "apprise"
    config = AppriseConfig
    secrets = ()  # the URL: from `url`, or SYNDICATOR_<NAME>_URL when it holds a secret
    default_limit = DISCORD_LIMIT
    unknown_policy = UNKNOWN_POLICY
    aliases = ("discord",)
    reads_counts = False  # a webhook tells nothing back

    def check(self, cfg: Any) -> None:
        from syndicator.channels.registry import ConfigurationError, env_var
        from syndicator.config import secret

        if not (cfg.url or secret(cfg.name, "URL")):
            var = env_var(cfg.name, "URL")
            raise ConfigurationError(
                f"channel {cfg.name!r} (apprise) needs an Apprise URL: set `url` in the config, "
                f"or {var} in the environment when the URL holds a token "
                f"(export {var}=discord://...)",
                env=[var],
            )

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> AppriseChannel:
        from syndicator.channels.apprise.client import AppriseChannel
        from syndicator.channels.base import PermanentError
        from syndicator.channels.registry import ConfigurationError
        from syndicator.config import secret

        url = cfg.url or secret(cfg.name, "URL")  # check() made sure there is one
        try:
            return AppriseChannel(
                cfg.name, url=url, timeout=timeout, limit=cfg.limit, api_base=cfg.api_url
            )
        except PermanentError as exc:
            raise ConfigurationError(exc.message) from exc

    def endpoint(self, cfg: Any) -> str:
        if cfg.url:
            # Apprise URLs often carry tokens in the path even when they shouldn't: show
            # the scheme only.
            scheme = urlsplit(cfg.url).scheme or "apprise"
            return f"{scheme}://…"
        return "(URL from the environment)"

    def account(self, cfg: Any) -> str | None:
        from syndicator.config import secret

        return cfg.url or secret(cfg.name, "url")
