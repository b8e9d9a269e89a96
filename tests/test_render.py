"""Announcement rendering: real Jinja2 sandbox, real shipped templates, real twitter-text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grapheme
import pytest

from syndicator.announce import fit
from syndicator.announce.hashtags import make_hashtags
from syndicator.announce.render import (
    Renderer,
    TemplateProblem,
    headline,
    human_duration,
    join_names,
    shipped_templates_dir,
)
from syndicator.channels.bluesky import bluesky_handle
from syndicator.channels.mastodon import mastodon_handle
from syndicator.channels.twitter import twitter_handle
from syndicator.config import ChannelConfig, from_dict
from syndicator.store.models import Episode

URL = "https://podcast.example.org/podcast/107-hosting-meteor-apps-as-a-service"
# fmt: off
TAGS = [
    "meteor", "node", "golang", "react", "aws", "datadog", "docker", "dynamodb", "ecs",
    "elasticache", "graphql", "lets-encrypt", "loggly", "memcached", "mongodb", "pagerduty",
    "postmark", "recurly", "scalegrid", "sendgrid", "statuscake", "terraform", "websockets",
]
# fmt: on
TITLE = "Meteor Cloud Is a Full Service Hosting Solution for Meteor Apps"


def settings(tmp_path: Path, **over: Any) -> Any:
    data: dict[str, Any] = {
        "podcast": {"title": "Shipping Things", "timezone": "America/Sao_Paulo"},
        "announce": {"max_hashtags": 3},
        "channels": [
            {"name": "x", "type": "twitter"},
            {"name": "masto", "type": "mastodon"},
            {"name": "sky", "type": "bluesky"},
            {"name": "chat", "type": "apprise"},
        ],
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_dict(data, tmp_path)


def meteor(**over: Any) -> Episode:
    fields: dict[str, Any] = {
        "guid": URL,
        "source": "site",
        "number": 107,
        "title": TITLE,
        "url": URL,
        "date": datetime(2021, 12, 20, 1, 30, tzinfo=UTC),
        "guests": [
            {
                "name": "Filipe Névola",
                "twitter": "filipenevola",
                "website": "https://example.com/cloud",
                "avatar": "filipe-nevola",
            }
        ],
        "tags": list(TAGS),
        "duration_seconds": 1 * 3600 + 43 * 60 + 6,
        "description": "Filipe goes over building a hosting platform with Meteor, Node and Go.",
    }
    fields.update(over)
    return Episode(**fields)


def channel(name: str = "x", type: str = "twitter", **over: Any) -> ChannelConfig:
    return ChannelConfig(name=name, type=type, **over)  # type: ignore[arg-type]


# --- the default templates -------------------------------------------------------------------


def test_example_sentence_exactly(tmp_path: Path) -> None:
    assert len(TAGS) == 23
    r = Renderer(settings(tmp_path)).render(meteor(), channel())
    assert r.text == (
        "🎙 New episode: Meteor Cloud Is a Full Service Hosting Solution for Meteor Apps, "
        f"with @filipenevola. {URL} #meteor #node #golang"
    )
    assert r.fits and r.limit == 280 and r.template == "twitter.j2"
    assert r.length == fit.count(r.text, "twitter") < len(r.text)  # the URL counts 23


def test_default_max_hashtags_is_five(tmp_path: Path) -> None:
    s = settings(tmp_path, announce={"max_hashtags": 5})
    text = Renderer(s).render(meteor(), channel()).text
    assert text.endswith("#meteor #node #golang #react #aws")


def test_no_guest_reads_well(tmp_path: Path) -> None:
    ep = meteor(title="Preview of What's to Come", guests=[], tags=[], number=0)
    r = Renderer(settings(tmp_path)).render(ep, channel())
    assert r.text == f"🎙 New episode: Preview of What's to Come. {URL}"


def test_two_and_three_guests_are_all_named(tmp_path: Path) -> None:
    two = [{"name": "Ana Lima", "twitter": "analima"}, {"name": "Bo Chen", "twitter": "@bochen"}]
    r = Renderer(settings(tmp_path)).render(meteor(guests=two, tags=[]), channel())
    assert r.text == f"🎙 New episode: {TITLE}, with @analima and @bochen. {URL}"
    three = [*two, {"name": "Cy Diaz"}]
    r = Renderer(settings(tmp_path)).render(meteor(guests=three, tags=[]), channel())
    assert "with @analima, @bochen and Cy Diaz." in r.text


def test_handle_only_on_one_network(tmp_path: Path) -> None:
    renderer = Renderer(settings(tmp_path))
    ep = meteor(tags=[])
    texts = {c.type: renderer.render(ep, c).text for c in renderer.settings.channels}
    assert "with @filipenevola." in texts["twitter"]
    assert "with Filipe Névola." in texts["mastodon"]
    assert "with Filipe Névola." in texts["bluesky"]
    assert "with Filipe Névola." in texts["apprise"]
    assert "@filipenevola" not in texts["mastodon"] + texts["bluesky"]


def test_guest_handles_per_network_from_episode(tmp_path: Path) -> None:
    guest = {
        "name": "Filipe Névola",
        "twitter": "https://x.com/filipenevola",
        "mastodon": "filipe@fosstodon.org",  # bare user@instance is normalised
        "bluesky": "@filipe.bsky.social",
    }
    renderer = Renderer(settings(tmp_path))
    ep = meteor(guests=[guest], tags=[])
    ctx = renderer.context(ep, channel("m", "mastodon"))
    assert ctx["guest_twitter"] == "filipenevola"
    assert ctx["guest_mastodon"] == "@filipe@fosstodon.org"
    assert ctx["guest_bluesky"] == "filipe.bsky.social"
    assert ctx["guests_text"] == "@filipe@fosstodon.org"
    sky = renderer.render(ep, channel("b", "bluesky")).text
    assert "with @filipe.bsky.social." in sky


def test_mastodon_handle_without_instance_is_plain_name(tmp_path: Path) -> None:
    ep = meteor(guests=[{"name": "Filipe Névola", "mastodon": "@filipe"}], tags=[])
    text = Renderer(settings(tmp_path)).render(ep, channel("m", "mastodon")).text
    assert "with Filipe Névola." in text and "@filipe" not in text


def test_handles_table(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        handles={
            "Filipe Névola": {
                "twitter": "filipe_new",
                "mastodon": "@filipe@fosstodon.org",
                "bluesky": "filipe.bsky.social",
            },
            "Ana Lima": {"twitter": ""},  # "" removes the episode's (stale) handle
        },
    )
    guests = [
        {"name": "Filipe  Névola", "twitter": "filipenevola"},
        {"name": "ana lima", "twitter": "old"},
    ]
    ep = meteor(guests=guests, tags=[])
    renderer = Renderer(s)
    x = renderer.render(ep, channel()).text
    masto = renderer.render(ep, channel("m", "mastodon")).text
    sky = renderer.render(ep, channel("b", "bluesky")).text
    assert "with @filipe_new and ana lima." in x
    assert "with @filipe@fosstodon.org and ana lima." in masto
    assert "with @filipe.bsky.social and ana lima." in sky


def test_host_in_context(tmp_path: Path) -> None:
    s = settings(tmp_path, podcast={"host": {"name": "Nia Host", "mastodon": "nia@example.social"}})
    ctx = Renderer(s).context(meteor(), channel("m", "mastodon"))
    assert ctx["host"]["mention"] == "@nia@example.social"
    assert ctx["podcast"]["title"] == "Shipping Things"


def test_context_values(tmp_path: Path) -> None:
    ctx = Renderer(settings(tmp_path)).context(meteor(), channel())
    assert ctx["duration"] == "1h 43m"
    assert ctx["duration_seconds"] == 6186
    # 01:30 UTC on the 20th is the evening of the 19th in São Paulo
    assert ctx["date_iso"] == "2021-12-19"
    assert ctx["date"].utcoffset() is not None and ctx["date"].hour == 22
    assert ctx["number"] == 107
    assert ctx["episode"]["full_title"] == TITLE
    assert ctx["hashtags"] == ["meteor", "node", "golang"]
    assert ctx["hashtags_text"] == "#meteor #node #golang"
    assert ctx["guest"] == "Filipe Névola"


def test_apprise_template_includes_description(tmp_path: Path) -> None:
    r = Renderer(settings(tmp_path)).render(meteor(), channel("chat", "apprise"))
    assert r.text.startswith("🎙 New episode of Shipping Things: Meteor Cloud")
    assert "Filipe goes over building a hosting platform" in r.text
    assert f"Listen (1h 43m): {URL}" in r.text
    assert r.limit == 2000 and r.fits


def test_reshare_uses_generic_template(tmp_path: Path) -> None:
    r = Renderer(settings(tmp_path)).render(meteor(tags=[]), channel(), kind="reshare")
    assert r.template == "reshare.j2"
    assert r.text == f"🎧 From the archive: {TITLE}, with @filipenevola. {URL}"


# --- hashtags --------------------------------------------------------------------------------


def test_hashtag_mapping_and_casing(tmp_path: Path) -> None:
    mapping = {"lets-encrypt": "LetsEncrypt", "GitHub-Actions": "#GitHubActions", "aws": ""}
    tags = ["lets-encrypt", "github-actions", "aws", "dev_ops", "meteor", "node.js"]
    assert make_hashtags(tags, mapping, 10) == [
        "LetsEncrypt",
        "GitHubActions",
        "DevOps",
        "meteor",
        "nodejs",
    ]
    assert make_hashtags(["lets-encrypt"], {}, 5) == ["LetsEncrypt"]
    s = settings(tmp_path, announce={"hashtags": {"lets-encrypt": "LetsEncrypt"}})
    ep = meteor(tags=["lets-encrypt", "docker"], guests=[])
    assert Renderer(s).render(ep, channel()).text.endswith("#LetsEncrypt #docker")


def test_invalid_tags_dropped_and_deduplicated() -> None:
    tags = ["", "  ", "#", "2021", "c++", "---", "Meteor", "meteor", "METEOR", "ok_1", "🎙", "v2"]
    assert make_hashtags(tags, {}, 10) == ["Meteor", "Ok1", "v2"]
    assert make_hashtags(TAGS, {}, 2) == ["meteor", "node"]
    assert make_hashtags(TAGS, {}, 0) == []
    assert make_hashtags(["x"], {"x": "not valid!"}, 3) == []


# --- templates: override, named, errors, sandbox --------------------------------------------


def test_user_template_dir_overrides_by_file_name(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text("New: {{ title }} {{ url }}\n", encoding="utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    renderer = Renderer(s)
    r = renderer.render(meteor(), channel())
    assert r.text == f"New: {TITLE} {URL}"
    assert r.path == str(mine / "twitter.j2")
    # networks without an override still get the shipped template
    masto = renderer.render(meteor(), channel("m", "mastodon"))
    assert masto.path == str(shipped_templates_dir() / "mastodon.j2")
    assert masto.text.startswith("🎙 New episode:")


def test_user_template_can_reuse_shipped_one(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text(
        '{% include "shipped/twitter.j2" %} (ep {{ number }})', encoding="utf-8"
    )
    s = settings(tmp_path, announce={"templates": str(mine)})
    text = Renderer(s).render(meteor(), channel()).text
    assert text.startswith("🎙 New episode: Meteor Cloud") and text.endswith("(ep 107)")


def test_user_generic_reshare_beats_shipped(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "reshare.j2").write_text("Again: {{ title }}", encoding="utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    r = Renderer(s).render(meteor(), channel("chat", "apprise"), kind="reshare")
    assert r.text == f"Again: {TITLE}"


def test_channel_named_template(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "short.j2").write_text("{{ guests_text }} on {{ podcast.title }}", encoding="utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    renderer = Renderer(s)
    r = renderer.render(meteor(), channel(template="short"))  # ".j2" is optional
    assert r.text == "@filipenevola on Shipping Things"
    assert r.template == "short.j2"
    # a name found only in the shipped folder
    r = renderer.render(meteor(), channel(template="reshare.j2"))
    assert r.text.startswith("🎧 From the archive:")
    with pytest.raises(TemplateProblem, match="no such template") as info:
        renderer.render(meteor(), channel(template="missing.j2"))
    assert info.value.template == "missing.j2"


def test_missing_user_folder_is_a_problem(tmp_path: Path) -> None:
    s = settings(tmp_path, announce={"templates": "nowhere"})
    with pytest.raises(TemplateProblem, match="does not exist"):
        Renderer(s).render(meteor(), channel())


def test_syntax_error_reports_template_and_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text("line one\nline two\n{{ title \nline four\n", "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    with pytest.raises(TemplateProblem) as info:
        Renderer(s).render(meteor(), channel())
    assert info.value.template == "twitter.j2"
    assert info.value.line in (3, 4)  # Jinja reports where the unclosed tag is detected
    assert "twitter.j2" in str(info.value) and f"line {info.value.line}" in str(info.value)


def test_undefined_variable_reports_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text("{{ title }}\n\n{{ episode.no_such_thing }}\n", "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    with pytest.raises(TemplateProblem) as info:
        Renderer(s).render(meteor(), channel())
    assert info.value.line == 3
    assert "no_such_thing" in info.value.message


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ episode.__class__ }}",
        "{{ title.format.__globals__ }}",
    ],
)
def test_sandbox_blocks_python_internals(tmp_path: Path, source: str) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "evil.j2").write_text(source, "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    with pytest.raises(TemplateProblem) as info:
        Renderer(s).render(meteor(), channel(template="evil.j2"))
    assert "unsafe" in info.value.message and "not allowed" in info.value.message
    assert "<class" not in str(info.value)
    assert info.value.line == 1


def test_sandbox_context_is_read_only(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text("{{ hashtags.append('x') }}", "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    with pytest.raises(TemplateProblem, match="not allowed"):
        Renderer(s).render(meteor(), channel())


def test_include_of_missing_template_reports_line(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "twitter.j2").write_text("{{ title }}\n{% include 'nope.j2' %}", "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    with pytest.raises(TemplateProblem, match=r"does not exist: nope\.j2") as info:
        Renderer(s).render(meteor(), channel())
    assert info.value.line == 2


def test_check_lists_broken_templates(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bluesky.j2").write_text("{% if %}", "utf-8")
    s = settings(tmp_path, announce={"templates": "mine"})
    problems = Renderer(s).check()
    assert [p.template for p in problems] == ["bluesky.j2"]
    assert Renderer(settings(tmp_path)).check() == []


# --- fitting ---------------------------------------------------------------------------------


def test_x_drops_hashtags_from_the_end_first(tmp_path: Path) -> None:
    s = settings(tmp_path, announce={"max_hashtags": 5})
    full = Renderer(s).render(meteor(), channel())
    # a limit that leaves room for exactly the first two hashtags
    limit = full.length - len(" #react #aws") - len(" #golang")
    r = Renderer(s).render(meteor(), channel(limit=limit))
    assert r.fits and r.text.endswith(f"{URL} #meteor #node")
    assert TITLE in r.text
    assert r.adjustments == ["dropped 3 hashtag(s)"]


def test_x_overlong_title_shortened_after_hashtags(tmp_path: Path) -> None:
    long_url = URL + "/" + "very-long-path-segment" * 10
    words = ("Scaling a Hosting Platform Built on Meteor Node and Go " * 8).split()
    title = " ".join(words)
    ep = meteor(title=title, url=long_url)
    r = Renderer(settings(tmp_path)).render(ep, channel())
    assert r.fits and r.length <= 280
    assert "#" not in r.text  # every hashtag went before the title was touched
    assert long_url in r.text  # the URL is intact ...
    assert len(r.text) > 280  # ... and counted as 23, not its 260-odd characters
    assert r.length == fit.count(r.text.replace(long_url, "https://t.co/abc"), "twitter")
    head = r.text.split(": ", 1)[1].split("… with @filipenevola.")[0]
    assert title.startswith(head) and title[len(head)] == " "  # cut at a word boundary
    assert r.adjustments == ["dropped 3 hashtag(s)", "shortened the title"]
    # the longest fitting cut: one more word would not fit
    longer = " ".join(words[: len(head.split()) + 1]) + "…"
    assert fit.count(r.text.replace(head + "…", longer), "twitter") > 280


def test_cjk_and_emoji_count_double_on_x(tmp_path: Path) -> None:
    title = "日本語のポッドキャスト 🎉👩‍👩‍👧 " * 12
    ep = meteor(title=title.strip(), tags=[], guests=[])
    r = Renderer(settings(tmp_path)).render(ep, channel())
    assert r.fits and r.length <= 280
    kept = r.text.split(": ", 1)[1].split(" https://")[0]  # the shortened title, with "…"
    assert kept.endswith("…") and title.startswith(kept[:-1])
    # every CJK character, emoji (ZWJ sequences too) and the ellipsis weigh 2, a space 1
    clusters = list(grapheme.graphemes(kept))
    spaces = clusters.count(" ")
    assert fit.count(kept, "twitter") == 2 * (len(clusters) - spaces) + spaces
    prefix = fit.count("🎙 New episode: ", "twitter")  # the microphone weighs 2
    assert r.length == prefix + fit.count(kept, "twitter") + len(" ") + 23


def test_bluesky_never_splits_graphemes(tmp_path: Path) -> None:
    family = "👩‍👩‍👧‍👦"
    accented = "cafe\u0301"  # e + combining acute
    title = " ".join([f"{family}{accented}{family}"] * 60)
    ep = meteor(title=title, tags=[], guests=[])
    r = Renderer(settings(tmp_path)).render(ep, channel("b", "bluesky"))
    assert r.fits and r.length == grapheme.length(r.text) <= 300
    kept = r.text.split(": ", 1)[1].split("… ")[0]
    assert title.startswith(kept + " ")
    clusters = set(grapheme.graphemes(r.text))
    assert family in clusters and "e\u0301" in clusters
    assert "\u200d" not in "".join(c for c in clusters if c not in (family,))


def test_bluesky_single_long_word_cut_at_grapheme_boundary(tmp_path: Path) -> None:
    unit = "👨🏽‍💻e\u0301"
    ep = meteor(title=unit * 200, tags=[], guests=[], url="https://e.x/1")
    r = Renderer(settings(tmp_path)).render(ep, channel("b", "bluesky"))
    assert r.fits and r.length == 300
    kept = r.text.split(": ", 1)[1].split("… ")[0]
    gs = list(grapheme.graphemes(kept))
    assert all(g in ("👨🏽‍💻", "e\u0301") for g in gs)


def test_mastodon_limit_from_caller_and_channel_override(tmp_path: Path) -> None:
    guests = [{"name": "Filipe Névola", "mastodon": "@filipe@a-very-long-instance-name.example"}]
    ep = meteor(guests=guests)
    renderer = Renderer(settings(tmp_path))
    r = renderer.render(ep, channel("m", "mastodon"), limit=140)
    assert r.limit == 140 and r.fits
    # the mention counts only "@filipe", the URL 23
    assert r.length == fit.count(r.text, "mastodon") < len(r.text) - 30
    r = renderer.render(ep, channel("m", "mastodon", limit=90), limit=140)
    assert r.limit == 90 and r.length <= 90
    assert "@filipe@a-very-long-instance-name.example" in r.text  # never cut


def test_apprise_shortens_description_not_title(tmp_path: Path) -> None:
    desc = "A sentence about hosting, Meteor and Go. " * 80
    ep = meteor(description=desc)
    r = Renderer(settings(tmp_path)).render(ep, channel("chat", "apprise", limit=600))
    assert r.fits and r.length == len(r.text) <= 600
    assert TITLE in r.text and URL in r.text
    assert "…" in r.text and "shortened the description" in r.adjustments


def test_discord_default_and_caller_limit(tmp_path: Path) -> None:
    r = Renderer(settings(tmp_path)).render(meteor(), channel("chat", "apprise"), limit=4096)
    assert r.limit == 4096


def test_nothing_fits_returns_shortest_with_fits_false(tmp_path: Path) -> None:
    r = Renderer(settings(tmp_path)).render(meteor(), channel(limit=40))
    assert not r.fits and r.length > 40
    assert URL in r.text and "@filipenevola" in r.text
    assert "#" not in r.text and "Meteor…" in r.text


# --- helpers ---------------------------------------------------------------------------------


def test_helpers() -> None:
    assert join_names(["A"]) == "A"
    assert join_names(["A", "B"]) == "A and B"
    assert join_names(["A", "B", "C"]) == "A, B and C"
    assert human_duration(6186) == "1h 43m"
    assert human_duration(7200) == "2h"
    assert human_duration(170) == "3m"
    assert human_duration(45) == "45s"
    assert human_duration(None) == ""
    assert headline("Is Go Fast?", "@a") == "Is Go Fast? With @a."
    assert headline("Done.", "@a") == "Done, with @a."
    assert headline("Done", "") == "Done."
    assert twitter_handle("@nick_j") == "nick_j"
    assert twitter_handle("https://twitter.com/nick_j") == "nick_j"
    assert twitter_handle("not a handle") == ""
    assert mastodon_handle("https://fosstodon.org/@filipe") == "@filipe@fosstodon.org"
    assert mastodon_handle("filipe") == ""
    assert bluesky_handle("https://bsky.app/profile/Filipe.bsky.social") == "filipe.bsky.social"
    assert bluesky_handle("filipe") == ""
    assert bluesky_handle("did:plc:abc123") == ""
