"""Named leases and heartbeats: one daemon leads, the others stand by."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.store.db import session
from syndicator.store.models import Heartbeat, Lease


def acquire(engine: Engine, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    """Take or renew the lease; True when `owner` holds it until now + ttl.

    One conditional UPDATE decides, so two processes can't both win.
    """
    with session(engine, write=True) as s:
        if s.get(Lease, name) is None:
            dialect = s.get_bind().dialect.name
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
            s.execute(
                insert(Lease)
                .values(name=name, owner=owner, until=now - timedelta(seconds=1), acquired_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
        res = s.execute(
            sa.update(Lease)
            .where(
                Lease.name == name,  # type: ignore[arg-type]
                sa.or_(Lease.owner == owner, Lease.until < now),  # type: ignore[arg-type,operator]
            )
            .values(
                owner=owner,
                until=now + ttl,
                acquired_at=sa.case((Lease.owner == owner, Lease.acquired_at), else_=now),  # type: ignore[arg-type]
            )
            .execution_options(synchronize_session=False)
        )
        return res.rowcount == 1  # type: ignore[attr-defined]


def release(engine: Engine, name: str, owner: str, now: datetime) -> None:
    with session(engine, write=True) as s:
        s.execute(
            sa.update(Lease)
            .where(Lease.name == name, Lease.owner == owner)  # type: ignore[arg-type]
            .values(until=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


def beat(
    engine: Engine,
    owner: str,
    now: datetime,
    *,
    role: str,
    state: str,
    detail: str | None = None,
    next_pass_at: datetime | None = None,
    last_pass_at: datetime | None = None,
    started_at: datetime | None = None,
) -> None:
    with session(engine, write=True) as s:
        hb = s.get(Heartbeat, owner)
        if hb is None:
            hb = Heartbeat(
                owner=owner, pid=os.getpid(), host=socket.gethostname(),
                started_at=started_at or now, updated_at=now,
            )  # fmt: skip
        hb.role, hb.state, hb.detail, hb.updated_at = role, state, detail, now
        hb.next_pass_at = next_pass_at
        if last_pass_at is not None:
            hb.last_pass_at = last_pass_at
        s.add(hb)


STOPPED = "stopped"


def stopped(engine: Engine, owner: str, now: datetime, detail: str) -> None:
    """Keep the process's heartbeat, marked stopped: status then says when it was last
    seen and that it ended cleanly (a crash leaves a stale, unmarked row instead)."""
    with session(engine, write=True) as s:
        # Earlier stopped processes are superseded by this one: one row per restart
        # would pile up forever.
        s.execute(
            sa.delete(Heartbeat)
            .where(Heartbeat.state == STOPPED, Heartbeat.owner != owner)  # type: ignore[arg-type]
            .execution_options(synchronize_session=False)
        )
        hb = s.get(Heartbeat, owner)
        if hb is not None:
            hb.state, hb.detail, hb.updated_at, hb.next_pass_at = STOPPED, detail, now, None
            s.add(hb)


def forget(engine: Engine, owner: str) -> None:
    with session(engine, write=True) as s:
        hb = s.get(Heartbeat, owner)
        if hb is not None:
            s.delete(hb)


def heartbeat_count(s: Session) -> int:
    return int(s.execute(sa.select(sa.func.count()).select_from(Heartbeat)).scalar() or 0)
