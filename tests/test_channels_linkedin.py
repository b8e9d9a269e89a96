"""The LinkedIn channel against a fake Posts API (real HTTP on 127.0.0.1), and one
`run-once` end to end."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fakes import FakeLinkedIn, refused_url
from fakes.linkedin import little_error
from pydantic import ValidationError
from sqlmodel import select

from syndicator.announce import fit
from syndicator.channels.base import PermanentError, Post, Sent, TransientError, UnknownOutcome
from syndicator.channels.linkedin import LinkedInKind
from syndicator.channels.linkedin.client import LinkedInChannel, post_url
from syndicator.channels.linkedin.shared import little_text, plain_text
from syndicator.channels.registry import ConfigurationError, make_channel
from syndicator.channels.tids import make_tid
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings

TIMEOUT = 0.5
URL = "https://show.example/podcast/107"
TEXT = "🎙 New episode: Meteor (and Blaze) with Filipe_Névola #meteor #js " + URL


def post(text: str = TEXT, url: str | None = URL, created_at: datetime | None = None) -> Post:
    now = created_at or datetime.now(UTC)
    return Post(
        delivery_id=1, text=text, idempotency_key="announce:1:li", record_key=make_tid(now, 1),
        created_at=now, url=url, title="Episode 107: Meteor",
        description="Filipe on Meteor & Blaze",
    )  # fmt: skip


@pytest.fixture
def li() -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        yield fake


def channel(fake: FakeLinkedIn, monkeypatch: pytest.MonkeyPatch, **cfg: object) -> LinkedInChannel:
    for k, v in fake.env("li").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig.model_validate(
        {"name": "li", "type": "linkedin", "api_url": fake.url, "author": fake.author, **cfg}
    )
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, LinkedInChannel)
    return ch


# ---- sent ----------------------------------------------------------------------------------


def test_send_creates_a_post_with_an_article_card(li: FakeLinkedIn, monkeypatch) -> None:
    sent = channel(li, monkeypatch).send(post())
    [req] = li.requests("POST", "^/rest/posts$")
    assert req.headers["linkedin-version"] == "202611"
    assert req.headers["x-restli-protocol-version"] == "2.0.0"
    assert req.headers["authorization"] == f"Bearer {li.token}"
    body = req.json()
    assert body["author"] == li.author
    assert body["visibility"] == "PUBLIC" and body["lifecycleState"] == "PUBLISHED"
    assert body["distribution"]["feedDistribution"] == "MAIN_FEED"
    assert body["content"] == {
        "article": {
            "source": URL,
            "title": "Episode 107: Meteor",
            "description": "Filipe on Meteor & Blaze",
        }
    }
    # reserved characters escaped; the hashtags are LinkedIn's hashtag template
    assert body["commentary"] == (
        "🎙 New episode: Meteor \\(and Blaze\\) with Filipe\\_Névola "
        "{hashtag|\\#|meteor} {hashtag|\\#|js} " + URL
    )
    [p] = li.posts
    assert sent == Sent(
        remote_id=p.urn, remote_url=f"https://www.linkedin.com/feed/update/{p.urn}/"
    )


def test_a_post_without_an_episode_url_is_text_only(li: FakeLinkedIn, monkeypatch) -> None:
    channel(li, monkeypatch).send(post("Just text", url=None))
    [req] = li.requests("POST", "^/rest/posts$")
    assert "content" not in req.json() and li.posts[0].article is None


def test_every_reserved_character_reaches_linkedin_as_text(li: FakeLinkedIn, monkeypatch) -> None:
    text = r"a|b {c} @d [e] (f) <g> #1 \h *i* _j_ ~k~ C# x@y.z"
    channel(li, monkeypatch).send(post(text, url=None))
    commentary = li.posts[0].commentary
    assert little_error(commentary) is None  # the fake would have refused it otherwise
    assert plain_text(commentary) == text
    assert commentary.count("\\") > text.count("\\")


def test_the_fake_refuses_unescaped_text() -> None:
    # what the channel guards against: LinkedIn cuts or refuses unescaped little text
    assert little_error("Meteor (and Blaze)") is not None
    assert little_error("Meteor \\(and Blaze\\)") is None
    assert little_error("@[Ann Lee](urn:li:person:abc) {hashtag|\\#|go}") is None


# ---- transient -----------------------------------------------------------------------------


def test_429_is_transient_with_retry_after(li: FakeLinkedIn, monkeypatch) -> None:
    li.rate_limit_next(retry_after=90)
    with pytest.raises(TransientError) as info:
        channel(li, monkeypatch).send(post())
    assert info.value.status == 429 and info.value.retry_after == 90
    assert li.posts == []


def test_connection_refused_is_transient(monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATOR_LI_ACCESS_TOKEN", "t")
    conf = ChannelConfig.model_validate(
        {"name": "li", "type": "linkedin", "api_url": refused_url(),
         "author": FakeLinkedIn.author}
    )  # fmt: skip
    with pytest.raises(TransientError, match="nothing was sent"):
        make_channel(conf, timeout=TIMEOUT).send(post())


# ---- permanent -----------------------------------------------------------------------------


def test_bad_token_is_permanent_and_names_the_variable(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    li.token = "rotated"
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert info.value.status == 401
    assert "Invalid access token" in info.value.message
    assert "SYNDICATOR_LI_ACCESS_TOKEN" in info.value.message
    assert li.posts == []


def test_author_the_token_cant_post_as_is_permanent(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch, author="urn:li:organization:999")
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert info.value.status == 403 and "w_organization_social" in info.value.message


def test_a_sunset_version_says_what_to_set(li: FakeLinkedIn, monkeypatch) -> None:
    with pytest.raises(PermanentError) as info:
        channel(li, monkeypatch, version="202301").send(post())
    assert info.value.status == 426 and "set `version`" in info.value.message


def test_too_long_is_permanent_with_linkedins_words(li: FakeLinkedIn, monkeypatch) -> None:
    with pytest.raises(PermanentError) as info:
        channel(li, monkeypatch, limit=5000).send(post("x" * 3001, url=None))
    assert info.value.status == 422 and "length exceeds 3000" in info.value.message


# ---- unknown, reconcile, resend ------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 504])
def test_5xx_is_unknown(li: FakeLinkedIn, monkeypatch, status: int) -> None:
    li.fail_next(status=status, body="<html>upstream error</html>")
    with pytest.raises(UnknownOutcome) as info:
        channel(li, monkeypatch).send(post())
    assert info.value.status == status


def test_timeout_is_unknown_and_fast(li: FakeLinkedIn, monkeypatch) -> None:
    li.hang_next(seconds=3)
    started = time.monotonic()
    with pytest.raises(UnknownOutcome, match="timed out"):
        channel(li, monkeypatch).send(post())
    assert time.monotonic() - started < 2.5


def test_lost_answer_then_reconcile_finds_the_post(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    p = post()
    li.drop_next(method="POST")  # LinkedIn stores the post, the answer is lost
    with pytest.raises(UnknownOutcome):
        ch.send(p)
    [stored] = li.posts
    assert ch.reconcile(p) == Sent(remote_id=stored.urn, remote_url=post_url(stored.urn))
    [finder] = li.requests("GET", "^/rest/posts$")
    assert finder.arg("q") == "author" and finder.arg("author") == li.author
    assert "author=urn%3Ali%3Aperson%3A" in finder.raw_query  # Rest.li 2.0 encodes the URN
    assert finder.arg("sortBy") == "LAST_MODIFIED"
    assert len(li.posts) == 1


def test_reconcile_none_when_not_posted_then_resend_posts_once(
    li: FakeLinkedIn, monkeypatch
) -> None:
    ch = channel(li, monkeypatch)
    p = post()
    li.fail_next(status=503, method="POST")  # refused before storing
    with pytest.raises(UnknownOutcome):
        ch.send(p)
    li.add_post(little_text("another announcement"), source="https://show.example/podcast/9")
    li.add_post(little_text(p.text), source="https://show.example/podcast/other")  # other card
    assert ch.reconcile(p) is None
    sent = ch.send(p)
    assert sent.remote_id == li.posts[-1].urn and len(li.posts) == 3


def test_reconcile_ignores_a_match_older_than_the_row(li: FakeLinkedIn, monkeypatch) -> None:
    p = post()
    li.add_post(little_text(p.text), source=URL, created_at=time.time() - 86400)
    assert channel(li, monkeypatch).reconcile(p) is None


def test_reconcile_pages_through_the_authors_posts(li: FakeLinkedIn, monkeypatch) -> None:
    p = post()
    ours = li.add_post(little_text(p.text), source=URL)
    for i in range(70):
        li.add_post(f"later post {i}", created_at=time.time() + 1 + i)
    found = channel(li, monkeypatch).reconcile(p)
    assert found is not None and found.remote_id == ours.urn
    starts = [r.arg("start") for r in li.requests("GET", "^/rest/posts$")]
    assert starts == ["0", "50"]


def test_reconcile_reads_past_an_old_post_edited_lately(li: FakeLinkedIn, monkeypatch) -> None:
    p = post()
    old = li.add_post("an old announcement", created_at=time.time() - 86400 * 30)
    ours = li.add_post(little_text(p.text), source=URL)
    for i in range(60):
        li.add_post(f"later post {i}", created_at=time.time() + 1 + i)
    # edited after everything else: first on page 1, while ours is on page 2
    li.edit(old.urn, "an old announcement, typo fixed", at=time.time() + 3600)
    found = channel(li, monkeypatch).reconcile(p)
    assert found is not None and found.remote_id == ours.urn
    assert len(li.requests("GET", "^/rest/posts$")) == 2


def test_reconcile_cannot_tell_when_reading_fails(li: FakeLinkedIn, monkeypatch) -> None:
    li.fail_next(status=503, method="GET", body="<html>down</html>")
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        channel(li, monkeypatch).reconcile(post())


def test_resend_of_a_duplicate_counts_as_sent(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    p = post()
    first = ch.send(p)
    again = ch.send(p)  # LinkedIn: 422 "Content is a duplicate of urn:li:share:…"
    assert again == first and len(li.posts) == 1


# ---- limit and counting --------------------------------------------------------------------


def test_count_is_the_escaped_commentary_in_utf16_units() -> None:
    kind = LinkedInKind()
    assert kind.count("plain words") == len("plain words")
    assert kind.count("a (b)") == len("a \\(b\\)") == 7  # each reserved character doubles
    assert kind.count("#go") == len("{hashtag|\\#|go}")
    assert kind.count("#1") == len("\\#1")  # no letter: not a hashtag, an escaped '#'
    assert kind.count("🎙") == 2  # outside the BMP: two UTF-16 code units, as Java counts
    assert fit.count("a_b", "linkedin") == 4 and fit.default_limit("linkedin") == 3000


def test_limit_is_3000_unless_configured(li: FakeLinkedIn, monkeypatch) -> None:
    assert channel(li, monkeypatch).limit() == 3000
    assert channel(li, monkeypatch, limit=1300).limit() == 1300


def test_text_that_counts_3000_is_accepted_and_3001_is_not(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch, limit=5000)
    at_limit = "(" * 1500  # 1,500 characters, 3,000 once escaped
    assert LinkedInKind().count(at_limit) == 3000
    ch.send(post(at_limit, url=None))
    with pytest.raises(PermanentError):
        ch.send(post("(" * 1500 + "x", url=None))
    assert len(li.posts) == 1


# ---- handles -------------------------------------------------------------------------------


def test_handles_are_urns_and_mentions_carry_the_name() -> None:
    kind = LinkedInKind()
    assert kind.handle(" urn:li:person:aB3_x-9 ") == "urn:li:person:aB3_x-9"
    assert kind.handle("urn:li:organization:2414183") == "urn:li:organization:2414183"
    # a profile URL or vanity name can't be mentioned through the API: the plain name shows
    assert kind.handle("https://www.linkedin.com/in/annlee") == ""
    assert kind.handle("@annlee") == ""
    assert kind.mention_for("urn:li:person:abc", "Ann  Lee") == "@[Ann Lee](urn:li:person:abc)"
    assert kind.mention_for("urn:li:person:abc", "Ann (the CTO)") == ""
    assert kind.mention_for("", "Ann Lee") == ""
    # the mention reaches LinkedIn as its mention element, the rest escaped around it
    assert little_text("with @[Ann Lee](urn:li:person:abc)!") == (
        "with @[Ann Lee](urn:li:person:abc)!"
    )
    assert little_text("mail @ann") == "mail \\@ann"


def test_a_guest_with_a_urn_is_mentioned_in_the_text(tmp_path: Path) -> None:
    from syndicator.announce.render import Renderer
    from syndicator.config import from_dict
    from syndicator.store.models import Episode

    settings = from_dict(
        {"podcast": {"title": "Shipping Things", "timezone": "UTC"},
         "handles": {"Bo Ek": {"linkedin": "urn:li:person:bo1"}},
         "channels": [{"name": "li", "type": "linkedin", "author": FakeLinkedIn.author}]},
        tmp_path,
    )  # fmt: skip
    ep = Episode(
        guid=URL, source="site", title="Billing", url=URL, description="About <billing>.",
        date=datetime(2026, 11, 24, tzinfo=UTC), tags=[],
        guests=[{"name": "Ann Lee", "linkedin": "urn:li:person:ann"}, {"name": "Bo Ek"},
                {"name": "Cy Fu", "linkedin": "https://www.linkedin.com/in/cyfu"}],
    )  # fmt: skip
    text = Renderer(settings).render(ep, settings.channel("li")).text
    assert (
        "Billing, with @[Ann Lee](urn:li:person:ann), @[Bo Ek](urn:li:person:bo1) and Cy Fu."
        in text
    ), text
    assert little_error(little_text(text)) is None


def test_installing_the_kind_leaves_stored_hashes_alone_but_a_handle_counts() -> None:
    from syndicator.sources.base import EpisodeData, Guest

    def ep(**handles: str) -> EpisodeData:
        return EpisodeData(
            guid="g", title="T", date=datetime(2026, 1, 1, tzinfo=UTC), key="k",
            guests=[Guest(name="A", handles=dict(handles))],
        )  # fmt: skip

    # the hash an episode had before LinkedIn was installed (no linkedin key in it)
    assert ep().content_hash() == (
        "13f44dbed0f38bf0f4168ccd65ddef03009e6fbd4e5ff24bf8fa2afe25f2097e"
    )
    assert ep(linkedin="urn:li:person:a").content_hash() != ep().content_hash()


def test_linkedin_is_a_registered_entry_point_with_its_template() -> None:
    from importlib.metadata import entry_points

    from syndicator.announce.render import shipped_templates_dir

    [ep] = [e for e in entry_points(group="syndicator.channels") if e.name == "linkedin"]
    assert ep.load() is LinkedInKind
    assert (shipped_templates_dir() / "linkedin.j2").is_file()


# ---- config --------------------------------------------------------------------------------


def test_config_errors_name_the_key_and_the_fix() -> None:
    base = {"name": "li", "type": "linkedin"}
    with pytest.raises(ValidationError) as info:
        ChannelConfig.model_validate({**base, "author": "annlee"})
    assert "urn:li:person:" in str(info.value) and "author" in str(info.value)
    with pytest.raises(ValidationError) as info:
        ChannelConfig.model_validate({**base, "author": FakeLinkedIn.author, "version": "2026-11"})
    assert "YYYYMM" in str(info.value)
    with pytest.raises(ValidationError) as info:
        ChannelConfig.model_validate({**base, "author": FakeLinkedIn.author, "api_url": "ftp://x"})
    assert "http(s)" in str(info.value)
    with pytest.raises(ValidationError) as info:
        ChannelConfig.model_validate({**base, "authr": FakeLinkedIn.author})
    assert "authr" in str(info.value)
    with pytest.raises(ConfigurationError, match="needs `author`"):
        make_channel(ChannelConfig.model_validate(base))


def test_missing_token_names_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("SYNDICATOR_LI_ACCESS_TOKEN", raising=False)
    conf = ChannelConfig.model_validate(
        {"name": "li", "type": "linkedin", "author": FakeLinkedIn.author}
    )
    with pytest.raises(ConfigurationError, match="SYNDICATOR_LI_ACCESS_TOKEN"):
        make_channel(conf)


def test_account_is_the_author_not_the_token(monkeypatch) -> None:
    kind = LinkedInKind()
    conf = ChannelConfig.model_validate(
        {"name": "li", "type": "linkedin", "author": FakeLinkedIn.author}
    )
    monkeypatch.setenv("SYNDICATOR_LI_ACCESS_TOKEN", "old")
    before = kind.account_key(conf)
    monkeypatch.setenv("SYNDICATOR_LI_ACCESS_TOKEN", "refreshed")
    assert kind.account_key(conf) == before and before
    assert kind.endpoint(conf) == f"https://api.linkedin.com as {FakeLinkedIn.author}"


# ---- the shared hooks ----------------------------------------------------------------------


def test_social_interact_has_no_protocol_for_linkedin() -> None:
    kind = LinkedInKind()
    assert kind.interact_protocol is None
    assert kind.social_interact(None, "urn:li:share:1", post_url("urn:li:share:1")) is None


def test_read_counts_from_the_social_actions_summary(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    sent = ch.send(post())
    assert sent.remote_id
    li.react(sent.remote_id, likes=12, comments=3)
    assert ch.read_counts(sent.remote_id) == {"likes": 12, "replies": 3}
    [req] = li.requests("GET", "^/rest/socialActions/")
    assert req.path == "/rest/socialActions/" + sent.remote_id.replace(":", "%3A")


def test_read_counts_not_offered_is_permanent(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    sent = ch.send(post())
    li.counts_offered = False
    with pytest.raises(PermanentError, match="not offered") as info:
        ch.read_counts(sent.remote_id or "")
    assert info.value.status == 403 and "r_member_social" in info.value.message


def test_read_counts_temporary_failures_are_transient(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    sent = ch.send(post())
    li.fail_next(status=503, method="GET", body="<html>busy</html>")
    with pytest.raises(TransientError):
        ch.read_counts(sent.remote_id or "")
    li.rate_limit_next(method="GET", retry_after=30)
    with pytest.raises(TransientError) as info:
        ch.read_counts(sent.remote_id or "")
    assert info.value.retry_after == 30


# ---- end to end through run-once -----------------------------------------------------------


def test_run_once_announces_on_linkedin_once(tmp_path: Path, site: Path, li: FakeLinkedIn) -> None:
    day = datetime.now(UTC) - timedelta(hours=2)
    (site / "_posts" / "podcast" / f"{day:%Y-%m-%d}-130-linked.md").write_text(
        f'---\ntitle: "Links (and Cards)"\ndate: {day:%Y-%m-%d %H:%M:%S} +0000\n'
        'category: "podcast"\nmp3_bytes: "100"\nmp3_duration: "2:00"\n'
        'guest: "Ann Lee"\nguest_linkedin: "urn:li:person:ann"\n'
        'guest_2: "Bo Ek"\nguest_2_linkedin: "https://www.linkedin.com/in/boek"\n'
        'guest_3: "Cy Fu"\n'
        'tags: ["go"]\ndescription: "Cards *and* links."\n---\nBody.\n'
    )
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[podcast]\ntitle = "Shipping It"\n[database]\nurl = "sqlite:///s.db"\n'
        '[announce]\nretry_base = "1s"\n'
        f'[[sources]]\nname = "episodes"\ntype = "jekyll"\nverify_audio = false\npath = "{site}"\n'
        'episode_url = "{site.url}/podcast/{slug}"\n'
        '[handles."Cy Fu"]\nlinkedin = "urn:li:organization:42"\n'
        f'[[channels]]\nname = "li"\ntype = "linkedin"\napi_url = "{li.url}"\n'
        f'author = "{li.author}"\ntimeout = "2s"\n'
    )
    env = {**os.environ, **li.env("li")}
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)  # fmt: skip

    li.drop_next(method="POST", path="^/rest/posts$")  # the first answer is lost
    first = cli("run-once")
    assert first.returncode in (0, 1), first.stderr
    for _ in range(2):
        time.sleep(1.1)
        cli("run-once")
    mine = [p for p in li.posts if "Links" in p.commentary]
    assert len(mine) == 1, [p.commentary for p in li.posts]
    [p] = mine
    assert p.commentary.startswith(
        "🎙 New episode of Shipping It: Links \\(and Cards\\), with @[Ann Lee](urn:li:person:ann), "
        "Bo Ek and @[Cy Fu](urn:li:organization:42)."
    )
    assert "Cards \\*and\\* links." in p.commentary
    assert p.article is not None and p.article["source"].endswith("/podcast/130-linked")
    assert "{hashtag|\\#|go}" in p.commentary
    assert li.requests("GET", "^/rest/posts$")  # the lost answer was settled by reading back
    rows = json.loads(cli("deliveries", "--json").stdout)
    li_rows = [r for r in rows if r["channel"] == "li" and r["state"] != "skipped"]
    assert li_rows and {r["state"] for r in li_rows} == {"sent"}, li_rows
    ours = next(r for r in li_rows if r["remote_id"] == p.urn)
    assert ours["remote_url"] == post_url(p.urn)
    # every post the channel made is a post of a distinct episode: nothing twice
    assert len({q.article["source"] for q in li.posts if q.article}) == len(li.posts)


# ---- the fake, driven from another process -------------------------------------------------


def test_the_fake_runs_under_serve_with_http_fault_controls() -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "--only", "linkedin", "--stdin"],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())["linkedin"]
        url, token = info["url"], info["env"]["SYNDICATOR_LINKEDIN_ACCESS_TOKEN"]
        ch = LinkedInChannel("linkedin", author=info["author"], access_token=token,
                             api_url=info["api_url"], timeout=TIMEOUT)  # fmt: skip
        faults = [{"kind": "drop", "store": True, "method": "POST"},
                  {"kind": "status", "status": 503, "method": "POST"},
                  {"kind": "hang", "seconds": 2, "store": False, "method": "POST"}]  # fmt: skip
        for f in faults:
            httpx.post(url + "/_fake/faults", json=f).raise_for_status()
        p = post()
        with pytest.raises(UnknownOutcome):
            ch.send(p)  # stored, answer dropped
        with pytest.raises(UnknownOutcome):
            ch.send(post("another", url=None))  # 503
        with pytest.raises(UnknownOutcome, match="timed out"):
            ch.send(post("a third", url=None))  # hangs, not stored
        assert ch.send(p).remote_id  # the duplicate answer names the stored post
        seen = httpx.get(url + "/_fake/received").json()
        assert [(r["fault"], r["stored"]) for r in seen] == [
            ("drop", True), ("status", False), ("hang", False), (None, True)
        ]  # fmt: skip
        ch.close()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


# ---- image posts ---------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _png(path: Path, colour: str) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 300), colour).save(path)
    return path


def image_post(image: Path, text: str = TEXT, media: dict | None = None) -> Post:
    return replace(
        post(text), image_file=str(image), image_sha256=_sha(image.read_bytes()),
        image_alt="Episode 107 card: Meteor", image_type="image/png", media=media,
    )  # fmt: skip


def test_upload_registers_then_puts_the_bytes_and_the_post_shows_the_image(
    li: FakeLinkedIn, monkeypatch, tmp_path: Path
) -> None:
    card = _png(tmp_path / "card.png", "#8e44ad")
    ch = channel(li, monkeypatch)
    p = image_post(card)
    media = ch.upload(p)
    [init] = li.requests("POST", "^/rest/images$")
    assert init.arg("action") == "initializeUpload"
    assert init.json() == {"initializeUploadRequest": {"owner": li.author}}
    assert init.headers["linkedin-version"] == "202611"
    [put] = li.requests("PUT", "^/dms-uploads/")
    assert put.headers["content-type"] == "image/png"
    assert put.headers["authorization"] == f"Bearer {li.token}"  # LinkedIn's own host
    assert media == {"id": next(iter(li.images))}
    assert _sha(li.images[media["id"]] or b"") == p.image_sha256
    sent = ch.send(replace(p, media=media))
    body = li.requests("POST", "^/rest/posts$")[0].json()
    # an image post; the link is in the text (LinkedIn takes one kind of content)
    assert body["content"] == {"media": {"id": media["id"], "altText": "Episode 107 card: Meteor"}}
    assert URL in plain_text(body["commentary"])
    [p_] = li.posts
    assert sent.remote_id == p_.urn and p_.media == body["content"]["media"]
    # a lost answer: the read-back finds the image post by its image and text
    assert ch.reconcile(replace(p, media=media)) == sent


def test_a_text_without_the_link_keeps_the_article_with_the_image_as_thumbnail(
    li: FakeLinkedIn, monkeypatch, tmp_path: Path
) -> None:
    card = _png(tmp_path / "card.png", "#16a085")
    ch = channel(li, monkeypatch)
    p = image_post(card, text="New episode: Meteor (no link in this text)")
    media = ch.upload(p)
    ch.send(replace(p, media=media))
    article = li.posts[0].article
    assert article is not None and article["source"] == URL
    assert article["thumbnail"] == media["id"]
    assert article["thumbnailAltText"] == "Episode 107 card: Meteor"


def test_the_token_goes_to_no_other_upload_host(li: FakeLinkedIn, monkeypatch, tmp_path) -> None:
    li.upload_base = f"http://localhost:{li.port}"  # the same fake, by another host name
    card = _png(tmp_path / "card.png", "#2980b9")
    media = channel(li, monkeypatch).upload(image_post(card))
    [put] = li.requests("PUT", "^/dms-uploads/")
    assert "authorization" not in put.headers
    assert _sha(li.images[media["id"]] or b"") == _sha(card.read_bytes())


def test_the_fake_refuses_an_image_never_uploaded(li: FakeLinkedIn, monkeypatch) -> None:
    ch = channel(li, monkeypatch)
    with pytest.raises(PermanentError, match="is not an uploaded image"):
        ch.send(replace(post(), media={"id": "urn:li:image:never"}))


def test_upload_failures_are_retried_or_refused(
    li: FakeLinkedIn, monkeypatch, tmp_path: Path
) -> None:
    card = _png(tmp_path / "card.png", "#c0392b")
    ch = channel(li, monkeypatch)
    li.fail_next(status=503, method="PUT", path="^/dms-uploads/")
    with pytest.raises(TransientError, match="503"):
        ch.upload(image_post(card))  # an orphan image at worst: try again
    li.fail_next(status=500, method="POST", path="^/rest/images$")
    with pytest.raises(TransientError):
        ch.upload(image_post(card))
    li.fail_next(status=403, method="POST", path="^/rest/images$")
    with pytest.raises(PermanentError, match="403"):
        ch.upload(image_post(card))  # refused: the sender posts without the image
    assert li.posts == []


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _card_settings(tmp_path: Path, url: str, site: Path, li: FakeLinkedIn):  # type: ignore[no-untyped-def]
    _png(tmp_path / "art.png", "#8e44ad")
    return make_settings(
        tmp_path, url,
        podcast={"title": "Shipping It", "link": "https://show.example", "timezone": "UTC",
                 "feed_url": "https://show.example/podcast/feed.xml", "image": "art.png"},
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=[{"name": "li", "type": "linkedin", "api_url": li.url, "author": li.author,
                   "timeout": "2s"}],
        feeds=[{"name": "main", "path": "public/podcast/feed.xml"}],
        cards={"image": "card"},
        announce={"window": "14d", "retry_base": "1s", "lease": "1s"},
    )  # fmt: skip


def _rows(url: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        return [d for d in s.exec(select(Delivery)).all() if d.state != "skipped"]


def test_run_once_posts_the_card_and_a_retry_reuses_the_upload(
    tmp_path: Path, db_url: str, site: Path, li: FakeLinkedIn, monkeypatch
) -> None:
    """Through the outbox: the image URN is on the row before the post; the post fails
    (5xx: unknown), the read-back finds nothing, and the resend uses the same image."""
    monkeypatch.setenv("SYNDICATOR_LI_ACCESS_TOKEN", li.token)
    li.fail_next(2, status=500, method="POST", path="^/rest/posts$")
    settings = _card_settings(tmp_path, db_url, site, li)
    run_once(settings, now=NOW)
    first = _rows(db_url)
    assert {d.state for d in first} == {"unknown"} and li.posts == []
    media = {d.id: d.payload["progress"]["media"] for d in first}
    assert all(m["id"] in li.images and m["sha256"] for m in media.values())
    run_once(settings, now=NOW + timedelta(minutes=10))
    rows = _rows(db_url)
    assert {d.state for d in rows} == {"sent"}, [(d.state, d.last_error) for d in rows]
    assert len(li.requests("POST", "^/rest/images$")) == len(li.images) == 2  # no 2nd upload
    by_urn = {d.remote_id: d for d in rows}
    for p in li.posts:
        row = by_urn[p.urn]
        assert row.payload["progress"]["media"] == media[row.id]  # reused, not redone
        assert p.media is not None and p.media["id"] == media[row.id]["id"]
        assert _sha(li.images[p.media["id"]] or b"") == row.payload["image_sha256"]
        assert p.media["altText"] == row.payload["image_alt"]


def test_run_once_with_a_refused_image_still_posts_with_the_link_card(
    tmp_path: Path, sqlite_url: str, site: Path, li: FakeLinkedIn, monkeypatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_LI_ACCESS_TOKEN", li.token)
    li.fail_next(status=403, method="POST", path="^/rest/images$")  # one upload refused
    settings = _card_settings(tmp_path, sqlite_url, site, li)
    report = run_once(settings, now=NOW)
    assert report.sends.sent == 2
    assert sorted(p.media is not None for p in li.posts) == [False, True]
    assert all(p.article is not None for p in li.posts if p.media is None)  # the link card
