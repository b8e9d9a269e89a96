"""What a pass did, as one line per thing: the daemon logs these, `run-once` prints them.

One path for both: `pass_events(report)` turns a pass's report into events;
`log_events` writes them as log lines (readable on a terminal, structured fields in
JSON lines). Quiet events (nothing new, a feed unchanged) go to debug in the daemon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syndicator.passreport import PassReport

EVENTS_LOGGER = "syndicator.events"
MAX_LISTED = 10  # per source and kind; a first pass over a big site says "and N more"


@dataclass(frozen=True)
class PassEvent:
    kind: str  # source, stored, changed, withdrawn, planned, skipped, sent, …
    text: str
    fields: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False  # nothing a person watching needs to see


def _source_events(report: PassReport) -> list[PassEvent]:
    out: list[PassEvent] = []
    for s in report.sources:
        if s.status == "skipped":
            continue
        line = f"{s.name}: {s.status}, {s.new} new, {s.changed} changed"
        if s.withdrawn:
            line += f", {s.withdrawn} withdrawn"
        if s.error:
            line += f" ({s.error})"
        busy = bool(s.new or s.changed or s.withdrawn or s.error)
        out.append(
            PassEvent("source", line, {"source": s.name, "status": s.status}, quiet=not busy)
        )
        for verb, titles, total in (
            ("stored new", s.new_titles, s.new),
            ("changed", s.changed_titles, s.changed),
        ):
            kind = "stored" if verb == "stored new" else "changed"
            for title in titles[:MAX_LISTED]:
                out.append(
                    PassEvent(
                        kind,
                        f"{s.name}: {verb} episode {title!r}",
                        {"source": s.name, "title": title},
                    )
                )
            listed = min(len(titles), MAX_LISTED)
            if titles and total > listed:
                more = total - listed
                out.append(PassEvent(kind, f"{s.name}: … and {more} more", {"source": s.name}))
    return out


def _plan_events(report: PassReport) -> list[PassEvent]:
    out: list[PassEvent] = []
    planned = [p for p in report.planned if p.state == "planned"]
    if planned:
        out.append(
            PassEvent(
                "planned",
                f"planned {len(planned)} announcement(s)",
                {"count": len(planned)},
            )
        )
    for p in planned[:MAX_LISTED]:
        due = f" for {p.due_at.isoformat()}" if p.due_at and p.due_at > report.now else ""
        out.append(
            PassEvent(
                "planned",
                f"{p.channel}: will announce {p.episode.title!r}{due}",
                {"channel": p.channel, "title": p.episode.title, "due_at": p.due_at},
            )
        )
    skipped: dict[tuple[str, str], int] = {}
    for p in report.planned:
        if p.state == "awaiting_approval":
            continue  # told below, as held for a person
        if p.state not in ("planned", "waiting_audio"):
            reason = (p.reason or "skipped").split(":")[0]
            skipped[(p.channel, reason)] = skipped.get((p.channel, reason), 0) + 1
    for (channel, reason), n in sorted(skipped.items()):
        out.append(
            PassEvent(
                "skipped",
                f"{channel}: not announcing {n} episode(s) ({reason})",
                {"channel": channel, "reason": reason, "count": n},
            )
        )
    out += _held_events(report)
    return out


def _held_events(report: PassReport) -> list[PassEvent]:
    """A person in the loop: rows planned into awaiting_approval, and what catch-up did."""
    held: dict[str, int] = {}
    for p in report.planned:
        if p.state == "awaiting_approval":
            held[p.channel] = held.get(p.channel, 0) + 1
    out = [
        PassEvent(
            "held",
            f"{channel}: holding {n} announcement(s) for approval",
            {"channel": channel, "count": n},
        )
        for channel, n in sorted(held.items())
    ]
    out += [PassEvent("catch-up", line, {}) for line in report.catch_up]
    return out


def _send_events(report: PassReport) -> list[PassEvent]:
    out: list[PassEvent] = []
    titles = report.send_titles
    for i, (channel, state, detail) in enumerate(report.sends.events):
        title = titles[i] if i < len(titles) else ""
        f = {"channel": channel, "state": state, "detail": detail, "title": title}
        ep = f" {title!r}" if title else ""
        if channel == "directory":
            text = f"ping {state}" + (f": {detail}" if detail and state != "sent" else "")
            out.append(PassEvent("ping", text, f))
        elif state == "sent":
            text = f"sent{ep} to {channel}: {detail or '(no link)'}"
            out.append(PassEvent("sent", text, f))
        elif state == "unknown":
            text = f"held{ep} on {channel}: outcome unknown ({detail}); see `syndicator deliveries`"
            out.append(PassEvent("held", text, f))
        elif state == "retrying":
            text = f"{channel}: sending{ep} failed, will retry: {detail}"
            out.append(PassEvent("retrying", text, f))
        else:
            out.append(PassEvent("failed", f"{channel}: sending{ep} failed: {detail}", f))
    return out


def _audio_events(report: PassReport) -> list[PassEvent]:
    """Enclosures checked before announcing (announce/audio.py): passed, or still waiting."""
    out = []
    for title, state, detail in report.audio.events:
        f = {"title": title, "state": state, "detail": detail}
        if state == "passed":
            out.append(PassEvent("audio", f"audio of {title!r} is there: announcing", f))
        else:
            out.append(PassEvent("audio", f"{title!r} waits for its audio: {detail}", f))
    return out


def _feed_events(report: PassReport) -> list[PassEvent]:
    out = []
    for f in report.feeds:
        verb = "written" if f.changed else "unchanged"
        out.append(
            PassEvent(
                "feed",
                f"feed {f.name}: {verb} ({f.episode_count} episodes)",
                {"feed": f.name, "changed": f.changed, "path": str(f.path)},
                quiet=not f.changed,
            )
        )
    if report.pings_planned:
        out.append(
            PassEvent(
                "ping",
                f"planned {report.pings_planned} feed ping(s)",
                {"count": report.pings_planned},
            )
        )
    return out


def pass_events(report: PassReport) -> list[PassEvent]:
    """Everything the pass did, in the order it did it."""
    out = _source_events(report)
    out += _plan_events(report)
    if not report.dry_run:
        out += _audio_events(report)
        out += _send_events(report)
    out += _feed_events(report)
    return out


def log_events(events: list[PassEvent], logger: logging.Logger | None = None) -> None:
    log = logger or logging.getLogger(EVENTS_LOGGER)
    for ev in events:
        extra = {"ctx_event": ev.kind, **{f"ctx_{k}": v for k, v in ev.fields.items()}}
        log.log(logging.DEBUG if ev.quiet else logging.INFO, "%s", ev.text, extra=extra)
