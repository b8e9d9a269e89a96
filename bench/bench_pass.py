"""A pass over 10,000 generated posts: cold, then with nothing changed.

    .venv/bin/python bench/bench_pass.py [N]

Target (issue 2): the no-change pass over 10,000 posts under 1 s. The pass is the real
`run_once` (SQLite store, no channels, no feeds), timed end to end.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_posts import generate

from syndicator import config
from syndicator.pipeline import run_once


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "site", n)
        settings = config.from_dict(
            {
                "database": {"url": "sqlite:///" + str(root / "bench.db")},
                "sources": [
                    {
                        "name": "episodes", "type": "jekyll", "path": "site",
                        "episode_url": "{site.url}/podcast/{slug}",
                        "enclosure_url": "{site.mp3_url_path}{number}.mp3",
                        "guid": "{site.url}/podcast/{slug}",
                    }
                ],
            },
            root,
        )  # fmt: skip
        run_once(config.from_dict({"database": settings.database.model_dump()}, root))  # migrate
        t0 = time.perf_counter()
        r = run_once(settings)
        cold = time.perf_counter() - t0
        assert r.sources[0].new == n, r.sources[0]
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = run_once(settings)
            times.append(time.perf_counter() - t0)
            assert (r.sources[0].new, r.sources[0].changed) == (0, 0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"posts: {n}")
        print(f"cold pass (parse + store):  {cold:.2f} s")
        print(f"no-change pass: best {min(times):.3f} s, worst {max(times):.3f} s (target < 1 s)")
        print(f"peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()
