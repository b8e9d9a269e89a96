"""Read-only queries behind the pages and the API.

Aggregates are done by the database (GROUP BY, COUNT, indexed lookups), never by
loading every row; lists are paginated. The row shapes come from store.views, so
the API speaks the same JSON as `syndicator ... --json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from syndicator.announce import listeners
from syndicator.announce.outbox import STATES
from syndicator.config import ChannelConfig, Settings
from syndicator.store import counts as store_counts
from syndicator.store import deliveries as store_deliveries
from syndicator.store import episodes as store_episodes
from syndicator.store import feeds as store_feeds
from syndicator.store import leases, source_rows
from syndicator.store import problems as store_problems
from syndicator.store import sources as store_sources
from syndicator.store import workers as store_workers
from syndicator.store.db import session
from syndicator.store.history import for_episodes
from syndicator.store.views import (
    audio_waiting,
    awaiting_count,
    daemon_dict,
    delivery_counts,
    delivery_dict,
    episode_dict,
    feeds_list,
    iso,
    problem_dict,
    source_dict,
    workers_list,
)
from syndicator.timeutil import format_duration

PER_PAGE = 50
MAX_PER_PAGE = 200


def stale_after(settings: Settings) -> timedelta:
    return settings.daemon.heartbeat * 3


# ---------------------------------------------------------------- dashboard


def open_problems(
    s: Session, limit: int | None = None, *, action: bool | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Open problems and their count; `action=True` only those a person must act on
    (errors, warnings), `action=False` only notices, None every one."""
    rows, total = store_problems.open_rows(s, limit, action=action)
    return [problem_dict(p) for p in rows], total


def pings(s: Session, limit: int = 10) -> list[dict[str, Any]]:
    out = []
    for d in store_deliveries.newest(s, "directory", "ping", limit):
        row = delivery_dict(d, None)
        row["feed"] = (d.payload or {}).get("feed")
        row["updated_at"] = iso(d.updated_at)
        out.append(row)
    return out


def dashboard(engine: Engine, settings: Settings, now: datetime) -> dict[str, Any]:
    """status_dict's shape (plus totals and pings), from aggregate queries only."""
    with session(engine) as s:
        # Only what needs a person counts and colours the page; notices are counted apart.
        problems, problem_total = open_problems(s, limit=10, action=True)
        _, notice_total = open_problems(s, limit=0, action=False)
        counts = delivery_counts(s)
        episodes = store_episodes.count(s)
        first = source_rows.page(s, limit=DASHBOARD_SOURCES)
        return {
            "now": iso(now),
            "daemon": daemon_dict(s, now, stale_after(settings)),
            "workers": workers_list(s, stale_after(settings)),
            "sources": [_source_row(*r) for r in first.rows],  # the rest: /sources
            "source_total": first.total,
            "deliveries": counts,
            "feeds": feeds_list(s),
            "problems": problems,
            "problem_total": problem_total,
            "notice_total": notice_total,
            "episode_total": int(episodes),
            "pings": pings(s),
            "awaiting_approval": awaiting_count(s),  # a person in the loop
            "listeners": listeners.summary(s, settings, now, with_posts=False)["channels"],
            "listeners_days": settings.stats.days,
            "audio_waiting": audio_waiting(s),
        }


# ---------------------------------------------------------------- sources

DASHBOARD_SOURCES = 20  # sources the dashboard lists; /sources pages through the rest
SOURCES_PER_PAGE = 50


def _source_row(src: Any, show: Any, episodes: int) -> dict[str, Any]:
    return source_dict(src, show, episodes)


@dataclass
class SourcesPage:
    items: list[dict[str, Any]]
    total: int
    page: int
    q: str
    per_page: int = SOURCES_PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def source_page(engine: Engine, q: str = "", page: int = 1) -> SourcesPage:
    """One page of sources (config and stored) by name; `q` matches name, URL, show title."""
    q, page = q.strip()[:200], max(1, page)
    with session(engine) as s:
        found = source_rows.page(s, q, (page - 1) * SOURCES_PER_PAGE, SOURCES_PER_PAGE)
    return SourcesPage([_source_row(*r) for r in found.rows], found.total, page, q)


# ---------------------------------------------------------------- episodes


@dataclass
class EpisodeFilter:
    q: str = ""
    state: str = ""
    channel: str = ""
    source: str = ""
    page: int = 1
    per_page: int = PER_PAGE

    def normalized(self) -> EpisodeFilter:
        return EpisodeFilter(
            q=self.q.strip()[:200],
            state=self.state if self.state in STATES else "",
            channel=self.channel.strip()[:100],
            source=self.source.strip()[:100],
            page=max(1, self.page),
            per_page=min(max(1, self.per_page), MAX_PER_PAGE),
        )


@dataclass
class EpisodePage:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    channels: list[str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def episode_page(engine: Engine, f: EpisodeFilter, full: bool = False) -> EpisodePage:
    """One page of episodes, newest first, each with its deliveries' states per channel.

    `full=True` gives each row the whole episode_dict (the API); the page needs
    only a few columns, so it loads only those.
    """
    f = f.normalized()
    with session(engine) as s:
        total, rows = store_episodes.search(
            s, q=f.q, state=f.state, channel=f.channel, source=f.source,
            offset=(f.page - 1) * f.per_page, limit=f.per_page, full=full,
        )  # fmt: skip
        if full:
            events = for_episodes(s, [e.id for e in rows])
            items = [episode_dict(e, events.get(e.id)) for e in rows]
        else:
            items = [
                {
                    "id": r[0], "number": r[1], "title": r[2], "date": iso(r[3]),
                    "source": r[4], "guid": r[5], "withdrawn": r[6], "backlog": r[7],
                    "audio": bool(r[8]),
                }
                for r in rows
            ]  # fmt: skip
        states: dict[int, dict[str, str]] = {}
        channels: set[str] = set()
        for ep_id, channel, state, kind in store_deliveries.states_of_episodes(
            s, [it["id"] for it in items]
        ):
            name = channel if kind == "announce" else f"{channel} ({kind})"
            states.setdefault(ep_id, {})[name] = state
            channels.add(name)
        for it in items:
            it["deliveries"] = states.get(it["id"], {})
    return EpisodePage(items, total, f.page, f.per_page, sorted(channels))


def episode_detail(engine: Engine, episode_id: int) -> dict[str, Any] | None:
    with session(engine) as s:
        ep = store_episodes.by_id(s, episode_id)
        if ep is None:
            return None
        rows = store_deliveries.of_episode(s, episode_id)
        deliveries = []
        for d in rows:
            row = delivery_dict(d, ep.guid)
            row["text_length"] = d.text_length
            row["updated_at"] = iso(d.updated_at)
            row["latency_seconds"] = d.latency_seconds
            deliveries.append(row)
        ids = [d.id for d in rows if d.id is not None]
        read = {
            p.delivery.id: listeners.post_dict(p)
            for p in store_counts.read_posts(s, delivery_ids=ids)
        }
        for row in deliveries:
            row["listeners"] = read.get(row["id"])
        return {
            "episode": episode_dict(ep, for_episodes(s, [episode_id]).get(episode_id)),
            "feed": {
                "guid": ep.guid,
                "transcript_url": ep.transcript_url,
                "transcript_type": ep.transcript_type,
                "explicit": ep.explicit,
                "episode_type": ep.episode_type,
                "backlog": ep.backlog,
            },
            "deliveries": deliveries,
        }


def deliveries_page(
    engine: Engine,
    *,
    state: str = "",
    channel: str = "",
    kind: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> dict[str, Any]:
    page, per_page = max(1, page), min(max(1, per_page), MAX_PER_PAGE)
    with session(engine) as s:
        total, rows = store_deliveries.page(
            s, state=state, channel=channel, kind=kind,
            offset=(page - 1) * per_page, limit=per_page,
        )  # fmt: skip
        items = [delivery_dict(d, g) for d, g in rows]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


# ---------------------------------------------------------------- channels


def _endpoint(ch: ChannelConfig) -> str:
    from syndicator.plugins import kinds

    k = kinds().get(ch.type)
    return k.endpoint(ch) if k is not None else ""


def _dur(value: timedelta | None) -> str | None:
    return None if value is None else format_duration(value)


def channel_dict(ch: ChannelConfig, counts: dict[str, int], last_sent: datetime | None) -> dict:
    """A channel's config as shown: nothing from the environment, no secret."""
    return {
        "name": ch.name,
        "type": ch.type,
        "enabled": ch.enabled,
        "dry_run": ch.dry_run,
        "endpoint": _endpoint(ch),
        "template": ch.template,
        "limit": ch.limit,
        "on_unknown": ch.on_unknown,
        "max_attempts": ch.max_attempts,
        "timeout": _dur(ch.timeout),
        "filters": {
            "categories": list(ch.categories),
            "tags_include": list(ch.tags_include),
            "tags_exclude": list(ch.tags_exclude),
            "sources": list(ch.sources),
            "max_age": _dur(ch.max_age),
        },
        "pacing": {
            "min_interval": _dur(ch.min_interval),
            "max_per_hour": ch.max_per_hour,
            "quiet_hours": ch.quiet_hours,
        },
        "evergreen": {
            "enabled": ch.evergreen.enabled,
            "every": _dur(ch.evergreen.every),
        },
        "counts": counts,
        "last_sent": iso(last_sent),
    }


def channels(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    with session(engine) as s:
        counts = delivery_counts(s)
        last = store_deliveries.last_sent_by_channel(s, "sent")
    out = [channel_dict(ch, counts.get(ch.name, {}), last.get(ch.name)) for ch in settings.channels]
    configured = {ch.name for ch in settings.channels}
    for name in sorted(set(counts) - configured - {"directory"}):
        # rows of a channel since removed from the config: still worth seeing
        out.append({"name": name, "type": None, "removed": True, "counts": counts[name],
                    "last_sent": iso(last.get(name))})  # fmt: skip
    return out


# ---------------------------------------------------------------- change detection


def change_stamp(engine: Engine, settings: Settings, now: datetime) -> dict[str, Any]:
    """Cheap fingerprints of what the pages show, one query per part.

    The live-update poller compares them every second and tells the pages which
    part changed.
    """
    with session(engine) as s:
        out = {
            "deliveries": store_deliveries.change_stamp(s),
            "episodes": store_episodes.change_stamp(s),
            "sources": store_sources.change_stamp(s),
            "problems": store_problems.change_stamp(s),
            "feeds": store_feeds.change_stamp(s),
            "counts": store_counts.change_stamp(s),
        }
        beat = daemon_dict(s, now, stale_after(settings))
        out["daemon"] = (beat["alive"], beat["state"], beat["next_pass"], beat["last_pass"])
        out["heartbeats"] = leases.heartbeat_count(s)
        out["workers"] = store_workers.change_stamp(s, stale_after(settings))
    return out
