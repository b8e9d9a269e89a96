"""Issue 15, the aggregator's network side: remote podcast:chapters files (fetched once,
cached, bounded), remote persons kept, and a network feed of several shows (each item's
show, podcast:podroll, the OPML of the shows), read back by feedparser, podcast-partytime
and listparser."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import listparser
import pytest
from lxml import etree
from sqlmodel import select

from syndicator import config
from syndicator.directory import rss
from syndicator.pipeline import run_once
from syndicator.sources import remote_chapters
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, Problem, RemoteChapters, Show
from syndicator.store.views import episode_dict
from tests.conftest import make_settings
from tests.feedserver import FeedServer, Route
from tests.test_directory import _partytime

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PODCAST = "https://podcastindex.org/namespace/1.0"
GUID_A = "917393e3-1b1e-5cef-ace4-edaa54e1f810"

GOOD_CHAPTERS = {
    "version": "1.2.0",
    "chapters": [
        {"startTime": 95.5, "title": "Second <b>topic</b>"},
        {"startTime": 0, "title": "Intro", "img": "https://a.example/i.jpg"},
        {"startTime": 30, "img": "https://a.example/only-an-image.jpg"},
        {"startTime": 200.25, "title": "Wrap-up", "toc": False},
    ],
}


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def _item(n: int, base: str, extra: str = "", day: int = 0) -> str:
    date = (NOW - timedelta(days=3 + n + day)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"<item><title>Episode {n}</title><guid>{base}/e/{n}</guid>"
        f"<link>{base}/e/{n}</link><pubDate>{date}</pubDate>"
        f'<enclosure url="{base}/e/{n}.mp3" length="1000" type="audio/mpeg"/>{extra}</item>'
    )


def _feed(title: str, base: str, items: list[str], *, guid: str | None = None) -> bytes:
    channel_guid = f"<podcast:guid>{guid}</podcast:guid>" if guid else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        f'xmlns:podcast="{PODCAST}" xmlns:psc="http://podlove.org/simple-chapters">'
        f"<channel><title>{html.escape(title)}</title><link>{base}/</link>"
        f"<description>{html.escape(title)}, a show.</description>"
        f"<itunes:author>{html.escape(title)} People</itunes:author>"
        f'<itunes:image href="{base}/art.jpg"/>{channel_guid}' + "".join(items) + "</channel></rss>"
    ).encode()


def _chapters_tag(url: str) -> str:
    return f'<podcast:chapters url="{html.escape(url)}" type="application/json+chapters"/>'


def _episodes(url: str) -> dict[str, Episode]:
    with session(upgrade(url)) as s:
        return {e.title: e for e in s.exec(select(Episode)).all()}


def _problems(url: str, kind: str) -> list[Problem]:
    with session(upgrade(url)) as s:
        q = select(Problem).where(Problem.kind == kind, Problem.resolved_at == None)  # noqa: E711
        return list(s.exec(q).all())


# --- the chapters file itself ------------------------------------------------------------


def test_a_chapters_file_is_read_by_the_format() -> None:
    got = remote_chapters.parse_chapters_json(json.dumps(GOOD_CHAPTERS).encode())
    # sorted by start; markup removed; a chapter without a title (an image mark) left out
    assert [(c.start, c.title) for c in got] == [
        (0, "Intro"),
        (95, "Second topic"),
        (200, "Wrap-up"),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"chapters": []}', "version: Field required"),
        (b'{"version": "1.2.0", "chapters": [{"title": "no start"}]}', "chapters.0.startTime"),
        (b'{"version": "1.2.0", "chapters": [{"startTime": -5, "title": "x"}]}', "startTime"),
        (b'{"version": "1.2.0", "chapters": {"a": 1}}', "chapters: Input should be a valid list"),
    ],
)
def test_a_file_that_is_not_the_format_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match="not") as exc:
        remote_chapters.parse_chapters_json(body)
    assert reason in str(exc.value)


def test_fetch_limits_size_time_and_scheme(srv: FeedServer) -> None:
    good = json.dumps(GOOD_CHAPTERS).encode()
    srv.add("/good.json", Route(body=good, content_type="application/json+chapters"))
    big = b'{"version": "1.2.0", "chapters": [' + b" " * (remote_chapters.MAX_BYTES + 10) + b"]}"
    srv.add("/big.json", Route(body=big, content_type="application/json"))
    srv.add("/big-chunked.json", Route(body=big, content_type="application/json", chunked=True))
    srv.add("/slow.json", Route(body=good, content_type="application/json", delay=3.0))
    srv.add("/bad.json", Route(body=b"<html>oops</html>", content_type="text/html"))
    srv.add("/gone.json", Route(status=404, body=b"no"))
    urls = [srv.url(p) for p in ("/good.json", "/big.json", "/big-chunked.json", "/slow.json")]
    urls += [srv.url("/bad.json"), srv.url("/gone.json"), "file:///etc/passwd", "ftp://x/c.json"]
    started = datetime.now(UTC)
    got = remote_chapters.fetch_chapters_sync(urls, timeout=0.5)
    took = (datetime.now(UTC) - started).total_seconds()
    by = {g.url: g for g in got}
    assert [c.title for c in by[urls[0]].chapters] == ["Intro", "Second topic", "Wrap-up"]
    assert by[urls[0]].error is None
    for u in urls[1:3]:
        assert by[u].chapters == [] and "too-large" in (by[u].error or "")
    assert "timeout" in (by[urls[3]].error or "")
    assert "not valid JSON" in (by[urls[4]].error or "")
    assert by[urls[5]].error == "the server answered HTTP 404"
    for u in urls[6:]:
        assert by[u].error == "it is not an http(s) URL, so it was not fetched"
    assert took < 3.0  # the slow one was cut at the timeout, not waited for
    assert srv.count("/gone.json") == 1


# --- through a pass ---------------------------------------------------------------------


def _chapters_feed(srv: FeedServer) -> bytes:
    base = srv.base_url
    return _feed(
        "Show A",
        base,
        [
            _item(1, base, _chapters_tag(srv.url("/c/good.json"))),
            # inline psc:chapters win: its chapters file is never fetched
            _item(
                2,
                base,
                '<psc:chapters version="1.2"><psc:chapter start="00:00:10" title="Inline"/>'
                "</psc:chapters>" + _chapters_tag(srv.url("/c/unused.json")),
            ),
            # the same file for another episode: still fetched once
            _item(3, base, _chapters_tag(srv.url("/c/good.json"))),
            _item(
                4,
                base,
                '<podcast:person role="host" href="https://a.example/ann" '
                'img="https://a.example/ann.jpg">Ann Host</podcast:person>'
                '<podcast:person role="guest">Gus Guest</podcast:person>'
                '<podcast:transcript url="https://a.example/4.vtt" type="text/vtt"/>',
            ),
        ],
        guid=GUID_A,
    )


def test_remote_chapters_are_fetched_once_and_kept(
    tmp_path: Path, db_url: str, srv: FeedServer
) -> None:
    srv.add("/c/good.json", Route(body=json.dumps(GOOD_CHAPTERS).encode()))
    srv.add("/c/unused.json", Route(body=json.dumps(GOOD_CHAPTERS).encode()))
    srv.add("/a.xml", Route(body=_chapters_feed(srv)))  # no validators: read whole each time
    settings = make_settings(
        tmp_path, db_url, sources=[{"name": "a", "type": "feed", "url": srv.url("/a.xml")}]
    )
    report = run_once(settings, now=NOW, force_poll=True)
    assert report.sources[0].status == "ok"
    eps = _episodes(db_url)
    want = [{"start": 0, "title": "Intro"}, {"start": 95, "title": "Second topic"}]
    want.append({"start": 200, "title": "Wrap-up"})
    assert eps["Episode 1"].chapters == want
    assert eps["Episode 3"].chapters == want
    assert eps["Episode 2"].chapters == [{"start": 10, "title": "Inline"}]
    # other persons than guests are kept beside the guests, and the transcript
    assert eps["Episode 4"].persons == [
        {"name": "Ann Host", "role": "host", "group": "cast",
         "href": "https://a.example/ann", "img": "https://a.example/ann.jpg"}
    ]  # fmt: skip
    assert [g["name"] for g in eps["Episode 4"].guests] == ["Gus Guest"]
    assert episode_dict(eps["Episode 4"])["persons"] == eps["Episode 4"].persons  # --json
    assert eps["Episode 4"].transcript_url == "https://a.example/4.vtt"
    assert srv.count("/c/good.json") == 1 and srv.count("/c/unused.json") == 0
    with session(upgrade(db_url)) as s:
        cached = s.exec(select(RemoteChapters)).all()
        assert [(r.url, r.error) for r in cached] == [(srv.url("/c/good.json"), None)]
        show = s.get(Show, "a")
        assert show is not None
        assert (show.title, show.podcast_guid) == ("Show A", GUID_A)
        assert (show.image, show.feed_url) == (srv.url("/art.jpg"), srv.url("/a.xml"))

    # the next read of the feed: chapters come from the store, nothing changed
    srv.add("/c/good.json", Route(status=500, body=b"down"))
    report = run_once(settings, now=NOW + timedelta(hours=1), force_poll=True)
    assert report.sources[0].status == "ok" and report.sources[0].changed == 0
    assert srv.count("/c/good.json") == 1
    assert _episodes(db_url)["Episode 1"].chapters == want
    assert _problems(db_url, "chapters") == []


def test_broken_chapters_files_are_one_warning_and_the_episodes_go_on(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    base = srv.base_url
    big = b'{"version":"1.2.0","chapters":[' + b" " * remote_chapters.MAX_BYTES + b"]}"
    srv.add("/c/big.json", Route(body=big))
    srv.add("/c/bad.json", Route(body=b'{"version": "1.2.0", "chapters": [{"title": "x"}]}'))
    srv.add("/c/broken.json", Route(body=b'{"version": "1.2.0", "chap'))
    items = [
        _item(1, base, _chapters_tag(srv.url("/c/big.json"))),
        _item(2, base, _chapters_tag(srv.url("/c/bad.json"))),
        _item(3, base, _chapters_tag(srv.url("/c/broken.json"))),
        _item(4, base, _chapters_tag(srv.url("/c/missing.json"))),
        _item(5, base, _chapters_tag("file:///etc/passwd")),
    ]
    srv.add("/a.xml", Route(body=_feed("Show A", base, items)))
    settings = make_settings(
        tmp_path, sqlite_url, sources=[{"name": "a", "type": "feed", "url": srv.url("/a.xml")}]
    )
    report = run_once(settings, now=NOW, force_poll=True)
    assert report.sources[0].status == "ok" and report.sources[0].new == 5
    eps = _episodes(sqlite_url)
    assert sorted(eps) == [f"Episode {n}" for n in range(1, 6)]
    assert all(e.chapters == [] for e in eps.values())
    [warning] = _problems(sqlite_url, "chapters")
    assert warning.severity == "warning" and warning.location == srv.url("/a.xml")
    msg = warning.message
    assert msg.startswith("4 podcast:chapters file(s) could not be used")
    for path in ("/c/big.json", "/c/bad.json", "/c/broken.json"):
        assert srv.url(path) in msg
    assert "and 1 more" in msg  # the fourth, named in the count
    assert "too-large" in msg and "chapters.0.startTime" in msg and "not valid JSON" in msg
    # the file: URL never left the feed's reading: it is the feed's unsafe-URL warning
    [unsafe] = _problems(sqlite_url, "unsafe-url")
    assert "chapters 'file:///etc/passwd'" in unsafe.message
    assert srv.count("/c/missing.json") == 1

    # the failures are remembered: the next pass does not fetch them again, and the
    # warning stays open while the files are broken
    run_once(settings, now=NOW + timedelta(hours=1), force_poll=True)
    assert srv.count("/c/missing.json") == 1
    assert len(_problems(sqlite_url, "chapters")) == 1
    # a day later they are tried again; a fixed file gives its chapters
    srv.add("/c/missing.json", Route(body=json.dumps(GOOD_CHAPTERS).encode()))
    run_once(settings, now=NOW + timedelta(hours=25), force_poll=True)
    assert srv.count("/c/missing.json") == 2
    assert [c["title"] for c in _episodes(sqlite_url)["Episode 4"].chapters] == [
        "Intro",
        "Second topic",
        "Wrap-up",
    ]
    [warning] = _problems(sqlite_url, "chapters")
    assert warning.message.startswith("3 podcast:chapters file(s)")


# --- a network feed ---------------------------------------------------------------------


def _network(tmp_path: Path, db_url: str, srv: FeedServer, **feed: Any) -> config.Settings:
    a, b = srv.url("/a"), srv.url("/b")
    person = '<podcast:person role="host" img="{0}/ann.jpg">Ann Host</podcast:person>'
    srv.add("/a.xml", Route(body=_feed("Show A", a, [_item(1, a, person.format(a))], guid=GUID_A)))
    # Show B has no podcast:guid; one item has its own artwork
    own = f'<itunes:image href="{b}/e2.jpg"/>'
    srv.add("/b.xml", Route(body=_feed("Show B & Co", b, [_item(2, b, own), _item(3, b)])))
    return make_settings(
        tmp_path,
        db_url,
        sources=[
            {"name": "a", "type": "feed", "url": srv.url("/a.xml")},
            {"name": "b", "type": "feed", "url": srv.url("/b.xml")},
        ],
        feeds=[
            {
                "name": "network",
                "path": "public/network.xml",
                "url": "https://net.example/network.xml",
                "title": "The Network",
                "description": "Every show of the network.",
                "sources": ["a", "b"],
                **feed,
            }
        ],
    )


def test_a_network_feed_shows_each_items_show(tmp_path: Path, db_url: str, srv: FeedServer) -> None:
    settings = _network(tmp_path, db_url, srv, podroll=True, opml=True, opml_file="shows.opml")
    report = run_once(settings, now=NOW, force_poll=True)
    assert [o.status for o in report.sources] == ["ok", "ok"]
    xml = (tmp_path / "public" / "network.xml").read_bytes()

    parsed = feedparser.parse(xml)
    assert not parsed.bozo
    by = {e.title: e for e in parsed.entries}
    assert by["Episode 1"].author == "Show A"
    assert by["Episode 1"].image.href == srv.url("/a/art.jpg")  # the show's artwork
    assert by["Episode 2"].author == "Show B & Co"
    assert by["Episode 2"].image.href == srv.url("/b/e2.jpg")  # its own artwork wins
    assert by["Episode 3"].image.href == srv.url("/b/art.jpg")

    party = _partytime(xml)
    items = {i["title"]: i for i in party["items"]}
    assert items["Episode 1"]["author"] == "Show A"
    assert items["Episode 3"]["author"] == "Show B & Co"
    assert items["Episode 1"]["image"] == srv.url("/a/art.jpg")
    # the host of Show A's item is written back as its podcast:person
    assert [(p["name"], p["role"]) for p in items["Episode 1"]["podcastPeople"]] == [
        ("Ann Host", "Host")  # partytime spells the role as the spec lists it
    ]
    # podcast:podroll: Show A's own guid; Show B's the namespace's UUIDv5 of its URL
    roll = party["podroll"]
    assert [(r["feedGuid"], r["feedUrl"]) for r in roll] == [
        (GUID_A, srv.url("/a.xml")),
        (rss.podcast_guid(srv.url("/b.xml")), srv.url("/b.xml")),
    ]
    tree = etree.fromstring(xml)
    assert len(tree.findall(f".//{{{PODCAST}}}podroll")) == 1
    assert len(tree.findall(f".//{{{PODCAST}}}podroll/{{{PODCAST}}}remoteItem")) == 2

    opml_file = tmp_path / "public" / "shows.opml"
    opml = listparser.parse(opml_file.read_bytes())
    assert not opml.bozo, opml.bozo_exception
    assert opml.meta.title == "The Network"
    assert [(f.title, f.url) for f in opml.feeds] == [
        ("Show A", srv.url("/a.xml")),
        ("Show B & Co", srv.url("/b.xml")),
    ]
    assert etree.fromstring(opml_file.read_bytes()).get("version") == "2.0"

    # an unchanged network writes nothing again
    mtime = opml_file.stat().st_mtime_ns
    run_once(settings, now=NOW + timedelta(hours=1), force_poll=True)
    assert opml_file.stat().st_mtime_ns == mtime


def test_a_feed_of_one_show_stays_as_it_was(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    settings = _network(tmp_path, sqlite_url, srv)
    settings.feeds[0].sources = ["b"]
    run_once(settings, now=NOW, force_poll=True)
    xml = (tmp_path / "public" / "network.xml").read_bytes()
    tree = etree.fromstring(xml)
    assert tree.findall(".//item/{http://www.itunes.com/dtds/podcast-1.0.dtd}author") == []
    assert tree.findall(f".//{{{PODCAST}}}podroll") == []
    assert not (tmp_path / "public" / "network.opml").exists()


def test_opml_file_must_be_a_file_name(tmp_path: Path) -> None:
    toml = '[podcast]\ntitle = "N"\n\n[[feeds]]\nname = "n"\nopml = true\nopml_file = "../x.opml"\n'
    (tmp_path / "s.toml").write_text(toml)
    with pytest.raises(config.ConfigError) as exc:
        config.load(tmp_path / "s.toml")
    [problem] = exc.value.problems
    assert (problem.where, problem.line) == ("feeds.0.opml_file", 7)
    assert "file name ending in .opml" in problem.message and "../x.opml" in problem.message
