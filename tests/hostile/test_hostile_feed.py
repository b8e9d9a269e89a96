"""Hostile input to the directory feed: stale temporary files, over-long descriptions and
URLs that are not http(s), through a real store, real files and real parsers."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from syndicator.config import Settings, from_dict
from syndicator.directory.check import check_feed
from syndicator.directory.publish import FeedOutcome, publish_feeds
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode

SITE = "https://show.example.org"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CONTENT = "http://purl.org/rss/1.0/modules/content/"


def _settings(tmp: Path, **feed: Any) -> Settings:
    data = {
        "podcast": {
            "title": "Hostile Show",
            "description": "A show under attack.",
            "link": SITE,
            "feed_url": f"{SITE}/podcast/feed.xml",
            "image": f"{SITE}/cover.jpg",
            "author": "Nadia Host",
            "owner_email": "nadia@show.example.org",
            "categories": ["Technology"],
        },
        "database": {"url": "sqlite:///" + str(tmp / "s.db")},
        "sources": [{"name": "friends", "type": "feed", "url": "https://friends.example/f.xml"}],
        "feeds": [{"name": "main", "path": "public/podcast/feed.xml", **feed}],
    }
    return from_dict(data, tmp)


def _episode(n: int, **kw: Any) -> Episode:
    base: dict[str, Any] = {
        "source": "friends",
        "guid": f"{SITE}/{n}",
        "number": n,
        "title": f"Episode {n}",
        "date": datetime(2024, 1, n, tzinfo=UTC),
        "url": f"{SITE}/{n}",
        "enclosure_url": f"{SITE}/audio/{n}.mp3",
        "enclosure_length": 1000 + n,
        "enclosure_type": "audio/mpeg",
        "description": f"Episode {n} in a sentence.",
        "show_notes_html": f"<p>Notes of episode {n}.</p>",
        "first_seen_at": NOW,
        "last_changed_at": NOW,
    }
    base.update(kw)
    return Episode(**base)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    engine = upgrade("sqlite:///" + str(tmp_path / "s.db"))
    with session(engine, write=True) as s:
        s.add(_episode(1))
        s.add(_episode(2, chapters=[{"start": 0, "title": "Intro"}, {"start": 60, "title": "B"}]))
    return engine


def _publish(engine: Any, settings: Settings, **kw: Any) -> FeedOutcome:
    [outcome] = publish_feeds(engine, settings, NOW, **kw)
    return outcome


def _tmp_file(path: Path, size: int, age_seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)  # as big as a killed build leaves, without writing it all
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


# --------------------------------------------------------------------------- stale tmp files


def test_stale_temp_files_of_a_killed_build_are_removed(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path, json_feed="public/podcast/feed.json")
    folder = tmp_path / "public" / "podcast"
    mb = 1024 * 1024
    stale = [
        _tmp_file(folder / ".feed.xml.4242.0.tmp", 14 * mb, 3600),
        _tmp_file(folder / ".feed.xml.4243.7.tmp", 12 * mb, 20 * 60),
        _tmp_file(folder / ".feed.json.4242.1.tmp", mb, 3600),
        _tmp_file(folder / "chapters" / ".9-abc.json.4242.3.tmp", 100, 3600),
    ]
    # another build still writing (fresh), and files that are not this feed's temp files
    live = _tmp_file(folder / ".feed.xml.4244.0.tmp", 13 * mb, 30)
    others = [
        _tmp_file(folder / ".other.xml.4242.0.tmp", 100, 3600),
        _tmp_file(folder / ".feed.xml.tmp", 100, 3600),
        _tmp_file(folder / "notes.tmp", 100, 3600),
    ]
    out = _publish(store, settings)
    assert out.error is None and out.changed
    for p in stale:
        assert not p.exists(), p
    assert live.exists() and all(p.exists() for p in others)
    # a check-only build writes nothing, so it removes nothing either
    again = _tmp_file(folder / ".feed.xml.4245.0.tmp", mb, 3600)
    _publish(store, settings, check_only=True)
    assert again.exists()


# --------------------------------------------------------------------------- huge descriptions


def test_a_100_kb_description_is_cut_to_apples_limit_and_reported(
    tmp_path: Path, store: Any
) -> None:
    word = "Lörem ipsüm dolor sit amet, "
    with session(store, write=True) as s:
        s.add(_episode(3, description=word * 3700))  # ~100 KB, one line
        s.add(_episode(4, description="", show_notes_html="<p>" + word * 3700 + "</p>"))
    out = _publish(store, _settings(tmp_path))
    assert out.error is None and out.episode_count == 4
    raw = (tmp_path / "public" / "podcast" / "feed.xml").read_bytes()
    items = {i.findtext("guid"): i for i in etree.fromstring(raw).iter("item")}
    for n in (3, 4):
        text = items[f"{SITE}/{n}"].findtext("description")
        assert 3_900 < len(text.encode()) <= 4_000 and text.endswith("…")
        assert (word * 3700).startswith(text[:-1])
    assert len(items[f"{SITE}/4"].findtext(f"{{{CONTENT}}}encoded").encode()) > 100_000
    # the long front matter description is a problem to fix; notes without one are not
    [problem] = out.problems
    assert f"'{SITE}/3'" in problem and "'Episode 3'" in problem
    size = len((word * 3700).strip().encode())
    assert f"{size:,} bytes" in problem and "4,000" in problem and "Shorten" in problem
    assert check_feed(raw) == []
