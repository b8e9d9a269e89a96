"""Episodes: the rows the sources wrote, looked up and listed."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from syndicator.store.models import Episode


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
