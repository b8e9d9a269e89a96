"""Feed sources kept in the store (OPML import, `sources add`) rather than in the TOML.

Their poll state is a `sources` row like every source's (store/sources.py); this table
holds what the config would otherwise say: the URL, how often, the categories.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.db import in_lists
from syndicator.store.models import Episode, Show, Source, StoredSource

INSERT_BATCH = 500  # rows per INSERT statement (SQLite allows 32,766 bound values)


@dataclass
class NewSource:
    name: str
    url: str
    title: str = ""
    every_seconds: int = 1800
    categories: list[str] = field(default_factory=list)
    origin: str = ""


def add_many(s: Session, rows: list[NewSource], now: datetime) -> None:
    """Insert new stored sources, and their poll rows, in a few statements (an OPML file
    of 10,000 feeds is imported in one transaction)."""
    values = [
        {
            "name": r.name, "url": r.url, "title": r.title, "every_seconds": r.every_seconds,
            "categories": r.categories, "enabled": True, "origin": r.origin, "added_at": now,
        }
        for r in rows
    ]  # fmt: skip
    have = set(s.exec(select(Source.name)).all())
    polls = [
        {
            "name": r.name, "type": "feed", "url": r.url, "config_url": r.url,
            "consecutive_errors": 0, "disabled": False, "alerted": False, "polls": 0,
            "poll_errors": 0,
        }
        for r in rows
        if r.name not in have
    ]  # fmt: skip
    for table, batch in ((StoredSource, values), (Source, polls)):
        for i in range(0, len(batch), INSERT_BATCH):
            s.execute(sa.insert(table), batch[i : i + INSERT_BATCH])  # type: ignore[arg-type]


def poll_urls(s: Session) -> dict[str, str | None]:
    """Every poll row's name -> the config URL it was made for."""
    return dict(s.exec(select(Source.name, Source.config_url)).all())  # type: ignore[arg-type]


def due_names(s: Session, now: datetime) -> list[str]:
    """Enabled stored sources whose poll is due (or that were never polled)."""
    q = (
        sa.select(StoredSource.name)
        .join(Source, Source.name == StoredSource.name, isouter=True)
        .where(StoredSource.enabled == True)  # noqa: E712
        .where(sa.or_(Source.disabled == None, Source.disabled == False))  # noqa: E711, E712
        .where(sa.or_(Source.next_due_at == None, Source.next_due_at <= now))  # noqa: E711
    )
    return [name for (name,) in s.execute(q).all()]


def by_name(s: Session, name: str) -> StoredSource | None:
    return s.exec(select(StoredSource).where(StoredSource.name == name)).first()


def not_stored(s: Session, names: Iterable[str]) -> list[str]:
    """Those of `names` that no stored source has, in their order."""
    wanted = list(dict.fromkeys(names))
    found: set[str] = set()
    for chunk in in_lists(wanted):
        found.update(s.exec(select(StoredSource.name).where(StoredSource.name.in_(chunk))).all())  # type: ignore[attr-defined]
    return [n for n in wanted if n not in found]


def all_rows(s: Session, *, enabled_only: bool = False) -> list[StoredSource]:
    q = select(StoredSource).order_by(StoredSource.name)
    if enabled_only:
        q = q.where(StoredSource.enabled == True)  # noqa: E712
    return list(s.exec(q).all())


def taken(s: Session) -> tuple[set[str], dict[str, str]]:
    """Every source name known to the store, and every feed URL it polls or was sent to
    (stored URL, URL after permanent redirects, URL a show was last read from) -> name."""
    names = set(s.exec(select(Source.name)).all()) | set(s.exec(select(StoredSource.name)).all())
    urls: dict[str, str] = {}
    for name, url in s.exec(select(StoredSource.name, StoredSource.url)).all():
        urls.setdefault(url, name)
    for name, url, config_url in s.exec(select(Source.name, Source.url, Source.config_url)).all():
        for u in (url, config_url):
            if u:
                urls.setdefault(u, name)
    for name, url in s.exec(select(Show.source, Show.feed_url)).all():
        if url:
            urls.setdefault(url, name)
    return names, urls


def guids(s: Session) -> dict[str, str]:
    """podcast:guid -> the source whose show has it."""
    rows = s.exec(select(Show.podcast_guid, Show.source).where(Show.podcast_guid != None))  # noqa: E711
    out: dict[str, str] = {}
    for guid, name in rows.all():
        out.setdefault(guid or "", name)
    return out


def remove(s: Session, name: str) -> bool:
    """Forget a stored source, its poll state and its show (so its URL can be added
    again); its episodes and problems stay."""
    row = by_name(s, name)
    if row is None:
        return False
    s.delete(row)
    s.execute(sa.delete(Show).where(Show.source == name))  # type: ignore[arg-type]
    s.execute(sa.delete(Source).where(Source.name == name))  # type: ignore[arg-type]
    return True


def set_enabled(s: Session, name: str, enabled: bool) -> bool:
    row = by_name(s, name)
    if row is None:
        return False
    row.enabled = enabled
    s.add(row)
    return True


def move(s: Session, name: str, url: str) -> None:
    """The feed moved for good (itunes:new-feed-url, a 301): the stored URL follows, and
    the poll row's config URL with it, so the move is not undone as a config edit."""
    row = by_name(s, name)
    if row is not None and row.url != url:
        row.url = url
        s.add(row)
        poll = s.exec(select(Source).where(Source.name == name)).first()
        if poll is not None:
            poll.url = poll.config_url = url
            s.add(poll)


@dataclass
class SourcePage:
    rows: list[tuple[Source, Show | None, int]]  # poll row, its show, episode count
    total: int


def page(s: Session, q: str = "", offset: int = 0, limit: int = 50) -> SourcePage:
    """One page of every source (config and stored), by name, with its show; `q` matches
    the name, the URL or the show's title. Counts only the page's episodes."""
    base = sa.select(Source, Show).join(Show, Show.source == Source.name, isouter=True)
    count = sa.select(sa.func.count()).select_from(Source)
    if q:
        like = f"%{q.lower()}%"
        # the show's title once read, else the title the OPML outline gave
        title = sa.func.coalesce(Show.title, StoredSource.title, "")
        cond = sa.or_(
            sa.func.lower(Source.name).like(like),
            sa.func.lower(sa.func.coalesce(Source.url, "")).like(like),
            sa.func.lower(title).like(like),
        )
        stored = (StoredSource, StoredSource.name == Source.name)
        base = base.join(*stored, isouter=True).where(cond)
        count = (
            count.join(Show, Show.source == Source.name, isouter=True)
            .join(*stored, isouter=True)
            .where(cond)
        )
    ordered = base.order_by(Source.name).offset(offset).limit(limit)
    if q:  # one scan gives the page and (a window count) the number of matches
        rows = s.execute(ordered.add_columns(sa.func.count().over())).all()
        found = [(r[0], r[1]) for r in rows]
        total = int(rows[0][2]) if rows else 0
        if not rows and offset:  # past the last page: count alone
            total = int(s.execute(count).scalar_one())
    else:
        total = int(s.execute(count).scalar_one())
        found = [(r[0], r[1]) for r in s.execute(ordered).all()]
    counts = episode_counts(s, [src.name for src, _ in found])
    return SourcePage([(src, show, counts.get(src.name, 0)) for src, show in found], total)


def episode_counts(s: Session, names: Iterable[str]) -> dict[str, int]:
    names = list(names)
    if not names:
        return {}
    q = (
        sa.select(Episode.source, sa.func.count())
        .where(Episode.source.in_(names))  # type: ignore[attr-defined]
        .group_by(Episode.source)
    )
    return {name: int(n) for name, n in s.execute(q).all()}


def count(s: Session) -> int:
    return int(s.execute(sa.select(sa.func.count()).select_from(StoredSource)).scalar_one())


def as_dict(row: StoredSource) -> dict[str, Any]:
    return {
        "name": row.name,
        "url": row.url,
        "title": row.title,
        "every_seconds": row.every_seconds,
        "categories": list(row.categories),
        "enabled": row.enabled,
        "origin": row.origin,
    }
