"""Nothing announced that nobody asked for: late channels, renames, feeds that fill
later, one guid from two sources, a deleted post restored, and a pass run at a far
`--now`.

Real passes, a real store and a real Apprise channel posting to a webhook receiver on
127.0.0.1; remote feeds come from tests/feedserver.py.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from syndicator.pipeline import run_once
from syndicator.store.db import dispose_all, session, upgrade
from syndicator.store.models import Delivery, Episode, Problem, Source
from syndicator.timeutil import utcnow
from tests.conftest import make_settings
from tests.fakes.webhook import FakeWebhook
from tests.feedserver import FeedServer, make_feed_xml
from tests.hostile.conftest import popen_cli, run_cli
from tests.test_pipeline import BILLING, POSTS, _episodes, _history
from tests.test_pipeline import _settings as _post_settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def hook() -> Iterator[FakeWebhook]:
    with FakeWebhook() as h:
        yield h


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def _channel(hook: FakeWebhook, name: str, path: str | None = None, **kw: Any) -> dict[str, Any]:
    url = f"json://127.0.0.1:{hook.port}/{path or name}"
    return {"name": name, "type": "apprise", "url": url, "timeout": "2s", **kw}


def _jekyll(site: Path) -> dict[str, Any]:
    tpl = "{site.url}/podcast/{slug}"
    return {
        "name": "episodes",
        "type": "jekyll",
        "verify_audio": False,  # the example site's mp3 host does not exist
        "path": str(site),
        "episode_url": tpl,
        "guid": tpl,
    }


def _settings(tmp_path: Path, url: str, sources: list[Any], channels: list[Any], **kw: Any):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, url, sources=sources, channels=channels,
                         announce={"window": "14d", "retry_base": "1s"}, **kw)  # fmt: skip


def _rows(url: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        return list(s.exec(select(Delivery).where(Delivery.kind == "announce")).all())


def test_a_channel_added_later_posts_no_back_catalogue(
    tmp_path: Path, db_url: str, site: Path, hook: FakeWebhook
) -> None:
    run_once(_settings(tmp_path, db_url, [_jekyll(site)], [_channel(hook, "first")]), now=NOW)
    assert len(hook.posts("/first")) == 2  # the two recent episodes, at first sight

    later = NOW + timedelta(days=60)  # those two are now old: no longer "new"
    both = [_channel(hook, "first"), _channel(hook, "late")]
    run_once(_settings(tmp_path, db_url, [_jekyll(site)], both), now=later)
    assert hook.posts("/late") == []
    late = [d for d in _rows(db_url) if d.channel == "late"]
    assert late and all(d.state == "skipped" for d in late)
    assert any("channel added" in (d.skip_reason or "") for d in late)

    # an episode that appears after the channel joined is announced by it
    (site / "_posts/podcast/2027-01-25-8-a-new-one.md").write_text(
        '---\ntitle: "A New One"\ndate: 2027-01-25 09:00:00\ncategory: "podcast"\n---\nNew.\n'
    )
    run_once(_settings(tmp_path, db_url, [_jekyll(site)], both), now=later + timedelta(hours=1))
    late_posts = hook.posts("/late")
    assert len(late_posts) == 1 and "A New One" in str(late_posts[0].json())
    assert len(hook.posts("/first")) == 3


def test_a_channel_removed_then_added_back_posts_nothing_from_meanwhile(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    run_once(_settings(tmp_path, sqlite_url, [_jekyll(site)], [_channel(hook, "hook")]), now=NOW)
    assert len(hook.posts("/hook")) == 2
    run_once(_settings(tmp_path, sqlite_url, [_jekyll(site)], []), now=NOW + timedelta(hours=1))
    (site / "_posts/podcast/2026-11-27-8-while-it-was-gone.md").write_text(
        '---\ntitle: "While It Was Gone"\ncategory: "podcast"\n---\nNotes.\n'
    )
    run_once(_settings(tmp_path, sqlite_url, [_jekyll(site)], []), now=NOW + timedelta(hours=2))
    back = _settings(tmp_path, sqlite_url, [_jekyll(site)], [_channel(hook, "hook")])
    run_once(back, now=NOW + timedelta(days=60))
    assert len(hook.posts("/hook")) == 2  # episode 8 appeared while the channel was gone
    rows = {d.episode_id: d for d in _rows(sqlite_url)}
    assert len(rows) == 6 and sum(d.state == "sent" for d in rows.values()) == 2


@pytest.mark.parametrize("explicit", [True, False], ids=["renamed_from", "same-account"])
def test_a_renamed_channel_keeps_its_rows_and_posts_nothing_again(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook, explicit: bool
) -> None:
    run_once(_settings(tmp_path, sqlite_url, [_jekyll(site)], [_channel(hook, "old")]), now=NOW)
    assert len(hook.posts("/old")) == 2
    extra = {"renamed_from": "old"} if explicit else {}
    renamed = [_channel(hook, "new", path="old", **extra)]  # same URL: the same account
    run_once(
        _settings(tmp_path, sqlite_url, [_jekyll(site)], renamed), now=NOW + timedelta(hours=1)
    )
    assert len(hook.posts("/old")) == 2  # nothing posted twice
    rows = _rows(sqlite_url)
    assert {d.channel for d in rows} == {"new"}
    assert all(d.key.endswith(":new") for d in rows)
    assert sum(d.state == "sent" for d in rows) == 2
    with session(upgrade(sqlite_url)) as s:
        notes = s.exec(select(Problem).where(Problem.kind == "renamed")).all()
    assert len(notes) == 1 and notes[0].severity == "notice" and "'old'" in notes[0].message


def test_a_feed_empty_at_first_then_full_of_old_items_announces_none(
    tmp_path: Path, db_url: str, hook: FakeWebhook, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(0))
    src = [{"name": "partner", "type": "feed", "url": srv.url("/feed.xml"), "every": "1m"}]
    settings = _settings(tmp_path, db_url, src, [_channel(hook, "hook")])
    run_once(settings, now=NOW)
    with session(upgrade(db_url)) as s:
        assert s.exec(select(Source)).one().first_pass_at is None  # empty is not first sight
    srv.add_feed("/feed.xml", make_feed_xml(30, start=datetime(2023, 1, 2, tzinfo=UTC)))
    report = run_once(settings, now=NOW + timedelta(hours=1), force_poll=True)
    assert report.sources[0].new == 30
    assert hook.posts("/hook") == []
    rows = _rows(db_url)
    assert len(rows) == 30 and all((d.skip_reason or "").startswith("backlog") for d in rows)


def test_one_guid_from_two_sources_is_stored_announced_and_published_once(
    tmp_path: Path, db_url: str, hook: FakeWebhook, srv: FeedServer
) -> None:
    body = make_feed_xml(3, start=NOW - timedelta(days=13))  # weekly: -13d, -6d, +1d
    srv.add_feed("/a.xml", body)
    srv.add_feed("/mirror.xml", body)
    quiet = {"verify_audio": False}  # the test feed's mp3 host does not exist
    src = [{"name": "show", "type": "feed", "url": srv.url("/a.xml"), **quiet},
           {"name": "mirror", "type": "feed", "url": srv.url("/mirror.xml"), **quiet}]  # fmt: skip
    out = tmp_path / "feed.xml"
    settings = _settings(tmp_path, db_url, src, [_channel(hook, "hook")],
                         feeds=[{"name": "main", "path": str(out)}])  # fmt: skip
    run_once(settings, now=NOW)
    run_once(settings, now=NOW + timedelta(hours=1), force_poll=True)  # and again: still once
    with session(upgrade(db_url)) as s:
        eps = s.exec(select(Episode)).all()
        dup = s.exec(select(Problem).where(Problem.kind == "duplicate-guid")).all()
    assert len(eps) == 3 and {e.source for e in eps} == {"show"}
    assert len(hook.posts("/hook")) == 2  # the third is dated tomorrow
    assert len(_rows(db_url)) == 3
    assert len(dup) == 1 and dup[0].source == "mirror" and dup[0].resolved_at is None
    assert "'show'" in dup[0].message and "/episodes/" in dup[0].message
    xml = out.read_text()
    enclosures = re.findall(r'<enclosure url="([^"]+)"', xml)
    assert len(enclosures) == 2 and len(set(enclosures)) == 2  # the third is not out yet


def _config(tmp_path: Path, site: Path, hook: FakeWebhook) -> Path:
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "Shipping It"
timezone = "UTC"
[database]
url = "sqlite:///{tmp_path / "s.db"}"
[announce]
window = "400d"
catch_up = "send"  # the back catalogue goes out at once (not held for a person)
[[sources]]
name = "episodes"
type = "jekyll"
verify_audio = false
path = "{site}"
episode_url = "{{site.url}}/podcast/{{slug}}"
guid = "{{site.url}}/podcast/{{slug}}"
[[channels]]
name = "hook"
type = "apprise"
url = "json://127.0.0.1:{hook.port}/hook"
timeout = "2s"
""")
    return cfg


def test_a_pass_at_a_far_now_strands_nothing(tmp_path: Path, site: Path, hook: FakeWebhook) -> None:
    cfg = _config(tmp_path, site, hook)
    # A webhook that hangs, so the pass is killed while it would be sending.
    hook.hang_next(10, seconds=5.0)
    proc = popen_cli(cfg, "run-once", "--now", "2027-06-01T00:00:00Z")
    time.sleep(4)
    proc.kill()
    proc.wait(timeout=10)
    r = run_cli(cfg, "run-once", "--now", "2027-06-01T00:00:00Z")
    assert "previewing only" in r.stderr, r.stderr

    url = f"sqlite:///{tmp_path / 's.db'}"
    far = datetime(2027, 1, 1, tzinfo=UTC)
    with session(upgrade(url)) as s:
        assert s.exec(select(Delivery)).all() == []  # no lease, no due time in 2027
        for src in s.exec(select(Source)).all():
            assert src.next_due_at is None or src.next_due_at < far
    dispose_all()

    hook.clear_faults()
    r = run_cli(cfg, "run-once", "--verbose")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(hook.posts("/hook")) >= 1  # the real clock's pass announces
    with session(upgrade(url)) as s:
        rows = s.exec(select(Delivery)).all()
    assert rows and all(d.lease_until is None for d in rows)
    assert all(d.due_at is None or d.due_at < utcnow() + timedelta(days=1) for d in rows)


def test_a_post_whose_guid_a_feed_already_holds_is_one_problem_per_file(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook, srv: FeedServer
) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(3, base_url="https://shipping-it.example"))
    feed = {"name": "feed", "type": "feed", "url": srv.url("/feed.xml")}
    run_once(_settings(tmp_path, sqlite_url, [feed], []), now=NOW)
    posts = {**_jekyll(site), "guid": "{site.url}/episodes/{number}"}  # 1-3 collide
    settings = _settings(tmp_path, sqlite_url, [feed, posts], [])
    run_once(settings, now=NOW + timedelta(hours=1))
    run_once(settings, now=NOW + timedelta(hours=2))  # unchanged files: still reported
    with session(upgrade(sqlite_url)) as s:
        mine = s.exec(select(Episode).where(Episode.source == "episodes")).all()
        dup = s.exec(select(Problem).where(Problem.kind == "duplicate-guid")).all()
    assert sorted(e.number for e in mine) == [4, 6, 7]  # type: ignore[type-var]
    assert len(dup) == 3 and all(p.resolved_at is None and p.source == "episodes" for p in dup)
    assert all("'feed'" in p.message and p.severity == "warning" for p in dup)
    assert {p.location.split("-", 3)[-1][:2] for p in dup} == {"1-", "2-", "3-"}


def test_a_deleted_post_restored_byte_for_byte_is_live_again(
    tmp_path: Path, db_url: str, site: Path
) -> None:
    settings = _post_settings(tmp_path, db_url, site)
    run_once(settings, now=NOW)
    post = site / POSTS / BILLING
    keep = tmp_path / "keep.md"
    os.rename(post, keep)  # same inode, same bytes, same mtime
    run_once(settings, now=NOW)
    assert _episodes(db_url)[6].withdrawn
    os.rename(keep, post)
    report = run_once(settings, now=NOW)
    ep = _episodes(db_url)[6]
    assert not ep.withdrawn and ep.withdrawn_reason is None
    assert report.sources[0].changed == 1
    assert [h["event"] for h in _history(db_url, ep.id)] == ["restored"]  # type: ignore[arg-type]


def test_a_deleted_post_restored_before_its_date_is_announced_after_all(
    tmp_path: Path, sqlite_url: str, site: Path, hook: FakeWebhook
) -> None:
    post = site / "_posts/podcast/2026-11-29-8-coming-on-sunday.md"
    post.write_text('---\ntitle: "Coming on Sunday"\ncategory: "podcast"\n---\nSoon.\n')
    settings = _settings(tmp_path, sqlite_url, [_jekyll(site)], [_channel(hook, "hook")])
    run_once(settings, now=NOW)  # planned for its date, two days ahead
    keep = tmp_path / "keep.md"
    post.rename(keep)
    run_once(settings, now=NOW + timedelta(hours=1))
    (row,) = [d for d in _rows(sqlite_url) if "Sunday" in d.text]
    assert row.state == "skipped"
    keep.rename(post)  # the same file back, same bytes and mtime
    run_once(settings, now=NOW + timedelta(hours=2))
    run_once(settings, now=datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    (row,) = [d for d in _rows(sqlite_url) if "Sunday" in d.text]
    assert row.state == "sent"
    assert sum("Sunday" in str(p.json()) for p in hook.posts("/hook")) == 1
