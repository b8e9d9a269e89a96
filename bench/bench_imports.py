"""What a cron `syndicator run-once` imports when nothing is due, under `python -X importtime`.

    .venv/bin/python bench/bench_imports.py [--tree before=/tmp/base] [--repeat 3] [--feeds 1]

N feed sources (default 1) served from 127.0.0.1 (each answering 304 after the first
pass, every item older than the announce window) and a live channel of every built-in
kind (secrets in the environment, nothing due). The first pass stores the feeds; each
measured pass is a fresh `python -X importtime` process running the CLI entry,
`run-once --force`, as cron runs it (importtime adds a little to the wall time).

Printed per tree (this checkout, plus each `--tree label=path`: another checkout's root,
put first on PYTHONPATH, so trees are compared side by side in one run): modules imported,
the import time they add up to (the sum of `self` times; the figure is CPU-bound and grows
with the machine's load), the process's wall time, and which heavy libraries were loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.builders import every_kind_channels, feed_source, write_config  # noqa: E402
from tests.feedserver import FeedServer, make_feed_xml  # noqa: E402

# top-level packages a pass that sends nothing should not need
HEAVY = (
    "tweepy", "mastodon", "atproto_client", "nostr_sdk", "linkedin_api", "apprise",
    "twitter_text", "emoji", "grapheme", "websockets", "fastapi", "starlette", "uvicorn",
    "PIL", "jinja2", "alembic", "feedparser", "lxml",
)  # fmt: skip

# the CLI entry, as the `syndicator` script calls it
RUN = "import sys; from syndicator.cli import main; sys.argv[0] = 'syndicator'; main()"


def importtime(env: dict[str, str], cfg: Path) -> tuple[int, float, float, set[str]]:
    """(modules, summed self import time in s, wall s, top-level packages) of one pass."""
    cmd = [sys.executable, "-X", "importtime", "-c", RUN, "--config", str(cfg)]
    t = time.perf_counter()
    # run from the config's folder: `-c` puts the working directory first on sys.path
    proc = subprocess.run(
        [*cmd, "run-once", "--force"], env=env, cwd=cfg.parent, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"run-once exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    modules, self_us, tops = 0, 0, set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line[len("import time:") :].split("|", 2)
        modules += 1
        self_us += int(own)
        tops.add(name.strip().split(".")[0])
    return modules, self_us / 1e6, wall, tops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", default=[], help="label=path of another checkout")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--feeds", type=int, default=1, help="feed sources, all 304 when timed")
    ap.add_argument("--items", type=int, default=5, help="items per feed")
    args = ap.parse_args()
    trees = [("this", ROOT), *((t.split("=", 1)[0], Path(t.split("=", 1)[1])) for t in args.tree)]
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    print(f"{args.feeds} feed(s) of {args.items} items, all answering 304 in the timed passes")
    results: dict[str, list[tuple[int, float, float, set[str]]]] = {n: [] for n, _ in trees}
    with FeedServer() as srv, tempfile.TemporaryDirectory() as d:
        start = datetime(2020, 1, 1, tzinfo=UTC)  # back catalogue: nothing is announced
        for i in range(args.feeds):
            body = make_feed_xml(args.items, seed=i, start=start, base_url=f"https://s{i}.example")
            srv.add_feed(f"/feeds/{i}.xml", body)
        sources = [feed_source(srv.url(f"/feeds/{i}.xml"), name=f"f{i}") for i in range(args.feeds)]
        tables, secrets = every_kind_channels(srv.url("").rstrip("/"))
        prepared: dict[str, tuple[dict[str, str], Path]] = {}
        for name, path in trees:
            folder = Path(d) / name
            folder.mkdir()
            cfg = write_config(folder, *sources, *tables)
            env = dict(os.environ, **secrets, PYTHONPATH=str(path))
            importtime(env, cfg)  # the first pass: migrate, store the feed (a 200)
            prepared[name] = (env, cfg)
        for _ in range(args.repeat):  # interleaved, so load changes hit every tree alike
            for name, (env, cfg) in prepared.items():
                results[name].append(importtime(env, cfg))
    print(f"{'tree':10}{'modules':>9}{'import s':>10}{'wall s':>9}  heavy libraries loaded")
    for name, runs in results.items():
        heavy = sorted(set(HEAVY) & runs[0][3])
        print(
            f"{name:10}{runs[0][0]:>9}{statistics.median(r[1] for r in runs):>10.2f}"
            f"{statistics.median(r[2] for r in runs):>9.2f}  {', '.join(heavy) or '-'}"
        )
    print(f"(medians of {args.repeat}; load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
