"""Announce only when the audio is really there.

A post often goes live before its mp3 finished uploading; announcing it then sends people
to a 404. So an announcement of an episode with an enclosure is planned `waiting_audio`
(outbox.plan_row; a source opts out with `verify_audio = false`), and each pass, before
sending, `verify_waiting` checks every such episode whose check is due, once per episode
whatever its number of channels (sources/enclosure.py: HEAD, or a one-byte ranged GET).

- It passes: the result is stored (store/audio_checks), so no other channel or pass asks
  again, and the rows become `planned` and go out in the same pass.
- It fails: the rows stay `waiting_audio`, checked again with the one back-off formula
  (from `announce.retry_base`, doubling, at most RECHECK_MAX). After the source's
  `verify_audio_timeout` the episode becomes one problem and one alert (alerts.py); the
  rows still wait, so nothing is lost: the audio appearing later still sends them, and a
  person can skip them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce.outbox import (
    APPROVE_REASON,
    AWAITING_APPROVAL,
    PLANNED,
    WAITING_AUDIO,
    audio_unverified,
)
from syndicator.backoff import backoff_seconds
from syndicator.config import Settings
from syndicator.sources.base import ProblemData
from syndicator.sources.enclosure import AUDIO_TIMEOUT, USER_AGENT, AudioProbe, probe
from syndicator.store import audio_checks, deliveries, problems
from syndicator.store import episodes as store_episodes
from syndicator.store.db import session
from syndicator.timeutil import format_duration

log = logging.getLogger(__name__)

RECHECK_MAX = timedelta(minutes=30)  # a file uploaded late is announced within this
KIND = "announce"  # reshares are of older episodes, long past their upload
PROBLEM_KIND = "audio"  # the problem a timed-out check becomes (one per enclosure URL)
NOTICE_KIND = "audio-type"  # accepted with a generic Content-Type


@dataclass
class AudioStats:
    checked: int = 0
    passed: int = 0
    waiting: int = 0
    timed_out: int = 0  # newly past verify_audio_timeout in this pass
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (title, state, detail)


def next_check(settings: Settings, failures: int, now: datetime) -> datetime:
    wait = backoff_seconds(
        settings.announce.retry_base.total_seconds(), failures, RECHECK_MAX.total_seconds()
    )
    return now + timedelta(seconds=wait)


def verify_waiting(
    engine: Engine,
    settings: Settings,
    clock: Callable[[], datetime],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    client: httpx.Client | None = None,
) -> AudioStats:
    """Check the audio of every episode whose `waiting_audio` rows are due; release or
    hold them. A network failure is a failed check, never an exception."""
    stats = AudioStats()
    with session(engine) as s:
        ids = deliveries.due_waiting_episodes(s, WAITING_AUDIO, KIND, clock())
    if not ids:
        return stats
    own = client is None
    c = client or httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(AUDIO_TIMEOUT),
        follow_redirects=False,
    )
    try:
        for episode_id in ids:
            if should_stop():
                break
            _verify_one(engine, settings, clock, c, episode_id, stats)
    finally:
        if own:
            c.close()
    return stats


def _verify_one(
    engine: Engine,
    settings: Settings,
    clock: Callable[[], datetime],
    client: httpx.Client,
    episode_id: int,
    stats: AudioStats,
) -> None:
    with session(engine) as s:
        ep = store_episodes.by_id(s, episode_id)
        if ep is None:
            return
        unverified = audio_unverified(s, settings, ep)
        title, source, url = ep.title, ep.source, ep.enclosure_url or ""
        expected = ep.enclosure_length
    if not unverified:
        # passed meanwhile (another process), no audio any more, or verify_audio = false
        with session(engine, write=True) as s:
            _release(s, settings, episode_id, clock())
        return
    result = probe(
        url, expected, allow_private=settings.fetch.allow_private_redirects, client=client
    )
    stats.checked += 1
    now = clock()
    answer: dict[str, Any] = {"status": result.status, "content_type": result.content_type}
    answer["length"] = result.length
    with session(engine, write=True) as s:
        if result.ok:
            audio_checks.record_pass(s, episode_id, url, now, **answer)
            _release(s, settings, episode_id, now)
            problems.resolve(s, source, url, now)  # a timed-out check's problem, if any
            if result.notice:
                problems.record(
                    s, source, ProblemData(url, NOTICE_KIND, result.notice, severity="notice"), now
                )
            stats.passed += 1
            stats.events.append((title, "passed", url))
            log.info("audio of %r is there (%s): announcing", title, url)
            return
        _hold(s, settings, episode_id, source, title, url, result, now, stats)


def _hold(
    s: Session,
    settings: Settings,
    episode_id: int,
    source: str,
    title: str,
    url: str,
    result: AudioProbe,
    now: datetime,
    stats: AudioStats,
) -> None:
    prior = audio_checks.get(s, episode_id)
    failures = (prior.checks if prior is not None and prior.url == url else 0) + 1
    due = next_check(settings, failures, now)
    answer = {"status": result.status, "content_type": result.content_type}
    row = audio_checks.record_failure(
        s,
        episode_id, url, now, result.reason, due, **answer, length=result.length,
    )  # fmt: skip
    why = (
        f"audio not there yet ({url} {result.reason}); checked {row.checks} time(s), "
        f"next check {due:%Y-%m-%d %H:%M} UTC"
    )
    deliveries.hold_waiting(s, episode_id, WAITING_AUDIO, KIND, due, why, now)
    stats.waiting += 1
    stats.events.append((title, WAITING_AUDIO, why))
    try:
        timeout = settings.source(source).verify_audio_timeout
    except KeyError:  # audio_unverified saw the source; a reload may have dropped it
        return
    since = row.first_failed_at or now
    if now - since < timeout:
        return
    if row.timed_out_at is None:
        row.timed_out_at = now
        stats.timed_out += 1
        log.warning("audio of %r still not there after %s: %s", title, timeout, result.reason)
    # One problem per URL: recorded again on each later check, it stays one row.
    problems.record(
        s,
        source,
        ProblemData(
            url,
            PROBLEM_KIND,
            f"episode {title!r}: its audio is still not there after "
            f"{format_duration(now - since)} ({row.checks} checks): {result.reason}. Its "
            f"announcements wait (state waiting_audio) and are checked again every "
            f"{format_duration(RECHECK_MAX)} at most; upload the file or fix the enclosure "
            "(mp3_bytes, the URL), or skip them with `syndicator delivery skip ID`.",
        ),
        now,
    )


def _release(s: Session, settings: Settings, episode_id: int, now: datetime) -> None:
    """The episode's audio is there: its waiting announcements go on. Audio first, then
    approval: on an `approve = true` channel they now wait for a person, who approves
    what will really go out (a row queued by a person, `approved_at`, is not held)."""
    deliveries.release_waiting(s, episode_id, WAITING_AUDIO, KIND, PLANNED, now)
    approve = {ch.name for ch in settings.channels if ch.approve}
    if not approve:
        return
    for row in deliveries.of_episode(s, episode_id):
        if (
            row.channel in approve
            and row.kind == KIND
            and row.state == PLANNED
            and not row.attempts
            and not (row.payload or {}).get("approved_at")
        ):
            deliveries.save(
                s, row, state=AWAITING_APPROVAL, skip_reason=APPROVE_REASON, alerted=False,
                updated_at=now,
            )  # fmt: skip
