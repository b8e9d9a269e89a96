"""The outbox: its states, keys and timing rules, and planning delivery rows.

A row is written (with its text frozen) before any network call; `sender.py` runs
the state machine that sends it, `manual.py` holds what a person does to a row,
`evergreen.py` plans reshares of older episodes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session

from syndicator.announce.cards import CardError, Images
from syndicator.announce.fit import count
from syndicator.announce.joined import joined_at
from syndicator.announce.thread import thread_texts
from syndicator.backoff import backoff_seconds
from syndicator.channels.tids import make_tid
from syndicator.config import ChannelConfig, Settings
from syndicator.sources.base import ProblemData
from syndicator.store import audio_checks, deliveries, problems
from syndicator.store import episodes as store_episodes
from syndicator.store import shows as store_shows
from syndicator.store.models import Delivery, Episode

log = logging.getLogger(__name__)

PLANNED, SENDING, SENT = "planned", "sending", "sent"
RETRYING, UNKNOWN, FAILED, SKIPPED = "retrying", "unknown", "failed", "skipped"
# a reply of a thread whose parent is not sent yet (or failed: then it stays held)
WAITING = "waiting"
# A person in the loop (announce/approval.py): the row waits until approved by hand.
# An announcement waits for its audio first (waiting_audio), then for approval: a person
# approves what will really go out.
AWAITING_APPROVAL = "awaiting_approval"
# An announcement of an episode whose audio did not answer yet (announce/audio.py): never
# claimed by the sender; checked again with back-off, then `planned` (or
# `awaiting_approval` on an `approve = true` channel).
WAITING_AUDIO = "waiting_audio"
STATES = (PLANNED, SENDING, SENT, RETRYING, UNKNOWN, FAILED, SKIPPED, WAITING, WAITING_AUDIO)
STATES += (AWAITING_APPROVAL,)
REPLY = "reply"  # the kind of a thread's reply rows
WITHDRAWN = "episode withdrawn"  # the skip reason a restored episode's row can leave


class Renders(Protocol):
    def render(
        self, episode: Any, channel: ChannelConfig, *, kind: str = ..., limit: int | None = ...
    ) -> Any: ...

    def render_text(
        self, episode: Any, channel: ChannelConfig, *, kind: str, extra: dict[str, Any]
    ) -> str: ...


def process_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def delivery_key(kind: str, episode_id: int | None, channel: str, extra: str = "") -> str:
    return f"{kind}:{episode_id if episode_id is not None else '-'}:{channel}" + (
        f":{extra}" if extra else ""
    )


def reply_key(episode_id: int | None, channel: str, part: int) -> str:
    """The row of reply `part` (1, 2, ...) of an episode's thread on a channel."""
    return delivery_key(REPLY, episode_id, channel, str(part))


def next_in_thread(row: Delivery) -> str | None:
    """The key of the reply that answers this row (it may not exist)."""
    if row.episode_id is None:
        return None
    if row.kind == "announce":
        return reply_key(row.episode_id, row.channel, 1)
    if row.kind == REPLY:
        part = int((row.payload or {}).get("part") or 0)
        return reply_key(row.episode_id, row.channel, part + 1)
    return None


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


def due_time(ep: Episode, now: datetime, settings: Settings) -> datetime:
    """When an episode's announcement falls due: its publish time, and never before
    `announce.delay` has passed since the episode was first seen (a grace period in which
    a post deleted or withdrawn goes out nowhere)."""
    due = publish_time(ep.date, now, settings)
    delay = settings.announce.delay
    if delay and ep.first_seen_at is not None:
        due = max(due, ep.first_seen_at + delay)
    return due


def backoff(settings: Settings, attempts: int, retry_after: float | None = None) -> timedelta:
    delay = backoff_seconds(
        settings.announce.retry_base.total_seconds(),
        attempts,
        settings.announce.retry_max.total_seconds(),
        retry_after=retry_after,
    )
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


def before_channel(ep: Episode, joined: datetime, now: datetime, window: timedelta) -> bool:
    """An episode that appeared before the channel joined and is not recent by its date:
    the channel does not announce it (adding a channel never posts the back catalogue)."""
    seen = ep.first_seen_at
    if seen is None or seen >= joined:
        return False
    return ep.date is None or ep.date < now - window


def audio_unverified(s: Session, settings: Settings, ep: Episode) -> bool:
    """The episode has audio that must answer before it is announced, and its current
    enclosure URL has not passed a check yet (the source's `verify_audio`, on by default)."""
    if not ep.enclosure_url or ep.id is None:
        return False
    src = next((c for c in settings.sources if c.name == ep.source), None)
    if src is None or not src.verify_audio:
        return False
    return not audio_checks.passed(s, ep.id, ep.enclosure_url)


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
    thread: list[str] = field(default_factory=list)  # the replies that follow, in order


def _card(ep: Episode) -> dict[str, Any]:
    image = ep.image
    if not image:  # a remote feed's episode without its own image: its show's artwork
        from sqlalchemy.orm import object_session

        from syndicator.store import shows

        s = object_session(ep)
        show = shows.get(s, ep.source) if s is not None and ep.source else None
        image = (show.image if show is not None else "") or image
    return {"url": ep.url, "title": ep.title, "description": ep.description, "image": image}


# the image keys frozen on a row (announce/cards.py CardImage.payload)
IMAGE_KEYS = ("image_file", "image_sha256", "image_alt", "image_type", "image_url")


def image_payload(
    s: Session, images: Images, ep: Episode, ch: ChannelConfig, now: datetime
) -> dict[str, Any]:
    """The image frozen with the text; a card that can't be made is a problem and the
    post goes out without one (it never holds the announcement back)."""
    where = f"episode {ep.number}" if ep.number is not None else (ep.url or ep.guid)
    owner = f"card:{ch.name}"
    try:
        img = images.for_row(ep, ch)
    except CardError as exc:
        images.open_problems[owner] = True
        problems.record(
            s,
            owner,
            ProblemData(
                where,
                "card",
                f"no image for channel {ch.name!r}: {exc}; the post goes out without one "
                '(fix the file or [cards], or set image = "none")',
                severity="warning",
            ),
            now,
        )
        return dict.fromkeys(IMAGE_KEYS)
    if owner not in images.open_problems:
        images.open_problems[owner] = bool(problems.with_open(s, [owner]))
    if images.open_problems[owner]:
        problems.resolve(s, owner, where, now)
    return img.payload() if img is not None else dict.fromkeys(IMAGE_KEYS)


_last_tid_us = 0


def _next_tid(now: datetime, key: str) -> str:
    """A TID unique in this process (strictly increasing microseconds) whose clock
    id comes from the row's key, so rows planned together never share a record key."""
    global _last_tid_us
    us = max(int(now.timestamp() * 1_000_000), _last_tid_us + 1)
    _last_tid_us = us
    clock = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 1024
    return make_tid(datetime.fromtimestamp(us / 1_000_000, tz=now.tzinfo), clock)


def new_row(
    kind: str,
    ep: Episode,
    ch: ChannelConfig,
    now: datetime,
    settings: Settings,
    extra: str = "",
    **values: Any,
) -> Delivery:
    """A new row, not stored yet; `values` (column=value) replace the planned defaults."""
    key = delivery_key(kind, ep.id, ch.name, extra)
    defaults: dict[str, Any] = dict(
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
        due_at=due_time(ep, now, settings),
    )
    return Delivery(**{**defaults, **values})


_INSERT_BATCH = 1000  # planned rows per executemany: bounded memory, few round trips


def plan(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: Mapping[str, int],
    now: datetime,
    *,
    dry_run: bool = False,
) -> list[PlannedRow]:
    """Write a delivery row for every (episode, enabled channel) that has none.

    Also refreshes the frozen text of rows that never left (attempts == 0) when
    their episode changed since, and skips open rows of withdrawn episodes.
    """
    out: list[PlannedRow] = []
    joined = joined_at(s, settings.channels, now, dry_run=dry_run)  # also notes removals
    channels = [c for c in settings.channels if c.enabled]
    if not channels:
        return out
    names = [c.name for c in channels]
    have: dict[tuple[int, str], Delivery] = {
        (d.episode_id, d.channel): d  # type: ignore[misc]
        for d in deliveries.of_kind_on(s, "announce", names)
    }
    window = settings.announce.window
    images = Images(settings)
    episodes = store_episodes.all_by_date(s)
    store_shows.hold(s, {ep.source for ep in episodes})  # each render asks for its show
    pending: list[Delivery] = []  # inserted in batches, in planning order
    for ep in episodes:
        for ch in channels:
            row = have.get((ep.id, ch.name))  # type: ignore[arg-type]
            if row is not None:
                _refresh(s, settings, row, ep, ch, renderer, limits, now, dry_run, images)
                continue
            if ep.withdrawn:
                continue  # not announced; a row is made if it comes back
            state, reason = PLANNED, None
            if ep.backlog:
                state, reason = SKIPPED, "backlog: older than the window at first sight"
            elif before_channel(ep, joined[ch.name], now, window):
                state = SKIPPED
                reason = (
                    f"channel added {joined[ch.name]:%Y-%m-%d %H:%M} UTC, after this episode "
                    "first appeared, and its date is outside announce.window"
                )
            else:
                reason = filter_reason(ep, ch, now)
                if reason:
                    state = SKIPPED
            if state == PLANNED and ch.dry_run:
                state, reason = SKIPPED, "dry-run channel: rendered, not sent"
            state, reason = awaiting_if_approve(ch, state, reason)
            planned = plan_row(
                s, settings, renderer, limits, now, "announce", ep, ch, state, reason, dry_run,
                images=images, pending=pending,
            )  # fmt: skip
            if planned is not None:
                out.append(planned)
            if len(pending) >= _INSERT_BATCH:
                deliveries.insert_ignore_many(s, pending)
                pending.clear()
    deliveries.insert_ignore_many(s, pending)
    return out


def plan_row(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: Mapping[str, int],
    now: datetime,
    kind: str,
    ep: Episode,
    ch: ChannelConfig,
    state: str,
    reason: str | None,
    dry_run: bool,
    extra: str = "",
    images: Images | None = None,
    pending: list[Delivery] | None = None,
) -> PlannedRow | None:
    """Render, freeze and (unless dry-run) insert one row; None when the template is
    broken (a problem is recorded and the next pass tries again). With `pending`, the
    rows to insert are appended to it instead (the caller inserts them in a batch)."""
    rendered = render_or_report(s, renderer, ep, ch, limits, now, kind=kind)
    if rendered is None:
        return None
    replies: list[str] = []
    held = state == AWAITING_APPROVAL and reason == APPROVE_REASON
    if kind == "announce" and (state == PLANNED or held):
        got = _thread_or_report(s, settings, renderer, ep, ch, limits, now)
        if got is None:
            return None  # planned together or not at all: the next pass tries again
        replies = got
    if (state == PLANNED or held) and kind == "announce" and audio_unverified(s, settings, ep):
        # the audio check (this pass, once due) releases it; audio first, then approval
        # (an `approve = true` channel holds it when released): approve what will go out
        state = WAITING_AUDIO
        reason = "waiting for audio: its enclosure is checked before it is announced"
    image: dict[str, Any] = {}
    # a dry run writes no card files
    if state in (PLANNED, WAITING_AUDIO, AWAITING_APPROVAL) and not dry_run:
        image = image_payload(s, images or Images(settings), ep, ch, now)
    due = {"due_at": None} if state == SKIPPED else {"due_at": now} if kind != "announce" else {}
    row = new_row(
        kind, ep, ch, now, settings, extra, text=rendered.text, text_length=rendered.length,
        state=state, skip_reason=reason, **due,
    )  # fmt: skip
    if image:  # frozen with the text: a retry sends the same bytes
        row.payload = {**row.payload, **image}
    if not dry_run:
        rows = [row, *_reply_rows(ep, ch, now, settings, row.key, replies)]
        if pending is not None:
            pending.extend(rows)
        else:
            for r in rows:
                deliveries.insert_ignore(s, r)
    return PlannedRow(
        ep, ch.name, state, rendered.text, rendered.length, rendered.limit, rendered.fits,
        row.due_at, reason, replies,
    )  # fmt: skip


def plan_thread(
    s: Session,
    settings: Settings,
    renderer: Renders,
    limits: Mapping[str, int],
    now: datetime,
    ep: Episode,
    ch: ChannelConfig,
    root: str,
) -> bool:
    """Insert the reply rows of the announcement `root` (the key of its row) unless they
    exist; False when the thread template is broken (a problem is recorded)."""
    texts = _thread_or_report(s, settings, renderer, ep, ch, limits, now)
    if texts is None:
        return False
    for reply in _reply_rows(ep, ch, now, settings, root, texts):
        deliveries.insert_ignore(s, reply)
    return True


def _thread_or_report(
    s: Session,
    settings: Settings,
    renderer: Renders,
    ep: Episode,
    ch: ChannelConfig,
    limits: Mapping[str, int],
    now: datetime,
) -> list[str] | None:
    """The channel's reply texts for the episode; None when its template is broken (a
    problem is recorded)."""
    from syndicator.announce.render import TemplateProblem

    try:
        return thread_texts(renderer, settings, ep, ch, limits.get(ch.name))
    except TemplateProblem as exc:
        _template_problem(s, ch, exc, now)
        return None


def _reply_rows(
    ep: Episode,
    ch: ChannelConfig,
    now: datetime,
    settings: Settings,
    root: str,
    texts: list[str],
) -> list[Delivery]:
    """One row per reply, frozen like the announcement, each `waiting` for the one before
    it (the sender releases a reply when its parent is sent)."""
    rows = []
    parent = root
    langs = [settings.podcast.language] if settings.podcast.language else []
    for part, text in enumerate(texts, start=1):
        row = new_row(
            REPLY, ep, ch, now, settings, str(part), text=text, text_length=count(text, ch.type),
            state=WAITING, due_at=None,
            payload={"langs": langs, "part": part, "parent": parent, "root": root},
        )  # fmt: skip
        rows.append(row)
        parent = row.key
    return rows


def _template_problem(s: Session, ch: ChannelConfig, exc: Any, now: datetime) -> None:
    """A broken template of the channel is its problem (the next pass tries again)."""
    problems.record(
        s,
        f"channel:{ch.name}",
        ProblemData(exc.path or exc.template, "template", exc.message, exc.line),
        now,
    )


def render_or_report(
    s: Session,
    renderer: Renders,
    ep: Episode,
    ch: ChannelConfig,
    limits: Mapping[str, int],
    now: datetime,
    kind: str = "announce",
) -> Any:
    from syndicator.announce.render import TemplateProblem

    try:
        return renderer.render(ep, ch, kind=kind, limit=limits.get(ch.name))
    except TemplateProblem as exc:
        _template_problem(s, ch, exc, now)
        return None


def _refresh(
    s: Session,
    settings: Settings,
    row: Delivery,
    ep: Episode,
    ch: ChannelConfig,
    renderer: Renders,
    limits: Mapping[str, int],
    now: datetime,
    dry_run: bool,
    images: Images | None = None,
) -> None:
    """A row that never left follows its episode: withdrawn -> skipped; back (a deleted
    post restored) while still recent -> planned again; edited -> the text, link card
    and publish time are rendered again."""
    if (
        row.state == SKIPPED
        and row.skip_reason == WITHDRAWN
        and not row.attempts
        and not ep.withdrawn
        and ep.date is not None
        and ep.date >= now - settings.announce.window
    ):
        rendered = render_or_report(s, renderer, ep, ch, limits, now)
        if rendered is not None and not dry_run:
            waiting = row.kind == "announce" and audio_unverified(s, settings, ep)
            again = {"state": WAITING_AUDIO, "skip_reason": None} if waiting else None
            deliveries.save(
                s, row, text=rendered.text, text_length=rendered.length,
                payload={
                    **row.payload, **_card(ep),
                    **image_payload(s, images or Images(settings), ep, ch, now),
                },
                due_at=due_time(ep, now, settings), updated_at=now,
                **(again or _restored_state(ch)),
            )  # fmt: skip
        return
    if row.state not in (PLANNED, RETRYING, WAITING_AUDIO, AWAITING_APPROVAL) or row.attempts:
        return
    if ep.withdrawn:
        if not dry_run:
            deliveries.save(s, row, state=SKIPPED, skip_reason=WITHDRAWN, updated_at=now)
        return
    if row.payload.get("edited_at"):
        return  # a person wrote this text: an edit of the post doesn't replace it
    if ep.last_changed_at and row.updated_at and ep.last_changed_at > row.updated_at:
        # Nothing went out yet: the announcement may follow the edit.
        rendered = render_or_report(s, renderer, ep, ch, limits, now)
        if rendered is not None and not dry_run:
            values: dict[str, Any] = {}
            announce = row.state == PLANNED and row.kind == "announce"
            if announce and audio_unverified(s, settings, ep):  # e.g. a new enclosure URL
                values = {"state": WAITING_AUDIO, "next_attempt_at": None}
            deliveries.save(
                s, row, text=rendered.text, text_length=rendered.length,
                payload={
                    **row.payload, **_card(ep),
                    **image_payload(s, images or Images(settings), ep, ch, now),
                },
                due_at=due_time(ep, now, settings),  # a moved date moves it
                updated_at=now, **values,
            )  # fmt: skip


# ---------------------------------------------------------------- a person in the loop

APPROVE_REASON = "approve = true on this channel: waits for a person to approve, edit or reject"


def awaiting_if_approve(
    ch: ChannelConfig, state: str, reason: str | None
) -> tuple[str, str | None]:
    """A channel with `approve = true` holds every row it would send for a person."""
    if state == PLANNED and ch.approve:
        return AWAITING_APPROVAL, APPROVE_REASON
    return state, reason


def _restored_state(ch: ChannelConfig) -> dict[str, Any]:
    """The state a restored episode's row takes again (held again on an approve channel)."""
    state, reason = awaiting_if_approve(ch, PLANNED, None)
    return {"state": state, "skip_reason": reason}


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
    return deliveries.insert_ignore(s, row)
