"""Text fields are plain text from every source to every output: `R&D` is stored as `R&D`,
escaped exactly once in the feed XML, written as is in the JSON chapters and announcements.

Real Jekyll files and a real remote feed on 127.0.0.1, a real pass into a real store, the
feed parsed back with lxml, announcements rendered with the shipped templates."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from sqlmodel import select

from syndicator.announce.render import Renderer
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode
from tests.builders import partner_feed
from tests.conftest import EXAMPLE_SITE, make_settings
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "psc": "http://podlove.org/simple-chapters",
}
# What a person wrote, and the plain text every output must carry (markup is never text).
TITLE = 'R&D <b>bold</b> "quotes" Tom & Jerry\'s'
TITLE_TEXT = 'R&D bold "quotes" Tom & Jerry\'s'
GUEST = "Tom & Jerry's <b>Ann</b>"
GUEST_TEXT = "Tom & Jerry's Ann"
CHAPTERS = [(0, "R&D"), (60, '"quotes" & <b>more</b>'), (120, "Tom & Jerry's")]
CHAPTERS_TEXT = [(0, "R&D"), (60, '"quotes" & more'), (120, "Tom & Jerry's")]

POST = f"""---
mp3_bytes: "1000"
mp3_duration: "10:00"
category: podcast
title: {json.dumps(TITLE)}
description: {json.dumps(TITLE)}
guest: {json.dumps(GUEST)}
---

Notes about R&D.

## Topics

- 0:00 -- R&D
- 1:00 -- "quotes" &amp; <b>more</b>
- 2:00 -- Tom & Jerry's
"""


REMOTE = partner_feed(
    title=TITLE, description=f"<p>{TITLE}</p>", guest=GUEST,
    chapters=[(str(s), t) for s, t in CHAPTERS],
)  # fmt: skip


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        s.add_feed("/feed.xml", REMOTE)
        yield s


def test_text_is_plain_and_escaped_once_from_every_source(
    tmp_path: Path, db_url: str, srv: FeedServer
) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, site)
    (site / "_posts/podcast/2026-11-27-8-r-and-d.md").write_text(POST, encoding="utf-8")
    settings = make_settings(
        tmp_path, db_url,
        sources=[
            {"name": "episodes", "type": "jekyll", "path": str(site),
             "episode_url": "{site.url}/podcast/{slug}",
             "enclosure_url": "{site.mp3_url_path}{number}.mp3",
             "guid": "{site.url}/podcast/{slug}"},
            {"name": "partner", "type": "feed", "url": srv.url("/feed.xml"), "timeout": "2s"},
        ],
        feeds=[{"name": "main", "path": "public/feed.xml"}],
    )  # fmt: skip
    run_once(settings, now=NOW)

    # the store: plain text, as the person meant it
    with session(upgrade(db_url)) as s:
        rows = s.exec(select(Episode).where(Episode.title == TITLE_TEXT)).all()
    assert sorted(r.source for r in rows) == ["episodes", "partner"]
    for row in rows:
        assert row.description == TITLE_TEXT
        assert [g["name"] for g in row.guests] == [GUEST_TEXT]
        assert [(c["start"], c["title"]) for c in row.chapters] == CHAPTERS_TEXT

    # the feed: escaped once by the XML writer, so parsing it back gives the text again
    raw = (tmp_path / "public/feed.xml").read_bytes()
    assert b"&amp;amp;" not in raw and b"&amp;lt;" not in raw
    root = etree.fromstring(raw)
    items = [i for i in root.iter("item") if i.findtext("title") == TITLE_TEXT]
    assert len(items) == 2
    for item in items:
        assert [p.text for p in item.findall("podcast:person", NS)] == [GUEST_TEXT]
        psc = item.find("psc:chapters", NS)
        assert [c.get("title") for c in psc] == [t for _, t in CHAPTERS_TEXT]
        name = item.find("podcast:chapters", NS).get("url").rsplit("/", 1)[1]
        doc = json.loads((tmp_path / "public/chapters" / name).read_bytes())
        assert doc["title"] == TITLE_TEXT
        assert [(c["startTime"], c["title"]) for c in doc["chapters"]] == CHAPTERS_TEXT

    # the announcements: plain text, nothing escaped
    renderer = Renderer(settings)
    for row in rows:
        for kind in ("twitter", "mastodon", "bluesky", "apprise"):
            text = renderer.render(row, ChannelConfig(name=kind, type=kind)).text  # type: ignore[arg-type]
            assert TITLE_TEXT in text, (kind, text)
            assert "&amp;" not in text and "<b>" not in text
