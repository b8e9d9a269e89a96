"""Jekyll posts parsed in this process vs in a process pool, side by side in one run.

    .venv/bin/python bench/bench_jekyll.py [N] [--profile] [--modes inline,process]

Generates an N-post site (default 10,000; bench/gen_posts.py), then for each mode
($SYNDICATOR_PARSE_IN=inline, then =process) times the real `run_once` on a fresh SQLite
store: the first pass (every post parsed and stored) and a second one (nothing changed).
Prints posts/s, and for the pool each worker's share of the posts and its CPU time: the
CPU of the workers and of this process over the wall time is the number of cores used.
`--profile` runs the first passes under cProfile and splits their time into parse
(jekyll.scan, including waiting for the workers), store, planning and feed building.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gen_posts import generate

from syndicator import config
from syndicator.pipeline import run_once
from syndicator.sources.pool import ENV, cores

# (label, module file suffix, function name): cumulative time of each in a profiled pass
PHASES = [
    ("parse (jekyll.scan)", "sources/jekyll.py", "scan"),
    ("store (_store_polled)", "syndicator/pipeline.py", "_store_polled"),
    ("planning (outbox.plan)", "announce/outbox.py", "plan"),
    ("planning (evergreen)", "announce/evergreen.py", "plan_reshares"),
    ("feeds (publish)", "syndicator/pipeline.py", "publish"),
]


class _Loads(logging.Handler):
    """Keeps the per-worker load the parse pool logs when it closes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "parse_load"):
            self.records.append(record)


def _settings(root: Path, db: Path) -> Any:
    return config.from_dict(
        {
            "database": {"url": f"sqlite:///{db}"},
            # a channel in dry-run, so the pass plans announcements too (no network)
            "channels": [
                {"name": "toots", "type": "mastodon", "instance": "http://127.0.0.1:9",
                 "dry_run": True}
            ],
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


def _phases(prof: cProfile.Profile, total: float) -> str:
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    lines = []
    for label, suffix, name in PHASES:
        cum = sum(v[3] for (f, _, fn), v in stats.items() if fn == name and f.endswith(suffix))
        lines.append(f"    {label:<26} {cum:7.2f} s  {100 * cum / total:5.1f} %")
    return "\n".join(lines)


def _one(mode: str, root: Path, n: int, profile: bool, loads: _Loads) -> None:
    os.environ[ENV] = mode
    db = root / f"{mode}.db"
    settings = _settings(root, db)
    run_once(config.from_dict({"database": settings.database.model_dump()}, root))  # migrate
    loads.records.clear()
    prof = cProfile.Profile() if profile else None
    cpu, t0 = time.process_time(), time.perf_counter()
    if prof is not None:
        prof.enable()
    r = run_once(settings)
    if prof is not None:
        prof.disable()
    cold = time.perf_counter() - t0
    main_cpu = time.process_time() - cpu
    assert r.sources[0].new == n, r.sources[0]
    t0 = time.perf_counter()
    r = run_once(settings)
    warm = time.perf_counter() - t0
    assert (r.sources[0].new, r.sources[0].changed) == (0, 0), r.sources[0]

    load: dict[int, Any] = {}
    modes = mode
    for rec in loads.records:
        load.update(rec.parse_load)  # type: ignore[attr-defined]
        modes = rec.parse_modes  # type: ignore[attr-defined]
    workers_cpu = sum(w.cpu_seconds for w in load.values())
    print(
        f"{mode:>8}: first pass {cold:6.2f} s = {n / cold:5.0f} posts/s [{modes}]; "
        f"nothing changed {warm:5.2f} s"
    )
    print(
        f"          CPU: this process {main_cpu:.1f} s, workers {workers_cpu:.1f} s; "
        f"cores used {(main_cpu + workers_cpu) / cold:.2f} of {cores()}"
    )
    for pid, w in sorted(load.items()):
        print(f"          worker {pid}: {w.jobs:6d} posts, {w.cpu_seconds:5.1f} s CPU")
    if prof is not None:
        print(_phases(prof, cold))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=10_000, help="posts (default 10,000)")
    ap.add_argument("--profile", action="store_true", help="split the first passes by phase")
    ap.add_argument("--modes", default="inline,process", help="default: inline,process")
    args = ap.parse_args()
    loads = _Loads()
    pool_log = logging.getLogger("syndicator.sources.pool")
    pool_log.setLevel(logging.DEBUG)
    pool_log.addHandler(loads)
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {cores()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "site", args.n)
        for mode in args.modes.split(","):
            _one(mode.strip(), root, args.n, args.profile, loads)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
