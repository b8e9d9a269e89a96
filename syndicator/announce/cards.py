"""An image card per episode: Pillow draws the show's artwork, the episode's number and
title, and its guests (with avatars when the site has them) on a PNG.

A card is made once per episode content and size: its file name carries a hash of
everything drawn (text, colours, the artwork's and avatars' bytes), so an unchanged
episode reuses its file and an edited one gets a new one. The delivery row freezes the
file's path, sha256 and alt text (see `image_for`), so a retry sends the same bytes.

Text of any script is drawn with the fonts shipped in syndicator/fonts/: each run of
characters goes to the first font that has their glyphs (DejaVu for Latin, Greek,
Cyrillic and symbols; Droid Sans Fallback for Chinese and Japanese; Nanum Square for
Korean); a character no font has is left out rather than drawn as a box.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from syndicator.config import CardsConfig, ChannelConfig, ImageMode, Settings
from syndicator.store.models import Episode

# Pillow and fontTools are imported where a card is drawn: planning asks this module
# for every row, and most passes draw no card.
if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

FONTS = Path(__file__).resolve().parent.parent / "fonts"
TITLE_FONT = FONTS / "DejaVuSans-Bold.ttf"
BODY_FONT = FONTS / "DejaVuSans.ttf"
CJK_FONT = FONTS / "DroidSansFallback-CJK.ttf"
HANGUL_FONT = FONTS / "NanumSquareR.ttf"  # Droid Sans Fallback has no Hangul syllables
# bump when the drawing changes, so cached cards are drawn again
LAYOUT_VERSION = "1"
MAX_GUESTS = 4  # guests drawn on a card; the alt text names every one


class CardError(Exception):
    """A card (or image) that can't be made: the post goes out without one."""


@dataclass(frozen=True)
class CardImage:
    """An image file ready to attach, frozen on the delivery row."""

    path: Path
    sha256: str
    alt: str
    mime: str
    url: str | None = None  # where the site serves it, when known

    def payload(self) -> dict[str, Any]:
        return {
            "image_file": str(self.path),
            "image_sha256": self.sha256,
            "image_alt": self.alt,
            "image_type": self.mime,
            "image_url": self.url,
        }


@dataclass(frozen=True)
class CardSpec:
    """Everything a card shows; its hash names the file."""

    title: str
    number: int | None
    show: str
    guests: tuple[tuple[str, bytes | None], ...]  # (name, avatar bytes or None)
    artwork: bytes | None
    width: int
    height: int

    def digest(self, layout: CardsConfig, title_font: bytes | None, logo: bytes | None) -> str:
        h = hashlib.sha256()
        meta = {
            "v": LAYOUT_VERSION,
            "title": self.title,
            "number": self.number,
            "show": self.show,
            "guests": [g[0] for g in self.guests],
            "size": [self.width, self.height],
            "colours": [layout.background, layout.foreground, layout.accent],
        }
        h.update(json.dumps(meta, sort_keys=True).encode())
        for blob in (self.artwork, title_font, logo, *(g[1] for g in self.guests)):
            h.update(hashlib.sha256(blob or b"").digest())
        return h.hexdigest()


def alt_text(ep: Episode) -> str:
    """ "Episode 107 card: <title>, with <guests>"; front matter `image_alt` overrides it."""
    if ep.image_alt:
        return ep.image_alt
    head = f"Episode {ep.number} card" if ep.number is not None else "Episode card"
    names = [str(g.get("name") or "").strip() for g in ep.guests or []]
    names = [n for n in names if n]
    text = f"{head}: {ep.title}"
    if names:
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        text += f", with {joined}"
    return text


# ---- fonts ------------------------------------------------------------------------------


@dataclass
class _FontSet:
    """Fonts in fallback order, each with the code points it has."""

    paths: list[Path]
    cmaps: list[frozenset[int]]
    sized: dict[tuple[int, int], ImageFont.FreeTypeFont] = field(default_factory=dict)
    # measured widths: wrapping and shrinking measure the same words again and again
    widths: dict[tuple[str, int], float] = field(default_factory=dict)

    @classmethod
    def load(cls, paths: list[Path], known: dict[Path, frozenset[int]]) -> _FontSet:
        """`known`: character maps already read (the CJK fonts are in both sets)."""
        from fontTools.ttLib import TTFont

        for p in paths:
            if p not in known:
                with TTFont(p, lazy=True, fontNumber=0) as f:
                    known[p] = frozenset(f.getBestCmap() or {})
        return cls(paths, [known[p] for p in paths])

    def font(self, i: int, size: int) -> ImageFont.FreeTypeFont:
        from PIL import ImageFont, features

        key = (i, size)
        if key not in self.sized:
            raqm = features.check("raqm")
            layout = ImageFont.Layout.RAQM if raqm else ImageFont.Layout.BASIC
            self.sized[key] = ImageFont.truetype(str(self.paths[i]), size, layout_engine=layout)
        return self.sized[key]

    def runs(self, text: str) -> list[tuple[int, str]]:
        """(font index, text) runs; characters no font has are dropped."""
        out: list[tuple[int, str]] = []
        for ch in text:
            cp = ord(ch)
            idx = next((i for i, c in enumerate(self.cmaps) if cp in c), None)
            if idx is None:
                if ch.isspace() and out:
                    idx = out[-1][0]
                else:
                    continue  # no glyph anywhere (e.g. a colour emoji): no box
            if out and out[-1][0] == idx:
                out[-1] = (idx, out[-1][1] + ch)
            else:
                out.append((idx, ch))
        return out

    def width(self, text: str, size: int) -> float:
        key = (text, size)
        w = self.widths.get(key)
        if w is None:
            if len(self.widths) > 50_000:
                self.widths.clear()  # bounded: a renderer may draw thousands of cards
            w = sum(self.font(i, size).getlength(t) for i, t in self.runs(text))
            self.widths[key] = w
        return w

    def draw(
        self, d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, fill: str
    ) -> None:
        x, y = xy
        for i, t in self.runs(text):
            font = self.font(i, size)
            d.text((x, y), t, font=font, fill=fill)
            x += font.getlength(t)


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return 0x2E80 <= cp <= 0x9FFF or 0xAC00 <= cp <= 0xD7AF or 0xF900 <= cp <= 0xFFEF


def _tokens(text: str) -> list[str]:
    """Break opportunities: after spaces, and between CJK characters (no spaces there)."""
    out: list[str] = []
    cur = ""
    for ch in text:
        if ch == " ":
            out.append(cur + ch)
            cur = ""
        elif _is_cjk(ch):
            if cur:
                out.append(cur)
            out.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def wrap(fonts: _FontSet, text: str, size: int, max_width: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for tok in _tokens(text):
        if line and fonts.width((line + tok).rstrip(), size) > max_width:
            lines.append(line.rstrip())
            line = tok.lstrip()
        else:
            line += tok
        while fonts.width(line.rstrip(), size) > max_width and len(line) > 1:
            # a single word wider than the box: break it where it overflows
            cut = len(line) - 1
            while cut > 1 and fonts.width(line[:cut], size) > max_width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return lines


def fit_title(
    fonts: _FontSet,
    text: str,
    max_width: float,
    max_height: float,
    sizes: tuple[int, int] = (72, 28),
) -> tuple[int, list[str]]:
    """The largest size (step 4) at which the title fits the box; at the smallest size the
    last line that fits ends with an ellipsis."""
    big, small = sizes
    for size in range(big, small - 1, -4):
        lines = wrap(fonts, text, size, max_width)
        if len(lines) * size * 1.2 <= max_height:
            return size, lines
    lines = wrap(fonts, text, small, max_width)
    keep = max(int(max_height // (small * 1.2)), 1)
    if len(lines) > keep:
        last = lines[keep - 1]
        while last and fonts.width(last + "…", small) > max_width:
            last = last[:-1]
        lines = [*lines[: keep - 1], last.rstrip() + "…"]
    return small, lines


# ---- images -----------------------------------------------------------------------------


def _open(blob: bytes, what: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(blob))
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise CardError(f"{what} is not an image Pillow can read ({exc})") from exc
    return img.convert("RGBA")


def _round_mask(size: int) -> Image.Image:
    from PIL import Image, ImageDraw

    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
    return mask


class CardRenderer:
    """Draws cards; holds loaded fonts (one per process is enough, but nothing is global)."""

    def __init__(self, layout: CardsConfig) -> None:
        self.layout = layout
        if layout.font and not layout.font.is_file():
            raise CardError(f"font {layout.font} does not exist; fix [cards] font = or remove it")
        if layout.logo and not layout.logo.is_file():
            raise CardError(f"logo {layout.logo} does not exist; fix [cards] logo = or remove it")
        # what the file name's hash covers besides the episode (cheap: no font is parsed)
        self.title_font_bytes = layout.font.read_bytes() if layout.font else None
        self.logo_bytes = layout.logo.read_bytes() if layout.logo else None
        self._title_fonts: _FontSet | None = None
        self._body_fonts: _FontSet | None = None
        self._art: dict[tuple[str, int], Image.Image] = {}
        self._cmaps: dict[Path, frozenset[int]] = {}

    # The fonts' character maps take a while to read: only a card that is drawn (not one
    # found in the cards folder) needs them.
    @property
    def title_fonts(self) -> _FontSet:
        if self._title_fonts is None:
            title = [self.layout.font] if self.layout.font else []
            try:
                self._title_fonts = _FontSet.load(
                    [*title, TITLE_FONT, CJK_FONT, HANGUL_FONT], self._cmaps
                )
            except Exception as exc:  # fontTools raises many kinds on a bad file
                raise CardError(
                    f"font {self.layout.font} can't be read ({exc}); fix [cards] font"
                ) from exc
        return self._title_fonts

    @property
    def body_fonts(self) -> _FontSet:
        if self._body_fonts is None:
            self._body_fonts = _FontSet.load([BODY_FONT, CJK_FONT, HANGUL_FONT], self._cmaps)
        return self._body_fonts

    def render(self, spec: CardSpec) -> bytes:
        from PIL import Image, ImageDraw

        lay = self.layout
        w, h = spec.width, spec.height
        img = Image.new("RGB", (w, h), lay.background)
        d = ImageDraw.Draw(img)
        pad = round(h * 0.07)
        art = round(h - 2 * pad)
        x0 = pad
        if spec.artwork is not None:
            cover = self._fitted(spec.artwork, art)
            img.paste(cover, (pad, pad), cover)
            x0 = pad + art + pad
        # a strip of the accent colour, so the card reads as the show's at a glance
        d.rectangle((0, h - pad // 3, w, h), fill=lay.accent)
        text_w = w - x0 - pad
        y = pad
        label = f"Episode {spec.number}" if spec.number is not None else spec.show
        self.body_fonts.draw(d, (x0, y), label, round(h * 0.05), lay.accent)
        y += round(h * 0.05 * 1.6)
        if self.logo_bytes:
            logo = _open(self.logo_bytes, "the logo")
            logo.thumbnail((round(h * 0.12), round(h * 0.12)))
            img.paste(logo, (w - pad - logo.width, pad), logo)
        guest_h = round(h * 0.12) if spec.guests else 0
        box_h = h - y - pad - guest_h - (pad // 2 if guest_h else 0)
        size, lines = fit_title(
            self.title_fonts, spec.title, text_w, box_h, (round(h * 0.107), round(h * 0.042))
        )
        for line in lines:
            self.title_fonts.draw(d, (x0, y), line, size, lay.foreground)
            y += size * 1.2
        if spec.guests:
            self._guests(img, d, spec, x0, h - pad - guest_h, guest_h, text_w)
        out = io.BytesIO()
        img.save(out, "PNG", compress_level=1)  # fast; cards are written once and cached
        return out.getvalue()

    def _fitted(self, blob: bytes, size: int) -> Image.Image:
        """The artwork scaled to `size`, kept: every card of a show has the same one."""
        from PIL import ImageOps

        key = (hashlib.sha256(blob).hexdigest(), size)
        if key not in self._art:
            self._art.clear()  # one artwork at a time is what a show has
            self._art[key] = ImageOps.fit(_open(blob, "the artwork"), (size, size))
        return self._art[key]

    def _guests(
        self,
        img: Image.Image,
        d: ImageDraw.ImageDraw,
        spec: CardSpec,
        x: int,
        y: int,
        size: int,
        max_w: int,
    ) -> None:
        from PIL import ImageOps

        font = round(size * 0.4)
        for name, avatar in spec.guests[:MAX_GUESTS]:
            if avatar is not None:
                try:
                    face = ImageOps.fit(_open(avatar, f"{name}'s avatar"), (size, size))
                    img.paste(face, (x, y), _round_mask(size))
                    x += size + size // 4
                except CardError:
                    pass  # a bad avatar leaves the name alone on the card
            width = self.body_fonts.width(name, font)
            if x + width > spec.width - size // 2 and x > 0:
                break
            self.body_fonts.draw(d, (x, y + (size - font) / 2), name, font, self.layout.foreground)
            x += round(width) + size // 2
            if x > img.width - size:
                break


# ---- where the bytes come from ----------------------------------------------------------


def cards_dir(settings: Settings) -> Path:
    """[cards] dir, else a cards/ folder beside the first feed's file (the site serves it)."""
    if settings.cards.dir is not None:
        return settings.cards.dir
    if settings.feeds:
        return settings.feeds[0].path.parent / "cards"
    return settings.base_dir / "cards"


def cards_url(settings: Settings) -> str | None:
    if settings.cards.base_url:
        return settings.cards.base_url.rstrip("/") + "/"
    if settings.cards.dir is not None or not settings.feeds:
        return None
    feed_url = settings.feeds[0].url or settings.podcast.feed_url
    if not feed_url:
        return None
    return feed_url.rsplit("/", 1)[0] + "/cards/"


def read_image(where: str, settings: Settings, base: Path | None = None) -> bytes:
    """A local file, or an http(s) URL fetched once with a timeout and a size limit and
    kept in the cards folder (a pass never waits long on a slow host)."""
    cfg = settings.cards
    if urlsplit(where).scheme in ("http", "https"):
        cache = cards_dir(settings) / ".fetched" / hashlib.sha256(where.encode()).hexdigest()
        if cache.is_file():
            return cache.read_bytes()
        try:
            with httpx.stream(
                "GET", where, timeout=cfg.fetch_timeout.total_seconds(), follow_redirects=True
            ) as resp:
                if resp.status_code != 200:
                    raise CardError(f"{where}: HTTP {resp.status_code}")
                buf = bytearray()
                for chunk in resp.iter_bytes():
                    buf += chunk
                    if len(buf) > cfg.fetch_max_bytes:
                        raise CardError(
                            f"{where}: larger than [cards] fetch_max_bytes "
                            f"({cfg.fetch_max_bytes} bytes)"
                        )
        except httpx.HTTPError as exc:
            raise CardError(f"{where}: could not download ({exc})") from exc
        _write_atomic(cache, bytes(buf))
        return bytes(buf)
    path = Path(where).expanduser()
    if not path.is_absolute():
        path = (base or settings.base_dir) / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CardError(f"{path}: can't read it ({exc.strerror or exc})") from exc


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _avatar(settings: Settings, guest: dict[str, Any]) -> bytes | None:
    avatar = str(guest.get("avatar") or "").strip()
    if not avatar:
        return None
    pattern = settings.cards.avatars
    where = avatar
    if pattern and "/" not in avatar:
        where = pattern.replace("{avatar}", avatar)
    try:
        return read_image(where, settings)
    except CardError:
        return None  # a missing avatar is not worth a problem: the name is drawn alone


def spec_for(settings: Settings, ep: Episode, size: tuple[int, int]) -> CardSpec:
    art = settings.cards.artwork or settings.podcast.image
    if not art:
        raise CardError("no artwork: set podcast.image or [cards] artwork")
    artwork = read_image(art, settings)
    guests = tuple(
        (str(g.get("name") or "").strip(), _avatar(settings, g))
        for g in ep.guests or []
        if str(g.get("name") or "").strip()
    )
    return CardSpec(ep.title, ep.number, settings.podcast.title, guests, artwork, *size)


def make_card(
    settings: Settings,
    ep: Episode,
    size: tuple[int, int],
    renderer: CardRenderer | None = None,
    alt: str | None = None,
) -> CardImage:
    """The episode's card at `size`, drawn once and reused while nothing on it changes."""
    renderer = renderer or CardRenderer(settings.cards)
    spec = spec_for(settings, ep, size)
    digest = spec.digest(settings.cards, renderer.title_font_bytes, renderer.logo_bytes)
    name = f"card-{ep.number if ep.number is not None else 'x'}-{digest[:20]}.png"
    path = cards_dir(settings) / name
    if path.is_file():
        data = path.read_bytes()
    else:
        data = renderer.render(spec)
        _write_atomic(path, data)
    base = cards_url(settings)
    return CardImage(
        path,
        hashlib.sha256(data).hexdigest(),
        alt or alt_text(ep),
        "image/png",
        base + name if base else None,
    )


def _copy(settings: Settings, where: str, alt: str) -> CardImage:
    """The artwork or an episode image, copied by content into the cards folder so the
    frozen path keeps its bytes even when the original changes."""
    data = read_image(where, settings)
    _open(data, where)  # refuse what isn't an image now, not at upload time
    digest = hashlib.sha256(data).hexdigest()
    ext = Path(urlsplit(where).path).suffix.lower() or ".img"
    name = f"image-{digest[:20]}{ext}"
    path = cards_dir(settings) / name
    if not path.is_file():
        _write_atomic(path, data)
    base = cards_url(settings)
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return CardImage(path, digest, alt, mime, base + name if base else None)


def mode_for(settings: Settings, ep: Episode, ch: ChannelConfig) -> ImageMode:
    """The channel's `image`, else the episode's feed's `announce_image`, else [cards]."""
    if ch.image is not None:
        return ch.image
    for feed in settings.feeds:
        if feed.announce_image is not None and (not feed.sources or ep.source in feed.sources):
            return feed.announce_image
    return settings.cards.image


def image_for(
    settings: Settings,
    ep: Episode,
    ch: ChannelConfig,
    size: tuple[int, int] | None,
    renderer: CardRenderer | None = None,
) -> CardImage | None:
    """What this channel attaches to the episode's announcement, or None; CardError when
    it should have one and can't (the caller records a problem and posts without)."""
    mode = mode_for(settings, ep, ch)
    alt = alt_text(ep)
    if mode == "none":
        return None
    if mode == "card":
        size = size or (settings.cards.width, settings.cards.height)
        return make_card(settings, ep, size, renderer, alt)
    if mode == "artwork":
        art = settings.cards.artwork or settings.podcast.image
        if not art:
            raise CardError("no artwork: set podcast.image or [cards] artwork")
        return _copy(settings, art, f"{settings.podcast.title} artwork")
    if not ep.image:
        raise CardError('the episode has no image (image = "episode")')
    return _copy(settings, ep.image, alt)


def write_card(
    settings: Settings, ep: Episode, out: Path, size: tuple[int, int] | None = None
) -> CardImage:
    """`syndicator card EPISODE --out FILE`: the card, copied to `out`."""
    card = make_card(settings, ep, size or (settings.cards.width, settings.cards.height))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(card.path, out)
    return card


class Images:
    """The images of one planning pass: one renderer (fonts loaded once), made lazily, as
    most passes plan nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._renderer: CardRenderer | None = None

    def for_row(self, ep: Episode, ch: ChannelConfig) -> CardImage | None:
        """CardError when the image can't be made."""
        if mode_for(self.settings, ep, ch) == "card" and self._renderer is None:
            self._renderer = CardRenderer(self.settings.cards)
        from syndicator.plugins import kinds

        kind = kinds().get(ch.type)
        size = getattr(kind, "card_size", None) if kind is not None else None
        return image_for(self.settings, ep, ch, size, self._renderer)
