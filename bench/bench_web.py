"""Admin page latency under load, while the store is being written.

    .venv/bin/python bench/bench_web.py [--episodes 10000] [--sources 10000] [--clients 50]
        [--seconds 10]

Builds a SQLite store with N episodes and 4 deliveries each (plus sources, problems,
pings and a feed), starts `syndicator serve` in its own process on 127.0.0.1, starts
a writer process standing in for a pass (it claims and finishes deliveries, plans new
ones and updates sources' poll times, in write transactions like a pass does, about
20 writes a second), then runs C concurrent clients against each page in turn
(closed loop: each client sends its next request as soon as the last one is answered)
and prints p50/p95/max per page. A second round adds 0.5 s of think time per client.

The goal: the dashboard, the sources and the episodes pages under 100 ms at p95 with 50
clients, with 10,000 sources in the store (`--sources`, an OPML import's worth).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANNELS = ["masto", "sky", "x", "hook"]
# What the dashboard's per-channel counts and the live-update poll want (see the report).
STATES = ["sent"] * 12 + ["failed", "skipped", "planned", "unknown", "retrying"]


def build_store(path: Path, episodes: int, sources: int = 5) -> str:
    import sqlalchemy as sa

    from syndicator.store import db
    from syndicator.store.models import (
        Delivery,
        Episode,
        FeedState,
        Problem,
        Show,
        Source,
        StoredSource,
    )

    url = "sqlite:///" + str(path)
    engine = db.upgrade(url)
    now = datetime.now(UTC)
    rng = random.Random(7)
    ep_rows, d_rows = [], []
    for n in range(1, episodes + 1):
        ep_rows.append(
            {
                "id": n, "guid": f"https://show.example/ep{n}", "source": f"src{n % 5}",
                "number": n, "slug": f"ep-{n}", "title": f"Episode {n}: talking about thing {n}",
                "date": now - timedelta(hours=n), "url": f"https://show.example/ep{n}",
                "guests": [{"name": f"Guest {n}"}], "tags": ["tech"], "categories": ["podcast"],
                "description": "A conversation.", "show_notes_html": "<p>notes</p>" * 20,
                "chapters": [], "episode_type": "full", "content_hash": f"h{n}",
                "first_seen_at": now, "last_changed_at": now, "withdrawn": False,
                "backlog": False,
            }
        )  # fmt: skip
        for ch in CHANNELS:
            state = rng.choice(STATES)
            d_rows.append(
                {
                    "key": f"announce:{n}:{ch}", "kind": "announce", "episode_id": n,
                    "channel": ch, "state": state, "text": f"New episode {n} " + "x" * 200,
                    "payload": {}, "attempts": 1, "planned_at": now, "updated_at": now,
                    "sent_at": now if state == "sent" else None,
                    "latency_seconds": rng.uniform(0.1, 3) if state == "sent" else None,
                    "last_error": "HTTP 503" if state == "failed" else None,
                }
            )  # fmt: skip
    for i in range(200):
        d_rows.append(
            {
                "key": f"ping:-:directory:main:{i}", "kind": "ping", "episode_id": None,
                "channel": "directory", "target": "https://hub.example/", "state": "sent",
                "text": "https://show.example/feed.xml", "payload": {"feed": "main"},
                "attempts": 1, "planned_at": now, "updated_at": now, "sent_at": now,
            }
        )  # fmt: skip
    keys = {k for r in d_rows for k in r}
    d_rows = [{k: r.get(k) for k in keys} for r in d_rows]  # executemany wants equal keys
    with engine.begin() as conn:
        conn.execute(sa.insert(Episode.__table__), ep_rows)  # type: ignore[attr-defined]
        conn.execute(sa.insert(Delivery.__table__), d_rows)  # type: ignore[attr-defined]
        conn.execute(
            sa.insert(Source.__table__),  # type: ignore[attr-defined]
            [
                {"name": f"src{i}", "type": "feed", "url": f"https://f{i}.example/feed",
                 "last_poll_at": now, "consecutive_errors": i % 2, "disabled": False,
                 "alerted": False, "polls": 100, "poll_errors": i}
                for i in range(max(sources, 5))
            ],
        )  # fmt: skip
        if sources > 5:  # a network's OPML import: stored sources, half with a show read
            conn.execute(
                sa.insert(StoredSource.__table__),  # type: ignore[attr-defined]
                [
                    {"name": f"src{i}", "url": f"https://f{i}.example/feed", "title": f"Show {i}",
                     "every_seconds": 1800, "categories": ["News"], "enabled": True,
                     "origin": "opml:network.opml", "added_at": now}
                    for i in range(5, sources)
                ],
            )  # fmt: skip
            conn.execute(
                sa.insert(Show.__table__),  # type: ignore[attr-defined]
                [
                    {"source": f"src{i}", "title": f"Show {i}: news from place {i}",
                     "description": "A daily show." * 20, "link": f"https://s{i}.example/",
                     "image": f"https://cdn.example/{i}.jpg", "author": f"Host {i}",
                     "owner_name": "", "owner_email": "", "language": "en",
                     "categories": ["News"], "podcast_guid": f"guid-{i}", "new_feed_url": "",
                     "locked": i % 3 == 0, "locked_owner": "", "funding": [], "value": {},
                     "medium": "podcast", "last_build_date": now,
                     "feed_url": f"https://f{i}.example/feed", "updated_at": now}
                    for i in range(0, sources, 2)
                ],
            )  # fmt: skip
        conn.execute(
            sa.insert(Problem.__table__),  # type: ignore[attr-defined]
            [
                {"source": "src1", "location": f"https://f1.example/item{i}", "kind": "xml",
                 "message": "broken item", "severity": "error", "first_seen_at": now,
                 "last_seen_at": now}
                for i in range(30)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(FeedState.__table__),  # type: ignore[attr-defined]
            [{"name": "main", "podcast_guid": "g", "url": "https://show.example/feed.xml",
              "built_at": now, "size_bytes": 9_000_000, "episode_count": episodes,
              "build_seconds": 2.5, "check_problems": []}],
        )  # fmt: skip
    engine.dispose()
    return url


def writer(url: str, stop_at: float, counter: mp.Value) -> None:  # type: ignore[type-arg]
    """Stands in for a pass: the writes a pass makes, at a pass's pace."""
    import sqlalchemy as sa

    from syndicator.store import db
    from syndicator.store.models import Delivery, Source

    engine = db.make_engine(url)
    rng = random.Random()
    next_id = 10_000_000
    while time.time() < stop_at:
        now = datetime.now(UTC)
        did = rng.randint(1, 40_000)
        with db.session(engine, write=True) as s:  # claim
            s.execute(
                sa.update(Delivery).where(Delivery.id == did)  # type: ignore[arg-type]
                .values(state="sending", updated_at=now, attempts=Delivery.attempts + 1)
            )  # fmt: skip
        time.sleep(0.02)
        with db.session(engine, write=True) as s:  # finish
            s.execute(
                sa.update(Delivery).where(Delivery.id == did)  # type: ignore[arg-type]
                .values(state=rng.choice(["sent", "retrying"]), updated_at=datetime.now(UTC),
                        latency_seconds=rng.uniform(0.1, 2))
            )  # fmt: skip
            s.execute(
                sa.update(Source).where(Source.name == f"src{rng.randint(0, 4)}")  # type: ignore[arg-type]
                .values(last_poll_at=datetime.now(UTC), polls=Source.polls + 1)
            )  # fmt: skip
        with db.session(engine, write=True) as s:  # plan one
            next_id += 1
            s.execute(
                sa.insert(Delivery).values(
                    key=f"announce:{rng.randint(1, 10_000)}:extra{next_id}", kind="announce",
                    episode_id=rng.randint(1, 10_000), channel="extra", state="planned",
                    text="t", payload={}, planned_at=now, updated_at=now,
                )
            )  # fmt: skip
        with counter.get_lock():
            counter.value += 3
        time.sleep(0.03)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Conn:
    """A bare HTTP/1.1 keep-alive client: httpx costs ~4 ms of CPU a request, which
    on a 2-core machine would measure the client, not the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookie = ""
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        cookie = f"Cookie: {self.cookie}\r\n" if self.cookie else ""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{cookie}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "set-cookie":
                self.cookie = value.strip().split(";", 1)[0]  # a browser keeps its session
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def load(
    host: str, port: int, paths: list[str], clients: int, seconds: float, think: float
) -> tuple[list[float], int]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one(i: int) -> None:
        nonlocal errors
        rng = random.Random(i)
        conn = Conn(host, port)
        await asyncio.sleep(rng.uniform(0, min(think, 0.5)) if think else 0)
        try:
            while time.perf_counter() < deadline:
                path = rng.choice(paths)
                t0 = time.perf_counter()
                status = await conn.get(path)
                lat.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
                if think:
                    await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
        finally:
            conn.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return lat, errors


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=10_000, help="sources (feeds) in the store")
    ap.add_argument("--no-writer", action="store_true", help="measure without the writer")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    t0 = time.perf_counter()
    url = build_store(tmp / "s.db", args.episodes, args.sources)
    print(f"store: {args.episodes} episodes, {args.episodes * 4} deliveries, "
          f"{max(args.sources, 5)} sources "
          f"({time.perf_counter() - t0:.1f} s to build)")  # fmt: skip
    cfg = tmp / "syndicator.toml"
    channels = "".join(
        f'\n[[channels]]\nname = "{c}"\ntype = "mastodon"\ninstance = "https://m.example"\n'
        for c in CHANNELS
    )
    port = free_port()
    cfg.write_text(
        f'[database]\nurl = "{url}"\n\n[web]\nhost = "127.0.0.1"\nport = {port}\n{channels}',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "SYNDICATOR_WEB_PASSWORD"}
    server = subprocess.Popen(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "--log-level", "error",
         "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        server.kill()
        sys.exit("the server did not start: " + (server.stderr.read() if server.stderr else ""))

    rounds = [
        ("dashboard", ["/"]),
        # the sources, paged and searched by the database (10,000 of them by default)
        ("sources", ["/sources"] + [f"/sources?page={p}" for p in (2, 17, 100, 199)]
         + ["/sources?q=place+4242", "/sources?q=f77.example"]),
        ("episodes", ["/episodes"]
         + [f"/episodes?page={p}" for p in (2, 7, 40, 150)]
         + ["/episodes?state=failed", "/episodes?channel=sky&state=unknown&page=3",
            "/episodes?q=thing+42"]),
        # made for every request (no shared copy): the uncached path
        ("episode", [f"/episodes/{n}" for n in random.Random(1).sample(
            range(1, args.episodes + 1), 200)]),
    ]  # fmt: skip
    total = args.seconds * len(rounds) * 2 + 10
    counter = mp.Value("i", 0)
    proc = None
    if not args.no_writer:
        proc = mp.Process(target=writer, args=(url, time.time() + total, counter), daemon=True)
        proc.start()
    try:
        for think in (0.0, 0.5):
            mode = "closed loop" if not think else f"{think} s think time"
            print(f"\n{args.clients} clients, {mode}, "
                  f"{'a writer running' if proc else 'no writer'}:")  # fmt: skip
            for name, paths in rounds:
                for p in paths[:10]:  # warm up
                    httpx.get(base + p, timeout=30)
                before = counter.value
                t = time.perf_counter()
                lat, errors = asyncio.run(
                    load("127.0.0.1", port, paths, args.clients, args.seconds, think)
                )
                took = time.perf_counter() - t
                writes = counter.value - before
                print(
                    f"  {name:<10} n={len(lat):<6} {len(lat) / took:7.1f} req/s  "
                    f"p50 {pct(lat, 50) * 1000:6.1f} ms  p95 {pct(lat, 95) * 1000:6.1f} ms  "
                    f"max {max(lat) * 1000:6.1f} ms  mean {statistics.mean(lat) * 1000:6.1f} ms"
                    f"  errors {errors}  store writes during it {writes}"
                )
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        if proc is not None:
            proc.terminate()


if __name__ == "__main__":
    main()
