"""A cold `syndicator run-once` over N feeds of M items (issue 14: 1,000 x 100 under 10 s).

    .venv/bin/python bench/bench_cold.py                          # 1,000 feeds x 100 items
    .venv/bin/python bench/bench_cold.py --feeds 300 --items 100 --runs 2
    .venv/bin/python bench/bench_cold.py --feeds 200 --py-spy /tmp/cold.svg   # where it goes
    .venv/bin/python bench/bench_cold.py --python /work/main/.venv/bin/python  # another checkout

The feeds (tests/feedserver.make_feed_xml: itunes, podcast:person, chapters, transcripts,
show notes; distinct guids per feed, every item in 2020-21) are served from a child process
on 127.0.0.1. Each run gets a fresh SQLite database, migrated first (`db upgrade`, not
timed), then `syndicator run-once --force` runs as a fresh process, as cron runs it, with one
Mastodon channel (tests/fakes/mastodon.py) so the pass plans for a channel; every item is
older than the announce window, so nothing is posted.

Printed per run: wall seconds, CPU seconds of the run-once process (getrusage of children:
the parse pool's processes are the forkserver's children, which nobody reaps, so they are
not counted: this is the main process's storing, planning and threads), items stored per
wall second, and the episodes and deliveries in the database afterwards (a check that the
pass stored them all).
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# the same farm and config as the side-by-side run with feed2toot
from bench_vs_feed2toot import setup  # noqa: E402
from bench_vs_feed2toot import syndicator_config as write_config  # noqa: E402
from feedserver import serve_in_process  # noqa: E402

from tests.fakes.mastodon import FakeMastodon  # noqa: E402


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the process and the children it reaped)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:4])} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--runs", type=int, default=1, help="cold runs, each on a fresh database")
    ap.add_argument("--py-spy", metavar="OUT", help="record the run with py-spy to OUT (.svg)")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that runs syndicator (another checkout's venv: a before/after)",
    )
    args = ap.parse_args()
    total = args.feeds * args.items
    print(f"{args.feeds} feeds x {args.items} items from 127.0.0.1; {os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    syn = [args.python, "-m", "syndicator.cli"]
    with (
        serve_in_process(partial(setup, feeds=args.feeds, items=args.items)) as base,
        FakeMastodon() as masto,
    ):
        env = dict(os.environ, SYNDICATOR_MASTO_ACCESS_TOKEN=masto.token)
        for n in range(args.runs):
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                cfg = write_config(tmp, base, args.feeds, masto.url)
                run([*syn, "--config", str(cfg), "db", "upgrade"], tmp, env)
                cmd = [*syn, "--config", str(cfg), "run-once", "--force"]
                if args.py_spy:
                    spy = Path(sys.executable).with_name("py-spy")
                    fmt = ["--format", "raw"] if args.py_spy.endswith(".txt") else []
                    cmd = [
                        str(spy),
                        "record",
                        "--subprocesses",
                        *fmt,
                        "-o",
                        args.py_spy,
                        "--",
                        *cmd,
                    ]
                wall, cpu = run(cmd, tmp, env)
                print(f"run {n + 1}: cold run-once {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
                db = sqlite3.connect(tmp / "bench.db")
                stored = db.execute("SELECT count(*) FROM episodes").fetchone()[0]
                planned = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
                db.close()
                print(
                    f"  {stored / wall:,.0f} items/s; {stored:,} of {total:,} items stored, "
                    f"{planned:,} deliveries planned"
                )
        print(f"statuses posted to the fake Mastodon: {len(masto.statuses())} (expected 0)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
