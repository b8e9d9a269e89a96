"""Read models shared by the CLI's --json output and the web page's API.

These shapes are the documented, stable JSON interface (docs/json.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from syndicator.store import shows
from syndicator.store.db import session
from syndicator.store.models import (
    Delivery,
    Episode,
    EpisodeEvent,
    FeedState,
    Heartbeat,
    Problem,
    Show,
    Source,
)
from syndicator.store.problems import group, open_problems


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def event_dict(e: EpisodeEvent) -> dict[str, Any]:
    return {"at": iso(e.at), "event": e.event, "detail": e.detail}


_GUEST_KEYS = ("name", "website", "avatar", "title")


def _guest_dict(g: dict[str, Any]) -> dict[str, Any]:
    """A stored guest: its fields, `handles` ({kind: handle}) and each handle beside them
    under its kind's name (rows stored before `handles` have only those)."""
    from syndicator.plugins import handle_kinds  # the installed plugins

    handles = dict(g.get("handles") or {})
    for k, v in g.items():
        if k not in _GUEST_KEYS and k != "handles" and isinstance(v, str) and v:
            handles.setdefault(k, v)
    out = {k: g.get(k) for k in _GUEST_KEYS}
    flat = {k.name: handles.get(k.name) for k in handle_kinds()}  # None: no handle there
    return {**out, **flat, **handles, "handles": handles}


def episode_dict(ep: Episode, history: list[EpisodeEvent] | None = None) -> dict[str, Any]:
    """`history`: the episode's identity decisions (why posts were or were not merged)."""
    return {
        "id": ep.id,
        "source": ep.source,
        "guid": ep.guid,
        "number": ep.number,
        "slug": ep.slug,
        "path": ep.path,
        "title": ep.title,
        "date": iso(ep.date),
        "url": ep.url,
        "guests": [_guest_dict(g) for g in ep.guests],
        "tags": list(ep.tags),
        "categories": list(ep.categories),
        "enclosure": (
            {"url": ep.enclosure_url, "length": ep.enclosure_length, "type": ep.enclosure_type}
            if ep.enclosure_url
            else None
        ),
        "duration_seconds": ep.duration_seconds,
        "chapters": [{"start": c["start"], "title": c["title"]} for c in ep.chapters],
        "persons": [dict(p) for p in ep.persons or []],
        "image": ep.image,
        "withdrawn": ep.withdrawn,
        "withdrawn_reason": ep.withdrawn_reason,
        "description": ep.description,
        "first_seen": iso(ep.first_seen_at),
        "last_changed": iso(ep.last_changed_at),
        "history": [event_dict(e) for e in history or ()],
    }


def delivery_dict(d: Delivery, guid: str | None) -> dict[str, Any]:
    return {
        "id": d.id,
        "episode": guid,
        "channel": d.channel,
        "kind": d.kind,
        "state": d.state,
        "attempts": d.attempts,
        "remote_id": d.remote_id,
        "remote_url": d.remote_url,
        "last_error": d.last_error,
        "skip_reason": d.skip_reason,
        "text": d.text,
        "target": d.target,
        "planned_at": iso(d.planned_at),
        "due_at": iso(d.due_at),
        "next_attempt_at": iso(d.next_attempt_at),
        "sent_at": iso(d.sent_at),
        # reply threads: the reply's place (1, 2, ...) and the key of the row it answers
        "part": (d.payload or {}).get("part"),
        "parent": (d.payload or {}).get("parent"),
        # a person in the loop: when a held row was approved, or its text edited
        "approved_at": (d.payload or {}).get("approved_at"),
        "edited_at": (d.payload or {}).get("edited_at"),
    }


def problem_dict(p: Problem) -> dict[str, Any]:
    return {
        "id": p.id,
        "source": p.source,
        "location": p.location,
        "line": p.line,
        "kind": p.kind,
        "severity": p.severity,
        "message": p.message,
        "since": iso(p.first_seen_at),
        "last_seen": iso(p.last_seen_at),
    }


def find_episode(s: Session, ref: str) -> Episode | None:
    """An episode by guid, id (#12), number, slug or path."""
    ref = ref.strip()
    if ref.startswith("#") and ref[1:].isdigit():
        return s.get(Episode, int(ref[1:]))
    for cond in (Episode.guid == ref, Episode.slug == ref, Episode.path == ref):
        ep = s.exec(select(Episode).where(cond)).first()
        if ep is not None:
            return ep
    if ref.isdigit():
        return s.exec(
            select(Episode).where(Episode.number == int(ref)).order_by(Episode.id)  # type: ignore[arg-type]
        ).first()
    return None


def list_episodes(s: Session) -> list[Episode]:
    return list(
        s.exec(select(Episode).order_by(Episode.date.desc(), Episode.id.desc())).all()  # type: ignore[union-attr]
    )


def list_deliveries(s: Session, kind: str | None = None) -> list[tuple[Delivery, str | None]]:
    q = select(Delivery, Episode.guid).join(Episode, isouter=True).order_by(Delivery.id)  # type: ignore[arg-type]
    if kind:
        q = q.where(Delivery.kind == kind)
    return [(d, g) for d, g in s.exec(q).all()]


def delivery_counts(s: Session) -> dict[str, dict[str, int]]:
    rows = s.exec(
        select(Delivery.channel, Delivery.state, func.count()).group_by(
            Delivery.channel, Delivery.state
        )
    ).all()
    out: dict[str, dict[str, int]] = {}
    for channel, state, n in rows:
        out.setdefault(channel, {})[state] = n
    return out


def daemon_dict(s: Session, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    beats = s.exec(select(Heartbeat).order_by(Heartbeat.updated_at.desc())).all()  # type: ignore[union-attr]
    live = [
        b
        for b in beats
        if b.updated_at and now - b.updated_at <= stale_after and b.state != "stopped"
    ]
    leader = next((b for b in live if b.role == "leader"), None) or (live[0] if live else None)
    last = beats[0] if beats else None
    return {
        "alive": leader is not None,
        # the newest process ended by a signal and said so; a crash leaves this false
        "stopped": leader is None and last is not None and last.state == "stopped",
        "stopped_detail": last.detail if leader is None and last is not None else None,
        "owner": leader.owner if leader else None,
        "state": leader.state if leader else None,
        "detail": leader.detail if leader else None,
        "last_seen": iso(beats[0].updated_at) if beats else None,
        "next_pass": iso(leader.next_pass_at) if leader else None,
        "last_pass": iso(leader.last_pass_at) if leader else None,
        "processes": len(live),
    }


def workers_list(s: Session, stale_after: timedelta) -> list[dict[str, Any]]:
    """Every `syndicator run` process known, newest heartbeat first (docs/json.md)."""
    from syndicator.store.workers import listing

    return [
        {
            "id": w.id,
            "host": w.host,
            "pid": w.pid,
            "alive": w.alive,
            "started": iso(w.started),
            "last_seen": iso(w.last_seen),
            "polls": w.polls,
            "sends": w.sends,
        }
        for w in listing(s, stale_after)
    ]


def sources_list(s: Session) -> list[dict[str, Any]]:
    counts = dict(
        s.exec(select(Episode.source, func.count()).group_by(Episode.source)).all()  # type: ignore[arg-type]
    )
    found = {r.source: r for r in s.exec(select(Show)).all()}
    return [
        source_dict(src, found.get(src.name), counts.get(src.name, 0))
        for src in s.exec(select(Source).order_by(Source.name)).all()
    ]


def source_dict(src: Source, show: Show | None, episodes: int) -> dict[str, Any]:
    """One source as `status --json`, `sources list --json` and the web page show it."""
    return {
        "name": src.name,
        "type": src.type,
        "url": src.url,
        "ok": src.consecutive_errors == 0 and not src.disabled,
        "last_poll": iso(src.last_poll_at),
        "last_ok": iso(src.last_ok_at),
        "next_due": iso(src.next_due_at),
        "consecutive_errors": src.consecutive_errors,
        "last_error": src.last_error,
        "disabled": src.disabled,
        "disabled_reason": src.disabled_reason,
        "episodes": episodes,
        "polls": src.polls,
        "poll_errors": src.poll_errors,
        "show": show_dict(show),
    }


def show_dict(row: Show | None) -> dict[str, Any] | None:
    """A remote feed's show as `sources list --json`, `status --json` and templates see it."""
    if row is None:
        return None
    out: dict[str, Any] = {name: getattr(row, name) for name in shows.FIELDS}
    out["categories"] = list(row.categories)
    out["funding"] = [dict(f) for f in row.funding]
    out["value"] = dict(row.value)
    out["last_build_date"] = iso(row.last_build_date)
    out["feed_url"] = row.feed_url
    out["updated_at"] = iso(row.updated_at)
    return out


def feeds_list(s: Session) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "url": f.url,
            "path": f.path,
            "podcast_guid": f.podcast_guid,
            "built_at": iso(f.built_at),
            "changed_at": iso(f.changed_at),
            "episodes": f.episode_count,
            "size_bytes": f.size_bytes,
            "build_seconds": f.build_seconds,
            "problems": list(f.check_problems),
            "last_error": f.last_error,
        }
        for f in s.exec(select(FeedState).order_by(FeedState.name)).all()
    ]


def awaiting_count(s: Session) -> int:
    """How many rows wait for a person's approval, on every channel."""
    return int(
        s.exec(
            select(func.count()).select_from(Delivery).where(Delivery.state == "awaiting_approval")
        ).one()
    )


def audio_waiting(s: Session) -> list[dict[str, Any]]:
    """Episodes whose announcements wait for their audio (announce/audio.py), oldest first."""
    from syndicator.store.audio_checks import failing

    return [
        {
            "episode": ep.guid,
            "title": ep.title,
            "url": chk.url,
            "checks": chk.checks,
            "status": chk.status,
            "last_error": chk.last_error,
            "since": iso(chk.first_failed_at),
            "last_check": iso(chk.last_checked_at),
            "next_check": iso(chk.next_check_at),
            "timed_out": chk.timed_out_at is not None,
        }
        for chk, ep in failing(s, "waiting_audio")
    ]


def status_dict(engine: Engine, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    with session(engine) as s:
        rows = [problem_dict(p) for p in open_problems(s)]
        return {
            "now": iso(now),
            "daemon": daemon_dict(s, now, stale_after),
            "workers": workers_list(s, stale_after),
            "sources": sources_list(s),
            "deliveries": delivery_counts(s),
            "awaiting_approval": awaiting_count(s),
            "audio_waiting": audio_waiting(s),
            "feeds": feeds_list(s),
            "problems": rows,
            "problem_counts": {
                sev: sum(1 for r in rows if r["severity"] == sev)
                for sev in ("error", "warning", "notice")
            },
            "problem_groups": [g.to_dict() for g in group(rows)],
        }
