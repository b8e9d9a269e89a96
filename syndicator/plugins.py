"""The installed channel kinds, found through the `syndicator.channels` entry points.

    kinds() -> {name: kind}      every kind that loaded (built-ins are entry points too)
    kind(name) -> kind           by name or alias, case-insensitively (KeyError if none)

This module imports nothing of syndicator, not even for type hints, so any layer
(config, sources, store) may ask which kinds are installed without importing the
channels themselves. A kind is a `syndicator.channels.kind.ChannelKind` (docs/plugins.md);
`Kind` below is what this module and its callers outside channels/ read of one.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

GROUP = "syndicator.channels"

log = logging.getLogger(__name__)


@runtime_checkable
class Kind(Protocol):
    """What a loaded kind must have (channels.kind.ChannelKind has all of it; see there
    for what each member means). A loaded object without one of them is skipped."""

    name: str
    config: type[Any] | None
    secrets: tuple[str, ...]
    default_limit: int
    unknown_policy: str
    has_handles: bool
    aliases: tuple[str, ...]
    implicit_channel: str | None
    implicit_purpose: str
    templates: Path | None

    def count(self, text: str) -> int: ...

    def source_handle(self, value: str) -> str: ...

    def handle(self, value: Any) -> str: ...

    def build(self, cfg: Any, secrets: dict[str, str], timeout: float) -> Any: ...


@functools.cache
def kinds() -> dict[str, Kind]:
    """The installed kinds by name (loaded once per process; a broken plugin is skipped
    with an error in the log rather than taking every channel down)."""
    out: dict[str, Kind] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in out:
            continue  # the same kind installed twice (an editable and a built copy)
        try:
            cls = ep.load()
            obj = cls() if isinstance(cls, type) else cls
        except Exception as exc:  # a third-party package can fail in any way
            log.error("channel kind %r (%s) could not be loaded: %s", ep.name, ep.value, exc)
            continue
        if not isinstance(obj, Kind) or obj.name != ep.name:
            log.error(
                "channel kind %r (%s) is not a ChannelKind named %r; skipped",
                ep.name, ep.value, ep.name,
            )  # fmt: skip
            continue
        out[ep.name] = obj
    return out


def kind(name: str) -> Kind:
    """The kind called `name` (or one of its aliases), case-insensitively."""
    key = name.lower()
    found = kinds()
    if key in found:
        return found[key]
    for k in found.values():
        if key in k.aliases:
            return k
    raise KeyError(name)


def configurable() -> dict[str, Kind]:
    """The kinds a [[channels]] entry may name."""
    return {n: k for n, k in kinds().items() if k.config is not None}


def handle_kinds() -> list[Kind]:
    """The kinds whose guests have handles, in name order."""
    return [k for k in kinds().values() if k.has_handles]


def reserved_names() -> dict[str, str]:
    """Channel names the installed kinds keep for themselves -> what they are."""
    return {k.implicit_channel: k.implicit_purpose for k in kinds().values() if k.implicit_channel}
