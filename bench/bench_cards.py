"""Episode image cards: drawing 1,000 cards, PNG levels, and what cards cost a pass once cached.

    .venv/bin/python bench/bench_cards.py [N_CARDS] [N_POSTS] [REPEATS]

Targets (issue 12): under 50 ms per card on one core (median), and a pass with cards on
no more than 10 % slower than with cards off once the cards are made.

The process pins itself to one core. Times are given as wall time and as the CPU time of
this process (`thread_time`/`process_time`): on a shared machine the wall time also counts
waiting for the core, the CPU time does not. The artwork is a 3000×3000 JPEG (Apple's
recommended size) and the avatars 400×400 JPEGs with photo-like content: a flat colour
compresses to nothing and would flatter the PNG encoder.

1. N_CARDS (1,000) distinct cards are drawn by one `CardRenderer`: titles of every
   length in Latin, accented, CJK, Korean text and emoji, with and without guests and
   avatars; each `render` (layout + PNG encoding) is timed, and the PNG's size kept.
2. PNG levels: 12 of those cards encoded at every zlib level, 3 times each (median).
3. A cold `run_once` over N_POSTS (150) generated posts plans one announcement per
   episode on one channel (quiet hours all day, so nothing is sent), with
   `image = "none"` and with `image = "card"` after the same cards were made by an
   earlier pass (so the pass only finds them by their content hash); the two kinds
   alternate (off/on, then on/off), REPEATS (4) times each, each on a fresh database.
   The sources' audio check is off (the generated mp3 hosts don't exist, and a failed
   DNS lookup per post would dwarf everything else).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_posts import generate
from PIL import Image, ImageDraw, ImageFilter

from syndicator import config
from syndicator.announce import cards
from syndicator.pipeline import run_once
from syndicator.store.models import Episode

TITLES = [
    "Meteor Cloud Is a Full Service Hosting Solution for Meteor Apps",
    "Café, crème brûlée et déploiements: Névola à Zürich",
    "東京の小さな出版社がオープンソースで本を作る話",
    "서울에서 만드는 오픈 소스 지도 서비스 이야기",
    "Q&A",
    "Launch day 🚀 and a new mic 🎙️",
    "Why Every Team Eventually Writes Its Own Job Queue, and What It Costs Them Later "
    "When the Queue Becomes the Most Important System Nobody Owns",
]


def photo(size: int, seed: int) -> Image.Image:
    """Deterministic photo-like content: gradients, soft shapes and grain."""
    g = Image.linear_gradient("L").resize((size, size))
    r = Image.radial_gradient("L").resize((size, size)).rotate(seed * 37)
    img = Image.merge("RGB", (g, r, Image.blend(g, r, 0.5)))
    d = ImageDraw.Draw(img)
    for i in range(12):
        x, y = (i * 97 + seed * 31) % size, (i * 53 + seed * 17) % size
        d.ellipse((x, y, x + size // 4, y + size // 4), fill=(i * 20, 255 - i * 20, 128))
    img = img.filter(ImageFilter.GaussianBlur(size / 400))
    grain = Image.effect_noise((size, size), 40).convert("RGB")
    return Image.blend(img, grain, 0.15)


def _settings(root: Path, extra: dict[str, object] | None = None) -> config.Settings:
    data: dict[str, object] = {
        "podcast": {"title": "Bench Show", "image": "art.jpg"},
        "cards": {"dir": "cards", "avatars": "{avatar}.jpg"},
    }
    data.update(extra or {})
    return config.from_dict(data, root)


def _cards(root: Path, n: int) -> tuple[list[float], list[float], list[int], list[Image.Image]]:
    settings = _settings(root)
    renderer = cards.CardRenderer(settings.cards)
    wall: list[float] = []
    cpu: list[float] = []
    sizes: list[int] = []
    samples: list[Image.Image] = []
    for i in range(n):
        title = f"{TITLES[i % len(TITLES)]} #{i}"
        guests = [{"name": "Filipe Névola", "avatar": f"face{i % 4}"}] if i % 3 else []
        if i % 5 == 0:
            guests.append({"name": "김민수"})
        ep = Episode(guid=f"g{i}", source="s", number=i, title=title, guests=guests)
        spec = cards.spec_for(settings, ep, (1200, 675), renderer)
        t0, c0 = time.perf_counter(), time.thread_time()
        png = renderer.render(spec)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
        sizes.append(len(png))
        if i % (max(n // 12, 1)) == 0 and len(samples) < 12:
            samples.append(renderer.draw(spec))
    return wall, cpu, sizes, samples


def _levels(samples: list[Image.Image]) -> None:
    print("PNG level: median CPU ms per card / mean KiB (12 cards, 3 times each)")
    for level in range(10):
        took: list[float] = []
        sizes: list[int] = []
        for img in samples:
            for _ in range(3):
                c0 = time.thread_time()
                png = cards.encode(img, level)
                took.append(time.thread_time() - c0)
            sizes.append(len(png))
        mark = "  <- used" if level == cards.PNG_LEVEL else ""
        print(
            f"  level {level}: {statistics.median(took) * 1000:6.1f} ms"
            f"  {statistics.mean(sizes) / 1024:6.0f} KiB{mark}"
        )


def _pass(root: Path, posts: int, image: str, db: str) -> tuple[float, float]:
    settings = _settings(
        root,
        {
            "podcast": {"title": "Bench", "image": "art.jpg", "feed_url": "https://b.example/f.xml"},
            "database": {"url": "sqlite:///" + str(root / db)},
            "sources": [
                {
                    "name": "episodes", "type": "jekyll", "path": "site",
                    "episode_url": "{site.url}/podcast/{slug}",
                    "guid": "{site.url}/podcast/{slug}",
                    # the generated mp3 hosts don't exist: checking them is a slow failed
                    # DNS lookup per post that has nothing to do with cards
                    "verify_audio": False,
                }
            ],
            "channels": [
                {"name": "chat", "type": "apprise", "url": "json://127.0.0.1:9/x",
                 "quiet_hours": "00:00-23:59"}
            ],
            "announce": {"window": "36500d"},
            "cards": {"image": image, "dir": "cards"},
        },
    )  # fmt: skip
    run_once(config.from_dict({"database": settings.database.model_dump()}, root))  # migrate
    t0, c0 = time.perf_counter(), time.process_time()
    r = run_once(settings)
    took = (time.perf_counter() - t0, time.process_time() - c0)
    assert r.sources[0].new == posts, r.sources[0]
    return took


def _cached_lookups(root: Path, posts: int) -> list[float]:
    """`make_card` for cards already made, as a pass does it (one renderer per pass)."""
    settings = _settings(root, {"cards": {"dir": "lookups"}})
    renderer = cards.CardRenderer(settings.cards)
    took = []
    for i in range(posts):
        ep = Episode(guid=f"g{i}", source="s", number=i, title=f"{TITLES[i % len(TITLES)]} #{i}")
        cards.make_card(settings, ep, (1200, 675), renderer)  # made (if not yet)
    renderer = cards.CardRenderer(settings.cards)
    for i in range(posts):
        ep = Episode(guid=f"g{i}", source="s", number=i, title=f"{TITLES[i % len(TITLES)]} #{i}")
        c0 = time.process_time()
        cards.make_card(settings, ep, (1200, 675), renderer)
        took.append(time.process_time() - c0)
    return took


def _ms(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=20)
    return f"median {statistics.median(xs) * 1000:.1f} ms, p95 {q[18] * 1000:.1f} ms"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    n_cards = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_posts = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    print("load average at start: " + _load())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photo(3000, 1).save(root / "art.jpg", quality=90)
        for k in range(4):
            photo(400, k + 2).save(root / f"face{k}.jpg", quality=90)
        art_kib = (root / "art.jpg").stat().st_size / 1024
        wall, cpu, sizes, samples = _cards(root, n_cards)
        print(f"cards drawn: {n_cards} at 1200x675, one core, 3000x3000 JPEG art {art_kib:.0f} KiB")
        print(f"per card, wall: {_ms(wall)}, max {max(wall) * 1000:.1f} ms")
        print(f"per card, CPU:  {_ms(cpu)}")
        print(
            f"PNG size: median {statistics.median(sizes) / 1024:.0f} KiB (level {cards.PNG_LEVEL})"
        )
        print("(target: median < 50 ms)")
        _levels(samples)
        look = _cached_lookups(root, n_posts)
        print(f"a cached card found by a pass (make_card), CPU: {_ms(look)}")
        generate(root / "site", n_posts)
        _pass(root, n_posts, "card", "warm.db")  # makes every card once
        _pass(root, n_posts, "none", "warm-off.db")  # and warms what a pass imports
        off: list[tuple[float, float]] = []
        on: list[tuple[float, float]] = []
        for i in range(repeats):  # side by side, so a change in load hits both
            first, second = ("none", "card") if i % 2 == 0 else ("card", "none")  # no order bias
            for image in (first, second):
                (off if image == "none" else on).append(
                    _pass(root, n_posts, image, f"{image}{i}.db")
                )
        made = len(list((root / "cards").glob("card-*.png")))
        print(f"pass over {n_posts} new posts, one channel ({made} cards in the folder)")
        for what, k in (("wall", 0), ("CPU", 1)):
            a, b = min(x[k] for x in off), min(x[k] for x in on)
            ma, mb = statistics.median(x[k] for x in off), statistics.median(x[k] for x in on)
            print(
                f"  {what}: cards off best {a:.2f} s (median {ma:.2f}); cards on (cached) best "
                f"{b:.2f} s (median {mb:.2f}); overhead {(b / a - 1) * 100:+.1f} % best, "
                f"{(mb / ma - 1) * 100:+.1f} % median"
            )
        share = statistics.median(look) * n_posts
        cpu_off = min(x[1] for x in off)
        print(
            f"  the cards' own share, from the lookup above: {n_posts} x "
            f"{statistics.median(look) * 1000:.2f} ms = {share:.3f} s of CPU, "
            f"{share / cpu_off * 100:.1f} % of the best pass without cards"
        )
        print("(target: overhead <= +10 %)")
    print("load average at end: " + _load())


if __name__ == "__main__":
    main()
