"""syndicator `run-once` and feed2toot side by side, in one run, on the same feed farm.

    python3 -m venv /tmp/f2t && /tmp/f2t/bin/pip install feed2toot      # 0.17, its own venv
    .venv/bin/python bench/bench_vs_feed2toot.py --feed2toot /tmp/f2t/bin/feed2toot \\
        [--feeds 300] [--items 100] [--no-feed2toot]

N feeds of M items (tests/feedserver.make_feed_xml: itunes, podcast:person, chapters,
transcripts; with ETag and Last-Modified) are served from a child process on 127.0.0.1.
Both tools post to the fake Mastodon of tests/fakes/mastodon.py, and neither posts in
these runs: every item is older than syndicator's announce window (back catalogue), and
feed2toot's first run is `--populate-cache` (it reads every feed and fills its cache,
posting nothing), the second a normal `--dry-run` run that finds nothing new.

Timed, each as a fresh process (`syndicator run-once`, `feed2toot`), as cron runs them:
- cold: the first run (syndicator: empty database, already migrated; feed2toot: no cache);
- nothing changed: the second run over the same unchanged feeds.
syndicator runs with --force so every feed is polled in the second run too (not skipped as
not yet due), which is the fair comparison: both tools ask every feed both times.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from feedserver import FeedServer, make_feed_xml, serve_in_process  # noqa: E402

from tests.fakes.mastodon import FakeMastodon  # noqa: E402


def setup(srv: FeedServer, feeds: int, items: int) -> None:
    """In the server process: feed i at /feeds/i.xml, its own guids, all items in 2020-21."""
    start = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    for i in range(feeds):
        site = f"https://show{i}.example.com"  # distinct guids, as distinct podcasts have
        body = make_feed_xml(items, seed=i, title=f"Show {i}", start=start, base_url=site)
        srv.add_feed(f"/feeds/{i}.xml", body)


def syndicator_config(tmp: Path, base: str, feeds: int, masto: str) -> Path:
    lines = [
        '[podcast]\ntitle = "Bench"\ntimezone = "UTC"\n',
        '[database]\nurl = "sqlite:///bench.db"\n',
        '[announce]\nwindow = "14d"\n',
        f'[[channels]]\nname = "masto"\ntype = "mastodon"\ninstance = "{masto}"\n',
    ]
    lines += [
        f'[[sources]]\nname = "f{i}"\ntype = "feed"\nurl = "{base}/feeds/{i}.xml"\n'
        for i in range(feeds)
    ]
    cfg = tmp / "syndicator.toml"
    cfg.write_text("\n".join(lines))
    return cfg


def feed2toot_config(tmp: Path, base: str, feeds: int, masto: str, token: str) -> Path:
    (tmp / "feeds.txt").write_text("".join(f"{base}/feeds/{i}.xml\n" for i in range(feeds)))
    (tmp / "user.secret").write_text(token + "\n")
    (tmp / "client.secret").write_text("client_id\nclient_secret\n")
    ini = tmp / "feed2toot.ini"
    ini.write_text(
        f"[mastodon]\ninstance_url={masto}\nuser_credentials={tmp / 'user.secret'}\n"
        f"client_credentials={tmp / 'client.secret'}\n\n"
        f"[cache]\ncachefile={tmp / 'feed2toot.db'}\ncache_limit=100000\n\n"
        f"[lock]\nlock_file={tmp / 'feed2toot.lock'}\nlock_timeout=3600\n\n"
        f"[rss]\nuri_list={tmp / 'feeds.txt'}\ntoot={{title}} {{link}}\n"
    )
    return ini


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=300)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--feed2toot", default="/tmp/f2t/bin/feed2toot")
    ap.add_argument("--no-feed2toot", action="store_true", help="time syndicator only")
    args = ap.parse_args()
    print(f"{args.feeds} feeds x {args.items} items from 127.0.0.1; {os.cpu_count()} CPUs")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    syn = [sys.executable, "-m", "syndicator.cli"]
    with (
        serve_in_process(partial(setup, feeds=args.feeds, items=args.items)) as base,
        FakeMastodon() as masto,
        tempfile.TemporaryDirectory() as d,
    ):
        tmp = Path(d)
        (tmp / "s").mkdir()
        (tmp / "f").mkdir()
        cfg = syndicator_config(tmp / "s", base, args.feeds, masto.url)
        env = dict(os.environ, SYNDICATOR_MASTO_ACCESS_TOKEN=masto.token)
        timed([*syn, "--config", str(cfg), "db", "upgrade"], tmp / "s", env)
        rows: list[tuple[str, float, float]] = []
        cold = timed([*syn, "--config", str(cfg), "run-once", "--force"], tmp / "s", env)
        warm = timed([*syn, "--config", str(cfg), "run-once", "--force"], tmp / "s", env)
        rows.append(("syndicator run-once", cold, warm))
        if not args.no_feed2toot:
            ini = feed2toot_config(tmp / "f", base, args.feeds, masto.url, masto.token)
            f2t = [args.feed2toot, "-c", str(ini)]
            fcold = timed([*f2t, "--populate-cache"], tmp / "f", dict(os.environ))
            fwarm = timed([*f2t, "--dry-run"], tmp / "f", dict(os.environ))
            rows.append(("feed2toot 0.17", fcold, fwarm))
        posted = len(masto.statuses())
    print(f"{'':22}{'cold':>10}{'nothing changed':>18}")
    for name, c, w in rows:
        print(f"{name:22}{c:>9.2f}s{w:>17.2f}s")
    if len(rows) == 2:
        (_, c, w), (_, fc, fw) = rows
        print(
            f"ratio syndicator / feed2toot: cold {c / fc:.2f}x (target <= 0.5), "
            f"nothing changed {w / fw:.3f}x (target <= 0.1)"
        )
    print(f"statuses posted to the fake Mastodon: {posted} (expected 0)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
