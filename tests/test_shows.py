"""Each remote feed's show through a real pass: stored, shown, followed when it moves, a
locked feed, a second source of the same show, a config source winning a name clash, and
`{{ show.title }}` in an announcement."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import select

from syndicator.announce.render import Renderer
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.sourcelist import add, listing
from syndicator.store import shows, source_rows
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, Problem, Source
from syndicator.store.views import status_dict
from tests.conftest import make_settings
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def show_feed(
    title: str = "Night Radio",
    *,
    guid: str = "917393e3-1b1e-5cef-ace4-edaa54e1f810",
    new_feed_url: str = "",
    locked: str = "",
    items: int = 2,
) -> str:
    """A Podcasting 2.0 feed with every channel element the show keeps."""
    e = html.escape
    moved = f"<itunes:new-feed-url>{e(new_feed_url)}</itunes:new-feed-url>" if new_feed_url else ""
    lock = (
        f'<podcast:locked owner="owner@night.example">{locked}</podcast:locked>' if locked else ""
    )
    body = "".join(
        f"<item><title>Night {i}</title><guid>{e(title)}-{i}</guid>"
        f"<link>https://night.example/{i}</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(days=i))}</pubDate>"
        f'<enclosure url="https://night.example/{i}.mp3" length="100" type="audio/mpeg"/></item>'
        for i in range(1, items + 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
        ' xmlns:podcast="https://podcastindex.org/namespace/1.0">\n<channel>\n'
        f"<title>{e(title)}</title>\n<link>https://night.example/</link>\n"
        "<description>Music &lt;b&gt;after&lt;/b&gt; dark.</description>\n"
        "<language>en-gb</language>\n<itunes:author>DJ Owl</itunes:author>\n"
        "<itunes:owner><itunes:name>Owl Media</itunes:name>"
        "<itunes:email>owl@night.example</itunes:email></itunes:owner>\n"
        '<itunes:image href="https://night.example/art.jpg"/>\n'
        '<itunes:category text="Music"><itunes:category text="Music Commentary"/>'
        "</itunes:category>\n"
        '<itunes:category text="Arts"/>\n'
        f"<podcast:guid>{guid}</podcast:guid>\n{moved}{lock}"
        '<podcast:funding url="https://night.example/support">Support the show</podcast:funding>\n'
        '<podcast:funding url="javascript:alert(1)">Bad</podcast:funding>\n'
        '<podcast:value type="lightning" method="keysend" suggested="0.00000005000">'
        '<podcast:valueRecipient name="Owl" type="node" address="02d5c1bf8b940dc9ca" split="99"/>'
        "</podcast:value>\n<podcast:medium>music</podcast:medium>\n"
        "<lastBuildDate>Thu, 26 Nov 2026 10:00:00 +0000</lastBuildDate>\n"
        f"{body}</channel></rss>"
    )


def _stored(tmp_path: Path, db_url: str, **extra):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, db_url, **extra)
    return settings, upgrade(db_url)


def test_a_stored_source_is_polled_and_its_show_kept(
    tmp_path: Path, db_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/night.xml", show_feed())
    settings, engine = _stored(tmp_path, db_url)
    add(engine, settings, srv.url("/night.xml"), name="night", every=timedelta(hours=1))
    report = run_once(settings, now=NOW)
    assert [(o.name, o.status, o.new) for o in report.sources] == [("night", "ok", 2)]
    with session(engine) as s:
        show = shows.get(s, "night")
        assert s.exec(select(Source).where(Source.name == "night")).one().next_due_at is not None
    assert show is not None
    assert show.title == "Night Radio" and show.description == "Music after dark."
    assert show.link == "https://night.example/" and show.image == "https://night.example/art.jpg"
    assert (show.author, show.owner_name, show.owner_email) == (
        "DJ Owl",
        "Owl Media",
        "owl@night.example",
    )
    assert show.language == "en-gb"
    assert show.categories == ["Music > Music Commentary", "Arts"]
    assert show.podcast_guid == "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    assert show.funding == [{"url": "https://night.example/support", "text": "Support the show"}]
    assert show.value["type"] == "lightning" and show.value["recipients"][0]["split"] == "99"
    assert show.medium == "music" and show.locked is None
    assert show.last_build_date == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    # status --json, sources list --json
    status = status_dict(engine, NOW, timedelta(minutes=5))
    night = next(r for r in status["sources"] if r["name"] == "night")
    assert night["show"]["title"] == "Night Radio" and night["show"]["image"].endswith("art.jpg")
    from io import StringIO

    from rich.console import Console

    from syndicator.report import print_status

    text = StringIO()
    print_status(Console(file=text, width=200), status, UTC)
    assert "Night Radio" in text.getvalue()  # `syndicator status` names the show
    row = next(r for r in listing(engine, settings) if r["name"] == "night")
    assert row["origin"] == "store" and row["show"]["podcast_guid"].startswith("917393e3")
    assert row["show"]["last_build_date"] == "2026-11-26T10:00:00Z" and row["episodes"] == 2


def test_new_feed_url_moves_the_source(tmp_path: Path, db_url: str, srv: FeedServer) -> None:
    srv.add_feed("/old.xml", show_feed(new_feed_url=srv.url("/new.xml")))
    srv.add_feed("/new.xml", show_feed(items=3))
    settings, engine = _stored(tmp_path, db_url)
    add(engine, settings, srv.url("/old.xml"), name="night")
    run_once(settings, now=NOW)
    with session(engine) as s:
        assert source_rows.by_name(s, "night").url == srv.url("/new.xml")  # type: ignore[union-attr]
        src = s.exec(select(Source).where(Source.name == "night")).one()
        notice = s.exec(select(Problem).where(Problem.kind == "new-feed-url")).one()
    assert src.url == srv.url("/new.xml") and notice.severity == "notice"
    assert "moved (itunes:new-feed-url)" in notice.message
    srv.reset_log()
    report = run_once(settings, now=NOW + timedelta(hours=2))
    assert report.sources[0].new == 1
    assert srv.count("/new.xml") == 1 and srv.count("/old.xml") == 0


def test_a_locked_feed_is_kept_as_locked(tmp_path: Path, sqlite_url: str, srv: FeedServer) -> None:
    srv.add_feed("/locked.xml", show_feed(locked="yes"))
    srv.add_feed("/open.xml", show_feed("Open", guid="other-guid", locked="no"))
    settings, engine = _stored(tmp_path, sqlite_url)
    add(engine, settings, srv.url("/locked.xml"), name="locked")
    add(engine, settings, srv.url("/open.xml"), name="open")
    run_once(settings, now=NOW)
    with session(engine) as s:
        locked, unlocked = shows.get(s, "locked"), shows.get(s, "open")
    assert locked is not None and locked.locked is True
    assert locked.locked_owner == "owner@night.example"
    assert unlocked is not None and unlocked.locked is False


def test_the_same_show_twice_is_reported_and_polled_once(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/a.xml", show_feed())
    srv.add_feed("/mirror.xml", show_feed())  # another URL, the same podcast:guid
    srv.add_redirect("/short", srv.url("/a.xml"), status=302)  # the same final URL
    settings, engine = _stored(tmp_path, sqlite_url)
    add(engine, settings, srv.url("/a.xml"), name="a")
    run_once(settings, now=NOW)
    add(engine, settings, srv.url("/mirror.xml"), name="mirror")
    add(engine, settings, srv.url("/short"), name="short")
    run_once(settings, now=NOW + timedelta(hours=1))
    with session(engine) as s:
        enabled = {r.name: r.enabled for r in source_rows.all_rows(s)}
        dupes = {p.source: p for p in s.exec(select(Problem).where(Problem.kind == "duplicate"))}
        count = len(s.exec(select(Episode)).all())
    assert enabled == {"a": True, "mirror": False, "short": False}
    assert "same show as 'a' (same podcast:guid)" in dupes["mirror"].message
    assert "same show as 'a'" in dupes["short"].message and dupes["short"].severity == "warning"
    assert count == 2  # the episodes are stored once
    srv.reset_log()
    run_once(settings, now=NOW + timedelta(hours=3), force_poll=True)
    assert srv.count("/mirror.xml") == 0 and srv.count("/a.xml") == 1


def test_a_config_source_wins_a_name_clash(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    srv.add_feed("/config.xml", show_feed("From config"))
    srv.add_feed("/stored.xml", show_feed("From store", guid="g2"))
    settings, engine = _stored(tmp_path, sqlite_url)
    add(engine, settings, srv.url("/stored.xml"), name="night")
    settings = make_settings(
        tmp_path, sqlite_url,
        sources=[{"name": "night", "type": "feed", "url": srv.url("/config.xml")}],
    )  # fmt: skip
    run_once(settings, now=NOW)
    assert srv.count("/stored.xml") == 0 and srv.count("/config.xml") == 1
    with session(engine) as s:
        clash = s.exec(select(Problem).where(Problem.kind == "name-clash")).one()
        assert shows.get(s, "night").title == "From config"  # type: ignore[union-attr]
    assert clash.severity == "notice" and "the config, which wins" in clash.message
    row = next(r for r in listing(engine, settings) if r["name"] == "night")
    assert row["origin"] == "config" and row["shadowed"] is True


def test_an_announcement_uses_its_show(tmp_path: Path, sqlite_url: str, srv: FeedServer) -> None:
    srv.add_feed("/night.xml", show_feed())
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "showy.j2").write_text(
        "{{ show.title }} by {{ show.author }}: {{ title }} ({{ show.image }})", encoding="utf-8"
    )
    settings, engine = _stored(tmp_path, sqlite_url, announce={"templates": "tpl"})
    add(engine, settings, srv.url("/night.xml"), name="night")
    run_once(settings, now=NOW)
    ch = ChannelConfig(name="hook", type="apprise", url="json://127.0.0.1:9/x", template="showy.j2")
    renderer = Renderer(settings)
    with session(engine) as s:
        ep = s.exec(select(Episode).where(Episode.title == "Night 1")).one()
        text = renderer.render(ep, ch).text
    assert text == "Night Radio by DJ Owl: Night 1 (https://night.example/art.jpg)"
    # an episode not from a remote feed: the podcast's own show
    own = renderer.render(_Plain(), ch).text
    assert own.startswith("Test Show by ") and own.endswith(": Plain ()")


class _Plain:
    title = "Plain"
    source = "episodes"
    url = "https://show.example/plain"


def test_sources_list_json_shape_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "json.md").read_text(encoding="utf-8")
    section = doc.split("## `syndicator sources list --json`", 1)[1].split("\n## ", 1)[0]
    example = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    assert set(example[0]) >= {"name", "origin", "enabled", "show", "every_seconds", "title"}
    assert set(example[0]["show"]) == {*shows.FIELDS, "feed_url", "updated_at"}
    for key in ("origin", "shadowed", "every_seconds", "added_from", "new_feed_url", "locked"):
        assert f"`{key}`" in section or f"`show.{key}`" in section, key


def test_the_daemon_asks_for_due_stored_sources(
    tmp_path: Path, sqlite_url: str, srv: FeedServer
) -> None:
    from syndicator.sourcelist import due_stored, set_enabled

    srv.add_feed("/a.xml", show_feed("A", guid="ga"))
    srv.add_feed("/b.xml", show_feed("B", guid="gb"))
    settings, engine = _stored(tmp_path, sqlite_url)
    add(engine, settings, srv.url("/a.xml"), name="a", every=timedelta(hours=1))
    add(engine, settings, srv.url("/b.xml"), name="b", every=timedelta(hours=4))
    assert due_stored(engine, settings, NOW) == ["a", "b"]  # never polled
    run_once(settings, now=NOW)
    assert due_stored(engine, settings, NOW + timedelta(minutes=30)) == []
    assert due_stored(engine, settings, NOW + timedelta(hours=2)) == ["a"]
    set_enabled(engine, settings, "a", False)
    assert due_stored(engine, settings, NOW + timedelta(hours=5)) == ["b"]
    report = run_once(settings, now=NOW + timedelta(hours=5), sources=["a", "b"])
    assert [(o.name, o.status) for o in report.sources] == [("b", "not-modified")]
