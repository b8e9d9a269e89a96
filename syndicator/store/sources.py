"""Sources: one row per configured source, with its polling and error state."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import Source


def by_name(s: Session, name: str) -> Source:
    """The row of a configured source (the pass creates it before it polls)."""
    return s.exec(select(Source).where(Source.name == name)).one()


def by_id(s: Session, source_id: int) -> Source | None:
    return s.get(Source, source_id)


def not_alerted(s: Session) -> list[Source]:
    return list(s.exec(select(Source).where(Source.alerted == False)).all())  # noqa: E712


def all_by_name(s: Session) -> list[Source]:
    return list(s.exec(select(Source).order_by(Source.name)).all())


def change_stamp(s: Session) -> tuple[Any, ...]:
    q = sa.select(
        sa.func.max(Source.last_poll_at), sa.func.sum(Source.consecutive_errors), sa.func.count()
    )
    return tuple(s.execute(q).one())
