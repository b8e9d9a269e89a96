"""Sources: one row per configured source, with its polling and error state."""

from __future__ import annotations

from sqlmodel import Session, select

from syndicator.store.models import Source


def by_name(s: Session, name: str) -> Source:
    """The row of a configured source (the pass creates it before it polls)."""
    return s.exec(select(Source).where(Source.name == name)).one()


def by_id(s: Session, source_id: int) -> Source | None:
    return s.get(Source, source_id)


def not_alerted(s: Session) -> list[Source]:
    return list(s.exec(select(Source).where(Source.alerted == False)).all())  # noqa: E712
