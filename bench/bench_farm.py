"""Workers against a loopback farm of 100,000 feeds, 95% of them answering 304 (issue 14).

    .venv/bin/python bench/bench_farm.py                          # SQLite x1, PostgreSQL x1, x2, x4
    .venv/bin/python bench/bench_farm.py --feeds 10000 --engine postgres --workers 1 --workers 4
    .venv/bin/python bench/bench_farm.py --pg-url postgresql://postgres@127.0.0.1:5432/postgres

The farm (tests/feedserver.py `serve_farm`) is an asyncio HTTP/1.1 keep-alive server in a
child process: every 20th feed has a new episode on each request (a 200 with a small
feed), the others answer 304 to their stored ETag, and it counts the requests per feed.

For each run the store is made afresh (a SQLite file, or a PostgreSQL database of its own,
`synd_bench_farm`, dropped afterwards) with FEEDS stored sources (`store.source_rows`, as
`sources import` of an OPML makes them), primed as polled an hour ago with the farm's
ETags (`store.sources.seed_polled`), so every feed is due. Then WORKERS `syndicator
run-once` processes run at once (on PostgreSQL they share the feeds by claims; SQLite has
one writer, so one process). Reported: wall time to the last exit, polls per second, CPU
seconds per poll (user + system of the worker processes, start-up included), 304s and
200s, whether every feed was polled exactly once (the farm's counts) and its next due
time stored, the PostgreSQL time per claim (the workers' log; and one claim alone before
the run, with and without the list of names a worker sends), and whether one worker's
rate keeps 100,000 feeds fresh every hour (27.8 polls/s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syndicator.config import FetchConfig, WorkersConfig  # noqa: E402
from syndicator.store import source_rows  # noqa: E402
from syndicator.store import sources as store_sources  # noqa: E402
from syndicator.store.db import (  # noqa: E402
    dispose_all,
    make_engine,
    normalize_url,
    session,
    upgrade,
)
from syndicator.timeutil import utcnow  # noqa: E402
from tests.feedserver import (  # noqa: E402
    FARM_LAST_MODIFIED,
    Farm,
    farm_etag,
    serve_farm,
)

DB = "synd_bench_farm"
TARGET = 100_000 / 3600  # polls per second that keep 100,000 feeds fresh every hour


def _name(i: int) -> str:
    return f"farm-{i:06d}"


def make_store(url: str, farm: Farm) -> None:
    """FEEDS stored sources, each polled once an hour ago (due now), with the farm's
    validators; a changed feed's ETag never matches again, as on a real changing feed."""
    engine = upgrade(url)
    now = utcnow()
    rows = [
        source_rows.NewSource(_name(i), farm.url(i), every_seconds=3600, origin="bench")
        for i in range(farm.feeds)
    ]
    validators = [
        (_name(i), farm_etag(i), None if farm.changed(i) else FARM_LAST_MODIFIED)
        for i in range(farm.feeds)
    ]
    with session(engine, write=True) as s:
        source_rows.add_many(s, rows, now)
    with session(engine, write=True) as s:
        store_sources.seed_polled(s, validators, now - timedelta(hours=1), now - timedelta(1))
    dispose_all()


def fresh_pg(admin_url: str) -> str:
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{DB}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + DB


def drop_pg(admin_url: str) -> None:
    dispose_all()
    admin = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
    admin.dispose()


def claim_ms(url: str, names: list[str], batch: int, samples: int = 10) -> tuple[float, float]:
    """PostgreSQL time per claim, as the client sees one round trip (median, rolled back
    so every sample finds the same due sources): (the worker's statement, which lists
    every source it polls, the statement without the list)."""
    engine = make_engine(url)
    out = []
    for listed in (names, None):
        times = []
        for _ in range(samples):
            with Session(engine) as s:
                t = time.perf_counter()
                store_sources.claim_due(s, "bench", listed, timedelta(minutes=5), batch)
                times.append(1000 * (time.perf_counter() - t))
                s.rollback()
        out.append(statistics.median(times))
    engine.dispose()
    return out[0], out[1]


def write_config(path: Path, db_url: str, args: argparse.Namespace) -> Path:
    path.write_text(f"""
[podcast]
title = "Farm"
timezone = "UTC"

[database]
url = "{db_url}"

[fetch]
# every feed is on one host here; a real 100,000 are spread over thousands of hosts
max_per_host = {args.max_per_host}
max_connections = {args.max_connections}

[workers]
claim_batch = {args.claim_batch}
""")
    return path


@dataclass
class Proc:
    wall: float
    cpu: float
    rc: int
    log: str


def run_workers(cfg: Path, n: int, cwd: Path) -> tuple[float, list[Proc]]:
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg)]
    cmd += ["--log-format", "json", "--log-level", "info", "run-once"]
    logs = [cwd / f"worker{k}.log" for k in range(n)]
    started = time.perf_counter()
    procs = []
    for k in range(n):
        with logs[k].open("w") as out:
            procs.append(
                (
                    subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT),
                    time.perf_counter(),
                )
            )
    done: list[Proc] = []
    for (p, t0), log in zip(procs, logs, strict=True):
        _pid, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        done.append(Proc(wall, usage.ru_utime + usage.ru_stime, p.returncode, log.read_text()))
    return time.perf_counter() - started, done


def claim_figures(procs: list[Proc]) -> tuple[int, float]:
    """(claims, mean ms per claim) from the workers' 'feed sources: ... claims' lines."""
    claims, total_ms = 0, 0.0
    for p in procs:
        for line in p.log.splitlines():
            try:
                msg = json.loads(line).get("message", "")
            except ValueError:
                continue
            if msg.startswith("feed sources:") and " claims (" in msg:
                n = int(msg.split(" in ")[1].split(" claims")[0])
                ms = float(msg.split(" claims (")[1].split(" ms")[0])
                claims += n
                total_ms += n * ms
    return claims, (total_ms / claims if claims else 0.0)


def stored_after(url: str, since: object) -> tuple[int, int]:
    """(sources whose last poll is stored after `since`, sources still leased)."""
    engine = sa.create_engine(normalize_url(url))
    with engine.connect() as c:
        polled = c.execute(
            sa.text("SELECT count(*) FROM sources WHERE last_poll_at >= :t AND next_due_at > :t"),
            {"t": since},
        ).scalar_one()
        leased = c.execute(
            sa.text("SELECT count(*) FROM sources WHERE lease_owner IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    return int(polled), int(leased)


def one_run(farm: Farm, engine: str, workers: int, args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-farm-") as tmp:
        cwd = Path(tmp)
        url = f"sqlite:///{cwd / 'store.db'}" if engine == "sqlite" else fresh_pg(args.pg_url)
        try:
            t = time.perf_counter()
            make_store(url, farm)
            print(f"  store of {farm.feeds} primed sources made in {time.perf_counter() - t:.1f} s")
            cfg = write_config(cwd / "syndicator.toml", url, args)
            per_claim = (0.0, 0.0)
            if engine == "postgres":
                names = [_name(i) for i in range(farm.feeds)]
                per_claim = claim_ms(url, names, args.claim_batch)
            farm.reset()
            since = utcnow().replace(tzinfo=None)
            load = os.getloadavg()
            wall, procs = run_workers(cfg, workers, cwd)
            counts = farm.counts()
            polled, leased = stored_after(url, since)
        finally:
            if engine == "postgres":
                drop_pg(args.pg_url)
    failed = [p for p in procs if p.rc not in (0, 1)]
    for p in failed:
        print(f"  a worker exited {p.rc}; its log ends:\n{p.log[-2000:]}")
    polls = sum(counts)
    changed = sum(c for i, c in enumerate(counts) if farm.changed(i))
    cpu = sum(p.cpu for p in procs)
    claims, ms_per_claim = claim_figures(procs)
    return {
        "engine": engine,
        "workers": workers,
        "feeds": farm.feeds,
        "wall_s": round(wall, 2),
        "polls": polls,
        "polls_per_s": round(polls / wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_poll": round(1000 * cpu / max(polls, 1), 3),
        "not_modified": polls - changed,
        "changed": changed,
        "never_polled": sum(1 for c in counts if c == 0),
        "polled_twice": sum(1 for c in counts if c > 1),
        "stored": polled,
        "still_leased": leased,
        "claims": claims,
        "ms_per_claim": round(ms_per_claim, 2),
        "idle_ms_per_claim_listed": round(per_claim[0], 2),
        "idle_ms_per_claim_unlisted": round(per_claim[1], 2),
        "load_before": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def report(r: dict[str, object]) -> None:
    rate = float(r["polls_per_s"])  # type: ignore[arg-type]
    per_worker = rate / int(r["workers"])  # type: ignore[call-overload]
    print(
        f"{r['engine']} x{r['workers']}: {r['polls']} polls in {r['wall_s']} s = "
        f"{rate} polls/s ({per_worker:.1f} per worker; one worker keeping 100,000/hour "
        f"needs {TARGET:.1f}: {'met' if per_worker >= TARGET else 'MISSED'})"
        f" | CPU {r['cpu_s']} s = {r['cpu_ms_per_poll']} ms per poll\n"
        f"  304 {r['not_modified']}, 200 {r['changed']} | never polled {r['never_polled']}, "
        f"polled twice {r['polled_twice']}, next due stored {r['stored']}/{r['feeds']}, "
        f"still leased {r['still_leased']}"
        + (f" | {r['claims']} claims, {r['ms_per_claim']} ms each" if r["claims"] else "")
        + (
            f"\n  one claim alone before the run: {r['idle_ms_per_claim_listed']} ms "
            f"(naming all {r['feeds']} sources, as a worker does), "
            f"{r['idle_ms_per_claim_unlisted']} ms (no names)"
            if r["engine"] == "postgres"
            else ""
        )
        + f" | load before {r['load_before']}"
    )
    if r["feeds"] != 100_000:
        hours = 100_000 / max(rate, 1e-9) / 3600
        who = "one worker polls" if r["workers"] == 1 else f"{r['workers']} workers poll"
        print(f"  extrapolated: {who} 100,000 such feeds in {hours:.2f} h")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=100_000, help="feeds in the farm")
    ap.add_argument(
        "--engine", action="append", choices=["sqlite", "postgres"], help="default: both"
    )
    ap.add_argument(
        "--workers", type=int, action="append", help="PostgreSQL workers (default 1, 2, 4)"
    )
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument(
        "--claim-batch", type=int, default=WorkersConfig().claim_batch, help="default: the config's"
    )
    # one host stands for thousands here: more than the default 4 at once, as a worker
    # polling many hosts would have in flight
    ap.add_argument("--max-per-host", type=int, default=16)
    ap.add_argument("--max-connections", type=int, default=FetchConfig().max_connections)
    ap.add_argument("--json", action="store_true", help="also print each result as JSON")
    args = ap.parse_args()
    engines = args.engine or ["sqlite", "postgres"]
    counts = args.workers or [1, 2, 4]
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    print(
        f"{args.feeds} feeds (95% answer 304), claim_batch {args.claim_batch}, max_per_host "
        f"{args.max_per_host}; {os.cpu_count()} CPUs; uptime: "
        + subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    )
    with serve_farm(args.feeds) as farm:
        for engine in engines:
            for n in [1] if engine == "sqlite" else counts:
                print(f"{engine}, {n} worker(s):")
                r = one_run(farm, engine, n, args)
                report(r)
                if args.json:
                    print(json.dumps(r))


if __name__ == "__main__":
    main()
