"""Announce only when the audio is really there (issue #13): the enclosure check before
announcing, the `waiting_audio` rows, the timeout's one problem and one alert, and the
reports of `check` and `feed build --check`. Every server is real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from syndicator.announce import manual
from syndicator.pipeline import run_once
from syndicator.sources.enclosure import RANGES, SIZE, STATUS, TYPE, UNREACHABLE, UNSAFE, probe
from syndicator.store.db import open_store, session
from syndicator.store.models import AudioCheck, Delivery, Problem
from syndicator.store.views import status_dict
from tests.conftest import make_settings
from tests.fakes.audio import FakeAudio
from tests.fakes.base import refused_url
from tests.fakes.webhook import FakeWebhook

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SIZE_BYTES = 48_000


@pytest.fixture
def host() -> Iterator[FakeAudio]:
    with FakeAudio() as h:
        yield h


@pytest.fixture
def hooks() -> Iterator[tuple[FakeWebhook, FakeWebhook]]:
    with FakeWebhook() as channel, FakeWebhook() as operator:
        yield channel, operator


def write_site(root: Path, mp3_bytes: int = SIZE_BYTES) -> Path:
    """A one-episode Jekyll site, dated the morning of NOW."""
    (root / "_posts").mkdir(parents=True)
    (root / "_config.yml").write_text('url: "https://show.example"\n')
    (root / "_posts" / "2026-11-27-1-first-light.md").write_text(
        f'---\ntitle: "First Light"\ncategory: podcast\nmp3_bytes: "{mp3_bytes}"\n---\nHello.\n'
    )
    return root


def settings_for(
    tmp_path: Path,
    db_url: str,
    host: FakeAudio,
    hooks: tuple[FakeWebhook, FakeWebhook],
    **source: Any,
) -> Any:
    channel, operator = hooks
    site = write_site(tmp_path / "site")
    return make_settings(
        tmp_path, db_url,
        sources=[{"name": "episodes", "type": "jekyll", "path": str(site),
                  "enclosure_url": host.url + "/audio/{number}.mp3", **source}],
        channels=[
            {"name": "one", "type": "apprise", "url": f"json://127.0.0.1:{channel.port}/one"},
            {"name": "two", "type": "apprise", "url": f"json://127.0.0.1:{channel.port}/two"},
        ],
        announce={"retry_base": "30s"},
        alerts={"url": f"json://127.0.0.1:{operator.port}/ops"},
    )  # fmt: skip


def states(settings: Any) -> list[str]:
    with session(open_store(settings)) as s:
        return sorted(d.state for d in s.exec(select(Delivery)).all())


def audio_problems(settings: Any) -> list[Problem]:
    with session(open_store(settings)) as s:
        return list(s.exec(select(Problem).where(Problem.kind == "audio")).all())


# ---------------------------------------------------------------- the test


def test_mp3_that_appears_after_three_checks_is_announced_then_and_not_before(
    tmp_path: Path, db_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    channel, operator = hooks
    host.add("/audio/1.mp3", size=SIZE_BYTES, missing_for=3)
    settings = settings_for(tmp_path, db_url, host, hooks)
    for i in range(3):
        run_once(settings, now=NOW + timedelta(minutes=10 * i))
        assert channel.posts() == [], f"announced before the audio was there (pass {i + 1})"
        assert states(settings) == ["waiting_audio", "waiting_audio"]
    # three checks so far, each one request for the episode, not one per channel
    assert len(host.requests("/audio/1.mp3", "HEAD")) == 3
    with session(open_store(settings)) as s:
        row = s.exec(select(Delivery)).first()
        assert row is not None and "404" in (row.last_error or "")
        assert row.next_attempt_at is not None and row.attempts == 0

    report = run_once(settings, now=NOW + timedelta(minutes=30))
    assert sorted(r.path for r in channel.posts()) == ["/one", "/two"]  # both, once each
    assert states(settings) == ["sent", "sent"]
    assert report.audio.passed == 1 and report.audio.checked == 1
    assert len(host.requests("/audio/1.mp3", "HEAD")) == 4

    # remembered: later passes ask the host nothing more, nothing is sent again
    run_once(settings, now=NOW + timedelta(minutes=40))
    assert len(host.requests("/audio/1.mp3")) == 4
    assert len(channel.posts()) == 2
    with session(open_store(settings)) as s:
        chk = s.get(AudioCheck, 1)
        assert chk is not None and chk.state == "passed" and chk.length == SIZE_BYTES
    assert audio_problems(settings) == []
    assert operator.posts() == []  # it came in time: nobody is alerted


def test_mp3_that_never_appears_is_one_problem_and_one_alert(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    channel, operator = hooks
    settings = settings_for(tmp_path, sqlite_url, host, hooks, verify_audio_timeout="1h")
    for minutes in (0, 20, 45):
        run_once(settings, now=NOW + timedelta(minutes=minutes))
    assert audio_problems(settings) == [] and operator.posts() == []  # not yet timed out

    for minutes in (65, 100, 140, 200):
        run_once(settings, now=NOW + timedelta(minutes=minutes))
    assert channel.posts() == []
    assert states(settings) == ["waiting_audio", "waiting_audio"]  # nothing lost
    found = audio_problems(settings)
    assert len(found) == 1 and found[0].resolved_at is None
    assert found[0].location.endswith("/audio/1.mp3") and "404" in found[0].message
    alerts = [b["message"] for b in operator.bodies("/ops")]
    assert len(alerts) == 1 and "First Light" in alerts[0]

    # status --json's shape (the CLI and /api/status share it)
    data = status_dict(open_store(settings), NOW, timedelta(seconds=30))
    (waiting,) = data["audio_waiting"]
    assert waiting["title"] == "First Light" and waiting["timed_out"] is True
    assert waiting["checks"] == 7 and waiting["status"] == 404
    assert data["deliveries"]["one"] == {"waiting_audio": 1}

    # it turns up late after all: announced, the problem closes
    host.add("/audio/1.mp3", size=SIZE_BYTES)
    run_once(settings, now=NOW + timedelta(minutes=260))
    assert len(channel.posts()) == 2
    assert audio_problems(settings)[0].resolved_at is not None
    assert len(operator.bodies("/ops")) == 1


def test_checks_back_off_between_passes(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    """Passes a second apart don't hammer the host: 30s, then 60s, 120s... between checks."""
    settings = settings_for(tmp_path, sqlite_url, host, hooks)
    for seconds in (0, 10, 20, 31, 40, 80, 95):
        run_once(settings, now=NOW + timedelta(seconds=seconds))
    # checks at 0, 31 (30s after), 95 (60s after 31); none in between
    assert len(host.requests("/audio/1.mp3")) == 3


def test_verify_audio_false_announces_without_asking(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    channel, _ = hooks
    settings = settings_for(tmp_path, sqlite_url, host, hooks, verify_audio=False)
    run_once(settings, now=NOW)
    assert len(channel.posts()) == 2 and host.log == []


def test_retry_by_hand_checks_now_and_skip_drops(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    channel, _ = hooks
    settings = settings_for(tmp_path, sqlite_url, host, hooks)
    run_once(settings, now=NOW)
    engine = open_store(settings)
    with session(engine) as s:
        one, two = s.exec(select(Delivery).order_by(Delivery.channel)).all()
    manual.skip(engine, two.id or 0, NOW)
    row = manual.retry(engine, one.id or 0, NOW + timedelta(seconds=1))
    assert row.state == "waiting_audio"  # retry = check again now, never a send unchecked
    host.add("/audio/1.mp3", size=SIZE_BYTES)
    run_once(settings, now=NOW + timedelta(seconds=2))  # inside the back-off: retry made it due
    assert [r.path for r in channel.posts()] == ["/one"]
    assert states(settings) == ["sent", "skipped"]


def test_wrong_size_waits(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    """A half-uploaded file: 200, but far from mp3_bytes."""
    channel, _ = hooks
    host.add("/audio/1.mp3", size=SIZE_BYTES // 2)
    settings = settings_for(tmp_path, sqlite_url, host, hooks)
    run_once(settings, now=NOW)
    assert channel.posts() == []
    with session(open_store(settings)) as s:
        chk = s.get(AudioCheck, 1)
        assert chk is not None and chk.state == "failing" and "mp3_bytes" in (chk.last_error or "")


# ---------------------------------------------------------------- the probe itself


def test_probe_head_ok(host: FakeAudio) -> None:
    host.add("/a.mp3", size=1000)
    p = probe(host.url + "/a.mp3", 1005)  # within 1%
    assert p.ok and p.method == "HEAD" and p.length == 1000 and p.ranges is None
    assert [r[0] for r in host.log] == ["HEAD"]


def test_probe_head_refused_falls_back_to_a_ranged_get(host: FakeAudio) -> None:
    host.add("/a.mp3", size=1000, head_status=405)
    p = probe(host.url + "/a.mp3", 1000)
    assert p.ok and p.method == "GET bytes=0-0" and p.status == 206 and p.length == 1000
    assert host.log[-1] == ("GET", "/a.mp3", "bytes=0-0")
    host.add("/b.mp3", size=1000, head_status=403, ranges=False)
    p = probe(host.url + "/b.mp3", 1000)  # the GET is answered 200: its Content-Length counts
    assert p.ok and p.status == 200 and p.length == 1000


@pytest.mark.parametrize(
    ("kw", "expected", "kind", "words"),
    [
        ({"size": 1000}, 1100, SIZE, "mp3_bytes says 1100"),
        ({"size": 1000, "ctype": "text/html"}, None, TYPE, "text/html"),
        ({"size": 0}, None, SIZE, "empty"),
        ({"size": 10, "missing_for": 1}, None, STATUS, "404"),
    ],
)
def test_probe_failures(
    host: FakeAudio, kw: dict[str, Any], expected: int | None, kind: str, words: str
) -> None:
    host.add("/a.mp3", **kw)
    p = probe(host.url + "/a.mp3", expected)
    assert not p.ok and p.problems[0][0] == kind and words in p.reason


def test_probe_octet_stream_is_accepted_with_a_notice(host: FakeAudio) -> None:
    host.add("/a.mp3", size=1000, ctype="application/octet-stream")
    p = probe(host.url + "/a.mp3", 1000)
    assert p.ok and p.notice and "audio/mpeg" in p.notice


def test_probe_video_is_accepted(host: FakeAudio) -> None:
    host.add("/a.mp4", size=1000, ctype="video/mp4")
    assert probe(host.url + "/a.mp4", None).ok


def test_probe_ranges(host: FakeAudio) -> None:
    host.add("/yes.mp3", size=1000)
    host.add("/no.mp3", size=1000, ranges=False)
    assert probe(host.url + "/yes.mp3", 1000, want_ranges=True).ranges is True
    p = probe(host.url + "/no.mp3", 1000, want_ranges=True)
    assert not p.ok and p.ranges is False and p.problems[0][0] == RANGES
    assert "Apple Podcasts requires" in p.reason


def test_probe_redirects_are_followed_and_capped(host: FakeAudio) -> None:
    host.add("/a.mp3", size=1000)
    host.add("/old.mp3", redirect_to="/a.mp3")
    p = probe(host.url + "/old.mp3", 1000)
    assert p.ok and p.final_url == host.url + "/a.mp3"
    host.add("/loop.mp3", redirect_to="/loop.mp3")
    p = probe(host.url + "/loop.mp3", None)
    assert not p.ok and p.problems[0][0] == UNSAFE and "redirects" in p.reason
    assert len(host.requests("/loop.mp3")) == 6  # the first request and 5 redirects


def test_probe_refuses_a_public_url_redirecting_inward(host: FakeAudio) -> None:
    """The fetcher's rule: a public URL may not send us into this machine's network."""
    import ipaddress

    host.add("/in.mp3", redirect_to=host.url + "/a.mp3")
    host.add("/a.mp3", size=10)

    def resolve(name: str, port: int) -> list[Any]:  # the first hop "is public"
        return [ipaddress.ip_address("127.0.0.1" if name == "127.0.0.1" else "93.184.216.34")]

    public = host.url.replace("127.0.0.1", "localhost")
    p = probe(public + "/in.mp3", None, resolve=resolve)
    assert not p.ok and "private" in p.reason and host.requests("/a.mp3") == []
    assert probe(public + "/in.mp3", None, resolve=resolve, allow_private=True).ok


def test_probe_unreachable_and_unsafe() -> None:
    p = probe(refused_url() + "/a.mp3", None)
    assert not p.ok and p.problems[0][0] == UNREACHABLE
    p = probe("file:///etc/passwd", None)
    assert not p.ok and p.problems[0][0] == UNSAFE


# ---------------------------------------------------------------- the CLI


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        cwd=cfg.parent, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _config(tmp_path: Path, host: FakeAudio, hook: FakeWebhook) -> Path:
    site = write_site(tmp_path / "site")
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "Audio Show"
link = "https://show.example"
feed_url = "https://show.example/feed.xml"
[database]
url = "sqlite:///s.db"
[[sources]]
name = "episodes"
type = "jekyll"
path = "{site}"
enclosure_url = "{host.url}/audio/{{number}}.mp3"
[[channels]]
name = "hook"
type = "apprise"
url = "json://127.0.0.1:{hook.port}/h"
[[feeds]]
name = "main"
path = "public/feed.xml"
""")
    return cfg


def test_cli_shows_the_waiting_state_and_check_reports_enclosures(
    tmp_path: Path, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    hook, _ = hooks
    cfg = _config(tmp_path, host, hook)
    assert _cli(cfg, "run-once").returncode in (0, 1)
    rows = json.loads(_cli(cfg, "deliveries", "--json", "--state", "waiting_audio").stdout)
    assert [r["state"] for r in rows] == ["waiting_audio"] and "404" in rows[0]["last_error"]
    status = json.loads(_cli(cfg, "status", "--json").stdout)
    assert status["deliveries"]["hook"] == {"waiting_audio": 1}
    assert status["audio_waiting"][0]["url"] == host.url + "/audio/1.mp3"
    assert "waiting_audio" in _cli(cfg, "status").stdout

    # check and feed build --check: a host without byte ranges is an error
    host.add("/audio/1.mp3", size=SIZE_BYTES, ranges=False)
    res = _cli(cfg, "check")
    assert res.returncode == 1 and "byte-range" in res.stderr and "/audio/1.mp3" in res.stderr
    res = _cli(cfg, "feed", "build", "--check")
    assert res.returncode == 1 and "byte-range" in res.stderr


def test_check_reports_missing_wrong_size_and_good_enclosures(
    tmp_path: Path, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    """What `check` and `feed build --check` print, in process (the CLI test shows the wiring)."""
    from syndicator import config
    from syndicator.checks import check_all
    from syndicator.directory.enclosures import feed_enclosure_problems

    settings = config.load(_config(tmp_path, host, hooks[0]))
    run_once(settings, now=NOW)  # stores the episode the feed shows
    feed = settings.feeds[0]

    def found() -> tuple[list[Any], list[Any]]:
        problems, _ = check_all(settings)
        mine = [p for p in problems if p.kind == "enclosure"]
        return mine, feed_enclosure_problems(open_store(settings), settings, feed, NOW)

    for got in found():  # nothing there yet
        assert [(p.severity, p.location) for p in got] == [("error", host.url + "/audio/1.mp3")]
        assert "404" in got[0].message and "First Light" in got[0].message
    host.add("/audio/1.mp3", size=SIZE_BYTES // 2)
    for got in found():
        assert [p.severity for p in got] == ["warning"] and "mp3_bytes says" in got[0].message
    host.add("/audio/1.mp3", size=SIZE_BYTES, ctype="application/octet-stream")
    for got in found():
        assert [p.severity for p in got] == ["notice"]
    host.add("/audio/1.mp3", size=SIZE_BYTES)
    assert found() == ([], [])


def test_web_page_shows_the_waiting_state(
    tmp_path: Path, sqlite_url: str, host: FakeAudio, hooks: tuple[FakeWebhook, FakeWebhook]
) -> None:
    from tests.test_web_support import client, running

    settings = settings_for(tmp_path, sqlite_url, host, hooks)
    run_once(settings, now=NOW)
    with running(settings) as server, client(server) as c:
        page = c.get("/")
        assert page.status_code == 200
        assert "Waiting for audio" in page.text and host.url + "/audio/1.mp3" in page.text
        assert 'class="badge s-waiting_audio"' in page.text  # the deliveries matrix's column
        api = c.get("/api/status").json()
        assert api["audio_waiting"][0]["checks"] == 1
        assert api["deliveries"]["one"] == {"waiting_audio": 1}
    host.add("/audio/1.mp3", size=SIZE_BYTES)
    run_once(settings, now=NOW + timedelta(minutes=5))
    with running(settings) as server, client(server) as c:
        page = c.get("/")
        assert '<section id="audio" class="card" data-live hidden>' in page.text
