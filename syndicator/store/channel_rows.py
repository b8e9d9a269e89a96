"""What the store keeps per channel: when it joined, its account, and its rows on rename."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, func, select

from syndicator.store.models import Delivery, Meta
from syndicator.timeutil import parse_iso

_PREFIX = "channel:"


@dataclass
class ChannelRecord:
    name: str
    added_at: datetime
    account: str | None  # a fingerprint of the account it posts as, when known
    removed_at: datetime | None = None  # a pass ran without it in the config


def _record(name: str, value: str) -> ChannelRecord:
    data = json.loads(value)
    removed = data.get("removed_at")
    return ChannelRecord(
        name,
        parse_iso(data["added_at"]),
        data.get("account"),
        parse_iso(removed) if removed else None,
    )


def get(s: Session, name: str) -> ChannelRecord | None:
    row = s.get(Meta, _PREFIX + name)
    if row is None:
        return None
    return _record(name, row.value)


def put(s: Session, rec: ChannelRecord, now: datetime) -> None:
    removed = rec.removed_at.isoformat() if rec.removed_at else None
    value = json.dumps(
        {"added_at": rec.added_at.isoformat(), "account": rec.account, "removed_at": removed}
    )
    s.merge(Meta(key=_PREFIX + rec.name, value=value, updated_at=now))


def drop(s: Session, name: str) -> None:
    row = s.get(Meta, _PREFIX + name)
    if row is not None:
        s.delete(row)


def known(s: Session) -> list[ChannelRecord]:
    rows = s.exec(select(Meta).where(Meta.key.startswith(_PREFIX))).all()  # type: ignore[attr-defined]
    return [_record(r.key[len(_PREFIX) :], r.value) for r in rows]


def first_planned(s: Session, channel: str) -> datetime | None:
    """When the channel's first row was planned (a channel from before records existed)."""
    return s.exec(select(func.min(Delivery.planned_at)).where(Delivery.channel == channel)).one()


def rename_rows(s: Session, old: str, new: str) -> int:
    """Move a channel's delivery rows to its new name; their keys follow."""
    rows = s.exec(select(Delivery).where(Delivery.channel == old)).all()
    for d in rows:
        parts = d.key.split(":", 3)  # kind:episode:channel[:extra]
        if len(parts) >= 3 and parts[2] == old:
            parts[2] = new
            d.key = ":".join(parts)
        d.channel = new
        s.add(d)
    return len(rows)
