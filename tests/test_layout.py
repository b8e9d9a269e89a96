"""Layout rules read from the source: the store owns its SQL, and its writes.

No module outside `syndicator/store/` builds a query (select/update/insert/delete/
text/func… from SQLAlchemy or SQLModel) or runs one on a session (`.exec()`,
`.execute()`, `.query()`, `.scalar()`, `.scalars()`, `session.get(Model, …)`), nor
writes through one (`.add()`, `.delete()`, `.merge()`, `.flush()`, `.commit()`, …).
Callers may open a session (store.db.session) and hand it to a named store function.
"""

from __future__ import annotations

import ast
import dataclasses
import pickle
import typing
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "syndicator"
STORE = PACKAGE / "store"
ORM_MODULES = ("sqlalchemy", "sqlmodel")
# Query constructs: building any of these is writing SQL.
QUERY_NAMES = frozenset(
    {
        "select", "update", "insert", "delete", "text", "func", "and_", "or_", "not_",
        "col", "case", "literal", "literal_column", "exists", "union", "union_all",
        "tuple_", "bindparam", "cast", "distinct", "true", "false", "null", "column",
        "table", "join", "outerjoin", "desc", "asc",
    }
)  # fmt: skip
# Methods that run SQL on a session or connection.
RUN_METHODS = frozenset({"exec", "execute", "query", "scalar", "scalars"})


def _is_orm(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in ORM_MODULES  # type: ignore[union-attr]


def _model_names(tree: ast.Module) -> set[str]:
    """Names this module imported from syndicator.store.models (the table classes)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "syndicator.store.models":
            out |= {a.asname or a.name for a in node.names}
    return out


def query_sites(source: str, filename: str = "<src>") -> list[str]:
    """Every place in `source` that builds or runs a query, as 'line: what'."""
    tree = ast.parse(source, filename)
    models = _model_names(tree)
    orm_aliases: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_orm(a.name):
                    orm_aliases.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _is_orm(node.module):
            for a in node.names:
                if a.name in QUERY_NAMES:
                    found.append(f"{node.lineno}: imports {a.name} from {node.module}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in QUERY_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id in orm_aliases
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in RUN_METHODS:
                found.append(f"{node.lineno}: .{name}() runs a query")
            elif (
                name == "get"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in models
            ):
                found.append(f"{node.lineno}: .get({node.args[0].id}, …) loads a row")
    return sorted(set(found), key=lambda x: int(x.split(":")[0]))


# Session methods that write (or end the transaction): only the store calls them.
WRITE_METHODS = frozenset(
    {"add", "add_all", "delete", "merge", "flush", "commit", "rollback", "expunge_all"}
)


def _session_names(tree: ast.Module) -> set[str]:
    """Names that hold a session here: `with session(...) as s`, `s = Session(...)`, and
    parameters annotated `Session`."""
    out: set[str] = set()

    def opens_session(node: ast.AST) -> bool:
        return isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in (
            "session", "Session", "sessionmaker",
        )  # fmt: skip

    for node in ast.walk(tree):
        if isinstance(node, ast.withitem) and opens_session(node.context_expr):
            if isinstance(node.optional_vars, ast.Name):
                out.add(node.optional_vars.id)
        elif isinstance(node, ast.Assign) and opens_session(node.value):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.arg) and node.annotation is not None:
            annotation = ast.unparse(node.annotation).strip("'\"")
            out |= {node.arg} if annotation.split(".")[-1] == "Session" else set()
    return out


def write_sites(source: str, filename: str = "<src>") -> list[str]:
    """Every place in `source` that writes through a session, as 'line: what'."""
    tree = ast.parse(source, filename)
    sessions = _session_names(tree)
    found = [
        f"{node.lineno}: {node.func.value.id}.{node.func.attr}() writes"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WRITE_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in sessions
    ]
    return sorted(set(found), key=lambda x: int(x.split(":")[0]))


RULES = {"query": query_sites, "write": write_sites}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_nothing_outside_the_store(rule: str) -> None:
    # no exceptions: even a dry run's rollback is store.db.discard
    offenders: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if STORE in path.parents:
            continue
        rel = path.relative_to(PACKAGE.parent)
        offenders += [f"{rel}:{site}" for site in RULES[rule](path.read_text(), str(path))]
    assert not offenders, (
        f"{rule} sites outside syndicator/store/ — move each behind a named function in "
        "the entity's store module:\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    ("rule", "source"),
    [
        ("query", "from sqlmodel import select\n"),
        ("query", "from sqlalchemy import func as f\n"),
        ("query", "import sqlalchemy as sa\nq = sa.text('x')\n"),
        ("query", "import sqlalchemy\nq = sqlalchemy.update(T)\n"),
        ("query", "def f(s):\n    return s.exec(q).all()\n"),
        ("query", "def f(conn):\n    conn.execute(q)\n"),
        (
            "query",
            "from syndicator.store.models import Episode\ndef f(s):\n    s.get(Episode, 1)\n",
        ),
        (
            "write",
            "def f(engine):\n    with session(engine, write=True) as s:\n        s.add(row)\n",
        ),
        ("write", "def f(s: Session):\n    s.delete(row)\n"),
        ("write", "def f(s: 'Session'):\n    s.merge(row)\n"),
        ("write", "def f(db: sqlmodel.Session):\n    db.flush()\n"),
        ("write", "def f(engine):\n    s = Session(engine)\n    s.commit()\n"),
        (
            "write",
            "def f(e):\n    with Session(bind=e) as db, open(p) as fh:\n        db.add_all(rows)\n",
        ),
    ],
)
def test_the_rule_sees_each_kind(rule: str, source: str) -> None:
    assert RULES[rule](source)


@pytest.mark.parametrize(
    ("rule", "source"),
    [
        ("query", "from sqlmodel import Session\n"),
        ("query", "from sqlalchemy.exc import OperationalError\n"),
        ("query", "from sqlalchemy.engine import Engine\n"),
        ("query", "d = {}\nd.get('k', 1)\nd.update(x=1)\n"),
        ("query", "import re\nre.sub('a', 'b', 'c')\n"),
        (
            "write",
            "def f(s: Session):\n    meta.add(s, 'k', 'v', now)\n    seen.add(1)\n",
        ),
        (
            "write",
            "def f(e):\n    with session(e) as s:\n        deliveries.save(s, row, state='x')\n",
        ),
        ("write", "def f(tmp):\n    tmp.commit()\n    fh.flush()\n"),
    ],
)
def test_the_rule_leaves_store_calls_and_plain_code_alone(rule: str, source: str) -> None:
    assert not RULES[rule](source)


# ---------------------------------------------------------------- the episode's fields


def _annotations(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _written_fields(path: Path, class_name: str) -> set[str]:
    """The fields a class in `path` writes out by hand (annotated names in its body)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                n.target.id
                for n in node.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
    return set()


def test_feed_episode_is_made_from_the_declaration() -> None:
    from syndicator.directory import publish, rss
    from syndicator.sources.episode_fields import FEED_FIELDS

    assert rss.EpisodeLike is rss.FeedEpisode is publish.FeedEpisode
    assert [f.name for f in dataclasses.fields(rss.FeedEpisode)] == [f.name for f in FEED_FIELDS]
    assert {f.name: f.type for f in dataclasses.fields(rss.FeedEpisode)} == {
        f.name: f.type for f in FEED_FIELDS
    }
    assert not _written_fields(PACKAGE / "directory" / "rss.py", "EpisodeLike")


def test_the_episode_table_is_made_from_the_declaration() -> None:
    """Episode's declared columns come from its base, built from STORED; the class body
    adds only what the store alone knows, and never a declared field again."""
    from syndicator.sources.episode_fields import STORED
    from syndicator.store.models import DeclaredEpisode, Episode

    assert issubclass(Episode, DeclaredEpisode)
    assert DeclaredEpisode.__annotations__ == {f.name: f.type for f in STORED}
    assert not _written_fields(STORE / "models.py", "DeclaredEpisode")
    own = _written_fields(STORE / "models.py", "Episode")
    assert own and not own & {f.name for f in STORED}, own
    columns = list(Episode.__table__.columns.keys())  # type: ignore[attr-defined]
    assert columns[: len(STORED)] == [f.name for f in STORED]
    hints = _annotations(Episode)
    assert all(hints[f.name] == f.type for f in STORED)


def test_episode_data_is_made_from_the_declaration() -> None:
    from syndicator.sources import base
    from syndicator.sources.episode_fields import source_fields

    assert "EpisodeData" not in {
        n.name for n in ast.parse((PACKAGE / "sources" / "base.py").read_text()).body
        if isinstance(n, ast.ClassDef)
    }  # fmt: skip
    fields = dataclasses.fields(base.EpisodeData)
    assert [(f.name, f.type) for f in fields] == [(n, t) for n, t, _ in source_fields()]
    assert all(f.kw_only for f in fields)
    required = {f.name for f in fields if f.default is f.default_factory is dataclasses.MISSING}
    assert required == {"title", "date", "guid"}
    # a process pool's parse results travel back pickled, by the class's module and name
    ep = base.EpisodeData(title="T", date=None, guid="g", guests=[base.Guest(name="Ann")])
    assert base.EpisodeData.__module__ == "syndicator.sources.base"
    assert pickle.loads(pickle.dumps(ep)) == ep


def test_every_content_field_comes_from_what_a_source_read() -> None:
    from syndicator.sources.base import EpisodeData
    from syndicator.sources.episode_fields import CONTENT

    hints = _annotations(EpisodeData)
    for f in CONTENT:
        if f.read is None:  # copied as is: the same name and type on EpisodeData
            assert hints.get(f.name) == f.type, f.name
        else:  # read from what the source gave: never a field of the stored type by mistake
            assert hints.get(f.name) != f.type, f.name


def test_ingest_stores_every_content_field(db_url: str) -> None:
    """A source's episode with every field set round-trips through the store."""
    from datetime import UTC, datetime

    from syndicator.sources.base import Chapter, Enclosure, EpisodeData, Guest
    from syndicator.sources.episode_fields import CONTENT, stored_values
    from syndicator.store.db import session, upgrade
    from syndicator.store.ingest import _apply_fields
    from syndicator.store.models import Episode

    data = EpisodeData(
        title="T", date=datetime(2024, 1, 2, tzinfo=UTC), guid="g", number=7, slug="s",
        url="https://example.invalid/7", guests=[Guest(name="Ann")], tags=["a"],
        categories=["c"], enclosure=Enclosure(url="https://example.invalid/7.mp3", length=9,
        type="audio/mpeg"), duration_seconds=60, description="d", show_notes_html="<p>n</p>",
        chapters=[Chapter(start=0, title="start")], image="https://example.invalid/i.png",
        transcript_url="https://example.invalid/t.vtt", transcript_type="text/vtt",
        explicit=True, episode_type="bonus", withdrawn=True, withdrawn_reason="gone",
    )  # fmt: skip
    want = stored_values(data)
    assert set(want) == {f.name for f in CONTENT}
    assert want["enclosure_length"] == 9 and want["guests"][0]["name"] == "Ann"
    engine = upgrade(db_url)
    now = datetime(2024, 1, 3, tzinfo=UTC)
    with session(engine, write=True) as s:
        ep = Episode(guid="g", source="site", first_seen_at=now, last_changed_at=now)
        _apply_fields(ep, data)
        s.add(ep)
    with session(engine) as s:
        got = s.get(Episode, 1)
        assert got is not None
        for name, value in want.items():
            assert getattr(got, name) == value, name
