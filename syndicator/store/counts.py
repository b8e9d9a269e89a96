"""Listener counts: what people did with a sent post (likes, reposts, replies, quotes,
views), read back from its network now and then and kept as a time series per delivery.

The caller (announce/listeners.py) decides when to read and which channels can; the
queries here only say which rows match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import Delivery, DeliveryCount, Episode

# The counts a network may give, in the order they are shown.
KEYS: tuple[str, ...] = ("likes", "reposts", "replies", "quotes", "views")


@dataclass(frozen=True)
class DueRead:
    delivery_id: int
    channel: str
    remote_id: str


def add(
    s: Session, delivery_id: int, channel: str, at: datetime, counts: Mapping[str, int]
) -> DeliveryCount:
    """One reading; keys outside KEYS are ignored, missing ones stay None."""
    values = {k: int(counts[k]) for k in KEYS if counts.get(k) is not None}
    row = DeliveryCount(delivery_id=delivery_id, channel=channel, at=at, **values)
    s.add(row)
    return row


def mark_gone(s: Session, delivery_id: int, channel: str, at: datetime) -> None:
    """The network says the post is gone (deleted): a last row, and it is not read again."""
    s.add(DeliveryCount(delivery_id=delivery_id, channel=channel, at=at, gone=True))


def _latest_at() -> Any:
    """delivery_id -> (its latest reading's time, whether any reading said gone)."""
    return (
        select(
            DeliveryCount.delivery_id,
            sa.func.max(DeliveryCount.at).label("last_at"),
            sa.func.max(sa.case((DeliveryCount.gone, 1), else_=0)).label("gone"),
        )
        .group_by(DeliveryCount.delivery_id)  # type: ignore[arg-type]
        .subquery()
    )


def due(
    s: Session,
    channel: str,
    *,
    sent_state: str,
    sent_since: datetime,
    read_before: datetime,
    limit: int,
) -> list[DueRead]:
    """The channel's sent posts (sent at or after `sent_since`) whose last reading, or
    the send itself when never read, is at or before `read_before`; oldest first."""
    last = _latest_at()
    since_read = sa.func.coalesce(last.c.last_at, Delivery.sent_at)
    q = (
        select(Delivery.id, Delivery.channel, Delivery.remote_id)
        .outerjoin(last, last.c.delivery_id == Delivery.id)
        .where(
            Delivery.channel == channel,
            Delivery.state == sent_state,
            Delivery.remote_id.is_not(None),  # type: ignore[union-attr]
            Delivery.remote_id != "",
            Delivery.sent_at >= sent_since,  # type: ignore[operator]
            sa.func.coalesce(last.c.gone, 0) == 0,
            since_read <= read_before,
        )
        .order_by(since_read, Delivery.id)
        .limit(limit)
    )
    return [
        DueRead(int(i), str(c), str(r))
        for i, c, r in s.exec(q).all()  # type: ignore[call-overload]
        if i is not None and r
    ]


class Reading(NamedTuple):
    """One reading, as plain values (thousands of them make a page: no ORM objects)."""

    delivery_id: int
    at: datetime
    likes: int | None
    reposts: int | None
    replies: int | None
    quotes: int | None
    views: int | None
    gone: bool


def series(s: Session, delivery_ids: Iterable[int]) -> dict[int, list[Reading]]:
    """Every reading of these deliveries, oldest first."""
    ids = list(delivery_ids)
    if not ids:
        return {}
    q = (
        select(
            DeliveryCount.delivery_id, DeliveryCount.at,
            *(getattr(DeliveryCount, k) for k in KEYS), DeliveryCount.gone,
        )
        .where(DeliveryCount.delivery_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(DeliveryCount.at, DeliveryCount.id)  # type: ignore[arg-type]
    )  # fmt: skip
    out: dict[int, list[Reading]] = {}
    for row in s.exec(q).all():  # type: ignore[call-overload]
        r = Reading(*row)
        out.setdefault(r.delivery_id, []).append(r)
    return out


@dataclass
class ReadPost:
    """A sent post that has readings, with its episode's title."""

    delivery: Delivery
    episode_title: str
    readings: list[Reading]


def read_posts(
    s: Session, since: datetime | None = None, delivery_ids: Iterable[int] | None = None
) -> list[ReadPost]:
    """Posts with at least one reading (one at or after `since` when given; only those of
    `delivery_ids` when given), newest send first, each with every reading."""
    readings = select(DeliveryCount.delivery_id)
    if since is not None:
        readings = readings.where(DeliveryCount.at >= since)  # type: ignore[operator]
    q = (
        select(Delivery, Episode.title)
        .join(Episode, Episode.id == Delivery.episode_id, isouter=True)  # type: ignore[arg-type]
        .where(Delivery.id.in_(readings))  # type: ignore[union-attr]
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())  # type: ignore[union-attr]
    )
    if delivery_ids is not None:
        q = q.where(Delivery.id.in_(list(delivery_ids)))  # type: ignore[union-attr]
    rows = list(s.exec(q).all())
    readings = series(s, [d.id for d, _ in rows if d.id is not None])
    return [ReadPost(d, t or "", readings.get(d.id or 0, [])) for d, t in rows]


def latest_totals(s: Session) -> list[tuple[str, str, int]]:
    """(channel, key, sum over the channel's posts of each post's latest count)."""
    last = (
        select(DeliveryCount.delivery_id, sa.func.max(DeliveryCount.id).label("last_id"))
        .where(DeliveryCount.gone.is_(False))  # type: ignore[attr-defined]
        .group_by(DeliveryCount.delivery_id)  # type: ignore[arg-type]
        .subquery()
    )
    cols = [sa.func.sum(getattr(DeliveryCount, k)) for k in KEYS]
    q = (
        select(DeliveryCount.channel, sa.func.count(), *cols)
        .join(last, last.c.last_id == DeliveryCount.id)
        .group_by(DeliveryCount.channel)  # type: ignore[arg-type]
        .order_by(DeliveryCount.channel)  # type: ignore[arg-type]
    )
    out: list[tuple[str, str, int]] = []
    for row in s.exec(q).all():  # type: ignore[call-overload]
        channel, posts, *sums = row
        out.append((channel, "posts", int(posts)))
        for key, value in zip(KEYS, sums, strict=True):
            if value is not None:
                out.append((channel, key, int(value)))
    return out


def last_read_at(s: Session) -> list[tuple[str, datetime]]:
    """When each channel's counts were last read."""
    q = select(DeliveryCount.channel, sa.func.max(DeliveryCount.at)).group_by(
        DeliveryCount.channel  # type: ignore[arg-type]
    )
    return [(c, at) for c, at in s.exec(q).all() if at is not None]  # type: ignore[call-overload]


def change_stamp(s: Session) -> tuple[Any, ...]:
    """Changes when a reading is stored (the web page's cache key)."""
    return tuple(s.execute(sa.select(sa.func.max(DeliveryCount.id), sa.func.count())).one())
