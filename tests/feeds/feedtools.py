"""Helpers shared by the feed tests (tests/feeds/test_feeds_*.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from syndicator.config import FeedSourceConfig, FetchConfig
from syndicator.sources.base import PollResult
from syndicator.sources.feeds.poll import PollRequest, poll_feeds_sync

TIMEOUT = timedelta(seconds=0.5)
FEEDS = Path(__file__).parent  # the fixture feeds live beside these tests


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
