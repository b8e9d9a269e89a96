"""A person in the loop: rows held in `awaiting_approval`, and what a person does to them
(approve, edit, reject) from the CLI or the web page; and the catch-up rule, which holds
(or sends, or skips) a burst of announcements that fell due at once after downtime.

The hold itself is decided where rows are planned (`outbox.awaiting_if_approve`); an
approved row goes back to `planned` and the sender treats it like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce.fit import count, fit_plain
from syndicator.announce.manual import ActionError
from syndicator.announce.outbox import AWAITING_APPROVAL, PLANNED, SKIPPED
from syndicator.config import Settings
from syndicator.store import deliveries
from syndicator.store.db import session
from syndicator.store.models import Delivery

log = logging.getLogger(__name__)

# The kinds of row catch-up counts: announcements (not feed pings).
ANNOUNCEMENT_KINDS = ["announce", "reshare"]


def _awaiting(s: Session, delivery_id: int, verb: str) -> Delivery:
    row = deliveries.by_id(s, delivery_id)
    if row is None:
        raise ActionError(f"no delivery {delivery_id}")
    if row.state != AWAITING_APPROVAL:
        raise ActionError(
            f"delivery {delivery_id} is {row.state}, not {AWAITING_APPROVAL}: only a held "
            f"row can be {verb} (see `syndicator deliveries --state {AWAITING_APPROVAL}`)"
        )
    return row


def approve(engine: Engine, delivery_id: int, now: datetime, by: str = "cli") -> Delivery:
    """Let a held row go: it is sent by the next pass once due (its due time is kept, so
    `announce.delay` and a future date still apply); catch-up never holds it again."""
    with session(engine, write=True) as s:
        row = _awaiting(s, delivery_id, "approved")
        payload = {**row.payload, "approved_at": now.isoformat(), "approved_by": by}
        return deliveries.save(
            s, row, state=PLANNED, skip_reason=None, payload=payload, next_attempt_at=None,
            alerted=False, updated_at=now,
        )  # fmt: skip


def reject(
    engine: Engine, delivery_id: int, now: datetime, reason: str = "rejected by hand"
) -> Delivery:
    """Never send a held row; it stays in the outbox as `skipped`, with the reason."""
    with session(engine, write=True) as s:
        row = _awaiting(s, delivery_id, "rejected")
        return deliveries.save(s, row, state=SKIPPED, skip_reason=reason, updated_at=now)


@dataclass
class Edited:
    row: Delivery
    shortened: bool  # the text was cut to fit the channel's limit
    limit: int


def edit(
    engine: Engine,
    settings: Settings,
    limits: Mapping[str, int],
    delivery_id: int,
    text: str,
    now: datetime,
    by: str = "cli",
) -> Edited:
    """Replace a held row's text: fitted to the channel's limit and frozen again (a new
    freeze time, nothing the channel froze for the old text). The row stays held."""
    text = text.strip()
    if not text:
        raise ActionError("the new text is empty: nothing was changed (reject the row instead)")
    with session(engine, write=True) as s:
        row = _awaiting(s, delivery_id, "edited")
        try:
            ch = settings.channel(row.channel)
        except KeyError:
            raise ActionError(
                f"channel {row.channel!r} is not in the config any more: its text can't be "
                "fitted; add the channel back or reject the row"
            ) from None
        limit = limits.get(ch.name) or ch.limit or 0
        fitted = fit_plain(text, ch.type, limit) if limit else text
        if not fitted:
            raise ActionError(
                f"not even the first word of the new text fits {ch.name}'s limit of {limit}: "
                "nothing was changed"
            )
        payload = {k: v for k, v in row.payload.items() if k != "frozen"}
        payload.update(edited_at=now.isoformat(), edited_by=by)
        deliveries.save(
            s, row, text=fitted, text_length=count(fitted, ch.type), payload=payload,
            frozen_at=now, updated_at=now,
        )  # fmt: skip
        return Edited(row, fitted != text, limit)


# ---------------------------------------------------------------- catch-up


@dataclass
class CatchUp:
    """What one channel's catch-up did in a pass."""

    channel: str
    due: int  # announcements that were due at once
    policy: str  # hold | send | skip
    ids: list[int]

    def describe(self, limit: int) -> str:
        what = {
            "hold": f"held for approval ({AWAITING_APPROVAL})",
            "send": "sent (catch_up = send)",
            "skip": "skipped (catch_up = skip)",
        }[self.policy]
        return (
            f"catch-up on {self.channel}: {self.due} announcements were due at once "
            f"(more than announce.catch_up_limit = {limit}); {what}"
        )


def catch_up(s: Session, settings: Settings, now: datetime) -> list[CatchUp]:
    """On each channel, more than `announce.catch_up_limit` untried announcements due at
    once (the host was down, a backlog arrived) are held, sent or skipped as the
    channel's `catch_up` (or announce.catch_up) says. Rows a person approved or
    queued by hand are theirs: never counted."""
    limit = settings.announce.catch_up_limit
    out: list[CatchUp] = []
    for ch in settings.channels:
        if not ch.enabled or ch.dry_run:
            continue
        due = [
            r
            for r in deliveries.due_untried(s, ch.name, [PLANNED], ANNOUNCEMENT_KINDS, now)
            if not r.payload.get("approved_at")
        ]
        if len(due) <= limit:
            continue
        policy = ch.catch_up or settings.announce.catch_up
        done = CatchUp(ch.name, len(due), policy, [r.id for r in due if r.id is not None])
        reason = done.describe(limit)
        for row in due:
            if policy == "hold":
                deliveries.save(
                    s, row, state=AWAITING_APPROVAL, skip_reason=reason, alerted=False,
                    updated_at=now,
                )  # fmt: skip
            elif policy == "skip":
                deliveries.save(s, row, state=SKIPPED, skip_reason=reason, updated_at=now)
            else:  # sent as a burst, and not counted again while pacing spreads it out
                payload = {**row.payload, "approved_at": now.isoformat()}
                deliveries.save(s, row, payload={**payload, "approved_by": "catch_up = send"})
        log.warning(reason, extra={"event": "catch-up", "channel": ch.name, "count": len(due)})
        out.append(done)
    return out
