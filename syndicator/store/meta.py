"""Small key/value facts (`meta`): an alert's open incident, a site fingerprint, the
web session secret."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from syndicator.store.db import in_lists
from syndicator.store.models import Meta


def get(s: Session, key: str) -> str | None:
    row = s.get(Meta, key)
    return None if row is None else row.value


def get_many(s: Session, keys: list[str]) -> dict[str, str]:
    """The values of those of `keys` that are set, in a few queries."""
    out: dict[str, str] = {}
    for chunk in in_lists(keys):
        q = select(Meta).where(Meta.key.in_(chunk))  # type: ignore[attr-defined]
        out.update((row.key, row.value) for row in s.exec(q))
    return out


def put(s: Session, key: str, value: str, now: datetime) -> None:
    """Set `key` (insert or overwrite)."""
    s.merge(Meta(key=key, value=value, updated_at=now))


def add(s: Session, key: str, value: str, now: datetime) -> None:
    """Insert `key`; the flush fails with IntegrityError if another writer has it."""
    s.add(Meta(key=key, value=value, updated_at=now))


def delete(s: Session, key: str) -> None:
    row = s.get(Meta, key)
    if row is not None:
        s.delete(row)
