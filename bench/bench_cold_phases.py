"""CPU seconds of a cold pass's phases, in one process: parse, store, plan (issue 14).

    .venv/bin/python bench/bench_cold_phases.py [--feeds 30]
    PYTHONPATH=/tmp/old-checkout .venv/bin/python bench/bench_cold_phases.py   # another version

The same calls `run-once` makes, without HTTP or the parse pool: N generated podcast feeds
of 100 items (tests/feedserver.make_feed_xml, every item back catalogue) are parsed with
`parse_feed`, stored with `apply_poll` (one transaction per feed, as a pass does) into a
fresh SQLite database, then `outbox.plan` plans them for one Mastodon channel. Each phase is
timed with `time.process_time`, so the figures hold on a machine other processes load,
where wall times (bench/bench_cold.py) do not.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from feedserver import make_feed_xml  # noqa: E402

import syndicator  # noqa: E402
from syndicator import config  # noqa: E402
from syndicator.announce import outbox  # noqa: E402
from syndicator.announce.render import Renderer  # noqa: E402
from syndicator.sources.base import PollResult  # noqa: E402
from syndicator.sources.feeds.parse import parse_feed  # noqa: E402
from syndicator.store.db import session, upgrade  # noqa: E402
from syndicator.store.ingest import apply_poll, ensure_source  # noqa: E402

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=30)
    args = ap.parse_args()
    os.environ.setdefault("SYNDICATOR_MASTO_ACCESS_TOKEN", "bench")
    start = datetime(2020, 1, 1, 9, tzinfo=UTC)
    bodies = [
        make_feed_xml(100, seed=i, title=f"Show {i}", start=start, base_url=f"https://s{i}.example")
        for i in range(args.feeds)
    ]
    urls = [f"https://feeds.example/{i}.xml" for i in range(args.feeds)]
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/phases.db"
        settings = config.from_dict(
            {
                "podcast": {"title": "Bench", "timezone": "UTC"},
                "database": {"url": url},
                "announce": {"window": "14d"},
                "channels": [
                    {"name": "masto", "type": "mastodon", "instance": "https://m.example"}
                ],
                "sources": [
                    {"name": f"f{i}", "type": "feed", "url": u} for i, u in enumerate(urls)
                ],
            },
            Path(d),
        )
        engine = upgrade(url)
        t = time.process_time()
        parsed = [parse_feed(b, u) for b, u in zip(bodies, urls, strict=True)]
        parse = time.process_time() - t
        t = time.process_time()
        for i, (u, p) in enumerate(zip(urls, parsed, strict=True)):
            with session(engine, write=True) as s:
                src = ensure_source(s, f"f{i}", "feed", u)
                result = PollResult(url=u, status="ok", episodes=p.episodes)
                apply_poll(
                    s, src, result, NOW, timedelta(days=14), timedelta(hours=1), timedelta(hours=6)
                )
        store = time.process_time() - t
        t = time.process_time()
        with session(engine, write=True) as s:
            planned = outbox.plan(s, settings, Renderer(settings), {}, NOW)
        plan = time.process_time() - t
    n = args.feeds * 100
    print(
        f"syndicator from {Path(syndicator.__file__).parent}; load average {os.getloadavg()[0]:.2f}"
    )
    for name, secs in (("parse", parse), ("store", store), ("plan", plan)):
        print(f"  {name:6} {secs:6.2f} s CPU  {1000 * secs / n:.3f} ms per item")
    print(f"  {n:,} items, {len(planned):,} deliveries planned")


if __name__ == "__main__":
    main()
