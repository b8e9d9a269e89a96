"""The outbox: planning delivery rows and the delivery state machine.

A row is written (with its text frozen) before any network call. A process
claims a row with an atomic conditional UPDATE and a lease, so two processes
never send the same row; a crash leaves `sending` with an expired lease, which
the next pass turns into `unknown` and resolves per the channel's rules.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from syndicator.channels.base import (
    Channel,
    PermanentError,
    Post,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.tids import make_tid
from syndicator.config import ChannelConfig, Settings
from syndicator.sources.base import ProblemData
from syndicator.store import problems
from syndicator.store.db import session
from syndicator.store.models import Delivery, Episode

log = logging.getLogger(__name__)

PLANNED, SENDING, SENT = "planned", "sending", "sent"
RETRYING, UNKNOWN, FAILED, SKIPPED = "retrying", "unknown", "failed", "skipped"
STATES = (PLANNED, SENDING, SENT, RETRYING, UNKNOWN, FAILED, SKIPPED)
OPEN_STATES = (PLANNED, RETRYING, UNKNOWN, SENDING)


class Renders(Protocol):
    def render(
        self, episode: Any, channel: ChannelConfig, *, kind: str = ..., limit: int | None = ...
    ) -> Any: ...


def process_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def delivery_key(kind: str, episode_id: int | None, channel: str, extra: str = "") -> str:
    return f"{kind}:{episode_id if episode_id is not None else '-'}:{channel}" + (
        f":{extra}" if extra else ""
    )


def idempotency_key(key: str, guid: str) -> str:
    # Deterministic per delivery: a resend of the same row carries the same key.
    return hashlib.sha256(f"syndicator|{key}|{guid}".encode()).hexdigest()[:40]


# ---------------------------------------------------------------- timing rules


def _parse_hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def in_quiet_hours(quiet: str | None, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When `now` falls in the quiet window, the (UTC) moment it ends; else None."""
    if not quiet:
        return None
    start_s, end_s = quiet.split("-")
    start, end = _parse_hhmm(start_s), _parse_hhmm(end_s)
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t < end) if start <= end else (t >= start or t < end)
    if not inside:
        return None
    end_dt = datetime.combine(local.date(), end, tzinfo=tz)
    if end_dt <= local:
        end_dt += timedelta(days=1)
    return end_dt.astimezone(now.tzinfo)


def publish_time(episode_date: datetime | None, now: datetime, settings: Settings) -> datetime:
    """When an announcement may go out: the episode's own date if in the future,
    moved to the next daily slot (`announce.at`) when one is configured."""
    due = max(episode_date or now, now)
    slot = settings.announce.at
    if not slot:
        return due
    tz = settings.podcast.tz
    local = due.astimezone(tz)
    at = datetime.combine(local.date(), _parse_hhmm(slot), tzinfo=tz)
    if at < local:
        at += timedelta(days=1)
    return at.astimezone(due.tzinfo)


def backoff(settings: Settings, attempts: int, retry_after: float | None = None) -> timedelta:
    base = settings.announce.retry_base.total_seconds()
    delay = min(base * (2 ** max(attempts - 1, 0)), settings.announce.retry_max.total_seconds())
    if retry_after is not None:
        delay = max(delay, retry_after)
    return timedelta(seconds=max(delay, 0.0))


# ---------------------------------------------------------------- planning


def filter_reason(episode: Episode, ch: ChannelConfig, now: datetime) -> str | None:
    """Why a channel does not announce this episode, or None."""
    cats = {c.lower() for c in episode.categories}
    tags = {t.lower() for t in episode.tags}
    if ch.sources and episode.source not in ch.sources:
        return f"filtered: source {episode.source} not in {ch.sources}"
    if ch.categories and not cats & {c.lower() for c in ch.categories}:
        return f"filtered: category not in {ch.categories}"
    if ch.tags_include and not tags & {t.lower() for t in ch.tags_include}:
        return f"filtered: no tag from {ch.tags_include}"
    hit = tags & {t.lower() for t in ch.tags_exclude}
    if hit:
        return f"filtered: tag {sorted(hit)[0]} is excluded"
    if ch.max_age is not None and episode.date is not None and episode.date < now - ch.max_age:
        return "filtered: older than max_age"
    return None


@dataclass
class PlannedRow:
    """What planning decided for one (episode, channel): also what --dry-run prints."""

    episode: Episode
    channel: str
    state: str
    text: str
    length: int | None
    limit: int | None
    fits: bool
    due_at: datetime | None
    reason: str | None = None


def _card(ep: Episode) -> dict[str, Any]:
    return {"url": ep.url, "title": ep.title, "description": ep.description, "image": ep.image}


_last_tid_us = 0


def _next_tid(now: datetime, key: str) -> str:
    """A TID unique in this process (strictly increasing microseconds) whose clock
    id comes from the row's key, so rows planned together never share a record key."""
    global _last_tid_us
    us = max(int(now.timestamp() * 1_000_000), _last_tid_us + 1)
    _last_tid_us = us
    clock = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 1024
    return make_tid(datetime.fromtimestamp(us / 1_000_000, tz=now.tzinfo), clock)


def _new_row(
    kind: str,
    ep: Episode,
    ch: ChannelConfig,
    now: datetime,
    settings: Settings,
    extra: str = "",
) -> Delivery:
    key = delivery_key(kind, ep.id, ch.name, extra)
    return Delivery(
        key=key,
        kind=kind,
        episode_id=ep.id,
        channel=ch.name,
        state=PLANNED,
        record_key=_next_tid(now, key),
        idempotency_key=idempotency_key(key, ep.guid),
        frozen_at=now,
        # frozen with the text: a retry sends the same record (Bluesky's langs)
        payload={
            **_card(ep),
            "langs": [settings.podcast.language] if settings.podcast.language else [],
        },
        planned_at=now,
        updated_at=now,
        due_at=publish_time(ep.date, now, settings),
    )


def _insert_ignore(s: Session, row: Delivery) -> bool:
    """INSERT unless the key exists (another process planned it first)."""
    values = {c.name: getattr(row, c.name) for c in Delivery.__table__.columns if c.name != "id"}  # type: ignore[attr-defined]
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(Delivery).values(**values).on_conflict_do_nothing(index_elements=["key"])
    return bool(s.execute(stmt).rowcount)  # type: ignore[attr-defined]


def plan(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: dict[str, int],
    now: datetime,
    *,
    dry_run: bool = False,
) -> list[PlannedRow]:
    """Write a delivery row for every (episode, enabled channel) that has none.

    Also refreshes the frozen text of rows that never left (attempts == 0) when
    their episode changed since, and skips open rows of withdrawn episodes.
    """
    out: list[PlannedRow] = []
    channels = [c for c in settings.channels if c.enabled]
    if not channels:
        return out
    names = [c.name for c in channels]
    have: dict[tuple[int, str], Delivery] = {
        (d.episode_id, d.channel): d  # type: ignore[misc]
        for d in s.exec(
            select(Delivery).where(Delivery.kind == "announce", Delivery.channel.in_(names))  # type: ignore[attr-defined]
        ).all()
    }
    episodes = s.exec(select(Episode).order_by(Episode.date, Episode.id)).all()  # type: ignore[arg-type]
    for ep in episodes:
        for ch in channels:
            row = have.get((ep.id, ch.name))  # type: ignore[arg-type]
            if row is not None:
                _refresh(s, row, ep, ch, renderer, limits, now, dry_run, out)
                continue
            if ep.withdrawn:
                continue  # not announced; a row is made if it comes back
            state, reason = PLANNED, None
            if ep.backlog:
                state, reason = SKIPPED, "backlog: older than the window at first sight"
            else:
                reason = filter_reason(ep, ch, now)
                if reason:
                    state = SKIPPED
            if state == PLANNED and ch.dry_run:
                state, reason = SKIPPED, "dry-run channel: rendered, not sent"
            planned = _plan_row(
                s, settings, renderer, limits, now, "announce", ep, ch, state, reason, dry_run
            )
            if planned is not None:
                out.append(planned)
    return out


def _plan_row(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: dict[str, int],
    now: datetime,
    kind: str,
    ep: Episode,
    ch: ChannelConfig,
    state: str,
    reason: str | None,
    dry_run: bool,
    extra: str = "",
) -> PlannedRow | None:
    """Render, freeze and (unless dry-run) insert one row; None when the template is
    broken (a problem is recorded and the next pass tries again)."""
    rendered = _render(s, renderer, ep, ch, limits, now, kind=kind)
    if rendered is None:
        return None
    row = _new_row(kind, ep, ch, now, settings, extra)
    row.text, row.text_length = rendered.text, rendered.length
    row.state, row.skip_reason = state, reason
    if state == SKIPPED:
        row.due_at = None
    elif kind != "announce":
        row.due_at = now
    if not dry_run:
        _insert_ignore(s, row)
    return PlannedRow(
        ep, ch.name, state, rendered.text, rendered.length, rendered.limit, rendered.fits,
        row.due_at, reason,
    )  # fmt: skip


def _render(
    s: Session,
    renderer: Renders,
    ep: Episode,
    ch: ChannelConfig,
    limits: dict[str, int],
    now: datetime,
    kind: str = "announce",
) -> Any:
    from syndicator.announce.render import TemplateProblem

    try:
        return renderer.render(ep, ch, kind=kind, limit=limits.get(ch.name))
    except TemplateProblem as exc:
        problems.record(
            s,
            f"channel:{ch.name}",
            ProblemData(exc.path or exc.template, "template", exc.message, exc.line),
            now,
        )
        return None


def _refresh(
    s: Session,
    row: Delivery,
    ep: Episode,
    ch: ChannelConfig,
    renderer: Renders,
    limits: dict[str, int],
    now: datetime,
    dry_run: bool,
    out: list[PlannedRow],
) -> None:
    if row.state not in (PLANNED, RETRYING) or row.attempts:
        return
    if ep.withdrawn:
        if not dry_run:
            row.state, row.skip_reason, row.updated_at = SKIPPED, "episode withdrawn", now
            s.add(row)
        return
    if ep.last_changed_at and row.updated_at and ep.last_changed_at > row.updated_at:
        # Nothing went out yet: the announcement may follow the edit.
        rendered = _render(s, renderer, ep, ch, limits, now)
        if rendered is not None and not dry_run:
            row.text, row.text_length = rendered.text, rendered.length
            row.payload = {**row.payload, **_card(ep)}
            row.due_at = max(row.due_at or now, publish_time(ep.date, now, _settings_of(renderer)))
            row.updated_at = now
            s.add(row)


def _settings_of(renderer: Any) -> Settings:
    return renderer.settings  # type: ignore[no-any-return]


def plan_ping(
    s: Session, feed: str, target: str, feed_url: str, content_hash: str, now: datetime
) -> bool:
    """One ping row per (feed build, endpoint): a hub that is down gets it later."""
    key = delivery_key("ping", None, "directory", f"{feed}:{content_hash[:16]}:{target}")
    row = Delivery(
        key=key,
        kind="ping",
        channel="directory",
        target=target,
        state=PLANNED,
        text=feed_url,
        idempotency_key=idempotency_key(key, feed_url),
        record_key="",
        frozen_at=now,
        payload={"feed": feed, "feed_url": feed_url},
        planned_at=now,
        updated_at=now,
        due_at=now,
    )
    return _insert_ignore(s, row)


# ---------------------------------------------------------------- sending


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
        res = s.execute(
            sa.update(Delivery)
            .where(Delivery.state == SENDING, Delivery.lease_until < now)  # type: ignore[arg-type,operator]
            .values(
                state=UNKNOWN,
                lease_owner=None,
                lease_until=None,
                next_attempt_at=now,
                last_error="the process sending it stopped before recording the answer",
                updated_at=now,
            )
        )
        return res.rowcount  # type: ignore[attr-defined,no-any-return]


def _due_ids(
    s: Session, channel: str, states: Iterable[str], now: datetime, limit: int
) -> list[int]:
    q = (
        select(Delivery.id)
        .where(
            Delivery.channel == channel,
            Delivery.state.in_(list(states)),  # type: ignore[attr-defined]
            sa.or_(Delivery.due_at.is_(None), Delivery.due_at <= now),  # type: ignore[union-attr,operator]
            sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
        )
        .order_by(Delivery.due_at, Delivery.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return [i for i in s.exec(q).all() if i is not None]


def claim(
    engine: Engine, delivery_id: int, owner: str, now: datetime, lease: timedelta
) -> str | None:
    """Atomically take a due row; only one process can win.

    Returns the state the row had (so an `unknown` row is reconciled), or None.
    """
    with session(engine, write=True) as s:
        prev = s.exec(select(Delivery.state).where(Delivery.id == delivery_id)).first()
        if prev not in (PLANNED, RETRYING, UNKNOWN):
            return None
        res = s.execute(
            sa.update(Delivery)
            .where(
                Delivery.id == delivery_id,  # type: ignore[arg-type]
                Delivery.state == prev,  # type: ignore[arg-type]
                sa.or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),  # type: ignore[union-attr,operator]
            )
            .values(
                state=SENDING,
                lease_owner=owner,
                lease_until=now + lease,
                attempts=Delivery.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return prev if res.rowcount == 1 else None  # type: ignore[attr-defined]


def _finish(engine: Engine, delivery_id: int, owner: str, **values: Any) -> bool:
    """Record the outcome, only if we still hold the lease."""
    with session(engine, write=True) as s:
        res = s.execute(
            sa.update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)  # type: ignore[arg-type]
            .values(lease_owner=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        return res.rowcount == 1  # type: ignore[attr-defined]


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
        extra={"langs": payload["langs"]} if payload.get("langs") else {},
    )


def _pacing_wait(s: Session, ch: ChannelConfig | None, now: datetime) -> datetime | None:
    """When pacing allows the next send on this channel, if not now."""
    if ch is None or (not ch.min_interval and not ch.max_per_hour):
        return None
    if ch.min_interval:
        last = s.exec(
            select(sa.func.max(Delivery.sent_at)).where(  # type: ignore[arg-type]
                Delivery.channel == ch.name, Delivery.state == SENT
            )
        ).one()
        if last is not None and last + ch.min_interval > now:
            return last + ch.min_interval  # type: ignore[no-any-return]
    if ch.max_per_hour:
        since = now - timedelta(hours=1)
        rows = s.exec(
            select(Delivery.sent_at)
            .where(
                Delivery.channel == ch.name,
                Delivery.state == SENT,
                Delivery.sent_at >= since,  # type: ignore[operator]
            )
            .order_by(Delivery.sent_at)  # type: ignore[arg-type]
        ).all()
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
                if _pacing_wait(s, cfg, now) is not None:
                    break
                ids = _due_ids(s, name, states, now, 1)
            if not ids:
                break
            if budget is not None and budget <= 0:
                return stats
            prev = claim(engine, ids[0], owner, now, settings.announce.lease)
            if prev is None:
                continue  # another process took it
            with session(engine) as s:
                row = s.get(Delivery, ids[0])
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
    try:
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
    _finish(
        engine, row.id or 0, owner, state=SENT, remote_id=sent.remote_id,
        remote_url=sent.remote_url, last_error=None, sent_at=now, updated_at=now,
        next_attempt_at=None, latency_seconds=(now - started).total_seconds(),
    )  # fmt: skip
    stats.sent += 1
    stats.events.append((row.channel, SENT, sent.remote_url or sent.remote_id or ""))
    if on_event:
        on_event(row, SENT)


# ---------------------------------------------------------------- actions (CLI and web)


class ActionError(Exception):
    """An action that doesn't apply to the row's state; the message says why."""


def _get(s: Session, delivery_id: int) -> Delivery:
    row = s.get(Delivery, delivery_id)
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
        row.state, row.next_attempt_at, row.due_at = RETRYING, now, None
        row.attempts, row.skip_reason, row.updated_at = 0, None, now
        s.add(row)
        return row


def skip(
    engine: Engine, delivery_id: int, now: datetime, reason: str = "skipped by hand"
) -> Delivery:
    with session(engine, write=True) as s:
        row = _get(s, delivery_id)
        if row.state in (SENT, SENDING):
            raise ActionError(f"delivery {delivery_id} is {row.state}; it can't be skipped")
        row.state, row.skip_reason, row.updated_at = SKIPPED, reason, now
        s.add(row)
        return row


def mark_unknown(engine: Engine, delivery_id: int, now: datetime, *, was_sent: bool) -> Delivery:
    """A person checked the network: the post is there (sent) or not (send again)."""
    with session(engine, write=True) as s:
        row = _get(s, delivery_id)
        if row.state not in (UNKNOWN, FAILED):
            raise ActionError(f"delivery {delivery_id} is {row.state}, not unknown")
        if was_sent:
            row.state, row.sent_at, row.last_error = SENT, now, "marked sent by hand"
        else:
            row.state, row.next_attempt_at, row.attempts = RETRYING, now, 0
            row.last_error = "marked not sent by hand"
        row.updated_at = now
        s.add(row)
        return row


def announce_now(
    engine: Engine,
    settings: Settings,
    renderer: Renders,
    limits: dict[str, int],
    episode_id: int,
    now: datetime,
    channel: str | None = None,
) -> list[Delivery]:
    """Queue an episode on its channels now, even a backlog or filtered one."""
    out = []
    with session(engine, write=True) as s:
        ep = s.get(Episode, episode_id)
        if ep is None:
            raise ActionError(f"no episode {episode_id}")
        for ch in settings.channels:
            if not ch.enabled or (channel and ch.name != channel):
                continue
            row = s.exec(
                select(Delivery).where(Delivery.key == delivery_key("announce", ep.id, ch.name))
            ).first()
            if row is not None and row.state in (SENT, SENDING, UNKNOWN):
                continue
            if row is None:
                row = _new_row("announce", ep, ch, now, settings)
            rendered = _render(s, renderer, ep, ch, limits, now)
            if rendered is None:
                raise ActionError(
                    f"the {ch.name} template is broken; see the problems in `syndicator status`"
                )
            row.text, row.text_length = rendered.text, rendered.length
            row.state, row.skip_reason, row.due_at = PLANNED, None, now
            row.next_attempt_at, row.attempts, row.updated_at = now, 0, now
            s.add(row)
            out.append(row)
        if channel and not out:
            raise ActionError(f"channel {channel!r} has nothing to (re)announce for this episode")
    return out


# ---------------------------------------------------------------- evergreen reshares


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
        planned = _plan_row(
            s, settings, renderer, limits, now, "reshare", candidates[0], ch, state, reason,
            dry_run, extra=now.strftime("%Y%m%dT%H%M%S"),
        )  # fmt: skip
        if planned is not None:
            out.append(planned)
    return out
