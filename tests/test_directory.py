"""The directory feed: real SQLite store, real files, real parsers (feedparser, gPodder's
podcastparser, and podcast-partytime from npm run with node)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import podcastparser
import pytest
from lxml import etree
from pydantic import ValidationError
from sqlmodel import select

from syndicator import apple_categories as apple
from syndicator.config import PodcastConfig, Settings, from_dict
from syndicator.directory import chapters, rss
from syndicator.directory.check import check_feed, rfc2822_problem
from syndicator.directory.publish import (
    FeedOutcome,
    UnknownFeedError,
    atomic_write,
    publish_feeds,
)
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, FeedState

ROOT = Path(__file__).resolve().parent.parent
JS_DIR = ROOT / "tests" / "js"
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "psc": "http://podlove.org/simple-chapters",
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
SITE = "https://show.example.org"
FEED_URL = f"{SITE}/podcast/feed.xml"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)

NOTES_107 = """<p>In this episode Filipe Névola goes over hosting <strong>Meteor</strong> apps.
<a href="/tags/meteor" onclick="steal()">more</a></p>
<script>alert(1)</script><img src="x.png" onerror="x">
<h6>📄 References</h6>
<ul><li><a href="https://guide.meteor.com/">Meteor guide</a></li></ul>
<table><tr><td>cell</td></tr></table>"""


def _config(tmp: Path, **feed: Any) -> dict[str, Any]:
    f: dict[str, Any] = {"name": "main", "path": "public/podcast/feed.xml", "json_feed": None}
    f.update(feed)
    f = {k: v for k, v in f.items() if v is not None}
    return {
        "podcast": {
            "title": "Running the Show",
            "description": "Interviews about how people run software in production.",
            "link": SITE,
            "feed_url": FEED_URL,
            "image": "/images/cover.jpg",
            "language": "en",
            "author": "Nadia Host",
            "owner_name": "Nadia Host",
            "owner_email": "nadia@show.example.org",
            "categories": ["Technology", "News/Tech News", "Society & Culture > Documentary"],
            "explicit": False,
            "copyright": "© 2024 Nadia Host",
            "funding_url": f"{SITE}/support",
            "funding_text": "Support the show",
            "host": {
                "name": "Nadia Host",
                "website": "https://nadia.example.org",
                "avatar": "/images/nadia.jpg",
            },
        },
        "database": {"url": "sqlite:///" + str(tmp / "s.db")},
        "sources": [
            {"name": "site", "type": "jekyll", "path": str(tmp / "site")},
            {"name": "friends", "type": "feed", "url": "https://friends.example.net/feed.xml"},
        ],
        "feeds": [f],
    }


def _settings(tmp: Path, **feed: Any) -> Settings:
    return from_dict(_config(tmp, **feed), tmp)


def _ep(**kw: Any) -> Episode:
    base: dict[str, Any] = {
        "source": "site",
        "enclosure_type": "audio/mpeg",
        "first_seen_at": T0,
        "last_changed_at": T0,
    }
    base.update(kw)
    return Episode(**base)


def episodes() -> list[Episode]:
    return [
        _ep(
            guid=f"{SITE}/107-meteor-cloud",
            number=107,
            slug="107-meteor-cloud",
            title="Meteor Cloud Is a Full Service Hosting Solution 🚀",
            date=datetime(2021, 12, 20, 9, 0, tzinfo=UTC),
            url=f"{SITE}/107-meteor-cloud",
            guests=[
                {
                    "name": "Filipe Névola",
                    "twitter": "filipenevola",
                    "website": "https://www.meteor.com/cloud",
                    "avatar": "filipe-nevola",
                }
            ],
            tags=["meteor", "node"],
            enclosure_url=f"{SITE}/assets/podcast/ep-107.mp3",
            enclosure_length=98981760,
            duration_seconds=6186,
            description="Filipe Névola goes over building a Meteor hosting platform.",
            show_notes_html=NOTES_107,
            chapters=[
                {"start": 105, "title": "High level overview of the hosting platform"},
                {"start": 421, "title": "Splitting up compute resources"},
                {"start": 3628, "title": "Loggly is used for logging"},
            ],
            transcript_url=f"{SITE}/transcripts/107.vtt",
            transcript_type="text/vtt",
        ),
        _ep(
            guid="tag:show.example.org,2020:46",  # not a URL: isPermaLink="false"
            number=46,
            title="Custom Hardware to Provide Affordable Email",
            date=datetime(2020, 8, 31, 9, 0, tzinfo=UTC),
            url=f"{SITE}/46-custom-hardware",
            guests=[
                {
                    "name": "Clemens Wolff",
                    "website": "https://ascoderu.ca/",
                    "avatar": "https://show.example.org/images/clemens.jpg",
                },
                {"name": "Shaun Bathgate", "website": "#", "avatar": "shaun-bathgate"},
            ],
            enclosure_url=f"{SITE}/assets/podcast/ep-46.mp3",
            enclosure_length=58280832,
            duration_seconds=3642,
            description="Two guests go over a hardware appliance.",
            show_notes_html="<p>Clemens and Shaun talk about Flask.</p>",
            image=f"{SITE}/images/ep46.png",
        ),
        _ep(
            guid=f"{SITE}/0-preview",
            number=0,
            title="Preview of What Is to Come",
            date=datetime(2019, 10, 18, 9, 0, tzinfo=UTC),
            url=f"{SITE}/0-preview",
            enclosure_url=f"{SITE}/assets/podcast/ep-0.mp3",
            enclosure_length=1014803,
            duration_seconds=63,
            description="What this show is about.",
            episode_type="trailer",
        ),
        # a text interview: no audio, not in the feed
        _ep(
            guid=f"{SITE}/interviews/6-altair",
            title="Altair Is a GraphQL Client",
            date=datetime(2019, 12, 7, tzinfo=UTC),
            url=f"{SITE}/interviews/6-altair",
            enclosure_type=None,
        ),
        # withdrawn: not in the feed
        _ep(
            guid=f"{SITE}/72-removed",
            number=72,
            title="This Episode Was Removed",
            date=datetime(2021, 3, 1, tzinfo=UTC),
            enclosure_url=f"{SITE}/assets/podcast/ep-72.mp3",
            enclosure_length=1014803,
            withdrawn=True,
            withdrawn_reason="under_review",
        ),
        # another source: only in feeds that list it (or list none)
        _ep(
            source="friends",
            guid="friends-12",
            title="A Friend's Episode",
            date=datetime(2021, 1, 5, tzinfo=UTC),
            url="https://friends.example.net/12",
            enclosure_url="https://friends.example.net/12.m4a",
            enclosure_length=1234,
            enclosure_type="audio/x-m4a",
            duration_seconds=1800,
        ),
        # future-dated: appears once its date has come
        _ep(
            guid=f"{SITE}/108-next",
            number=108,
            title="Next Week's Episode",
            date=NOW + timedelta(days=7),
            url=f"{SITE}/108-next",
            enclosure_url=f"{SITE}/assets/podcast/ep-108.mp3",
            enclosure_length=5000,
        ),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    engine = upgrade("sqlite:///" + str(tmp_path / "s.db"))
    with session(engine, write=True) as s:
        for ep in episodes():
            s.add(ep)
    return engine


def _publish(engine: Any, settings: Settings, now: datetime = NOW, **kw: Any) -> FeedOutcome:
    [outcome] = publish_feeds(engine, settings, now, **kw)
    return outcome


def _feed_path(tmp: Path) -> Path:
    return tmp / "public" / "podcast" / "feed.xml"


def _channel(xml: bytes) -> etree._Element:
    return etree.fromstring(xml).find("channel")


def _items(xml: bytes) -> list[etree._Element]:
    return _channel(xml).findall("item")


# --------------------------------------------------------------------------- the feed


def test_channel_has_every_tag_directories_read(tmp_path: Path, store: Any) -> None:
    out = _publish(store, _settings(tmp_path, hubs=["https://hub.example.com/"]))
    assert out.error is None and out.changed
    xml = _feed_path(tmp_path).read_bytes()
    ch = _channel(xml)
    assert ch.findtext("title") == "Running the Show"
    assert ch.findtext("link") == SITE
    assert ch.findtext("description").startswith("Interviews about")
    assert ch.findtext("language") == "en"
    assert ch.findtext("copyright") == "© 2024 Nadia Host"
    assert ch.find("itunes:image", NS).get("href") == f"{SITE}/images/cover.jpg"
    cats = ch.findall("itunes:category", NS)
    assert [c.get("text") for c in cats] == ["Technology", "News", "Society & Culture"]
    assert [s.get("text") for s in cats[1].findall("itunes:category", NS)] == ["Tech News"]
    assert [s.get("text") for s in cats[2].findall("itunes:category", NS)] == ["Documentary"]
    assert b'<itunes:category text="Society &amp; Culture">' in xml
    assert ch.findtext("itunes:explicit", namespaces=NS) == "false"
    assert ch.findtext("itunes:author", namespaces=NS) == "Nadia Host"
    assert ch.findtext("itunes:owner/itunes:email", namespaces=NS) == "nadia@show.example.org"
    assert ch.findtext("itunes:owner/itunes:name", namespaces=NS) == "Nadia Host"
    assert ch.findtext("itunes:type", namespaces=NS) == "episodic"
    assert ch.findtext("lastBuildDate") == "Sat, 01 Jun 2024 12:00:00 +0000"
    links = {(a.get("rel"), a.get("href")) for a in ch.findall("atom:link", NS)}
    assert links == {("self", FEED_URL), ("hub", "https://hub.example.com/")}
    locked = ch.find("podcast:locked", NS)
    assert (locked.text, locked.get("owner")) == ("yes", "nadia@show.example.org")
    host = ch.find("podcast:person", NS)
    assert (host.text, host.get("role"), host.get("img"), host.get("href")) == (
        "Nadia Host",
        "host",
        f"{SITE}/images/nadia.jpg",
        "https://nadia.example.org",
    )
    funding = ch.find("podcast:funding", NS)
    assert (funding.get("url"), funding.text) == (f"{SITE}/support", "Support the show")
    assert check_feed(xml) == []
    assert out.problems == []


def test_items_newest_first_with_stored_identity(tmp_path: Path, store: Any) -> None:
    out = _publish(store, _settings(tmp_path))
    xml = _feed_path(tmp_path).read_bytes()
    items = _items(xml)
    # no-audio, withdrawn and future-dated episodes are left out; every source is shown
    assert [i.findtext("title") for i in items] == [
        "Meteor Cloud Is a Full Service Hosting Solution 🚀",
        "A Friend's Episode",
        "Custom Hardware to Provide Affordable Email",
        "Preview of What Is to Come",
    ]
    assert out.episode_count == 4
    first, friend, second, preview = items
    guid = first.find("guid")
    assert (guid.text, guid.get("isPermaLink")) == (f"{SITE}/107-meteor-cloud", "true")
    guid = second.find("guid")
    assert (guid.text, guid.get("isPermaLink")) == ("tag:show.example.org,2020:46", "false")
    assert first.findtext("link") == f"{SITE}/107-meteor-cloud"
    assert first.findtext("pubDate") == "Mon, 20 Dec 2021 09:00:00 +0000"
    enc = first.find("enclosure")
    assert dict(enc.attrib) == {
        "url": f"{SITE}/assets/podcast/ep-107.mp3",
        "length": "98981760",
        "type": "audio/mpeg",
    }
    assert friend.find("enclosure").get("type") == "audio/x-m4a"
    assert first.findtext("itunes:duration", namespaces=NS) == "6186"
    assert first.findtext("itunes:episode", namespaces=NS) == "107"
    assert first.findtext("itunes:episodeType", namespaces=NS) == "full"
    # episode 0 is a trailer; Apple wants a non-zero episode number, so none is written
    assert preview.find("itunes:episode", NS) is None
    assert preview.findtext("itunes:episodeType", namespaces=NS) == "trailer"
    assert second.find("itunes:image", NS).get("href") == f"{SITE}/images/ep46.png"
    assert first.find("itunes:image", NS) is None
    tr = first.find("podcast:transcript", NS)
    assert dict(tr.attrib) == {
        "url": f"{SITE}/transcripts/107.vtt",
        "type": "text/vtt",
        "rel": "captions",
    }


def test_show_notes_are_sanitized_cdata(tmp_path: Path, store: Any) -> None:
    _publish(store, _settings(tmp_path))
    raw = _feed_path(tmp_path).read_text("utf-8")
    assert "<content:encoded><![CDATA[<p>In this episode Filipe Névola" in raw
    first = _items(raw.encode())[0]
    notes = first.findtext("content:encoded", namespaces=NS)
    for gone in ("<script", "alert(1)", "onclick", "<img", "onerror", "<table", "<td"):
        assert gone not in notes
    assert '<a href="https://show.example.org/tags/meteor">more</a>' in notes  # made absolute
    assert "<strong>Meteor</strong>" in notes
    assert "<h6>📄 References</h6>" in notes
    assert '<li><a href="https://guide.meteor.com/">Meteor guide</a></li>' in notes
    # an episode without show notes gets its short description as a paragraph
    preview = _items(raw.encode())[3]
    assert preview.findtext("content:encoded", namespaces=NS) == "<p>What this show is about.</p>"


def test_sanitize_html_keeps_safe_tags_and_absolute_links() -> None:
    notes = (
        '<p>See <a href="/x?a=1&amp;b=2" target="_blank">x</a>, <a href="//cdn.example/y">y</a>, '
        '<a href="rel/p">r</a>, <a href="#t">t</a>, <a href="mailto:a@b.example">m</a>, '
        '<a href="javascript:alert(1)">j</a></p><!-- secret --><style>p{}</style>'
        "<blockquote>q</blockquote><pre><code>c</code></pre><em>e</em><b>b</b><br>"
    )
    out = rss.sanitize_html(notes, "https://ex.example/ep/1")
    assert out == (
        '<p>See <a href="https://ex.example/x?a=1&amp;b=2">x</a>, '
        '<a href="https://cdn.example/y">y</a>, <a href="https://ex.example/ep/rel/p">r</a>, '
        '<a href="https://ex.example/ep/1#t">t</a>, <a href="mailto:a@b.example">m</a>, '
        "<a>j</a></p><blockquote>q</blockquote><pre><code>c</code></pre><em>e</em><b>b</b><br>"
    )
    assert rss.sanitize_html("a ]]> b\x00") == "a ]]&gt; b"


def _long_notes(paragraphs: int) -> str:
    para = "<p>We talk about <b>Postgres</b> &amp; résumés, then wander off into the weeds.</p>"
    return "\n".join(para for _ in range(paragraphs))


PARA_TEXT = "We talk about Postgres & résumés, then wander off into the weeds."


def test_item_description_is_the_short_description(tmp_path: Path, store: Any) -> None:
    # Apple caps <description> at 4,000 bytes: the whole show notes go in content:encoded,
    # the front matter description in <description> and itunes:summary
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 107)).one()
        ep.show_notes_html = _long_notes(200)  # ~16 KB
        s.add(ep)
    out = _publish(store, _settings(tmp_path))
    assert out.problems == []
    raw = _feed_path(tmp_path).read_bytes()
    first = _items(raw)[0]
    summary = "Filipe Névola goes over building a Meteor hosting platform."
    assert first.findtext("description") == summary
    assert first.findtext("itunes:summary", namespaces=NS) == summary
    notes = first.findtext("content:encoded", namespaces=NS)
    assert len(notes.encode()) > 15_000 and notes.count("<b>Postgres</b>") == 200
    assert check_feed(raw) == []
    # gPodder's parser and feedparser read the short description and the whole notes
    ep = podcastparser.parse(FEED_URL, io.BytesIO(raw))["episodes"][0]
    assert ep["description"] == summary and ep["description_html"].count("Postgres") == 200
    entry = feedparser.parse(raw).entries[0]
    assert entry.summary == summary and entry.content[0].value.count("Postgres") == 200


def test_item_without_description_gets_the_start_of_its_notes(tmp_path: Path, store: Any) -> None:
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 107)).one()
        ep.description = ""
        ep.show_notes_html = _long_notes(200)
        s.add(ep)
    out = _publish(store, _settings(tmp_path))
    assert out.problems == []  # nothing for a person to do
    raw = _feed_path(tmp_path).read_bytes()
    first = _items(raw)[0]
    text = first.findtext("description")
    assert first.findtext("itunes:summary", namespaces=NS) == text
    assert 3_800 < len(text.encode()) <= 4_000
    assert text.startswith(PARA_TEXT + " " + PARA_TEXT)
    assert "<" not in text and "&amp;" not in text
    assert text.endswith("…") and " ".join([PARA_TEXT] * 200).startswith(text[:-1] + " ")
    assert check_feed(raw) == []


def test_item_description_can_be_the_notes_when_they_fit(tmp_path: Path, store: Any) -> None:
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 46)).one()
        ep.show_notes_html = _long_notes(200)
        s.add(ep)
    _publish(store, _settings(tmp_path, item_description="notes"))
    raw = _feed_path(tmp_path).read_bytes()
    first, long = _items(raw)[0], _items(raw)[2]
    notes = first.findtext("content:encoded", namespaces=NS)
    assert notes.startswith("<p>In this episode") and first.findtext("description") == notes
    # notes over 4,000 bytes: the short description instead
    assert long.findtext("description") == "Two guests go over a hardware appliance."
    assert check_feed(raw) == []


def test_text_excerpt_cuts_at_a_word_within_the_bytes() -> None:
    assert rss.text_excerpt("short one") == "short one"
    assert rss.text_excerpt("é" * 2000) == "é" * 2000  # exactly 4,000 bytes
    cut = rss.text_excerpt("é" * 2001)  # one giant word: cut inside it, whole characters
    assert cut == "é" * 1998 + "…" and len(cut.encode()) == 3999
    words = "naïve words, " * 1000
    cut = rss.text_excerpt(words)
    assert 3990 <= len(cut.encode()) <= 4000 and cut.endswith("…")
    assert words.startswith(cut[:-1]) and words[len(cut) - 1] in " ,"  # a whole word
    assert rss.text_excerpt("ab cd efgh", max_bytes=10) == "ab cd efgh"  # fits
    assert rss.text_excerpt("ab cd efgh", max_bytes=9) == "ab cd…"
    assert rss.text_excerpt("ab cde fgh", max_bytes=8) == "ab…"  # "cd" of "cde" dropped


def test_check_reports_descriptions_over_apples_limit() -> None:
    item = (
        "<item><title>Long</title><guid>g1</guid><pubDate>Tue, 02 Jan 2024 10:00:00 +0000"
        '</pubDate><enclosure url="https://x.example/1.mp3" length="1" type="audio/mpeg"/>'
        "<description><![CDATA[{d}]]></description><itunes:summary>{s}</itunes:summary></item>"
    )
    xml = BAD_FEED.replace(
        b"<item>", item.format(d="é" * 2001, s="x" * 4001).encode() + b"<item>", 1
    )
    problems = [p for p in check_feed(xml) if p.startswith("item 1 ")]
    assert problems == [
        "item 1 ('Long'): <description> is 4,002 bytes; Apple allows 4,000 at most "
        "(put the whole show notes in content:encoded)",
        "item 1 ('Long'): itunes:summary is 4,001 bytes; Apple allows 4,000 at most "
        "(put the whole show notes in content:encoded)",
    ]
    ok = BAD_FEED.replace(
        b"<item>", item.format(d="é" * 2000, s="x" * 4000).encode() + b"<item>", 1
    )
    assert not [p for p in check_feed(ok) if p.startswith("item 1 ")]


def test_item_without_title_is_named_after_its_audio_file(tmp_path: Path, store: Any) -> None:
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 46)).one()
        ep.title = " "
        s.add(ep)
    _publish(store, _settings(tmp_path, json_feed="public/podcast/feed.json"))
    raw = _feed_path(tmp_path).read_bytes()
    assert _items(raw)[2].findtext("title") == "ep-46"  # .../assets/podcast/ep-46.mp3
    assert b"Untitled" not in raw
    doc = json.loads((tmp_path / "public" / "podcast" / "feed.json").read_bytes())
    assert doc["items"][2]["title"] == "ep-46"


def test_guests_are_podcast_persons(tmp_path: Path, store: Any) -> None:
    _publish(
        store,
        _settings(tmp_path, avatar_url="https://show.example.org/images/guests/{avatar}.jpg"),
    )
    items = _items(_feed_path(tmp_path).read_bytes())
    [filipe] = items[0].findall("podcast:person", NS)
    assert filipe.text == "Filipe Névola"
    assert filipe.get("role") == "guest"
    assert filipe.get("href") == "https://www.meteor.com/cloud"
    assert filipe.get("img") == "https://show.example.org/images/guests/filipe-nevola.jpg"
    clemens, shaun = items[2].findall("podcast:person", NS)
    assert (clemens.text, clemens.get("img"), clemens.get("href")) == (
        "Clemens Wolff",
        "https://show.example.org/images/clemens.jpg",
        "https://ascoderu.ca/",
    )
    assert shaun.text == "Shaun Bathgate"
    assert shaun.get("href") is None  # "#" is no website
    assert shaun.get("img") == "https://show.example.org/images/guests/shaun-bathgate.jpg"


def test_chapters_file_and_inline_psc(tmp_path: Path, store: Any) -> None:
    _publish(store, _settings(tmp_path))
    first = _items(_feed_path(tmp_path).read_bytes())[0]
    with session(store) as s:
        ep_id = s.exec(select(Episode.id).where(Episode.number == 107)).one()
    ch = first.find("podcast:chapters", NS)
    assert ch.get("type") == "application/json+chapters"
    url = ch.get("url")
    name = url.rsplit("/", 1)[1]
    assert url == f"{SITE}/podcast/chapters/{name}"
    assert re.fullmatch(rf"{ep_id}-[0-9a-f]{{12}}\.json", name)
    data = (tmp_path / "public/podcast/chapters" / name).read_bytes()
    assert name == f"{ep_id}-{hashlib.sha256(data).hexdigest()[:12]}.json"
    doc = json.loads(data)
    assert doc["version"] == "1.2.0"
    assert doc["title"] == "Meteor Cloud Is a Full Service Hosting Solution 🚀"
    assert doc["chapters"] == [
        {"startTime": 105, "title": "High level overview of the hosting platform"},
        {"startTime": 421, "title": "Splitting up compute resources"},
        {"startTime": 3628, "title": "Loggly is used for logging"},
    ]
    psc = first.find("psc:chapters", NS)
    assert psc.get("version") == "1.2"
    assert [(c.get("start"), c.get("title")) for c in psc] == [
        ("00:01:45.000", "High level overview of the hosting platform"),
        ("00:07:01.000", "Splitting up compute resources"),
        ("01:00:28.000", "Loggly is used for logging"),
    ]
    # only the episode with chapters has a file
    assert len(list((tmp_path / "public/podcast/chapters").iterdir())) == 1


def test_changed_chapters_get_a_new_file_and_the_old_one_goes(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path)
    folder = tmp_path / "public/podcast/chapters"
    _publish(store, settings)
    [old] = list(folder.iterdir())
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 107)).one()
        ep.chapters = [*ep.chapters, {"start": 6000, "title": "Best tips"}]
        s.add(ep)
    out = _publish(store, settings, NOW + timedelta(minutes=1))
    assert out.changed and out.chapters_written == 1
    [new] = list(folder.iterdir())
    assert new.name != old.name and new.name.split("-")[0] == old.name.split("-")[0]
    assert json.loads(new.read_bytes())["chapters"][-1] == {"startTime": 6000, "title": "Best tips"}
    first = _items(_feed_path(tmp_path).read_bytes())[0]
    assert first.find("podcast:chapters", NS).get("url").endswith("/" + new.name)
    # a chapters file lost on disk comes back on the next pass, though the feed is unchanged
    new.unlink()
    again = _publish(store, settings, NOW + timedelta(minutes=2))
    assert again.changed is False and again.chapters_written == 1
    assert new.exists()


def test_chapters_url_from_config(tmp_path: Path, store: Any) -> None:
    _publish(store, _settings(tmp_path, chapters_url="https://cdn.example.com/ch"))
    first = _items(_feed_path(tmp_path).read_bytes())[0]
    assert first.find("podcast:chapters", NS).get("url").startswith("https://cdn.example.com/ch/")


def test_chapter_helpers() -> None:
    assert chapters.psc_start(0) == "00:00:00.000"
    assert chapters.psc_start(105.5) == "00:01:45.500"
    assert chapters.psc_start(6186) == "01:43:06.000"
    assert chapters.psc_start(36000 + 61.25) == "10:01:01.250"
    doc = chapters.chapters_document(
        [{"start": 60, "title": "b"}, {"start": 0, "title": "a"}, {"start": "x", "title": "bad"}]
    )
    assert doc == {
        "version": "1.2.0",
        "chapters": [{"startTime": 0, "title": "a"}, {"startTime": 60, "title": "b"}],
    }


def test_feed_chapters_are_strictly_increasing(tmp_path: Path, store: Any) -> None:
    # Stored chapters may share a second (the episode keeps both) or come unsorted from a
    # remote feed; the feed's JSON and psc: chapters must still run strictly forward.
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 107)).one()
        ep.chapters = [
            {"start": 60, "title": "A"},
            {"start": 60, "title": "B, the same second"},
            {"start": 0, "title": "Intro"},
            {"start": 90.0004, "title": "C"},
            {"start": 90.0001, "title": "D, the same millisecond"},
            {"start": 120.5, "title": "E"},
        ]
        s.add(ep)
    _publish(store, _settings(tmp_path))
    first = _items(_feed_path(tmp_path).read_bytes())[0]
    name = first.find("podcast:chapters", NS).get("url").rsplit("/", 1)[1]
    doc = json.loads((tmp_path / "public/podcast/chapters" / name).read_bytes())
    starts = [c["startTime"] for c in doc["chapters"]]
    assert starts == [0, 60, 90, 120.5]
    assert [c["title"] for c in doc["chapters"]] == ["Intro", "A", "C", "E"]
    psc = [c.get("start") for c in first.find("psc:chapters", NS)]
    assert psc == ["00:00:00.000", "00:01:00.000", "00:01:30.000", "00:02:00.500"]
    assert psc == sorted(set(psc))


# --------------------------------------------------------------------------- identity


def test_podcast_guid_is_uuid5_of_url_without_scheme() -> None:
    ns = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
    expected = str(uuid.uuid5(ns, "example.com/feed.xml"))
    assert rss.podcast_guid("https://example.com/feed.xml") == expected
    assert rss.podcast_guid("http://example.com/feed.xml/") == expected
    # the value the Podcast Index documents for podnews.net/rss
    assert rss.podcast_guid("https://podnews.net/rss") == "9b024349-ccf0-5f69-a609-6b82873eab3c"


def test_podcast_guid_stored_once_and_kept_when_url_changes(tmp_path: Path, store: Any) -> None:
    _publish(store, _settings(tmp_path))
    first = _channel(_feed_path(tmp_path).read_bytes()).findtext("podcast:guid", namespaces=NS)
    assert first == rss.podcast_guid(FEED_URL)
    with session(store) as s:
        assert s.get(FeedState, "main").podcast_guid == first
    moved = "https://new-home.example.com/feed.rss"
    out = _publish(store, _settings(tmp_path, url=moved), NOW + timedelta(hours=1))
    assert out.changed and out.url == moved
    ch = _channel(_feed_path(tmp_path).read_bytes())
    assert ch.findtext("podcast:guid", namespaces=NS) == first
    assert ch.find("atom:link[@rel='self']", NS).get("href") == moved
    with session(store) as s:
        st = s.get(FeedState, "main")
        assert (st.podcast_guid, st.url) == (first, moved)


# --------------------------------------------------------------------------- writing


def test_unchanged_rebuild_writes_nothing(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path, json_feed="public/podcast/feed.json")
    path = _feed_path(tmp_path)
    out1 = _publish(store, settings)
    assert out1.changed and out1.chapters_written == 1
    before = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    os.utime(path, ns=(stamp - 5_000_000_000, stamp - 5_000_000_000))  # make a rewrite visible
    stamp = path.stat().st_mtime_ns
    later = NOW + timedelta(hours=3)
    out2 = _publish(store, settings, later)
    assert out2.changed is False
    assert out2.content_hash == out1.content_hash
    assert out2.chapters_written == 0
    assert path.stat().st_mtime_ns == stamp
    assert path.read_bytes() == before
    with session(store) as s:
        st = s.get(FeedState, "main")
        assert st.changed_at == NOW and st.built_at == later
        assert st.episode_count == 4 and st.size_bytes == len(before)
        assert st.content_hash == out1.content_hash and st.last_error is None


def test_rebuild_is_byte_identical_but_for_last_build_date(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path)
    meta = rss.feed_meta(settings.podcast, settings.feeds[0])
    with session(store) as s:
        eps = list(s.exec(select(Episode).where(Episode.enclosure_url.is_not(None))))
    a = rss.build_rss(meta, eps, last_build=NOW)
    b = rss.build_rss(meta, eps, last_build=NOW + timedelta(days=1))
    assert a != b
    assert rss.build_rss(meta, eps, last_build=NOW) == a
    assert a.replace(b"Sat, 01 Jun 2024", b"Sun, 02 Jun 2024") == b
    assert rss.content_hash(a) == rss.content_hash(b)
    # the streamed forms publish uses agree with the bytes
    root = rss.build_tree(meta, eps, last_build=NOW)
    assert rss.tree_digest(root) == (rss.content_hash(a), len(a))
    buf = io.BytesIO()
    rss.write_tree(root, buf)
    assert buf.getvalue() == a
    sink = rss.HashingWriter()
    for i in range(0, len(b), 7):  # chunks that split <lastBuildDate> somewhere
        sink.write(b[i : i + 7])
    assert sink.hexdigest() == rss.content_hash(a)


def test_a_change_rewrites_and_new_last_build_date(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path)
    path = _feed_path(tmp_path)
    _publish(store, settings)
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 46)).one()
        ep.title = "Custom Hardware to Provide Affordable E-mail"
        s.add(ep)
    later = NOW + timedelta(hours=2)
    out = _publish(store, settings, later)
    assert out.changed
    xml = path.read_bytes()
    assert b"Affordable E-mail" in xml
    assert _channel(xml).findtext("lastBuildDate") == "Sat, 01 Jun 2024 14:00:00 +0000"
    with session(store) as s:
        assert s.get(FeedState, "main").changed_at == later


def test_deleted_file_is_written_again(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path)
    _publish(store, settings)
    _feed_path(tmp_path).unlink()
    assert _publish(store, settings).changed
    assert _feed_path(tmp_path).exists()


def test_future_episode_appears_once_due(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path)
    _publish(store, settings)
    out = _publish(store, settings, NOW + timedelta(days=8))
    assert out.changed and out.episode_count == 5
    assert _items(_feed_path(tmp_path).read_bytes())[0].findtext("title") == "Next Week's Episode"


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path, json_feed="public/podcast/feed.json")
    _publish(store, settings)
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 107)).one()
        ep.chapters = [*ep.chapters, {"start": 4000, "title": "Wrap-up"}]
        s.add(ep)
    _publish(store, settings, NOW + timedelta(minutes=5))
    folder = tmp_path / "public" / "podcast"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["chapters", "feed.json", "feed.xml"]
    assert all(p.suffix == ".json" for p in (folder / "chapters").iterdir())
    assert oct(_feed_path(tmp_path).stat().st_mode & 0o777) == oct(0o644)


def test_atomic_write_cleans_up_when_replace_fails(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(OSError):
        atomic_write(target, b"<rss/>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feed.xml"]


def test_failed_build_is_recorded_and_others_go_on(tmp_path: Path, store: Any) -> None:
    data = _config(tmp_path)
    data["feeds"].append({"name": "network", "path": "public/network.xml", "url": f"{SITE}/n.xml"})
    settings = from_dict(data, tmp_path)
    publish_feeds(store, settings, NOW)
    _feed_path(tmp_path).unlink()
    _feed_path(tmp_path).mkdir()  # the feed's path is now a folder: writing it fails
    main, network = publish_feeds(store, settings, NOW + timedelta(days=8))
    assert main.error and "was not built" in main.error and main.changed is False
    assert main.problems[-1] == main.error
    assert network.error is None and network.changed
    with session(store) as s:
        assert "was not built" in s.get(FeedState, "main").last_error
        assert s.get(FeedState, "network").last_error is None


def test_bad_episode_row_is_left_out_with_a_problem(tmp_path: Path, store: Any) -> None:
    with session(store, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == 46)).one()
        ep.guests = ["not a guest object"]
        s.add(ep)
    out = _publish(store, _settings(tmp_path))
    assert out.error is None and out.episode_count == 3
    assert any("tag:show.example.org,2020:46" in p and "left out" in p for p in out.problems)
    assert b"Custom Hardware" not in _feed_path(tmp_path).read_bytes()


def test_check_only_writes_nothing(tmp_path: Path, store: Any) -> None:
    settings = _settings(tmp_path, json_feed="public/podcast/feed.json")
    out = _publish(store, settings, check_only=True)
    assert out.changed is True  # a real build would write
    assert out.problems == [] and out.episode_count == 4 and out.size_bytes > 0
    assert not (tmp_path / "public").exists()
    with session(store) as s:
        assert s.get(FeedState, "main") is None


def test_check_only_returns_every_problem(tmp_path: Path, store: Any) -> None:
    data = _config(tmp_path)
    data["podcast"].update(owner_email="", author="", image="https://x.example/cover.gif")
    out = _publish(store, from_dict(data, tmp_path), check_only=True)
    text = "\n".join(out.problems)
    assert "itunes:owner email" in text
    assert "itunes:author" in text
    assert "not a .jpg or .png" in text


def test_sources_limit_and_network_feed(tmp_path: Path, store: Any) -> None:
    data = _config(tmp_path, sources=["site"], limit=2)
    data["feeds"].append(
        {
            "name": "network",
            "path": "public/network.xml",
            "url": f"{SITE}/network.xml",
            "title": "The Network",
            "description": "Every show we make.",
            "image": "https://cdn.example.com/network.png",
            "sources": ["site", "friends"],
        }
    )
    settings = from_dict(data, tmp_path)
    main, network = publish_feeds(store, settings, NOW)
    assert (main.episode_count, network.episode_count) == (2, 4)
    main_items = _items(_feed_path(tmp_path).read_bytes())
    assert [i.findtext("itunes:episode", namespaces=NS) for i in main_items] == ["107", "46"]
    nxml = (tmp_path / "public/network.xml").read_bytes()
    ch = _channel(nxml)
    assert ch.findtext("title") == "The Network"
    assert ch.findtext("description") == "Every show we make."
    assert ch.find("itunes:image", NS).get("href") == "https://cdn.example.com/network.png"
    assert ch.findtext("podcast:guid", namespaces=NS) == rss.podcast_guid(f"{SITE}/network.xml")
    assert "A Friend's Episode" in [i.findtext("title") for i in _items(nxml)]
    # only the named feed
    [only] = publish_feeds(store, settings, NOW, names=["network"])
    assert only.name == "network" and only.changed is False
    with pytest.raises(UnknownFeedError, match="configured feeds: main, network"):
        publish_feeds(store, settings, NOW, names=["nope"])


def test_no_feeds_configured_publishes_nothing(tmp_path: Path, store: Any) -> None:
    data = _config(tmp_path)
    data["feeds"] = []
    assert publish_feeds(store, from_dict(data, tmp_path), NOW) == []


def test_feed_without_url_is_a_clear_problem(tmp_path: Path, store: Any) -> None:
    data = _config(tmp_path)
    data["podcast"]["feed_url"] = ""
    out = _publish(store, from_dict(data, tmp_path))
    assert out.error and "has no URL" in out.error and "podcast.feed_url" in out.error
    assert not _feed_path(tmp_path).exists()


def test_json_feed_beside_the_rss(tmp_path: Path, store: Any) -> None:
    _publish(store, _settings(tmp_path, json_feed="public/podcast/feed.json"))
    doc = json.loads((tmp_path / "public/podcast/feed.json").read_text("utf-8"))
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert doc["feed_url"] == f"{SITE}/podcast/feed.json"
    assert doc["items"][0]["id"] == f"{SITE}/107-meteor-cloud"
    att = doc["items"][0]["attachments"][0]
    assert att == {
        "url": f"{SITE}/assets/podcast/ep-107.mp3",
        "mime_type": "audio/mpeg",
        "size_in_bytes": 98981760,
        "duration_in_seconds": 6186,
    }
    assert doc["items"][0]["date_published"] == "2021-12-20T09:00:00Z"


# --------------------------------------------------------------------------- real parsers


@pytest.fixture
def feed_xml(tmp_path: Path, store: Any) -> bytes:
    _publish(store, _settings(tmp_path, hubs=["https://hub.example.com/"]))
    return _feed_path(tmp_path).read_bytes()


def test_feedparser_reads_it_cleanly(feed_xml: bytes) -> None:
    d = feedparser.parse(feed_xml)
    assert not d.bozo, d.get("bozo_exception")
    assert d.feed.title == "Running the Show"
    assert [t.term for t in d.feed.tags][:2] == ["Technology", "News"]
    assert len(d.entries) == 4
    e = d.entries[0]
    assert e.id == f"{SITE}/107-meteor-cloud"
    assert e.enclosures[0].href == f"{SITE}/assets/podcast/ep-107.mp3"
    assert e.enclosures[0].length == "98981760"
    assert e.itunes_duration == "6186"
    assert "Filipe Névola" in e.content[0].value
    assert e.published_parsed[:3] == (2021, 12, 20)


def test_gpodder_podcastparser_reads_enclosures_and_chapters(feed_xml: bytes) -> None:
    parsed = podcastparser.parse(FEED_URL, io.BytesIO(feed_xml))
    assert parsed["title"] == "Running the Show"
    eps = parsed["episodes"]
    assert len(eps) == 4
    first = next(e for e in eps if e["guid"] == f"{SITE}/107-meteor-cloud")
    assert first["total_time"] == 6186
    assert first["enclosures"][0]["url"] == f"{SITE}/assets/podcast/ep-107.mp3"
    assert first["enclosures"][0]["file_size"] == 98981760
    assert first["enclosures"][0]["mime_type"] == "audio/mpeg"
    assert first["chapters"] == [
        {"start": 105, "title": "High level overview of the hosting platform"},
        {"start": 421, "title": "Splitting up compute resources"},
        {"start": 3628, "title": "Loggly is used for logging"},
    ]
    assert first["published"] == int(datetime(2021, 12, 20, 9, tzinfo=UTC).timestamp())
    assert {e["guid"] for e in eps} >= {"tag:show.example.org,2020:46", "friends-12"}


def _partytime(xml: bytes) -> dict[str, Any]:
    node = shutil.which("node")
    if not (JS_DIR / "node_modules" / "podcast-partytime").exists() or node is None:
        if os.environ.get("CI"):
            pytest.fail("podcast-partytime is not installed: run `npm ci` in tests/js")
        pytest.skip("podcast-partytime not installed (npm ci in tests/js)")
    proc = subprocess.run(
        [node, str(JS_DIR / "parse.mjs")],
        input=xml,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PARTYTIME_LOG": "silent"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_podcast_index_partytime_reads_podcasting20(feed_xml: bytes) -> None:
    feed = _partytime(feed_xml)
    assert feed["title"] == "Running the Show"
    assert feed["guid"] == rss.podcast_guid(FEED_URL)
    assert feed["explicit"] is False
    assert (feed["locked"], feed["podcastOwner"]) == (True, "nadia@show.example.org")
    assert feed["itunesCategory"] == [
        "Technology",
        "News > Tech News",
        "Society & Culture > Documentary",
    ]
    host = feed["podcastPeople"][0]
    assert (host["name"], host["role"].lower()) == ("Nadia Host", "host")
    assert feed["podcastFunding"] == [{"message": "Support the show", "url": f"{SITE}/support"}]
    # pc20support: {phase: [tags]} -- what the Podcast Index shows as supported features
    seen = {tag for tags in feed["pc20support"].values() for tag in tags}
    assert seen >= {"guid", "locked", "funding", "chapters", "person", "transcript"}
    items = feed["items"]
    assert len(items) == 4
    first = items[0]
    assert first["guid"] == f"{SITE}/107-meteor-cloud"
    assert first["enclosure"]["url"] == f"{SITE}/assets/podcast/ep-107.mp3"
    assert first["enclosure"]["length"] == 98981760
    assert first["duration"] == 6186
    assert first["podcastChapters"]["type"] == "application/json+chapters"
    assert first["podcastChapters"]["url"].startswith(f"{SITE}/podcast/chapters/")
    assert first["podcastTranscripts"][0]["url"] == f"{SITE}/transcripts/107.vtt"
    assert [(p["name"], p["role"].lower()) for p in first["podcastPeople"]] == [
        ("Filipe Névola", "guest")
    ]
    guests = items[2]["podcastPeople"]
    assert [(p["name"], p.get("href")) for p in guests] == [
        ("Clemens Wolff", "https://ascoderu.ca/"),
        ("Shaun Bathgate", None),
    ]
    assert guests[0]["img"] == "https://show.example.org/images/clemens.jpg"


# --------------------------------------------------------------------------- check_feed

BAD_FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel>
  <title>Bad</title>
  <link>https://bad.example</link>
  <description>Broken on purpose.</description>
  <itunes:image href="https://bad.example/cover.gif"/>
  <itunes:category text="Technology"><itunes:category text="Gadgets"/></itunes:category>
  <itunes:category text="Tech"/>
  <itunes:explicit>yes</itunes:explicit>
  <item>
    <title>One</title>
    <guid>same</guid>
    <pubDate>Mon, 02 Jan 2024 10:00:00 +0000</pubDate>
    <enclosure url="https://bad.example/1.mp3" length="12.5MB" type="audio/mpeg"/>
    <itunes:explicit>clean</itunes:explicit>
    <itunes:image href="https://bad.example/1.webp"/>
  </item>
  <item>
    <title>Two</title>
    <guid>same</guid>
    <pubDate>2024-01-03T10:00:00Z</pubDate>
    <enclosure url="https://bad.example/1.mp3" length="100" type="text/html"/>
    <itunes:duration>an hour</itunes:duration>
    <itunes:episode>0</itunes:episode>
  </item>
</channel>
</rss>"""


def test_check_feed_finds_every_broken_rule() -> None:
    problems = check_feed(BAD_FEED)
    text = "\n".join(problems)
    expected = [
        "channel: <language> is missing",
        "itunes:image 'https://bad.example/cover.gif' is not a .jpg or .png",
        "'Gadgets' is not one of Apple's sub-categories of 'Technology'",
        "itunes:category 'Tech' is not on Apple's category list",
        "channel: itunes:explicit is 'yes'; write true or false",
        "no itunes:author",
        "no itunes:owner email",
        'no atom:link rel="self"',
        "item 1 ('One'): enclosure length '12.5MB' is not a whole number",
        "item 1 ('One'): pubDate 'Mon, 02 Jan 2024 10:00:00 +0000' names the wrong weekday",
        "item 1 ('One'): itunes:explicit is 'clean'",
        "item 1 ('One'): itunes:image 'https://bad.example/1.webp'",
        "item 2 ('Two'): guid 'same' repeats item 1",
        "item 2 ('Two'): enclosure url 'https://bad.example/1.mp3' repeats item 1",
        "item 2 ('Two'): enclosure type 'text/html'",
        "item 2 ('Two'): pubDate '2024-01-03T10:00:00Z' is not an RFC 2822 date",
        "item 2 ('Two'): itunes:duration 'an hour'",
        "item 2 ('Two'): itunes:episode '0'",
    ]
    for e in expected:
        assert e in text, f"missing {e!r} in:\n{text}"
    assert len(problems) == len(expected)


def test_check_tree_agrees_with_check_feed() -> None:
    from syndicator.directory.check import check_tree

    assert check_tree(etree.fromstring(BAD_FEED)) == check_feed(BAD_FEED)


def test_check_feed_on_garbage() -> None:
    assert check_feed(b"<rss><channel>")[0].startswith("feed: not well-formed XML")
    assert check_feed(b"<feed/>") == ["feed: the root element is <feed>, not <rss>"]


def test_rfc2822() -> None:
    assert rfc2822_problem("Tue, 02 Jan 2024 09:00:00 +0000") is None
    assert rfc2822_problem("02 Jan 2024 09:00 GMT") is None
    assert rfc2822_problem("Tue, 31 Feb 2024 09:00:00 +0000") is not None
    assert rfc2822_problem("") is not None


# --------------------------------------------------------------------------- categories


def test_categories_checked_when_config_loads(tmp_path: Path) -> None:
    p = PodcastConfig(categories=["technology", "News/Tech News", "Kids & Family > parenting"])
    assert p.categories == ["Technology", "News > Tech News", "Kids & Family > Parenting"]
    data = _config(tmp_path)
    data["podcast"]["categories"] = ["Tech News"]
    with pytest.raises(ValidationError, match=r'sub-category: write "News > Tech News"'):
        from_dict(data, tmp_path)
    with pytest.raises(ValidationError, match=r"did you mean \"Technology\""):
        PodcastConfig(categories=["Tech"])
    with pytest.raises(ValidationError, match="has no sub-categories"):
        PodcastConfig(categories=["Technology > Gadgets"])
    with pytest.raises(ValidationError, match=r'"Category > Sub-category"'):
        PodcastConfig(categories=["A > B > C"])


def test_category_list_has_subcategories() -> None:
    assert apple.is_category("Society & Culture", "Documentary")
    assert apple.is_category("Technology")
    assert not apple.is_category("Technology", "Tech News")
    assert apple.parse_category("tv & film / after shows") == ("TV & Film", "After Shows")
    assert sum(len(v) for v in apple.CATEGORIES.values()) > 90
