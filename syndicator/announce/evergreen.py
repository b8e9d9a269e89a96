"""Evergreen resharing: older episodes shared again on a schedule, per channel."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from syndicator.announce.outbox import (
    PLANNED,
    SENT,
    SKIPPED,
    PlannedRow,
    Renders,
    filter_reason,
    plan_row,
)
from syndicator.config import Settings
from syndicator.store.models import Delivery, Episode


def plan_reshares(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: dict[str, int],
    now: datetime,
    *,
    dry_run: bool = False,
) -> list[PlannedRow]:
    """At most one reshare per channel per `evergreen.every`, whatever the downtime:
    the oldest episode not shared recently, never twice within `min_days_between`."""
    out: list[PlannedRow] = []
    for ch in settings.channels:
        ev = ch.evergreen
        if not (ch.enabled and ev.enabled):
            continue
        last = s.exec(
            select(sa.func.max(Delivery.planned_at)).where(  # type: ignore[arg-type]
                Delivery.channel == ch.name, Delivery.kind == "reshare"
            )
        ).one()
        if last is not None and last + ev.every > now:
            continue
        shared: dict[int, datetime] = {}
        for ep_id, when in s.exec(
            select(Delivery.episode_id, sa.func.max(Delivery.sent_at))  # type: ignore[call-overload]
            .where(Delivery.channel == ch.name, Delivery.state == SENT)
            .group_by(Delivery.episode_id)
        ).all():
            if ep_id is not None and when is not None:
                shared[ep_id] = when
        recent = now - timedelta(days=ev.min_days_between)
        candidates = [
            ep
            for ep in s.exec(
                select(Episode).where(
                    Episode.withdrawn == False,  # noqa: E712
                    Episode.date <= now - ev.min_age,  # type: ignore[operator]
                )
            ).all()
            if (shared.get(ep.id or 0) is None or shared[ep.id or 0] < recent)  # type: ignore[operator]
            and filter_reason(ep, ch, now) in (None, "filtered: older than max_age")
        ]
        if not candidates:
            continue
        epoch = datetime.min.replace(tzinfo=now.tzinfo)
        candidates.sort(key=lambda e: (shared.get(e.id or 0, epoch), e.date or epoch, e.id))
        state, reason = (
            (SKIPPED, "dry-run channel: rendered, not sent") if ch.dry_run else (PLANNED, None)
        )
        planned = plan_row(
            s, settings, renderer, limits, now, "reshare", candidates[0], ch, state, reason,
            dry_run, extra=now.strftime("%Y%m%dT%H%M%S"),
        )  # fmt: skip
        if planned is not None:
            out.append(planned)
    return out
