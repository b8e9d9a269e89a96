"""Hostile Liquid: loops, fan-outs and string doubling are bounded, and fail one post alone.

Each bomb sits in a site beside good posts: the bomb becomes one "limit" problem naming its
file and the limit it hit, and the good posts of the same pass are read (and stored).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest

from syndicator.config import JekyllSourceConfig
from syndicator.sources.jekyll import scan
from tests import daemon_support as d
from tests.fakes.webhook import FakeWebhook
from tests.hostile.conftest import run_cli, site_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site"
BAD = "_posts/podcast/2026-12-01-99-a-hostile-post.md"
GOOD = "_posts/podcast/2026-03-02-1-welcome-to-shipping-it.md"

FRONT = """\
---
mp3_bytes: "1000"
mp3_duration: "10:00"
category: "podcast"
title: "A Hostile Post"
---
"""


def _site(tmp_path: Path, body: str, includes: dict[str, str] | None = None) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    for name, text in (includes or {}).items():
        (site / "_includes" / name).write_text(text, encoding="utf-8")
    (site / BAD).write_text(FRONT + body, encoding="utf-8")
    return site


def _fan_out(levels: int, width: int) -> dict[str, str]:
    """Each include includes the next `width` times: width**levels renders of the last."""
    files = {f"f{i}.html": f"{{% include f{i + 1}.html %}}" * width for i in range(levels)}
    files[f"f{levels}.html"] = "{% if true %}x{% endif %}"
    return files


def _cfg(site: Path, **kw: object) -> JekyllSourceConfig:
    return JekyllSourceConfig.model_validate(
        {"type": "jekyll", "name": "episodes", "path": site, **kw}
    )


BOMBS = {
    "billion-loop": ("{% for i in (1..1000000000) %}x{% endfor %}", None, "max_loop_iterations"),
    "billion-reversed": (
        "{% for i in (1..1000000000) reversed %}{{ i }}{% endfor %}",
        None,
        "max_loop_iterations",
    ),
    "nested-loops": (
        "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}x"
        "{% endfor %}{% endfor %}{% endfor %}",
        None,
        "max_loop_iterations",
    ),
    "many-loops": ("{% for i in (1..99999) %}{% endfor %}" * 2000, None, "max_loop_iterations"),
    "append-doubling": (
        "{% assign s = 'xxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}"
        "{% endfor %}{{ s }}",
        None,
        "max_render_bytes",
    ),
    "capture-doubling": (
        "{% capture s %}x{% endcapture %}{% for i in (1..40) %}"
        "{% capture s %}{{ s }}{{ s }}{% endcapture %}{% endfor %}{{ s }}",
        None,
        "max_render_bytes",
    ),
    "join-a-billion": (
        "{% assign r = (1..1000000000) %}{{ r | join: ',' }}",
        None,
        "max_render_bytes",
    ),
    "replace-blowup": (
        "{% capture a %}"
        + "a" * 200_000
        + "{% endcapture %}{% capture b %}"
        + "b" * 5_000
        + "{% endcapture %}{{ a | replace: 'a', b }}",
        None,
        "max_render_bytes",
    ),
    "deep-blocks": ("{% if true %}" * 5000 + "x" + "{% endif %}" * 5000, None, "nest over 30"),
    "include-fan-out": ("{% include f0.html %}", _fan_out(8, 10), "max_render_seconds"),
    "include-recursion": ("{% include self.html %}", {"self.html": "{% include self.html %}"}, ""),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_liquid_bomb_is_one_problem_and_the_good_posts_are_read(tmp_path: Path, case: str) -> None:
    body, includes, setting = BOMBS[case]
    site = _site(tmp_path, body, includes)
    t0 = time.monotonic()
    result = scan(_cfg(site, max_render_seconds="2s"), {})
    took = time.monotonic() - t0
    assert took < 15, f"{case} took {took:.1f}s"
    bad = [p for p in result.problems if p.location == BAD and p.severity == "error"]
    files = {f.path: f for f in result.files}
    if case == "include-recursion":
        # A self-include is dropped like any failed include: a warning, the post is kept.
        assert files[BAD].status == "parsed"
        assert any(p.location == BAD and "nest" in p.message for p in result.problems)
    else:
        assert len(bad) == 1, result.problems
        assert bad[0].kind == "limit"
        assert setting in bad[0].message
        assert files[BAD].status == "bad"
    assert files[GOOD].status == "parsed"
    assert sum(f.status == "parsed" for f in result.files) >= 6


def test_time_budget_is_a_setting(tmp_path: Path) -> None:
    """Under the default budget the fan-out fails; a tiny one fails it sooner."""
    site = _site(tmp_path, "{% include f0.html %}", _fan_out(8, 10))
    t0 = time.monotonic()
    result = scan(_cfg(site, max_render_seconds="0.5s"), {})
    assert time.monotonic() - t0 < 5
    (bad,) = [p for p in result.problems if p.location == BAD]
    assert "0.5 s" in bad.message and "max_render_seconds" in bad.message


def test_loop_limit_is_a_setting(tmp_path: Path) -> None:
    body = "{% for i in (1..5000) %}.{% endfor %}"
    site = _site(tmp_path, body)
    assert {f.path: f.status for f in scan(_cfg(site), {}).files}[BAD] == "parsed"
    result = scan(_cfg(site, max_loop_iterations=1000), {})
    (bad,) = [p for p in result.problems if p.location == BAD]
    assert "1,000" in bad.message and "max_loop_iterations" in bad.message


def _config(tmp_path: Path, site: Path, extra: str = "") -> Path:
    return site_config(tmp_path, site, source=extra)


def test_run_once_stores_the_good_posts_beside_a_liquid_bomb(tmp_path: Path) -> None:
    site = _site(
        tmp_path,
        "{% assign s = 'xxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}"
        "{% endfor %}{{ s }}",
    )
    cfg = _config(tmp_path, site)
    proc = run_cli(cfg, "run-once", timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    status = json.loads(run_cli(cfg, "status", "--json").stdout)
    problems = [p for p in status["problems"] if p["location"] == BAD]
    assert [(p["kind"], p["severity"]) for p in problems] == [("limit", "error")]
    episodes = json.loads(run_cli(cfg, "episodes", "--json").stdout)
    assert len(episodes) >= 6
    assert not any("Hostile" in e["title"] for e in episodes)


def test_sigterm_mid_render_stops_the_daemon_within_ten_seconds(tmp_path: Path) -> None:
    """A post that renders for minutes (within the limits set here) must not keep a daemon
    from stopping: SIGTERM in the middle of rendering it ends the process in under 10 s."""
    site = _site(tmp_path, "{% include f0.html %}", _fan_out(9, 10))
    with FakeWebhook() as hook:
        cfg = d.write_config(tmp_path / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
        cfg.write_text(
            cfg.read_text().replace(
                'type = "jekyll"\n', 'type = "jekyll"\nmax_render_seconds = "10m"\n', 1
            )
        )
        proc = d.start(cfg, "run")
        try:

            def rendering() -> bool:
                state = (d.status(cfg).get("daemon") or {}).get("state") or ""
                return "reading episodes" in state

            assert d.wait(rendering, timeout=30), "the daemon never started reading"
            time.sleep(1.5)  # well inside the render of the fan-out post
            assert proc.poll() is None
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=10)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 0
    assert took < 10
