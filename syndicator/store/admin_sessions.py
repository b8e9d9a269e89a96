"""The admin page's logins: one row per session, keyed by the hash of its id."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from syndicator.store.db import session
from syndicator.store.models import AdminSession


def create(
    engine: Engine, key: str, now: datetime, replaces: str = "", idle_before: datetime | None = None
) -> None:
    """Add a session; drop the one it replaces and, with `idle_before`, the idle ones."""
    with session(engine, write=True) as s:
        if replaces:
            s.execute(sa.delete(AdminSession).where(AdminSession.key == replaces))  # type: ignore[arg-type]
        if idle_before is not None:
            s.execute(sa.delete(AdminSession).where(AdminSession.seen_at < idle_before))  # type: ignore[arg-type,operator]
        s.add(AdminSession(key=key, created_at=now, seen_at=now))


def alive(engine: Engine, key: str, seen_since: datetime) -> bool:
    """True while the session exists and was seen at or after `seen_since`."""
    with session(engine) as s:
        row = s.execute(
            sa.select(AdminSession.key).where(
                AdminSession.key == key,  # type: ignore[arg-type]
                AdminSession.seen_at >= seen_since,  # type: ignore[arg-type,operator]
            )
        ).first()
        return row is not None


def touch(engine: Engine, key: str, now: datetime) -> None:
    with session(engine, write=True) as s:
        s.execute(
            sa.update(AdminSession)
            .where(AdminSession.key == key)  # type: ignore[arg-type]
            .values(seen_at=now)
        )


def delete(engine: Engine, key: str) -> None:
    with session(engine, write=True) as s:
        s.execute(sa.delete(AdminSession).where(AdminSession.key == key))  # type: ignore[arg-type]


def keys(engine: Engine) -> set[str]:
    with session(engine) as s:
        return set(s.execute(sa.select(AdminSession.key)).scalars())
