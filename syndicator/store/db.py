"""Engine and sessions. SQLite runs in WAL mode with a busy timeout so the daemon,
a cron pass and the web page can share one file; PostgreSQL uses the same code."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

import syndicator
from syndicator.store.faults import StoreUnavailable

T = TypeVar("T")
IN_LIST_MAX = 500  # values per IN (...) list: well under every engine's bound-parameter limit


def in_lists(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """`values` in slices of at most IN_LIST_MAX, one per `IN (...)` query."""
    for i in range(0, len(values), IN_LIST_MAX):
        yield values[i : i + IN_LIST_MAX]


if TYPE_CHECKING:
    from syndicator.config import Settings

_ENGINES: dict[str, Engine] = {}
_UPGRADED: set[str] = set()  # URLs whose schema this process brought to head


def normalize_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the plain postgresql:// spelling.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, busy_timeout_ms: int = 10_000) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(
                    f"cannot create the folder of the database {path}: "
                    f"{exc.strerror or exc} — check the path, or make the folder "
                    "and let this user write to it (set [database] url)"
                ) from exc
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_pre_ping=False,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy own transactions; pysqlite's implicit BEGIN is deferred,
            # so start write transactions with BEGIN IMMEDIATE (see `begin` below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str, busy_timeout_ms: int = 10_000) -> Engine:
    """One engine per URL per process."""
    key = normalize_url(url)
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(url, busy_timeout_ms)
    return _ENGINES[key]


def dispose_all() -> None:
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    _UPGRADED.clear()  # a test may drop and recreate a database under the same URL


@contextmanager
def session(engine: Engine, write: bool = False) -> Iterator[Session]:
    """A session in one transaction; commits on success.

    `write=True` takes SQLite's write lock up front (BEGIN IMMEDIATE), so a
    read-then-write transaction never dies of a lock upgrade deadlock.
    """
    with engine.connect() as conn:
        if write:
            conn.info["write"] = True
        try:
            with Session(bind=conn, expire_on_commit=False) as s:
                yield s
                s.commit()
        finally:
            conn.info.pop("write", None)


def discard(s: Session) -> None:
    """Drop the session's changes (a dry run) while the rows it loaded stay readable."""
    s.expunge_all()
    s.rollback()


def migrations_dir() -> Path:
    pkg = Path(syndicator.__file__).parent
    for candidate in (pkg / "_migrations", pkg.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("the Alembic migrations folder is missing from this install")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def open_current(url: str) -> Engine | None:
    """The store as it is, for a read that must change nothing (`check`): None when the
    database does not exist yet or is not at the current schema (then nothing stored by
    this version can be in it). Raises StoreUnavailable / SQLAlchemy errors as `upgrade`."""
    key = normalize_url(url)
    if key.startswith("sqlite"):
        path = key.split(":///", 1)[1] if ":///" in key else ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    engine = get_engine(url)
    if current_revision(engine) != head_revision(url):
        return None
    return engine


def upgrade(url: str, busy_timeout_ms: int = 10_000) -> Engine:
    """Apply pending migrations and return the engine.

    Checked once per URL per process: every pass, heartbeat and web request opens
    the store this way, and reading the migration scripts each time is wasted work.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = get_engine(url, busy_timeout_ms)
    key = normalize_url(url)
    if key in _UPGRADED:
        return engine
    head = head_revision(url)
    if current_revision(engine) != head:
        cfg = alembic_config(url)
        with engine.connect() as conn, _migration_lock(conn):
            conn.info["write"] = True
            # another process may have migrated while this one waited for the lock
            if MigrationContext.configure(conn).get_current_revision() != head:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            conn.commit()
    _UPGRADED.add(key)
    return engine


# pg_advisory_lock key for schema migrations ("synd" in ASCII); any bigint would do
MIGRATION_LOCK_KEY = 0x73796E64


@contextmanager
def _migration_lock(conn: sa.Connection) -> Iterator[None]:
    """On PostgreSQL, one process migrates at a time; the others wait here.

    Without it, processes starting together on an empty database all create
    alembic_version and all but one die of a UniqueViolation. The lock is per session
    (it outlives the migration's transactions) and is released when done. SQLite needs
    none: BEGIN IMMEDIATE already makes writers take turns.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    conn.commit()
    try:
        yield
    finally:
        try:
            conn.rollback()  # a failed migration leaves its transaction open
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
        except sa.exc.SQLAlchemyError:
            conn.invalidate()  # closing the session releases its lock too


def shared(engine: Engine) -> bool:
    """Whether many workers share this store: PostgreSQL, where every `syndicator run`
    claims its own share of the work. SQLite keeps one writer (the leader)."""
    return engine.dialect.name == "postgresql"


def now_sql() -> Any:
    """The database's clock as naive UTC (how times are stored), for lease and due
    comparisons on PostgreSQL: one clock for every machine, so skew can't expire a
    live lease."""
    return sa.func.timezone("UTC", sa.func.now())


def db_now(engine: Engine) -> datetime:
    """The database's time (aware UTC) on PostgreSQL; this process's clock on SQLite."""
    if not shared(engine):
        return datetime.now(UTC)
    with engine.connect() as conn:
        value = conn.execute(sa.select(now_sql())).scalar_one()
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def open_store(settings: Settings) -> Engine:
    """The configured store, migrated to the newest schema."""
    return upgrade(settings.database.url, settings.database.busy_timeout_ms)
