"""The store on SQLite and PostgreSQL: migrations, time, claims, leases, backup."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from syndicator.announce import outbox, sender
from syndicator.store import leases
from syndicator.store.backup import BackupError, backup_sqlite
from syndicator.store.db import current_revision, head_revision, session, upgrade
from syndicator.store.models import Delivery, Episode

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _episode(s, guid: str = "g1", **kw) -> Episode:  # type: ignore[no-untyped-def]
    ep = Episode(
        guid=guid, source="episodes", title=kw.pop("title", "An episode"), date=kw.pop("date", NOW),
        first_seen_at=NOW, last_changed_at=NOW, **kw,
    )  # fmt: skip
    s.add(ep)
    s.flush()
    return ep


def _delivery(s, ep: Episode, channel: str = "x", **kw) -> Delivery:  # type: ignore[no-untyped-def]
    d = Delivery(
        key=outbox.delivery_key("announce", ep.id, channel), episode_id=ep.id, channel=channel,
        text="hello", planned_at=NOW, updated_at=NOW, **kw,
    )  # fmt: skip
    s.add(d)
    s.flush()
    return d


def test_migrations_reach_head_and_are_idempotent(db_url: str) -> None:
    engine = upgrade(db_url)
    assert current_revision(engine) == head_revision(db_url)
    upgrade(db_url)  # a second run is a no-op
    insp = sa.inspect(engine)
    tables = set(insp.get_table_names())
    assert {"sources", "episodes", "deliveries", "problems", "feeds", "leases"} <= tables
    cols = {c["name"] for c in insp.get_columns("sources")}
    assert {"etag", "last_modified", "last_poll_at", "next_due_at", "consecutive_errors",
            "last_error"} <= cols  # fmt: skip


def test_models_match_migrations(db_url: str) -> None:
    """Nothing in the tables is missing from the migrations (alembic's own compare)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = upgrade(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_sqlite_uses_wal_and_busy_timeout(sqlite_url: str) -> None:
    engine = upgrade(sqlite_url)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_times_come_back_aware_utc(db_url: str) -> None:
    engine = upgrade(db_url)
    berlin = datetime(2026, 6, 1, 9, 30, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    with session(engine, write=True) as s:
        ep = _episode(s, date=None)
        ep.date = berlin
        s.add(ep)
    with session(engine) as s:
        got = s.exec(select(Episode)).one()
    assert got.date == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    assert got.date.tzinfo is not None


def test_json_columns_round_trip(db_url: str) -> None:
    engine = upgrade(db_url)
    with session(engine, write=True) as s:
        _episode(s, guests=[{"name": "Filipe Névola", "twitter": "filipenevola"}],
                 chapters=[{"start": 105, "title": "Overview 📄"}], tags=["meteor"])  # fmt: skip
    with session(engine) as s:
        ep = s.exec(select(Episode)).one()
    assert ep.guests[0]["name"] == "Filipe Névola"
    assert ep.chapters == [{"start": 105, "title": "Overview 📄"}]


def test_only_one_claimant_wins(db_url: str) -> None:
    """Eight threads race for one row: exactly one claims it."""
    engine = upgrade(db_url)
    with session(engine, write=True) as s:
        d = _delivery(s, _episode(s))
        did = d.id
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        if sender.claim(engine, did, f"owner-{i}", NOW, timedelta(minutes=1)):  # type: ignore[arg-type]
            wins.append(f"owner-{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    with session(engine) as s:
        row = s.get(Delivery, did)
        assert row is not None
        assert row.state == "sending" and row.lease_owner == wins[0] and row.attempts == 1


def test_unique_delivery_per_episode_and_channel(db_url: str) -> None:
    engine = upgrade(db_url)
    with session(engine, write=True) as s:
        ep = _episode(s)
        _delivery(s, ep)
    with pytest.raises(sa.exc.IntegrityError), session(engine, write=True) as s:
        _delivery(s, s.get(Episode, ep.id))


def test_expired_sending_lease_becomes_unknown(db_url: str) -> None:
    engine = upgrade(db_url)
    with session(engine, write=True) as s:
        d = _delivery(s, _episode(s))
        did = d.id
    assert sender.claim(engine, did, "dead", NOW, timedelta(seconds=30)) == "planned"  # type: ignore[arg-type]
    assert sender.expire_leases(engine, NOW + timedelta(seconds=10)) == 0
    assert sender.expire_leases(engine, NOW + timedelta(seconds=31)) == 1
    with session(engine) as s:
        row = s.get(Delivery, did)
        assert row is not None and row.state == "unknown" and row.lease_owner is None


def test_leader_lease_one_holder_then_takeover(db_url: str) -> None:
    engine = upgrade(db_url)
    ttl = timedelta(seconds=30)
    assert leases.acquire(engine, "leader", "a", ttl, NOW)
    assert not leases.acquire(engine, "leader", "b", ttl, NOW + timedelta(seconds=5))
    assert leases.acquire(engine, "leader", "a", ttl, NOW + timedelta(seconds=10))  # renew
    assert not leases.acquire(engine, "leader", "b", ttl, NOW + timedelta(seconds=39))
    assert leases.acquire(engine, "leader", "b", ttl, NOW + timedelta(seconds=41))
    assert not leases.acquire(engine, "leader", "a", ttl, NOW + timedelta(seconds=42))


def test_backup_is_a_consistent_copy_while_writing(sqlite_url: str, tmp_path: Path) -> None:
    engine = upgrade(sqlite_url)
    with session(engine, write=True) as s:
        for i in range(200):
            _episode(s, guid=f"g{i}")
    stop = threading.Event()

    def writer() -> None:
        i = 1000
        while not stop.is_set():
            with session(engine, write=True) as s:
                _episode(s, guid=f"g{i}")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        size = backup_sqlite(sqlite_url, tmp_path / "copy.db")
    finally:
        stop.set()
        t.join()
    assert size > 0
    con = sqlite3.connect(tmp_path / "copy.db")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("select count(*) from episodes").fetchone()[0] >= 200
    con.close()


def test_backup_refuses_postgres_with_a_pointer_to_pg_dump(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite("postgresql://x@127.0.0.1/db", tmp_path / "b.db")


def test_admin_sessions_start_end_and_expire(db_url: str) -> None:
    from syndicator.store import admin_sessions
    from syndicator.web.auth import ServerSessions

    engine = upgrade(db_url)
    sessions = ServerSessions(engine, max_age=3600)
    a = sessions.start()
    b = sessions.start()
    assert a != b and sessions.alive(a) and sessions.alive(b)
    assert a not in admin_sessions.keys(engine)  # only hashes are stored
    c = sessions.start(replaces=a)  # a new login on the same browser
    assert not sessions.alive(a) and sessions.alive(c)
    sessions.end(b)
    assert not sessions.alive(b) and not sessions.alive("") and not sessions.alive("forged")
    # idle longer than max_age: over, and cleared away at the next login
    old = datetime.now(UTC) - timedelta(hours=2)
    admin_sessions.touch(engine, ServerSessions._key(c), old)
    assert not sessions.alive(c)
    sessions.seen(c)
    assert sessions.alive(c)
    admin_sessions.touch(engine, ServerSessions._key(c), old)
    d = sessions.start()
    assert admin_sessions.keys(engine) == {ServerSessions._key(d)}


def test_problems_group_by_kind_and_message_pattern() -> None:
    from syndicator.store.problems import group, group_line

    def row(loc: str, kind: str, msg: str, sev: str = "warning", line: int | None = 2) -> dict:  # type: ignore[type-arg]
        since = f"2026-01-0{line or 1}T00:00:00Z"
        return {"source": "site", "location": loc, "line": line, "kind": kind,
                "severity": sev, "message": msg, "since": since}  # fmt: skip

    rows = [
        *[
            row(f"_posts/p{n}.md", "include", f"include 'x.html' dropped at line {n}", "notice", n)
            for n in range(1, 8)
        ],
        row("_posts/a.md", "include", "include 'y.html' dropped at line 3", "notice"),
        row("_posts/b.md", "yaml", "invalid YAML in _posts/b.md at line 4", "error", None),
        row("_posts/c.md", "yaml", "invalid YAML in _posts/c.md at line 9", "error", None),
        row("_posts/d.md", "url", "no episode URL"),
    ]
    groups = group(rows)
    # errors first, then warnings, then notices; the file's own name and numbers ignored
    assert [(g.severity, g.kind, g.count) for g in groups] == [
        ("error", "yaml", 2), ("warning", "url", 1), ("notice", "include", 7),
        ("notice", "include", 1),
    ]  # fmt: skip
    included = groups[2]
    assert included.examples == [
        {"location": "_posts/p1.md", "line": 1}, {"location": "_posts/p2.md", "line": 2},
    ]  # fmt: skip
    assert included.since == "2026-01-01T00:00:00Z"
    assert group_line(included) == (
        "include: include 'x.html' dropped at line 1 — in 7 places "
        "(e.g. _posts/p1.md:1, _posts/p2.md:2, …)"
    )
    assert group_line(groups[1]) == "_posts/d.md:2: url: no episode URL"
    assert group_line(groups[0]).endswith("(e.g. _posts/b.md, _posts/c.md)")


def test_a_stopped_heartbeat_is_kept_and_replaces_older_stopped_ones(db_url: str) -> None:
    from syndicator.store.models import Heartbeat
    from syndicator.store.views import daemon_dict

    engine = upgrade(db_url)
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    for n, owner in enumerate(("host:1:a", "host:2:b")):
        at = t0 + timedelta(minutes=n)
        leases.beat(engine, owner, at, role="leader", state="idle", started_at=at)
        leases.stopped(engine, owner, at + timedelta(seconds=30), "stopped cleanly")
    with session(engine) as s:
        assert [h.owner for h in s.exec(select(Heartbeat)).all()] == ["host:2:b"]
        d = daemon_dict(s, t0 + timedelta(minutes=1, seconds=31), timedelta(seconds=90))
    assert d["alive"] is False and d["stopped"] is True
    assert d["last_seen"] and d["last_seen"].startswith("2026-12-01T09:01:30")


def test_deliveries_save_writes_named_columns_and_refuses_others(db_url: str) -> None:
    from syndicator.store import deliveries

    engine = upgrade(db_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with session(engine, write=True) as s:
        row = deliveries.save(
            s, Delivery(key="k", channel="c", planned_at=now, updated_at=now), state="skipped"
        )
        with pytest.raises(AttributeError, match="no column 'stat'"):
            deliveries.save(s, row, stat="sent")  # a typo is an error, not a lost write
    with session(engine) as s:
        got = deliveries.by_key(s, "k")
        assert got is not None and got.state == "skipped"
