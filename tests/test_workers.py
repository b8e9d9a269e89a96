"""Three `syndicator run` workers on one PostgreSQL against a feed farm on 127.0.0.1
that logs every request (issue #14, "Workers that add up"):

- every feed is polled once per interval, never twice, and the polls spread over all
  three workers;
- new items in 20 feeds are each announced exactly once on fake channels;
- a worker SIGKILLed mid-pass leaves its claimed sources; the others take them over
  after the lease, and nothing is lost or doubled.

Each worker has its own config file (the same database) whose `user_agent` names it,
so the farm's log says which worker polled what.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from syndicator.store import sources as store_sources
from syndicator.store.db import dispose_all, session, upgrade
from syndicator.store.ingest import ensure_source
from tests.daemon_support import cli, wait
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.webhook import FakeWebhook
from tests.feedserver import (
    FARM_LAST_MODIFIED,
    Farm,
    FeedServer,
    farm_etag,
    make_feed_xml,
    serve_farm,
)

FEEDS = 24
NEW = 20  # feeds that get a new episode
OLD = 3  # items each feed has at first: weeks old, never announced
EVERY = 3.0  # seconds between polls of one feed
# a claim on a source: longer than reading and storing a batch on a busy 2-core machine;
# a killed worker's sources wait this long
LEASE = "6s"


def _path(i: int) -> str:
    return f"/feeds/{i:02d}.xml"


def _feed(i: int, items: int) -> bytes:
    # items 1..OLD are weeks old (backlog: never announced); item OLD + 1 is dated now
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7 * OLD)
    return make_feed_xml(
        items, title=f"Show {i}", seed=i, base_url=f"https://show{i}.example", start=start,
        persons=False, chapters=False, transcripts=False, notes_paragraphs=1,
    )  # fmt: skip


@dataclass
class Net:
    pg_url: str
    farm: FeedServer
    masto: FakeMastodon
    hook: FakeWebhook
    configs: list[Path]
    new_bodies: dict[int, bytes] = field(default_factory=dict)

    def polls(self, agent: str | None = None) -> list[tuple[str, str, float]]:
        """(path, worker, start time) of every feed request, in arrival order."""
        return [
            (r.path, r.headers.get("user-agent", ""), r.started)
            for r in self.farm.requests()
            if r.path.startswith("/feeds/")
            and (agent is None or r.headers.get("user-agent") == agent)
        ]

    def announced(self) -> list[dict[str, object]]:
        out = json.loads(cli(self.configs[0], "deliveries", "--json").stdout)
        return [d for d in out if d["kind"] == "announce" and d["state"] == "sent"]

    def sent(self) -> int:
        """Announcements sent so far (read straight from the database: cheap to poll)."""
        engine = sa.create_engine(self.pg_url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as c:
                return int(
                    c.execute(
                        sa.text(
                            "SELECT count(*) FROM deliveries WHERE kind = 'announce' "
                            "AND state = 'sent'"
                        )
                    ).scalar_one()
                )
        finally:
            engine.dispose()


def _config(path: Path, pg_url: str, agent: str, farm: FeedServer, masto: str, hook: str) -> Path:
    sources = "".join(
        f'\n[[sources]]\nname = "feed-{i:02d}"\ntype = "feed"\nverify_audio = false\n'
        f'url = "{farm.url(_path(i))}"\nevery = "{EVERY:g}s"\n'
        for i in range(FEEDS)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[podcast]
title = "A network"
timezone = "UTC"

[database]
url = "{pg_url}"

[fetch]
user_agent = "{agent}"

[announce]
window = "1d"
lease = "5s"
retry_base = "1s"
catch_up = "send"  # 20 new items at once is the test, not a backlog to hold

[[channels]]
name = "masto"
type = "mastodon"
instance = "{masto}"
timeout = "5s"

[[channels]]
name = "hook"
type = "apprise"
url = "{hook}"
timeout = "5s"

[daemon]
heartbeat = "0.3s"
jitter = "0s"

[workers]
source_lease = "{LEASE}"
claim_batch = 3
{sources}""")
    return path


@contextmanager
def network(pg_url: str, tmp_path: Path) -> Iterator[Net]:
    with FeedServer() as farm, FakeMastodon() as masto, FakeWebhook() as hook:
        for i in range(FEEDS):
            farm.add_feed(_path(i), _feed(i, OLD))
        configs = [
            _config(
                tmp_path / f"w{n}" / "syndicator.toml",
                pg_url,
                f"worker-{n}",
                farm,
                masto.url,
                f"json://127.0.0.1:{hook.port}/announce",
            )
            for n in (1, 2, 3)
        ]
        upgrade(pg_url)  # the schema once, before three processes start together
        dispose_all()
        yield Net(pg_url, farm, masto, hook, configs)


@contextmanager
def workers(configs: list[Path], token: str = "") -> Iterator[list[subprocess.Popen[str]]]:
    env = dict(os.environ, SYNDICATOR_MASTO_ACCESS_TOKEN=token, PYTHONUNBUFFERED="1")
    procs = []
    for cfg in configs:
        cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "--log-format"]
        cmd += ["json", "--log-level", "info", "run"]
        # the log goes to a file: a pipe nobody reads would fill and stall the worker
        with (cfg.parent / "worker.log").open("w") as log:
            procs.append(
                subprocess.Popen(
                    cmd, cwd=cfg.parent, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
                )
            )
    try:
        yield procs
    finally:
        for p in procs:  # all at once: each finishes its send in flight
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _all_polled(net: Net, since: float = 0.0) -> bool:
    seen = {path for path, _, at in net.polls() if at >= since}
    return len(seen) == FEEDS


def _add_new_episodes(net: Net, delay: float = 0.0) -> set[str]:
    """A new episode (dated now) in each of the first NEW feeds; `delay` makes the farm
    answer them that much later. Returns the new episodes' guids."""
    for i in range(NEW):
        net.new_bodies[i] = net.new_bodies.get(i) or _feed(i, OLD + 1)
        net.farm.add_feed(_path(i), net.new_bodies[i], delay=delay)
    return {f"https://show{i}.example/episodes/{OLD + 1}" for i in range(NEW)}


def _assert_announced_once(net: Net, guids: set[str]) -> None:
    rows = net.announced()
    per_channel = {
        ch: sorted(d["episode"] for d in rows if d["channel"] == ch) for ch in ("masto", "hook")
    }  # type: ignore[type-var]
    for ch, got in per_channel.items():
        assert got == sorted(guids), (ch, got)
    statuses = net.masto.statuses()
    assert len(statuses) == NEW  # the network holds each once
    assert len(net.masto.posts()) == NEW  # and was never even asked twice
    assert len(net.hook.posts("/announce")) == NEW


def test_three_workers_share_the_feeds_and_announce_once(pg_url: str, tmp_path: Path) -> None:
    with network(pg_url, tmp_path) as net:
        with workers(net.configs, net.masto.token) as procs:
            assert wait(lambda: _all_polled(net), timeout=60), "not every feed was polled"
            guids = _add_new_episodes(net)
            assert wait(lambda: net.sent() >= 2 * NEW, timeout=60, every=0.3)
            t_new = time.monotonic()
            # keep polling a few more intervals, then look at the farm's log
            assert wait(lambda: _all_polled(net, t_new + 2 * EVERY), timeout=60)
            for p in procs:
                assert p.poll() is None, "a worker died"
            status = json.loads(cli(net.configs[0], "status", "--json").stdout)
        _assert_announced_once(net, guids)

    by_feed: dict[str, list[float]] = {}
    for path, _, at in net.polls():
        by_feed.setdefault(path, []).append(at)
    assert len(by_feed) == FEEDS
    for path, times in by_feed.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # never twice in one interval (a claim is due only EVERY after the last one)
        assert min(gaps) > EVERY * 0.6, (path, gaps)
        assert len(times) >= 3, (path, times)  # and polled again each interval
    agents = [agent for _, agent, _ in net.polls()]
    shares = {a: agents.count(a) / len(agents) for a in ("worker-1", "worker-2", "worker-3")}
    assert all(share > 0.1 for share in shares.values()), shares  # spread over all three
    rows = {w["pid"]: w for w in status["workers"]}
    assert set(rows) == {p.pid for p in procs}
    assert all(w["alive"] for w in rows.values())
    assert all(w["polls"] > 0 for w in rows.values())
    assert sum(w["sends"] for w in rows.values()) >= 2 * NEW


def test_a_killed_workers_sources_are_taken_over(pg_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    victims_leases = sa.text("SELECT name FROM sources WHERE lease_owner LIKE :o")
    with network(pg_url, tmp_path) as net:
        with workers(net.configs, net.masto.token) as procs:
            assert wait(lambda: _all_polled(net), timeout=60), "not every feed was polled"
            # slow answers: the victim is still reading when it is killed
            guids = _add_new_episodes(net, delay=1.5)
            new_paths = {_path(i) for i in range(NEW)}
            victim = procs[2]
            like = {"o": f"%:{victim.pid}:%"}

            def victim_mid_poll() -> bool:
                return any(
                    r.finished == 0.0 and r.headers.get("user-agent") == "worker-3"
                    for r in net.farm.requests()
                    if r.path in new_paths
                )

            assert wait(victim_mid_poll, timeout=60, every=0.02), "worker-3 read no new item"
            with engine.connect() as c:
                held = {name for (name,) in c.execute(victims_leases, like)}
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            t_kill = time.monotonic()
            assert held, "the victim held no sources when it was killed"
            _add_new_episodes(net, delay=0.0)  # the same feeds, answered at once again
            # the survivors take its sources over after the lease, and every new item in
            # the 20 feeds (some were the victim's) is announced, once
            assert wait(lambda: net.sent() >= 2 * NEW, timeout=60, every=0.3)
            time.sleep(2)  # a late double would show by now
            status = json.loads(cli(net.configs[0], "status", "--json").stdout)
            with engine.connect() as c:
                still = {name for (name,) in c.execute(victims_leases, like)}
            for p in procs[:2]:
                assert p.poll() is None, "a survivor died"
        _assert_announced_once(net, guids)
    engine.dispose()

    taken = {
        path for path, agent, at in net.polls() if at > t_kill and agent in ("worker-1", "worker-2")
    }
    held_paths = {_path(int(name.split("-")[1])) for name in held}
    assert held_paths <= taken  # each source the victim held was read again by a survivor
    assert not still  # and claimed by one since (its leases are gone)
    rows = {w["pid"]: w for w in status["workers"]}
    assert rows[victim.pid]["alive"] is False  # its heartbeat stopped
    assert all(rows[p.pid]["alive"] for p in procs[:2])


# ---- the 304 path against a feed farm (bench/bench_farm.py's farm) ------------------------

FARM_FEEDS = 300


def _farm_config(path: Path, pg_url: str, farm: Farm) -> Path:
    # [[sources]] rather than stored ones: a worker wakes for these when they fall due
    # (or a dead worker's lease ends); stored ones wait for the daemon's `poll:stored` look
    sources = "".join(
        f'\n[[sources]]\nname = "farm-{i:03d}"\ntype = "feed"\nurl = "{farm.url(i)}"\n'
        'every = "1h"\n'
        for i in range(FARM_FEEDS)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""
[podcast]
title = "A farm"
timezone = "UTC"

[database]
url = "{pg_url}"

[daemon]
heartbeat = "0.3s"
jitter = "0s"

[workers]
source_lease = "{LEASE}"
claim_batch = 10
{sources}""")
    return path


def test_a_304_pass_stores_every_feed_once_even_when_a_worker_is_killed(
    pg_url: str, tmp_path: Path
) -> None:
    """Three workers poll 300 feeds (95% answer 304) that are all due; one is
    killed mid-pass. Every feed ends up polled, with its poll stored as `status` and the
    dashboard show it (last polled, next due an interval later, the validators); only
    the victim's claimed batch is polled twice, and nothing is left leased."""
    engine = upgrade(pg_url)
    with serve_farm(FARM_FEEDS, changed_every=20) as farm:
        t0 = datetime.now(UTC)
        naive = t0.replace(tzinfo=None)  # as the store keeps times (UTC) for raw SQL
        with session(engine, write=True) as s:
            for i in range(FARM_FEEDS):
                ensure_source(s, f"farm-{i:03d}", "feed", farm.url(i))
        with session(engine, write=True) as s:
            store_sources.seed_polled(
                s,
                [(f"farm-{i:03d}", farm_etag(i), None) for i in range(FARM_FEEDS)],
                t0 - timedelta(hours=1),
                t0 - timedelta(seconds=1),
            )
        dispose_all()
        configs = [
            _farm_config(tmp_path / f"w{n}" / "syndicator.toml", pg_url, farm) for n in (1, 2, 3)
        ]
        leases = sa.text("SELECT name FROM sources WHERE lease_owner LIKE :o")
        with workers(configs) as procs:
            victim = procs[2]
            assert wait(lambda: sum(farm.counts()) >= FARM_FEEDS // 5, timeout=60)
            # stopped first, so the leases read are all it holds when it dies
            victim.send_signal(signal.SIGSTOP)
            with engine.connect() as c:
                held = {n for (n,) in c.execute(leases, {"o": f"%:{victim.pid}:%"})}
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            assert held, "the victim held no sources when it was killed"

            def all_stored() -> bool:
                with engine.connect() as c:
                    return (
                        c.execute(
                            # stored, and released: the victim's leases too, once taken over
                            sa.text(
                                "SELECT count(*) FROM sources WHERE last_poll_at >= :t "
                                "AND lease_owner IS NULL"
                            ),
                            {"t": naive},
                        ).scalar_one()
                        == FARM_FEEDS
                    )

            assert wait(all_stored, timeout=90, every=0.3), "not every feed's poll was stored"
            counts = farm.counts()
            with engine.connect() as c:
                rows = c.execute(
                    sa.text(
                        "SELECT name, etag, last_modified, last_poll_at, next_due_at, polls, "
                        "consecutive_errors, lease_owner FROM sources ORDER BY name"
                    )
                ).all()
    assert all(n >= 1 for n in counts)
    twice = {f"farm-{i:03d}" for i, n in enumerate(counts) if n > 1}
    assert twice <= held, twice - held  # only what the victim held is read again
    assert len(rows) == FARM_FEEDS
    for i, (name, etag, lm, polled, due, polls, errors, owner) in enumerate(rows):
        assert name == f"farm-{i:03d}"
        assert polled >= naive and due - polled == timedelta(hours=1), (name, polled, due)
        assert polls == 2 and errors == 0 and owner is None, (name, polls, errors, owner)
        if farm.changed(i):
            assert etag.startswith(f'"c{i}-'), (name, etag)  # the new body's validator
        else:
            assert (etag, lm) == (farm_etag(i), FARM_LAST_MODIFIED), (name, etag, lm)
    engine.dispose()
