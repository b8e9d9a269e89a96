"""Remote feeds through a whole pass: validators, redirects, 410, back-off, bad XML; and
`syndicator check`, which reads everything and changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, Problem, Source
from tests.conftest import make_settings
from tests.feedserver import FeedServer, make_feed_xml

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def _settings(tmp_path: Path, url: str, feed_url: str, **extra):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path, url,
        sources=[{"name": "partner", "type": "feed", "url": feed_url, "every": "30m",
                  "timeout": "1s", **extra}],
    )  # fmt: skip


def _near(a: datetime | None, b: datetime) -> bool:
    """`--now` keeps moving during a pass, so allow a few seconds."""
    return a is not None and abs((a - b).total_seconds()) < 5


def _source(url: str) -> Source:
    with session(upgrade(url)) as s:
        return s.exec(select(Source).where(Source.name == "partner")).one()


def _count(url: str) -> int:
    with session(upgrade(url)) as s:
        return len(s.exec(select(Episode).where(Episode.source == "partner")).all())


def test_feed_items_become_episodes_and_304_costs_nothing(
    tmp_path: Path, db_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(20, start=NOW - timedelta(days=40)))
    settings = _settings(tmp_path, db_url, srv.url("/feed.xml"))
    report = run_once(settings, now=NOW)
    assert report.sources[0].status == "ok" and report.sources[0].new == 20
    src = _source(db_url)
    assert src.etag and _near(src.next_due_at, NOW + timedelta(minutes=30))
    with session(upgrade(db_url)) as s:
        ep = s.exec(
            select(Episode).where(Episode.guid == "https://podcast.example.com/episodes/3")
        ).one()
    assert ep.enclosure_url and ep.duration_seconds and ep.guests
    run_once(settings, now=NOW + timedelta(minutes=10))  # not due: no request
    assert srv.count("/feed.xml") == 1
    report = run_once(settings, now=NOW + timedelta(minutes=31))
    assert report.sources[0].status == "not-modified"
    assert srv.requests("/feed.xml")[-1].headers.get("if-none-match") == src.etag
    assert _count(db_url) == 20


def test_permanent_redirect_updates_the_stored_url(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/new.xml", make_feed_xml(3))
    srv.add_redirect("/old.xml", srv.url("/new.xml"), status=301)
    settings = _settings(tmp_path, sqlite_url, srv.url("/old.xml"))
    run_once(settings, now=NOW)
    assert _source(sqlite_url).url == srv.url("/new.xml")
    run_once(settings, now=NOW + timedelta(hours=1))
    assert srv.count("/old.xml") == 1 and srv.count("/new.xml") == 2


def test_gone_disables_and_errors_back_off(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_status("/gone.xml", 410)
    run_once(_settings(tmp_path, sqlite_url, srv.url("/gone.xml")), now=NOW)
    src = _source(sqlite_url)
    assert src.disabled and "410" in (src.disabled_reason or "")


def test_errors_back_off_exponentially_and_keep_stored_episodes(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(5))
    settings = _settings(tmp_path, sqlite_url, srv.url("/feed.xml"))
    run_once(settings, now=NOW)
    srv.add_feed("/feed.xml", b"<rss><channel><item><title>broken", etag=False, last_modified=False)
    t = NOW + timedelta(minutes=31)
    gaps = []
    for _ in range(3):
        report = run_once(settings, now=t)
        assert report.exit_code == 1
        src = _source(sqlite_url)
        gaps.append(round((src.next_due_at - t).total_seconds() / 60))  # type: ignore[operator]
        t = src.next_due_at  # type: ignore[assignment]
    assert gaps == [30, 60, 120]  # minutes
    assert src.consecutive_errors == 3
    assert _count(sqlite_url) == 5  # nothing stored is lost
    with session(upgrade(sqlite_url)) as s:
        probs = s.exec(select(Problem).where(Problem.resolved_at.is_(None))).all()  # type: ignore[union-attr]
    assert len(probs) == 1 and probs[0].location == srv.url("/feed.xml")
    srv.add_feed("/feed.xml", make_feed_xml(6))
    assert run_once(settings, now=t).exit_code == 0
    assert _source(sqlite_url).consecutive_errors == 0 and _count(sqlite_url) == 6


def test_retry_after_is_honoured(tmp_path: Path, sqlite_url: str, srv: FeedServer) -> None:
    srv.add_status("/busy.xml", 503, retry_after=7200)
    run_once(_settings(tmp_path, sqlite_url, srv.url("/busy.xml")), now=NOW)
    assert _near(_source(sqlite_url).next_due_at, NOW + timedelta(hours=2))


def test_check_reads_everything_and_changes_nothing(
    tmp_path: Path, site: Path, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(3))
    srv.add_html("/page.html")
    bad = site / "_posts/podcast/2026-11-25-9-bad-yaml.md"
    bad.write_text('---\ntitle: "ok"\ntags: [unclosed\n---\nbody\n')
    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
[database]
url = "sqlite:///s.db"
[[sources]]
name = "episodes"
type = "jekyll"
verify_audio = false
path = "{site}"
[[sources]]
name = "partner"
type = "feed"
url = "{srv.url("/feed.xml")}"
[[sources]]
name = "broken"
type = "feed"
url = "{srv.url("/page.html")}"
""")
    r = subprocess.run([sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "check"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1
    assert re.search(r"2026-11-25-9-bad-yaml.md:[34]: ", r.stderr)  # file and line
    assert srv.url("/page.html") in r.stderr
    assert "partner: ok, 3 item(s)" in r.stdout
    assert not (tmp_path / "s.db").exists()  # no state written


def test_cron_sources_are_due_at_their_next_cron_time(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(2))
    settings = _settings(tmp_path, sqlite_url, srv.url("/feed.xml"), cron="0 * * * *")
    run_once(settings, now=NOW + timedelta(minutes=20))
    assert _near(_source(sqlite_url).next_due_at, NOW + timedelta(hours=1))


def test_check_reports_a_broken_template_with_its_line(tmp_path: Path, site: Path) -> None:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "twitter.j2").write_text("🎙 {{ title }}\n{% if url %}{{ url }}\n")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f"""
[database]
url = "sqlite:///s.db"
[announce]
templates = "tpl"
[[sources]]
name = "episodes"
type = "jekyll"
verify_audio = false
path = "{site}"
[[channels]]
name = "x"
type = "twitter"
dry_run = true
""")
    r = subprocess.run([sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "check"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1
    assert re.search(r"twitter\.j2:\d+: template: ", r.stderr), r.stderr


@pytest.mark.parametrize("value", ["1e400", "-5", "NaN", "Fri, 31 Dec 9999 23:59:59 GMT", "9" * 40])
def test_absurd_retry_after_breaks_nothing(
    tmp_path: Path, sqlite_url: str, srv: FeedServer, value: str
) -> None:
    srv.add_status("/busy.xml", 429, retry_after=value)
    report = run_once(_settings(tmp_path, sqlite_url, srv.url("/busy.xml")), now=NOW)
    assert report.sources[0].status == "error"
    due = _source(sqlite_url).next_due_at
    # at most a day (the clamp), at least the normal back-off of one `every`
    assert due is not None
    assert NOW + timedelta(minutes=29) <= due <= NOW + timedelta(days=1, seconds=5)
