"""Feed state: one row per published feed (its last build, error, and ETag)."""

from __future__ import annotations

from sqlmodel import Session, select

from syndicator.store.models import FeedState


def by_name(s: Session, name: str) -> FeedState | None:
    return s.get(FeedState, name)


def all_states(s: Session) -> list[FeedState]:
    return list(s.exec(select(FeedState)).all())
