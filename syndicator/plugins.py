"""The installed channel kinds, found through the `syndicator.channels` entry points.

    kinds() -> {name: kind}      every kind that loaded (built-ins are entry points too)
    kind(name) -> kind           by name or alias, case-insensitively (KeyError if none)

This module imports nothing of syndicator, so any layer (config, sources, store) may ask
which kinds are installed without importing the channels themselves; a kind is a
`syndicator.channels.kind.ChannelKind` (docs/plugins.md).
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syndicator.channels.kind import ChannelKind

GROUP = "syndicator.channels"

log = logging.getLogger(__name__)

# what every kind has (ChannelKind's members), checked without importing it
_MEMBERS = ("name", "config", "secrets", "default_limit", "count", "handle", "build")


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
        if any(not hasattr(obj, m) for m in _MEMBERS) or obj.name != ep.name:
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


def reserved_names() -> dict[str, str]:
    """Channel names the installed kinds keep for themselves -> what they are."""
    return {k.implicit_channel: k.implicit_purpose for k in kinds().values() if k.implicit_channel}
