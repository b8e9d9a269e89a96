"""Building a channel from its [[channels]] config, with the kind its `type` names.

    make_channel(cfg) -> Channel
    prepare_channel(cfg) -> build()  the same checks now, the build (the client's import) later
    implicit_channels(settings) -> {name: Channel}   channels without [[channels]] (pings)

The installed kinds themselves are found by `syndicator.plugins` (entry points).

Each secret is SYNDICATOR_<NAME>_<KEY> (see `syndicator.config.secret`). A missing one
raises ConfigurationError naming every variable to set. No network I/O happens here:
channels log in or read instance data on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syndicator.channels.base import Channel, PermanentError
from syndicator.plugins import configurable, handle_kinds, kind, kinds, reserved_names

if TYPE_CHECKING:
    from syndicator.config import ChannelConfig

__all__ = [
    "ConfigurationError",
    "configurable",
    "env_var",
    "handle_kinds",
    "implicit_channels",
    "kind",
    "kinds",
    "make_channel",
    "prepare_channel",
    "reserved_names",
]


class ConfigurationError(PermanentError):
    """A channel can't be built as configured; the message says what to set."""

    def __init__(self, message: str, *, env: list[str] | None = None):
        super().__init__(message)
        self.env = env or []  # the environment variables that are missing


def env_var(channel: str, key: str) -> str:
    """The environment variable holding `key` for `channel` (as `secret()` reads it)."""
    from syndicator.config import env_name

    return f"SYNDICATOR_{env_name(channel)}_{env_name(key)}"


def _secrets(cfg: ChannelConfig, keys: tuple[str, ...]) -> dict[str, str]:
    from syndicator.config import secret

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


def prepare_channel(cfg: ChannelConfig, *, timeout: float | None = None) -> Callable[[], Channel]:
    """Everything `make_channel` checks (the timeout, the kind, its settings, every
    secret), leaving the build for later: the function returned builds the channel.

    Checking is cheap; building imports the network's library (a kind's client module),
    so a pass checks every channel at once and builds only those it needs."""
    seconds = timeout if timeout is not None else cfg.timeout.total_seconds()
    if seconds <= 0:
        raise ConfigurationError(f"channel {cfg.name!r}: timeout must be more than 0 seconds")
    try:
        k = kinds()[cfg.type]
    except KeyError:
        raise ConfigurationError(f"channel {cfg.name!r}: unknown type {cfg.type!r}") from None
    k.check(cfg)
    secrets = _secrets(cfg, k.secrets)

    def build() -> Channel:
        try:
            return k.build(cfg, secrets, seconds)
        except ValueError as exc:  # a library refusing a URL or a setting
            raise ConfigurationError(f"channel {cfg.name!r} ({cfg.type}): {exc}") from exc

    return build


def make_channel(cfg: ChannelConfig, *, timeout: float | None = None) -> Channel:
    """The channel for `cfg`; `timeout` (seconds) overrides cfg.timeout for every request."""
    return prepare_channel(cfg, timeout=timeout)()


def implicit_channels(settings: Any, *, timeout: float = 10.0) -> dict[str, Channel]:
    """The channels that exist without a [[channels]] entry (the feed pings), by name."""
    out: dict[str, Channel] = {}
    for k in kinds().values():
        if k.implicit_channel:
            ch = k.implicit(settings, timeout)
            if ch is not None:
                out[k.implicit_channel] = ch
    return out
