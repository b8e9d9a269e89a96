"""`syndicator preview`: each channel's text for an episode, counted by that network's rules."""

from __future__ import annotations

from typing import Any

from syndicator.announce.fit import count
from syndicator.announce.render import Renderer
from syndicator.announce.thread import thread_texts
from syndicator.config import Settings
from syndicator.store.db import open_store, session
from syndicator.store.views import find_episode, list_episodes


class PreviewError(Exception):
    pass


def previews(settings: Settings, episode: str | None, channel: str | None) -> list[dict[str, Any]]:
    """One row per (episode, channel): {episode, channel, text, length, limit, fits}.

    Uses each channel's configured limit or the network default; it does not call
    the network (a Mastodon instance's own limit is read when a pass runs).
    """
    from syndicator.announce.fit import default_limit

    channels = [c for c in settings.channels if c.enabled and (not channel or c.name == channel)]
    if channel and not channels:
        raise PreviewError(f"no enabled channel named {channel!r}")
    renderer = Renderer(settings)
    with session(open_store(settings)) as s:
        if episode is None:
            eps = list_episodes(s)
        else:
            ep = find_episode(s, episode)
            if ep is None:
                raise PreviewError(
                    f"no episode {episode!r}: give a guid, #id, number or slug "
                    "(see `syndicator episodes`)"
                )
            eps = [ep]
    rows = []
    for ep in eps:
        for ch in channels:
            r = renderer.render(ep, ch, limit=ch.limit or default_limit(ch.type))
            replies = thread_texts(renderer, settings, ep, ch, ch.limit or default_limit(ch.type))
            rows.append(
                {
                    "episode": ep.guid,
                    "title": ep.title,
                    "channel": ch.name,
                    "text": r.text,
                    "length": r.length,
                    "limit": r.limit,
                    "fits": r.fits,
                    "withdrawn": ep.withdrawn,  # never announced, whatever the text
                    # the replies that follow (`thread`), in order, each counted as the
                    # announcement is
                    "thread": [
                        {"part": i, "text": t, "length": count(t, ch.type)}
                        for i, t in enumerate(replies, start=1)
                    ],
                }
            )
    return rows
