"""Feed state: one row per published feed (its last build, error, and ETag)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import FeedState


def by_name(s: Session, name: str) -> FeedState | None:
    return s.get(FeedState, name)


def all_states(s: Session) -> list[FeedState]:
    return list(s.exec(select(FeedState)).all())


def all_by_name(s: Session) -> list[FeedState]:
    return list(s.exec(select(FeedState).order_by(FeedState.name)).all())


def change_stamp(s: Session) -> tuple[Any, ...]:
    return tuple(s.execute(sa.select(sa.func.max(FeedState.built_at), sa.func.count())).one())
