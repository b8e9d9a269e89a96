"""Remote feed polling against a real HTTP server on 127.0.0.1 (tests/feedserver.py)."""

from __future__ import annotations

import asyncio
import codecs
import io
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicator.config import FeedSourceConfig, FetchConfig
from syndicator.retry_after import parse_retry_after
from syndicator.sources.base import PollResult
from syndicator.sources.feeds.fetch import DEFAULT_USER_AGENT
from syndicator.sources.feeds.parse import parse_feed, parse_itunes_duration, title_from_url
from syndicator.sources.feeds.poll import PollRequest, PollStats, poll_feeds, poll_feeds_sync
from syndicator.sources.feeds.safety import ENTITY_REFUSAL, declares_entities
from syndicator.textutil import html_to_text

try:
    from tests.feedserver import (
        FeedServer,
        billion_laughs_xml,
        html_page,
        make_feed_xml,
        xxe_xml,
    )
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from feedserver import (  # type: ignore[no-redef]
        FeedServer,
        billion_laughs_xml,
        html_page,
        make_feed_xml,
        xxe_xml,
    )

TIMEOUT = timedelta(seconds=0.5)
FEEDS = Path(__file__).parent / "feeds"


@pytest.fixture
def srv():
    with FeedServer() as server:
        yield server


def src(url: str, name: str = "show", **kw) -> FeedSourceConfig:
    kw.setdefault("timeout", TIMEOUT)
    return FeedSourceConfig(type="feed", name=name, url=url, **kw)


def poll_one(url: str, *, fetch: FetchConfig | None = None, **kw) -> PollResult:
    req_kw = {k: kw.pop(k) for k in ("etag", "last_modified") if k in kw}
    [res] = poll_feeds_sync(
        [PollRequest(src(url, **kw), url, **req_kw)], fetch or FetchConfig(), parse_in="loop"
    )
    return res


def only_problem(res: PollResult):
    errors = [p for p in res.problems if p.severity == "error"]
    assert len(errors) == 1, res.problems
    return errors[0]


ITEMS_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
  xmlns:podcast="https://podcastindex.org/namespace/1.0"
  xmlns:media="http://search.yahoo.com/mrss/"
  xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Variants</title><link>https://show.example</link><description>d</description>
<item><title>Only a link</title><link>/episodes/link-only</link>
  <pubDate>Sat, 02 Mar 2024 10:00:00</pubDate>
  <itunes:duration>62:03</itunes:duration><itunes:explicit>yes</itunes:explicit>
  <itunes:episodeType>trailer</itunes:episodeType>
  <media:thumbnail url="https://cdn.example/thumb.jpg"/>
  <description>&lt;script&gt;alert(1)&lt;/script&gt;&lt;p&gt;First&lt;/p&gt;&lt;p&gt;second
     &amp;amp;   spaced&lt;/p&gt;</description></item>
<item><title>Only an enclosure</title>
  <enclosure url="https://cdn.example/a.mp3" length="abc" type="audio/x-m4a"/>
  <itunes:duration>3723</itunes:duration><itunes:explicit>clean</itunes:explicit>
  <podcast:transcript url="https://cdn.example/a.srt" type="application/x-subrip"/>
  <podcast:transcript url="https://cdn.example/a.vtt" type="text/vtt"/>
  <podcast:person role="Guest"
    href="https://guest.example">  Filipe N\u221a\u00a9vola </podcast:person>
  <podcast:person group="cast">Default Is Host</podcast:person>
</item>
<item><title>Nothing to key on</title><description>no guid, link or enclosure</description></item>
<item><title>Dup A</title><guid>dup</guid><itunes:duration>bad</itunes:duration></item>
<item><title>Dup B</title><guid>dup</guid></item>
<item><title type="html">&lt;b&gt;Bold&lt;/b&gt; title</title><guid>html-title</guid>
  <content:encoded><![CDATA[<p onclick="x()">Notes <a href="/rel">rel</a></p>
    <script>bad()</script>]]></content:encoded>
</item>
</channel></rss>
"""


# ---- mapping ------------------------------------------------------------------------------


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


# ---- conditional GET, redirects, statuses ---------------------------------------------------


def test_conditional_get_round_trip(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(2))
    url = srv.url("/feed.xml")
    first = poll_one(url)
    assert first.status == "ok" and first.etag and first.last_modified
    sent = srv.requests("/feed.xml")[0].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent
    assert sent["user-agent"] == DEFAULT_USER_AGENT

    st = PollStats()
    [again] = poll_feeds_sync(
        [PollRequest(src(url), url, first.etag, first.last_modified)], FetchConfig(), stats=st
    )
    req = srv.requests("/feed.xml")[1]
    assert req.headers["if-none-match"] == first.etag
    assert req.headers["if-modified-since"] == first.last_modified
    assert req.status == 304
    assert again.status == "not-modified" and again.http_status == 304
    assert again.episodes == [] and again.problems == []
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    assert st.not_modified == 1 and st.parse_seconds == 0.0  # a 304 costs no parse

    # a changed feed is fetched again in full
    srv.add_feed("/feed.xml", make_feed_xml(3))
    third = poll_one(url, etag=first.etag, last_modified=first.last_modified)
    assert third.status == "ok" and len(third.episodes) == 3 and third.etag != first.etag


def test_last_modified_alone_gives_304(srv: FeedServer) -> None:
    srv.add_feed("/lm.xml", make_feed_xml(1), etag=None)
    url = srv.url("/lm.xml")
    first = poll_one(url)
    assert first.etag is None and first.last_modified
    again = poll_one(url, last_modified=first.last_modified)
    assert again.status == "not-modified"
    assert srv.requests("/lm.xml")[1].headers["if-modified-since"] == first.last_modified


def test_custom_user_agent(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    poll_one(srv.url("/feed.xml"), fetch=FetchConfig(user_agent="my-bot/2 (+https://me.example)"))
    assert srv.requests("/feed.xml")[0].headers["user-agent"] == "my-bot/2 (+https://me.example)"


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_reports_new_url(srv: FeedServer, code: int) -> None:
    srv.add_feed("/new.xml", make_feed_xml(2))
    srv.add_redirect("/old.xml", "/new.xml", code)  # relative Location
    res = poll_one(srv.url("/old.xml"))
    assert res.status == "ok" and len(res.episodes) == 2
    assert res.url == srv.url("/old.xml")
    assert res.new_url == srv.url("/new.xml")


def test_temporary_redirect_is_followed_but_not_reported(srv: FeedServer) -> None:
    srv.add_feed("/new.xml", make_feed_xml(1))
    srv.add_redirect("/tmp.xml", srv.url("/new.xml"), 302)
    res = poll_one(srv.url("/tmp.xml"))
    assert res.status == "ok" and res.new_url is None
    # a permanent hop then a temporary one: only the permanent part is a new home
    srv.add_redirect("/moved.xml", srv.url("/tmp.xml"), 301)
    res = poll_one(srv.url("/moved.xml"))
    assert res.status == "ok" and res.new_url == srv.url("/tmp.xml")


def test_problem_after_redirect_is_filed_under_the_polled_url(srv: FeedServer) -> None:
    srv.add_status("/dead", 500)
    srv.add_redirect("/feed", "/dead", 302)
    res = poll_one(srv.url("/feed"))
    p = only_problem(res)
    assert p.location == srv.url("/feed") and res.url == srv.url("/feed")
    assert f"redirected to {srv.url('/dead')}" in p.message


def test_redirect_loop_is_an_error(srv: FeedServer) -> None:
    srv.add_redirect("/a", "/b", 302)
    srv.add_redirect("/b", "/a", 302)
    res = poll_one(srv.url("/a"))
    assert res.status == "error" and only_problem(res).kind == "redirect"
    assert "loop" in only_problem(res).message


def test_gone(srv: FeedServer) -> None:
    srv.add_status("/gone.xml", 410)
    res = poll_one(srv.url("/gone.xml"))
    assert res.status == "gone" and res.http_status == 410
    p = only_problem(res)
    assert p.kind == "gone" and "disabled" in p.message and p.location == srv.url("/gone.xml")


def test_429_retry_after_seconds(srv: FeedServer) -> None:
    srv.add_status("/busy", 429, retry_after=120)
    res = poll_one(srv.url("/busy"))
    assert res.status == "error" and res.http_status == 429
    assert res.retry_after == 120
    assert only_problem(res).kind == "rate-limited"


def test_503_retry_after_http_date(srv: FeedServer) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    import email.utils

    srv.add_status("/down", 503, retry_after=email.utils.format_datetime(when, usegmt=True))
    res = poll_one(srv.url("/down"))
    assert res.status == "error" and res.http_status == 503
    assert res.retry_after is not None and 590 <= res.retry_after <= 600
    assert only_problem(res).kind == "unavailable"


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Mon, 01 Jan 2024 12:01:00 GMT", now) == 60
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e400", None),
        ("-5", None),
        ("NaN", None),
        ("inf", None),
        ("9" * 40, 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 86400.0),
        ("Fri, 31 Dec 9999 23:59:59 -2359", 86400.0),
        ("Mon, 01 Jan 0001 00:00:00 +2359", 0.0),
        ("x" * 10_000, None),
    ],
)
def test_parse_retry_after_absurd_values(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, datetime(2024, 1, 1, 12, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("code", "words"), [(500, "HTTP 500"), (404, "not found"), (403, "denied")]
)
def test_http_errors(srv: FeedServer, code: int, words: str) -> None:
    srv.add_status("/x", code, body="<html>oops</html>", content_type="text/html")
    res = poll_one(srv.url("/x"))
    assert res.status == "error" and res.http_status == code and res.error == f"HTTP {code}"
    p = only_problem(res)
    assert p.location == srv.url("/x") and words in p.message
    assert res.etag is None and res.episodes == []


def test_hang_times_out(srv: FeedServer) -> None:
    srv.add_hang("/hang", seconds=5)
    t = time.monotonic()
    res = poll_one(srv.url("/hang"))
    took = time.monotonic() - t
    assert res.status == "error" and only_problem(res).kind == "timeout"
    assert "0.5 s" in only_problem(res).message
    assert took < 2.5


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = poll_one(f"http://127.0.0.1:{port}/feed.xml")
    assert res.status == "error" and res.http_status is None
    p = only_problem(res)
    assert p.kind == "connect" and "could not connect" in p.message


def test_not_http_url() -> None:
    res = poll_one("ftp://example.com/feed.xml")
    assert res.status == "error" and only_problem(res).kind == "url"


def test_byte_cap(srv: FeedServer) -> None:
    body = make_feed_xml(20)
    srv.add_feed("/declared", body)
    srv.add_feed("/streamed", body, chunked=True)
    for path in ("/declared", "/streamed"):
        res = poll_one(srv.url(path), max_bytes=10_000)
        assert res.status == "error", path
        assert only_problem(res).kind == "too-large"
        assert "max_bytes" in only_problem(res).message
    assert poll_one(srv.url("/streamed"), max_bytes=len(body)).status == "ok"


# ---- bad bodies -------------------------------------------------------------------------------


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


def test_body_naming_a_local_file_is_not_opened(srv: FeedServer) -> None:
    srv.add_feed("/path", b"/etc/passwd")
    res = poll_one(srv.url("/path"))
    assert res.status == "error"
    assert "root:" not in repr(res)


def test_xml_bomb_refused_fast(srv: FeedServer) -> None:
    srv.add_feed("/bomb", billion_laughs_xml())
    t = time.monotonic()
    res = poll_one(srv.url("/bomb"))
    assert time.monotonic() - t < 2
    assert res.status == "error" and res.episodes == []
    p = only_problem(res)
    assert p.kind == "xml-entities" and ENTITY_REFUSAL in p.message
    assert "lollol" not in repr(res)


def test_xxe_refused_and_file_never_read(srv: FeedServer) -> None:
    srv.add_feed("/xxe", xxe_xml("/etc/passwd"))
    res = poll_one(srv.url("/xxe"))
    assert res.status == "error" and only_problem(res).kind == "xml-entities"
    assert "root:" not in repr(res)


def test_xxe_libraries_do_not_resolve_either() -> None:
    # defence in depth: were the pre-check bypassed, neither parser reads the file
    import feedparser

    from syndicator.sources.feeds.podcast import podcast_ns_items as _podcast_ns_items

    body = xxe_xml("/etc/passwd").replace(
        b"<rss ", b'<rss xmlns:podcast="https://podcastindex.org/namespace/1.0" '
    )
    d = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    assert "root:" not in repr(d)
    items, error = _podcast_ns_items(body)
    assert items == [] and error and "root:" not in repr(items)
    assert not parse_feed(body, "http://h/f").ok


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'<?xml version="1.0"?><rss/>', False),
        (b"<!DOCTYPE html><html></html>", False),
        (
            b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS'
            b' 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss/>',
            False,
        ),
        (b"<!DOCTYPE r [<!ELEMENT r ANY>]><r/>", False),
        (b'<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>', True),
        (b'<?xml version="1.0"?>\n<!-- hi --><?pi x?>\n<!doctype r [<!entity a "b">]><r/>', True),
        (b'<!DOCTYPE r [<!ATTLIST r x "]>"><!ENTITY % p SYSTEM "file:///etc/passwd">]><r/>', True),
        (b'<!DOCTYPE r SYSTEM "x[" [<!ENTITY a "b">]><r/>', True),
        (codecs.BOM_UTF8 + b'<!DOCTYPE r [<!ENTITY a "b">]><r/>', True),
        ('<!DOCTYPE r [<!ENTITY a "b">]><r/>'.encode("utf-16"), True),
        ('<!DOCTYPE r [<!ENTITY a "b">]><r/>'.encode("utf-16-be"), True),
        (b"<rss><!-- <!ENTITY in a comment, after the root --></rss>", False),
    ],
)
def test_declares_entities(body: bytes, refused: bool) -> None:
    assert declares_entities(body) is refused


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


# ---- many feeds ----------------------------------------------------------------------------


def test_per_host_and_global_caps_observed_at_server(srv: FeedServer) -> None:
    for i in range(8):
        srv.add_feed(f"/slow/{i}.xml", make_feed_xml(1, seed=i), delay=0.15)
    reqs = [PollRequest(src(srv.url(f"/slow/{i}.xml"), timeout="5s")) for i in range(8)]
    reqs += [
        PollRequest(src(srv.url(f"/slow/{i}.xml", host="localhost"), timeout="5s"))
        for i in range(8)
    ]
    res = poll_feeds_sync(reqs, FetchConfig(max_per_host=2, max_connections=10))
    assert all(r.status == "ok" for r in res), [r.problems for r in res if r.status != "ok"]
    assert srv.max_in_flight == {"127.0.0.1": 2, "localhost": 2}
    assert srv.max_in_flight_total == 4  # two hosts at two each: the cap is per host

    srv.reset_log()
    res = poll_feeds_sync(reqs, FetchConfig(max_per_host=4, max_connections=3))
    assert all(r.status == "ok" for r in res)
    assert srv.max_in_flight_total == 3  # the overall cap holds across hosts


def test_mixed_batch_order_progress_and_isolation(srv: FeedServer) -> None:
    srv.add_feed("/good.xml", make_feed_xml(2))
    srv.add_status("/broken", 500)
    srv.add_feed("/bomb", billion_laughs_xml())
    srv.add_status("/gone", 410)
    paths = ["/good.xml", "/broken", "/bomb", "/gone", "/good.xml"]
    seen: list[str] = []
    reqs = [PollRequest(src(srv.url(p), name=f"s{i}")) for i, p in enumerate(paths)]
    res = poll_feeds_sync(reqs, FetchConfig(), progress=lambda r: seen.append(r.status))
    assert [r.url for r in res] == [srv.url(p) for p in paths]
    assert [r.status for r in res] == ["ok", "error", "error", "gone", "ok"]
    assert sorted(seen) == sorted(r.status for r in res)


def test_process_pool_parsing(srv: FeedServer) -> None:
    for i in range(3):
        srv.add_feed(f"/p{i}.xml", make_feed_xml(5, seed=i))
    srv.add_feed("/bomb", billion_laughs_xml())
    reqs = [PollRequest(src(srv.url(f"/p{i}.xml"), timeout="10s")) for i in range(3)]
    reqs.append(PollRequest(src(srv.url("/bomb"), timeout="10s")))
    st = PollStats()
    res = poll_feeds_sync(reqs, FetchConfig(), parse_in="process", parse_workers=2, stats=st)
    assert [len(r.episodes) for r in res] == [5, 5, 5, 0]
    assert res[0].episodes[0].guests and res[0].episodes[0].chapters
    assert res[3].problems[0].kind == "xml-entities"
    assert st.parse_mode == "process x2" and st.parse_seconds > 0 and st.ok == 3


def test_async_api_and_sync_wrapper_inside_a_loop(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    req = PollRequest(src(srv.url("/feed.xml")))

    async def main() -> tuple[list[PollResult], list[PollResult]]:
        a = await poll_feeds([req], FetchConfig())
        b = poll_feeds_sync([req], FetchConfig())  # runs in a helper thread
        return a, b

    a, b = asyncio.run(main())
    assert a[0].status == b[0].status == "ok"


# ---- helpers -------------------------------------------------------------------------------


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


def test_feedserver_stops_promptly_during_a_hang() -> None:
    server = FeedServer().start()
    server.add_hang("/hang", seconds=30)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"GET /hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 5
        while server.count("/hang") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        t = time.monotonic()
        server.stop()
        assert time.monotonic() - t < 2
        assert conn.recv(100) == b""  # the hanging request's connection was dropped


def test_insane_validators_are_not_sent(srv: FeedServer) -> None:
    srv.add_feed("/feed.xml", make_feed_xml(1))
    res = poll_one(srv.url("/feed.xml"), etag='"x"\r\nX-Evil: 1', last_modified="Mon\n")
    assert res.status == "ok"
    sent = srv.requests("/feed.xml")[0].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent and "x-evil" not in sent


def test_compressed_feeds_are_decoded(srv: FeedServer) -> None:
    import zlib

    import zstandard

    from tests.feedserver import Route

    body = make_feed_xml(120)  # decodes to more than one 64 KiB piece

    def gz(data: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()

    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    cases = {
        "/gzip": ("gzip", gz(body)),
        "/deflate": ("deflate", zlib.compress(body)),
        "/raw-deflate": ("deflate", raw.compress(body) + raw.flush()),
        "/zstd": ("zstd", zstandard.ZstdCompressor().compress(body)),
        "/gzip-zstd": ("gzip, zstd", zstandard.ZstdCompressor().compress(gz(body))),
        "/identity": ("identity", body),
    }
    for path, (encoding, data) in cases.items():
        srv.add(path, Route(body=data, headers={"Content-Encoding": encoding}))
        res = poll_one(srv.url(path))
        assert res.status == "ok", (path, res.problems)
        assert len(res.episodes) == 120, path
    broken = gz(body)[:10] + b"\xff" * 200  # a deflate block of the reserved type 3
    srv.add("/broken", Route(body=broken, headers={"Content-Encoding": "gzip"}))
    res = poll_one(srv.url("/broken"))
    assert res.status == "error" and only_problem(res).kind == "network"
    assert "could not be decoded" in only_problem(res).message
