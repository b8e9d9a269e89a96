"""Numbers out of range: each is a problem naming its file or item, and everything else
is stored, on SQLite and PostgreSQL, from a Jekyll site and from a remote feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from syndicator.sources.base import EpisodeData, FileResult, FileStamp, PollResult, ScanResult
from syndicator.store.db import session, upgrade
from syndicator.store.ingest import apply_poll, apply_scan, ensure_source
from syndicator.store.models import Episode, Problem
from tests.builders import feed_source, jekyll_source, write_config
from tests.feedserver import FeedServer
from tests.hostile.conftest import run_cli

GOOD_POST = """---
title: "A good new episode"
mp3_bytes: "4718592"
mp3_duration: "4:52"
category: "podcast"
---
Still stored, whatever the other posts hold.
"""

# file name -> front matter lines: every one is out of range in its own way
BAD_POSTS = {
    "2026-11-27-40-huge-bytes.md": 'mp3_bytes: 99999999999999999999\nmp3_duration: "4:52"',
    "2026-11-27-99999999999999999999999-huge-number.md": 'mp3_bytes: "4718592"',
    "2026-11-27-41-infinite-duration.md": 'mp3_bytes: "4718592"\nmp3_duration: .inf',
    "2026-11-27-42-endless-duration.md": 'mp3_bytes: "4718592"\nmp3_duration: "99999999999:00:00"',
    "2026-11-27-2147483648-past-int4.md": 'mp3_bytes: "4718592"',
    "2026-11-27-43-long-seconds.md": 'mp3_bytes: "4718592"\nmp3_duration: 9999999999999',
}


def _post(fm: str, title: str) -> str:
    return f'---\ntitle: "{title}"\n{fm}\ncategory: "podcast"\n---\nBody.\n'


def _open_problems(cfg: Path) -> list[dict]:  # type: ignore[type-arg]
    r = run_cli(cfg, "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["problems"]  # type: ignore[no-any-return]


def _titles(cfg: Path) -> set[str]:
    r = run_cli(cfg, "episodes", "--json")
    assert r.returncode == 0, r.stderr
    return {e["title"] for e in json.loads(r.stdout)}


def test_out_of_range_numbers_in_posts_are_problems_of_their_files(
    tmp_path: Path, site: Path, db_url: str
) -> None:
    posts = site / "_posts" / "podcast"
    for name, fm in BAD_POSTS.items():
        (posts / name).write_text(_post(fm, name))
    (posts / "2026-11-28-44-a-good-new-episode.md").write_text(GOOD_POST)
    cfg = write_config(tmp_path, jekyll_source(site), db_url=db_url)

    for _ in range(2):  # the second pass must not turn them into a store failure
        r = run_cli(cfg, "run-once", "-v")
        assert r.returncode == 1, r.stderr  # bad files need attention
        assert "storing failed" not in r.stderr + r.stdout
    titles = _titles(cfg)
    assert "A good new episode" in titles
    assert "Welcome to Shipping It" in titles  # the example site's posts
    assert not titles & set(BAD_POSTS)
    problems = _open_problems(cfg)
    by_file = {p["location"]: p for p in problems}
    for name in BAD_POSTS:
        p = by_file[f"_posts/podcast/{name}"]
        assert p["kind"] == "range" and p["severity"] == "error", p
        assert "out of range" in p["message"] or "not a finite" in p["message"]
    assert not [p for p in problems if p["kind"] == "store"]  # the site is not blamed
    assert "mp3_bytes" in by_file["_posts/podcast/2026-11-27-40-huge-bytes.md"]["message"]
    assert "real size in bytes" in by_file["_posts/podcast/2026-11-27-40-huge-bytes.md"]["message"]
    huge = by_file["_posts/podcast/2026-11-27-99999999999999999999999-huge-number.md"]
    assert "rename the file" in huge["message"]
    inf = by_file["_posts/podcast/2026-11-27-41-infinite-duration.md"]
    assert "mp3_duration" in inf["message"] and inf["line"] == 4


def _item(i: int, *, length: str = "4718592", number: str = "", duration: str = "0:40:00") -> str:
    episode = f"<itunes:episode>{number}</itunes:episode>" if number else ""
    return (
        f"<item><title>Item {i}</title><guid>urn:item:{i}</guid>"
        f"<pubDate>Mon, 0{i} Jun 2026 09:00:00 GMT</pubDate>"
        f'<enclosure url="https://cdn.example/{i}.mp3" length="{length}" type="audio/mpeg"/>'
        f"<itunes:duration>{duration}</itunes:duration>{episode}</item>"
    )


def _feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
        "<title>Partner</title><link>https://partner.example</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_out_of_range_numbers_in_a_feed_are_dropped_with_a_problem_naming_the_item(
    tmp_path: Path, db_url: str, srv: FeedServer
) -> None:
    srv.add_feed(
        "/feed.xml",
        _feed(
            _item(1, length="9" * 24),
            _item(2, number="2147483648"),  # past int4
            _item(3, number="99999999999999999999999"),  # past 64 bits
            _item(4, duration="inf"),
            _item(5, duration="99999999999:00:00"),
            _item(6, duration="1e400"),
            _item(7),
        ),
    )
    cfg = write_config(tmp_path, feed_source(srv.url("/feed.xml")), db_url=db_url)
    for _ in range(2):  # the second poll is a 304: the problem still holds
        r = run_cli(cfg, "run-once", "-v", "--force")
        assert "storing failed" not in r.stderr + r.stdout, r.stderr
    assert [r.status for r in srv.requests("/feed.xml")] == [200, 304]
    (problem,) = [p for p in _open_problems(cfg) if p["kind"] == "range"]
    assert problem["location"] == srv.url("/feed.xml") and problem["severity"] == "warning"
    assert "6 number(s)" in problem["message"]
    assert "'Item 1' (urn:item:1): enclosure length" in problem["message"]
    eps = {e["title"]: e for e in json.loads(run_cli(cfg, "episodes", "--json").stdout)}
    assert set(eps) == {f"Item {i}" for i in range(1, 8)}  # every item kept
    assert eps["Item 1"]["enclosure"]["length"] is None
    assert eps["Item 2"]["number"] is None and eps["Item 3"]["number"] is None
    assert all(eps[f"Item {i}"]["duration_seconds"] is None for i in (4, 5, 6))
    assert eps["Item 7"]["duration_seconds"] == 2400
    assert eps["Item 7"]["enclosure"]["length"] == 4718592


NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _data(n: int, number: int | None, path: str | None = None) -> EpisodeData:
    return EpisodeData(
        title=f"Episode {n}",
        date=NOW - timedelta(days=n),
        guid=f"urn:ep:{n}",
        key=f"urn:ep:{n}",
        number=number,
        path=path,
    )


def _too_big(db_url: str) -> int:
    # What each database refuses in `episodes.number`: int4 on PostgreSQL, int8 on SQLite.
    return 2**31 if db_url.startswith("postgres") else 2**70


def test_a_row_the_database_refuses_is_that_files_problem_and_the_rest_is_stored(
    db_url: str,
) -> None:
    """The store's own guard, for a value that got past the sources' bounds."""
    engine = upgrade(db_url)
    files = [
        FileResult(
            f"_posts/2026-01-0{n}-{n}-x.md",
            FileStamp(n, n, f"h{n}"),
            "parsed",
            _data(n, _too_big(db_url) if n == 2 else n, f"_posts/2026-01-0{n}-{n}-x.md"),
        )
        for n in (1, 2, 3)
    ]
    with session(engine, write=True) as s:
        src = ensure_source(s, "site", "jekyll")
        stats = apply_scan(s, src, ScanResult(files=files), {}, NOW, timedelta(days=7))
    assert stats.bad == 1 and len(stats.new) == 2
    with session(engine) as s:
        titles = {e.title for e in s.exec(select(Episode)).all()}
        (problem,) = s.exec(select(Problem)).all()
    assert titles == {"Episode 1", "Episode 3"}
    assert problem.location == "_posts/2026-01-02-2-x.md" and problem.kind == "store"
    assert "refused this post" in problem.message and len(problem.message) < 800


def test_an_item_the_database_refuses_is_named_and_the_other_items_are_stored(
    db_url: str,
) -> None:
    engine = upgrade(db_url)
    url = "https://partner.example/feed.xml"
    result = PollResult(
        url=url,
        status="ok",
        episodes=[_data(n, _too_big(db_url) if n == 2 else n) for n in (1, 2, 3)],
    )
    with session(engine, write=True) as s:
        src = ensure_source(s, "partner", "feed", url)
        stats = apply_poll(
            s, src, result, NOW, timedelta(days=7), timedelta(hours=1), timedelta(days=1)
        )
    assert len(stats.new) == 2
    with session(engine) as s:
        titles = {e.title for e in s.exec(select(Episode)).all()}
        (problem,) = s.exec(select(Problem).where(Problem.resolved_at.is_(None))).all()  # type: ignore[union-attr]
    assert titles == {"Episode 1", "Episode 3"}
    assert problem.location == url and problem.kind == "store"
    assert "'Episode 2' (urn:ep:2)" in problem.message

    # The next poll refuses it again: the same problem stays open (no new incident).
    with session(engine, write=True) as s:
        src = ensure_source(s, "partner", "feed", url)
        later = NOW + timedelta(hours=1)
        apply_poll(s, src, result, later, timedelta(days=7), timedelta(hours=1), timedelta(days=1))
    with session(engine) as s:
        rows = s.exec(select(Problem)).all()
    assert len(rows) == 1 and rows[0].resolved_at is None and rows[0].id == problem.id
