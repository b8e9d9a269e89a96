"""The Jekyll episode source: text helpers, parsing every kind of post, bad input, caching."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicator.config import JekyllSourceConfig
from syndicator.sources.base import FileStamp, ScanResult
from syndicator.sources.jekyll import load_site, scan
from syndicator.sources.text import (
    fix_text,
    markdown_to_html,
    parse_chapters,
    parse_duration_field,
    render_liquid,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "site"
NY = ZoneInfo("America/New_York")

sys.path.insert(0, str(ROOT / "bench"))
import gen_posts  # noqa: E402

WELCOME = "_posts/podcast/2026-03-02-1-welcome-to-shipping-it.md"
PRINT_SHOP = "_posts/podcast/2026-05-11-2-running-a-print-shop-on-django-and-postgresql.md"
TRANSIT = "_posts/podcast/2026-07-20-3-serving-a-nordic-transit-app-from-sqlite-at-the-edge.md"
WITHDRAWN = "_posts/podcast/2026-09-14-4-this-episode-was-withdrawn-at-the-guests-request.md"
INTERVIEW = (
    "_posts/interviews/2026-10-05-5-a-solo-developer-keeps-a-recipe-site-fast-on-a-5-dollar-vps.md"
)
BILLING = "_posts/podcast/2026-11-24-6-billing-for-a-saas-without-losing-sleep.md"
BONUS = "_posts/podcast/2026-11-26-7-bonus-what-we-learned-from-a-year-of-episodes.md"

GOOD_FRONT = """\
---
mp3_bytes: "1000"
mp3_duration: "10:00"
guest: "Test Guest"
category: "podcast"
title: "A Test Episode"
description: A test.
---
"""


def make_cfg(path: Path, **kw: object) -> JekyllSourceConfig:
    data: dict[str, object] = {
        "type": "jekyll",
        "name": "episodes",
        "path": path,
        "episode_url": "{site.url}/podcast/{slug}",
        "enclosure_url": "{site.mp3_url_path}{number}.mp3",
        "guid": "{site.url}/podcast/{slug}",
    }
    data.update(kw)
    return JekyllSourceConfig.model_validate(data)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    dest = tmp_path / "site"
    shutil.copytree(EXAMPLE, dest)
    return dest


def write(site: Path, rel: str, text: str | bytes) -> Path:
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def by_path(result: ScanResult) -> dict[str, object]:
    return {f.path: f for f in result.files}


def episode(result: ScanResult, rel: str):  # type: ignore[no-untyped-def]
    f = by_path(result)[rel]
    assert f.status == "parsed", (f.status, [str(p) for p in result.problems])  # type: ignore[attr-defined]
    return f.episode  # type: ignore[attr-defined]


def errors(result: ScanResult) -> list:  # type: ignore[type-arg]
    return [p for p in result.problems if p.severity == "error"]


# ---------------------------------------------------------------------------
# text.py
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("Filipe N√©vola", "Filipe Névola"),
        ("üìÑ", "📄"),
        ("###### üìÑ References", "###### 📄 References"),
        ("###### \uf8ffüìÑ References", "###### 📄 References"),
        ("‚öôÔ∏è", "⚙️"),
        ("JosÃ© and ZoÃ«", "José and Zoë"),
        ("S√∏ren and Dvo≈ô√°k", "Søren and Dvořák"),
    ],
)
def test_fix_text_repairs_mojibake(broken: str, fixed: str) -> None:
    assert fix_text(broken) == fixed


@pytest.mark.parametrize(
    "good",
    [
        "Hey 👋🏾 I'm Samuel",
        "Anders Hovmöller",
        "Malmö, Göteborg and Århus",
        "“curly quotes” and ligatures ﬁne",
        "a &amp; b &lt;tag&gt;",
        "über Grüße, naïve résumé — 東京 ✓",
        "plain ascii\nwith lines\r\n",
        "Łukasz, Søren, Anaïs 🛠 📄 ⚙️",
        "2√π ≈ 3.5 and ƒ(x)",
    ],
)
def test_fix_text_leaves_correct_text_alone(good: str) -> None:
    assert fix_text(good) == good


def test_render_liquid_page_site_and_split_output() -> None:
    text, problems = render_liquid(
        "{{ page.guest }} and {{ page.guest_2\n}} at {{ site.links.forms.x }}{{ page.nope }}",
        {"guest": "A", "guest_2": "B"},
        {"links": {"forms": {"x": "https://f.example"}}},
        None,
        "p.md",
    )
    assert text == "A and B at https://f.example"
    assert problems == []


def test_render_liquid_include_with_params(tmp_path: Path) -> None:
    inc = tmp_path / "_includes"
    inc.mkdir()
    (inc / "box.html").write_text("[{{ include.label }}|{{ include.who }}|{{ page.tags | size }}]")
    text, problems = render_liquid(
        '{% include box.html label="hi" who=page.guest %}',
        {"guest": "Ann", "tags": ["a", "b"]},
        {},
        inc,
        "p.md",
    )
    assert text == "[hi|Ann|2]"
    assert problems == []


def test_render_liquid_include_reloads_when_file_changes(tmp_path: Path) -> None:
    inc = tmp_path / "_includes"
    inc.mkdir()
    f = inc / "x.html"
    f.write_text("one")
    assert render_liquid("{% include x.html %}", {}, {}, inc, "p.md")[0] == "one"
    f.write_text("two!")
    assert render_liquid("{% include x.html %}", {}, {}, inc, "p.md")[0] == "two!"


@pytest.mark.parametrize(
    ("files", "body", "needle"),
    [
        ({}, "a\n{% include missing.html %}", "no such file"),
        ({"bad.html": "{% if x %}never closed"}, "a\n{% include bad.html %}", "syntax error"),
        ({"ok.html": "x"}, "a\n{% include ../secret.html %}", "outside _includes"),
        ({"loop.html": "{% include loop.html %}"}, "a\n{% include loop.html %}", "loop.html"),
    ],
)
def test_render_liquid_failed_include_is_dropped_with_warning(
    tmp_path: Path, files: dict[str, str], body: str, needle: str
) -> None:
    inc = tmp_path / "_includes"
    inc.mkdir()
    (tmp_path / "secret.html").write_text("SECRET")
    for name, content in files.items():
        (inc / name).write_text(content)
    text, problems = render_liquid(body, {}, {}, inc, "p.md", line_offset=10)
    assert "SECRET" not in text
    assert text.startswith("a\n")
    assert len(problems) == 1
    p = problems[0]
    assert (p.kind, p.severity, p.location) == ("include", "warning", "p.md")
    assert needle in p.message
    assert p.line == 12


def test_render_liquid_unknown_tags_dropped_with_notice_naming_them() -> None:
    body = (
        "one\n{% youtube abc123 %}\ntwo {% youtube x %}{% image a.jpg\n%}\n"
        "{% gist 1 %}in{% endgist %}"
    )
    text, problems = render_liquid(body, {}, {}, None, "p.md")
    assert text == "one\n\ntwo \nin"
    assert [(p.kind, p.severity, p.line) for p in problems] == [
        ("liquid-tag", "notice", 2),
        ("liquid-tag", "notice", 3),
        ("liquid-tag", "notice", 5),
    ]
    assert "youtube" in problems[0].message
    assert "image" in problems[1].message
    assert "gist" in problems[2].message


def test_render_liquid_include_params_follow_jekyll(tmp_path: Path) -> None:
    inc = tmp_path / "_includes"
    inc.mkdir()
    (inc / "q.html").write_text("[{{ include.a }}|{{ include.b }}|{{ include.c }}]")
    text, problems = render_liquid(
        """{% include q.html a="say \\"hi\\"" b='it\\'s' c=page.tags[1] %}""",
        {"tags": ["x", "y"]},
        {},
        inc,
        "p.md",
    )
    assert (text, problems) == ('[say "hi"|it\'s|y]', [])


def test_render_liquid_include_spread_over_lines(tmp_path: Path) -> None:
    inc = tmp_path / "_includes"
    inc.mkdir()
    (inc / "a.html").write_text("[{{ include.x }}|{{ include.y }}]")
    body = '{% include a.html\n   x="1"\n   y=page.n %}'
    assert render_liquid(body, {"n": 2}, {}, inc, "p.md") == ("[1|2]", [])


def test_render_liquid_include_missing_on_a_themed_site_is_a_notice(tmp_path: Path) -> None:
    """Jekyll takes an include missing from _includes/ from the theme's gem: nothing to fix."""
    inc = tmp_path / "_includes"
    inc.mkdir()
    body = "a\n{% include analytics.html %}b"
    text, problems = render_liquid(body, {}, {"theme": "minima"}, inc, "p.md")
    assert text == "a\nb"
    assert [(p.kind, p.severity, p.line) for p in problems] == [("include", "notice", 2)]
    assert "minima" in problems[0].message
    # without a theme, Jekyll fails the build: a warning
    _, problems = render_liquid(body, {}, {}, inc, "p.md")
    assert [(p.kind, p.severity) for p in problems] == [("include", "warning")]


def test_render_liquid_ignore_tags_drops_them_silently() -> None:
    body = "{% all_tags %}{% asset_path logo.png %}x"
    text, problems = render_liquid(body, {}, {}, None, "p.md", ignore_tags=["all_tags"])
    assert text == "x"
    assert [p.message for p in problems if "all_tags" in p.message] == []
    assert [p.severity for p in problems if "asset_path" in p.message] == ["notice"]


def test_plugin_tags_are_one_notice_per_tag_name_per_pass(site: Path) -> None:
    """106 posts using the same plugin tag (directly or in an include) are one notice."""
    (site / "_includes" / "related.html").write_text("{% related_posts %}related")
    for i in range(10, 16):
        write(
            site,
            f"_posts/podcast/2026-01-{i:02d}-{i}-post-{i}.md",
            GOOD_FRONT + "{% all_tags %}\n{% post_url 2021-01-01-x %}\n"
            "{% include related.html %}\n{% asset_path x.png %}\n",
        )
    result = scan(make_cfg(site), {})
    notices = [p for p in result.problems if p.severity == "notice"]
    names = sorted(
        t for p in notices for t in ("all_tags", "post_url", "related_posts", "asset_path")
        if t in p.message
    )  # fmt: skip
    assert names == ["all_tags", "asset_path", "post_url", "related_posts"]
    assert not [p for p in result.problems if p.severity in ("error", "warning")]
    assert sum(f.status == "parsed" for f in result.files) >= 12
    # a known one is silenced entirely
    quiet = scan(make_cfg(site, ignore_tags=["all_tags", "related_posts"]), {})
    assert sorted(p.message.split("'")[1] for p in quiet.problems) == [
        "{% asset_path %}",
        "{% post_url %}",
    ]


def test_render_liquid_raw_and_highlight_still_work() -> None:
    text, problems = render_liquid(
        "{% raw %}{{ page.guest }} {% youtube %}{% endraw %}\n"
        "{% highlight ruby %}\nputs '{{ page.guest }}'\n{% endhighlight %}",
        {"guest": "G"},
        {},
        None,
        "p.md",
    )
    assert problems == []
    assert text.startswith("{{ page.guest }} {% youtube %}\n")
    assert "```ruby\nputs 'G'\n```" in text


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("intro\n\n{{ page.guest ", 3, "expected '}}'"),
        ("intro\n{% if page.guest %}\nhello", 2, "{% endif %}"),
        ("intro\n{% if %}x{% endif %}", 2, "missing expression"),
        ("intro\nx\n{% endif %}", 3, "endif"),
        ("{% for x in page.tags %}{{ x }}", 1, "{% endfor %}"),
    ],
)
def test_render_liquid_syntax_error_is_one_error_with_line(
    body: str, line: int, needle: str
) -> None:
    text, problems = render_liquid(body, {"guest": "G"}, {}, None, "p.md", line_offset=7)
    assert text == body
    assert len(problems) == 1
    assert (problems[0].kind, problems[0].severity) == ("liquid", "error")
    assert problems[0].line == line + 7
    assert needle in problems[0].message


def test_markdown_to_html() -> None:
    html = markdown_to_html(
        "# T\n\n- <https://example.org/x>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<br />\n"
    )
    assert '<a href="https://example.org/x">https://example.org/x</a>' in html
    assert "<table>" in html and "<td>2</td>" in html
    assert "<br />" in html
    assert "<h1>T</h1>" in html


def test_parse_chapters_topics_list() -> None:
    md = """Intro text with 1:00 -- not a list line.

## Topics Include

- 1:45 -- High level overview
- 7:01 – Splitting up compute
- 59:59 — Dashes of every kind
- 1:00:28 -- Loggly is used for logging
- 1:41:43 -- Check out Filipe [on Twitter](https://twitter.com/x), his **platform**
  and [YouTube channel](https://youtube.example/c)

## Links

- 2:00 -- not a chapter: outside the Topics section
"""
    chapters = parse_chapters(md)
    assert [(c.start, c.title) for c in chapters] == [
        (105, "High level overview"),
        (421, "Splitting up compute"),
        (3599, "Dashes of every kind"),
        (3628, "Loggly is used for logging"),
        (6103, "Check out Filipe on Twitter, his platform and YouTube channel"),
    ]


def test_parse_chapters_without_topics_heading_and_none() -> None:
    assert [c.start for c in parse_chapters("- 0:41 -- a\n- 0:10 -- b\n")] == [10, 41]
    assert parse_chapters("No chapters here.\n\n- just a list\n") == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1:43:06", 6186),
        ("58:12", 3492),
        ("2:50", 170),
        ("3600", 3600),
        (3600, 3600),
        (" 1:03 ", 63),
        ("45m", 2700),
        (12.7, 12),
    ],
)
def test_parse_duration_field(value: str | int, seconds: int) -> None:
    assert parse_duration_field(value) == seconds


@pytest.mark.parametrize("value", ["abc", "1:xx", "", "1::2", True, -5])
def test_parse_duration_field_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_field(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# The example site: every kind of post
# ---------------------------------------------------------------------------


@pytest.fixture
def example_scan(site: Path) -> ScanResult:
    cfg = make_cfg(
        site,
        categories=["podcast", "interviews"],
        image_url="{site.url}/images/guests/{guest_avatar}.jpg",
    )
    return scan(cfg, {}, tz=NY)


def test_example_scan_is_complete_and_clean(example_scan: ScanResult) -> None:
    assert example_scan.complete
    assert example_scan.problems == []
    assert sorted(by_path(example_scan)) == sorted(
        [WELCOME, PRINT_SHOP, TRANSIT, WITHDRAWN, INTERVIEW, BILLING, BONUS]
    )
    assert all(f.status == "parsed" for f in example_scan.files)


def test_episode_without_guest(example_scan: ScanResult, site: Path) -> None:
    ep = episode(example_scan, WELCOME)
    assert ep.title == "Welcome to Shipping It"
    assert ep.guests == []
    assert ep.number == 1
    assert ep.slug == "1-welcome-to-shipping-it"
    assert ep.path == WELCOME
    assert ep.key is None
    assert ep.url == ep.guid == "https://shipping-it.example/podcast/1-welcome-to-shipping-it"
    assert ep.enclosure is not None
    assert ep.enclosure.url == "https://shipping-it.example/audio/shipping-it-1.mp3"
    assert ep.enclosure.length == 4718592
    assert ep.enclosure.type == "audio/mpeg"
    assert ep.duration_seconds == 4 * 60 + 52
    # a file-name date is midnight in the podcast's time zone
    assert ep.date == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    assert ep.image is None  # no guest avatar for the template
    assert ep.description.startswith("Dana explains what this show is about. People")
    assert "\n" not in ep.description
    assert [c.start for c in ep.chapters] == [0, 48, 125, 192, 260]
    assert 'href="https://shipping-it.example/forms/be-a-guest"' in ep.show_notes_html
    assert 'href="https://shipping-it.example/podcast/feed.xml">RSS' in ep.show_notes_html
    raw = (site / WELCOME).read_bytes()
    assert ep.file_hash == hashlib.sha256(raw).hexdigest()
    assert ep.withdrawn is False and ep.episode_type == "full" and ep.explicit is None


def test_episode_with_two_guests(example_scan: ScanResult) -> None:
    ep = episode(example_scan, PRINT_SHOP)
    first, second = ep.guests
    assert first.name == "Priya Natarajan"
    assert first.twitter == "priyanatarajan"
    assert first.mastodon == "@priya@fosstodon.org"
    assert first.website == "https://inkwell-prints.example"
    assert first.avatar == "priya-natarajan.jpg"
    assert first.title == "Lead developer"
    assert second.name == "Tomasz Wrona"
    assert second.bluesky == "tomasz.wrona.example"
    assert second.website is None  # "#" means none
    assert second.twitter is None
    # the Liquid output split over two lines
    assert "Priya Natarajan and Tomasz Wrona talk about" in ep.show_notes_html
    # avatar extension is not doubled by the template
    assert ep.image == "https://shipping-it.example/images/guests/priya-natarajan.jpg"
    assert ep.tags[:3] == ["django", "python", "postgresql"]
    assert ep.categories == ["podcast"]
    assert ep.duration_seconds == 3600 + 12 * 60 + 40
    assert [(c.start, c.title) for c in ep.chapters][-3:] == [
        (3594, "The night the queue stopped and what monitoring they added after"),
        (3930, "Best tips? Keep it boring and write the runbook first"),
        (4258, "Where to find Priya Natarajan and Tomasz Wrona"),
    ]
    assert ep.chapters[2].title == "Orders flow through Celery tasks, one per production step"
    # the include rendered the tag list
    assert '<li><a href="https://shipping-it.example/tags/celery">celery</a></li>' in (
        ep.show_notes_html
    )


def test_mojibake_post_is_repaired(example_scan: ScanResult, site: Path) -> None:
    raw = (site / TRANSIT).read_text(encoding="utf-8")
    assert "Ren√©e" in raw and "üìÑ" in raw  # the fixture really is double-encoded
    ep = episode(example_scan, TRANSIT)
    assert ep.guests[0].name == "Renée Lindqvist"
    assert ep.guests[0].bluesky == "renee.lindqvist.example"
    assert ep.description.startswith("Renée Lindqvist goes over")
    assert "<h6>📄 References</h6>" in ep.show_notes_html
    assert "<h6>⚙️ Tech Stack</h6>" in ep.show_notes_html
    assert "Malmö, Göteborg and Århus" in ep.show_notes_html  # correct text untouched
    assert "Renée Lindqvist goes over the Phoenix" in ep.show_notes_html


def test_withdrawn_episode(example_scan: ScanResult) -> None:
    ep = episode(example_scan, WITHDRAWN)
    assert ep.withdrawn is True
    assert "under review" in (ep.withdrawn_reason or "")
    assert ep.guests[0].website is None


def test_text_interview_has_no_audio(example_scan: ScanResult) -> None:
    ep = episode(example_scan, INTERVIEW)
    assert ep.categories == ["interviews"]
    assert ep.enclosure is None
    assert ep.duration_seconds is None
    assert ep.guests[0].mastodon == "https://social.example/@hana"
    assert ep.image == "https://shipping-it.example/images/guests/hana-kobayashi.jpg"
    assert "Hi 👋🏽 I'm Hana" in ep.show_notes_html
    assert "<td>Kamal</td>" in ep.show_notes_html
    assert "-- Hana Kobayashi, Independent developer" in ep.show_notes_html
    assert ep.chapters == []


def test_front_matter_date_with_offset_and_recent_posts(example_scan: ScanResult) -> None:
    ep = episode(example_scan, BILLING)
    assert ep.date == datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    assert ep.guests[0].twitter == "ayobankole"  # "@" dropped
    assert "New episodes every other Tuesday." in ep.show_notes_html
    bonus = episode(example_scan, BONUS)
    assert bonus.episode_type == "bonus"
    assert bonus.guests == []


def test_interviews_ignored_by_default_categories(site: Path) -> None:
    result = scan(make_cfg(site), {}, tz=NY)
    f = by_path(result)[INTERVIEW]
    assert f.status == "ignored"  # type: ignore[attr-defined]
    assert f.episode is None  # type: ignore[attr-defined]
    assert f.stamp.ok  # type: ignore[attr-defined]
    assert sum(1 for f in result.files if f.status == "parsed") == 6


def test_load_site(site: Path) -> None:
    cfg = make_cfg(site)
    info = load_site(cfg)
    assert info.root == site
    assert info.posts_dir == site / "_posts"
    assert info.includes_dir == site / "_includes"
    assert info.site["url"] == "https://shipping-it.example"
    assert info.site["author"]["name"] == "Dana Reyes"
    assert info.problems == []
    # the fingerprint moves when an include or the config changes
    before = info.fingerprint
    (site / "_includes" / "subscribe.html").write_text("changed, and longer than before")
    assert load_site(cfg).fingerprint != before
    assert (
        load_site(make_cfg(site, guid="{site.url}/{slug}")).fingerprint
        != load_site(cfg).fingerprint
    )


def test_site_config_mojibake_is_fixed(site: Path) -> None:
    cfg_file = site / "_config.yml"
    cfg_file.write_text(cfg_file.read_text() + 'tagline: "Caf√© talk"\n', encoding="utf-8")
    assert load_site(make_cfg(site)).site["tagline"] == "Café talk"


def test_bad_site_config_stops_the_scan(site: Path) -> None:
    (site / "_config.yml").write_text('url: "https://x.example"\nlinks: [unclosed\n')
    result = scan(make_cfg(site), {})
    assert not result.complete
    assert result.files == []
    assert len(result.problems) == 1
    assert result.problems[0].location == "_config.yml"
    assert result.problems[0].kind == "yaml"
    assert result.problems[0].line is not None


# ---------------------------------------------------------------------------
# Bad input: one clear problem each, the rest still parsed
# ---------------------------------------------------------------------------

BAD_NAME = "_posts/podcast/2026-01-05-99-broken.md"
BAD_CASES: dict[str, tuple[str, str | bytes, str, int | None]] = {
    # id: (file name, content, problem kind, line)
    "invalid-yaml": (
        BAD_NAME,
        "---\ntitle: ok\ncategory: podcast\ndescription: a: b: [\n---\n",
        "yaml",
        4,
    ),
    "no-front-matter": (BAD_NAME, "# Just markdown\n\nNo front matter.\n", "front-matter", 1),
    "unclosed-front-matter": (
        BAD_NAME,
        "---\ntitle: x\ncategory: podcast\n\nbody\n",
        "front-matter",
        1,
    ),
    "front-matter-not-mapping": (BAD_NAME, "---\n- a\n- b\n---\nbody\n", "front-matter", 2),
    "nul-bytes": (BAD_NAME, b"---\ntitle: x\n---\n\x00\x01\x02binary", "binary", None),
    "undecodable": (
        BAD_NAME,
        b"---\ntitle: x\ncategory: podcast\n---\nline\n\xff\xfe bad\n",
        "encoding",
        6,
    ),
    "bad-file-name-date": ("_posts/podcast/2026-13-45-99-broken.md", GOOD_FRONT, "date", None),
    "bad-front-matter-date": (
        BAD_NAME,
        GOOD_FRONT.replace("---\nmp3", "---\ndate: soon\nmp3", 1),
        "date",
        2,
    ),
    "impossible-yaml-date": (
        BAD_NAME,
        GOOD_FRONT.replace("---\nmp3", "---\ndate: 2021-02-30\nmp3", 1),
        "date",
        2,
    ),
    "bad-duration": (BAD_NAME, GOOD_FRONT.replace('"10:00"', '"abc"'), "field", 3),
    "bad-bytes": (BAD_NAME, GOOD_FRONT.replace('"1000"', '"12 MB"'), "field", 2),
    "liquid-unclosed-output": (BAD_NAME, GOOD_FRONT + "\nHello {{ page.guest \n", "liquid", 10),
    "liquid-if-without-endif": (
        BAD_NAME,
        GOOD_FRONT + "line\n{% if page.guest %}\nhi\n",
        "liquid",
        10,
    ),
    "liquid-empty-if": (BAD_NAME, GOOD_FRONT + "{% if %}x{% endif %}\n", "liquid", 9),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_bad_input_is_one_problem_and_the_rest_parse(site: Path, case: str) -> None:
    name, content, kind, line = BAD_CASES[case]
    write(site, name, content)
    result = scan(make_cfg(site), {}, tz=NY)
    assert result.complete
    f = by_path(result)[name]
    assert f.status == "bad"  # type: ignore[attr-defined]
    assert f.episode is None  # type: ignore[attr-defined]
    assert f.stamp.ok is False  # type: ignore[attr-defined]
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    p = result.problems[0]
    assert (p.location, p.kind, p.severity) == (name, kind, "error")
    assert p.line == line
    assert p.message
    assert sum(1 for f in result.files if f.status == "parsed") == 6


def test_too_large_file_is_not_read(site: Path) -> None:
    path = write(site, BAD_NAME, GOOD_FRONT + "x" * 5000)
    result = scan(make_cfg(site, max_file_bytes=2000), {})
    f = by_path(result)[BAD_NAME]
    assert f.status == "bad"  # type: ignore[attr-defined]
    assert f.stamp.size == path.stat().st_size  # type: ignore[attr-defined]
    assert f.stamp.content_hash == ""  # type: ignore[attr-defined]
    bad = [p for p in result.problems if p.location == BAD_NAME]
    assert [p.kind for p in bad] == ["too-large"]
    assert "max_file_bytes" in bad[0].message


def test_bad_file_keeps_failing_quietly_until_changed(site: Path) -> None:
    path = write(site, BAD_NAME, "no front matter\n")
    cfg = make_cfg(site)
    first = scan(cfg, {})
    known = {f.path: f.stamp for f in first.files}
    second = scan(cfg, known)
    assert by_path(second)[BAD_NAME].status == "unchanged"  # type: ignore[attr-defined]
    assert second.problems == []
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = scan(cfg, known)
    f = by_path(third)[BAD_NAME]
    assert f.status == "same-hash" and f.stamp.ok is False  # type: ignore[attr-defined]
    write(site, BAD_NAME, GOOD_FRONT + "fixed\n")
    fourth = scan(cfg, known)
    assert by_path(fourth)[BAD_NAME].status == "parsed"  # type: ignore[attr-defined]


def test_warnings_do_not_make_a_post_bad(site: Path) -> None:
    write(site, BAD_NAME, GOOD_FRONT + "{% youtube abc %}\n{% include nope.html %}\nok\n")
    result = scan(make_cfg(site), {})
    ep = episode(result, BAD_NAME)
    assert "<p>ok</p>" in ep.show_notes_html
    mine = [p for p in result.problems if p.location == BAD_NAME]
    assert sorted((p.kind, p.severity, p.line) for p in mine) == [
        ("include", "warning", 10),
        ("liquid-tag", "notice", 9),
    ]
    assert errors(result) == []


def test_missing_posts_folder(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text('url: "https://x.example"\n')
    result = scan(make_cfg(tmp_path, enclosure_url=""), {})
    assert not result.complete
    assert [p.kind for p in result.problems] == ["missing-folder"]
    assert "path" in result.problems[0].message
    gone = scan(
        make_cfg(tmp_path / "nowhere", guid="x/{slug}", episode_url="x/{slug}", enclosure_url=""),
        {},
    )
    assert not gone.complete and [p.kind for p in gone.problems] == ["missing-folder"]


def test_unknown_placeholder_is_a_config_problem(site: Path) -> None:
    result = scan(make_cfg(site, guid="{site.url}/{slugg}"), {})
    assert not result.complete
    assert result.files == []
    assert len(result.problems) == 1
    p = result.problems[0]
    assert p.kind == "config"
    assert "{slugg}" in p.message and "guid" in p.message
    missing = scan(make_cfg(site, episode_url="{site.base}/{slug}"), {})
    assert not missing.complete
    assert "'base'" in missing.problems[0].message


# ---------------------------------------------------------------------------
# Caching, moves, renames
# ---------------------------------------------------------------------------


def test_stat_and_hash_cache(site: Path) -> None:
    cfg = make_cfg(site)
    first = scan(cfg, {}, tz=NY)
    known = {f.path: f.stamp for f in first.files}
    second = scan(cfg, known, tz=NY)
    assert {f.status for f in second.files} == {"unchanged"}
    assert all(f.episode is None for f in second.files)
    assert by_path(second)[WELCOME].stamp is known[WELCOME]  # type: ignore[attr-defined]

    path = site / WELCOME
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))
    touched = by_path(scan(cfg, known))[WELCOME]
    assert touched.status == "same-hash"  # type: ignore[attr-defined]
    assert touched.stamp.mtime_ns == st.st_mtime_ns + 3_000_000_000  # type: ignore[attr-defined]
    assert touched.stamp.content_hash == known[WELCOME].content_hash  # type: ignore[attr-defined]

    path.write_text(path.read_text().replace("Welcome to Shipping It", "Welcome to Shipping It!"))
    edited = by_path(scan(cfg, known))[WELCOME]
    assert edited.status == "parsed"  # type: ignore[attr-defined]
    assert edited.episode.title == "Welcome to Shipping It!"  # type: ignore[attr-defined]

    forced = scan(cfg, known, force=True)
    assert {f.status for f in forced.files} == {"parsed", "ignored"}


def test_unchanged_stat_means_the_file_is_not_read(site: Path) -> None:
    cfg = make_cfg(site)
    known = {f.path: f.stamp for f in scan(cfg, {}).files}
    path = site / WELCOME
    st = path.stat()
    # Same size, same mtime, different bytes: only a read would notice.
    data = path.read_bytes().replace(b"Welcome", b"Wxlcome")
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert by_path(scan(cfg, known))[WELCOME].status == "unchanged"  # type: ignore[attr-defined]


def test_moved_and_renamed_posts(site: Path) -> None:
    cfg = make_cfg(site)
    first = scan(cfg, {})
    known = {f.path: f.stamp for f in first.files}
    old = episode(first, PRINT_SHOP)
    new_rel = "_posts/2026/archive/2026-05-11-2-running-a-print-shop-on-django-and-postgres.md"
    (site / new_rel).parent.mkdir(parents=True)
    (site / PRINT_SHOP).rename(site / new_rel)
    second = scan(cfg, known)
    paths = by_path(second)
    assert PRINT_SHOP not in paths
    ep = episode(second, new_rel)
    assert ep.path == new_rel
    assert ep.number == old.number == 2
    assert ep.file_hash == old.file_hash
    assert ep.slug == "2-running-a-print-shop-on-django-and-postgres"
    assert paths[WELCOME].status == "unchanged"  # type: ignore[attr-defined]


def test_hidden_and_non_post_files_are_skipped(site: Path) -> None:
    write(site, "_posts/podcast/.2026-01-01-8-hidden.md", GOOD_FRONT)
    write(site, "_posts/podcast/2026-01-01-8-backup.md~", GOOD_FRONT)
    write(site, "_posts/podcast/cover.jpg", b"\xff\xd8\xff")
    write(site, "_posts/.git/2026-01-01-9-x.md", GOOD_FRONT)
    write(site, "_posts/podcast/README.md", "# notes\n")
    result = scan(make_cfg(site), {})
    paths = by_path(result)
    assert len(paths) == 8
    assert paths["_posts/podcast/README.md"].status == "ignored"  # type: ignore[attr-defined]
    assert result.problems == []


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_does_not_hang(site: Path) -> None:
    os.symlink(site / "_posts", site / "_posts" / "podcast" / "loop")
    result = scan(make_cfg(site), {})
    assert result.complete
    assert sum(1 for f in result.files if f.path.endswith(Path(WELCOME).name)) <= 2


# ---------------------------------------------------------------------------
# Front matter details
# ---------------------------------------------------------------------------


def test_categories_tags_and_fallbacks(site: Path) -> None:
    write(
        site,
        "_posts/podcast/2026-02-01-10-list-cats.md",
        '---\ncategories: [News, PODCAST]\ntags: "go rust  go"\ntitle: T\n---\nx\n',
    )
    write(
        site,
        "_posts/podcast/2026-02-02-11-string-cats.md",
        "---\ncategories: news podcast\ntitle: T\n---\nx\n",
    )
    write(site, "_posts/podcast/2026-02-03-12-no-cat.md", "---\ntitle: No Category\n---\nx\n")
    write(site, "_posts/podcast/2026-02-04-13-blog.md", "---\ncategory: blog\n---\nx\n")
    result = scan(make_cfg(site), {})
    ep = episode(result, "_posts/podcast/2026-02-01-10-list-cats.md")
    assert ep.categories == ["News", "PODCAST"]
    assert ep.tags == ["go", "rust"]
    assert episode(result, "_posts/podcast/2026-02-02-11-string-cats.md").categories == [
        "news",
        "podcast",
    ]
    # no category: the folder inside _posts stands in
    assert episode(result, "_posts/podcast/2026-02-03-12-no-cat.md").categories == ["podcast"]
    blog = by_path(result)["_posts/podcast/2026-02-04-13-blog.md"]
    assert blog.status == "ignored"  # type: ignore[attr-defined]


def test_names_without_number_title_from_slug_and_front_matter_slug(site: Path) -> None:
    write(
        site,
        "_posts/podcast/2026-02-05-a-special-episode.md",
        "---\ncategory: podcast\nmp3_bytes: 5\n---\nx\n",
    )
    write(
        site,
        "_posts/podcast/2026-02-06-20-old-name.md",
        '---\ncategory: podcast\nslug: "20-new-name"\ntitle: "Renamed"\n---\nx\n',
    )
    result = scan(make_cfg(site), {})
    ep = episode(result, "_posts/podcast/2026-02-05-a-special-episode.md")
    assert ep.number is None
    assert ep.slug == "a-special-episode"
    assert ep.title == "A Special Episode"
    assert ep.guid == "https://shipping-it.example/podcast/a-special-episode"
    assert ep.enclosure is None  # {number} is needed and there is none: a warning
    warn = [p for p in result.problems if p.location == ep.path]
    assert [(p.kind, p.severity) for p in warn] == [("enclosure", "warning")]
    renamed = episode(result, "_posts/podcast/2026-02-06-20-old-name.md")
    assert renamed.slug == "20-new-name" and renamed.number == 20


def test_guid_needing_a_number_is_bad_without_one(site: Path) -> None:
    write(site, "_posts/podcast/2026-02-05-no-number.md", "---\ncategory: podcast\n---\nx\n")
    result = scan(make_cfg(site, guid="{site.url}/episodes/{number}"), {})
    f = by_path(result)["_posts/podcast/2026-02-05-no-number.md"]
    assert f.status == "bad"  # type: ignore[attr-defined]
    assert [p.kind for p in result.problems] == ["guid"]
    assert episode(result, WELCOME).guid == "https://shipping-it.example/episodes/1"


def test_time_zones(site: Path) -> None:
    write(
        site,
        "_posts/podcast/2026-06-01-30-naive.md",
        "---\ncategory: podcast\ndate: 2026-06-01 20:15:00\n---\nx\n",
    )
    write(
        site,
        "_posts/podcast/2026-06-02-31-string.md",
        '---\ncategory: podcast\ndate: "2026-06-02 08:00:00 +0200"\n---\nx\n',
    )
    write(
        site,
        "_posts/podcast/2026-06-03-32-date-only.md",
        "---\ncategory: podcast\ndate: 2026-06-04\n---\nx\n",
    )
    result = scan(make_cfg(site), {}, tz=ZoneInfo("Europe/Berlin"))
    assert episode(result, "_posts/podcast/2026-06-01-30-naive.md").date == datetime(
        2026, 6, 1, 18, 15, tzinfo=UTC
    )
    assert episode(result, "_posts/podcast/2026-06-02-31-string.md").date == datetime(
        2026, 6, 2, 6, 0, tzinfo=UTC
    )
    assert episode(result, "_posts/podcast/2026-06-03-32-date-only.md").date == datetime(
        2026, 6, 3, 22, 0, tzinfo=UTC
    )
    # default: UTC
    utc = scan(make_cfg(site), {})
    assert episode(utc, WELCOME).date == datetime(2026, 3, 2, tzinfo=UTC)


def test_published_false_explicit_and_guest_numbers(site: Path) -> None:
    write(
        site,
        "_posts/podcast/2026-02-07-40-draft.md",
        """\
---
category: podcast
published: false
explicit: "yes"
episode_type: trailer
guest: "One"
guest_3: "Three"
guest_3_twitter: "https://x.com/three_handle"
guest_3_website: "https://three.example"
guest_2: "Two"
guest_2_mastodon: "@two@mastodon.example"
---
x
""",
    )
    ep = episode(scan(make_cfg(site), {}), "_posts/podcast/2026-02-07-40-draft.md")
    assert ep.withdrawn is True and "published: false" in (ep.withdrawn_reason or "")
    assert ep.explicit is True
    assert ep.episode_type == "trailer"
    assert [g.name for g in ep.guests] == ["One", "Two", "Three"]
    assert ep.guests[1].mastodon == "@two@mastodon.example"
    assert ep.guests[2].twitter == "three_handle"
    assert ep.guests[2].website == "https://three.example"


def test_html_post_gets_liquid_but_no_markdown(site: Path) -> None:
    write(
        site,
        "_posts/podcast/2026-02-08-41-html.html",
        '---\ncategory: podcast\nguest: "H"\n---\n<p>*{{ page.guest }}*</p>\n',
    )
    ep = episode(scan(make_cfg(site), {}), "_posts/podcast/2026-02-08-41-html.html")
    assert ep.show_notes_html == "<p>*H*</p>\n"


def test_transcripts(site: Path, tmp_path: Path) -> None:
    folder = tmp_path / "transcripts"
    folder.mkdir()
    (folder / "2.srt").write_text("1\n")
    (folder / "2.txt").write_text("text\n")
    (folder / "6.vtt").write_text("WEBVTT\n")
    cfg = make_cfg(site, transcripts=folder, transcript_url="{site.url}/transcripts/{transcript}")
    result = scan(cfg, {})
    six = episode(result, BILLING)
    assert six.transcript_url == "https://shipping-it.example/transcripts/6.vtt"
    assert six.transcript_type == "text/vtt"
    two = episode(result, PRINT_SHOP)
    assert two.transcript_url == "https://shipping-it.example/transcripts/2.srt"
    assert two.transcript_type == "application/x-subrip"
    assert episode(result, WELCOME).transcript_url is None


def test_bare_folder_of_posts(tmp_path: Path) -> None:
    folder = tmp_path / "episodes"
    write(folder, "2026-01-01-1-first.md", GOOD_FRONT + "Hi {{ page.guest }}\n")
    cfg = make_cfg(
        folder,
        guid="https://p.example/{slug}",
        episode_url="https://p.example/{slug}",
        enclosure_url="https://p.example/{number}.mp3",
    )
    result = scan(cfg, {})
    ep = episode(result, "2026-01-01-1-first.md")
    assert ep.path == "2026-01-01-1-first.md"
    assert ep.enclosure is not None and ep.enclosure.url == "https://p.example/1.mp3"
    # pointing at a site's _posts folder works like pointing at the site
    site_posts = scan(make_cfg(EXAMPLE / "_posts"), {})
    assert episode(site_posts, WELCOME).guid.startswith("https://shipping-it.example/")


# ---------------------------------------------------------------------------
# Scale
# ---------------------------------------------------------------------------


def test_generated_posts_parse_and_a_warm_scan_parses_nothing(tmp_path: Path) -> None:
    gen_posts.generate(tmp_path / "bench", 400)
    cfg = make_cfg(tmp_path / "bench", enclosure_url="")
    cold = scan(cfg, {})
    assert cold.complete and cold.problems == []
    assert [f.status for f in cold.files] == ["parsed"] * 400
    names = [f.episode.guests[0].name for f in cold.files]  # type: ignore[union-attr]
    assert not any("√" in n for n in names)
    assert any(n.startswith(("Renée", "José", "Zoë", "Søren", "Łukasz", "Anaïs")) for n in names)
    ep = cold.files[0].episode
    assert ep is not None and ep.enclosure is not None  # mp3_url_path in its _config.yml
    assert len(ep.chapters) > 5
    known = {f.path: f.stamp for f in cold.files}
    warm = scan(cfg, known)  # its speed is bench/bench_jekyll.py's, not a test's
    assert {f.status for f in warm.files} == {"unchanged"}
    assert [f.episode for f in warm.files] == [None] * 400  # stat/hash only: nothing parsed


def test_known_stamps_roundtrip_types(site: Path) -> None:
    result = scan(make_cfg(site), {})
    for f in result.files:
        assert isinstance(f.stamp, FileStamp)
        assert isinstance(f.stamp.mtime_ns, int) and isinstance(f.stamp.size, int)
        assert len(f.stamp.content_hash) == 64
        assert "\\" not in f.path and not f.path.startswith("/")


def test_crlf_bom_and_liquid_in_description(site: Path) -> None:
    text = GOOD_FRONT.replace("description: A test.", 'description: "With {{ page.guest }}."')
    data = ("\ufeff" + text + "Hello {{ page.guest }}\n").replace("\n", "\r\n")
    write(site, BAD_NAME, data.encode("utf-8"))
    result = scan(make_cfg(site), {})
    ep = episode(result, BAD_NAME)
    assert ep.title == "A Test Episode"
    assert ep.description == "With Test Guest."
    assert "<p>Hello Test Guest</p>" in ep.show_notes_html
    assert ep.file_hash == hashlib.sha256(data.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# Chapters: time typos, order, plain-text titles
# ---------------------------------------------------------------------------

CHAPTER_POST = "_posts/podcast/2026-11-27-8-chapter-checks.md"


def _chapter_scan(site: Path, topics: str) -> tuple[list[tuple[int, str]], list]:  # type: ignore[type-arg]
    write(site, CHAPTER_POST, GOOD_FRONT + "\nSome notes.\n\n## Topics\n\n" + topics)
    result = scan(make_cfg(site), {}, tz=NY)
    ep = episode(result, CHAPTER_POST)
    mine = [p for p in result.problems if p.location == CHAPTER_POST]
    return [(c.start, c.title) for c in ep.chapters], mine


def test_chapter_time_typo_is_read_as_h_mm_ss_when_that_keeps_the_order(site: Path) -> None:
    # front matter is 8 lines, then a blank line, notes, blank, heading, blank: topics at 14
    chapters, problems = _chapter_scan(
        site,
        "- 0:00 -- Hello\n"
        "- 1:05:00 -- Deploys\n"
        "- 1:11-20 -- Where to find the guest\n"
        "- 1.15.30 -- Dots instead of colons\n"
        "- 1:20;40 -- A semicolon\n",
    )
    assert chapters == [
        (0, "Hello"),
        (3900, "Deploys"),
        (4280, "Where to find the guest"),
        (4530, "Dots instead of colons"),
        (4840, "A semicolon"),
    ]
    # the store keeps one open problem per file and kind: one message names every line
    [p] = problems
    assert (p.kind, p.severity, p.line) == ("chapter-time", "warning", 16)
    assert p.message.startswith("3 chapters: line 16: chapter time '1:11-20' read as 1:11:20")
    assert "line 17: chapter time '1.15.30' read as 1:15:30" in p.message
    assert "line 18: chapter time '1:20;40' read as 1:20:40" in p.message


def test_chapter_time_typo_out_of_order_is_dropped_with_a_warning(site: Path) -> None:
    chapters, problems = _chapter_scan(
        site,
        "- 0:00 -- Hello\n- 1:30:00 -- Late topic\n- 1:11-20 -- Where to find the guest\n",
    )
    assert chapters == [(0, "Hello"), (5400, "Late topic")]
    assert len(problems) == 1
    assert (problems[0].kind, problems[0].severity, problems[0].line) == (
        "chapter-time",
        "warning",
        16,
    )
    assert "dropped" in problems[0].message and "1:11-20" in problems[0].message


def test_chapter_earlier_than_the_one_before_is_a_warning(site: Path) -> None:
    chapters, problems = _chapter_scan(
        site, "- 0:00 -- Hello\n- 10:00 -- Middle\n- 5:00 -- Out of place\n- 12:00 -- End\n"
    )
    assert chapters == [(0, "Hello"), (300, "Out of place"), (600, "Middle"), (720, "End")]
    assert [(p.kind, p.severity, p.line) for p in problems] == [("chapter-order", "warning", 16)]
    assert "0:05:00" in problems[0].message and "0:10:00" in problems[0].message


def test_two_chapters_at_the_same_second_are_kept_in_the_episode(site: Path) -> None:
    chapters, problems = _chapter_scan(site, "- 0:00 -- Hello\n- 1:00 -- A\n- 1:00 -- B\n")
    assert chapters == [(0, "Hello"), (60, "A"), (60, "B")]
    assert [(p.kind, p.severity, p.line) for p in problems] == [
        ("chapter-same-start", "notice", 16)
    ]


def test_chapter_titles_are_plain_text(site: Path) -> None:
    chapters, problems = _chapter_scan(
        site,
        "- 0:00 -- R&D\n"
        "- 1:00 -- R&amp;D and Tom &amp; Jerry's\n"
        '- 2:00 -- "quotes" and **bold** \\*stars\\*\n'
        "- 3:00 -- The &lt;b&gt; tag and a < b\n",
    )
    assert not problems
    assert chapters == [
        (0, "R&D"),
        (60, "R&D and Tom & Jerry's"),
        (120, '"quotes" and bold *stars*'),
        # a text field never carries markup, even markup written escaped; a bare '<' stays
        (180, "The tag and a < b"),
    ]


def test_chapter_problems_of_each_kind_are_separate_and_bounded(site: Path) -> None:
    topics = "- 0:00 -- Hello\n- 0:00 -- Same\n- 9:00 -- Later\n- 1:00-30 -- Typo, dropped\n"
    topics += "".join(f"- {59 - i}:00 -- Backwards {i}\n" for i in range(15))
    chapters, problems = _chapter_scan(site, topics)
    assert len(chapters) == 2 + 1 + 15
    by_kind = {p.kind: p for p in problems}
    assert set(by_kind) == {"chapter-same-start", "chapter-time", "chapter-order"}
    assert by_kind["chapter-same-start"].severity == "notice"
    assert by_kind["chapter-time"].severity == "warning"
    order = by_kind["chapter-order"]
    assert (order.severity, order.line) == ("warning", 19)  # the first one: 58:00 after 59:00
    assert order.message.startswith("14 chapters: line 19:")
    assert order.message.endswith("; and 4 more")


def test_front_matter_text_reads_as_the_site_shows_it(site: Path) -> None:
    # Jekyll puts front matter into HTML: a reference there is the character it names
    # (once), markup is not text, and a bare '&' is just an ampersand.
    write(
        site,
        CHAPTER_POST,
        GOOD_FRONT.replace('"A Test Episode"', '"R&amp;D &#8211; AT&T <i>live</i>"')
        .replace('"Test Guest"', '"Tom &amp; Jerry&#39;s &amp;amp; co"')
        .replace("A test.", '"Q&A: &lt;b&gt;bold&lt;/b&gt; ideas"'),
    )
    ep = episode(scan(make_cfg(site), {}, tz=NY), CHAPTER_POST)
    assert ep.title == "R&D – AT&T live"
    assert [g.name for g in ep.guests] == ["Tom & Jerry's &amp; co"]
    assert ep.description == "Q&A: bold ideas"
