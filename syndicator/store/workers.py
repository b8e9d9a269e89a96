"""Workers: one row per `syndicator run` process (heartbeat and counters), and the
one-holder duties they take turns at.

On PostgreSQL every daemon is a worker; times here come from the database's clock
(`now()`), so a machine whose clock is off can't make a live worker look dead. On
SQLite the same rows are kept with this process's clock (one leader works, the others
stand by).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from syndicator.store.db import now_sql, session, shared
from syndicator.store.models import Worker
from syndicator.timeutil import utcnow

# pg_try_advisory_lock(namespace, key): the namespace keeps duty locks apart from the
# migration lock (db.MIGRATION_LOCK_KEY) and from anyone else's locks on the server.
DUTY_LOCK_NAMESPACE = 0x73796E65


def _now(s: Session) -> Any:
    """What `now` is in a statement: the database's clock when workers share the store."""
    return now_sql() if shared(s.get_bind()) else utcnow()  # type: ignore[arg-type]


def _insert(s: Session) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


def beat(engine: Engine, worker_id: str, host: str, pid: int) -> None:
    """The worker is alive: its row is made on the first beat, `last_seen` moves on after."""
    with session(engine, write=True) as s:
        now = _now(s)
        stmt = (
            _insert(s)(Worker)
            .values(
                id=worker_id,
                host=host,
                pid=pid,
                started=now,
                last_seen=now,
                stopped=False,
                polls=0,
                sends=0,
            )
            .on_conflict_do_update(index_elements=["id"], set_={"last_seen": now, "stopped": False})
        )
        s.execute(stmt)


def count(engine: Engine, worker_id: str, *, polls: int = 0, sends: int = 0) -> None:
    """Add a pass's polls and sends to the worker's counters (no row: not a daemon, no-op)."""
    if not polls and not sends:
        return
    with session(engine, write=True) as s:
        s.execute(
            sa.update(Worker)
            .where(Worker.id == worker_id)  # type: ignore[arg-type]
            .values(polls=Worker.polls + polls, sends=Worker.sends + sends)
            .execution_options(synchronize_session=False)
        )


def stopped(engine: Engine, worker_id: str) -> None:
    """Ended cleanly: shown as not alive at once, instead of after the heartbeat timeout."""
    with session(engine, write=True) as s:
        s.execute(
            sa.update(Worker)
            .where(Worker.id == worker_id)  # type: ignore[arg-type]
            .values(stopped=True, last_seen=_now(s))
            .execution_options(synchronize_session=False)
        )


def forget_gone(engine: Engine, older_than: timedelta) -> int:
    """Delete rows of workers not seen for `older_than` (ended or killed long ago)."""
    with session(engine, write=True) as s:
        res = s.execute(
            sa.delete(Worker)
            .where(Worker.last_seen < _now(s) - older_than)  # type: ignore[operator]
            .execution_options(synchronize_session=False)
        )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    alive: bool
    started: datetime | None
    last_seen: datetime | None
    polls: int
    sends: int


def listing(s: Session, stale_after: timedelta) -> list[WorkerRow]:
    """Every known worker, newest heartbeat first; alive = seen within `stale_after`
    (by the database's clock) and not stopped."""
    alive = sa.and_(Worker.stopped == False, Worker.last_seen >= _now(s) - stale_after)  # type: ignore[operator]  # noqa: E712
    rows = s.exec(
        select(Worker, alive.label("alive")).order_by(  # type: ignore[call-overload]
            Worker.last_seen.desc(),  # type: ignore[union-attr]
            Worker.id,
        )
    ).all()
    return [
        WorkerRow(w.id, w.host, w.pid, bool(a), w.started, w.last_seen, w.polls, w.sends)
        for w, a in rows
    ]


def change_stamp(s: Session, stale_after: timedelta) -> tuple[Any, ...]:
    """Changes when a worker starts, stops, dies, polls or sends (the web page's live
    update)."""
    alive = sa.and_(Worker.stopped == False, Worker.last_seen >= _now(s) - stale_after)  # type: ignore[operator]  # noqa: E712
    q = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(Worker.polls), 0),
        sa.func.coalesce(sa.func.sum(Worker.sends), 0),
        sa.func.coalesce(sa.func.sum(sa.case((alive, 1), else_=0)), 0),
    )
    return tuple(s.execute(q).one())


def duty_key(name: str) -> int:
    """A stable signed 32-bit key for a duty's advisory lock."""
    value = zlib.crc32(name.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


def take_duty(s: Session, name: str, *, wait: bool = False) -> bool:
    """Take a one-holder duty for the rest of `s`'s transaction: True when this
    transaction holds it (always on SQLite, whose writers take turns). Held until the
    commit, so the next holder sees what this one wrote. Without `wait` it never waits
    (another worker holds it: False); with it, it waits its turn (planning: short, and
    every worker's new episodes must be planned now, not a pass later)."""
    if not shared(s.get_bind()):  # type: ignore[arg-type]
        return True
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = s.execute(
        sa.text(f"SELECT {fn}(:ns, :key)"), {"ns": DUTY_LOCK_NAMESPACE, "key": duty_key(name)}
    ).scalar()
    return wait or bool(got)


@contextmanager
def duty(engine: Engine, name: str) -> Iterator[bool]:
    """Take a one-holder duty (feed builds, evergreen planning, alerts, pruning) without
    waiting: yields True when this process holds it, False when another worker does.

    On PostgreSQL a session advisory lock on its own connection: it never blocks polling
    or sending, and a killed holder's lock goes with its connection. SQLite has one
    writer (the leader) and needs none.
    """
    if not shared(engine):
        yield True
        return
    key = duty_key(name)
    with engine.connect() as conn:
        got = bool(
            conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:ns, :key)"),
                {"ns": DUTY_LOCK_NAMESPACE, "key": key},
            ).scalar()
        )
        conn.commit()
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:ns, :key)"),
                        {"ns": DUTY_LOCK_NAMESPACE, "key": key},
                    )
                    conn.commit()
                except sa.exc.SQLAlchemyError:
                    conn.invalidate()  # closing the connection releases the lock too
