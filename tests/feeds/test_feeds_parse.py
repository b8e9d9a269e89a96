"""feeds/parse.py and podcast.py: feed bodies served on 127.0.0.1 become episodes and problems."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from feedtools import FEEDS, ITEMS_RSS, only_problem, poll_one, src

from syndicator.config import FetchConfig
from syndicator.sources.feeds.parse import parse_feed, parse_itunes_duration, title_from_url
from syndicator.sources.feeds.poll import PollRequest, poll_feeds_sync
from syndicator.textutil import html_to_text

try:
    from tests.feedserver import (
        FeedServer,
        html_page,
        make_feed_xml,
    )
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from feedserver import (  # type: ignore[no-redef]
        FeedServer,
        html_page,
        make_feed_xml,
    )


def test_feed_items_become_episodes(srv: FeedServer) -> None:
    route = srv.add_feed("/feed.xml", make_feed_xml(3))
    res = poll_one(srv.url("/feed.xml"), categories=["podcast", "remote"])
    assert res.status == "ok", res.problems
    assert res.http_status == 200 and res.problems == []
    assert (res.etag, res.last_modified) == (route.etag, route.last_modified)
    assert [e.number for e in res.episodes] == [3, 2, 1]
    ep = res.episodes[0]
    assert ep.key == ep.guid == "https://podcast.example.com/episodes/3"
    assert ep.title == "3: Postgres with Grace Hopper"
    assert ep.date == datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
    assert ep.url == "https://podcast.example.com/3-talking-postgres-with-grace"
    assert ep.description.startswith("Grace Hopper on Postgres. Paragraph 1: we talk about")
    assert "<" not in ep.description and "  " not in ep.description
    assert "&amp;" not in ep.description and "links & more" in ep.description
    assert ep.show_notes_html.startswith("<p>Paragraph 1")
    assert ep.enclosure is not None
    assert ep.enclosure.url == "https://podcast.example.com/audio/3.mp3"
    assert isinstance(ep.enclosure.length, int) and ep.enclosure.length > 0
    assert ep.enclosure.type == "audio/mpeg"
    assert ep.duration_seconds is not None and 1200 <= ep.duration_seconds <= 6600
    assert ep.image == "https://podcast.example.com/images/3.jpg"
    assert ep.episode_type == "full"
    assert ep.tags == ["Postgres", "Interviews"]
    assert ep.categories == ["podcast", "remote"]
    assert [(g.name, g.website, g.avatar) for g in ep.guests] == [
        ("Grace Hopper", "https://example.org/grace", "https://podcast.example.com/avatars/3.jpg")
    ]
    assert [(c.start, c.title) for c in ep.chapters] == [
        (0, "Intro"),
        (90, "Postgres"),
        (3723, "Wrap-up"),
    ]
    assert ep.transcript_url == "https://podcast.example.com/transcripts/3.vtt"
    assert ep.transcript_type == "text/vtt"
    # a guest without a website keeps None, not ""
    srv.add_feed("/zoe.xml", make_feed_xml(4))
    zoe = [
        e
        for e in poll_one(srv.url("/zoe.xml")).episodes
        if e.guests and e.guests[0].name == "Zoë Müller"
    ]
    assert zoe and zoe[0].guests[0].website is None


def test_item_variants_keys_and_fields(srv: FeedServer) -> None:
    srv.add_feed("/v.xml", ITEMS_RSS)
    res = poll_one(srv.url("/v.xml"), categories=[])
    assert res.status == "ok"
    by_title = {e.title: e for e in res.episodes}
    assert set(by_title) == {"Only a link", "Only an enclosure", "Dup A", "Bold title"}

    link_only = by_title["Only a link"]
    assert link_only.key == link_only.guid == "/episodes/link-only"  # identity as written
    assert link_only.url == srv.url("/episodes/link-only")  # made absolute for display
    assert link_only.duration_seconds == 62 * 60 + 3
    assert link_only.explicit is True
    assert link_only.episode_type == "trailer"
    assert link_only.image == "https://cdn.example/thumb.jpg"
    assert link_only.description == "First second & spaced"
    assert "alert" not in link_only.description
    # no zone in the date: taken in UTC by default
    assert link_only.date == datetime(2024, 3, 2, 10, 0, tzinfo=UTC)

    enc = by_title["Only an enclosure"]
    assert enc.key == enc.guid == "https://cdn.example/a.mp3"
    assert enc.enclosure is not None and enc.enclosure.length is None
    assert enc.enclosure.type == "audio/x-m4a"
    assert enc.duration_seconds == 3723
    assert enc.explicit is False
    assert enc.date is None
    assert (enc.transcript_url, enc.transcript_type) == ("https://cdn.example/a.vtt", "text/vtt")
    assert [(g.name, g.website) for g in enc.guests] == [("Filipe Névola", "https://guest.example")]

    assert by_title["Dup A"].duration_seconds is None
    html_title = by_title["Bold title"]
    assert (
        "script" not in html_title.show_notes_html and "onclick" not in html_title.show_notes_html
    )
    assert 'href="' + srv.url("/rel") + '"' in html_title.show_notes_html

    warnings = [p for p in res.problems if p.severity == "warning"]
    text = " ".join(p.message for p in warnings)
    assert "1 item(s) have no guid, link or enclosure URL" in text and "Nothing to key on" in text
    assert "1 item(s) repeat the guid" in text


def test_media_rss_content_is_the_audio_without_an_enclosure(srv: FeedServer) -> None:
    srv.add_feed("/video.xml", (FEEDS / "media_rss.xml").read_bytes())
    res = poll_one(srv.url("/video.xml"))
    assert res.status == "ok" and res.problems == [], res.problems
    enc = {e.guid: e.enclosure for e in res.episodes}
    got = {g: (e.url, e.length, e.type) if e else None for g, e in enc.items()}
    assert got == {
        "vid-1": ("https://cdn.video.example/v/1.mp4", 73400320, "video/mp4"),
        # audio before video; the default one first
        "vid-2": ("https://cdn.video.example/a/2-hq.m4a", 60000000, "audio/mp4"),
        "vid-3": ("https://cdn.video.example/a/3.mp3", None, "audio/mpeg"),
        "vid-4": ("https://cdn.video.example/a/4.mp3", 4000, "audio/mpeg"),
        "vid-5": None,  # a picture is no episode file
        "vid-6": (
            "https://cdn.video.example/v/Episode%206%20-%20Untitled%20No%20More.mp4?token=abc",
            123,
            "video/mp4",
        ),
    }


def test_long_item_description_is_kept_within_apples_limit(srv: FeedServer) -> None:
    # many feeds carry the whole show notes in <description>: the episode's description is
    # its start, cut at a word, within the 4,000 bytes Apple allows; the notes stay whole
    para = "Über die Grenze gehen wir heute, mit Gästen &amp; Fragen. "
    body = ITEMS_RSS.replace(
        "<description>no guid, link or enclosure</description>",
        f"<description>{para * 400}</description><guid>long</guid>",
    )
    srv.add_feed("/long.xml", body)
    ep = next(e for e in poll_one(srv.url("/long.xml")).episodes if e.guid == "long")
    assert 3_900 < len(ep.description.encode()) <= 4_000 and ep.description.endswith("…")
    whole = " ".join([para.replace("&amp;", "&").strip()] * 400)
    assert whole.startswith(ep.description[:-1])
    assert ep.show_notes_html.count("Über die Grenze") == 400


def test_item_without_title_is_named_after_its_file(srv: FeedServer) -> None:
    # as gPodder does: the enclosure's file name without its extension
    srv.add_feed("/video.xml", (FEEDS / "media_rss.xml").read_bytes())
    by_guid = {e.guid: e for e in poll_one(srv.url("/video.xml")).episodes}
    assert by_guid["vid-6"].title == "Episode 6 - Untitled No More"
    assert by_guid["vid-1"].title == "Video only"
    rss_item = ITEMS_RSS.replace("<title>Only an enclosure</title>", "<title>  </title>")
    srv.add_feed("/v.xml", rss_item)
    by_guid = {e.guid: e for e in poll_one(srv.url("/v.xml")).episodes}
    assert by_guid["https://cdn.example/a.mp3"].title == "a"
    assert title_from_url("https://x.example/pod/ep%2012.final.mp3?dl=1#t") == "ep 12.final"
    assert title_from_url("https://x.example/feed/") == "feed"
    assert title_from_url("https://x.example") == "" and title_from_url(None) == ""


def test_naive_dates_use_the_given_zone(srv: FeedServer) -> None:
    srv.add_feed("/v.xml", ITEMS_RSS)
    s = src(srv.url("/v.xml"))
    [res] = poll_feeds_sync([PollRequest(s)], FetchConfig(), tz=ZoneInfo("Europe/Berlin"))
    ep = next(e for e in res.episodes if e.title == "Only a link")
    assert ep.date == datetime(2024, 3, 2, 9, 0, tzinfo=UTC)


def test_atom_feed(srv: FeedServer) -> None:
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Atom show</title><id>urn:show</id>
<updated>2024-05-01T12:00:00Z</updated>
<entry><id>urn:ep:1</id><title>Atom one</title><link href="https://a.example/1"/>
<link rel="enclosure" href="https://a.example/1.mp3" length="100" type="audio/mpeg"/>
<updated>2024-05-01T12:00:00+02:00</updated><category term="news"/>
<content type="html">&lt;p&gt;Hello &lt;em&gt;atom&lt;/em&gt;&lt;/p&gt;</content></entry>
</feed>"""
    srv.add_feed("/atom", atom, content_type="application/atom+xml")
    res = poll_one(srv.url("/atom"))
    assert res.status == "ok"
    [ep] = res.episodes
    assert (ep.key, ep.title, ep.url) == ("urn:ep:1", "Atom one", "https://a.example/1")
    assert ep.date == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert ep.enclosure is not None and ep.enclosure.length == 100
    assert ep.tags == ["news"]
    assert ep.show_notes_html == "<p>Hello <em>atom</em></p>"
    assert ep.description == "Hello atom"


def test_five_thousand_items(srv: FeedServer) -> None:
    srv.add_feed("/big.xml", make_feed_xml(5000, persons=True, notes_paragraphs=1))
    t = time.monotonic()
    [res] = poll_feeds_sync(
        [PollRequest(src(srv.url("/big.xml"), timeout="30s"))], FetchConfig(), parse_in="thread"
    )
    took = time.monotonic() - t
    assert res.status == "ok", res.problems
    assert len(res.episodes) == 5000
    assert len({e.key for e in res.episodes}) == 5000
    assert res.episodes[-1].number == 1 and res.episodes[0].number == 5000
    assert all(e.guests for e in res.episodes)  # the podcast:person pass lines up with every item
    assert took < 60


def test_empty_200(srv: FeedServer) -> None:
    srv.add_feed("/empty", b"")
    res = poll_one(srv.url("/empty"))
    assert res.status == "error" and only_problem(res).kind == "empty"
    assert res.etag is None  # validators of an unusable body are not handed back


def test_html_page(srv: FeedServer) -> None:
    srv.add_html("/", html_page("/podcast/feed.xml"))
    res = poll_one(srv.url("/"))
    assert res.status == "error"
    p = only_problem(res)
    assert p.kind == "not-a-feed" and "HTML page" in p.message
    assert srv.url("/podcast/feed.xml") in p.message  # the feed link the page points to


def test_invalid_xml(srv: FeedServer) -> None:
    srv.add_feed("/bad", "<rss><channel><title>x</title><item><title>a</tit></item>")
    res = poll_one(srv.url("/bad"))
    assert res.status == "error" and res.error == "invalid XML"
    p = only_problem(res)
    assert p.kind == "xml" and "not valid XML" in p.message and "mismatched tag" in p.message


def test_bozo_feed_with_items_is_read_with_a_warning(srv: FeedServer) -> None:
    body = make_feed_xml(3)
    cut = body[: body.rfind(b"</item>") + len(b"</item>")]  # truncated: no closing tags
    srv.add_feed("/cut", cut)
    res = poll_one(srv.url("/cut"))
    assert res.status == "ok" and len(res.episodes) == 3
    assert [p.severity for p in res.problems] == ["warning"]
    assert "could still be read" in res.problems[0].message
    assert all(e.guests for e in res.episodes)


def test_json_is_not_a_feed(srv: FeedServer) -> None:
    srv.add_feed(
        "/feed.json",
        b'{"version": "https://jsonfeed.org/version/1.1"}',
        content_type="application/json",
    )
    res = poll_one(srv.url("/feed.json"))
    assert res.status == "error" and only_problem(res).kind == "not-a-feed"
    assert "JSON" in only_problem(res).message


def test_valid_feed_without_items_is_ok_with_warning(srv: FeedServer) -> None:
    srv.add_feed("/none", make_feed_xml(0))
    res = poll_one(srv.url("/none"))
    assert res.status == "ok" and res.episodes == []
    assert [p.kind for p in res.problems] == ["empty-feed"]


@pytest.mark.parametrize(
    ("raw", "secs"),
    [("1:02:03", 3723), ("62:03", 3723), ("3723", 3723), ("3723.6", 3723), (" 45 ", 45),
     ("", None), ("abc", None), ("1:2:3:4", None), (None, None), ("-5", None)],
)  # fmt: skip
def test_parse_itunes_duration(raw: str | None, secs: int | None) -> None:
    assert parse_itunes_duration(raw) == secs


def test_html_to_text() -> None:
    assert html_to_text("<p>a</p><p>b<br>c</p>") == "a b c"
    assert html_to_text("w<b>or</b>d &amp; <style>x{}</style>more\n\n  text") == "word & more text"
    assert html_to_text("") == ""


def test_mojibake_repaired_and_any_podcast_prefix() -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:pod="https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
  xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>x</title>
<item><guid>m1</guid><title>Filipe N\u221a\u00a9vola \u00fc\u00ec\u00d1</title>
<description>Caf\u00c3\u00a9 talk</description>
<content:encoded><![CDATA[<p>Caf\u00c3\u00a9 notes</p>]]></content:encoded>
<pod:person role="guest">Jos\u00c3\u00a9</pod:person></item>
</channel></rss>""".encode()
    res = parse_feed(body, "https://h.example/feed")
    assert res.ok, res.problems
    [ep] = res.episodes
    assert ep.title == "Filipe Névola 📄"
    assert ep.description == "Café talk"
    assert ep.show_notes_html == "<p>Café notes</p>"
    assert [g.name for g in ep.guests] == ["José"]
