"""Shared fixtures: stores on SQLite and PostgreSQL, settings, a copy of the example site."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syndicator import config
from syndicator.store.db import dispose_all

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SITE = ROOT / "examples" / "site"
PG_ADMIN_URL = os.environ.get(
    "SYNDICATOR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_admin() -> sa.Engine | None:
    url = "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1]
    engine = sa.create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception:
        engine.dispose()
        return None
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards.

    Skipped when no server answers, unless SYNDICATOR_REQUIRE_POSTGRES=1 (CI), where
    that is a failure.
    """
    admin = _pg_admin()
    if admin is None:
        if os.environ.get("SYNDICATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (SYNDICATOR_REQUIRE_POSTGRES=1) but {PG_ADMIN_URL} "
                "does not answer"
            )
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}")
    name = f"synd_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    try:
        yield url
    finally:
        dispose_all()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield "sqlite:///" + str(tmp_path / "store.db")
    dispose_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on both stores."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A private copy of the shipped example site."""
    dest = tmp_path / "site"
    shutil.copytree(EXAMPLE_SITE, dest)
    return dest


def make_settings(tmp_path: Path, db_url: str, **sections: Any) -> config.Settings:
    data: dict[str, Any] = {
        "podcast": {
            "title": "Test Show",
            "link": "https://show.example",
            "feed_url": "https://show.example/feed.xml",
            "timezone": "UTC",
        },
        "database": {"url": db_url},
    }
    data.update(sections)
    return config.from_dict(data, tmp_path)


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    """Every test gets fresh engines: a store a test dropped is never reused."""
    yield
    dispose_all()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Any]:
    """A seeded store and the admin page serving it, without a password."""
    from test_web_support import Site, engine_for, running, seed, web_settings

    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    ids = seed(engine)
    with running(settings) as server:
        yield Site(settings, engine, ids, server)


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A seeded store and the admin page serving it with a password (from the environment)."""
    from test_web_support import PASSWORD, Site, engine_for, running, seed, web_settings

    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    ids = seed(engine)
    with running(settings) as server:
        yield Site(settings, engine, ids, server)
