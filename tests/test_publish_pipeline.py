"""Feeds through the pass: rebuilt only on change, one ping per changed build, a hub that
is down gets the ping later; `feed build --check`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from sqlmodel import select

from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings
from tests.fakes.base import FakeServer, Received, Reply

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class FakeHub(FakeServer):
    """A WebSub hub (POST publish -> 204) and Podcast Index's pubnotify (GET -> 200)."""

    def app(self, req: Received) -> Reply:
        if req.method == "POST" and req.path == "/hub":
            return Reply(204)
        if req.method == "GET" and req.path == "/pubnotify":
            return Reply(200, {"status": "true", "description": "Feed marked for update"})
        return Reply(404, {"error": "no such endpoint"})


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as h:
        yield h


def _settings(tmp_path: Path, url: str, site: Path, hub: FakeHub):  # type: ignore[no-untyped-def]
    s = make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}",
                  "enclosure_url": "{site.mp3_url_path}{number}.mp3",
                  "guid": "{site.url}/podcast/{slug}",
                  "verify_audio": False}],  # the example site's mp3 host does not exist
        feeds=[{"name": "main", "path": "public/feed.xml",
                "hubs": [f"http://127.0.0.1:{hub.port}/hub"], "podcast_index": True,
                "podcast_index_url": f"http://127.0.0.1:{hub.port}/pubnotify"}],
        announce={"retry_base": "1s"},
    )  # fmt: skip
    s.podcast.image = "https://show.example/cover.png"
    s.podcast.owner_email = "host@show.example"
    s.podcast.author = "Host"
    s.podcast.description = "A show."
    return s


def test_one_ping_per_changed_build(
    tmp_path: Path, sqlite_url: str, site: Path, hub: FakeHub
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, hub)
    run_once(settings, now=NOW)
    feed = tmp_path / "public" / "feed.xml"
    parsed = feedparser.parse(feed.read_bytes())
    assert not parsed.bozo and len(parsed.entries) == 5
    assert len(hub.requests("POST", "/hub")) == 1
    assert len(hub.requests("GET", "/pubnotify")) == 1
    with session(upgrade(sqlite_url)) as db:
        pings = db.exec(select(Delivery).where(Delivery.kind == "ping")).all()
    assert [p.state for p in pings] == ["sent", "sent"]
    publish = hub.requests("POST", "/hub")[0].body.decode()
    assert "hub.mode=publish" in publish and "hub.url=" in publish
    mtime = feed.stat().st_mtime_ns
    run_once(settings, now=NOW + timedelta(minutes=5))  # nothing changed
    assert feed.stat().st_mtime_ns == mtime
    assert len(hub.requests("POST", "/hub")) == 1
    post = site / "_posts/podcast/2026-11-24-6-billing-for-a-saas-without-losing-sleep.md"
    post.write_text(post.read_text().replace('Without Losing Sleep"', 'Without Losing Any Sleep"'))
    run_once(settings, now=NOW + timedelta(minutes=10))
    assert feed.stat().st_mtime_ns != mtime
    assert len(hub.requests("POST", "/hub")) == 2


def test_a_hub_that_is_down_gets_the_ping_later(
    tmp_path: Path, sqlite_url: str, site: Path, hub: FakeHub
) -> None:
    hub.fail_next(status=500, method="POST", path="/hub")
    settings = _settings(tmp_path, sqlite_url, site, hub)
    run_once(settings, now=NOW)
    assert len(hub.requests("POST", "/hub", stored=True)) == 0
    with session(upgrade(sqlite_url)) as db:
        pings = db.exec(select(Delivery).where(Delivery.kind == "ping")).all()
    assert sorted(p.state for p in pings) == ["retrying", "sent"]  # visible, not lost
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert len(hub.requests("POST", "/hub", stored=True)) == 1
    assert len(hub.requests("GET", "/pubnotify")) == 1  # the other endpoint only once


def test_feed_build_check_cli(tmp_path: Path, site: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
[podcast]
title = "Shipping It"
feed_url = "https://shipping-it.example/podcast/feed.xml"
description = "A show."
[database]
url = "sqlite:///s.db"
[[sources]]
name = "episodes"
type = "jekyll"
path = "{site}"
episode_url = "{{site.url}}/podcast/{{slug}}"
guid = "{{site.url}}/podcast/{{slug}}"
[[feeds]]
name = "main"
path = "public/feed.xml"
""")

    def cli(*a: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *a]
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert cli("run-once").returncode in (0, 1)
    (tmp_path / "public" / "feed.xml").unlink()
    r = cli("feed", "build", "--check")
    assert r.returncode == 1  # no image, no owner e-mail: Apple would refuse it
    assert "image" in r.stderr.lower()
    assert not (tmp_path / "public" / "feed.xml").exists()  # --check writes nothing
    r = cli("feed", "build")
    assert (tmp_path / "public" / "feed.xml").exists()
