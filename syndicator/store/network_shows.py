"""Network shows: each remote feed's own show (title, artwork, podcast:guid), one row per
feed source, as a network feed shows it on the items, in its podroll and in its OPML."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from syndicator.sources.base import ShowData
from syndicator.store.models import NetworkShow


def put(s: Session, source: str, show: ShowData, feed_url: str, now: datetime) -> None:
    """Remember what the source's feed says of its show now (insert or overwrite)."""
    row = s.get(NetworkShow, source) or NetworkShow(source=source)
    row.title = show.title
    row.image = show.image
    row.author = show.author
    row.link = show.link
    row.feed_url = feed_url
    row.podcast_guid = show.podcast_guid
    row.updated_at = now
    s.add(row)


def by_sources(s: Session, sources: Iterable[str] | None = None) -> dict[str, NetworkShow]:
    """The shows of these sources (None: every source), by source name."""
    q = select(NetworkShow)
    if sources is not None:
        q = q.where(NetworkShow.source.in_(list(sources)))  # type: ignore[attr-defined]
    return {row.source: row for row in s.exec(q).all()}
