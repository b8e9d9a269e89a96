"""Helpers for the web tests: a seeded store, settings, a real uvicorn server.

(Named test_web_* so it sits with the web tests; it holds no tests itself.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from syndicator import config
from syndicator.announce.outbox import delivery_key
from syndicator.store import db
from syndicator.store.models import (
    Delivery,
    Episode,
    FeedState,
    Heartbeat,
    Problem,
    Source,
)
from syndicator.timeutil import utcnow
from syndicator.web.server import WebServer

XSS = "<script>alert(1)</script>"
PASSWORD = "correct horse battery"


def web_settings(tmp_path: Path, url: str | None = None, **sections: Any) -> config.Settings:
    data: dict[str, Any] = {
        "podcast": {"title": "Test Show", "timezone": "UTC", "link": "https://show.example"},
        "database": {"url": url or "sqlite:///" + str(tmp_path / "s.db")},
        "channels": [
            {"name": "masto", "type": "mastodon", "instance": "https://social.example",
             "dry_run": True, "tags_exclude": ["private"], "max_per_hour": 4},
            {"name": "sky", "type": "bluesky", "handle": "show.example", "dry_run": True},
            {"name": "hook", "type": "apprise", "url": "discord://1234/secret-webhook-token",
             "dry_run": True, "quiet_hours": "22:00-07:00"},
        ],
        "daemon": {"heartbeat": "2s"},
    }  # fmt: skip
    data.update(sections)
    return config.from_dict(data, tmp_path)


def engine_for(settings: config.Settings) -> Engine:
    return db.upgrade(settings.database.url)


@contextmanager
def write(engine: Engine) -> Iterator[Any]:
    with db.session(engine, write=True) as s:
        yield s


def add_episode(s: Any, n: int, now: datetime, **kw: Any) -> Episode:
    values: dict[str, Any] = {
        "guid": f"https://show.example/ep{n}",
        "source": "site",
        "number": n,
        "slug": f"ep{n}",
        "title": f"Episode {n}",
        "date": now - timedelta(days=n),
        "url": f"https://show.example/ep{n}",
        "first_seen_at": now,
        "last_changed_at": now,
    }
    values.update(kw)
    ep = Episode(**values)
    s.add(ep)
    s.flush()
    return ep


def add_delivery(s: Any, ep: Episode | None, channel: str, state: str, now: datetime, **kw: Any):
    kind = kw.pop("kind", "announce")
    values: dict[str, Any] = {
        "key": delivery_key(kind, ep.id if ep else None, channel, kw.get("target") or ""),
        "kind": kind,
        "episode_id": ep.id if ep else None,
        "channel": channel,
        "state": state,
        "text": f"New: {ep.title if ep else ''}",
        "planned_at": now,
        "updated_at": now,
    }
    values.update(kw)
    d = Delivery(**values)
    s.add(d)
    s.flush()
    return d


def seed(engine: Engine) -> dict[str, int]:
    """A small, varied store; returns ids by name."""
    now = utcnow()
    ids: dict[str, int] = {}
    with write(engine) as s:
        xss = add_episode(
            s, 1, now, title=XSS, slug="xss",
            enclosure_url="https://cdn.example/1.mp3", enclosure_length=12_345_678,
            enclosure_type="audio/mpeg", duration_seconds=3723,
            chapters=[{"start": 0, "title": "Intro"}, {"start": 95, "title": "<b>Tools</b>"}],
            guests=[{"name": "Filipe Névola", "twitter": "filipenevola"}],
        )  # fmt: skip
        plain = add_episode(s, 2, now, title="Shipping it with Rust")
        ids["xss"], ids["plain"] = xss.id or 0, plain.id or 0
        ids["failed"] = add_delivery(
            s, xss, "masto", "failed", now, last_error="HTTP 500 from the instance", attempts=3
        ).id
        ids["unknown"] = add_delivery(s, xss, "sky", "unknown", now, attempts=1).id
        ids["sent"] = add_delivery(
            s, xss, "hook", "sent", now, sent_at=now, remote_url="javascript:alert(2)",
            latency_seconds=0.42,
        ).id  # fmt: skip
        ids["sent2"] = add_delivery(
            s, plain, "masto", "sent", now, sent_at=now,
            remote_url="https://social.example/@show/1", latency_seconds=3.0,
        ).id  # fmt: skip
        ids["planned"] = add_delivery(s, plain, "sky", "planned", now).id
        ids["skipped"] = add_delivery(s, plain, "hook", "skipped", now, skip_reason="backlog").id
        ids["ping"] = add_delivery(
            s, None, "directory", "sent", now, kind="ping",
            target="https://pubsubhubbub.example/", payload={"feed": "main"}, sent_at=now,
        ).id  # fmt: skip
        s.add(Source(name="site", type="jekyll", last_poll_at=now, last_ok_at=now, polls=7))
        s.add(
            Source(
                name="friends", type="feed", url="https://friends.example/feed.xml",
                last_poll_at=now, polls=5, poll_errors=2, consecutive_errors=2,
                last_error="HTTP 503 <html>",
            )
        )  # fmt: skip
        s.add(
            Problem(
                source="site", location="_posts/2021-01-01-bad.md", line=3, kind="yaml",
                message=f"bad front matter {XSS}", first_seen_at=now, last_seen_at=now,
            )
        )  # fmt: skip
        s.add(
            FeedState(
                name="main", podcast_guid="abc", url="https://show.example/feed.xml",
                built_at=now, size_bytes=52_000, episode_count=2, build_seconds=0.125,
                check_problems=["item 2 has no enclosure"],
            )
        )  # fmt: skip
    return ids


@dataclass
class Site:
    """A seeded store and a server on it."""

    settings: config.Settings
    engine: Engine
    ids: dict[str, int]
    server: WebServer


def heartbeat(engine: Engine, age: timedelta, owner: str = "host:1:abc") -> None:
    now = utcnow()
    with write(engine) as s:
        row = s.get(Heartbeat, owner) or Heartbeat(owner=owner, pid=1, host="host", started_at=now)
        row.updated_at = now - age
        row.role, row.state = "leader", "idle"
        row.next_pass_at = now + timedelta(minutes=5)
        s.add(row)


@contextmanager
def running(settings: config.Settings, **kw: Any) -> Iterator[WebServer]:
    server = WebServer(settings, host="127.0.0.1", port=0, **kw).start()
    try:
        yield server
    finally:
        server.stop()


def client(server: WebServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10.0, follow_redirects=False)


def csrf_of(c: httpx.Client) -> str:
    token = c.get("/api/session").json()["csrf_token"]
    assert token
    return str(token)


def form_token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def login(c: httpx.Client, password: str = PASSWORD) -> httpx.Response:
    page = c.get("/login")
    return c.post(
        "/login", data={"password": password, "csrf_token": form_token(page.text), "next": "/"}
    )


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def delivery_state(engine: Engine, delivery_id: int) -> str:
    with db.session(engine) as s:
        row = s.get(Delivery, delivery_id)
        assert row is not None
        return row.state
