"""Benchmark: build and write a 10,000-episode directory feed.

    .venv/bin/python bench/bench_feed.py [--episodes 10000] [--profile]

Episodes (with show notes, two guests, chapters, a transcript) are inserted into
a fresh SQLite store first (not timed). Then `publish_feeds` is timed three ways:
the first build (writes the feed and 10k chapter files), a rebuild with nothing
changed (writes nothing), and a rebuild after one episode changed (rewrites the
feed). Memory is reported two ways, each measured honestly:

- peak RSS growth (resource.getrusage maxrss) over the timed builds, and
- tracemalloc's peak of Python allocations in a separate build (tracemalloc
  slows Python down, so that build is not the timed one; lxml's C allocations
  are not seen by tracemalloc, which is why RSS is reported too).

Target: each build under 2 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import multiprocessing
import pstats
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from syndicator.config import from_dict
from syndicator.directory.publish import publish_feeds
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode

SITE = "https://bench.example.org"
NOTES = (
    "<p>In this episode {guest} goes over building a hosting platform with Go, Node and "
    "<strong>Meteor</strong>. It's hosted on AWS with ECS and has been running since 2015.</p>"
    "<h2>Topics Include</h2><ul>{topics}</ul>"
    '<h6>📄 References</h6><ul><li><a href="https://guide.example.com/{n}">Guide</a></li>'
    '<li><a href="/tags/go">Go</a></li></ul>'
)


def _rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_episodes(n: int, start: datetime) -> list[Episode]:
    out = []
    for i in range(1, n + 1):
        chapters = [{"start": 60 * k + 5, "title": f"Topic {k} of episode {i}"} for k in range(8)]
        topics = "".join(f"<li>{c['start'] // 60}:05 -- {c['title']}</li>" for c in chapters)
        guest = f"Guest Névola {i}"
        date = start + timedelta(days=i)
        out.append(
            Episode(
                guid=f"{SITE}/{i}-episode-title",
                source="site",
                number=i,
                slug=f"{i}-episode-title",
                title=f"Episode {i}: Running Things in Production 🚀",
                date=date,
                url=f"{SITE}/{i}-episode-title",
                guests=[
                    {"name": guest, "website": f"https://guest{i}.example.com", "avatar": None},
                    {"name": f"Second Guest {i}", "avatar": f"{SITE}/img/g{i}.jpg"},
                ],
                tags=["go", "aws", "docker"],
                enclosure_url=f"{SITE}/audio/{i}.mp3",
                enclosure_length=50_000_000 + i,
                enclosure_type="audio/mpeg",
                duration_seconds=3600 + i,
                description=f"{guest} goes over building a hosting platform.",
                show_notes_html=NOTES.format(guest=guest, topics=topics, n=i),
                chapters=chapters,
                transcript_url=f"{SITE}/transcripts/{i}.vtt",
                transcript_type="text/vtt",
                first_seen_at=date,
                last_changed_at=date,
            )
        )
    return out


def _insert(url: str, n: int, start: datetime) -> None:
    engine = upgrade(url)
    with session(engine, write=True) as s:
        s.add_all(make_episodes(n, start))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one build")
    ap.add_argument("--keep", action="store_true", help="keep the store and feed folder")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    try:
        return run(args, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> int:
    settings = from_dict(
        {
            "podcast": {
                "title": "Bench Show",
                "description": "A long-running show.",
                "link": SITE,
                "feed_url": f"{SITE}/podcast/feed.xml",
                "image": f"{SITE}/cover.jpg",
                "author": "Host",
                "owner_name": "Host",
                "owner_email": "host@bench.example.org",
                "categories": ["Technology"],
                "host": {"name": "Host", "website": SITE},
            },
            "database": {"url": "sqlite:///" + str(tmp / "s.db")},
            "feeds": [{"name": "main", "path": "public/podcast/feed.xml", "hubs": [SITE + "/hub"]}],
        },
        tmp,
    )
    start = datetime(1990, 1, 1, tzinfo=UTC)
    t = time.perf_counter()
    # Insert in a child process, so this process's peak RSS is the builds' own.
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_insert, args=(settings.database.url, args.episodes, start))
    child.start()
    child.join()
    if child.exitcode != 0:
        print("inserting the episodes failed", file=sys.stderr)
        return 2
    engine = upgrade(settings.database.url)
    now = start + timedelta(days=args.episodes + 1)
    print(f"inserted {args.episodes} episodes in {time.perf_counter() - t:.2f}s (not timed)")

    gc.collect()
    rss0 = _rss_mb()
    print(f"maxrss before the builds: {rss0:.0f} MB (interpreter, libraries, one warm-up query)")
    results = []

    def timed(label: str, when: datetime) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        [o] = publish_feeds(engine, settings, when)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert o.error is None, o.error
        results.append((label, secs, o))
        print(
            f"{label:<28} {secs:6.2f} s wall {cpu:5.2f} s CPU  changed={o.changed!s:<5} "
            f"items={o.episode_count} "
            f"size={o.size_bytes / 1e6:.1f} MB chapters_written={o.chapters_written} "
            f"({o.chapters_seconds:.2f} s) "
            f"problems={len(o.problems)}"
        )

    timed("first build (writes all)", now)
    timed("rebuild, nothing changed", now + timedelta(minutes=5))
    with session(engine, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == args.episodes)).one()
        ep.title += " (fixed typo)"
        s.add(ep)
    timed("rebuild, one episode edited", now + timedelta(minutes=10))
    rss_growth = _rss_mb() - rss0
    print(f"peak RSS growth over the timed builds: {rss_growth:.0f} MB (maxrss {_rss_mb():.0f} MB)")

    with session(engine, write=True) as s:
        ep = s.exec(select(Episode).where(Episode.number == args.episodes)).one()
        ep.title += "!"
        s.add(ep)
    gc.collect()
    tracemalloc.start()
    publish_feeds(engine, settings, now + timedelta(minutes=15))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"tracemalloc peak (Python allocations, separate untimed build): {peak / 1e6:.0f} MB")

    if args.profile:
        with session(engine, write=True) as s:
            ep = s.exec(select(Episode).where(Episode.number == args.episodes)).one()
            ep.title += "?"
            s.add(ep)
        prof = cProfile.Profile()
        prof.enable()
        publish_feeds(engine, settings, now + timedelta(minutes=20))
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)

    worst = max(secs for _, secs, _ in results)
    ok = worst < 2.0 and rss_growth < 300
    print(f"worst build {worst:.2f} s; target < 2 s and < 300 MB: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
