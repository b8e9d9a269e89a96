"""Importing a network's OPML: 10,000 feeds into a fresh store.

    .venv/bin/python bench/bench_opml.py [--feeds 10000] [--db sqlite|URL]

Writes an OPML file of N feeds in 50 folders (tests/test_opml.py's generator), then
times `sources import` as the CLI runs it (parse, duplicate check against the store,
one transaction of inserts), and a second import of the same file (every feed a
duplicate). The goal: the first import under 5 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--db", default="sqlite", help="sqlite (a temp file) or a database URL")
    args = ap.parse_args()

    from syndicator import config
    from syndicator.sourcelist import import_opml
    from syndicator.sources import opml
    from syndicator.store.db import upgrade
    from tests.test_opml import write_big_opml

    tmp = Path(tempfile.mkdtemp(prefix="bench-opml-"))
    url = "sqlite:///" + str(tmp / "s.db") if args.db == "sqlite" else args.db
    settings = config.from_dict({"database": {"url": url}}, tmp)
    engine = upgrade(url)
    path = write_big_opml(tmp / "network.opml", args.feeds)
    t = time.perf_counter()
    parsed = opml.read(path)
    parse = time.perf_counter() - t
    cpu = time.process_time()
    first = import_opml(engine, settings, path)
    cpu = time.process_time() - cpu
    again = import_opml(engine, settings, path)
    print(f"{args.feeds:,} feeds, {path.stat().st_size / 1e6:.1f} MB OPML, {url.split(':')[0]}")
    print(f"  parse only      {parse:6.2f} s  ({len(parsed.feeds):,} feeds)")
    print(f"  first import    {first.seconds:6.2f} s  ({len(first.added):,} added; "
          f"{cpu:.2f} s of this process's CPU)")  # fmt: skip
    print(f"  same file again {again.seconds:6.2f} s  ({len(again.duplicates):,} duplicates)")
    print("  goal: first import under 5 s:", "met" if first.seconds < 5 else "MISSED")


if __name__ == "__main__":
    main()
