"""Races on PostgreSQL: many processes and passes hitting one store at the same moment.

Real processes (under the corpus's memory ceiling) and real threads against a throwaway
PostgreSQL database from the `pg_url` fixture.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from syndicator.pipeline import poll_sources
from syndicator.store.db import current_revision, head_revision, session, upgrade
from syndicator.store.models import Episode, Problem
from tests.conftest import make_settings
from tests.hostile.conftest import popen_cli

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_processes_starting_at_once_on_an_empty_postgres_all_succeed(
    tmp_path: Path, pg_url: str
) -> None:
    """Migrations run under an advisory lock: the others wait, then find the schema done."""
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[database]\nurl = "{pg_url}"\n')
    commands = [["db", "upgrade"], ["db", "upgrade"], ["status"], ["db", "upgrade"], ["status"]]
    procs = [popen_cli(cfg, *args) for args in commands]
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    for args, (code, out, err) in zip(commands, outcomes, strict=True):
        assert code == 0, (args, out, err)
    assert current_revision(upgrade(pg_url)) == head_revision(pg_url)


def _posts(folder: Path, n: int, tag: str) -> None:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        (folder / f"2026-11-{i % 27 + 1:02d}-{i}-{tag}-episode-{i}.md").write_text(
            f'---\ntitle: "{tag} episode {i}"\ncategory: podcast\n---\nNotes of {i}.\n'
        )


def test_two_passes_storing_the_same_new_posts_at_once_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """One wins, the other reads what it stored: no "storing failed" problem for a race."""
    engine = upgrade(pg_url)

    def one_pass(gate: threading.Barrier, settings: object, name: str, out: list[object]) -> None:
        gate.wait()
        out.extend(poll_sources(engine, settings, NOW, names=[name]))  # type: ignore[arg-type]

    sources = []
    for n in range(4):
        site = tmp_path / f"site{n}"
        _posts(site / "_posts", 40, f"r{n}")
        (site / "_config.yml").write_text("url: https://show.example\n")
        tpl = "{site.url}/{slug}"
        sources.append(
            {
                "name": f"site{n}",
                "type": "jekyll",
                "path": str(site),
                "guid": tpl,
                "episode_url": tpl,
            }
        )
    settings = make_settings(tmp_path, pg_url, sources=sources)
    # Round 0 also races on creating the source rows; later rounds only on the episodes.
    for name in (s["name"] for s in sources):
        outcomes: list[object] = []
        args = (threading.Barrier(2), settings, name, outcomes)
        threads = [threading.Thread(target=one_pass, args=args) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # On PostgreSQL a pass claims its sources (FOR UPDATE SKIP LOCKED): the other pass
        # either skips the claimed source or reads what the first one stored.
        statuses = sorted(o.status for o in outcomes)  # type: ignore[attr-defined]
        assert statuses in (["ok", "ok"], ["ok", "skipped"]), outcomes
        with session(engine) as s:
            eps = s.exec(select(Episode).where(Episode.source == name)).all()
            probs = s.exec(select(Problem).where(Problem.source == name)).all()
        assert len(eps) == 40 and len({e.guid for e in eps}) == 40
        assert probs == [], [p.message for p in probs]
