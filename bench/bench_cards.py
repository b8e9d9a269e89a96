"""Episode image cards: drawing 1,000 cards, and what cards cost a pass once cached.

    .venv/bin/python bench/bench_cards.py [N_CARDS] [N_POSTS]

Targets (issue 12): under 50 ms per card on one core (median), and a pass with cards on
no more than 10 % slower than with cards off once the cards are made.

1. N_CARDS (1,000) distinct cards are drawn by one `CardRenderer` in this process,
   pinned to one core: titles of every length in Latin, accented, CJK and Korean text,
   with and without guests and avatars; each `render` (layout + PNG encoding) is timed.
2. A cold `run_once` over N_POSTS (300) generated posts plans one announcement per
   episode on one channel (quiet hours all day, so nothing is sent): once with
   `image = "none"`, once with `image = "card"` after the same cards were made by an
   earlier pass (so the pass only finds them by their content hash).
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
from PIL import Image

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
    "Why Every Team Eventually Writes Its Own Job Queue, and What It Costs Them Later "
    "When the Queue Becomes the Most Important System Nobody Owns",
]


def _cards(root: Path, n: int) -> list[float]:
    Image.new("RGB", (1400, 1400), "#c0392b").save(root / "art.png")
    Image.new("RGB", (400, 400), "#2980b9").save(root / "face.png")
    settings = config.from_dict(
        {
            "podcast": {"title": "Bench Show", "image": "art.png"},
            "cards": {"dir": "cards", "avatars": "{avatar}.png"},
        },
        root,
    )
    renderer = cards.CardRenderer(settings.cards)
    times: list[float] = []
    for i in range(n):
        title = f"{TITLES[i % len(TITLES)]} #{i}"
        guests = [{"name": "Filipe Névola", "avatar": "face"}] if i % 3 else []
        if i % 5 == 0:
            guests.append({"name": "김민수"})
        ep = Episode(guid=f"g{i}", source="s", number=i, title=title, guests=guests)
        spec = cards.spec_for(settings, ep, (1200, 675))
        t0 = time.perf_counter()
        renderer.render(spec)
        times.append(time.perf_counter() - t0)
    return times


def _pass(root: Path, posts: int, image: str, db: str) -> float:
    settings = config.from_dict(
        {
            "podcast": {"title": "Bench", "image": "art.png", "feed_url": "https://b.example/f.xml"},
            "database": {"url": "sqlite:///" + str(root / db)},
            "sources": [
                {
                    "name": "episodes", "type": "jekyll", "path": "site",
                    "episode_url": "{site.url}/podcast/{slug}",
                    "guid": "{site.url}/podcast/{slug}",
                }
            ],
            "channels": [
                {"name": "chat", "type": "apprise", "url": "json://127.0.0.1:9/x",
                 "quiet_hours": "00:00-23:59"}
            ],
            "announce": {"window": "36500d"},
            "cards": {"image": image, "dir": "cards"},
        },
        root,
    )  # fmt: skip
    run_once(config.from_dict({"database": settings.database.model_dump()}, root))  # migrate
    t0 = time.perf_counter()
    r = run_once(settings)
    took = time.perf_counter() - t0
    assert r.sources[0].new == posts, r.sources[0]
    return took


def main() -> None:
    n_cards = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_posts = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = _cards(root, n_cards)
        q = statistics.quantiles(times, n=20)
        print(f"cards drawn: {n_cards} at 1200x675, one core")
        med, p95 = statistics.median(times) * 1000, q[18] * 1000
        print(f"per card: median {med:.1f} ms, p95 {p95:.1f} ms, max {max(times) * 1000:.1f} ms")
        print("(target: median < 50 ms)")
        generate(root / "site", n_posts)
        _pass(root, n_posts, "card", "warm.db")  # makes every card once
        off = [_pass(root, n_posts, "none", f"off{i}.db") for i in range(3)]
        on = [_pass(root, n_posts, "card", f"on{i}.db") for i in range(3)]
        made = len(list((root / "cards").glob("card-*.png")))
        print(f"pass over {n_posts} new posts, one channel ({made} cards cached)")
        print(f"cards off: best {min(off):.2f} s; cards on (cached): best {min(on):.2f} s")
        print(f"overhead: {(min(on) / min(off) - 1) * 100:+.1f} % (target <= +10 %)")


if __name__ == "__main__":
    main()
