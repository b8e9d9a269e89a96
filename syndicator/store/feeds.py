"""Feed state: one row per published feed (its last build, error, and ETag)."""

from __future__ import annotations

from datetime import datetime
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


def record_build(
    s: Session,
    name: str,
    *,
    podcast_guid: str,
    configured_guid: str | None,
    now: datetime,
    changed: bool,
    **values: Any,
) -> FeedState:
    """A finished build: `values` are the FeedState columns it measured (url, path,
    content_hash, size_bytes, episode_count, build_seconds, check_problems). The stored
    podcast guid is kept unless the config names one; changed_at and content_hash move
    only with a change (or when none was stored yet)."""
    st = by_name(s, name)
    if st is None:
        st = FeedState(name=name, podcast_guid=podcast_guid)
    elif configured_guid and st.podcast_guid != configured_guid:
        st.podcast_guid = configured_guid  # an explicit guid in the config wins
    content_hash = values.pop("content_hash")
    for key, value in values.items():
        if key not in FeedState.model_fields:
            raise AttributeError(f"a feed state has no column {key!r}")
        setattr(st, key, value)
    st.built_at = now
    if changed or not st.content_hash:
        st.changed_at = now if changed else (st.changed_at or now)
        st.content_hash = content_hash
    st.last_error = None
    s.add(st)
    return st


def record_error(s: Session, name: str, message: str, now: datetime) -> None:
    """A build that failed outright; a feed never built has no guid yet, so no row."""
    st = by_name(s, name)
    if st is None:
        return
    st.built_at = now
    st.last_error = message
    s.add(st)
