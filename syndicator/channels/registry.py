"""The installed channel kinds, and building a channel from its [[channels]] config.

    kinds() -> {name: ChannelKind}    every kind in the `syndicator.channels` entry points
    kind(name) -> ChannelKind         one of them, by name or alias (KeyError when unknown)
    make_channel(cfg) -> Channel

Each secret is SYNDICATOR_<NAME>_<KEY> (see `syndicator.config.secret`). A missing one
raises ConfigurationError naming every variable to set. No network I/O happens here:
channels log in or read instance data on first use.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from syndicator.channels.base import Channel, PermanentError
from syndicator.channels.kind import ChannelKind

if TYPE_CHECKING:
    from syndicator.config import ChannelConfig

GROUP = "syndicator.channels"

log = logging.getLogger(__name__)


class ConfigurationError(PermanentError):
    """A channel can't be built as configured; the message says what to set."""

    def __init__(self, message: str, *, env: list[str] | None = None):
        super().__init__(message)
        self.env = env or []  # the environment variables that are missing


@functools.cache
def kinds() -> dict[str, ChannelKind]:
    """The installed kinds by name (loaded once per process; a broken plugin is skipped
    with an error in the log rather than taking every channel down)."""
    out: dict[str, ChannelKind] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in out:
            continue  # the same kind installed twice (an editable and a built copy)
        try:
            cls = ep.load()
            obj = cls() if isinstance(cls, type) else cls
        except Exception as exc:  # a third-party package can fail in any way
            log.error("channel kind %r (%s) could not be loaded: %s", ep.name, ep.value, exc)
            continue
        if not isinstance(obj, ChannelKind) or obj.name != ep.name:
            log.error(
                "channel kind %r (%s) is not a ChannelKind named %r; skipped",
                ep.name, ep.value, ep.name,
            )  # fmt: skip
            continue
        out[ep.name] = obj
    return out


def kind(name: str) -> ChannelKind:
    """The kind called `name` (or one of its aliases), case-insensitively."""
    key = name.lower()
    found = kinds()
    if key in found:
        return found[key]
    for k in found.values():
        if key in k.aliases:
            return k
    raise KeyError(name)


def configurable() -> dict[str, ChannelKind]:
    """The kinds a [[channels]] entry may name."""
    return {n: k for n, k in kinds().items() if k.config is not None}


def handle_kinds() -> list[ChannelKind]:
    """The kinds whose guests have handles, in name order."""
    return [k for k in kinds().values() if k.has_handles]


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


def make_channel(cfg: ChannelConfig, *, timeout: float | None = None) -> Channel:
    """The channel for `cfg`; `timeout` (seconds) overrides cfg.timeout for every request."""
    seconds = timeout if timeout is not None else cfg.timeout.total_seconds()
    if seconds <= 0:
        raise ConfigurationError(f"channel {cfg.name!r}: timeout must be more than 0 seconds")
    try:
        k = kinds()[cfg.type]
    except KeyError:
        raise ConfigurationError(f"channel {cfg.name!r}: unknown type {cfg.type!r}") from None
    k.check(cfg)
    try:
        return k.build(cfg, _secrets(cfg, k.secrets), seconds)
    except ValueError as exc:  # a library refusing a URL or a setting
        raise ConfigurationError(f"channel {cfg.name!r} ({cfg.type}): {exc}") from exc


def implicit_channels(settings: Any, *, timeout: float = 10.0) -> dict[str, Channel]:
    """The channels that exist without a [[channels]] entry (the feed pings), by name."""
    out: dict[str, Channel] = {}
    for k in kinds().values():
        if k.implicit_channel:
            ch = k.implicit(settings, timeout)
            if ch is not None:
                out[k.implicit_channel] = ch
    return out


def reserved_names() -> dict[str, str]:
    """Channel names the installed kinds keep for themselves -> what they are."""
    return {k.implicit_channel: k.implicit_purpose for k in kinds().values() if k.implicit_channel}
