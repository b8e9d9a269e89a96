"""Sending the outbox: the delivery state machine.

A process claims a due row with an atomic conditional UPDATE and a lease, so two
processes never send the same row; a crash leaves `sending` with an expired lease,
which the next pass turns into `unknown` and resolves per the channel's rules
(resend with the same key, read back, or hold for a person).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
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
    Progress,
    ReplyRef,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.config import ChannelConfig, Settings
from syndicator.store import deliveries
from syndicator.store.db import session, shared
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


def _progress_saver(
    engine: Engine, delivery_id: int, owner: str
) -> Callable[[dict[str, Any]], None]:
    """Stores a channel's mid-send progress on the row, while this process holds it."""

    def save(values: dict[str, Any]) -> None:
        try:
            with session(engine, write=True) as s:
                kept = deliveries.save_progress(s, delivery_id, owner, values)
        except SQLAlchemyError as exc:
            raise TransientError(
                f"could not record the send's progress in the database ({exc}); "
                "nothing more was sent, will retry"
            ) from exc
        if not kept:
            raise TransientError(
                "this process no longer holds the delivery (its lease ran out); "
                "nothing more was sent"
            )

    return save


def to_post(row: Delivery, save: Callable[[dict[str, Any]], None] | None = None) -> Post:
    """The row as a Post; `save` stores what the channel records mid-send (Progress)."""
    payload = row.payload or {}
    # Rows written before Progress existed kept what the channel built (a signed note) as
    # payload "frozen": it counts as recorded progress, so such a row sends the same bytes.
    recorded = {**(payload.get("frozen") or {}), **(payload.get("progress") or {})}
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
        extra={"langs": payload["langs"]} if payload.get("langs") else {},
        progress=Progress(recorded, save),
        image_file=payload.get("image_file"),
        image_sha256=payload.get("image_sha256"),
        image_alt=payload.get("image_alt"),
        image_type=payload.get("image_type"),
        image_url=payload.get("image_url"),
        media=recorded.get("media"),  # what an earlier attempt's upload gave (see _upload)
    )


def _without_image(post: Post) -> Post:
    return replace(post, image_file=None, image_sha256=None, image_alt=None, image_type=None,
                   image_url=None, media=None)  # fmt: skip


def _checked_image(post: Post) -> Post:
    """The frozen image only while its file has the frozen bytes (a retry sends the same
    image or none); a file gone from the cards folder is a warning, never a lost post."""
    if not post.image_file:
        return post
    try:
        data = Path(post.image_file).read_bytes()
    except OSError as exc:
        log.warning("delivery %s: its image %s can't be read (%s); posting without it",
                    post.delivery_id, post.image_file, exc.strerror or exc)  # fmt: skip
        return _without_image(post)
    if hashlib.sha256(data).hexdigest() != post.image_sha256:
        log.warning("delivery %s: its image %s changed since it was frozen; posting without it",
                    post.delivery_id, post.image_file)  # fmt: skip
        return _without_image(post)
    return post


def _upload(
    engine: Engine, channel: Channel, row: Delivery, post: Post, owner: str, now: datetime
) -> Post:
    """A channel with `upload(post) -> dict` uploads the image once; the result (a media
    id) is recorded on the row (its progress) before the post is sent, so a crash between
    the two reuses it and a retry sends the same media. A lost lease raises TransientError
    from the record, and nothing is sent."""
    upload = getattr(channel, "upload", None)
    if upload is None or not post.image_file:
        return post
    media = post.media
    ttl = getattr(channel, "media_ttl", None)
    age = now - datetime.fromisoformat(media["at"]) if media and media.get("at") else None
    if ttl and age is not None and age > timedelta(seconds=ttl):
        media = None  # the network dropped it by now: the same bytes go up again
    if media and media.get("sha256") == post.image_sha256:
        return post if "failed" not in media else _without_image(post)
    try:
        got = dict(upload(post))
    except PermanentError as exc:
        # the network refuses this image: the announcement goes out without it
        log.warning("delivery %s: %s refused the image (%s); posting without it",
                    post.delivery_id, channel.name, exc.message)  # fmt: skip
        got = {"failed": exc.message}
    media = {**got, "sha256": post.image_sha256, "at": now.isoformat()}
    post.progress.record(
        media=media
    )  # kept on the row before the post (TransientError: lease lost)
    return replace(post, media=media) if "failed" not in media else _without_image(post)


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


def _sent(engine: Engine, row: Delivery, owner: str, sent: Sent, **values: Any) -> bool:
    """Record a send and, in the same transaction, release the reply that answers it: a
    crash leaves either both or neither."""
    # what a reply to this post needs (Bluesky's cid), merged into the payload as stored
    # (with the progress the send recorded)
    added = {"sent": dict(sent.ref)} if sent.ref else None
    with session(engine, write=True) as s:
        if not deliveries.finish(s, row.id or 0, owner, payload_add=added, **values):
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


def _sendable(policy: str, cfg: ChannelConfig | None) -> list[str]:
    """The states a channel's due rows are sent from: an `unknown` one only when its
    kind can settle it or the channel says to resend."""
    states = [PLANNED, RETRYING]
    if policy != "none" or (cfg is not None and cfg.on_unknown == "resend"):
        states.append(UNKNOWN)
    return states


def due_channels(engine: Engine, settings: Settings, names: list[str], now: datetime) -> list[str]:
    """Those of these channels with a row `send_due` would send now (quiet hours and
    pacing aside), so a pass builds, and imports the library of, only those."""
    from syndicator.plugins import kinds

    found = kinds()
    out: list[str] = []
    with session(engine) as s:
        for name in names:
            cfg = settings.channel(name)
            k = found.get(cfg.type)
            states = _sendable(k.unknown_policy if k is not None else "none", cfg)
            if deliveries.due_ids(s, name, states, now, 1):
                out.append(name)
    return out


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
    chosen_time: bool = False,
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
        states = _sendable(getattr(channel, "unknown_policy", "none"), cfg)
        if shared(engine):
            budget = _send_claimed(
                engine, settings, channel, cfg, name, states, owner, clock, should_stop,
                stats, on_event, budget, chosen_time,
            )  # fmt: skip
            if budget is not None and budget <= 0:
                return stats
            continue
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


def _send_claimed(
    engine: Engine,
    settings: Settings,
    channel: Channel,
    cfg: ChannelConfig | None,
    name: str,
    states: list[str],
    owner: str,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    stats: SendStats,
    on_event: Callable[[Delivery, str], None] | None,
    budget: int | None,
    chosen_time: bool,
) -> int | None:
    """PostgreSQL workers: claim the channel's due rows in batches (SKIP LOCKED, a lease
    by the database's clock) and send them; returns what is left of `budget`.

    A paced channel claims one row at a time, so no worker holds rows it may not send
    yet; rows claimed but not tried (a stop) are given back untouched.
    """
    tz = settings.podcast.tz
    paced = cfg is not None and bool(cfg.min_interval or cfg.max_per_hour)
    while not should_stop():
        now = clock()
        if cfg is not None and in_quiet_hours(cfg.quiet_hours, now, tz):
            break
        # a thread's replies follow their parent at once: pacing spaces out posts, not
        # the parts of one
        kinds: list[str] | None = None
        if paced:
            with session(engine) as s:
                if _pacing_wait(s, cfg, now) is not None:
                    kinds = [REPLY]
        size = 1 if paced else settings.workers.claim_batch
        if budget is not None:
            if budget <= 0:
                break
            size = min(size, budget)
        with session(engine, write=True) as s:
            claimed = deliveries.claim_batch(
                s, name, states, owner, settings.announce.lease, size, sending=SENDING,
                at=now if chosen_time else None,  # else the database's clock
                kinds=kinds,
            )  # fmt: skip
        if not claimed:
            break
        for i, (delivery_id, prev) in enumerate(claimed):
            if should_stop():
                with session(engine, write=True) as s:
                    for rest_id, rest_prev in claimed[i:]:
                        deliveries.unclaim(s, rest_id, owner, rest_prev, sending=SENDING)
                return budget
            with session(engine) as s:
                row = deliveries.by_id(s, delivery_id)
                assert row is not None
            _send_one(engine, settings, channel, cfg, row, prev, owner, clock, stats, on_event)
            if budget is not None:
                budget -= 1
    return budget


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
    post = to_post(row, _progress_saver(engine, row.id or 0, owner))
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
        post = _checked_image(post)
        sent: Sent | None = None
        if prev_state == UNKNOWN and channel.unknown_policy in ("readback", "idempotent"):
            # Look before resending: the lost answer may have been a success (and an
            # idempotency key is only kept for a while, e.g. an hour on Mastodon).
            sent = channel.reconcile(post)
        if sent is None:
            sent = channel.send(_upload(engine, channel, row, post, owner, clock()))
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
        engine, row, owner, sent, state=SENT, remote_id=sent.remote_id,
        remote_url=sent.remote_url, last_error=None, sent_at=now, updated_at=now,
        next_attempt_at=None, latency_seconds=(now - started).total_seconds(),
    )  # fmt: skip
    stats.sent += 1
    stats.events.append((row.channel, SENT, sent.remote_url or sent.remote_id or ""))
    if on_event:
        on_event(row, SENT)
