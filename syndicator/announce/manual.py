"""What a person does to the outbox, from the CLI or the web page (one code path):
retry, skip, settle an `unknown` row, announce an episode now."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce.cards import Images
from syndicator.announce.outbox import (
    AWAITING_APPROVAL,
    FAILED,
    PLANNED,
    RETRYING,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    WAITING_AUDIO,
    Renders,
    audio_unverified,
    delivery_key,
    image_payload,
    new_row,
    plan_thread,
    render_or_report,
)
from syndicator.config import Settings
from syndicator.store import deliveries, episodes
from syndicator.store.db import session
from syndicator.store.models import Delivery


class ActionError(Exception):
    """An action that doesn't apply to the row's state; the message says why."""


def _get(s: Session, delivery_id: int) -> Delivery:
    row = deliveries.by_id(s, delivery_id)
    if row is None:
        raise ActionError(f"no delivery {delivery_id}")
    return row


def retry(engine: Engine, delivery_id: int, now: datetime) -> Delivery:
    with session(engine, write=True) as s:
        row = _get(s, delivery_id)
        if row.state in (SENT, SENDING):
            raise ActionError(f"delivery {delivery_id} is {row.state}; nothing to retry")
        if row.state == UNKNOWN:
            raise ActionError(
                "its outcome is unknown: check the channel, then mark it sent or not sent"
            )
        if row.state == AWAITING_APPROVAL:
            raise ActionError(
                f"delivery {delivery_id} waits for approval: approve, edit or reject it"
            )
        if row.state == WAITING_AUDIO:
            # retry = check the audio now; only a passed check lets it go out
            return deliveries.save(s, row, next_attempt_at=now, due_at=None, updated_at=now)
        return deliveries.save(
            s, row, state=RETRYING, next_attempt_at=now, due_at=None, attempts=0,
            skip_reason=None, updated_at=now,
        )  # fmt: skip


def skip(
    engine: Engine, delivery_id: int, now: datetime, reason: str = "skipped by hand"
) -> Delivery:
    with session(engine, write=True) as s:
        row = _get(s, delivery_id)
        if row.state in (SENT, SENDING):
            raise ActionError(f"delivery {delivery_id} is {row.state}; it can't be skipped")
        return deliveries.save(s, row, state=SKIPPED, skip_reason=reason, updated_at=now)


def mark_unknown(engine: Engine, delivery_id: int, now: datetime, *, was_sent: bool) -> Delivery:
    """A person checked the network: the post is there (sent) or not (send again)."""
    with session(engine, write=True) as s:
        row = _get(s, delivery_id)
        if row.state not in (UNKNOWN, FAILED):
            raise ActionError(f"delivery {delivery_id} is {row.state}, not unknown")
        if was_sent:
            values = {"state": SENT, "sent_at": now, "last_error": "marked sent by hand"}
        else:
            values = {"state": RETRYING, "next_attempt_at": now, "attempts": 0}
            values["last_error"] = "marked not sent by hand"
            # What a multi-step send recorded (a signed note, a created container) belongs
            # to the attempt a person just declared lost: the next attempt starts anew.
            # Uploaded media stay: the image is still good.
            # ("frozen" is the same thing on rows made before `progress` existed.)
            payload = row.payload or {}
            if "progress" in payload or "frozen" in payload:
                values["payload"] = {
                    k: v for k, v in payload.items() if k not in ("progress", "frozen")
                }
        return deliveries.save(s, row, **values, updated_at=now)


def announce_now(
    engine: Engine,
    settings: Settings,
    renderer: Renders,
    limits: Mapping[str, int],
    episode_id: int,
    now: datetime,
    channel: str | None = None,
) -> list[Delivery]:
    """Queue an episode on its channels now, even a backlog or filtered one."""
    out = []
    with session(engine, write=True) as s:
        ep = episodes.by_id(s, episode_id)
        if ep is None:
            raise ActionError(f"no episode {episode_id}")
        if ep.withdrawn:
            why = f" ({ep.withdrawn_reason})" if ep.withdrawn_reason else ""
            raise ActionError(
                f"episode {ep.title!r} is withdrawn{why}: it is not announced and not in "
                "the feed; restore its post (or its feed item) first, then announce it"
            )
        images = Images(settings)
        for ch in settings.channels:
            if not ch.enabled or (channel and ch.name != channel):
                continue
            row = deliveries.by_key(s, delivery_key("announce", ep.id, ch.name))  # type: ignore[arg-type]
            if row is not None and row.state in (SENT, SENDING, UNKNOWN):
                continue
            if row is None:
                row = new_row("announce", ep, ch, now, settings)
            rendered = render_or_report(s, renderer, ep, ch, limits, now)
            if rendered is None:
                raise ActionError(
                    f"the {ch.name} template is broken; see the problems in `syndicator status`"
                )
            if not plan_thread(s, settings, renderer, limits, now, ep, ch, row.key):
                raise ActionError(
                    f"the {ch.name} thread template is broken; see the problems in "
                    "`syndicator status`"
                )
            # by hand too: never announced before its audio is there
            waiting = audio_unverified(s, settings, ep)
            payload = row.payload or {}
            if not row.attempts:  # nothing went out: the image is frozen now, with the text
                payload = {**payload, **image_payload(s, images, ep, ch, now)}
            # queued by a person: approved (catch-up and `approve = true` don't hold it)
            payload = {**payload, "approved_at": now.isoformat(), "approved_by": "announce"}
            deliveries.save(
                s, row, text=rendered.text, text_length=rendered.length, payload=payload,
                state=WAITING_AUDIO if waiting else PLANNED,
                skip_reason=None, due_at=now, next_attempt_at=now, attempts=0, updated_at=now,
            )  # fmt: skip
            out.append(row)
        if channel and not out:
            raise ActionError(f"channel {channel!r} has nothing to (re)announce for this episode")
    return out
