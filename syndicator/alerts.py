"""Operator alerts: a failed delivery, a source failing repeatedly, a feed build
failing. Sent to any Apprise URL, once per incident, not once per pass."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce.outbox import AWAITING_APPROVAL
from syndicator.config import Settings, secret
from syndicator.store import audio_checks, deliveries, feeds, meta, sources
from syndicator.store.db import session

log = logging.getLogger(__name__)


def alert_url(settings: Settings) -> str | None:
    return secret("alerts", "url") or settings.alerts.url or None


def _incidents(engine: Engine, settings: Settings) -> tuple[list[str], list[tuple[str, object]]]:
    """New incidents as messages, and what to flag once they are told."""
    lines: list[str] = []
    marks: list[tuple[str, object]] = []
    with session(engine) as s:
        rows = deliveries.failed_unalerted(s, "failed")
        for d, title in rows:
            lines.append(f"Delivery failed on {d.channel}: {title or d.target}: {d.last_error}")
            marks.append(("delivery", d.id))
        _held(s, lines, marks)
        for src in sources.not_alerted(s):
            if src.disabled or src.consecutive_errors >= settings.alerts.source_errors:
                why = src.disabled_reason or src.last_error
                lines.append(
                    f"Source {src.name} failing ({src.consecutive_errors} times in a row): {why}"
                )
                marks.append(("source", src.id))
        for chk, title in audio_checks.timed_out_unalerted(s):
            lines.append(
                f"Audio of episode {title!r} still not there at {chk.url} "
                f"({chk.checks} checks): {chk.last_error}; its announcements wait"
            )
            marks.append(("audio", chk.episode_id))
        for feed in feeds.all_states(s):
            key = f"alert:feed:{feed.name}"
            told = meta.get(s, key) is not None
            if feed.last_error and not told:
                lines.append(f"Feed {feed.name} failed to build: {feed.last_error}")
                marks.append(("feed", key))
            elif not feed.last_error and told:
                marks.append(("feed-ok", key))
    return lines, marks


def _held(s: Session, lines: list[str], marks: list[tuple[str, object]]) -> None:
    """Rows newly waiting for approval: one line per channel, not one per row (a
    catch-up burst is one alert)."""
    by_channel: dict[str, list[int]] = {}
    for d in deliveries.held_unalerted(s, AWAITING_APPROVAL):
        by_channel.setdefault(d.channel, []).append(d.id or 0)
    for channel, ids in by_channel.items():
        lines.append(
            f"{len(ids)} announcement(s) on {channel} wait for approval (deliveries "
            f"{', '.join(map(str, ids))}): `syndicator delivery approve|edit|reject ID` "
            "or the web page"
        )
        marks.extend(("delivery", i) for i in ids)


def _mark(engine: Engine, marks: list[tuple[str, object]], now: datetime) -> None:
    with session(engine, write=True) as s:
        for kind, ref in marks:
            if kind == "delivery":
                deliveries.mark_alerted(s, int(ref))  # type: ignore[call-overload]
            elif kind == "source":
                sources.mark_alerted(s, int(ref))  # type: ignore[call-overload]
            elif kind == "audio":
                audio_checks.mark_alerted(s, int(ref))  # type: ignore[call-overload]
            elif kind == "feed":
                meta.add(s, str(ref), "1", now)
            elif kind == "feed-ok":
                meta.delete(s, str(ref))


def notify_operator(engine: Engine, settings: Settings, now: datetime) -> list[str]:
    """Send one alert for the incidents not told yet; returns their lines."""
    url = alert_url(settings)
    if not url:
        return []
    lines, marks = _incidents(engine, settings)
    if not lines:
        _mark(engine, marks, now)  # feed recoveries
        return []
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        log.error("alerts: the Apprise URL in [alerts] / SYNDICATOR_ALERTS_URL is not valid")
        return []
    title = f"syndicator: {len(lines)} thing(s) need attention"
    if ap.notify(title=title, body="\n".join(lines)):
        _mark(engine, marks, now)
        return lines
    log.warning("alerts: could not reach the operator channel; will try again next pass")
    return []
