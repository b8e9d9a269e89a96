"""An image card per episode: Pillow draws the show's artwork, the episode's number and
title, and its guests (with avatars when the site has them) on a PNG.

A card is made once per episode content and size: its file name carries a hash of
everything drawn (text, colours, the artwork's and avatars' bytes), so an unchanged
episode reuses its file and an edited one gets a new one. The delivery row freezes the
file's path, sha256 and alt text (see `image_for`), so a retry sends the same bytes.

Text of any script is drawn with the fonts shipped in syndicator/fonts/: each run of
characters goes to the first font that has their glyphs (DejaVu for Latin, Greek,
Cyrillic and symbols; Droid Sans Fallback for Chinese and Japanese; Nanum Square for
Korean; Noto Color Emoji for emoji, its 109 px bitmaps scaled to the text); a character no
font has is left out rather than drawn as a box.
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
    from PIL import Image, ImageFont

FONTS = Path(__file__).resolve().parent.parent / "fonts"
TITLE_FONT = FONTS / "DejaVuSans-Bold.ttf"
BODY_FONT = FONTS / "DejaVuSans.ttf"
CJK_FONT = FONTS / "DroidSansFallback-CJK.ttf"
HANGUL_FONT = FONTS / "NanumSquareR.ttf"  # Droid Sans Fallback has no Hangul syllables
EMOJI_FONT = FONTS / "NotoColorEmoji-subset.ttf"  # colour bitmaps (CBDT), one strike
# bump when the drawing changes, so cached cards are drawn again
LAYOUT_VERSION = "2"
PNG_LEVEL = 1  # zlib level: 2-9 cost up to 12x the time for 2-19 % smaller files (benchmarks.md)
VS16 = "\ufe0f"  # "draw the character before me as an emoji"
_BOUND = 256  # entries kept per renderer cache (faces, emoji, files): a pass draws thousands
_FILE_BYTES = 64 << 20  # and bytes of files kept (artwork and avatars can be MBs each)
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
class Blob:
    """An image file's bytes with their sha256, computed once (a 3 MB artwork is ~5 ms to hash)."""

    data: bytes
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class CardSpec:
    """Everything a card shows; its hash names the file."""

    title: str
    number: int | None
    show: str
    guests: tuple[tuple[str, Blob | None], ...]  # (name, avatar or None)
    artwork: Blob | None
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
        for raw in (title_font, logo):
            h.update(hashlib.sha256(raw or b"").digest())
        for blob in (self.artwork, *(g[1] for g in self.guests)):
            h.update(bytes.fromhex(blob.sha256) if blob else hashlib.sha256(b"").digest())
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
    # a colour bitmap font's one strike size (it loads at no other), else None
    strikes: list[int | None]
    sized: dict[tuple[int, int], ImageFont.FreeTypeFont] = field(default_factory=dict)
    # measured widths: wrapping and shrinking measure the same words again and again
    widths: dict[tuple[str, int], float] = field(default_factory=dict)
    # emoji runs drawn at the strike and scaled, per (text, size): titles repeat them
    sprites: dict[tuple[str, int], Image.Image] = field(default_factory=dict)

    @classmethod
    def load(
        cls, paths: list[Path], known: dict[Path, tuple[frozenset[int], int | None]]
    ) -> _FontSet:
        """`known`: character maps already read (the CJK fonts are in both sets)."""
        from fontTools.ttLib import TTFont

        for p in paths:
            if p not in known:
                with TTFont(p, lazy=True, fontNumber=0) as f:
                    strike = None
                    if "CBLC" in f:
                        strike = f["CBLC"].strikes[0].bitmapSizeTable.ppemY
                    known[p] = (frozenset(f.getBestCmap() or {}), strike)
        return cls(paths, [known[p][0] for p in paths], [known[p][1] for p in paths])

    def font(self, i: int, size: int) -> ImageFont.FreeTypeFont:
        from PIL import ImageFont, features

        size = self.strikes[i] or size
        key = (i, size)
        if key not in self.sized:
            raqm = features.check("raqm")
            layout = ImageFont.Layout.RAQM if raqm else ImageFont.Layout.BASIC
            self.sized[key] = ImageFont.truetype(str(self.paths[i]), size, layout_engine=layout)
        return self.sized[key]

    def _pick(self, cp: int, emoji: bool) -> int | None:
        if emoji:  # asked for emoji presentation: the colour font first, if it has it
            for i, strike in enumerate(self.strikes):
                if strike and cp in self.cmaps[i]:
                    return i
        return next((i for i, c in enumerate(self.cmaps) if cp in c), None)

    def runs(self, text: str) -> list[tuple[int, str]]:
        """(font index, text) runs; characters no font has are dropped."""
        out: list[tuple[int, str]] = []
        for k, ch in enumerate(text):
            if ch == VS16:
                continue  # a selector, not a glyph: it chose the font of the one before
            cp = ord(ch)
            # emoji from U+1F000 on are pictures by default (DejaVu has some in black and
            # white); older symbols (☕ ★) are text unless U+FE0F asks for the picture
            idx = self._pick(cp, cp >= 0x1F000 or text[k + 1 : k + 2] == VS16)
            if idx is None:
                if ch.isspace() and out:
                    idx = out[-1][0]
                else:
                    continue  # no glyph anywhere: no box
            if out and out[-1][0] == idx:
                out[-1] = (idx, out[-1][1] + ch)
            else:
                out.append((idx, ch))
        return out

    def _run_width(self, i: int, t: str, size: int) -> float:
        strike = self.strikes[i]
        if strike:
            return self.font(i, strike).getlength(t) * size / strike
        return self.font(i, size).getlength(t)

    def width(self, text: str, size: int) -> float:
        key = (text, size)
        w = self.widths.get(key)
        if w is None:
            if len(self.widths) > 50_000:
                self.widths.clear()  # bounded: a renderer may draw thousands of cards
            w = sum(self._run_width(i, t, size) for i, t in self.runs(text))
            self.widths[key] = w
        return w

    def _sprite(self, i: int, t: str, size: int) -> Image.Image:
        """A colour-bitmap run drawn at its strike and scaled to `size` (RGBA)."""
        from PIL import Image, ImageDraw

        key = (t, size)
        if key not in self.sprites:
            if len(self.sprites) > _BOUND:
                self.sprites.clear()
            strike = self.strikes[i] or size
            font = self.font(i, strike)
            ascent, descent = font.getmetrics()
            big = Image.new("RGBA", (max(round(font.getlength(t)), 1), ascent + descent))
            ImageDraw.Draw(big).text((0, 0), t, font=font, embedded_color=True)
            scale = size / strike
            small = (max(round(big.width * scale), 1), max(round(big.height * scale), 1))
            self.sprites[key] = big.resize(small, Image.Resampling.LANCZOS)
        return self.sprites[key]

    def draw(
        self, img: Image.Image, xy: tuple[float, float], text: str, size: int, fill: str
    ) -> None:
        from PIL import ImageDraw

        x, y = xy
        d = ImageDraw.Draw(img)
        for i, t in self.runs(text):
            if self.strikes[i]:
                sprite = self._sprite(i, t, size)
                # the emoji font's ascent is DejaVu's (0.928 em): same top, same baseline
                img.paste(sprite, (round(x), round(y)), sprite)
            else:
                d.text((x, y), t, font=self.font(i, size), fill=fill)
            x += self._run_width(i, t, size)


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
    grid = list(range(big, small - 1, -4))  # largest first

    def fits(size: int) -> list[str] | None:
        lines = wrap(fonts, text, size, max_width)
        return lines if len(lines) * size * 1.2 <= max_height else None

    # binary search for the first size that fits: wrapping at each of ~12 sizes per card
    # was most of the layout time; fitting only gets easier as the size goes down
    lo, hi, best = 0, len(grid) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        lines = fits(grid[mid])
        if lines is not None:
            best, hi = (grid[mid], lines), mid - 1
        else:
            lo = mid + 1
    if best is not None:
        return best
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


class CardRenderer:
    """Draws cards, and keeps what every card of a pass shares: the fonts, the artwork
    scaled and flattened, avatars, the files read (one per process is enough, but nothing
    is global)."""

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
        self._faces: dict[tuple[str, int], Image.Image | None] = {}
        self._masks: dict[int, Image.Image] = {}
        self._logo: dict[int, Image.Image] = {}
        self._cmaps: dict[Path, tuple[frozenset[int], int | None]] = {}
        # files by (path, mtime, size): every card of a pass reads the same artwork
        self._files: dict[tuple[str, int, int], Blob] = {}
        # cards found in the folder, their sha256: channels of one size share one card
        self._found: dict[tuple[str, int, int], str] = {}

    # The fonts' character maps take a while to read: only a card that is drawn (not one
    # found in the cards folder) needs them.
    @property
    def title_fonts(self) -> _FontSet:
        if self._title_fonts is None:
            title = [self.layout.font] if self.layout.font else []
            try:
                self._title_fonts = _FontSet.load(
                    [*title, TITLE_FONT, CJK_FONT, HANGUL_FONT, EMOJI_FONT], self._cmaps
                )
            except Exception as exc:  # fontTools raises many kinds on a bad file
                raise CardError(
                    f"font {self.layout.font} can't be read ({exc}); fix [cards] font"
                ) from exc
        return self._title_fonts

    @property
    def body_fonts(self) -> _FontSet:
        if self._body_fonts is None:
            self._body_fonts = _FontSet.load(
                [BODY_FONT, CJK_FONT, HANGUL_FONT, EMOJI_FONT], self._cmaps
            )
        return self._body_fonts

    def read(self, where: str, settings: Settings) -> Blob:
        """`read_image`, with its sha256, once per file version for this renderer."""
        path = _local_path(where, settings)
        try:
            st = path.stat()
        except OSError:
            return Blob.of(read_image(where, settings))  # not there (yet): its errors
        key = (str(path), st.st_mtime_ns, st.st_size)
        blob = self._files.get(key)
        if blob is None:
            held = sum(len(b.data) for b in self._files.values())
            if len(self._files) > _BOUND or held > _FILE_BYTES:
                self._files.clear()
            blob = self._files[key] = Blob.of(read_image(where, settings))
        return blob

    def found(self, path: Path) -> str | None:
        """The sha256 of a card already in the folder, or None when there is none."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key not in self._found:
            if len(self._found) > _BOUND:
                self._found.clear()
            sha = _recorded_sha(path, st)
            if sha is None:
                try:
                    sha = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    return None
                _record_sha(path, sha)
            self._found[key] = sha
        return self._found[key]

    def render(self, spec: CardSpec) -> bytes:
        return encode(self.draw(spec))

    def draw(self, spec: CardSpec) -> Image.Image:
        """The card as an RGB image (`encode` makes the PNG)."""
        from PIL import Image, ImageDraw

        lay = self.layout
        w, h = spec.width, spec.height
        img = Image.new("RGB", (w, h), lay.background)
        d = ImageDraw.Draw(img)
        pad = round(h * 0.07)
        art = round(h - 2 * pad)
        x0 = pad
        if spec.artwork is not None:
            img.paste(self._fitted(spec.artwork, art), (pad, pad))
            x0 = pad + art + pad
        # a strip of the accent colour, so the card reads as the show's at a glance
        d.rectangle((0, h - pad // 3, w, h), fill=lay.accent)
        text_w = w - x0 - pad
        y = pad
        label = f"Episode {spec.number}" if spec.number is not None else spec.show
        self.body_fonts.draw(img, (x0, y), label, round(h * 0.05), lay.accent)
        y += round(h * 0.05 * 1.6)
        if self.logo_bytes:
            logo = self._scaled_logo(round(h * 0.12))
            img.paste(logo, (w - pad - logo.width, pad), logo)
        guest_h = round(h * 0.12) if spec.guests else 0
        box_h = h - y - pad - guest_h - (pad // 2 if guest_h else 0)
        size, lines = fit_title(
            self.title_fonts, spec.title, text_w, box_h, (round(h * 0.107), round(h * 0.042))
        )
        for line in lines:
            self.title_fonts.draw(img, (x0, y), line, size, lay.foreground)
            y += size * 1.2
        if spec.guests:
            self._guests(img, spec, x0, h - pad - guest_h, guest_h, text_w)
        return img

    def _fitted(self, art: Blob, size: int) -> Image.Image:
        """The artwork scaled to `size` and flattened on the background (a plain paste, no
        alpha blend per card), kept: every card of a show has the same one."""
        from PIL import Image, ImageOps

        key = (art.sha256, size)
        if key not in self._art:
            self._art.clear()  # one artwork at a time is what a show has
            cover = ImageOps.fit(_open(art.data, "the artwork"), (size, size))
            flat = Image.new("RGB", cover.size, self.layout.background)
            flat.paste(cover, (0, 0), cover)
            self._art[key] = flat
        return self._art[key]

    def _scaled_logo(self, size: int) -> Image.Image:
        if size not in self._logo:
            logo = _open(self.logo_bytes or b"", "the logo")
            logo.thumbnail((size, size))
            self._logo[size] = logo
        return self._logo[size]

    def _face(self, name: str, avatar: Blob, size: int) -> Image.Image | None:
        """A guest's avatar scaled to `size`, or None when it isn't an image."""
        from PIL import ImageOps

        key = (avatar.sha256, size)
        if key not in self._faces:
            if len(self._faces) > _BOUND:
                self._faces.clear()
            try:
                self._faces[key] = ImageOps.fit(
                    _open(avatar.data, f"{name}'s avatar"), (size, size)
                )
            except CardError:
                self._faces[key] = None  # a bad avatar leaves the name alone on the card
        return self._faces[key]

    def _round_mask(self, size: int) -> Image.Image:
        from PIL import Image, ImageDraw

        if size not in self._masks:
            mask = Image.new("L", (size, size), 0)
            ImageDraw.Draw(mask).ellipse((0, 0, size - 1, size - 1), fill=255)
            self._masks[size] = mask
        return self._masks[size]

    def _guests(
        self, img: Image.Image, spec: CardSpec, x: int, y: int, size: int, max_w: int
    ) -> None:
        font = round(size * 0.4)
        for name, avatar in spec.guests[:MAX_GUESTS]:
            face = self._face(name, avatar, size) if avatar is not None else None
            if face is not None:
                img.paste(face, (x, y), self._round_mask(size))
                x += size + size // 4
            width = self.body_fonts.width(name, font)
            if x + width > spec.width - size // 2 and x > 0:
                break
            self.body_fonts.draw(
                img, (x, y + (size - font) / 2), name, font, self.layout.foreground
            )
            x += round(width) + size // 2
            if x > img.width - size:
                break


def encode(img: Image.Image, level: int = PNG_LEVEL) -> bytes:
    """The card as PNG bytes; most of a card's time is here (zlib and PNG's row filters)."""
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=level)
    return out.getvalue()


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
        cache = _local_path(where, settings)
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
    path = _local_path(where, settings, base)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CardError(f"{path}: can't read it ({exc.strerror or exc})") from exc


def _local_path(where: str, settings: Settings, base: Path | None = None) -> Path:
    """Where `read_image` finds the bytes: the file, or a URL's copy in the cards folder."""
    if urlsplit(where).scheme in ("http", "https"):
        return cards_dir(settings) / ".fetched" / hashlib.sha256(where.encode()).hexdigest()
    path = Path(where).expanduser()
    return path if path.is_absolute() else (base or settings.base_dir) / path


def _sha_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.sha256")


def _record_sha(path: Path, sha: str) -> None:
    """Keep a card's sha256 beside it with the size and mtime it is for: a pass then
    finds a cached card by one small read instead of hashing hundreds of KB each time
    (best effort: without the record the card is hashed)."""
    try:
        st = path.stat()
        _write_atomic(_sha_file(path), f"{st.st_size} {st.st_mtime_ns} {sha}\n".encode())
    except OSError:
        pass


def _recorded_sha(path: Path, st: os.stat_result) -> str | None:
    """The recorded sha256 while the card is the file it was recorded for, else None."""
    try:
        size, mtime, sha = _sha_file(path).read_text(encoding="ascii").split()
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if size != str(st.st_size) or mtime != str(st.st_mtime_ns) or len(sha) != 64:
        return None
    return sha


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _avatar(settings: Settings, guest: dict[str, Any], renderer: CardRenderer) -> Blob | None:
    avatar = str(guest.get("avatar") or "").strip()
    if not avatar:
        return None
    pattern = settings.cards.avatars
    where = avatar
    if pattern and "/" not in avatar:
        where = pattern.replace("{avatar}", avatar)
    try:
        return renderer.read(where, settings)
    except CardError:
        return None  # a missing avatar is not worth a problem: the name is drawn alone


def spec_for(
    settings: Settings, ep: Episode, size: tuple[int, int], renderer: CardRenderer | None = None
) -> CardSpec:
    renderer = renderer or CardRenderer(settings.cards)
    art = settings.cards.artwork or settings.podcast.image
    if not art:
        raise CardError("no artwork: set podcast.image or [cards] artwork")
    artwork = renderer.read(art, settings)
    guests = tuple(
        (str(g.get("name") or "").strip(), _avatar(settings, g, renderer))
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
    spec = spec_for(settings, ep, size, renderer)
    digest = spec.digest(settings.cards, renderer.title_font_bytes, renderer.logo_bytes)
    name = f"card-{ep.number if ep.number is not None else 'x'}-{digest[:20]}.png"
    path = cards_dir(settings) / name
    sha = renderer.found(path)
    if sha is None:
        data = renderer.render(spec)
        _write_atomic(path, data)
        sha = hashlib.sha256(data).hexdigest()
        _record_sha(path, sha)
    base = cards_url(settings)
    return CardImage(
        path,
        sha,
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
        # problem owners ("card:<channel>") -> whether any of their problems is open: asked
        # once a pass, so a pass of cached cards doesn't query the problems once per row
        self.open_problems: dict[str, bool] = {}

    def for_row(self, ep: Episode, ch: ChannelConfig) -> CardImage | None:
        """CardError when the image can't be made."""
        if mode_for(self.settings, ep, ch) == "card" and self._renderer is None:
            self._renderer = CardRenderer(self.settings.cards)
        from syndicator.plugins import kinds

        kind = kinds().get(ch.type)
        size = getattr(kind, "card_size", None) if kind is not None else None
        return image_for(self.settings, ep, ch, size, self._renderer)
