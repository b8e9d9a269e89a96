"""`feed build --check`: the newest enclosures a feed publishes answer, with the right
size and byte ranges (Apple Podcasts refuses a host without them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from syndicator.config import FeedConfig, Settings
from syndicator.directory.publish import query_episodes
from syndicator.sources.base import ProblemData
from syndicator.sources.enclosure import CHECK_NEWEST, enclosure_problems
from syndicator.store.db import session


def feed_enclosure_problems(
    engine: Engine, settings: Settings, feed: FeedConfig, now: datetime
) -> list[ProblemData]:
    with session(engine) as s:
        episodes = query_episodes(s, feed, now)  # newest first
    quiet = {s.name for s in settings.sources if not s.verify_audio}  # never asked
    items = [
        (f"episode {ep.title!r}", ep.enclosure_url, ep.enclosure_length)
        for ep in episodes
        if ep.enclosure_url and getattr(ep, "source", None) not in quiet
    ][:CHECK_NEWEST]
    return enclosure_problems(items, allow_private=settings.fetch.allow_private_redirects)
