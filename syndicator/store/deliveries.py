"""Deliveries: the outbox rows, their claims and leases, and what is counted of them.

The caller names the states (the state machine lives in announce/outbox); the
queries here only say which rows match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.db import now_sql
from syndicator.store.models import Delivery, UTCDateTime


def by_id(s: Session, delivery_id: int) -> Delivery | None:
    return s.get(Delivery, delivery_id)


def expire_leases(s: Session, now: datetime, *, sending: str, unknown: str, why: str) -> int:
    """Rows still `sending` after their lease ran out become `unknown`; returns how many."""
    res = s.execute(
        sa.update(Delivery)
        .where(Delivery.state == sending, Delivery.lease_until < now)  # type: ignore[arg-type,operator]
        .values(
            state=unknown,
            lease_owner=None,
            lease_until=None,
            next_attempt_at=now,
            last_error=why,
            updated_at=now,
        )
    )
    return res.rowcount  # type: ignore[attr-defined,no-any-return]


def due_ids(
    s: Session,
    channel: str,
    states: Iterable[str],
    now: datetime,
    limit: int,
    kinds: Sequence[str] | None = None,
) -> list[int]:
    """Ids of the channel's rows in `states` (and of `kinds`, when given) that are due now,
    oldest due first."""
    q = (
        select(Delivery.id)
        .where(
            Delivery.channel == channel,
            Delivery.state.in_(list(states)),  # type: ignore[attr-defined]
            sa.or_(Delivery.due_at.is_(None), Delivery.due_at <= now),  # type: ignore[union-attr,operator]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
            *([Delivery.kind.in_(list(kinds))] if kinds is not None else []),  # type: ignore[attr-defined]
        )
        .order_by(Delivery.due_at, Delivery.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return [i for i in s.exec(q).all() if i is not None]


def state_of(s: Session, delivery_id: int) -> str | None:
    return s.exec(select(Delivery.state).where(Delivery.id == delivery_id)).first()


def claim(
    s: Session,
    delivery_id: int,
    prev: str,
    owner: str,
    now: datetime,
    lease: timedelta,
    *,
    sending: str,
) -> bool:
    """Atomically move the row from `prev` to `sending` under our lease; True if we won."""
    res = s.execute(
        sa.update(Delivery)
        .where(
            Delivery.id == delivery_id,  # type: ignore[arg-type]
            Delivery.state == prev,  # type: ignore[arg-type]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        )
        .values(
            state=sending,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def claim_batch(
    s: Session,
    channel: str,
    states: Iterable[str],
    owner: str,
    lease: timedelta,
    limit: int,
    *,
    sending: str,
    at: datetime | None = None,
    kinds: Sequence[str] | None = None,
) -> list[tuple[int, str]]:
    """PostgreSQL workers: move up to `limit` of the channel's due rows in `states` (and
    of `kinds`, when given) to `sending` under our lease, in one statement; returns (id,
    previous state) of each, oldest due first.

    `FOR UPDATE SKIP LOCKED` hands concurrent workers disjoint rows without waiting;
    "due" and the lease come from the database's clock (or `at`, a pass run at a chosen
    time).
    """
    now = now_sql() if at is None else sa.bindparam("at", at, UTCDateTime())
    pick = (
        sa.select(Delivery.id, Delivery.state, Delivery.due_at)
        .where(
            Delivery.channel == channel,  # type: ignore[arg-type]
            Delivery.state.in_(list(states)),  # type: ignore[attr-defined]
            sa.or_(Delivery.due_at.is_(None), Delivery.due_at <= now),  # type: ignore[union-attr,operator]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
            *([Delivery.kind.in_(list(kinds))] if kinds is not None else []),  # type: ignore[attr-defined]
        )
        .order_by(Delivery.due_at, Delivery.id)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("pick")
    )
    res = s.execute(
        sa.update(Delivery)
        .where(Delivery.id == pick.c.id)  # type: ignore[arg-type]
        .values(
            state=sending,
            lease_owner=owner,
            lease_until=now + sa.bindparam("lease", lease, sa.Interval),
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(Delivery.id, pick.c.state, pick.c.due_at)
        .execution_options(synchronize_session=False)
    )
    got = sorted(res.all(), key=lambda r: (r[2] is not None, r[2], r[0]))
    return [(int(i), str(prev)) for i, prev, _ in got]


def unclaim(s: Session, delivery_id: int, owner: str, prev: str, *, sending: str) -> bool:
    """Give a claimed row back untried (the worker is stopping): its state and attempt
    count as they were, so another worker sends it."""
    res = s.execute(
        sa.update(Delivery)
        .where(
            Delivery.id == delivery_id,  # type: ignore[arg-type]
            Delivery.lease_owner == owner,  # type: ignore[arg-type]
            Delivery.state == sending,  # type: ignore[arg-type]
        )
        .values(state=prev, lease_owner=None, lease_until=None, attempts=Delivery.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def finish(
    s: Session,
    delivery_id: int,
    owner: str,
    *,
    payload_add: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Record an outcome, only if `owner` still holds the lease; `payload_add` is merged
    into the row's payload as it is now (keeping what the send recorded mid-way)."""
    if payload_add:
        current = s.exec(
            select(Delivery.payload).where(
                Delivery.id == delivery_id,
                Delivery.lease_owner == owner,  # type: ignore[arg-type]
            )
        ).first()
        values["payload"] = {**(current or {}), **payload_add}
    res = s.execute(
        sa.update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)  # type: ignore[arg-type]
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def save_progress(s: Session, delivery_id: int, owner: str, progress: dict[str, Any]) -> bool:
    """Keep what a multi-step send has done so far (payload["progress"]), only while
    `owner` holds the row's lease."""
    row = s.exec(
        select(Delivery)
        .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)  # type: ignore[arg-type]
        .with_for_update()
    ).first()
    if row is None:
        return False
    row.payload = {**(row.payload or {}), "progress": progress}
    s.add(row)
    return True


def last_sent_at(s: Session, channel: str, sent: str) -> datetime | None:
    """When the channel last sent anything (its newest `sent` row)."""
    return s.exec(
        select(sa.func.max(Delivery.sent_at)).where(  # type: ignore[arg-type]
            Delivery.channel == channel, Delivery.state == sent
        )
    ).one()


def sent_times_since(s: Session, channel: str, sent: str, since: datetime) -> list[datetime]:
    """When the channel's rows sent since `since` went out, oldest first."""
    rows = s.exec(
        select(Delivery.sent_at)
        .where(
            Delivery.channel == channel,
            Delivery.state == sent,
            Delivery.sent_at >= since,  # type: ignore[operator]
        )
        .order_by(Delivery.sent_at)  # type: ignore[arg-type]
    ).all()
    return [r for r in rows if r is not None]


def save(s: Session, row: Delivery, **values: Any) -> Delivery:
    """Set `values` (column=value) on the row and write it with the session's transaction
    (a row not stored yet is added). The caller decides the values; only this writes."""
    for name, value in values.items():
        if name not in Delivery.model_fields:
            raise AttributeError(f"a delivery has no column {name!r}")
        setattr(row, name, value)
    s.add(row)
    return row


def mark_alerted(s: Session, delivery_id: int) -> None:
    """The operator was told this row failed."""
    row = s.get(Delivery, delivery_id)
    if row is not None:
        row.alerted = True
        s.add(row)


def by_key(s: Session, key: str) -> Delivery | None:
    return s.exec(select(Delivery).where(Delivery.key == key)).first()


def _row_values(row: Delivery) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in Delivery.__table__.columns if c.name != "id"}  # type: ignore[attr-defined]


def _insert_or_nothing(s: Session, table: Any) -> Any:
    """INSERT ... ON CONFLICT (key) DO NOTHING in the session's dialect."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert(table).on_conflict_do_nothing(index_elements=["key"])


def insert_ignore(s: Session, row: Delivery) -> bool:
    """INSERT unless the key exists (another process planned it first); True if written."""
    stmt = _insert_or_nothing(s, Delivery).values(**_row_values(row))
    return bool(s.execute(stmt).rowcount)  # type: ignore[attr-defined]


def insert_ignore_many(s: Session, rows: Sequence[Delivery]) -> None:
    """`insert_ignore` for many rows in one executemany, in their order (so their ids are
    what one insert at a time would give): planning a cold pass writes tens of thousands.
    A plain Core statement on the table: the ORM's bulk path costs more than the insert."""
    if rows:
        stmt = _insert_or_nothing(s, Delivery.__table__)  # type: ignore[attr-defined]
        s.connection().execute(stmt, [_row_values(r) for r in rows])


def of_kind_on(s: Session, kind: str, channels: list[str]) -> list[Delivery]:
    """Every row of `kind` on the named channels (planning loads them in one query)."""
    return list(
        s.exec(
            select(Delivery).where(Delivery.kind == kind, Delivery.channel.in_(channels))  # type: ignore[attr-defined]
        ).all()
    )


def last_planned_at(s: Session, channel: str, kind: str) -> datetime | None:
    return s.exec(
        select(sa.func.max(Delivery.planned_at)).where(  # type: ignore[arg-type]
            Delivery.channel == channel, Delivery.kind == kind
        )
    ).one()


def last_sent_by_episode(s: Session, channel: str, sent: str) -> dict[int, datetime]:
    """Each episode's latest send on the channel (one GROUP BY)."""
    out: dict[int, datetime] = {}
    for ep_id, when in s.exec(
        select(Delivery.episode_id, sa.func.max(Delivery.sent_at))  # type: ignore[call-overload]
        .where(Delivery.channel == channel, Delivery.state == sent)
        .group_by(Delivery.episode_id)
    ).all():
        if ep_id is not None and when is not None:
            out[ep_id] = when
    return out


def in_states(s: Session, states: list[str]) -> list[Delivery]:
    return list(s.exec(select(Delivery).where(Delivery.state.in_(states))).all())  # type: ignore[attr-defined]


def failed_unalerted(s: Session, failed: str) -> list[tuple[Delivery, str | None]]:
    """Failed rows no alert told of yet, each with its episode's title (if any)."""
    from syndicator.store.models import Episode

    rows = s.exec(
        select(Delivery, Episode.title)
        .join(Episode, isouter=True)  # type: ignore[arg-type]
        .where(Delivery.state == failed, Delivery.alerted == False)  # noqa: E712
    ).all()
    return [(d, t) for d, t in rows]


def next_due_at(
    s: Session,
    now: datetime,
    *,
    waiting: list[str],
    unknown: str,
    held: list[str],
    planned: str,
) -> datetime | None:
    """When the next row becomes due: the earliest retry or due time of rows in
    `waiting` (and of `unknown` rows on channels not in `held`), or a `planned` row's
    later due_at."""
    due = s.exec(
        select(sa.func.min(sa.func.coalesce(Delivery.next_attempt_at, Delivery.due_at))).where(
            sa.or_(
                Delivery.state.in_(waiting),  # type: ignore[attr-defined]
                sa.and_(Delivery.state == unknown, Delivery.channel.not_in(held)),  # type: ignore[attr-defined]
            )
        )
    ).one()
    # A planned row with a later due_at than next_attempt_at waits for due_at.
    later = s.exec(
        select(sa.func.min(Delivery.due_at)).where(
            Delivery.state == planned,
            Delivery.due_at > now,  # type: ignore[operator]
        )
    ).one()
    candidates = [t for t in (due, later) if t is not None]
    return min(candidates) if candidates else None


def count_by_channel_kind_state(s: Session) -> list[tuple[str, str, str, int]]:
    """How many rows each (channel, kind, state) has (one GROUP BY)."""
    rows = s.exec(
        select(Delivery.channel, Delivery.kind, Delivery.state, sa.func.count()).group_by(
            Delivery.channel, Delivery.kind, Delivery.state
        )
    ).all()
    return [(c, k, st, int(n)) for c, k, st, n in rows]


def latency_histogram(
    s: Session, buckets: Sequence[float]
) -> list[tuple[str, int, float, list[int]]]:
    """Per channel: how many sends have a latency, its total, and how many are at most
    each bucket bound — counted by the database from the stored rows."""
    lat = Delivery.latency_seconds
    cols = [sa.func.count(lat), sa.func.coalesce(sa.func.sum(lat), 0.0)] + [
        sa.func.sum(sa.case((lat <= b, 1), else_=0))  # type: ignore[operator]
        for b in buckets
    ]
    out = []
    for row in s.exec(
        select(Delivery.channel, *cols)  # type: ignore[call-overload]
        .where(lat.is_not(None))  # type: ignore[union-attr]
        .group_by(Delivery.channel)
    ).all():
        channel, n, total, *le = row
        out.append((channel, int(n), float(total), [int(x or 0) for x in le]))
    return out


# ---------------------------------------------------------------- the web page


def newest(s: Session, channel: str, kind: str, limit: int) -> list[Delivery]:
    # channel is indexed; the index carries the rowid, so "newest first" needs no sort.
    return list(
        s.exec(
            select(Delivery)
            .where(Delivery.channel == channel, Delivery.kind == kind)
            .order_by(Delivery.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
    )


def states_of_episodes(s: Session, ids: list[int]) -> list[tuple[int, str, str, str]]:
    """(episode_id, channel, state, kind) of every row of these episodes, oldest first."""
    if not ids:
        return []
    rows = s.exec(
        select(Delivery.episode_id, Delivery.channel, Delivery.state, Delivery.kind)
        .where(Delivery.episode_id.in_(ids))  # type: ignore[union-attr]
        .order_by(Delivery.id)
    ).all()
    return [(e, c, st, k) for e, c, st, k in rows if e is not None]


def of_episode(s: Session, episode_id: int) -> list[Delivery]:
    return list(
        s.exec(
            select(Delivery)
            .where(Delivery.episode_id == episode_id)
            .order_by(Delivery.kind, Delivery.channel, Delivery.id)  # type: ignore[arg-type]
        ).all()
    )


def page(
    s: Session,
    *,
    state: str = "",
    channel: str = "",
    kind: str = "",
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[tuple[Delivery, str | None]]]:
    """Rows matching the filters, newest first, each with its episode's guid; and
    how many match in all."""
    from syndicator.store.models import Episode

    conds = []
    if state:
        conds.append(Delivery.state == state)
    if channel:
        conds.append(Delivery.channel == channel)
    if kind:
        conds.append(Delivery.kind == kind)
    total = int(s.exec(select(sa.func.count()).select_from(Delivery).where(*conds)).one())
    rows = s.exec(
        select(Delivery, Episode.guid)
        .join(Episode, isouter=True)  # type: ignore[arg-type]
        .where(*conds)
        .order_by(Delivery.id.desc())  # type: ignore[union-attr]
        .limit(limit)
        .offset(offset)
    ).all()
    return total, [(d, g) for d, g in rows]


def last_sent_by_channel(s: Session, sent: str) -> dict[str, datetime]:
    return dict(
        s.exec(
            select(Delivery.channel, sa.func.max(Delivery.sent_at))
            .where(Delivery.state == sent)
            .group_by(Delivery.channel)
        ).all()
    )


def change_stamp(s: Session) -> tuple[Any, ...]:
    # max(id) sees inserts without counting rows; max(updated_at) sees updates.
    q = sa.select(sa.func.max(Delivery.updated_at), sa.func.max(Delivery.id))
    return tuple(s.execute(q).one())


def first_sent_posts(
    s: Session, channels: Sequence[str], sent: str, kinds: Sequence[str]
) -> dict[tuple[int, str], tuple[str | None, str | None]]:
    """(episode id, channel) -> (remote_id, remote_url) of the first post of that episode
    sent on that channel (rows of `kinds`, by send time): a later reshare never replaces it."""
    if not channels:
        return {}
    q = (
        select(Delivery.episode_id, Delivery.channel, Delivery.remote_id, Delivery.remote_url)
        .where(
            Delivery.channel.in_(list(channels)),  # type: ignore[attr-defined]
            Delivery.state == sent,
            Delivery.kind.in_(list(kinds)),  # type: ignore[attr-defined]
            Delivery.episode_id.is_not(None),  # type: ignore[union-attr]
            sa.or_(Delivery.remote_id.is_not(None), Delivery.remote_url.is_not(None)),  # type: ignore[union-attr]
        )
        # the same order on SQLite and PostgreSQL (their NULLs sort apart by default)
        .order_by(sa.nulls_last(Delivery.sent_at.asc()), Delivery.id)  # type: ignore[union-attr,arg-type]
    )
    out: dict[tuple[int, str], tuple[str | None, str | None]] = {}
    for episode_id, channel, remote_id, remote_url in s.exec(q).all():
        out.setdefault((episode_id, channel), (remote_id, remote_url))
    return out


# ---------------------------------------------------------------- reply threads


def release(s: Session, key: str, waiting: str, planned: str, now: datetime) -> bool:
    """The reply row `key`, if it is `waiting`, becomes `planned` and due now (its parent
    was just sent); True if it was."""
    res = s.execute(
        sa.update(Delivery)
        .where(Delivery.key == key, Delivery.state == waiting)  # type: ignore[arg-type]
        .values(state=planned, due_at=now, next_attempt_at=None, last_error=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1  # type: ignore[attr-defined,no-any-return]


# ---------------------------------------------------------------- a person in the loop


def due_untried(
    s: Session, channel: str, states: list[str], kinds: list[str], now: datetime
) -> list[Delivery]:
    """The channel's rows of `kinds` in `states` that are due now and never tried: what a
    pass would start sending at once (catch-up counts them), oldest due first."""
    q = (
        select(Delivery)
        .where(
            Delivery.channel == channel,
            Delivery.state.in_(states),  # type: ignore[attr-defined]
            Delivery.kind.in_(kinds),  # type: ignore[attr-defined]
            Delivery.attempts == 0,
            sa.or_(Delivery.due_at.is_(None), Delivery.due_at <= now),  # type: ignore[union-attr,operator]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        )
        .order_by(Delivery.due_at, Delivery.id)  # type: ignore[arg-type]
    )
    return list(s.exec(q).all())


def held_unalerted(s: Session, awaiting: str) -> list[Delivery]:
    """Rows waiting for a person that no alert told of yet, oldest first."""
    return list(
        s.exec(
            select(Delivery)
            .where(Delivery.state == awaiting, Delivery.alerted == False)  # noqa: E712
            .order_by(Delivery.id)  # type: ignore[arg-type]
        ).all()
    )


# ---------------------------------------------------------------- waiting for audio


def due_waiting_episodes(s: Session, waiting: str, kind: str, now: datetime) -> list[int]:
    """Episodes with `kind` rows in the `waiting` state whose check is due (and whose
    publish time has come): each is checked once, whatever its number of channels."""
    q = (
        select(Delivery.episode_id)
        .where(
            Delivery.state == waiting,
            Delivery.kind == kind,
            Delivery.episode_id.is_not(None),  # type: ignore[union-attr]
            sa.or_(Delivery.due_at.is_(None), Delivery.due_at <= now),  # type: ignore[union-attr,operator]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        )
        .distinct()
        .order_by(Delivery.episode_id)
    )
    return [i for i in s.exec(q).all() if i is not None]


def release_waiting(
    s: Session, episode_id: int, waiting: str, kind: str, to: str, now: datetime
) -> int:
    """The episode's `waiting` rows move to `to` (due now); returns how many."""
    values = {"state": to, "next_attempt_at": None, "last_error": None, "updated_at": now}
    return _update_waiting(s, episode_id, waiting, kind, values)


def hold_waiting(
    s: Session, episode_id: int, waiting: str, kind: str, until: datetime, why: str, now: datetime
) -> int:
    """The episode's `waiting` rows wait until `until` (the next check), saying why."""
    values = {"next_attempt_at": until, "last_error": why, "updated_at": now}
    return _update_waiting(s, episode_id, waiting, kind, values)


def _update_waiting(
    s: Session, episode_id: int, waiting: str, kind: str, values: dict[str, Any]
) -> int:
    res = s.execute(
        sa.update(Delivery)
        .where(
            Delivery.episode_id == episode_id,  # type: ignore[arg-type]
            Delivery.state == waiting,  # type: ignore[arg-type]
            Delivery.kind == kind,  # type: ignore[arg-type]
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount  # type: ignore[attr-defined,no-any-return]
