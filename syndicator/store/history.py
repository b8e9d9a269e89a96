"""An episode's history: what identity decided for it, when and why."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from syndicator.store.models import EpisodeEvent

MAX_DETAIL = 2000


def add(s: Session, episode_id: int, event: str, detail: str, now: datetime) -> None:
    s.add(EpisodeEvent(episode_id=episode_id, at=now, event=event, detail=detail[:MAX_DETAIL]))


def for_episodes(s: Session, ids: list[int] | None = None) -> dict[int, list[EpisodeEvent]]:
    """Events per episode id, oldest first; every episode's when `ids` is None."""
    q = select(EpisodeEvent).order_by(EpisodeEvent.at, EpisodeEvent.id)  # type: ignore[arg-type]
    if ids is not None:
        if not ids:
            return {}
        q = q.where(EpisodeEvent.episode_id.in_(ids))  # type: ignore[attr-defined]
    out: dict[int, list[EpisodeEvent]] = {}
    for e in s.exec(q).all():
        out.setdefault(e.episode_id, []).append(e)
    return out
