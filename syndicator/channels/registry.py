"""Build a channel from its [[channels]] config; secrets come from the environment.

    make_channel(cfg) -> Channel

Each secret is SYNDICATOR_<NAME>_<KEY> (see `syndicator.config.secret`). A missing one
raises ConfigurationError naming every variable to set. No network I/O happens here:
channels log in or read instance data on first use.
"""

from __future__ import annotations

from syndicator.channels.base import Channel, PermanentError
from syndicator.config import ChannelConfig, env_name, secret

# The secrets each channel type reads, in the order they are reported.
SECRETS: dict[str, tuple[str, ...]] = {
    "twitter": ("API_KEY", "API_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"),
    "mastodon": ("ACCESS_TOKEN",),
    "bluesky": ("APP_PASSWORD",),
    "apprise": (),  # URL: from `url`, or SYNDICATOR_<NAME>_URL when it holds a secret
}


class ConfigurationError(PermanentError):
    """A channel can't be built as configured; the message says what to set."""

    def __init__(self, message: str, *, env: list[str] | None = None):
        super().__init__(message)
        self.env = env or []  # the environment variables that are missing


def env_var(channel: str, key: str) -> str:
    """The environment variable holding `key` for `channel` (as `secret()` reads it)."""
    return f"SYNDICATOR_{env_name(channel)}_{env_name(key)}"


def _secrets(cfg: ChannelConfig, keys: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[str] = []
    for key in keys:
        value = secret(cfg.name, key)
        if value:
            found[key] = value
        else:
            missing.append(env_var(cfg.name, key))
    if missing:
        names = ", ".join(missing)
        raise ConfigurationError(
            f"channel {cfg.name!r} ({cfg.type}) needs {names} in the environment "
            f"(export {missing[0]}=...; secrets are never read from the config file)",
            env=missing,
        )
    return found


def make_channel(cfg: ChannelConfig, *, timeout: float | None = None) -> Channel:
    """The channel for `cfg`; `timeout` (seconds) overrides cfg.timeout for every request."""
    seconds = timeout if timeout is not None else cfg.timeout.total_seconds()
    if seconds <= 0:
        raise ConfigurationError(f"channel {cfg.name!r}: timeout must be more than 0 seconds")
    try:
        return _build(cfg, seconds)
    except ValueError as exc:  # a library refusing a URL or a setting
        raise ConfigurationError(f"channel {cfg.name!r} ({cfg.type}): {exc}") from exc


def _build(cfg: ChannelConfig, seconds: float) -> Channel:
    if cfg.type == "twitter":
        from syndicator.channels.twitter import TwitterChannel

        s = _secrets(cfg, SECRETS["twitter"])
        return TwitterChannel(
            cfg.name,
            api_key=s["API_KEY"],
            api_secret=s["API_SECRET"],
            access_token=s["ACCESS_TOKEN"],
            access_token_secret=s["ACCESS_TOKEN_SECRET"],
            api_url=cfg.api_url or "https://api.x.com",
            timeout=seconds,
            limit=cfg.limit,
        )
    if cfg.type == "mastodon":
        from syndicator.channels.mastodon import MastodonChannel

        if not cfg.instance:
            raise ConfigurationError(
                f"channel {cfg.name!r} (mastodon) needs `instance`, the server's URL, "
                'e.g. instance = "https://mastodon.social"'
            )
        s = _secrets(cfg, SECRETS["mastodon"])
        return MastodonChannel(
            cfg.name,
            instance=cfg.instance,
            access_token=s["ACCESS_TOKEN"],
            timeout=seconds,
            limit=cfg.limit,
        )
    if cfg.type == "bluesky":
        from syndicator.channels.bluesky import BlueskyChannel

        if not cfg.handle:
            raise ConfigurationError(
                f"channel {cfg.name!r} (bluesky) needs `handle`, the account to log in as, "
                'e.g. handle = "mypodcast.bsky.social"'
            )
        s = _secrets(cfg, SECRETS["bluesky"])
        return BlueskyChannel(
            cfg.name,
            handle=cfg.handle.lstrip("@"),
            app_password=s["APP_PASSWORD"],
            service=cfg.service or "https://bsky.social",
            timeout=seconds,
            limit=cfg.limit,
            password_env=env_var(cfg.name, "APP_PASSWORD"),
        )
    if cfg.type == "apprise":
        from syndicator.channels.apprise import AppriseChannel

        url = cfg.url or secret(cfg.name, "URL")
        if not url:
            var = env_var(cfg.name, "URL")
            raise ConfigurationError(
                f"channel {cfg.name!r} (apprise) needs an Apprise URL: set `url` in the config, "
                f"or {var} in the environment when the URL holds a token "
                f"(export {var}=discord://...)",
                env=[var],
            )
        # api_url is X's by default; only an explicit one redirects an Apprise plugin's host.
        api_base = cfg.api_url if "api_url" in cfg.model_fields_set else None
        try:
            return AppriseChannel(
                cfg.name, url=url, timeout=seconds, limit=cfg.limit, api_base=api_base
            )
        except PermanentError as exc:
            raise ConfigurationError(exc.message) from exc
    raise ConfigurationError(f"channel {cfg.name!r}: unknown type {cfg.type!r}")
