"""Benchmark: poll N feeds of M items from one local server, cold and then all-304.

    .venv/bin/python bench/bench_poll.py                    # 1,000 feeds x 100 items
    .venv/bin/python bench/bench_poll.py --compare          # also loop / thread / process
    .venv/bin/python bench/bench_poll.py --feeds 200 --items 50 --parse-in thread

The server runs in a child process (tests/feedserver.py `serve_in_process`), so the client's
wall time is not shared with the server's threads in one interpreter. Printed per poll: wall
time, the sum of parse time over feeds, the sum of network time, and how much of the wall the
parsing fills (parse sum / (wall x parse workers)): near 100% means the poll is parse-bound,
not waiting on sockets. Targets: the all-304 poll of 1,000 feeds under 2 s; the cold poll
dominated by parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from feedserver import FeedServer, make_feed_xml, serve_in_process  # noqa: E402

from syndicator.config import FeedSourceConfig, FetchConfig  # noqa: E402
from syndicator.sources.feeds.poll import PollRequest, PollStats, poll_feeds  # noqa: E402


def setup_server(srv: FeedServer, feeds: int, items: int) -> None:
    """Runs in the server process: feed i at /feeds/i.xml (distinct content per feed)."""
    for i in range(feeds):
        srv.add_feed(f"/feeds/{i}.xml", make_feed_xml(items, seed=i, title=f"Show {i}"))


def report(label: str, st: PollStats, workers: int) -> None:
    busy = st.parse_seconds / (st.wall_seconds * workers) if st.wall_seconds else 0.0
    print(
        f"{label}: wall {st.wall_seconds:.2f} s [{st.parse_mode}]\n"
        f"  parse sum {st.parse_seconds:.2f} s wall / {st.parse_cpu_seconds:.2f} s CPU"
        f" | network sum {st.fetch_seconds:.2f} s"
        f" | parsing fills {busy:.0%} of wall x {workers} worker(s)\n"
        f"  ok {st.ok}, 304 {st.not_modified}, errors {st.errors}"
        f" | {st.bytes / 1e6:.0f} MB, {st.episodes} episodes"
    )


async def run(args: argparse.Namespace, base: str) -> None:
    fetch = FetchConfig(max_per_host=args.max_per_host, max_connections=args.max_connections)
    sources = [
        FeedSourceConfig(type="feed", name=f"f{i}", url=f"{base}/feeds/{i}.xml", timeout="30s")
        for i in range(args.feeds)
    ]
    modes = ["loop", "thread", "process", "auto"] if args.compare else [args.parse_in]
    results = []
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for mode in modes:
        st = PollStats()
        results = await poll_feeds(
            [PollRequest(s) for s in sources],
            fetch,
            parse_in=mode,  # type: ignore[arg-type]
            parse_workers=args.workers,
            stats=st,
        )
        m = re.search(r"process x(\d+)", st.parse_mode)
        workers = int(m.group(1)) if m else 1
        report(f"cold, parse in {mode}", st, workers)
        bad = [r for r in results if r.status != "ok"]
        if bad:
            print(f"  {len(bad)} feeds failed, e.g. {bad[0].problems}")

    warm = [
        PollRequest(s, r.new_url or s.url, r.etag, r.last_modified)
        for s, r in zip(sources, results, strict=True)
    ]
    for attempt in range(2):
        st = PollStats()
        t = time.perf_counter()
        res = await poll_feeds(warm, fetch, stats=st)
        wall = time.perf_counter() - t
        n304 = sum(r.status == "not-modified" for r in res)
        print(
            f"all-304 poll #{attempt + 1}: {n304}/{len(res)} not-modified in {wall:.2f} s "
            f"(target < 2 s: {'met' if wall < 2 else 'MISSED'})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--parse-in", default="auto", choices=["auto", "loop", "thread", "process"])
    ap.add_argument("--workers", type=int, default=None, help="process-pool size")
    ap.add_argument("--max-per-host", type=int, default=FetchConfig().max_per_host)
    ap.add_argument("--max-connections", type=int, default=FetchConfig().max_connections)
    ap.add_argument("--compare", action="store_true", help="cold poll in every parse mode")
    args = ap.parse_args()
    print(
        f"{args.feeds} feeds x {args.items} items; max_per_host={args.max_per_host}, "
        f"max_connections={args.max_connections}; starting the server process..."
    )
    t = time.perf_counter()
    with serve_in_process(partial(setup_server, feeds=args.feeds, items=args.items)) as base:
        print(f"server ready at {base} in {time.perf_counter() - t:.1f} s")
        asyncio.run(run(args, base))


if __name__ == "__main__":
    main()
