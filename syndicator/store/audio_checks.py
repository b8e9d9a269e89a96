"""Audio checks: per episode, whether its enclosure answered (announce/audio.py decides)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.store.models import AudioCheck, Delivery, Episode

PASSED, FAILING = "passed", "failing"


def get(s: Session, episode_id: int) -> AudioCheck | None:
    return s.get(AudioCheck, episode_id)


def passed(s: Session, episode_id: int, url: str) -> bool:
    """The episode's current enclosure URL passed a check (a new URL is checked again)."""
    row = s.get(AudioCheck, episode_id)
    return row is not None and row.state == PASSED and row.url == url


def _row(s: Session, episode_id: int, url: str) -> AudioCheck:
    """The episode's row for this URL: a changed URL starts over (count, timeout, alert)."""
    row = s.get(AudioCheck, episode_id)
    if row is None:
        row = AudioCheck(episode_id=episode_id, url=url)
    elif row.url != url:
        row.url, row.checks, row.first_failed_at = url, 0, None
        row.timed_out_at, row.alerted, row.passed_at = None, False, None
    return row


def record_pass(s: Session, episode_id: int, url: str, now: datetime, **answer: Any) -> AudioCheck:
    """`answer`: status, content_type, length as the server gave them."""
    row = _row(s, episode_id, url)
    for k, v in answer.items():
        setattr(row, k, v)
    row.state, row.passed_at, row.last_checked_at = PASSED, now, now
    row.next_check_at, row.last_error = None, None
    s.add(row)
    return row


def record_failure(
    s: Session,
    episode_id: int,
    url: str,
    now: datetime,
    error: str,
    next_check: datetime,
    **answer: Any,
) -> AudioCheck:
    row = _row(s, episode_id, url)
    for k, v in answer.items():
        setattr(row, k, v)
    row.state, row.checks, row.last_error = FAILING, row.checks + 1, error
    row.first_failed_at = row.first_failed_at or now
    row.last_checked_at, row.next_check_at = now, next_check
    s.add(row)
    return row


def timed_out_unalerted(s: Session) -> list[tuple[AudioCheck, str | None]]:
    """Checks that ran past their timeout and still fail, no alert told yet; with titles."""
    rows = s.exec(
        select(AudioCheck, Episode.title)
        .join(Episode)  # type: ignore[arg-type]
        .where(
            AudioCheck.state == FAILING,
            AudioCheck.timed_out_at.is_not(None),  # type: ignore[union-attr]
            AudioCheck.alerted == False,  # noqa: E712
        )
    ).all()
    return [(c, t) for c, t in rows]


def mark_alerted(s: Session, episode_id: int) -> None:
    row = s.get(AudioCheck, episode_id)
    if row is not None:
        row.alerted = True
        s.add(row)


def failing(s: Session, waiting: str) -> list[tuple[AudioCheck, Episode]]:
    """Failing checks whose episode still has rows in the `waiting` state, with the
    episode, oldest failure first (status, the web page)."""
    held = sa.exists().where(
        Delivery.episode_id == AudioCheck.episode_id,  # type: ignore[arg-type]
        Delivery.state == waiting,  # type: ignore[arg-type]
    )
    rows = s.exec(
        select(AudioCheck, Episode)
        .join(Episode)  # type: ignore[arg-type]
        .where(AudioCheck.state == FAILING, held)
        .order_by(AudioCheck.first_failed_at)  # type: ignore[arg-type]
    ).all()
    return [(c, e) for c, e in rows]
