"""Episodes: the rows the sources wrote, looked up and listed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import Episode


def insert_many(s: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new episodes (column -> value, the same columns in every row) in one
    executemany and return their ids in the rows' order: a cold pass stores tens of
    thousands, and ORM objects cost more to build and flush than the insert itself."""
    if not rows:
        return []
    table = Episode.__table__  # type: ignore[attr-defined]
    stmt = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(s.connection().execute(stmt, rows).scalars())


def by_id(s: Session, episode_id: int) -> Episode | None:
    return s.get(Episode, episode_id)


def all_by_date(s: Session) -> list[Episode]:
    """Every episode, oldest first (planning walks them in that order)."""
    return list(s.exec(select(Episode).order_by(Episode.date, Episode.id)).all())  # type: ignore[arg-type]


def live_dated_before(s: Session, before: datetime) -> list[Episode]:
    """Episodes not withdrawn whose date is at or before `before`."""
    return list(
        s.exec(
            select(Episode).where(
                Episode.withdrawn == False,  # noqa: E712
                Episode.date <= before,  # type: ignore[operator]
            )
        ).all()
    )


def titles(s: Session, ids: list[int]) -> list[str]:
    """The titles of the episodes `ids` that exist, in that order (one query)."""
    found = titles_by_id(s, ids)
    return [found[i] for i in ids if i in found]


def titles_by_id(s: Session, ids: list[int] | set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = s.exec(select(Episode.id, Episode.title).where(Episode.id.in_(list(ids)))).all()  # type: ignore[union-attr]
    return {i: t for i, t in rows if i is not None}


def feed_rows(
    s: Session,
    columns: Sequence[str],
    now: datetime,
    *,
    sources: Sequence[str] = (),
    limit: int | None = None,
) -> list[tuple[Any, ...]]:
    """The `columns` of the episodes a feed shows, newest first, as plain tuples (ORM
    objects cost 2-3x more to load): audio, not withdrawn, dated now or earlier, from
    `sources` (empty: all). An undated episode's `date` is when it was first seen."""
    cols = [
        sa.func.coalesce(Episode.date, Episode.first_seen_at).label("date")
        if name == "date"
        else getattr(Episode, name)
        for name in columns
    ]
    q = sa.select(*cols).where(
        Episode.enclosure_url.is_not(None),  # type: ignore[union-attr]
        Episode.enclosure_url != "",
        Episode.withdrawn == False,  # noqa: E712 (SQL)
        (Episode.date.is_(None)) | (Episode.date <= now),  # type: ignore[union-attr,operator]
    )
    if sources:
        q = q.where(Episode.source.in_(list(sources)))  # type: ignore[attr-defined]
    q = q.order_by(
        Episode.date.is_(None),  # type: ignore[union-attr]
        Episode.date.desc(),  # type: ignore[union-attr]
        Episode.id.desc(),  # type: ignore[union-attr]
    )
    if limit:
        q = q.limit(limit)
    return list(s.execute(q))  # type: ignore[arg-type]


def count(s: Session) -> int:
    return int(s.exec(select(sa.func.count()).select_from(Episode)).one())


def count_by_source(s: Session) -> list[tuple[str, int]]:
    """How many episodes each source has (one GROUP BY)."""
    rows = s.exec(select(Episode.source, sa.func.count()).group_by(Episode.source)).all()  # type: ignore[arg-type]
    return [(src, int(n)) for src, n in rows]


# ---------------------------------------------------------------- search (the web page)

# The few columns the episode list shows (the API loads whole rows instead).
LIST_COLUMNS = (
    "id", "number", "title", "date", "source", "guid", "withdrawn", "backlog", "enclosure_url",
)  # fmt: skip


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _search_conditions(q: str, state: str, channel: str, source: str) -> list[Any]:
    from syndicator.store.models import Delivery

    conds: list[Any] = []
    if q:
        pat = _like(q)
        alts = [
            Episode.title.ilike(pat, escape="\\"),  # type: ignore[attr-defined]
            Episode.slug.ilike(pat, escape="\\"),  # type: ignore[union-attr]
            Episode.guid == q,
        ]
        ref = q.removeprefix("#")
        if ref.isdigit() and len(ref) < 10:
            alts.append(Episode.number == int(ref))
            if q.startswith("#"):
                alts.append(Episode.id == int(ref))
        conds.append(sa.or_(*alts))
    if source:
        conds.append(Episode.source == source)
    if state or channel:
        # IN (…) lets the database find the few matching deliveries by index first,
        # instead of probing the deliveries of every episode (EXISTS).
        sub = select(Delivery.episode_id).where(Delivery.episode_id.is_not(None))  # type: ignore[union-attr]
        if state:
            sub = sub.where(Delivery.state == state)
        if channel:
            sub = sub.where(Delivery.channel == channel)
        conds.append(Episode.id.in_(sub))  # type: ignore[union-attr]
    return conds


def search(
    s: Session,
    *,
    q: str = "",
    state: str = "",
    channel: str = "",
    source: str = "",
    offset: int = 0,
    limit: int = 50,
    full: bool = True,
) -> tuple[int, list[Any]]:
    """Episodes matching a search, newest first, and how many match in all.

    `q` matches title or slug (substring), guid, number, or `#id`; `state`/`channel`
    keep episodes with such a delivery. `full=False` loads only LIST_COLUMNS, as tuples.
    """
    conds = _search_conditions(q, state, channel, source)
    total = int(s.exec(select(sa.func.count()).select_from(Episode).where(*conds)).one())
    order = (Episode.date.desc(), Episode.id.desc())  # type: ignore[union-attr]
    if full:
        what: Any = select(Episode)
    else:
        what = select(*(getattr(Episode, c) for c in LIST_COLUMNS))
    rows = s.exec(what.where(*conds).order_by(*order).limit(limit).offset(offset)).all()
    return total, list(rows)


def change_stamp(s: Session) -> tuple[Any, ...]:
    # max(id) sees inserts without counting rows; max(updated_at) sees updates.
    q = sa.select(sa.func.max(Episode.last_changed_at), sa.func.max(Episode.id))
    return tuple(s.execute(q).one())
