"""Control characters and markup in text fields (#16): a guest named
`<script>x</script>Ann\\x1b[31m` reaches announcements, the CLI tables, `episodes --json` and
`podcast:person` as `Ann`, from a Jekyll post and from a remote feed alike."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from syndicator.sources.text import clean_text
from tests.builders import feed_source, partner_feed
from tests.conftest import EXAMPLE_SITE
from tests.feedserver import FeedServer
from tests.hostile.conftest import run_cli, site_config

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
PSC_NS = "http://podlove.org/simple-chapters"
# Terminal escapes (colour, window title, cursor moves), BEL, NUL, DEL and C1 controls.
NASTY = ("\x1b[31m", "\x1b]0;pwned\x07", "\x1b[2J", "\x07", "\x00", "\x7f", "\x9b", "\x85")


def _bad(text: str) -> list[str]:
    """What must never be printed or published: control characters and tags."""
    found = [repr(c) for c in "\x1b\x07\x00\x7f\x9b\x9d\x85\x08" if c in text]
    return found + [t for t in ("<script", "</script", "<b>", "<img", "pwned") if t in text]


def _all_text(value: object) -> str:
    """Every string inside parsed JSON, joined: what a reader of the values would see."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_all_text(k) + " " + _all_text(v) for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_all_text(v) for v in value)
    return ""


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("<script>x</script>Ann\x1b[31m", "Ann"),
        ("Ann\x1b]0;pwned\x07 Lee", "Ann Lee"),
        ("<b>Ann</b>\x07\x00 <img src=x onerror=alert(1)>Lee", "Ann Lee"),
        ("Ann\x9b31mLee\x85", "AnnLee"),
        ("<style>p{}</style><!-- c -->Ann<br>Lee", "Ann Lee"),
        ('Tom & Jerry\'s "a < b" R&D', 'Tom & Jerry\'s "a < b" R&D'),
        ("Zoë\tN\u00e9vola 🚀", "Zoë Névola 🚀"),
    ],
)
def test_clean_text(raw: str, text: str) -> None:
    assert clean_text(raw) == text
    assert clean_text(text) == text  # idempotent


# YAML double quotes spell the control characters as escapes: "\e" is ESC, "\a" is BEL.
POST = r"""---
mp3_bytes: "1000"
mp3_duration: "10:00"
category: podcast
title: "<b>Hostile</b> titles\e[2J\a are text"
description: "A description\e]0;pwned\a with <script>alert(1)</script>escapes"
guest: "<script>x</script>Ann\e[31m"
guest_twitter: "ann\e[31m"
tags: ["ok", "<b>bad</b>\a"]
---

Notes.

## Topics

- 0:00 -- Hello <script>alert(1)</script>there
- 1:00 -- Colours{ESC}[31m are{BEL} gone
"""

REMOTE = partner_feed(
    title="<script>x</script>Remote <b>hostile</b> title",
    description="<p>Hi<script>alert(1)</script> there</p>",
    guest="<script>x</script>Bo<b>b</b>",
    chapters=[("00:00:00", "<b>Intro</b>")],
)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        s.add_feed("/feed.xml", REMOTE)
        yield s


def test_control_characters_and_markup_never_reach_any_output(
    tmp_path: Path, srv: FeedServer
) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, site)
    (site / "_posts/podcast/2026-11-27-8-hostile.md").write_text(
        POST.replace("{ESC}", "\x1b").replace("{BEL}", "\a"), encoding="utf-8"
    )
    cfg = site_config(
        tmp_path,
        site,
        extra=feed_source(srv.url("/feed.xml"), keys='timeout = "2s"')
        + """
[[channels]]
name = "masto"
type = "mastodon"
instance = "https://mastodon.example"
dry_run = true
[[channels]]
name = "chat"
type = "apprise"
dry_run = true
[[feeds]]
name = "main"
path = "public/feed.xml"
""",
    )
    ran = run_cli(cfg, "run-once", "--now", "2026-11-28T12:00:00Z", "--force")
    assert ran.returncode == 0, ran.stdout + ran.stderr

    listed = run_cli(cfg, "episodes", "--json")
    assert listed.returncode == 0, listed.stderr
    eps = {e["source"]: e for e in json.loads(listed.stdout) if e.get("number") in (8, None)}
    local, remote = eps["episodes"], eps["partner"]
    assert local["title"] == "Hostile titles are text"
    assert local["description"] == "A description with escapes"
    assert [g["name"] for g in local["guests"]] == ["Ann"]
    assert [c["title"] for c in local["chapters"]] == ["Hello there", "Colours are gone"]
    assert remote["title"] == "Remote hostile title"
    assert [g["name"] for g in remote["guests"]] == ["Bob"]
    assert [c["title"] for c in remote["chapters"]] == ["Intro"]
    assert _bad(_all_text(json.loads(listed.stdout))) == []  # JSON spells ESC as \\u001b

    table = run_cli(cfg, "episodes", env={"COLUMNS": "400"})  # one line per row
    assert table.returncode == 0 and "Hostile titles are text" in " ".join(table.stdout.split())
    assert _bad(table.stdout) == []

    shown = run_cli(cfg, "preview", "--all", "--json")  # the announcements as rendered
    assert shown.returncode == 0, shown.stdout + shown.stderr
    texts = _all_text(json.loads(shown.stdout))
    assert "Hostile titles are text" in texts and "Remote hostile title" in texts
    assert _bad(texts) == []

    raw = (tmp_path / "public/feed.xml").read_bytes()
    assert _bad(raw.decode()) == []
    root = etree.fromstring(raw)
    persons = sorted(p.text for p in root.iter(f"{{{PODCAST_NS}}}person"))
    assert "Ann" in persons and "Bob" in persons
    titles = [c.get("title") for c in root.iter(f"{{{PSC_NS}}}chapter")]
    assert {"Hello there", "Colours are gone", "Intro"} <= set(titles)


def test_a_huge_topics_list_is_capped_with_a_warning(tmp_path: Path) -> None:
    from syndicator.config import JekyllSourceConfig
    from syndicator.sources.jekyll import scan
    from syndicator.sources.text import MAX_CHAPTERS

    site = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, site)
    rel = "_posts/podcast/2026-11-27-8-many-chapters.md"
    lines = "".join(
        f"- {i // 3600}:{i // 60 % 60:02d}:{i % 60:02d} -- Topic **{i}** &amp; more\n"
        for i in range(0, 20_000, 4)
    )
    (site / rel).write_text(
        '---\ntitle: "Many"\ncategory: podcast\n---\n\n## Topics\n\n' + lines, encoding="utf-8"
    )
    cfg = JekyllSourceConfig.model_validate(
        {"type": "jekyll", "name": "episodes", "path": site, "guid": "{site.url}/{slug}"}
    )
    result = scan(cfg, {})
    [f] = [f for f in result.files if f.path == rel]
    assert f.status == "parsed" and f.episode is not None
    assert len(f.episode.chapters) == MAX_CHAPTERS
    assert f.episode.chapters[-1].title == f"Topic {(MAX_CHAPTERS - 1) * 4} & more"
    [p] = [p for p in result.problems if p.location == rel]
    assert (p.kind, p.severity, p.line) == ("chapter-count", "warning", 8 + MAX_CHAPTERS)
    assert "5,000 chapter lines" in p.message


def test_a_huge_chapter_title_is_cut_not_parsed_whole() -> None:
    import time

    from syndicator.sources.text import MAX_CHAPTER_TITLE, read_chapters

    md = "## Topics\n\n- 0:00 -- " + "<!--<b>**word** " * 200_000 + "\n- 1:00 -- Next\n"
    started = time.perf_counter()
    chapters, problems = read_chapters(md, "post.md")
    assert time.perf_counter() - started < 10
    assert [c.start for c in chapters] == [0, 60] and not problems
    assert chapters[0].title.endswith("…") and len(chapters[0].title) <= MAX_CHAPTER_TITLE + 2
