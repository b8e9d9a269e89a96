"""Sources: one row per configured source, with its polling and error state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import Source


def by_name(s: Session, name: str) -> Source:
    """The row of a configured source (the pass creates it before it polls)."""
    return s.exec(select(Source).where(Source.name == name)).one()


def by_id(s: Session, source_id: int) -> Source | None:
    return s.get(Source, source_id)


def count_error(s: Session, name: str, error: str) -> None:
    """One more error in a row for the source (its result could not be stored)."""
    _count_error(s, by_name(s, name), error)


def _count_error(s: Session, row: Source, error: str) -> None:
    row.consecutive_errors += 1
    row.last_error = error[:500]
    s.add(row)


def scanned(s: Session, row: Source, next_due_at: datetime, error: str | None) -> None:
    """A local scan's outcome: when to look again; no error ends the run of errors (and
    its alert), an error counts one more."""
    row.next_due_at = next_due_at
    if error is None:
        row.consecutive_errors, row.last_error, row.alerted = 0, None, False
        s.add(row)
    else:
        _count_error(s, row, error)


def mark_alerted(s: Session, source_id: int) -> None:
    """An alert for the source's current run of errors went out."""
    row = s.get(Source, source_id)
    if row is not None:
        row.alerted = True
        s.add(row)


def not_alerted(s: Session) -> list[Source]:
    return list(s.exec(select(Source).where(Source.alerted == False)).all())  # noqa: E712


def all_by_name(s: Session) -> list[Source]:
    return list(s.exec(select(Source).order_by(Source.name)).all())


def change_stamp(s: Session) -> tuple[Any, ...]:
    q = sa.select(
        sa.func.max(Source.last_poll_at), sa.func.sum(Source.consecutive_errors), sa.func.count()
    )
    return tuple(s.execute(q).one())
