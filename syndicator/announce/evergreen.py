"""Evergreen resharing: older episodes shared again on a schedule, per channel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlmodel import Session

from syndicator.announce.outbox import (
    PLANNED,
    SENT,
    SKIPPED,
    PlannedRow,
    Renders,
    awaiting_if_approve,
    filter_reason,
    plan_row,
)
from syndicator.config import Settings
from syndicator.store import deliveries, episodes


def plan_reshares(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: Mapping[str, int],
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
        last = deliveries.last_planned_at(s, ch.name, "reshare")
        if last is not None and last + ev.every > now:
            continue
        shared = deliveries.last_sent_by_episode(s, ch.name, SENT)
        recent = now - timedelta(days=ev.min_days_between)
        candidates = [
            ep
            for ep in episodes.live_dated_before(s, now - ev.min_age)
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
        state, reason = awaiting_if_approve(ch, state, reason)
        planned = plan_row(
            s, settings, renderer, limits, now, "reshare", candidates[0], ch, state, reason,
            dry_run, extra=now.strftime("%Y%m%dT%H%M%S"),
        )  # fmt: skip
        if planned is not None:
            out.append(planned)
    return out
