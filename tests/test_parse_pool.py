"""Parsing in a process pool (sources/pool.py): Jekyll posts and feed bodies give the same
results in a pool as in this process, and a pass whose pool workers are killed still
finishes, in this process, with every good post and feed."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from syndicator.config import FetchConfig, JekyllSourceConfig
from syndicator.pipeline import run_once
from syndicator.sources.base import FileResult, ScanResult
from syndicator.sources.feeds.poll import PollRequest, PollStats, poll_feeds_sync
from syndicator.sources.jekyll import parse_pool, scan
from syndicator.sources.pool import ENV, ParsePool, mode_from_env
from syndicator.store.db import session, upgrade
from syndicator.store.models import Episode, Problem
from tests.conftest import make_settings
from tests.feedserver import FeedServer, make_feed_xml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import gen_posts  # noqa: E402

BAD_YAML = "_posts/podcast/2020-01-01-9001-broken-front-matter.md"
BAD_UTF8 = "_posts/podcast/2020-01-02-9002-not-utf8.md"


def source(path: Path) -> dict[str, Any]:
    return {
        "type": "jekyll",
        "name": "episodes",
        "path": str(path),
        "episode_url": "{site.url}/podcast/{slug}",
        "enclosure_url": "{site.mp3_url_path}{number}.mp3",
        "guid": "{site.url}/podcast/{slug}",
    }


def make_cfg(path: Path) -> JekyllSourceConfig:
    return JekyllSourceConfig.model_validate(source(path))


@pytest.fixture
def big_site(tmp_path: Path) -> Path:
    """120 generated posts (some with mojibake) and two broken ones among them."""
    site = tmp_path / "site"
    gen_posts.generate(site, 120)
    (site / BAD_YAML).write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    (site / BAD_UTF8).write_bytes(b"---\ntitle: caf\xe9\n---\nbody\n")
    return site


def statuses(result: ScanResult) -> dict[str, str]:
    return {f.path: f.status for f in result.files}


def test_auto_parses_in_process_when_little_and_in_a_pool_when_much() -> None:
    pool = ParsePool("auto", auto_after_bytes=1000, workers=2)
    assert pool.choose(600) == "inline"
    assert pool.choose(600) == "process"  # the pass has now seen more than 1000 bytes
    assert pool.modes == "inline+process x2"
    single = ParsePool("auto", auto_after_bytes=1000, workers=1)
    assert single.choose(10_000) == "inline"  # a pool of one is no faster
    with pytest.raises(ValueError, match="use one of"):
        ParsePool("fast", auto_after_bytes=0)  # type: ignore[arg-type]


def test_mode_from_env(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert mode_from_env() == "auto"
    monkeypatch.setenv(ENV, " Process ")
    assert mode_from_env() == "process"
    monkeypatch.setenv(ENV, "fast")
    with caplog.at_level(logging.WARNING):
        assert mode_from_env() == "auto"
    assert "SYNDICATOR_PARSE_IN='fast' is not auto, inline or process" in caplog.text


def test_pool_scan_equals_in_process_scan_and_uses_every_worker(big_site: Path) -> None:
    cfg = make_cfg(big_site)
    with parse_pool("inline") as inline:
        here = scan(cfg, {}, pool=inline)
    with parse_pool("process", workers=2) as pool:
        pooled = scan(cfg, {}, pool=pool)
    assert inline.modes == "inline" and inline.load == {}
    assert pool.modes == "process x2" and not pool.failed
    # both workers parsed, and between them every changed file
    assert len(pool.load) == 2 and all(w.jobs > 0 for w in pool.load.values())
    assert sum(w.jobs for w in pool.load.values()) == 122
    assert pooled.files == here.files and pooled.problems == here.problems
    assert list(statuses(pooled).values()).count("parsed") == 120
    bad = {p.location: p.kind for p in pooled.problems if p.severity == "error"}
    assert bad == {BAD_YAML: "yaml", BAD_UTF8: "encoding"}


def test_unchanged_posts_are_not_parsed_again(big_site: Path) -> None:
    cfg = make_cfg(big_site)
    with parse_pool("process", workers=2) as pool:
        first = scan(cfg, {}, pool=pool)
    known = {f.path: f.stamp for f in first.files}
    touched = big_site / BAD_YAML
    touched.write_text("---\ntitle: Fixed now\ncategory: podcast\n---\nbody\n", encoding="utf-8")
    with parse_pool("process", workers=2) as pool:
        second = scan(cfg, known, pool=pool)
    assert sum(w.jobs for w in pool.load.values()) == 1  # only the edited post went to a worker
    got = statuses(second)
    assert got.pop(BAD_YAML) == "parsed"
    assert set(got.values()) == {"unchanged"}


def test_worker_killed_mid_scan_the_scan_finishes_in_process(
    big_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_cfg(big_site)
    with parse_pool("inline") as inline:
        expected = scan(cfg, {}, pool=inline)
    seen: list[str] = []
    killed: list[int] = []

    def kill_workers(rel: str) -> None:
        seen.append(rel)
        if not killed:  # the first chunk is back: the others are still being parsed
            killed.extend(pool.load)
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with caplog.at_level(logging.WARNING), parse_pool("process", workers=2) as pool:
        result = scan(cfg, {}, pool=pool, on_parse=kill_workers)
    assert killed and pool.failed
    assert pool.modes == "inline+process x2"
    assert "jekyll parser processes failed" in caplog.text
    assert sum(w.jobs for w in pool.load.values()) < 122  # some posts were parsed here
    assert len(seen) == 122
    assert result.files == expected.files and result.problems == expected.problems
    parsed: list[FileResult] = [f for f in result.files if f.status == "parsed"]
    assert len(parsed) == 120


def _stored(db_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with session(upgrade(db_url)) as s:
        # every column but the row id and the pass's clock
        episodes = [
            tuple(sorted(e.model_dump(exclude={"id", "first_seen_at", "last_changed_at"}).items()))
            for e in s.exec(select(Episode).order_by(Episode.guid)).all()  # type: ignore[arg-type]
        ]
        problems = [
            (p.location, p.kind, p.line, p.severity, p.message)
            for p in s.exec(select(Problem).where(Problem.resolved_at.is_(None))).all()  # type: ignore[union-attr]
        ]
    return episodes, sorted(problems, key=repr)


def test_run_once_in_a_pool_stores_what_an_in_process_run_stores(
    big_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = {}
    for mode in ("inline", "process"):
        monkeypatch.setenv(ENV, mode)
        db_url = f"sqlite:///{tmp_path / mode}.db"
        report = run_once(make_settings(tmp_path, db_url, sources=[source(big_site)]))
        assert report.sources[0].new == 120
        stored[mode] = _stored(db_url)
    episodes, problems = stored["process"]
    assert len(episodes) == 120 and {p[0] for p in problems} >= {BAD_YAML, BAD_UTF8}
    assert stored["process"] == stored["inline"]


def _grandchildren() -> list[int]:
    """Processes whose parent is one of ours: the pool workers forked by the forkserver."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine = {pid for pid, ppid in parents.items() if ppid == os.getpid()}
    return [pid for pid, ppid in parents.items() if ppid in mine]


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds workers in /proc")
def test_feed_pass_whose_workers_are_killed_parses_the_rest_in_a_thread(
    srv: FeedServer,
) -> None:
    from syndicator.config import FeedSourceConfig

    for i in range(30):
        srv.add_feed(f"/f{i}.xml", make_feed_xml(40))
    reqs = [
        PollRequest(FeedSourceConfig(name=f"f{i}", type="feed", url=srv.url(f"/f{i}.xml")))
        for i in range(30)
    ]
    killed: list[int] = []

    def kill_workers(_result: object) -> None:
        if not killed:
            killed.extend(_grandchildren())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    st = PollStats()
    results = poll_feeds_sync(
        reqs, FetchConfig(), progress=kill_workers, parse_in="process", parse_workers=2, stats=st
    )
    assert killed
    assert [r.status for r in results] == ["ok"] * 30
    assert all(len(r.episodes) == 40 for r in results)
    assert st.parse_mode == "process x2+thread"
