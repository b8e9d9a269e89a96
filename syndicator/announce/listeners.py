"""What listeners did: read back the counts (likes, reposts, replies, quotes, views) of
sent posts from networks that give them, and store them as a time series per delivery.

Slow on purpose, so it never competes with announcing for a network's rate limit:
- a post is read while it is younger than `[stats] days`, at most once per `every`
  (its first reading `every` after it was sent), so posts sent at different times are
  read at different times;
- at most MAX_READS_PER_PASS posts per channel in one pass; the rest wait for the next;
- a temporary failure (429, 5xx, a timeout) stops that channel until the back-off or
  the network's Retry-After has passed; the other channels go on;
- a refusal (no permission, an API tier without reads) is one notice per channel, and
  the channel is not asked again for REFUSED_PAUSE.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from syndicator.announce import outbox
from syndicator.backoff import backoff_seconds
from syndicator.channels.base import GONE_STATUSES, PermanentError, SendError
from syndicator.config import Settings
from syndicator.sources.base import ProblemData
from syndicator.store import counts as store_counts
from syndicator.store import meta as store_meta
from syndicator.store import problems as problem_store
from syndicator.store.db import session
from syndicator.store.views import iso
from syndicator.timeutil import format_duration, parse_iso

log = logging.getLogger(__name__)

MAX_READS_PER_PASS = 50  # per channel; more due posts wait for the next pass
REFUSED_PAUSE = timedelta(days=1)  # a channel that refused is asked again after this
FAILURE_BASE = 60.0  # seconds: the first wait after a temporary failure (then doubling)
NOTICE_LOCATION = "listener counts"  # where a channel's refusal notice is filed
NOTICE_KIND = "counts-refused"


@dataclass
class CountsReport:
    """What one pass read: readings stored, posts found gone, channels that refused or
    are waiting (Retry-After, back-off)."""

    read: int = 0
    gone: int = 0
    refused: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ChannelWait:
    """A channel not asked until `until`: after a failure, or a refusal."""

    until: datetime
    failures: int = 0
    refused: bool = False
    reason: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "until": self.until.isoformat(),
                "failures": self.failures,
                "refused": self.refused,
                "reason": self.reason,
            }
        )


def wait_key(channel: str) -> str:
    return f"counts-wait:{channel}"


def read_wait(value: str | None) -> ChannelWait | None:
    """The stored wait, or None (a damaged value is treated as no wait)."""
    if not value:
        return None
    try:
        data = json.loads(value)
        return ChannelWait(
            parse_iso(str(data["until"])),
            int(data.get("failures", 0)),
            bool(data.get("refused", False)),
            str(data.get("reason", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def owner(channel: str) -> str:
    """The problems' owner for a channel (the same as the channel's other problems)."""
    return f"channel:{channel}"


def read_due(
    engine: Engine,
    settings: Settings,
    channels: Mapping[str, Any],
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool] = lambda: False,
) -> CountsReport:
    """Read the counts that are due on every channel that can read them.

    A channel is looked up in `channels` only when it has posts due a read (the pass's
    mapping builds it then, importing its network's library), and not at all when its
    kind says its channels never read counts (`reads_counts = False`)."""
    from syndicator.plugins import kinds

    report = CountsReport()
    if not settings.stats.enabled:
        return report
    found = kinds()
    for name in channels:
        try:
            k = found.get(settings.channel(name).type)
        except KeyError:
            k = None  # not configured (a test's channel): ask the channel itself
        if not getattr(k, "reads_counts", True) or should_stop():
            continue
        try:
            _read_channel(engine, settings, name, channels, clock, should_stop, report)
        except Exception as exc:  # one channel's failure never stops the others
            log.exception("channel %s: reading listener counts failed", name)
            report.errors.append(f"channel {name}: reading counts failed: {exc}")
    return report


def _read_channel(
    engine: Engine,
    settings: Settings,
    name: str,
    channels: Mapping[str, Any],
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
    report: CountsReport,
) -> None:
    cfg = settings.stats
    now = clock()
    with session(engine) as s:
        wait = read_wait(store_meta.get(s, wait_key(name)))
        if wait is not None and wait.until > now:
            report.waiting.append(name)  # only a channel that reads counts has a wait
            return
        due = store_counts.due(
            s,
            name,
            sent_state=outbox.SENT,
            sent_since=now - timedelta(days=cfg.days),
            read_before=now - cfg.every,
            limit=MAX_READS_PER_PASS,
        )
    if not due:
        return
    reader = getattr(channels.get(name), "read_counts", None)
    if reader is None:
        return
    read_any = False
    for item in due:
        if should_stop():
            break
        try:
            counts = reader(item.remote_id)
        except PermanentError as exc:
            if exc.status in GONE_STATUSES:  # deleted: one last row, never read again
                with session(engine, write=True) as s:
                    store_counts.mark_gone(s, item.delivery_id, name, clock())
                report.gone += 1
                continue
            _refused(engine, name, exc, clock())
            report.refused.append(name)
            return
        except Exception as exc:  # temporary, or a kind's bug: wait, never hammer
            if isinstance(exc, SendError):
                reason = exc.message
            else:
                log.exception("channel %s: read_counts failed unexpectedly", name)
                reason = f"{type(exc).__name__}: {exc}"
            failures = (wait.failures if wait is not None and not wait.refused else 0) + 1
            retry_after = getattr(exc, "retry_after", None)
            seconds = backoff_seconds(
                FAILURE_BASE, failures, cfg.every.total_seconds(), retry_after=retry_after
            )
            until = clock() + timedelta(seconds=seconds)
            with session(engine, write=True) as s:
                store_meta.put(
                    s, wait_key(name), ChannelWait(until, failures, False, reason[:500]).to_json(),
                    clock(),
                )  # fmt: skip
            log.info(
                "channel %s: reading counts failed (%s); next try in %s",
                name, reason, format_duration(timedelta(seconds=seconds)),
            )  # fmt: skip
            report.waiting.append(name)
            return
        with session(engine, write=True) as s:
            store_counts.add(s, item.delivery_id, name, clock(), counts)
            if not read_any and wait is not None:
                # it works again: forget the wait and the refusal notice
                store_meta.delete(s, wait_key(name))
                problem_store.resolve(s, owner(name), NOTICE_LOCATION, clock())
        read_any = True
        report.read += 1


def _refused(engine: Engine, name: str, exc: PermanentError, now: datetime) -> None:
    """One notice per channel (updated, never repeated), and a long pause."""
    until = now + REFUSED_PAUSE
    message = (
        f"{exc.message.rstrip('.')}. The network refuses to give this channel's counts; syndicator "
        f"asks again after {format_duration(REFUSED_PAUSE)} (set [stats] enabled = false "
        "to stop reading counts)"
    )
    with session(engine, write=True) as s:
        noted = NOTICE_KIND in problem_store.open_kinds(
            s, owner(name), NOTICE_LOCATION, exclude_severity="error"
        )
        problem_store.record(
            s, owner(name), ProblemData(NOTICE_LOCATION, NOTICE_KIND, message, severity="notice"),
            now,
        )  # fmt: skip
        store_meta.put(s, wait_key(name), ChannelWait(until, 0, True, exc.message).to_json(), now)
    if not noted:
        log.warning("channel %s: %s", name, message)


# ---- what is shown: `syndicator stats --json`, the web page -------------------------------

INTERACTIONS = ("likes", "reposts", "replies", "quotes")  # views are another magnitude


def _counts(row: Any) -> dict[str, int]:
    return {k: int(v) for k in store_counts.KEYS if (v := getattr(row, k)) is not None}


def _interactions(counts: Mapping[str, int]) -> int:
    return sum(counts.get(k, 0) for k in INTERACTIONS)


def post_dict(post: store_counts.ReadPost) -> dict[str, Any]:
    """One sent post's counts: the latest, and every reading (oldest first)."""
    d = post.delivery
    live = [r for r in post.readings if not r.gone]
    latest = _latest(post)
    return {
        "delivery_id": d.id,
        "episode_id": d.episode_id,
        "episode": post.episode_title,
        "channel": d.channel,
        "remote_url": d.remote_url,
        "sent_at": iso(d.sent_at),
        "read_at": iso(post.readings[-1].at) if post.readings else None,
        "gone": any(r.gone for r in post.readings),
        "counts": latest,
        "interactions": _interactions(latest),
        "series": [
            {"at": iso(r.at), **(c := _counts(r)), "interactions": _interactions(c)} for r in live
        ],
    }


def _channel_series(posts: list[store_counts.ReadPost]) -> list[dict[str, Any]]:
    """The channel's interactions over time: after each hour with readings, the sum of
    every post's latest reading so far (a post not read yet adds nothing)."""
    readings = sorted(
        (r.at, r.delivery_id, (r.likes or 0) + (r.reposts or 0) + (r.replies or 0)
         + (r.quotes or 0)) for p in posts for r in p.readings if not r.gone
    )  # fmt: skip
    latest: dict[int, int] = {}
    running = 0
    hours: dict[datetime, int] = {}
    for at, delivery_id, total in readings:
        running += total - latest.get(delivery_id, 0)
        latest[delivery_id] = total
        hours[at.replace(minute=0, second=0, microsecond=0)] = running  # one point an hour
    return [{"at": iso(h), "interactions": n} for h, n in hours.items()]


def _latest(post: store_counts.ReadPost) -> dict[str, int]:
    live = [r for r in post.readings if not r.gone]
    return _counts(live[-1]) if live else {}


def summary(
    s: Any, settings: Settings, now: datetime, *, with_posts: bool = True
) -> dict[str, Any]:
    """Per channel and per post, the counts of posts read within `[stats] days`
    (`with_posts=False`: the channels only, for the dashboard; "posts" is then [])."""
    cfg = settings.stats
    read = store_counts.read_posts(s, since=now - timedelta(days=cfg.days))
    by_channel: dict[str, list[store_counts.ReadPost]] = {}
    for p in read:
        by_channel.setdefault(p.delivery.channel, []).append(p)
    names = list(by_channel)
    for c in settings.channels:  # a configured channel that waits or refused shows too
        if c.name not in by_channel and store_meta.get(s, wait_key(c.name)):
            names.append(c.name)
    channels = []
    for name in sorted(names):
        mine = by_channel.get(name, [])
        totals: dict[str, int] = {}
        for p in mine:
            for k, v in _latest(p).items():
                totals[k] = totals.get(k, 0) + v
        wait = read_wait(store_meta.get(s, wait_key(name)))
        waiting = wait is not None and wait.until > now
        last = max((p.readings[-1].at for p in mine if p.readings), default=None)
        channels.append(
            {
                "channel": name,
                "posts": len(mine),
                "counts": totals,
                "interactions": _interactions(totals),
                "read_at": iso(last),
                "waiting_until": iso(wait.until) if wait and waiting else None,
                "refused": wait.reason if wait and waiting and wait.refused else None,
                "series": _channel_series(mine),
            }
        )
    return {
        "now": iso(now),
        "enabled": cfg.enabled,
        "days": cfg.days,
        "every": format_duration(cfg.every),
        "channels": channels,
        "posts": [post_dict(p) for p in read] if with_posts else [],
    }
