"""Episode image cards: drawing (any script, wrapping, shrinking), caching by content,
alt text, and the frozen image going out on every network, the same bytes on a retry."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nostr_sdk import Keys
from PIL import Image
from sqlmodel import select

from syndicator.announce import cards
from syndicator.config import ConfigError, from_dict, load
from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery, Episode, Problem
from tests.conftest import make_settings
from tests.fakes.base import FakeServer, Received, Reply
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.nostr_relay import FakeRelay
from tests.fakes.pds import FakePDS
from tests.fakes.webhook import FakeWebhook
from tests.fakes.xapi import FakeX

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
BG = (0x1D, 0x2B, 0x53)  # the default background


def _media(payload: dict[str, Any]) -> Any:
    """What an upload gave, as kept on the row (the delivery's progress)."""
    return (payload.get("progress") or {}).get("media")


def _png(path: Path, colour: str, size: tuple[int, int] = (600, 600)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def _episode(**over: Any) -> Episode:
    data: dict[str, Any] = {
        "guid": "g-107",
        "source": "episodes",
        "number": 107,
        "title": "Meteor Cloud Is a Full Service Hosting Solution for Meteor Apps",
        "guests": [{"name": "Filipe Névola", "avatar": "filipe"}],
    }
    data.update(over)
    return Episode(**data)


@pytest.fixture
def show(tmp_path: Path) -> Any:
    _png(tmp_path / "art.png", "#c0392b")
    _png(tmp_path / "filipe.png", "#2980b9", (200, 200))
    return from_dict(
        {
            "podcast": {"title": "Meteor Show", "image": "art.png"},
            "cards": {"dir": "cards", "avatars": "{avatar}.png"},
        },
        tmp_path,
    )


# ---- drawing ---------------------------------------------------------------------------


def test_alt_text_names_episode_title_and_guests() -> None:
    assert cards.alt_text(_episode()) == (
        "Episode 107 card: Meteor Cloud Is a Full Service Hosting Solution for Meteor Apps, "
        "with Filipe Névola"
    )
    two = _episode(number=None, title="Q&A", guests=[{"name": "Ann"}, {"name": "Bo"}])
    assert cards.alt_text(two) == "Episode card: Q&A, with Ann and Bo"


def test_every_script_goes_to_a_font_that_has_it(show: Any) -> None:
    r = cards.CardRenderer(show.cards)
    fonts = r.title_fonts  # DejaVu Bold, then the CJK fallback
    runs = fonts.runs("Névola 日本語 한국어 Ωμέγα ☕📄 ❤\ufe0f\U0001d800")
    by_font: dict[str, str] = {}
    for i, t in runs:
        by_font[fonts.paths[i].name] = by_font.get(fonts.paths[i].name, "") + t
    assert "Névola" in by_font["DejaVuSans-Bold.ttf"]
    assert "Ωμέγα" in by_font["DejaVuSans-Bold.ttf"] and "☕" in by_font["DejaVuSans-Bold.ttf"]
    assert "日本語" in by_font["DroidSansFallback-CJK.ttf"]
    assert "한국어" in by_font["NanumSquareR.ttf"]
    # emoji: the colour font, and a text-style symbol asked for as emoji (U+FE0F) too
    assert by_font["NotoColorEmoji-subset.ttf"] == "📄❤"
    joined = "".join(t for _, t in runs)
    assert "\U0001d800" not in joined and "\ufe0f" not in joined  # no glyph: left out
    # the CJK glyphs are really drawn (ink, not an empty or .notdef box per character)
    img = Image.new("L", (400, 100), 0)
    fonts.draw(img, (0, 0), "日本語", 60, "white")
    ink = img.getbbox()
    assert ink is not None and ink[2] - ink[0] > 150
    boxes = Image.new("L", (400, 100), 0)
    fonts.draw(boxes, (0, 0), "日本", 60, "white")
    assert img.tobytes() != boxes.tobytes()


def _colour_mask(img: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """White where a pixel in `box` is neither the background nor a blend of it with the
    white title (those are all close to grey or navy): an emoji's colours."""
    rgb = img.convert("RGB").crop(box)
    data = rgb.tobytes()
    out = bytearray(len(data) // 3)
    for i in range(len(out)):
        r, g, b = data[3 * i : 3 * i + 3]
        out[i] = 255 if max(r, g, b) - min(r, g, b) > 60 and (r, g, b) != BG else 0
    return Image.frombytes("L", rgb.size, bytes(out))


def test_emoji_in_a_title_are_drawn_in_colour(show: Any) -> None:
    r = cards.CardRenderer(show.cards)
    spec = cards.spec_for(show, _episode(title="🚀🎙️ Launch day"), (1200, 675), r)
    plain = cards.spec_for(show, _episode(title="Launch day"), (1200, 675), r)
    # the title's box: right of the artwork, below "Episode 107", above the guests
    box = (675, 101, 1200, 540)
    mask = _colour_mask(r.draw(spec), box)
    assert _colour_mask(r.draw(plain), box).getbbox() is None  # white text only
    ink = mask.getbbox()
    assert ink is not None  # drawn: not left out, not a white box (tofu)
    w, h = ink[2] - ink[0], ink[3] - ink[1]
    assert h > 40 and w > 1.5 * h  # two emoji side by side at the title's size
    assert sum(mask.histogram()[255:]) > 2000
    # not one box twice: the rocket and the microphone differ
    left = mask.crop((ink[0], ink[1], ink[0] + w // 2, ink[3]))
    right = mask.crop((ink[0] + w // 2, ink[1], ink[0] + 2 * (w // 2), ink[3]))
    assert left.tobytes() != right.tobytes()


def test_a_long_title_wraps_and_shrinks_to_fit(show: Any) -> None:
    r = cards.CardRenderer(show.cards)
    short_size, short_lines = cards.fit_title(r.title_fonts, "Short", 600, 400, (72, 28))
    long_title = " ".join(["Extraordinarily"] * 30)
    size, lines = cards.fit_title(r.title_fonts, long_title, 600, 400, (72, 28))
    assert short_size == 72 and short_lines == ["Short"]
    assert size < short_size and len(lines) > 1
    assert len(lines) * size * 1.2 <= 400
    assert all(r.title_fonts.width(line, size) <= 600 for line in lines)
    # CJK has no spaces: it still breaks, between characters
    cjk = cards.wrap(r.title_fonts, "東京の小さな出版社がオープンソースで本を作る話" * 3, 48, 500)
    assert len(cjk) > 1 and all(r.title_fonts.width(line, 48) <= 500 for line in cjk)


def test_the_card_shows_artwork_title_and_avatar(show: Any) -> None:
    card = cards.make_card(show, _episode(title="Névola 日本語のタイトル"), (1200, 675))
    img = Image.open(card.path).convert("RGB")
    assert img.size == (1200, 675)
    assert card.mime == "image/png"
    assert card.sha256 == hashlib.sha256(card.path.read_bytes()).hexdigest()
    assert img.getpixel((200, 300)) == (0xC0, 0x39, 0x2B)  # the artwork, left
    assert img.getpixel((1190, 20)) == BG
    # the round avatar sits in the guest row, left of the name
    colours = {img.getpixel((x, y)) for x in range(660, 760) for y in range(540, 620)}
    assert (0x29, 0x80, 0xB9) in colours
    # the title's white ink is on the right half
    white = sum(
        1
        for x in range(660, 1200, 3)
        for y in range(90, 500, 3)
        if img.getpixel((x, y)) == (255,) * 3
    )
    assert white > 200


def test_made_once_per_content_and_size(show: Any) -> None:
    a = cards.make_card(show, _episode(), (1200, 675))
    mtime = a.path.stat().st_mtime_ns
    again = cards.make_card(show, _episode(), (1200, 675))
    assert again.path == a.path and a.path.stat().st_mtime_ns == mtime
    edited = cards.make_card(show, _episode(title="A fixed typo"), (1200, 675))
    other_size = cards.make_card(show, _episode(), (1200, 630))
    assert len({a.path, edited.path, other_size.path}) == 3
    assert Image.open(other_size.path).size == (1200, 630)


def test_a_renderer_reads_a_file_once_and_sees_it_change(show: Any, tmp_path: Path) -> None:
    r = cards.CardRenderer(show.cards)
    first = r.read("art.png", show)
    assert r.read("art.png", show) is first  # every card of a pass: read and hashed once
    a = cards.make_card(show, _episode(), (1200, 675), r)
    assert r.found(a.path) == a.sha256  # a second channel of this size: the same card
    assert r.found(a.path.with_name("card-none.png")) is None
    _png(tmp_path / "art.png", "#16a085", (500, 500))  # a new artwork between two cards
    st = (tmp_path / "art.png").stat()
    os.utime(tmp_path / "art.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert r.read("art.png", show).sha256 != first.sha256
    b = cards.make_card(show, _episode(), (1200, 675), r)
    assert b.path != a.path
    assert Image.open(b.path).convert("RGB").getpixel((200, 300)) == (0x16, 0xA0, 0x85)


def test_missing_or_broken_artwork_is_a_clear_error(show: Any, tmp_path: Path) -> None:
    (tmp_path / "art.png").unlink()
    with pytest.raises(cards.CardError, match=r"art\.png: can't read it"):
        cards.make_card(show, _episode(), (1200, 675))
    (tmp_path / "art.png").write_bytes(b"not an image at all")
    with pytest.raises(cards.CardError, match="not an image Pillow can read"):
        cards.make_card(show, _episode(), (1200, 675))


class _Files(FakeServer):
    """Serves `files` by path (an avatar host)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__()
        self.files = files

    def app(self, req: Received) -> Reply:
        body = self.files.get(req.path)
        if body is None:
            return Reply(404, b"")
        return Reply(200, body, content_type="image/png")


def test_a_remote_avatar_is_fetched_once_bounded(show: Any) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100), "#27ae60").save(buf, "PNG")
    with _Files({"/a.png": buf.getvalue(), "/big.png": b"x" * 3000}) as host:
        url = host.url + "/a.png"
        ep = _episode(guests=[{"name": "Ann", "avatar": url}])
        card = cards.make_card(show, ep, (1200, 675))
        img = Image.open(card.path).convert("RGB")
        assert (0x27, 0xAE, 0x60) in {img.getpixel((x, 580)) for x in range(660, 760)}
        cards.make_card(show, _episode(title="other", guests=ep.guests), (1200, 675))
        assert len(host.requests("GET", "^/a.png$")) == 1  # the second card used the cache
        show.cards.fetch_max_bytes = 1024
        with pytest.raises(cards.CardError, match="larger than"):
            cards.read_image(host.url + "/big.png", show)
        with pytest.raises(cards.CardError, match="HTTP 404"):
            cards.read_image(host.url + "/none.png", show)
        host.hang_next(seconds=3, method="GET", path="/slow")
        show.cards.fetch_timeout = timedelta(seconds=0.5)
        with pytest.raises(cards.CardError, match="could not download"):
            cards.read_image(host.url + "/slow.png", show)


# ---- announcing with the image ---------------------------------------------------------

NSEC = Keys.generate().secret_key().to_bech32()


@pytest.fixture
def nets(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with FakeX() as x, FakeMastodon() as m, FakePDS() as p, FakeWebhook() as h, \
            FakeRelay() as r:  # fmt: skip
        env = {**x.env("x"), "SYNDICATOR_MASTODON_ACCESS_TOKEN": m.token, **p.env("bluesky"),
               "SYNDICATOR_NOSTR_NSEC": NSEC}  # fmt: skip
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield {"x": x, "mastodon": m, "bluesky": p, "hook": h, "nostr": r}


def _settings(tmp_path: Path, url: str, site: Path, n: dict[str, Any], **cards_over: Any):  # type: ignore[no-untyped-def]
    _png(tmp_path / "art.png", "#8e44ad")
    return make_settings(
        tmp_path, url,
        podcast={"title": "Shipping It", "link": "https://show.example", "timezone": "UTC",
                 "feed_url": "https://show.example/podcast/feed.xml", "image": "art.png"},
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=[
            {"name": "x", "type": "twitter", "api_url": n["x"].url, "timeout": "2s"},
            {"name": "mastodon", "type": "mastodon", "instance": n["mastodon"].url,
             "timeout": "2s"},
            {"name": "bluesky", "type": "bluesky", "service": n["bluesky"].url,
             "handle": n["bluesky"].handle, "timeout": "2s"},
            {"name": "hook", "type": "apprise", "timeout": "2s",
             "url": f"json://127.0.0.1:{n['hook'].port}/hook"},
            {"name": "nostr", "type": "nostr", "relays": [n["nostr"].ws_url], "timeout": "2s"},
        ],
        feeds=[{"name": "main", "path": "public/podcast/feed.xml"}],
        cards={"image": "card", **cards_over},
        announce={"window": "14d", "retry_base": "1s", "lease": "1s"},
    )  # fmt: skip


def _rows(url: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        return [d for d in s.exec(select(Delivery)).all() if d.state != "skipped"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sent_images(n: dict[str, Any]) -> dict[str, list[str]]:
    """The sha256 of the image each network got with each post."""
    out: dict[str, list[str]] = {}
    x = n["x"]
    out["x"] = [_sha(x.uploads[m]) for t in x.tweets for m in t.media_ids]
    masto = n["mastodon"]
    out["mastodon"] = []
    for st in masto.statuses():
        for att in st.get("media_attachments") or []:
            r = masto._http.get(att["url"], timeout=10)
            out["mastodon"].append(_sha(r.content))
    pds = n["bluesky"]
    out["bluesky"] = [
        _sha(pds.blobs[p["embed"]["external"]["thumb"]["ref"]["$link"]])
        for p in pds.posts()
        if "thumb" in p["embed"]["external"]
    ]
    out["hook"] = [
        _sha(base64.b64decode(a["base64"]))
        for b in n["hook"].bodies("/hook")
        for a in b.get("attachments") or []
    ]
    out["nostr"] = [
        next(v.removeprefix("x ") for v in t[1:] if v.startswith("x "))
        for ev in n["nostr"].notes()
        for t in ev["tags"]
        if t[0] == "imeta"
    ]
    return out


def test_every_network_gets_the_frozen_card(
    tmp_path: Path, db_url: str, site: Path, nets: dict[str, Any]
) -> None:
    sqlite_url = db_url  # both stores: SQLite and PostgreSQL
    bonus = next(site.glob("_posts/podcast/*-7-bonus-*.md"))
    text = bonus.read_text(encoding="utf-8")
    bonus.write_text(text.replace("---\n", '---\nimage_alt: "A <b>year</b> of episodes"\n', 1))
    settings = _settings(tmp_path, sqlite_url, site, nets)
    report = run_once(settings, now=NOW)
    assert report.sends.sent == 10, report.sends.events
    rows = _rows(sqlite_url)
    frozen = {(d.channel, d.episode_id): d.payload for d in rows}
    for p in frozen.values():
        assert Path(p["image_file"]).read_bytes()
        assert _sha(Path(p["image_file"]).read_bytes()) == p["image_sha256"]
        assert p["image_alt"].startswith("Episode 6 card: ") or p["image_alt"] == (
            "A year of episodes"
        )
    # the card sits beside the feed, where the site serves it
    card_dir = tmp_path / "public" / "podcast" / "cards"
    assert {Path(p["image_file"]).parent for p in frozen.values()} == {card_dir}
    nostr_urls = {p["image_url"] for (ch, _), p in frozen.items() if ch == "nostr"}
    assert all(u.startswith("https://show.example/podcast/cards/card-") for u in nostr_urls)
    # bluesky's link card is 1.91:1, the others 16:9
    sizes = {ch: Image.open(p["image_file"]).size for (ch, _), p in frozen.items()}
    assert sizes["bluesky"] == (1200, 630) and sizes["x"] == (1200, 675)
    sent = _sent_images(nets)
    for ch, shas in sent.items():
        expect = sorted(p["image_sha256"] for (c, _), p in frozen.items() if c == ch)
        assert sorted(shas) == expect, ch
    # alt text travels with it
    assert sorted(nets["x"].alt_texts.values()) == sorted(
        p["image_alt"] for (c, _), p in frozen.items() if c == "x"
    )
    masto_alts = {
        a["description"] for st in nets["mastodon"].statuses() for a in st["media_attachments"]
    }
    assert any(
        "Billing for a SaaS Without Losing Sleep, with Ayodele Bankole" in a for a in masto_alts
    )
    # front matter image_alt wins (as plain text)
    assert "A year of episodes" in nets["x"].alt_texts.values()
    assert "A year of episodes" in masto_alts
    note = nets["nostr"].notes()[0]
    assert any(u in note["content"] for u in nostr_urls)


def test_a_retry_sends_the_same_image_and_uploads_once(
    tmp_path: Path, sqlite_url: str, site: Path, nets: dict[str, Any]
) -> None:
    """The upload succeeds, the post is lost: the retry reuses the stored media id."""
    x, masto, pds = nets["x"], nets["mastodon"], nets["bluesky"]
    x.drop_next(2, store=False, method="POST", path="/2/tweets")
    masto.fail_next(2, status=503, store=False, method="POST", path="/api/v1/statuses")
    pds.fail_next(2, status=502, store=False, method="POST", path="putRecord")
    settings = _settings(tmp_path, sqlite_url, site, nets)
    run_once(settings, now=NOW)
    first = {(d.channel, d.episode_id): d.payload for d in _rows(sqlite_url)}
    media = {k: _media(p) for k, p in first.items() if k[0] in ("x", "mastodon", "bluesky")}
    assert all(m and m["sha256"] for m in media.values()), {
        k: (m, first[k].get("progress")) for k, m in media.items() if not m
    }
    uploads = (len(x.uploads), len(masto.posts()), len(pds.blobs))
    for later in (1, 2, 3):
        run_once(settings, now=NOW + timedelta(minutes=10 * later))
    rows = _rows(sqlite_url)
    assert {d.state for d in rows} == {"sent"}, [(d.channel, d.state, d.last_error) for d in rows]
    for d in rows:
        if d.channel in ("x", "mastodon", "bluesky"):
            assert _media(d.payload) == media[(d.channel, d.episode_id)]  # reused, not redone
    assert len(x.uploads) == uploads[0] == 2
    assert len(pds.blobs) == uploads[2] == 2
    assert len(masto.requests("POST", r"^/api/v2/media$")) == 2
    sent = _sent_images(nets)
    for ch in ("x", "mastodon", "bluesky"):
        assert sorted(sent[ch]) == sorted(
            p["image_sha256"] for (c, _), p in first.items() if c == ch
        )
    assert len(x.tweets) == 2 and len(pds.posts()) == 2


def test_an_expired_upload_is_redone_with_the_same_bytes(
    tmp_path: Path, sqlite_url: str, site: Path, nets: dict[str, Any]
) -> None:
    pds = nets["bluesky"]
    pds.fail_next(2, status=502, store=False, method="POST", path="putRecord")
    settings = _settings(tmp_path, sqlite_url, site, nets)
    run_once(settings, now=NOW)
    assert len(pds.blobs) == 2
    with session(upgrade(sqlite_url), write=True) as s:
        for d in s.exec(select(Delivery).where(Delivery.channel == "bluesky")).all():
            if m := _media(d.payload):
                old = datetime.fromisoformat(m["at"]) - timedelta(hours=2)
                progress = {**d.payload["progress"], "media": {**m, "at": old.isoformat()}}
                d.payload = {**d.payload, "progress": progress}
                s.add(d)
    run_once(settings, now=NOW + timedelta(minutes=10))
    uploads = pds.requests("POST", r"uploadBlob")
    assert len(uploads) == 4  # uploaded again: the blob had expired
    assert {_sha(u.body) for u in uploads[:2]} == {_sha(u.body) for u in uploads[2:]}
    assert len(pds.posts()) == 2


def test_a_card_that_cant_be_made_is_a_problem_and_the_post_goes_out(
    tmp_path: Path, sqlite_url: str, site: Path, nets: dict[str, Any]
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, nets)
    (tmp_path / "art.png").write_bytes(b"\x89PNG broken")
    report = run_once(settings, now=NOW)
    assert report.sends.sent == 10
    assert all(not d.payload.get("image_file") for d in _rows(sqlite_url))
    assert sum(len(v) for v in _sent_images(nets).values()) == 0
    with session(upgrade(sqlite_url)) as s:
        probs = [p for p in s.exec(select(Problem)).all() if p.kind == "card"]
    assert probs and all("not an image Pillow can read" in p.message for p in probs)
    assert {p.source for p in probs} == {f"card:{c}" for c in nets}


def test_a_card_file_changed_after_freezing_is_not_sent(
    tmp_path: Path, sqlite_url: str, site: Path, nets: dict[str, Any]
) -> None:
    masto = nets["mastodon"]
    masto.fail_next(2, status=429, store=False, method="POST", path="/api/v2/media")
    settings = _settings(tmp_path, sqlite_url, site, nets)
    run_once(settings, now=NOW)
    for d in _rows(sqlite_url):
        if d.channel == "mastodon":
            Path(d.payload["image_file"]).write_bytes(b"changed")
    run_once(settings, now=NOW + timedelta(minutes=10))
    statuses = masto.statuses()
    assert len(statuses) == 2 and all(not st["media_attachments"] for st in statuses)


def test_image_modes_per_channel_and_feed(
    tmp_path: Path, sqlite_url: str, site: Path, nets: dict[str, Any]
) -> None:
    settings = _settings(tmp_path, sqlite_url, site, nets)
    settings.channel("x").image = "none"
    settings.channel("mastodon").image = "artwork"
    settings.feeds[0].announce_image = "none"  # the rest: the feed says none
    run_once(settings, now=NOW)
    by = {d.channel: d.payload for d in _rows(sqlite_url)}
    assert by["x"]["image_file"] is None and by["hook"]["image_file"] is None
    art = (tmp_path / "art.png").read_bytes()
    assert by["mastodon"]["image_sha256"] == _sha(art)
    assert len(nets["x"].uploads) == 0


def test_card_command_writes_the_png(tmp_path: Path, sqlite_url: str, site: Path) -> None:
    _png(tmp_path / "art.png", "#16a085")
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text(
        f'[podcast]\ntitle = "Shipping It"\nimage = "art.png"\n'
        f'[database]\nurl = "{sqlite_url}"\n'
        f'[[sources]]\nname = "episodes"\ntype = "jekyll"\nverify_audio = false\npath = "{site}"\n'
        f'[cards]\ndir = "cards"\nbackground = "#000000"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "SYNDICATOR_CONFIG": str(cfg)}
    cli = [sys.executable, "-m", "syndicator.cli"]
    run_once(load(cfg), now=NOW)  # stores the episodes
    out = tmp_path / "card6.png"
    res = subprocess.run([*cli, "card", "6", "--out", str(out)], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    img = Image.open(out).convert("RGB")
    assert img.size == (1200, 675) and img.getpixel((1190, 10)) == (0, 0, 0)
    assert f"sha256 {_sha(out.read_bytes())}" in res.stdout
    assert "alt: Episode 6 card: Billing for a SaaS Without Losing Sleep" in res.stdout
    bad = subprocess.run([*cli, "card", "999"], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "no episode '999'" in bad.stderr


def test_cards_config_errors_are_clear(tmp_path: Path) -> None:
    cfg = tmp_path / "syndicator.toml"
    cfg.write_text('[cards]\nbackground = "blue"\nimage = "cards"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(cfg)
    text = str(err.value)
    assert "#RRGGBB" in text and "card" in text and "artwork" in text


def test_the_episode_page_shows_the_card(tmp_path: Path) -> None:
    from test_web_support import add_episode, client, engine_for, running, web_settings, write

    from syndicator.timeutil import utcnow

    _png(tmp_path / "art.png", "#d35400")
    settings = web_settings(tmp_path, cards={"dir": "cards"})
    settings.podcast.image = str(tmp_path / "art.png")
    engine = engine_for(settings)
    with write(engine) as s:
        ep = add_episode(s, 12, utcnow(), title="Névola <b>日本語</b>")
        ep_id = ep.id
    with running(settings) as server, client(server) as c:
        page = c.get(f"/episodes/{ep_id}").text
        assert f'<img src="/episodes/{ep_id}/card.png"' in page
        assert 'alt="Episode 12 card: Névola &lt;b&gt;日本語&lt;/b&gt;"' in page
        r = c.get(f"/episodes/{ep_id}/card.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).size == (1200, 675)
        (tmp_path / "art.png").write_bytes(b"broken")
        with write(engine) as s:
            other = add_episode(s, 13, utcnow())
            other_id = other.id
        page = c.get(f"/episodes/{other_id}").text
        assert "No card:" in page and "not an image Pillow can read" in page
        assert c.get(f"/episodes/{other_id}/card.png").status_code == 404


def test_sigkill_between_upload_and_post_neither_twice_nor_lost(
    tmp_path: Path, site: Path, nets: dict[str, Any]
) -> None:
    """`run-once` is killed while X holds the post request after the upload answered:
    the next pass finds the media id on the row and posts once, with the same image."""
    import signal
    import time

    x, masto = nets["x"], nets["mastodon"]
    _png(tmp_path / "art.png", "#8e44ad")
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[podcast]\ntitle = "Shipping It"\nimage = "art.png"\n'
        'feed_url = "https://show.example/podcast/feed.xml"\n'
        '[database]\nurl = "sqlite:///s.db"\n[announce]\nlease = "1s"\nretry_base = "1s"\n'
        '[cards]\nimage = "card"\ndir = "cards"\n'
        f'[[sources]]\nname = "episodes"\ntype = "jekyll"\nverify_audio = false\npath = "{site}"\n'
        'episode_url = "{site.url}/podcast/{slug}"\n'
        f'[[channels]]\nname = "x"\ntype = "twitter"\napi_url = "{x.url}"\ntimeout = "20s"\n'
        f'[[channels]]\nname = "mastodon"\ntype = "mastodon"\ninstance = "{masto.url}"\n'
        'timeout = "20s"\n',
        encoding="utf-8",
    )
    # the first post on each network: stored by nobody, answered never (until the kill)
    x.hang_next(seconds=30, store=False, method="POST", path="/2/tweets")
    masto.hang_next(seconds=30, store=False, method="POST", path="/api/v1/statuses")
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert x.wait_for(lambda f: bool(f.requests("POST", "^/2/tweets$")), timeout=90)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(x.uploads) == 1 and not x.tweets
    with session(upgrade(f"sqlite:///{tmp_path / 's.db'}")) as s:
        row = next(d for d in s.exec(select(Delivery)).all() if d.channel == "x" and d.attempts)
        frozen_media = _media(row.payload)
    assert frozen_media["id"] in x.uploads  # stored before the post went out
    x.clear_faults()
    masto.clear_faults()
    for _ in range(3):
        time.sleep(1.2)  # the killed process's lease runs out
        subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ), capture_output=True, timeout=180)
    with session(upgrade(f"sqlite:///{tmp_path / 's.db'}")) as s:
        rows = [d for d in s.exec(select(Delivery)).all() if d.state != "skipped"]
    assert {d.state for d in rows} == {"sent"}, [(d.channel, d.state, d.last_error) for d in rows]
    assert len(x.tweets) == 2  # two recent episodes, each once
    assert len(x.uploads) == 2  # one upload per episode: the killed one's was reused
    by_id = {d.remote_id: d for d in rows if d.channel == "x"}
    for t in x.tweets:
        d = by_id[t.id]
        assert [_sha(x.uploads[m]) for m in t.media_ids] == [d.payload["image_sha256"]]
    assert frozen_media["id"] in {m for t in x.tweets for m in t.media_ids}
    statuses = masto.statuses()
    assert len(statuses) == 2 and all(len(st["media_attachments"]) == 1 for st in statuses)


def test_episode_and_artwork_modes_copy_the_file_by_content(show: Any, tmp_path: Path) -> None:
    from syndicator.config import ChannelConfig

    _png(tmp_path / "ep.png", "#34495e", (300, 200))
    ch = ChannelConfig(name="c", type="apprise", url="json://127.0.0.1:9/x", image="episode")
    img = cards.image_for(show, _episode(image="ep.png"), ch, None)
    assert img is not None and img.path.parent == tmp_path / "cards"
    assert img.path.read_bytes() == (tmp_path / "ep.png").read_bytes()
    assert img.mime == "image/png" and img.alt.startswith("Episode 107 card:")
    with pytest.raises(cards.CardError, match="has no image"):
        cards.image_for(show, _episode(image=None), ch, None)
    art = cards.image_for(show, _episode(), ch.model_copy(update={"image": "artwork"}), None)
    assert art is not None and art.sha256 == _sha((tmp_path / "art.png").read_bytes())
    assert art.alt == "Meteor Show artwork"
    none = cards.image_for(show, _episode(), ch.model_copy(update={"image": "none"}), None)
    assert none is None


def test_a_post_without_a_link_gets_an_images_embed() -> None:
    from syndicator.channels.base import Post
    from syndicator.channels.bluesky.client import BlueskyChannel

    blob = {"$type": "blob", "ref": {"$link": "bafkreiabc"}, "mimeType": "image/png", "size": 9}
    ch = BlueskyChannel("b", handle="a.example", app_password="x", service="http://127.0.0.1:9")
    post = Post(1, "New episode", "k", "3jzfcijpj2z2a", NOW, media={"blob": blob},
                image_alt="Episode 1 card: T")  # fmt: skip
    assert ch.build_record(post)["embed"] == {
        "$type": "app.bsky.embed.images",
        "images": [{"image": blob, "alt": "Episode 1 card: T"}],
    }
    linked = ch.build_record(Post(1, "New", "k", "3jzfcijpj2z2a", NOW, url="https://e.x/1",
                                  media={"blob": blob}))  # fmt: skip
    assert linked["embed"]["external"]["thumb"] == blob
    ch.close()


def test_a_cached_card_is_found_by_its_recorded_hash_while_it_is_that_file(show: Any) -> None:
    import hashlib
    import os

    a = cards.make_card(show, _episode(), (1200, 675))
    record = a.path.with_name(f".{a.path.name}.sha256")
    size, mtime, sha = record.read_text().split()
    assert (int(size), sha) == (a.path.stat().st_size, a.sha256)
    # a later pass (a new renderer) trusts the record for that size and mtime: no re-hash
    record.write_text(f"{size} {mtime} {'f' * 64}\n")
    assert cards.CardRenderer(show.cards).found(a.path) == "f" * 64
    # the file replaced by other bytes: the record no longer matches, the file is hashed
    a.path.write_bytes(b"not the card")
    os.utime(a.path, ns=(int(mtime) + 10**9, int(mtime) + 10**9))
    assert (
        cards.CardRenderer(show.cards).found(a.path) == hashlib.sha256(b"not the card").hexdigest()
    )
    size2, _, sha2 = record.read_text().split()  # and recorded again for the next pass
    assert (
        int(size2) == len(b"not the card") and sha2 == hashlib.sha256(b"not the card").hexdigest()
    )
