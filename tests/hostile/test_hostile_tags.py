"""Tags without end: reading them is linear, and an episode keeps at most MAX_TAGS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syndicator.sources import bounds
from syndicator.sources.feeds.parse import parse_feed
from tests.feedserver import FeedServer
from tests.hostile.conftest import run_cli, site_config

N = 200_000


def _tag_post(n: int) -> str:
    tags = "\n".join(f"  - tag{i % (n // 2)}" for i in range(n))  # every tag twice
    head = '---\ntitle: "Many tags"\nmp3_bytes: "4718592"\ncategory: "podcast"\n'
    return f"{head}tags:\n{tags}\n---\nBody.\n"


def test_a_post_with_200000_tags_is_read_quickly_and_capped_with_a_problem(
    tmp_path: Path, site: Path
) -> None:
    (site / "_posts/podcast/2026-11-28-44-many-tags.md").write_text(_tag_post(N))
    (site / "_posts/podcast/2026-11-28-45-good.md").write_text(
        '---\ntitle: "Good"\nmp3_bytes: "4718592"\ncategory: "podcast"\ntags: [a, b, a]\n---\nx\n'
    )
    cfg = site_config(tmp_path, site, source="max_file_bytes = 20_000_000")
    started = time.monotonic()
    r = run_cli(cfg, "run-once", "-v", timeout=80)
    elapsed = time.monotonic() - started
    assert "storing failed" not in r.stderr, r.stderr
    assert elapsed < 40, f"took {elapsed:.1f}s"
    eps = {e["title"]: e for e in json.loads(run_cli(cfg, "episodes", "--json").stdout)}
    assert eps["Many tags"]["tags"] == [f"tag{i}" for i in range(bounds.MAX_TAGS)]
    assert eps["Good"]["tags"] == ["a", "b"]
    problems = json.loads(run_cli(cfg, "status", "--json").stdout)["problems"]
    (p,) = [p for p in problems if p["kind"] == "too-many-tags"]
    assert p["location"] == "_posts/podcast/2026-11-28-44-many-tags.md"
    assert "100,000 tags" in p["message"] and p["line"] == 5


def _feed(n: int) -> bytes:
    cats = "".join(f"<category>t{i % (n // 2)}</category>" for i in range(n))
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://t.example</link>"
        f"<item><title>Tagged</title><guid>urn:t:1</guid>{cats}</item>"
        "<item><title>Plain</title><guid>urn:t:2</guid><category>x</category></item>"
        "</channel></rss>"
    ).encode()


def test_a_feed_items_tags_are_capped_with_a_problem() -> None:
    # Kept small: feedparser's own de-duplication of an item's tags is quadratic.
    parsed = parse_feed(_feed(4_000), "https://t.example/feed.xml")
    eps = {e.title: e for e in parsed.episodes}
    assert eps["Tagged"].tags == [f"t{i}" for i in range(bounds.MAX_TAGS)]
    assert eps["Plain"].tags == ["x"]
    (p,) = [p for p in parsed.problems if p.kind == "too-many-tags"]
    assert "'Tagged' (urn:t:1) has 2,000" in p.message and p.severity == "warning"


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_a_feed_item_with_many_tags_is_stored_capped(tmp_path: Path, srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", _feed(2 * (bounds.MAX_TAGS + 50)))
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(f"""
[podcast]
title = "T"
[database]
url = "sqlite:///s.db"
[[sources]]
name = "partner"
type = "feed"
url = "{srv.url("/feed.xml")}"
""")
    run_cli(cfg, "run-once", "-v")
    eps = {e["title"]: e for e in json.loads(run_cli(cfg, "episodes", "--json").stdout)}
    assert len(eps["Tagged"]["tags"]) == bounds.MAX_TAGS
