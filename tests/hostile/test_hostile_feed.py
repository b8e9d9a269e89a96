"""Hostile input to the directory feed: stale temporary files, over-long descriptions and
URLs that are not http(s), through a real store, real files and real parsers."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlmodel import select

from syndicator.config import Settings, from_dict
from syndicator.directory.check import check_feed
from syndicator.directory.publish import FeedOutcome, publish_feeds
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, Problem
from tests.feedserver import FeedServer
from tests.hostile.conftest import run_cli

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
    # `feed build --check` says the same
    checked = _publish(store, _settings(tmp_path), check_only=True)
    assert checked.problems == [problem]


# --------------------------------------------------------------------------- unsafe URLs

FEEDS = Path(__file__).resolve().parent.parent / "feeds"
UNSAFE = (b"javascript:", b"data:", b"file:")


def _urls(xml: bytes) -> list[str]:
    """Every URL-carrying attribute and <link> text in a feed."""
    out = []
    for el in etree.fromstring(xml).iter():
        if not isinstance(el.tag, str):
            continue
        out += [v for k, v in el.items() if k in ("url", "href", "img", "image", "uri")]
        if el.tag.rpartition("}")[2] == "link" and el.text:
            out.append(el.text)
    return out


def _config(tmp: Path, feed_url: str, **podcast: str) -> Path:
    extra = "".join(f'{k} = "{v}"\n' for k, v in podcast.items())
    cfg = tmp / "s.toml"
    cfg.write_text(
        f"""
[podcast]
title = "Hostile Show"
description = "A show under attack."
link = "{SITE}"
feed_url = "{SITE}/podcast/feed.xml"
image = "{SITE}/cover.jpg"
author = "Nadia Host"
owner_email = "nadia@show.example.org"
categories = ["Technology"]
{extra}
[database]
url = "sqlite:///s.db"

[[sources]]
name = "hostile"
type = "feed"
url = "{feed_url}"

[[feeds]]
name = "main"
path = "public/podcast/feed.xml"
""",
        encoding="utf-8",
    )
    return cfg


def test_unsafe_urls_from_a_remote_feed_never_reach_the_published_feed(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.add_feed("/hostile.xml", (FEEDS / "hostile_urls.xml").read_bytes())
        cfg = _config(tmp_path, srv.url("/hostile.xml"))
        r = run_cli(cfg, "run-once")
    assert r.returncode in (0, 1), r.stderr
    raw = (tmp_path / "public" / "podcast" / "feed.xml").read_bytes()
    for scheme in UNSAFE:
        assert scheme not in raw.lower(), scheme
    urls = _urls(raw)
    assert urls and all(u.startswith(("http://", "https://")) for u in urls), urls
    # an item whose only audio is unsafe is not in the feed; one with a safe media:content is
    items = {i.findtext("guid"): i for i in etree.fromstring(raw).iter("item")}
    assert set(items) == {"hostile-1", "hostile-4"}
    enc = items["hostile-1"].find("enclosure")
    assert enc is not None and enc.get("url") == "https://cdn.hostile.example/1.mp3"
    assert items["hostile-1"].find("link") is None
    assert "Mallory" in etree.tostring(items["hostile-1"]).decode()
    # one problem for the feed (the store keeps one per URL and kind), naming every item
    # and every URL each lost
    with session(upgrade(f"sqlite:///{tmp_path / 's.db'}")) as s:
        rows = s.exec(select(Problem).where(Problem.kind == "unsafe-url")).all()
    [problem] = rows
    listed = problem.message.split(" left out: ", 1)[1].split("; Only http(s)", 1)[0]
    items = re.split(r";\s+(?=item ')", listed)
    assert items[0] == (
        "item 'Scripted everything' ('hostile-1'): enclosure 'JavaScript:alert(1)//.mp3', "
        "link 'javascript:alert(document.cookie)', guest 'Mallory' website "
        "'javascript:alert(2)', guest 'Mallory' img 'data:image/svg+xml,<svg onload=alert(3)>', "
        "transcript 'file:///etc/passwd', image 'data:image/png;base64,iVBORw0KGgo='"
    )
    assert items[1].startswith("item 'Only a data enclosure' ('hostile-2'): enclosure 'data:")
    assert items[1].endswith("', media:content 'javascript:alert(7)'")
    assert items[2] == (
        "item 'A file enclosure, tab-split scheme' ('hostile-3'): enclosure "
        "'file:///var/lib/secret.mp3', link 'jav\\tascript:alert(5)', image 'javascript:alert(6)'"
    )
    assert problem.message.startswith("3 item(s) carry URLs that are not http(s)")
    assert "ask the feed's publisher" in problem.message
    assert problem.severity == "warning" and problem.resolved_at is None


def test_the_builder_leaves_out_unsafe_urls_already_stored(tmp_path: Path, store: Any) -> None:
    # rows stored before the source dropped them (or by any other way in): the feed
    # builder is the second line of defence
    with session(store, write=True) as s:
        s.add(_episode(3, enclosure_url="javascript:alert(1)//x.mp3"))
        s.add(
            _episode(
                4,
                url="data:text/html,<script>alert(2)</script>",
                image="file:///etc/passwd",
                transcript_url="JAVASCRIPT:alert(3)",
                guests=[{"name": "Eve", "website": "javascript:x()", "avatar": "data:x"}],
            )
        )
    out = _publish(store, _settings(tmp_path, json_feed="public/podcast/feed.json"))
    assert out.error is None and out.changed and out.episode_count == 3
    raw = (tmp_path / "public" / "podcast" / "feed.xml").read_bytes()
    json_feed = (tmp_path / "public" / "podcast" / "feed.json").read_bytes()
    for scheme in UNSAFE:
        assert scheme not in raw.lower(), scheme
        assert scheme not in json_feed.lower(), scheme
    assert f'"id": "{SITE}/4"'.encode() in json_feed
    guids = [i.findtext("guid") for i in etree.fromstring(raw).iter("item")]
    assert f"{SITE}/3" not in guids and f"{SITE}/4" in guids
    text = "\n".join(out.problems)
    assert f"episode '{SITE}/3' ('Episode 3') left out" in text
    assert "audio URL 'javascript:alert(1)//x.mp3' is a javascript: URL" in text
    for what in (
        "link 'data:text/html,<script>alert(2)</script>' is a data: URL",
        "image 'file:///etc/passwd' is a file: URL",
        "transcript URL 'JAVASCRIPT:alert(3)' is a javascript: URL",
        "guest 'Eve' website 'javascript:x()' is a javascript: URL",
        "guest 'Eve' avatar 'data:x' is a data: URL",
    ):
        assert f"episode '{SITE}/4' ('Episode 4') in feed 'main': its {what}" in text, what


def test_a_feed_carrying_an_unsafe_url_is_not_written(tmp_path: Path, store: Any) -> None:
    # the config is the one way left for such a URL to reach the built tree
    good = _settings(tmp_path)
    assert _publish(store, good).changed
    feed = tmp_path / "public" / "podcast" / "feed.xml"
    before = feed.read_bytes()
    cfg = _config(
        tmp_path,
        "https://friends.example/f.xml",
        funding_url="javascript:alert(1)",
    )
    with cfg.open("a", encoding="utf-8") as f:
        f.write('hubs = ["data:text/plain,hub"]\nchapters_url = "file:///tmp/chapters/"\n')
    r = run_cli(cfg, "feed", "build", "--check")
    assert r.returncode == 1
    err = " ".join(r.stderr.split())
    for what in (
        "channel: unsafe URL: <funding> url 'javascript:alert(1)' is a javascript: URL",
        "channel: unsafe URL: <link> href 'data:text/plain,hub' is a data: URL",
        "unsafe URL: <chapters> url 'file:///tmp/chapters/",
        "it carries 3 URL(s) that are not http(s), and is not written",
    ):
        assert what in err, (what, r.stderr)
    r = run_cli(cfg, "feed", "build")
    assert r.returncode == 1 and "is not written" in r.stderr
    assert feed.read_bytes() == before  # the last good feed stays
    assert not [p for p in feed.parent.iterdir() if p.name.endswith(".tmp")]


def test_check_feed_reports_every_unsafe_url() -> None:
    xml = (FEEDS / "hostile_urls.xml").read_bytes()
    problems = [p for p in check_feed(xml) if "unsafe URL" in p]
    assert problems[0] == (
        "channel: unsafe URL: <link> 'javascript:alert(document.cookie)' is a javascript: URL, "
        "not http(s); apps would open it. The feed is not written until it is gone (fix the "
        "source it came from, or the config)"
    )
    where = [p.split(" is a ", 1)[0] for p in problems]
    assert where == [
        "channel: unsafe URL: <link> 'javascript:alert(document.cookie)'",
        "channel: unsafe URL: <url> 'javascript:alert(1)'",
        "channel: unsafe URL: <link> 'javascript:alert(1)'",
        "item 1 ('Scripted everything'): unsafe URL: <link> 'javascript:alert(document.cookie)'",
        "item 1 ('Scripted everything'): unsafe URL: <enclosure> url 'JavaScript:alert(1)//.mp3'",
        "item 1 ('Scripted everything'): unsafe URL: <image> href "
        "'data:image/png;base64,iVBORw0KGgo='",
        "item 1 ('Scripted everything'): unsafe URL: <transcript> url 'file:///etc/passwd'",
        "item 1 ('Scripted everything'): unsafe URL: <chapters> url 'javascript:alert(8)'",
        "item 1 ('Scripted everything'): unsafe URL: <chapter> href 'javascript:alert(9)'",
        "item 1 ('Scripted everything'): unsafe URL: <chapter> image 'data:image/png;base64,AAAA'",
        "item 1 ('Scripted everything'): unsafe URL: <person> href 'javascript:alert(2)'",
        "item 1 ('Scripted everything'): unsafe URL: <person> img "
        "'data:image/svg+xml,<svg onload=alert(3)>'",
        "item 2 ('Only a data enclosure'): unsafe URL: <enclosure> url "
        "'data:audio/mpeg;base64,SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjU4Ljc2LjEwMAAAAAAAAAAAA...'",
        "item 2 ('Only a data enclosure'): unsafe URL: <content> url 'javascript:alert(7)'",
        "item 3 ('A file enclosure, tab-split scheme'): unsafe URL: <link> "
        "'jav\\tascript:alert(5)'",
        "item 3 ('A file enclosure, tab-split scheme'): unsafe URL: <enclosure> url "
        "'file:///var/lib/secret.mp3'",
        "item 3 ('A file enclosure, tab-split scheme'): unsafe URL: <image> href "
        "'javascript:alert(6)'",
    ]
