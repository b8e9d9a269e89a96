"""Remote chapters files (`podcast:chapters` URLs): fetched once, then read from here."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from syndicator.store.db import in_lists
from syndicator.store.models import RemoteChapters


def cached(s: Session, urls: Iterable[str]) -> dict[str, RemoteChapters]:
    """The stored outcome of each of these URLs that was fetched before, by URL."""
    wanted = list(dict.fromkeys(urls))
    out: dict[str, RemoteChapters] = {}
    for chunk in in_lists(wanted):
        q = select(RemoteChapters).where(RemoteChapters.url.in_(chunk))  # type: ignore[union-attr]
        out.update({row.url: row for row in s.exec(q).all()})
    return out


def put(
    s: Session, url: str, chapters: list[dict[str, Any]], error: str | None, now: datetime
) -> None:
    """Store a fetch's outcome (insert or overwrite)."""
    row = s.get(RemoteChapters, url) or RemoteChapters(url=url)
    row.chapters = chapters
    row.error = error
    row.fetched_at = now
    s.add(row)
