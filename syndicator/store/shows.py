"""Each remote feed's show: one row per source, replaced by every feed body read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime

from sqlmodel import Session, select

from syndicator.sources.base import ShowData
from syndicator.store.models import Show

FIELDS = tuple(ShowData.__dataclass_fields__)


_HELD = "syndicator.shows"  # Session.info key: the shows `hold` loaded, by source


def hold(s: Session, names: Iterable[str]) -> None:
    """Load the shows of `names` once for the rest of this session's work, and remember
    which sources have none: planning renders every episode, and each render asks for
    its show (a query per episode otherwise, also for a source without a show)."""
    names = set(names)
    found = by_sources(s, names)
    s.info[_HELD] = {n: found.get(n) for n in names}


def upsert(s: Session, source: str, data: ShowData, feed_url: str, now: datetime) -> Show:
    s.info.pop(_HELD, None)  # what `hold` loaded is stale now
    row = s.get(Show, source) or Show(source=source)
    for name, value in asdict(data).items():
        setattr(row, name, value)
    row.feed_url = feed_url
    row.updated_at = now
    s.add(row)
    return row


def get(s: Session, source: str) -> Show | None:
    held = s.info.get(_HELD)
    if held is not None and source in held:
        return held[source]  # type: ignore[no-any-return]
    return s.get(Show, source)


def by_sources(s: Session, names: Iterable[str]) -> dict[str, Show]:
    names = list(names)
    if not names:
        return {}
    rows = s.exec(select(Show).where(Show.source.in_(names)))  # type: ignore[attr-defined]
    return {r.source: r for r in rows.all()}


def others_with(s: Session, source: str, guid: str | None, feed_url: str) -> list[tuple[str, str]]:
    """Other sources whose show has this podcast:guid or was read from this final URL:
    (name, what matched)."""
    out: list[tuple[str, str]] = []
    if guid:
        for r in s.exec(
            select(Show.source).where(Show.podcast_guid == guid, Show.source != source)
        ):
            out.append((r, "podcast:guid"))
    if feed_url:
        q = select(Show.source).where(Show.feed_url == feed_url, Show.source != source)
        out.extend((r, "final URL") for r in s.exec(q) if r not in {n for n, _ in out})
    return out
