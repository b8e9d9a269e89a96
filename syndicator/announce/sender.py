"""Sending the outbox: the delivery state machine.

A process claims a due row with an atomic conditional UPDATE and a lease, so two
processes never send the same row; a crash leaves `sending` with an expired lease,
which the next pass turns into `unknown` and resolves per the channel's rules
(resend with the same key, read back, or hold for a person).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce.outbox import (
    FAILED,
    PLANNED,
    REPLY,
    RETRYING,
    SENDING,
    SENT,
    UNKNOWN,
    WAITING,
    backoff,
    in_quiet_hours,
    next_in_thread,
)
from syndicator.channels.base import (
    Channel,
    PermanentError,
    Post,
    ReplyRef,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.config import ChannelConfig, Settings
from syndicator.store import deliveries
from syndicator.store.db import session
from syndicator.store.models import Delivery

log = logging.getLogger(__name__)


@dataclass
class SendStats:
    sent: int = 0
    retrying: int = 0
    unknown: int = 0
    failed: int = 0
    held: int = 0
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, state, detail)


def expire_leases(engine: Engine, now: datetime) -> int:
    """A `sending` row whose lease ran out belongs to a process that died mid-send:
    the request may have gone out, so it is `unknown` now."""
    with session(engine, write=True) as s:
        return deliveries.expire_leases(
            s,
            now,
            sending=SENDING,
            unknown=UNKNOWN,
            why="the process sending it stopped before recording the answer",
        )


def claim(
    engine: Engine, delivery_id: int, owner: str, now: datetime, lease: timedelta
) -> str | None:
    """Atomically take a due row; only one process can win.

    Returns the state the row had (so an `unknown` row is reconciled), or None.
    """
    with session(engine, write=True) as s:
        prev = deliveries.state_of(s, delivery_id)
        if prev not in (PLANNED, RETRYING, UNKNOWN):
            return None
        won = deliveries.claim(s, delivery_id, prev, owner, now, lease, sending=SENDING)
        return prev if won else None


def _finish(engine: Engine, delivery_id: int, owner: str, **values: Any) -> bool:
    """Record the outcome, only if we still hold the lease."""
    with session(engine, write=True) as s:
        return deliveries.finish(s, delivery_id, owner, **values)


def to_post(row: Delivery) -> Post:
    payload = row.payload or {}
    return Post(
        delivery_id=row.id or 0,
        text=row.text,
        idempotency_key=row.idempotency_key or "",
        record_key=row.record_key or "",
        created_at=row.frozen_at or row.planned_at,  # type: ignore[arg-type]
        kind=row.kind,
        url=payload.get("url"),
        title=payload.get("title"),
        description=payload.get("description"),
        image=payload.get("image"),
        target=row.target,
        feed_url=payload.get("feed_url"),
        extra={
            **({"langs": payload["langs"]} if payload.get("langs") else {}),
            # what the channel froze before its first send (see _freeze)
            **({"frozen": payload["frozen"]} if payload.get("frozen") else {}),
        },
    )


def _freeze(engine: Engine, channel: Channel, row: Delivery, post: Post, owner: str) -> Post | None:
    """A channel with `freeze(post) -> dict` (e.g. one that signs its post) gets it stored on
    the row before its first network call, so every attempt sends those same bytes; it
    comes back as post.extra["frozen"]. None: the lease was lost, send nothing."""
    freeze = getattr(channel, "freeze", None)
    if freeze is None or post.extra.get("frozen"):
        return post
    frozen = freeze(post)
    with session(engine, write=True) as s:
        if not deliveries.freeze(s, row.id or 0, owner, {**(row.payload or {}), "frozen": frozen}):
            return None
    return replace(post, extra={**post.extra, "frozen": frozen})


def _ref(row: Delivery) -> ReplyRef:
    return ReplyRef(
        row.remote_id or "", row.remote_url, dict((row.payload or {}).get("sent") or {})
    )


def _in_thread(engine: Engine, row: Delivery, post: Post) -> Post | str:
    """A reply's post with its parent and root (as sent); or why it has to wait."""
    payload = row.payload or {}
    with session(engine) as s:
        parent = deliveries.by_key(s, str(payload.get("parent") or ""))
        root = deliveries.by_key(s, str(payload.get("root") or ""))
    for what, r in (("the post it replies to", parent), ("the thread's first post", root)):
        if r is None:
            return f"waiting: {what} has no delivery row"
        if r.state != SENT:
            return f"waiting: {what} (delivery {r.id}) is {r.state}, not sent"
        if not r.remote_id:
            return (
                f"waiting: {what} (delivery {r.id}) was marked sent by hand, so its id on "
                "the network is unknown; skip this reply"
            )
    assert parent is not None and root is not None
    return replace(post, reply_to=_ref(parent), reply_root=_ref(root))


def _sent(engine: Engine, row: Delivery, owner: str, post: Post, sent: Sent, **values: Any) -> bool:
    """Record a send and, in the same transaction, release the reply that answers it: a
    crash leaves either both or neither."""
    if sent.ref:
        # what a reply to this post needs (Bluesky's cid); the frozen part kept as stored
        payload = dict(row.payload or {})
        if post.extra.get("frozen"):
            payload["frozen"] = post.extra["frozen"]
        values["payload"] = {**payload, "sent": dict(sent.ref)}
    with session(engine, write=True) as s:
        if not deliveries.finish(s, row.id or 0, owner, **values):
            return False
        child = next_in_thread(row)
        if child is not None:
            deliveries.release(s, child, WAITING, PLANNED, values["updated_at"])
        return True


def _pacing_wait(s: Session, ch: ChannelConfig | None, now: datetime) -> datetime | None:
    """When pacing allows the next send on this channel, if not now."""
    if ch is None or (not ch.min_interval and not ch.max_per_hour):
        return None
    if ch.min_interval:
        last = deliveries.last_sent_at(s, ch.name, SENT)
        if last is not None and last + ch.min_interval > now:
            return last + ch.min_interval
    if ch.max_per_hour:
        since = now - timedelta(hours=1)
        rows = deliveries.sent_times_since(s, ch.name, SENT, since)
        if len(rows) >= ch.max_per_hour:
            return rows[len(rows) - ch.max_per_hour] + timedelta(hours=1)  # type: ignore[operator]
    return None


def send_due(
    engine: Engine,
    settings: Settings,
    channels: dict[str, Channel],
    *,
    owner: str,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool] = lambda: False,
    on_event: Callable[[Delivery, str], None] | None = None,
    max_sends: int | None = None,
) -> SendStats:
    """Send every due row of the given channels, one claimed row at a time."""
    stats = SendStats()
    expire_leases(engine, clock())
    tz = settings.podcast.tz
    budget = max_sends
    for name, channel in channels.items():
        try:
            cfg: ChannelConfig | None = settings.channel(name)
        except KeyError:
            cfg = None
        states = [PLANNED, RETRYING]
        policy = getattr(channel, "unknown_policy", "none")
        if policy != "none" or (cfg is not None and cfg.on_unknown == "resend"):
            states.append(UNKNOWN)
        while not should_stop():
            now = clock()
            if cfg is not None and in_quiet_hours(cfg.quiet_hours, now, tz):
                break
            with session(engine) as s:
                # a thread's replies follow their parent at once: pacing spaces out posts,
                # not the parts of one
                paced = _pacing_wait(s, cfg, now) is not None
                ids = deliveries.due_ids(s, name, states, now, 1, [REPLY] if paced else None)
            if not ids:
                break
            if budget is not None and budget <= 0:
                return stats
            prev = claim(engine, ids[0], owner, now, settings.announce.lease)
            if prev is None:
                continue  # another process took it
            with session(engine) as s:
                row = deliveries.by_id(s, ids[0])
                assert row is not None
            _send_one(engine, settings, channel, cfg, row, prev, owner, clock, stats, on_event)
            if budget is not None:
                budget -= 1
    return stats


def _send_one(
    engine: Engine,
    settings: Settings,
    channel: Channel,
    cfg: ChannelConfig | None,
    row: Delivery,
    prev_state: str,
    owner: str,
    clock: Callable[[], datetime],
    stats: SendStats,
    on_event: Callable[[Delivery, str], None] | None,
) -> None:
    post = to_post(row)
    max_attempts = (cfg.max_attempts if cfg and cfg.max_attempts else None) or (
        settings.announce.max_attempts
    )
    started = clock()
    if row.kind == REPLY:
        threaded = _in_thread(engine, row, post)
        if isinstance(threaded, str):
            # sent only after its parent: held, visibly, until the parent is sent
            _finish(engine, row.id or 0, owner, state=WAITING, last_error=threaded,
                    next_attempt_at=None, updated_at=clock())  # fmt: skip
            stats.held += 1
            stats.events.append((row.channel, WAITING, threaded))
            return
        post = threaded
    try:
        frozen_post = _freeze(engine, channel, row, post, owner)
        if frozen_post is None:
            return  # another process holds the row now
        post = frozen_post
        sent: Sent | None = None
        if prev_state == UNKNOWN and channel.unknown_policy in ("readback", "idempotent"):
            # Look before resending: the lost answer may have been a success (and an
            # idempotency key is only kept for a while, e.g. an hour on Mastodon).
            sent = channel.reconcile(post)
        if sent is None:
            sent = channel.send(post)
    except TransientError as exc:
        now = clock()
        state = FAILED if row.attempts >= max_attempts else RETRYING
        _finish(
            engine, row.id or 0, owner, state=state, last_error=exc.message, updated_at=now,
            next_attempt_at=now + backoff(settings, row.attempts, exc.retry_after),
        )  # fmt: skip
        stats.failed += state == FAILED
        stats.retrying += state == RETRYING
        stats.events.append((row.channel, state, exc.message))
        if on_event:
            on_event(row, state)
        return
    except UnknownOutcome as exc:
        now = clock()
        # A channel that can look for the post stays `unknown` (the next look may settle
        # it); one that would only resend gives up after max_attempts like any retry.
        give_up = row.attempts >= max_attempts and channel.unknown_policy != "readback"
        state = FAILED if give_up else UNKNOWN
        msg = f"outcome unknown: {exc.message}"
        if give_up:
            msg = f"gave up after {row.attempts} attempts; last {msg}"
        _finish(
            engine, row.id or 0, owner, state=state, last_error=msg, updated_at=now,
            next_attempt_at=None if give_up else now + backoff(settings, row.attempts),
        )  # fmt: skip
        stats.failed += give_up
        stats.unknown += not give_up
        stats.events.append((row.channel, state, exc.message))
        if on_event:
            on_event(row, state)
        return
    except PermanentError as exc:
        now = clock()
        _finish(
            engine, row.id or 0, owner, state=FAILED, last_error=exc.message, updated_at=now,
            next_attempt_at=None,
        )  # fmt: skip
        stats.failed += 1
        stats.events.append((row.channel, FAILED, exc.message))
        if on_event:
            on_event(row, FAILED)
        return
    now = clock()
    _sent(
        engine, row, owner, post, sent, state=SENT, remote_id=sent.remote_id,
        remote_url=sent.remote_url, last_error=None, sent_at=now, updated_at=now,
        next_attempt_at=None, latency_seconds=(now - started).total_seconds(),
    )  # fmt: skip
    stats.sent += 1
    stats.events.append((row.channel, SENT, sent.remote_url or sent.remote_id or ""))
    if on_event:
        on_event(row, SENT)
