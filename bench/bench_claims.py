"""The workers' claim path alone (no HTTP): concurrent claimers on one PostgreSQL.

    .venv/bin/python bench/bench_claims.py [--claimers 32] [--sources 100000]
        [--seconds 10] [--batch 1 --batch 25] [--url postgresql://postgres@127.0.0.1/postgres]

Makes a database of its own (`synd_bench_claims`, dropped afterwards) with SOURCES due
feeds, then runs CLAIMERS concurrent claimers (processes x threads, one connection each)
for SECONDS per batch size. A claimer does what a worker does around a poll, minus the
HTTP: `store.sources.claim_due` (UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
with a lease by the database's clock), then stores the "poll" (next due in an hour) and
releases the lease in one statement. Reported: claims per second (sources claimed and
stored) and the PostgreSQL time per claim round trip. Target (issue 14): 2,000 claims/s
with 32 concurrent claimers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syndicator.store import sources as store_sources  # noqa: E402
from syndicator.store.db import make_engine, normalize_url, session, upgrade  # noqa: E402

DB = "synd_bench_claims"
LEASE = timedelta(minutes=5)
# what storing a poll does to a claimed source: next due an hour on, lease released
STORE = sa.text(
    "UPDATE sources SET next_due_at = timezone('UTC', now()) + interval '1 hour', "
    "last_poll_at = timezone('UTC', now()), polls = polls + 1, "
    "lease_owner = NULL, lease_until = NULL "
    "WHERE name = ANY(:names) AND lease_owner = :owner"
)


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")


def _db_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + DB


def setup(url: str, n: int) -> None:
    admin = _admin(url)
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{DB}"'))
    admin.dispose()
    engine = upgrade(_db_url(url))
    with engine.begin() as c:  # a farm of due feeds, made by the server in one statement
        c.execute(
            sa.text(
                "INSERT INTO sources (name, type, url, next_due_at, consecutive_errors, "
                "disabled, alerted, polls, poll_errors) "
                "SELECT 'feed-' || i, 'feed', 'http://127.0.0.1/f/' || i || '.xml', "
                "timezone('UTC', now()) - (i || ' milliseconds')::interval, 0, false, false, 0, 0 "
                "FROM generate_series(1, :n) AS i"
            ),
            {"n": n},
        )
        c.execute(sa.text("ANALYZE sources"))
    engine.dispose()


def reset(url: str) -> None:
    """Every source due again (between batch sizes)."""
    engine = make_engine(_db_url(url))
    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE sources SET next_due_at = timezone('UTC', now()) - interval '1 second', "
                "lease_owner = NULL, lease_until = NULL, polls = 0"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("VACUUM ANALYZE sources"))
    engine.dispose()


def _process(url: str, threads: int, batch: int, seconds: float, out: Any) -> None:
    """One process's claimers (threads, a connection each); puts (claimed, times) each."""
    engine = make_engine(_db_url(url))
    start = threading.Barrier(threads)
    results: list[tuple[int, list[float]]] = []
    lock = threading.Lock()

    def claimer(k: int) -> None:
        owner = f"bench:{os.getpid()}:{k}"
        claimed, times = 0, []
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            with session(engine, write=True) as s:
                names = store_sources.claim_due(s, owner, None, LEASE, batch)
            times.append(time.perf_counter() - t0)
            if not names:
                break  # the farm ran out of due sources
            with engine.begin() as c:
                c.execute(STORE, {"names": names, "owner": owner})
            claimed += len(names)
        with lock:
            results.append((claimed, times))

    pool = [threading.Thread(target=claimer, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    engine.dispose()
    out.put(results)


def run(url: str, claimers: int, batch: int, seconds: float) -> dict[str, float]:
    procs_n = min(claimers, max(os.cpu_count() or 1, 1) * 2)
    per = [claimers // procs_n + (1 if i < claimers % procs_n else 0) for i in range(procs_n)]
    q: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [
        multiprocessing.Process(target=_process, args=(url, n, batch, seconds, q)) for n in per if n
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [r for _ in procs for r in q.get()]
    for p in procs:
        p.join()
    wall = time.monotonic() - t0
    total = sum(c for c, _ in results)
    times = [t for _, ts in results for t in ts]
    engine = make_engine(_db_url(url))
    with engine.connect() as c:
        doubles = c.execute(sa.text("SELECT count(*) FROM sources WHERE polls > 1")).scalar_one()
    engine.dispose()
    return {
        "claims": total,
        "claims_per_s": total / seconds,
        "wall": wall,
        "claim_ms_median": statistics.median(times) * 1000 if times else 0.0,
        "claim_ms_p95": sorted(times)[int(len(times) * 0.95)] * 1000 if times else 0.0,
        "doubles": float(doubles),
    }


def server_ms(url: str, batch: int, samples: int = 30) -> float:
    """PostgreSQL's own time for one claim statement (EXPLAIN ANALYZE's execution time,
    median of `samples`, rolled back): what the database spends, without the client."""
    from sqlalchemy.dialects import postgresql

    engine = make_engine(_db_url(url))
    times = []
    with session(engine) as s:
        # the statement claim_due runs, compiled with its values inlined for EXPLAIN
        stmt = store_sources.claim_statement("explain", None, LEASE, batch, due_only=True)
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        for _ in range(samples):
            plan = s.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).scalar_one()
            times.append(float(plan[0]["Execution Time"]))
            s.rollback()
    engine.dispose()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--claimers", type=int, default=32)
    ap.add_argument("--sources", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, action="append")
    args = ap.parse_args()
    batches = args.batch or [1, 25]
    setup(args.url, args.sources)
    try:
        print(f"{args.claimers} concurrent claimers, {args.sources:,} due sources, "
              f"{args.seconds:g} s per batch size")  # fmt: skip
        for batch in batches:
            reset(args.url)
            r = run(args.url, args.claimers, batch, args.seconds)
            pg = server_ms(args.url, batch)
            print(
                f"batch {batch:>3}: {r['claims_per_s']:>8,.0f} claims/s "
                f"({int(r['claims']):,} claimed and stored; claim round trip median "
                f"{r['claim_ms_median']:.1f} ms, p95 {r['claim_ms_p95']:.1f} ms; "
                f"PostgreSQL {pg:.2f} ms per claim statement, {pg / batch * 1000:.0f} µs a "
                f"source; claimed twice: {int(r['doubles'])})"
            )
    finally:
        admin = _admin(args.url)
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
