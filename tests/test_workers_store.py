"""Workers on one PostgreSQL, at the store: claims, leases by the database's clock,
duties under advisory locks, and the workers table. (tests/test_workers.py runs three
real worker processes against a feed farm.)"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syndicator.announce.outbox import PLANNED, SENDING, UNKNOWN
from syndicator.store import deliveries, workers
from syndicator.store import sources as store_sources
from syndicator.store.db import db_now, session, upgrade
from syndicator.store.ingest import ensure_source
from syndicator.store.models import Delivery, Source
from tests.conftest import make_settings


def _sources(engine: sa.Engine, n: int, *, due: datetime | None = None) -> list[str]:
    names = [f"feed-{i:03d}" for i in range(n)]
    with session(engine, write=True) as s:
        for name in names:
            ensure_source(s, name, "feed", f"http://127.0.0.1:9/{name}.xml")
        if due is not None:
            s.execute(sa.update(Source).values(next_due_at=due))
    return names


def test_claims_are_disjoint_and_leased_by_the_database_clock(pg_url: str) -> None:
    engine = upgrade(pg_url)
    names = _sources(engine, 30)
    with session(engine, write=True) as s:
        a = store_sources.claim_due(s, "a", names, timedelta(seconds=30), 10)
    with session(engine, write=True) as s:
        b = store_sources.claim_due(s, "b", names, timedelta(seconds=30), 25)
    assert len(a) == 10 and len(b) == 20
    assert not set(a) & set(b)
    with session(engine, write=True) as s:  # everything is held: nothing left to claim
        assert store_sources.claim_due(s, "c", names, timedelta(seconds=30), 10) == []
        held = store_sources.leased(s)
    assert {n for n, o in held.items() if o == "a"} == set(a)
    # the lease ends at the database's now() + 30 s, whatever this process's clock says
    with session(engine) as s:
        until = s.execute(sa.select(sa.func.max(Source.lease_until))).scalar_one()
    assert abs((until.replace(tzinfo=UTC) - db_now(engine)) - timedelta(seconds=30)) < timedelta(
        seconds=5
    )
    # released sources are claimable again; the other worker's are not touched
    with session(engine, write=True) as s:
        store_sources.release(s, "a", a)
        store_sources.release(s, "a", b)  # not a's: ignored
    with session(engine, write=True) as s:
        c = store_sources.claim_due(s, "c", names, timedelta(seconds=30), 50)
    assert sorted(c) == sorted(a)


def test_a_claim_by_kind_names_no_source_but_skips_the_excluded(pg_url: str) -> None:
    """What a worker with 100,000 sources claims (no list of names in the statement):
    the kind's due sources, but none it handed back already."""
    engine = upgrade(pg_url)
    names = _sources(engine, 6)
    with session(engine, write=True) as s:
        ensure_source(s, "posts", "jekyll")
    with session(engine, write=True) as s:
        got = store_sources.claim_due(
            s, "a", None, timedelta(seconds=30), 10, type_="feed", exclude=names[:2]
        )
    assert sorted(got) == names[2:]  # no jekyll source, none of the excluded
    with session(engine, write=True) as s:
        rest = store_sources.claim_due(s, "b", None, timedelta(seconds=30), 10, type_="feed")
    assert sorted(rest) == names[:2]


def test_a_dead_workers_claims_expire_and_due_comes_from_the_database(pg_url: str) -> None:
    engine = upgrade(pg_url)
    future = db_now(engine) + timedelta(hours=1)
    names = _sources(engine, 5)
    with session(engine, write=True) as s:
        s.execute(sa.update(Source).where(Source.name == names[0]).values(next_due_at=future))
        dead = store_sources.claim_due(s, "dead", names, timedelta(seconds=1), 2)
    assert names[0] not in dead  # not due yet
    with session(engine, write=True) as s:
        live = store_sources.claim_due(s, "live", names, timedelta(seconds=30), 10)
    assert set(live) == set(names[1:]) - set(dead)
    with session(engine) as s:
        wait = store_sources.next_due_in(s, names)
    assert wait is not None and wait <= timedelta(seconds=1)  # the dead lease ends soonest
    time.sleep(1.2)
    with session(engine, write=True) as s:
        taken = store_sources.claim_due(s, "live", names, timedelta(seconds=30), 10)
    assert sorted(taken) == sorted(dead)  # taken over once the lease ran out
    with session(engine, write=True) as s:  # a pass run at a chosen time (--now) uses it
        later = store_sources.claim_due(
            s, "live", names, timedelta(seconds=30), 10, at=future + timedelta(minutes=1)
        )
        s.rollback()
    assert sorted(later) == sorted(names)  # by then every lease ran out and all are due
    with session(engine, write=True) as s:  # not due ones are claimable with due_only=False
        assert store_sources.claim_due(
            s, "live", names, timedelta(seconds=30), 10, due_only=False
        ) == [names[0]]


def test_concurrent_claimers_never_share_a_source(pg_url: str) -> None:
    engine = upgrade(pg_url)
    names = _sources(engine, 400)
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        mine: list[str] = []
        try:
            while True:
                with session(engine, write=True) as s:
                    batch = store_sources.claim_due(s, owner, None, timedelta(minutes=1), 7)
                if not batch:
                    break
                mine.extend(batch)
        except BaseException as exc:  # reported below
            errors.append(exc)
        got[owner] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    claimed = [n for batch in got.values() for n in batch]
    assert sorted(claimed) == sorted(names)  # every source once, none twice
    assert sum(1 for batch in got.values() if batch) >= 2


def _delivery(s: sa.orm.Session, i: int, state: str = PLANNED) -> None:
    now = datetime.now(UTC)
    s.add(
        Delivery(
            key=f"announce:{i}:chan", channel="chan", state=state, text=f"post {i}",
            planned_at=now, updated_at=now,
        )
    )  # fmt: skip


def test_deliveries_are_claimed_in_disjoint_batches_and_given_back(pg_url: str) -> None:
    engine = upgrade(pg_url)
    with session(engine, write=True) as s:
        for i in range(6):
            _delivery(s, i, UNKNOWN if i == 5 else PLANNED)
    lease = timedelta(seconds=30)
    with session(engine, write=True) as s:
        a = deliveries.claim_batch(s, "chan", [PLANNED], "a", lease, 3, sending=SENDING)
    with session(engine, write=True) as s:
        b = deliveries.claim_batch(s, "chan", [PLANNED, UNKNOWN], "b", lease, 10, sending=SENDING)
    assert len(a) == 3 and len(b) == 3
    assert not {i for i, _ in a} & {i for i, _ in b}
    assert sorted(prev for _, prev in b) == [PLANNED, PLANNED, UNKNOWN]  # the state it had
    with session(engine, write=True) as s:
        assert deliveries.unclaim(s, a[0][0], "a", PLANNED, sending=SENDING)
        assert not deliveries.unclaim(s, b[0][0], "a", PLANNED, sending=SENDING)  # not a's
    with session(engine) as s:
        row = deliveries.by_id(s, a[0][0])
        assert row is not None
        assert (row.state, row.attempts, row.lease_owner) == (PLANNED, 0, None)
        taken = deliveries.by_id(s, a[1][0])
        assert taken is not None and (taken.state, taken.attempts) == (SENDING, 1)


def test_a_duty_has_one_holder_and_never_waits(pg_url: str) -> None:
    engine = upgrade(pg_url)
    with workers.duty(engine, "feeds") as first:
        t0 = time.monotonic()
        with workers.duty(engine, "feeds") as second, workers.duty(engine, "alerts") as other:
            assert (first, second, other) == (True, False, True)
        assert time.monotonic() - t0 < 1.0
        with session(engine, write=True) as s1, session(engine, write=True) as s2:
            assert workers.take_duty(s1, "evergreen")
            assert not workers.take_duty(s2, "evergreen")  # held until s1 commits
        with session(engine, write=True) as s3:  # committed: free again
            assert workers.take_duty(s3, "evergreen", wait=True)
    with workers.duty(engine, "feeds") as again:
        assert again


def test_the_workers_table_by_the_database_clock(pg_url: str, tmp_path: Path) -> None:
    from syndicator.store.views import status_dict

    engine = upgrade(pg_url)
    workers.beat(engine, "h1:1:a", "h1", 1)
    workers.beat(engine, "h2:2:b", "h2", 2)
    workers.count(engine, "h1:1:a", polls=5, sends=2)
    workers.count(engine, "h1:1:a", polls=1)
    workers.count(engine, "nobody", polls=3)  # a run-once has no row: nothing happens
    workers.stopped(engine, "h2:2:b")
    data = status_dict(engine, datetime.now(UTC), timedelta(seconds=30))
    rows = {w["id"]: w for w in data["workers"]}
    assert set(rows) == {"h1:1:a", "h2:2:b"}
    assert rows["h1:1:a"] | {"last_seen": None, "started": None} == {
        "id": "h1:1:a", "host": "h1", "pid": 1, "alive": True, "polls": 6, "sends": 2,
        "last_seen": None, "started": None,
    }  # fmt: skip
    assert rows["h2:2:b"]["alive"] is False  # stopped cleanly
    # a heartbeat older than stale_after (by the database's clock) is not alive
    with session(engine, write=True) as s:
        s.execute(sa.text("UPDATE workers SET last_seen = last_seen - interval '1 minute'"))
    data = status_dict(engine, datetime.now(UTC), timedelta(seconds=30))
    assert [w["alive"] for w in data["workers"]] == [False, False]
    assert workers.forget_gone(engine, timedelta(seconds=30)) == 2


def test_workers_settings_are_validated(tmp_path: Path) -> None:
    from syndicator import config

    s = make_settings(tmp_path, "sqlite:///x.db", workers={"source_lease": "2s", "claim_batch": 5})
    assert (s.workers.source_lease, s.workers.claim_batch) == (timedelta(seconds=2), 5)
    path = tmp_path / "syndicator.toml"
    for bad, says in (
        ('source_lease = "0s"', "0s is too short: give at least 1s"),
        ("claim_batch = 0", "claim_batch"),
        ("claim_btach = 5", "claim_btach"),
    ):
        path.write_text(f'[database]\nurl = "sqlite:///x.db"\n\n[workers]\n{bad}\n')
        with pytest.raises(config.ConfigError) as err:
            config.load(path)
        assert says in str(err.value)
        assert "syndicator.toml:5" in str(err.value)  # the file and line to fix


def test_the_dashboard_shows_the_workers(web: Any) -> None:
    from test_web_support import client, wait_for

    with client(web.server) as c:
        assert 'id="workers"' not in c.get("/").text  # no worker has run yet
    workers.beat(web.engine, "farm-a:101:x", "farm-a", 101)
    workers.beat(web.engine, "farm-b:202:y", "farm-b", 202)
    workers.count(web.engine, "farm-a:101:x", polls=1234, sends=56)
    workers.stopped(web.engine, "farm-b:202:y")
    with client(web.server) as c:  # the page cache may answer a second-old copy first

        def with_workers() -> str | None:
            text = c.get("/").text
            return text if 'id="workers"' in text else None

        page = wait_for(with_workers)
    table = page[page.index('id="workers"') : page.index('id="sources"')]
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r"<tr>\s*<td[^>]*>([^<]+)</td>.*?</tr>", table, re.S)
    }
    assert set(rows) == {"farm-a:101:x", "farm-b:202:y"}
    assert "alive" in rows["farm-a:101:x"] and "1234" in rows["farm-a:101:x"]
    assert ">56<" in rows["farm-a:101:x"]
    assert "gone" in rows["farm-b:202:y"]  # stopped: not alive
