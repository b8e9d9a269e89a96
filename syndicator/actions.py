"""Actions a person takes, shared by the CLI and the web page (one code path)."""

from __future__ import annotations

from pathlib import Path

from syndicator.announce import approval, cards, manual
from syndicator.announce.manual import ActionError
from syndicator.announce.render import Renderer
from syndicator.config import Settings
from syndicator.pipeline import PassChannels
from syndicator.store.db import open_store, session
from syndicator.store.models import Delivery
from syndicator.store.views import find_episode
from syndicator.timeutil import utcnow

__all__ = ["ActionError", "announce_episode", "edit_delivery", "episode_card"]


def announce_episode(settings: Settings, ref: str, channel: str | None = None) -> list[Delivery]:
    """Queue an episode on its channels now; the next pass (or the daemon at once) sends it."""
    engine = open_store(settings)
    now = utcnow()
    with session(engine) as s:
        ep = find_episode(s, ref)
        if ep is None:
            raise ActionError(f"no episode {ref!r}: give a guid, #id, number or slug")
    if channel and channel not in {c.name for c in settings.channels}:
        raise ActionError(f"no channel named {channel!r}")
    channels = PassChannels(settings, None, now)
    try:
        return manual.announce_now(
            engine, settings, Renderer(settings), channels.limits, ep.id or 0, now, channel
        )
    finally:
        channels.close()


def edit_delivery(
    settings: Settings, delivery_id: int, text: str, by: str = "cli"
) -> approval.Edited:
    """Replace a held row's text, fitted to its channel's limit (as a pass measures it)."""
    engine = open_store(settings)
    now = utcnow()
    channels = PassChannels(settings, None, now)
    try:
        return approval.edit(engine, settings, channels.limits, delivery_id, text, now, by)
    finally:
        channels.close()


def episode_card(settings: Settings, ref: str, out: Path | None = None) -> cards.CardImage:
    """`syndicator card EPISODE [--out FILE]`: the episode's card (made once, then reused
    from the cards folder), copied to `out` when given."""
    engine = open_store(settings)
    with session(engine) as s:
        ep = find_episode(s, ref)
        if ep is None:
            raise ActionError(f"no episode {ref!r}: give a guid, #id, number or slug")
    try:
        if out is not None:
            return cards.write_card(settings, ep, out)
        size = (settings.cards.width, settings.cards.height)
        return cards.make_card(settings, ep, size)
    except cards.CardError as exc:
        raise ActionError(f"no card for episode {ref!r}: {exc}") from exc
